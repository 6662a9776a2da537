"""WeSpeakerResNet34 and ECAPATDNN train with every loss; their checkpoints work everywhere

Each (architecture, loss) trains 2 steps on the tiny protocol (2 speakers x
2 chunks of 1 s a batch), is evaluated with the plugin's `evaluate`, and
reloads through pyannote.audio's `Model.from_pretrained` and
`PretrainedSpeakerEmbedding`, giving the plugin's own embeddings. A
WeSpeakerResNet34 checkpoint also goes through `apply`, `export`, `load` and
`--pretrained`.
"""

import warnings

import numpy as np
import onnxruntime
import pytest
import torch
from pyannote.audio import Model
from pyannote.audio.pipelines.speaker_verification import PretrainedSpeakerEmbedding

import pyannote_embloss
from pyannote_embloss.inference.apply import apply, protocol_files
from pyannote_embloss.evaluation.verification import evaluate
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.inference.loading import load_model
from pyannote_embloss.losses import LOSSES
from pyannote_embloss.models import ECAPATDNN, WeSpeakerResNet34
from pyannote_embloss.tasks import TASKS
from pyannote_embloss.training.run import train

from helpers import run_cli

pytestmark = pytest.mark.slow  # 16 short trainings

PROTOCOL = "Tiny.SpeakerVerification.Default"

CONFIG = """\
protocol: {protocol}
seed: 0
task:
  name: {loss}
  params: {{duration: 1.0, num_classes_per_batch: 2, num_chunks_per_class: 2, batches_per_epoch: 2, num_workers: 0}}
architecture:
  name: {architecture}
  params: {params}
optimizer:
  name: Adam
  params: {{lr: 0.001}}
trainer:
  max_epochs: 1
"""

#: architecture name in config.yml -> (its params, the class it builds)
ARCHITECTURES = {
    "WeSpeakerResNet34": ("{}", WeSpeakerResNet34),
    "ECAPATDNN": ("{channels: 64, aggregation_channels: 192, dimension: 64}", ECAPATDNN),
}


def write_experiment(directory, architecture, loss, protocol=PROTOCOL):
    directory.mkdir(parents=True)
    params = ARCHITECTURES.get(architecture, ARCHITECTURES["WeSpeakerResNet34"])[0]
    (directory / "config.yml").write_text(
        CONFIG.format(protocol=protocol, loss=loss, architecture=architecture, params=params)
    )
    return Experiment.load(directory)


@pytest.fixture(scope="module")
def trained(tiny_protocol_yml, tmp_path_factory):
    """trained(architecture, loss) -> experiment directory, trained once per module"""
    experiments = {}

    def trained_experiment(architecture, loss):
        if (architecture, loss) not in experiments:
            directory = tmp_path_factory.mktemp("experiments") / f"{architecture}-{loss}"
            summary = train(write_experiment(directory, architecture, loss), database=str(tiny_protocol_yml), progress_bar=False)
            assert summary["steps"] == 2 and summary["num_speakers"] == 4
            experiments[architecture, loss] = directory
        return experiments[architecture, loss]

    return trained_experiment


@pytest.fixture(scope="module")
def waveforms(tiny_protocol_yml):
    """(2, 1, 24000) real speech: 1.5 s excerpts of two test files"""
    files = protocol_files(PROTOCOL, database=tiny_protocol_yml)[:2]
    model = WeSpeakerResNet34()
    return torch.stack([model.audio({"audio": path})[0][:, 8000:32000] for _, path in files])


@pytest.mark.parametrize("loss", sorted(TASKS))
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_loss_trains_evaluates_and_reloads_in_pyannote(architecture, loss, trained, tiny_protocol_yml, waveforms):
    directory = trained(architecture, loss)
    checkpoint = directory / "checkpoints" / "best.ckpt"
    stored = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert stored["pyannote.audio"]["architecture"]["class"] == architecture
    has_loss_parameters = any(key.startswith("loss_func.") for key in stored["state_dict"])
    assert has_loss_parameters == LOSSES[loss].uses_classifier  # classifier weights (and centers) saved

    results = evaluate(Experiment.load(directory), database=str(tiny_protocol_yml), progress=False, normalize=False)
    assert results["num_trials"] == 8 and 0.0 <= results["eer"] <= 1.0
    assert (directory / "results" / f"{PROTOCOL}.test.json").is_file()

    with torch.inference_mode():
        expected = load_model(checkpoint)(waveforms).numpy()
    assert np.isfinite(expected).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = Model.from_pretrained(checkpoint)
        embedding = PretrainedSpeakerEmbedding({"checkpoint": str(checkpoint)})
    assert not [w for w in caught if "loss function" in str(w.message)]  # the loss' parameters dropped cleanly
    assert isinstance(model, ARCHITECTURES[architecture][1]) and not hasattr(model, "loss_func")
    with torch.inference_mode():
        np.testing.assert_allclose(model.eval()(waveforms).numpy(), expected, atol=1e-5)
    assert embedding.dimension == expected.shape[1]
    np.testing.assert_allclose(embedding(waveforms), expected, atol=1e-5)


def test_wespeaker_checkpoint_in_every_command(trained, tiny_protocol_yml, waveforms, tmp_path):
    directory = trained("WeSpeakerResNet34", "aam")
    checkpoint = directory / "checkpoints" / "best.ckpt"
    with torch.inference_mode():
        expected = load_model(checkpoint)(waveforms).numpy()

    # load: the quick usage, whole files
    embedding = pyannote_embloss.load(checkpoint, window="whole")
    path = protocol_files(PROTOCOL, database=tiny_protocol_yml)[0][1]
    assert embedding(path).shape == (256,) and np.isfinite(embedding(path)).all()

    # apply: one .npy per test file
    summary = apply(load_model(checkpoint), protocol_files(PROTOCOL, database=tiny_protocol_yml), tmp_path / "apply", progress=False)
    assert summary["computed"] == 8 and len(list((tmp_path / "apply").rglob("*.npy"))) == 8

    # export: the ONNX graph gives the same embeddings
    onnx = tmp_path / "wespeaker.onnx"
    result = run_cli("export", directory, "--output", onnx)
    assert result.returncode == 0, result.stderr[-3000:]
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"waveforms": waveforms.numpy()})
    cosine = np.sum(actual * expected, axis=1) / np.linalg.norm(actual, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() > 0.999, cosine

    # --pretrained: fine-tune it with another loss (a new classifier), through pyannote.audio's class path
    finetuned = write_experiment(tmp_path / "finetuned", "pyannote.audio.models.embedding.WeSpeakerResNet34", "am")
    summary = train(finetuned, database=str(tiny_protocol_yml), pretrained=str(checkpoint), progress_bar=False)
    assert summary["pretrained"] == str(checkpoint) and summary["steps"] == 2
    stored = torch.load(finetuned.best_checkpoint, map_location="cpu", weights_only=False)
    assert stored["pyannote.audio"]["architecture"] == {"module": "pyannote_embloss.models.wespeaker", "class": "WeSpeakerResNet34"}
