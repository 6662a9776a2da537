"""Checkpoint averaging: the mean of the weights of the last N epochs (WeSpeaker's ``average_model.py``)

    checkpoint:
      average_last: 5         # keep the last 5 epoch-end weights, average them

With ``checkpoint.average_last: N``, training keeps the weights of its last N
epochs (``checkpoints/epoch-XXX.ckpt``, weights only, the older ones
deleted as training goes) and, once training ends, writes their mean
(parameters and batch-norm statistics) to ``checkpoints/average.ckpt``,
atomically. It is a complete model checkpoint (the loss' parameters are
averaged too) that every command loads.

**The average is the experiment's model**: it is copied to
``checkpoints/best.ckpt``, which ``evaluate``, ``compare``, ``apply``,
``export`` and ``load`` use by default, as WeSpeaker extracts with its
averaged model. The epoch of lowest development EER (the last one without
development trials), which ``best.ckpt`` is without averaging, is kept as
``checkpoints/best-epoch.ckpt`` (``evaluate EXP --checkpoint best-epoch``;
a bare name is read as ``checkpoints/<name>.ckpt``), and ``training.json``'s
``dev_eer`` is that epoch's. ``training.json`` records the averaged epochs
(``average``). A large-margin stage (:mod:`pyannote_embloss.training.large_margin`)
starts from the average, as WeSpeaker's recipes do.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from lightning import Callback

from ..models.checkpoint import load_checkpoint
from ..io import PathLike, atomic_path

__all__ = ["EpochCheckpoints", "average_state_dicts", "average_checkpoints", "epoch_checkpoints", "AVERAGE", "BEST_EPOCH"]

#: file name of the averaged checkpoint, in the experiment's checkpoints/
AVERAGE = "average.ckpt"
#: the epoch of lowest development EER, when best.ckpt is the average
BEST_EPOCH = "best-epoch.ckpt"
#: epoch checkpoints kept for averaging: epoch-000.ckpt, epoch-001.ckpt, ...
EPOCH_FILE = re.compile(r"^epoch-(\d+)\.ckpt$")

#: what the averaged checkpoint keeps of the last epoch's (besides the averaged state_dict)
KEPT_KEYS = ("hyper_parameters", "pyannote.audio", "pytorch-lightning_version", "epoch", "global_step")


def epoch_checkpoints(directory: PathLike) -> Dict[int, Path]:
    """{epoch: path} of the epoch checkpoints in `directory`, by increasing epoch"""
    found = {}
    for path in Path(directory).glob("epoch-*.ckpt"):
        match = EPOCH_FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


class EpochCheckpoints(Callback):
    """Saves the weights at the end of every epoch, keeping those of the last `keep` epochs

    Parameters
    ----------
    directory : str or Path
        Where ``epoch-XXX.ckpt`` go (the experiment's checkpoints/).
    keep : int
        Number of epochs kept.

    Notes
    -----
    ``on_train_epoch_end`` comes after the epoch's validation. The files are
    weights-only Lightning checkpoints (``trainer.save_checkpoint(...,
    weights_only=True)``, called on every process as Lightning requires).
    A resumed run finds the files of the epochs before the interruption on
    disk: nothing else needs saving in the run's own checkpoints.
    """

    def __init__(self, directory: PathLike, keep: int):
        self.directory = Path(directory)
        self.keep = keep

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.save_checkpoint(self.directory / f"epoch-{trainer.current_epoch:03d}.ckpt", weights_only=True)
        if trainer.is_global_zero:
            for path in list(epoch_checkpoints(self.directory).values())[: -self.keep]:
                path.unlink(missing_ok=True)


def average_state_dicts(state_dicts: Sequence[dict]) -> dict:
    """Element-wise mean of `state_dicts`

    Floating-point tensors are averaged (in float64, then cast back to their
    dtype); the others (e.g. batch-norm's ``num_batches_tracked``) are the
    last state dict's.

    Raises
    ------
    ValueError
        When `state_dicts` is empty or their keys differ.
    """
    if not state_dicts:
        raise ValueError("Nothing to average.")
    keys = list(state_dicts[-1])
    for state_dict in state_dicts:
        if list(state_dict) != keys:
            raise ValueError(f"Cannot average state dicts with different keys: {sorted(set(state_dict) ^ set(keys))}.")
    averaged = {}
    for key in keys:
        last = state_dicts[-1][key]
        if torch.is_tensor(last) and last.is_floating_point():
            total = sum(state_dict[key].double() for state_dict in state_dicts)
            averaged[key] = (total / len(state_dicts)).to(last.dtype)
        else:
            averaged[key] = last
    return averaged


def average_checkpoints(directory: PathLike, last: int, output: Optional[PathLike] = None) -> Optional[dict]:
    """Average the weights of the last `last` epoch checkpoints of `directory` into `output`, atomically

    Parameters
    ----------
    directory : str or Path
        Directory of the ``epoch-XXX.ckpt`` files (:class:`EpochCheckpoints`).
    last : int
        Number of epochs to average. Fewer are averaged (with a warning) when
        training ran fewer epochs.
    output : str or Path, optional
        Defaults to `directory`/:data:`AVERAGE`.

    Returns
    -------
    average : dict or None
        {"checkpoint": output path, "epochs": averaged epochs}; None when
        there is no epoch checkpoint.
    """
    epochs = list(epoch_checkpoints(directory).items())[-last:]
    if not epochs:
        return None
    if len(epochs) < last:
        warnings.warn(f"checkpoint.average_last is {last}, but only {len(epochs)} epoch(s) were trained: averaging those.")
    checkpoints = [load_checkpoint(path) for _, path in epochs]
    averaged = {key: checkpoints[-1][key] for key in KEPT_KEYS if key in checkpoints[-1]}
    averaged["state_dict"] = average_state_dicts([checkpoint["state_dict"] for checkpoint in checkpoints])
    averaged["averaged_epochs"] = [epoch for epoch, _ in epochs]
    output = Path(output) if output is not None else Path(directory) / AVERAGE
    with atomic_path(output) as tmp:
        torch.save(averaged, tmp)
    return {"checkpoint": str(output), "epochs": averaged["averaged_epochs"]}
