"""Model loading: the one place where a checkpoint, an experiment or a Model becomes an inference model

Every caller (``pyannote_embloss.load``, ``hubconf``, ``evaluate``, ``compare``,
``verify``/``score``, ``apply``, ``export``, the diarization pipelines,
``train --pretrained``) loads models with :func:`load_model`::

    load_model("experiments/aam/checkpoints/best.ckpt")   # a checkpoint file
    load_model("experiments/aam")                          # its checkpoints/best.ckpt, or its
                                                           # training-free architecture
    load_model(Experiment.load("experiments/aam"), checkpoint="experiments/aam/checkpoints/last.ckpt")

Checkpoint files are read safely by :mod:`pyannote_embloss.models.checkpoint`
(weights only, allow-listed classes); this module adds what turns them into
a model, for every architecture alike:

* the architecture the checkpoint names must be a pyannote.audio ``Model``
  from ``pyannote_embloss`` or ``pyannote.audio`` (:data:`TRUSTED_MODULES`:
  importing any other module would run its code), unless ``trust=True``;
* the training loss' parameters (``loss_func.*``: classifier weights,
  centers) are dropped;
* a checkpoint without ``hyper_parameters`` (pyannote.audio's distributed
  ``pytorch_model.bin``, written by its ``wespeaker/convert.py``) is built
  with its architecture's defaults, as ``Model.from_pretrained`` does;
* pyannote.audio's ``WeSpeakerResNet34`` is loaded as the plugin's subclass
  of it (same weights, safe on short audio and exportable to ONNX:
  :data:`pyannote_embloss.models.UPGRADES`).

Layering (no import cycle): :mod:`~pyannote_embloss.models.checkpoint` (reading
files) is below :mod:`~pyannote_embloss.models`, which uses it; this module is
above both and above :mod:`~pyannote_embloss.experiment`, and nothing it
imports imports it back.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path
from typing import Optional, Tuple, Union

import torch
from pyannote.audio.core.model import Model

from ..models.checkpoint import drop_loss_parameters, load_checkpoint, safe_globals
from ..errors import ConfigError, DataError, MissingFileError, UntrustedCheckpointError
from ..experiment import CONFIG, Experiment
from ..io import PathLike
from ..models import UPGRADES, get_architecture

__all__ = [
    "TRUSTED_MODULES",
    "architecture_class",
    "checkpoint_of",
    "experiment_of",
    "load_model",
    "load_model_checkpoint",
]

#: architecture modules a checkpoint may name without trust
TRUSTED_MODULES = ("pyannote_embloss.", "pyannote.audio.")

#: what a model needs from a checkpoint (the rest is the training's: optimizer, loops, callbacks)
MODEL_KEYS = ("state_dict", "hyper_parameters", "pyannote.audio", "pytorch-lightning_version")


def load_model(
    source: Union[PathLike, Experiment, Model],
    checkpoint: Optional[PathLike] = None,
    device: Optional[Union[str, torch.device]] = None,
    trust: bool = False,
) -> Model:
    """Load an embedding model for inference

    Parameters
    ----------
    source : str, Path, Experiment or Model
        Checkpoint written by ``pyannote-audio-emb train`` (e.g.
        ``experiments/aam/checkpoints/best.ckpt``), an experiment (or its
        directory: its ``checkpoints/best.ckpt``, or the model of its
        training-free architecture), or an already built Model.
    checkpoint : str or Path, optional
        With an experiment: the checkpoint to load instead of its best one.
    device : str or torch.device, optional
        Defaults to CPU (as pyannote.audio).
    trust : bool, optional
        Unpickle anything the checkpoint holds and import any architecture.
        Defaults to False: only weights and the classes pyannote.audio and
        this plugin save are loaded (see :mod:`pyannote_embloss.models.checkpoint`).

    Returns
    -------
    model : Model
        In eval mode, on `device`, without the training loss (classifier).

    Raises
    ------
    MissingFileError
        When the checkpoint does not exist (for an experiment, saying how to train it).
    ConfigError
        When `checkpoint` is given with a source that is not an experiment,
        or the experiment's config.yml is invalid.
    UntrustedCheckpointError
        When the checkpoint holds more than weights and allow-listed classes.
    DataError
        When the file is not a pyannote.audio model checkpoint.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(source, Model):
        model = source
    else:
        experiment, path = _locate(source, checkpoint)
        if path is None:
            model = _training_free_model(experiment)
        else:
            model = load_model_checkpoint(path, map_location=device, trust=trust)
    model.eval()
    return model.to(device)


