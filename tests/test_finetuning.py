"""Fine-tuning: `pyannote-audio-emb train ... --pretrained CKPT [--freeze-frontend] [--lr]`

The session's checkpoint (trained on the official train speakers of
SpeechOcean762) is fine-tuned on new speakers: official test speakers,
utterances 1-6 for training, 7-10 for test trials.
"""

import json
import warnings

import numpy as np
import pytest
import torch
from lightning import Callback

from pyannote_embloss.evaluation import Trials
from pyannote_embloss.evaluation.verification import evaluate_model
from pyannote_embloss.experiment import ConfigError, Experiment
from pyannote_embloss.training.finetuning import PretrainedCheckpoint, build_pretrained_model
from pyannote_embloss.inference.loading import load_model
from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.data.protocols.new_speakers import PROTOCOL, prepare_new_speakers
from pyannote_embloss.tasks import get_task_class

from helpers import one_speaker_segmentation, run_cli, run_module

NUM_SPEAKERS = 50

CONFIG = """\
protocol: SpeechOcean762.SpeakerVerification.NewSpeakers
seed: 0
task:
  name: aam
  params: {{duration: 2.0, num_classes_per_batch: 50, batches_per_epoch: 10, num_workers: 0, margin: 0.05, scale: 10.0}}
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

    xvector = CONFIG.format(stride=10).replace("SincTDNN", "pyannote.audio.models.embedding.XVectorSincNet")
    (tmp_path / "config.yml").write_text(xvector.replace("{stride: 10, dimension: 128}", "{dimension: 128}"))
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


# ---------------------------------------------------------------------------
# pyannote.audio's own pretrained embedding (WeSpeakerResNet34), as it is distributed


@pytest.fixture(scope="module")
def distributed_wespeaker(tmp_path_factory):
    """pytorch_model.bin written by pyannote.audio's own wespeaker/convert.py, as for pyannote/wespeaker-voxceleb-resnet34-LM

    From random WeSpeaker ResNet34 weights (with random batch-norm
    statistics), offline: the checkpoint has no hyper_parameters.
    """
    from pyannote.audio.models.embedding.wespeaker.resnet import ResNet34

    directory = tmp_path_factory.mktemp("hub") / "wespeaker-voxceleb-resnet34-LM"  # convert.py reads "34" in the name
    directory.mkdir()
    torch.manual_seed(0)
    weights = ResNet34(80, 256, pooling_func="TSTP", two_emb_layer=False).state_dict()
    for key, value in weights.items():
        if key.endswith(("running_mean", "running_var")):
            weights[key] = torch.rand_like(value) + (0.5 if key.endswith("var") else -0.5)
    weights["projection.weight"] = torch.randn(1211, 256)  # WeSpeaker's training classifier, dropped by convert.py
    torch.save(weights, directory / "wespeaker.pt")
    result = run_module("pyannote.audio.models.embedding.wespeaker.convert", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory / "pytorch_model.bin"


class EmbedBeforeFirstUpdate(Callback):
    """Embeds `waveforms` with the model being trained just before its first update, and keeps its loss' weights"""

    def __init__(self, waveforms):
        self.waveforms = waveforms
        self.embeddings = self.loss_weights = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 0 and self.embeddings is None:
            pl_module.eval()
            with torch.inference_mode():
                self.embeddings = pl_module(self.waveforms).numpy()
            self.loss_weights = [p.detach().clone() for p in pl_module.loss_func.parameters()]
            pl_module.train()


FINETUNING_CONFIG = """\
protocol: Tiny.SpeakerVerification.Default
seed: 0
task:
  name: {loss}
  params: {{duration: 1.0, num_classes_per_batch: 2, num_chunks_per_class: 2, batches_per_epoch: 2, num_workers: 0}}
architecture:
  name: WeSpeakerResNet34
optimizer:
  name: Adam
  params: {{lr: 0.0001}}
trainer:
  max_epochs: 1
"""


