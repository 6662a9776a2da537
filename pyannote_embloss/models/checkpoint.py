"""Safe checkpoint reading: weights only, with an explicit allowlist

pyannote.audio's ``Model.from_pretrained`` unpickles checkpoints with
``weights_only=False``: loading a checkpoint someone sent you runs whatever
code its pickle holds. Every checkpoint this plugin reads (``load``,
``hubconf``, ``evaluate``, ``apply``, ``export``, ``train --pretrained`` and
``--resume``) is read by :func:`load_checkpoint` instead:
``torch.load(weights_only=True)``, with only the classes that pyannote.audio
and this plugin put in checkpoints allowed (:data:`SAFE_GLOBALS`).

A checkpoint that needs anything else is refused with
:class:`~pyannote_embloss.errors.UntrustedCheckpointError`, naming the global.
Pass ``trust=True`` (``--trust-checkpoint`` on the command line) to load a
file you trust the old way.

Turning a checkpoint into a model (trusted architectures, the training
loss' parameters dropped, pyannote.audio's distributed checkpoints) is
:mod:`pyannote_embloss.inference.loading`'s job. This module imports nothing of the
plugin but its errors and I/O helpers, so that the models can use it.
"""

from __future__ import annotations

import contextlib
import pickle
import re
from pathlib import Path
from typing import Iterator

import torch

from ..errors import DataError, MissingFileError, UntrustedCheckpointError
from ..io import PathLike

__all__ = [
    "LOSS_PREFIX",
    "SAFE_GLOBALS",
    "drop_loss_parameters",
    "safe_globals",
    "load_checkpoint",
]

#: prefix of the training loss' parameters in checkpoints (see SpeakerEmbeddingTask.setup_loss_func)
LOSS_PREFIX = "loss_func."


def drop_loss_parameters(state_dict: dict) -> list:
    """Remove the training loss' parameters (``loss_func.*``) from `state_dict`, in place

    Returns
    -------
    dropped : list of str
        The removed keys.
    """
    dropped = [key for key in state_dict if key.startswith(LOSS_PREFIX)]
    for key in dropped:
        del state_dict[key]
    return dropped


def _safe_globals() -> list:
    from pyannote.audio.core.task import Problem, Resolution, Specifications

    allowed = [Specifications, Problem, Resolution]
    try:
        from lightning.fabric.utilities.data import AttributeDict

        allowed.append(AttributeDict)
    except ImportError:  # pragma: no cover
        pass
    return allowed


#: classes (besides tensors and plain containers) allowed in checkpoints
SAFE_GLOBALS = _safe_globals()


@contextlib.contextmanager
def safe_globals() -> Iterator[None]:
    """Allow :data:`SAFE_GLOBALS` in ``torch.load(weights_only=True)`` within the block"""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        yield


_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def untrusted_error(path: PathLike, error: Exception) -> UntrustedCheckpointError:
    """The error to raise when a weights-only load of `path` failed with `error`"""
    match = _UNSUPPORTED.search(str(error))
    what = f"the global '{match.group(1)}'" if match else f"something that is not plain weights ({error})"
    return UntrustedCheckpointError(
        f"Refusing to load checkpoint '{path}': unpickling it needs {what}, which is not among the classes "
        "pyannote.audio and pyannote-embloss put in checkpoints, so it could run code. If you trust this file, "
        "load it with --trust-checkpoint (trust=True in Python)."
    )


def load_checkpoint(path: PathLike, map_location="cpu", trust: bool = False) -> dict:
    """Read a checkpoint file

    Parameters
    ----------
    path : str or Path
    map_location : optional
        As in ``torch.load``. Defaults to "cpu".
    trust : bool, optional
        Unpickle anything the file holds (``weights_only=False``). Defaults to False.

    Returns
    -------
    checkpoint : dict

    Raises
    ------
    MissingFileError
        When `path` does not exist.
    UntrustedCheckpointError
        When the file needs a class outside :data:`SAFE_GLOBALS`, naming it.
    DataError
        When the file is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"No checkpoint '{path}'.")
    try:
        if trust:
            return torch.load(path, map_location=map_location, weights_only=False)
        with safe_globals():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if trust:
            raise DataError(f"Could not read checkpoint '{path}': {error}") from error
        raise untrusted_error(path, error) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise DataError(f"Could not read checkpoint '{path}' ({type(error).__name__}: {error}).") from error