def _locate(source: Union[PathLike, Experiment], checkpoint: Optional[PathLike]) -> Tuple[Optional[Experiment], Optional[Path]]:
    """(experiment, checkpoint file) `source` is loaded from: the file is None for a training-free experiment"""
    if isinstance(source, Experiment):
        return source, source.checkpoint(checkpoint)
    path = Path(source).expanduser()
    best = path / "checkpoints" / "best.ckpt"
    if path.is_dir() and checkpoint is None and best.is_file():
        return None, best
    if path.is_dir() and (path / CONFIG).is_file():
        return _locate(Experiment.load(path), checkpoint)
    if checkpoint is not None:
        raise ConfigError(f"'{path}' is not an experiment directory: pass the checkpoint '{checkpoint}' alone.")
    if not path.is_file():
        raise MissingFileError(
            f"No checkpoint '{path}': pass the path of a .ckpt written by "
            "`pyannote-audio-emb train` (e.g. EXPERIMENT_DIR/checkpoints/best.ckpt) "
            "or an experiment directory that has one."
        )
    return None, path


def checkpoint_of(source: Union[PathLike, Experiment], checkpoint: Optional[PathLike] = None) -> Optional[Path]:
    """The checkpoint file :func:`load_model` loads for `source` and `checkpoint` (None: a training-free experiment)

    Raises
    ------
    MissingFileError, ConfigError
        As :func:`load_model`.
    """
    return _locate(source, checkpoint)[1]


def _training_free_model(experiment: Experiment) -> Model:
    """The model of an experiment whose architecture needs no training, built from its config.yml"""
    section = experiment.config.architecture
    try:
        return get_architecture(section.name)(**section.params)
    except TypeError as e:
        raise ConfigError(
            f"{experiment.directory / CONFIG}: invalid architecture.params for '{section.name}': {e}."
        ) from e


def experiment_of(checkpoint: Union[PathLike, Model]) -> Tuple[Optional[Path], Optional[Path]]:
    """(experiment directory, checkpoint file) that :func:`load_model` loads `checkpoint` from

    The experiment is None when `checkpoint` is a Model, or a file outside an
    experiment's checkpoints/; the checkpoint file is None for a
    training-free experiment.
    """
    if isinstance(checkpoint, Model):
        return None, None
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        best = path / "checkpoints" / "best.ckpt"
        return path, best if best.is_file() else None
    directory = path.parent.parent
    in_experiment = path.parent.name == "checkpoints" and (directory / CONFIG).is_file()
    return (directory if in_experiment else None), path


def architecture_class(checkpoint: dict, path: PathLike, trust: bool = False):
    """The pyannote.audio Model class a checkpoint was saved from

    Parameters
    ----------
    checkpoint : dict
        As read by :func:`pyannote_embloss.models.checkpoint.load_checkpoint`.
    path : str or Path
        Its file, for messages.
    trust : bool, optional
        Import any architecture module. Defaults to False.

    Raises
    ------
    DataError
        When `checkpoint` is not a pyannote.audio model checkpoint.
    UntrustedCheckpointError
        When its architecture is outside :data:`TRUSTED_MODULES` and not `trust`.
    """
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
    return UPGRADES.get(Klass, Klass)


def load_model_checkpoint(path: PathLike, map_location="cpu", trust: bool = False, strict: bool = True) -> Model:
    """A pyannote.audio Model from its checkpoint file, safely

    The weights-only equivalent of ``pyannote.audio.Model.from_pretrained``
    for local files, without the training loss' parameters (for any
    architecture) and with the architecture's defaults when the checkpoint
    has no ``hyper_parameters``. :func:`load_model` also puts it in eval mode.

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
