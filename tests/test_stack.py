"""The user's path on whatever stack is installed: train -> evaluate -> reload in pyannote.audio (issue 33)

CI runs this module on both stacks it tests (`.ci/test`: the oldest supported,
torch 2.9, and the newest pip resolves for pyannote.audio 4.0.7), beside the
fast tier: a short training in bf16 mixed precision through the command line,
its evaluation, and its checkpoint through pyannote.audio's own loaders
(``Model.from_pretrained``, ``PretrainedSpeakerEmbedding``, ``Inference``).
"""

import importlib.metadata
import json

import numpy as np
import pytest
import torch
from pyannote.audio import Inference, Model
from pyannote.audio.pipelines.speaker_verification import PretrainedSpeakerEmbedding

import pyannote_embloss
from pyannote_embloss.inference.apply import protocol_files

from helpers import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.stack]

PROTOCOL = "Tiny.SpeakerVerification.Default"

CONFIG = """\
protocol: Tiny.SpeakerVerification.Default
seed: 0
task:
  name: aam
  params: {duration: 1.0, min_duration: 0.5, num_classes_per_batch: 4, num_chunks_per_class: 1, batches_per_epoch: 4,
           num_workers: 0, margin: 0.2, scale: 30.0}
architecture:
  name: SincTDNN
  params: {frontend: fbank, channels: [64, 64, 64, 64, 192], dimension: 64}
optimizer: {name: AdamW, params: {lr: 0.005}}
trainer: {max_epochs: 2, precision: bf16-mixed}
"""


def test_train_evaluate_reload_on_this_stack(tiny_protocol_yml, tmp_path):
    stack = {p: importlib.metadata.version(p) for p in ("torch", "torchaudio", "torchcodec", "pyannote.audio")}
    print("stack:", ", ".join(f"{p} {v}" for p, v in stack.items()))
    experiment = tmp_path / "exp"
    experiment.mkdir()
    (experiment / "config.yml").write_text(CONFIG)

    trained = run_cli("train", experiment, "--database", tiny_protocol_yml, "--no-progress", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = json.loads((experiment / "training.json").read_text())
    assert summary["steps"] == 8 and summary["config"]["trainer"]["precision"] == "bf16-mixed"
    assert summary["machine"]["versions"]["torch"] == stack["torch"]  # the stack is recorded beside the figures

    evaluated = run_cli("evaluate", experiment, "--database", tiny_protocol_yml, "--no-norm", "--no-progress", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    results = json.loads((experiment / "results" / f"{PROTOCOL}.test.json").read_text())
    assert results["num_trials"] == 8 and 0.0 <= results["eer"] <= 1.0

    checkpoint = experiment / "checkpoints" / "best.ckpt"
    (_, path), *_ = protocol_files(PROTOCOL, database=tiny_protocol_yml)
    plugin = pyannote_embloss.load(experiment, window="whole")({"audio": path})
    model = Model.from_pretrained(checkpoint)
    assert not hasattr(model, "loss_func")
    whole = Inference(model, window="whole")({"audio": path})
    pretrained = PretrainedSpeakerEmbedding({"checkpoint": str(checkpoint)})
    waveform = model.audio({"audio": path})[0][None]
    assert plugin.shape == whole.shape == (64,) and np.isfinite(whole).all()
    np.testing.assert_allclose(whole, plugin, atol=1e-5)
    np.testing.assert_allclose(pretrained(waveform)[0], plugin, atol=1e-5)
    with torch.inference_mode():
        np.testing.assert_allclose(model.eval()(waveform)[0].numpy(), plugin, atol=1e-5)