@pytest.mark.slow
def test_finetuning_pyannote_distributed_wespeaker(distributed_wespeaker, tiny_protocol_yml, tmp_path):
    from pyannote.audio import Model
    from pyannote.audio.pipelines import SpeakerDiarization as PyannoteSpeakerDiarization

    from pyannote_embloss.pipelines import DEFAULT_CLUSTERING, NoPLDA, sample_file
    from pyannote_embloss.training.run import train

    assert "hyper_parameters" not in torch.load(distributed_wespeaker, map_location="cpu", weights_only=False)
    pretrained = Model.from_pretrained(distributed_wespeaker).eval()  # pyannote.audio's own class and loader
    assert type(pretrained).__module__ == "pyannote.audio.models.embedding.wespeaker"
    audio = pretrained.audio(sample_file()["audio"])[0]
    waveforms = torch.stack([audio[:, 16000:48000], audio[:, 160000:192000]])
    with torch.inference_mode():
        expected = pretrained(waveforms).numpy()

    experiment = tmp_path / "finetuned"
    experiment.mkdir()
    (experiment / "config.yml").write_text(FINETUNING_CONFIG.format(loss="aam"))
    before = EmbedBeforeFirstUpdate(waveforms)
    with pytest.warns(UserWarning, match="WeSpeakerResNet34 .*has no trainable parameter: nothing to freeze"):
        summary = train(
            Experiment.load(experiment), database=str(tiny_protocol_yml), pretrained=str(distributed_wespeaker),
            freeze_frontend=True, progress_bar=False, callbacks=[before],
        )
    # before the first update: pyannote's embedding, exactly
    np.testing.assert_allclose(before.embeddings, expected, atol=1e-5)
    # a fresh AAM classifier for the 4 training speakers, which training updated
    assert summary["pretrained"] == str(distributed_wespeaker) and summary["frozen"] == [] and summary["steps"] == 2
    assert summary["loss_parameters"] == 256 * 4 == before.loss_weights[0].numel()
    finetuned = experiment / "checkpoints" / "best.ckpt"
    stored = torch.load(finetuned, map_location="cpu", weights_only=False)
    assert not torch.equal(stored["state_dict"]["loss_func.W"], before.loss_weights[0])
    assert not torch.equal(stored["state_dict"]["resnet.seg_1.weight"], pretrained.resnet.seg_1.weight)

    # the fine-tuned embedding in pyannote.audio's own diarization pipeline, loaded by pyannote.audio
    pipeline = PyannoteSpeakerDiarization(
        segmentation=one_speaker_segmentation(), embedding={"checkpoint": str(finetuned)}, plda=NoPLDA(),
        clustering="AgglomerativeClustering", segmentation_step=0.5,
    )
    pipeline.instantiate({"segmentation": {"min_duration_off": 0.0}, "clustering": dict(DEFAULT_CLUSTERING)})
    output = pipeline({"uri": "sample", "waveform": audio[:, :160000], "sample_rate": 16000})
    assert type(pipeline._embedding.model_).__name__ == "WeSpeakerResNet34"
    assert len(output.speaker_diarization.labels()) >= 1
    assert output.speaker_embeddings.shape[1] == 256 and np.isfinite(output.speaker_embeddings).all()

    # the command line accepts it too, with another loss
    experiment = tmp_path / "finetuned-cli"
    experiment.mkdir()
    (experiment / "config.yml").write_text(FINETUNING_CONFIG.format(loss="triplet"))
    result = run_cli("train", experiment, "--database", tiny_protocol_yml, "--no-progress", "--pretrained", distributed_wespeaker)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((experiment / "training.json").read_text())["pretrained"] == str(distributed_wespeaker)


def test_freeze_frontend_knows_every_architecture():
    from pyannote_embloss.training.finetuning import freeze_frontend
    from pyannote_embloss.models import ECAPATDNN, SincTDNN, WeSpeakerResNet34

    model = SincTDNN(stride=10, channels=[32, 32, 32, 32, 64], dimension=16)
    assert freeze_frontend(model) == ["sincnet"]
    assert not any(p.requires_grad for p in model.sincnet.parameters())
    assert all(p.requires_grad for p in model.tdnns.parameters())
    for model, frozen in ((ECAPATDNN(channels=64, aggregation_channels=192), ["filterbank"]), (WeSpeakerResNet34(), [])):
        with pytest.warns(UserWarning, match="has no trainable parameter: nothing to freeze"):
            assert freeze_frontend(model) == frozen
        assert all(p.requires_grad for p in model.parameters())
