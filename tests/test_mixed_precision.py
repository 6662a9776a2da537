"""Mixed precision: every backbone trains under `trainer: {precision: bf16-mixed}` (issue 33)

On the CPU, autocast does what it does on a GPU: convolutions and matrix
products in half precision (bfloat16; float16 too, which Lightning's
`16-mixed` uses on CUDA only). The front-ends' features, statistics
pooling and the loss stay in float32 (``models.base.full_precision``).
"""

import csv

import numpy as np
import pytest
import torch
from pyannote.audio import Model
from pyannote.audio.pipelines.speaker_verification import PretrainedSpeakerEmbedding

from pyannote_embloss.inference.apply import protocol_files
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.models import ECAPATDNN, LogMelStatistics, SincTDNN, WeSpeakerResNet34
from pyannote_embloss.training.run import train

PROTOCOL = "Tiny.SpeakerVerification.Default"

#: backbone -> (model, (module, "input" or "output"): where its front-end's features are seen in `forward`)
BACKBONES = {
    "SincTDNN-sincnet": (lambda: SincTDNN(stride=10, dimension=64), ("sincnet", "output")),
    "SincTDNN-fbank": (lambda: SincTDNN(frontend="fbank", dimension=64), ("sincnet", "output")),
    "ECAPATDNN": (lambda: ECAPATDNN(channels=64, aggregation_channels=192, dimension=64), ("filterbank", "output")),
    "WeSpeakerResNet34": (WeSpeakerResNet34, ("resnet", "input")),
    "LogMelStatistics": (LogMelStatistics, ("filterbank", "output")),
}

#: the trainable backbones, as config.yml names them
CONFIGS = {
    "SincTDNN-sincnet": "{name: SincTDNN, params: {stride: 10, dimension: 64}}",
    "SincTDNN-fbank": "{name: SincTDNN, params: {frontend: fbank, dimension: 64}}",
    "ECAPATDNN": "{name: ECAPATDNN, params: {channels: 64, aggregation_channels: 192, dimension: 64}}",
    "WeSpeakerResNet34": "{name: WeSpeakerResNet34}",
}

CONFIG = """\
protocol: {protocol}
seed: 0
task:
  name: aam
  params: {{duration: 1.0, num_classes_per_batch: 2, num_chunks_per_class: 2, batches_per_epoch: 3, num_workers: 0,
           margin: 0.2, scale: 30.0}}
architecture: {architecture}
optimizer:
  name: Adam
  params: {{lr: 0.001}}
trainer:
  max_epochs: 1
  precision: {precision}
"""


@pytest.fixture(scope="module")
def waveforms(tiny_protocol_yml):
    """(2, 1, 24000) real speech: 1.5 s excerpts of two test files"""
    files = protocol_files(PROTOCOL, database=tiny_protocol_yml)[:2]
    model = WeSpeakerResNet34()
    return torch.stack([model.audio({"audio": path})[0][:, 8000:32000] for _, path in files])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_features_stay_float32_under_autocast(backbone, dtype, waveforms):
    build, (name, side) = BACKBONES[backbone]
    torch.manual_seed(0)
    model = build().eval()
    seen = []
    if side == "output":
        getattr(model, name).register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    else:
        getattr(model, name).register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    with torch.inference_mode():
        reference = model(waveforms)
        with torch.autocast("cpu", dtype=dtype):
            mixed = model(waveforms)
    assert seen == [torch.float32, torch.float32]  # the features, without and with autocast
    assert torch.isfinite(mixed).all()
    # half-precision convolutions move an embedding a little; float32 features keep its direction
    cosine = torch.nn.functional.cosine_similarity(mixed.float(), reference)
    assert cosine.min() > 0.9999, cosine


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16-mixed"])  # Lightning turns 16-mixed into bf16-mixed on the CPU
@pytest.mark.parametrize("backbone", sorted(CONFIGS))
def test_every_backbone_trains_in_mixed_precision(backbone, precision, tiny_protocol_yml, waveforms, tmp_path):
    directory = tmp_path / backbone
    directory.mkdir()
    (directory / "config.yml").write_text(
        CONFIG.format(protocol=PROTOCOL, architecture=CONFIGS[backbone], precision=precision)
    )
    summary = train(Experiment.load(directory), database=str(tiny_protocol_yml), progress_bar=False)
    assert summary["steps"] == 3 and summary["config"]["trainer"]["precision"] == precision

    (metrics,) = directory.joinpath("logs").glob("version_*/metrics.csv")
    losses = [float(row["loss/train_step"]) for row in csv.DictReader(metrics.open()) if row.get("loss/train_step")]
    assert len(losses) == 3 and np.isfinite(losses).all() and min(losses) > 0.0

    checkpoint = directory / "checkpoints" / "best.ckpt"
    stored = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    floats = [value for value in stored.values() if value.is_floating_point()]
    assert all(value.dtype == torch.float32 and torch.isfinite(value).all() for value in floats)  # master weights

    model = Model.from_pretrained(checkpoint).eval()
    with torch.inference_mode():
        embeddings = model(waveforms)
    assert embeddings.dtype == torch.float32 and torch.isfinite(embeddings).all()
    np.testing.assert_allclose(PretrainedSpeakerEmbedding({"checkpoint": str(checkpoint)})(waveforms), embeddings, atol=1e-5)
