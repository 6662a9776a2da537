"""Helpers shared by the tests (fixtures live in conftest.py)"""

import os
import subprocess
import sys

PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"


def run_module(module, *args, cwd=None):
    """Run `python -m module args...` in a fresh process, telemetry off"""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"},
    )


def run_cli(*args, cwd=None):
    """Run `pyannote-audio-emb args...` in a fresh process, telemetry off"""
    return run_module("pyannote_embloss.cli", *args, cwd=cwd)


def trained_from_cli(directory, config: str, database):
    """`directory` with `config` as its config.yml, trained by `pyannote-audio-emb train` on `database`"""
    (directory / "config.yml").write_text(config)
    result = run_cli("train", directory, "--database", database, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def quiet_trainer(root, **kwargs):
    """A Lightning Trainer for a few CPU steps: no progress bar, summary or logger"""
    from lightning import Trainer

    settings = dict(
        max_epochs=1,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    return Trainer(**{**settings, **kwargs})


def save_untrained_checkpoint(model, path, duration=2.0, num_speakers=5):
    """Write `model` (untrained) as Lightning writes checkpoints in training, with an AAM loss head

    Like a checkpoint of `pyannote-audio-emb train`: hyper-parameters, the
    pyannote.audio section (architecture, specifications of `duration` s
    chunks) and the loss' classifier weights (``loss_func.W``).
    """
    from pyannote.audio.core.task import Problem, Resolution, Specifications

    from pyannote_embloss.losses import AdditiveAngularMarginLoss

    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=duration)
    model.loss_func = AdditiveAngularMarginLoss(num_classes=num_speakers, embedding_size=model.dimension)
    trainer = quiet_trainer(path.parent, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path, weights_only=True)
    del model.loss_func
    return path


def one_speaker_segmentation(duration=5.0):
    """A pyannote.audio PyanNet segmentation model (powerset, 2 speakers) that hears one speaker on every frame

    Untrained, with its classifier set to always choose "speaker #1 alone":
    every chunk gets one active speaker, so that pyannote.audio's
    SpeakerDiarization pipeline embeds each chunk, without training a
    segmentation model first (tests of the embedding, not of the segmentation).
    """
    import torch
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.segmentation import PyanNet

    model = PyanNet(sincnet={"stride": 10})
    model.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME, duration=duration,
        classes=["speaker#1", "speaker#2"], powerset_max_classes=2, permutation_invariant=True,
    )
    model.build()
    with torch.no_grad():  # powerset classes: none, {1}, {2}, {1, 2}
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 10.0, 0.0, 0.0]))
    return model.eval()


#: a few seconds of training on conftest's Tiny protocol: a small SincTDNN, 2 batches of 2 speakers x 2 chunks of 1 s an epoch
TINY_TRAINING = """\
protocol: Tiny.SpeakerVerification.Default
seed: 0
task:
  name: {loss}
  params: {{duration: 1.0, num_classes_per_batch: 2, num_chunks_per_class: 2, batches_per_epoch: 2, num_workers: 0{loss_params}}}
architecture:
  name: SincTDNN
  params: {{stride: 10, channels: [32, 32, 32, 32, 64], dimension: 32}}
optimizer:
  name: Adam
  params: {{lr: 0.01}}
trainer:
  max_epochs: {max_epochs}
{extra}"""


def tiny_experiment(directory, loss="aam", loss_params="", max_epochs=2, extra=""):
    """`directory` with a config.yml of TINY_TRAINING (`loss_params` like ", margin: 0.2"; `extra`: more sections)"""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yml").write_text(
        TINY_TRAINING.format(loss=loss, loss_params=loss_params, max_epochs=max_epochs, extra=extra)
    )
    return directory
