"""Large-margin fine-tuning: a short second stage after the main run (WeSpeaker's ``resnet_lm.yaml``)

    large_margin:
      duration: 6.0            # chunk duration in seconds (fixed length): longer than the main run's
      margin: 0.5              # the loss' margin, fixed (no margin_scheduler)
      epochs: 1                # few updates ...
      lr: 1.0e-4               # ... at a small, constant learning rate
      batches_per_epoch: 500   # optional: defaults to the main run's task.params
      num_classes_per_batch: 64  # optional: idem (longer chunks need more memory)

For the losses with a margin (``aam``, ``am``, ``subcenter_aam``). Once the
main run has ended, ``train`` continues from its final weights **including
the loss head** (the classifier of the same speakers: unlike ``--pretrained``,
which builds a new one), or from ``checkpoints/average.ckpt`` when
``checkpoint.average_last`` is set (WeSpeaker starts its large-margin stage
from the averaged model), and trains

* on chunks of `duration` seconds (``min_duration`` = `duration`);
* with the loss' margin fixed to `margin` (and, for ``subcenter_aam``,
  without the inter-top-k penalty, as WeSpeaker's ``do_lm``);
* with the main run's optimizer at the constant learning rate `lr` (no
  ``scheduler``), for `epochs` epochs;
* with everything else of the main run (seed, augmentation, architecture,
  trainer settings and command-line overrides).

Outputs: the stage trains in ``checkpoints/large_margin/`` (its ``last.ckpt``;
logs in ``logs/large_margin/``). When it ends, its final weights become
``checkpoints/best.ckpt``, the model of the experiment (what ``evaluate``,
``compare`` and ``load`` use), and the main run's best checkpoint is kept as
``checkpoints/main.ckpt`` (``evaluate EXP --checkpoint main``).
``training.json`` is written once both stages have ended, with the stage's
summary under ``large_margin`` (an experiment whose stage did not end is not
trained: ``compare`` resumes it). ``train --resume`` continues the stage when
it had started (from ``checkpoints/large_margin/last.ckpt``), else the main
run then the stage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from lightning import Callback

from ..models.checkpoint import load_checkpoint
from ..config import LargeMarginConfig, loss_param_names
from ..io import PathLike, atomic_path, atomic_write_text

__all__ = ["stage_task_params", "start_checkpoint", "StartFromWeights", "LargeMarginPaths"]


def stage_task_params(params: dict, loss_class: type, stage: LargeMarginConfig) -> dict:
    """task.params of the stage: the main run's, with the stage's chunks and fixed margin

    Parameters
    ----------
    params : dict
        The main run's task.params.
    loss_class : type
        The task's loss.
    stage : LargeMarginConfig
        The ``large_margin:`` section.
    """
    stage_params = {**params, "duration": stage.duration, "min_duration": stage.duration, "margin": stage.margin}
    for key in ("batches_per_epoch", "num_classes_per_batch"):
        if getattr(stage, key) is not None:
            stage_params[key] = getattr(stage, key)
    if "inter_topk" in loss_param_names(loss_class):
        stage_params["inter_topk"] = 0  # WeSpeaker's do_lm: no hard-impostor penalty in this stage
    return stage_params


class LargeMarginPaths:
    """Where the stage of an experiment writes

    Parameters
    ----------
    checkpoints : Path
        The experiment's checkpoints/ directory.

    Attributes
    ----------
    directory : Path
        checkpoints/large_margin/: the stage's ``last.ckpt``.
    main_summary : Path
        checkpoints/main.json: the main run's summary, written when the stage begins (``--resume``).
    main_checkpoint : Path
        checkpoints/main.ckpt: the main run's best.ckpt, once the stage ended.
    """

    def __init__(self, checkpoints: PathLike):
        checkpoints = Path(checkpoints)
        self.best = checkpoints / "best.ckpt"
        self.directory = checkpoints / "large_margin"
        self.last = self.directory / "last.ckpt"
        self.main_summary = checkpoints / "main.json"
        self.main_checkpoint = checkpoints / "main.ckpt"

    def started(self) -> bool:
        """Whether the main run ended and the stage began (``--resume`` then continues the stage)"""
        return self.main_summary.is_file()

    def begin(self, main_summary: dict) -> None:
        """Record the main run's summary (the stage has begun)"""
        atomic_write_text(self.main_summary, json.dumps(main_summary, indent=2) + "\n")

    def read_main_summary(self) -> dict:
        return json.loads(self.main_summary.read_text())

    def finish(self) -> None:
        """Keep the main run's best.ckpt as main.ckpt, make the stage's final weights best.ckpt (atomically)"""
        if not self.main_checkpoint.is_file():
            with atomic_path(self.main_checkpoint) as tmp:
                shutil.copyfile(self.best, tmp)
        with atomic_path(self.best) as tmp:
            shutil.copyfile(self.last, tmp)


def start_checkpoint(checkpoints: PathLike, average: bool) -> Path:
    """The checkpoint the stage starts from: average.ckpt with checkpoint averaging, else the main run's last.ckpt"""
    from .averaging import AVERAGE

    checkpoints = Path(checkpoints)
    return checkpoints / (AVERAGE if average else "last.ckpt")


class StartFromWeights(Callback):
    """Loads a checkpoint's weights, loss head included, into the model before its first step

    At ``on_fit_start``, once ``Model.setup`` has built the loss (which
    pyannote.audio builds afresh for the task), so that the loss' parameters
    are loaded too. Not for a resumed stage, whose checkpoint has its weights.

    Parameters
    ----------
    path : str or Path
        Checkpoint of the same architecture and task classes.
    trust : bool, optional
        See :func:`pyannote_embloss.models.checkpoint.load_checkpoint`.
    """

    def __init__(self, path: PathLike, trust: bool = False):
        self.path = Path(path)
        self.state_dict_ = load_checkpoint(self.path, trust=trust)["state_dict"]

    def on_fit_start(self, trainer, pl_module):
        with torch.no_grad():
            pl_module.load_state_dict(self.state_dict_, strict=True)
