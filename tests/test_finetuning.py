"""Fine-tuning: `pyannote-audio-emb train ... --pretrained CKPT [--freeze-frontend] [--lr]`

The session's checkpoint (trained on the official train speakers of
SpeechOcean762) is fine-tuned on new speakers: official test speakers,
utterances 1-6 for training, 7-10 for test trials.
"""

import json
import warnings

import pytest
import torch

from pyannote_embloss.evaluation import Trials
from pyannote_embloss.evaluation.verification import evaluate_model
from pyannote_embloss.experiment import ConfigError, Experiment
from pyannote_embloss.finetuning import PretrainedCheckpoint, build_pretrained_model
from pyannote_embloss.inference import load_model
from pyannote_embloss.protocols import get_protocol
from pyannote_embloss.protocols.new_speakers import PROTOCOL, prepare_new_speakers
from pyannote_embloss.tasks import get_task_class

from helpers import run_cli

NUM_SPEAKERS = 50

CONFIG = """\
protocol: SpeechOcean762.SpeakerVerification.NewSpeakers
seed: 0
task:
  name: aam
  params: {{duration: 2.0, num_classes_per_batch: 64, batches_per_epoch: 10, num_workers: 0, margin: 0.05, scale: 10.0}}
architecture:
  name: SincTDNN
  params: {{stride: {stride}, dimension: 128}}
optimizer:
  name: Adam
  params: {{lr: 0.01}}
trainer:
  max_epochs: 2
"""


@pytest.fixture(scope="module")
def pretrained(trained_experiment):
    return trained_experiment / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="module")
def new_speakers(corpus_root, tmp_path_factory):
    """database.yml of the NewSpeakers protocol, restricted to 50 speakers"""
    return prepare_new_speakers(
        root=corpus_root, output_dir=tmp_path_factory.mktemp("new-speakers"), max_speakers=NUM_SPEAKERS
    )


def test_new_speakers_protocol(new_speakers, speechocean762_yml):
    protocol = get_protocol(PROTOCOL, database_yml=new_speakers)
    train = {f["uri"]: f["annotation"].labels()[0] for f in protocol.train()}
    test = {f["uri"]: f["annotation"].labels()[0] for f in protocol.test()}
    assert len(train) == NUM_SPEAKERS * 6 and len(test) == NUM_SPEAKERS * 4
    assert set(train.values()) == set(test.values()) and not set(train) & set(test)
    trials = list(protocol.test_trial())
    assert sum(t["reference"] for t in trials) == NUM_SPEAKERS * 6 == len(trials) // 2

    # never seen by the pretrained model: not in the Default protocol's train nor development subsets
    default = get_protocol("SpeechOcean762.SpeakerVerification.Default", database_yml=speechocean762_yml)
    seen = {f["annotation"].labels()[0] for subset in (default.train(), default.development()) for f in subset}
    assert not seen & set(train.values())


def test_finetuning_lowers_eer_on_new_speakers(pretrained, new_speakers, tmp_path):
    trials = Trials.from_protocol(get_protocol(PROTOCOL, database_yml=new_speakers), "test")
    before = evaluate_model(load_model(pretrained), trials, progress=False, n_resamples=10)["eer"]

    experiment = tmp_path / "finetune"
    experiment.mkdir()
    (experiment / "config.yml").write_text(CONFIG.format(stride=10))
    result = run_cli(
        "train", experiment, "--database", new_speakers, "--no-progress",
        "--pretrained", pretrained, "--freeze-frontend", "--lr", "1e-3",  # config.yml says 1e-2
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((experiment / "training.json").read_text())
    assert summary["pretrained"] == str(pretrained) and summary["frozen"] == ["sincnet"]
    assert summary["lr"] == 1e-3 and summary["num_speakers"] == NUM_SPEAKERS
    # a new classifier, sized for the new speakers
    assert summary["loss_parameters"] == 128 * NUM_SPEAKERS

    finetuned = experiment / "checkpoints" / "best.ckpt"
    after = evaluate_model(load_model(finetuned), trials, progress=False, n_resamples=10)["eer"]
    print(f"EER on the new speakers' test trials: {100 * before:.2f} % before fine-tuning, {100 * after:.2f} % after")
    assert after < before

    old = torch.load(pretrained, map_location="cpu", weights_only=False)
    new = torch.load(finetuned, map_location="cpu", weights_only=False)
    # the optimizer ran with the given learning rate, not the config's
    assert new["optimizer_states"][0]["param_groups"][0]["lr"] == 1e-3
    # frozen front-end: SincNet unchanged; the rest was trained
    for key, value in old["state_dict"].items():
        if key.startswith("sincnet."):
            assert torch.equal(value, new["state_dict"][key]), key
    assert not torch.equal(old["state_dict"]["embedding.weight"], new["state_dict"]["embedding.weight"])
    assert new["state_dict"]["loss_func.W"].shape != old["state_dict"]["loss_func.W"].shape


def test_pretrained_architecture_wins_over_config(pretrained, new_speakers, tmp_path):
    (tmp_path / "config.yml").write_text(CONFIG.format(stride=5))
    experiment = Experiment.load(tmp_path)
    task = get_task_class("aam")(get_protocol(PROTOCOL, database_yml=new_speakers), num_workers=0)
    with pytest.warns(UserWarning, match=r"stride=10 \(config: 5\)"):
        model, overridden = build_pretrained_model(experiment, task, PretrainedCheckpoint(pretrained))
    assert overridden == {"stride": (5, 10)} and model.hparams.stride == 10
    # the pretrained weights are loaded (no loss yet: it is built for the task at training)
    reference = load_model(pretrained)
    assert torch.equal(model.embedding.weight, reference.embedding.weight)
    assert not hasattr(model, "loss_func")

    (tmp_path / "config.yml").write_text(CONFIG.format(stride=10).replace("SincTDNN", "pyannote.audio.models.embedding.XVectorSincNet"))
    with pytest.raises(ConfigError, match="does not match the pretrained checkpoint"):
        build_pretrained_model(Experiment.load(tmp_path), task, PretrainedCheckpoint(pretrained))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FileNotFoundError, match="No pretrained checkpoint"):
            PretrainedCheckpoint(tmp_path / "missing.ckpt")


def test_bad_pretrained_checkpoint_is_a_clear_cli_error(new_speakers, tmp_path):
    (tmp_path / "config.yml").write_text(CONFIG.format(stride=10))
    result = run_cli("train", tmp_path, "--database", new_speakers, "--pretrained", tmp_path / "nope.ckpt")
    assert result.returncode == 2 and "No pretrained checkpoint" in result.stderr
    assert not (tmp_path / "checkpoints").exists()
