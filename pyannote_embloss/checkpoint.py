"""Safe checkpoint loading: weights only, with an explicit allowlist

pyannote.audio's ``Model.from_pretrained`` unpickles checkpoints with
``weights_only=False``: loading a checkpoint someone sent you runs whatever
code its pickle holds. Every loading path of this plugin (``load``,
``hubconf``, ``evaluate``, ``apply``, ``export``, ``train --pretrained`` and
``--resume``) goes through this module instead:

* ``torch.load(weights_only=True)``, with only the classes that pyannote.audio
  and this plugin put in checkpoints allowed (:data:`SAFE_GLOBALS`);
* the architecture named by the checkpoint must be a pyannote.audio ``Model``
  from ``pyannote_embloss`` or ``pyannote.audio`` (importing any other module
  would run its code too).

A checkpoint that needs anything else is refused with
:class:`~pyannote_embloss.errors.UntrustedCheckpointError`, naming the global.
Pass ``trust=True`` (``--trust-checkpoint`` on the command line) to load a
file you trust the old way.

It is also the one place where a checkpoint becomes an inference model, for
every architecture alike:

* the training loss' parameters (``loss_func.*``: classifier weights,
  centers) are dropped (:func:`drop_loss_parameters`);
* a checkpoint without ``hyper_parameters`` (pyannote.audio's distributed
  ``pytorch_model.bin``, written by its ``wespeaker/convert.py``) is built
  with its architecture's defaults, as ``Model.from_pretrained`` does;
* pyannote.audio's ``WeSpeakerResNet34`` is loaded as the plugin's subclass
  of it (same weights, safe on short audio and exportable to ONNX:
  :data:`pyannote_embloss.models.UPGRADES`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import pickle
import re
from pathlib import Path
from typing import Iterator

import torch

from .errors import DataError, MissingFileError, UntrustedCheckpointError
from .io import PathLike

__all__ = [
    "LOSS_PREFIX",
    "SAFE_GLOBALS",
    "TRUSTED_MODULES",
    "drop_loss_parameters",
    "safe_globals",
    "load_checkpoint",
    "load_model_checkpoint",
]

#: architecture modules a checkpoint may name without trust
TRUSTED_MODULES = ("pyannote_embloss.", "pyannote.audio.")

#: prefix of the training loss' parameters in checkpoints (see SpeakerEmbeddingTask.setup_loss_func)
LOSS_PREFIX = "loss_func."

#: what a model needs from a checkpoint (the rest is the training's: optimizer, loops, callbacks)
MODEL_KEYS = ("state_dict", "hyper_parameters", "pyannote.audio", "pytorch-lightning_version")


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


def architecture_class(checkpoint: dict, path: PathLike, trust: bool = False):
    """The pyannote.audio Model class a checkpoint was saved from

    Raises
    ------
    DataError
        When `checkpoint` is not a pyannote.audio model checkpoint.
    UntrustedCheckpointError
        When its architecture is outside :data:`TRUSTED_MODULES` and not `trust`.
    """
    from pyannote.audio.core.model import Model

    missing = [key for key in ("state_dict", "pyannote.audio") if key not in checkpoint]
    if missing:
        raise DataError(f"'{path}' is not a pyannote.audio model checkpoint (no {', '.join(missing)}).")
    architecture = checkpoint["pyannote.audio"].get("architecture", {})
    if not {"module", "class"} <= set(architecture):
        raise DataError(f"'{path}' is not a pyannote.audio model checkpoint (it does not name its architecture).")
    module_name, class_name = str(architecture["module"]), str(architecture["class"])
    if not trust and not module_name.startswith(TRUSTED_MODULES):
        raise UntrustedCheckpointError(
            f"Refusing to load checkpoint '{path}': its architecture {module_name}.{class_name} is not from "
            f"{' or '.join(m.rstrip('.') for m in TRUSTED_MODULES)}, and importing it would run its code. "
            "If you trust this file, load it with --trust-checkpoint (trust=True in Python)."
        )
    try:
        Klass = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise DataError(
            f"Checkpoint '{path}' was saved from {module_name}.{class_name}, which cannot be imported here ({error})."
        ) from error
    if not (isinstance(Klass, type) and issubclass(Klass, Model)):
        raise DataError(f"Checkpoint '{path}' names {module_name}.{class_name}, which is not a pyannote.audio Model.")
    from .models import UPGRADES

    return UPGRADES.get(Klass, Klass)


def load_model_checkpoint(path: PathLike, map_location="cpu", trust: bool = False, strict: bool = True):
    """A pyannote.audio Model from its checkpoint, safely

    The weights-only equivalent of ``pyannote.audio.Model.from_pretrained``
    for local files, without the training loss' parameters (for any
    architecture) and with the architecture's defaults when the checkpoint
    has no ``hyper_parameters``.

    Parameters
    ----------
    path : str or Path
    map_location : optional
        Defaults to "cpu".
    trust : bool, optional
        Allow any pickled object and any architecture module. Defaults to False.
    strict : bool, optional
        Strict state dict loading. Defaults to True.

    Raises
    ------
    MissingFileError, DataError, UntrustedCheckpointError
    """
    from pyannote.audio.utils.dependencies import check_dependencies

    checkpoint = load_checkpoint(path, map_location=map_location, trust=trust)
    Klass = architecture_class(checkpoint, path, trust=trust)
    versions = checkpoint["pyannote.audio"].get("versions", {})
    if "pyannote.audio" in versions:  # as Model.from_pretrained does
        check_dependencies({"pyannote.audio": versions["pyannote.audio"]}, "Model")
    drop_loss_parameters(checkpoint["state_dict"])
    model_checkpoint = {key: checkpoint[key] for key in MODEL_KEYS if key in checkpoint}
    model_checkpoint.setdefault("pytorch-lightning_version", _lightning_version())
    # Lightning builds the model (hyper-parameters, `on_load_checkpoint`, strict weights) from a file
    buffer = io.BytesIO()
    torch.save(model_checkpoint, buffer)
    buffer.seek(0)
    with contextlib.ExitStack() as stack:
        if not trust:
            stack.enter_context(safe_globals())
        try:
            return Klass.load_from_checkpoint(buffer, map_location=map_location, strict=strict, weights_only=not trust)
        except RuntimeError as error:
            lines = str(error).splitlines()
            if not lines or not lines[0].startswith("Error(s) in loading state_dict"):
                raise
            raise DataError(
                f"The weights of '{path}' do not fit {Klass.__name__}: {' '.join(line.strip() for line in lines[1:])}"
            ) from error


def _lightning_version() -> str:
    import lightning

    return lightning.__version__
