"""The experiment configuration: `config.yml`, parsed and checked once into typed sections

This module is the one validator of config.yml, and sits at the bottom of the
package: the stages (data, models, losses, inference, evaluation, tasks,
training) import it, never the reverse. :meth:`ExperimentConfig.read` (what
``Experiment.load`` calls) reads an experiment's ``config.yml`` once into an
:class:`ExperimentConfig`, and each stage receives its own section: the task
builder the :class:`TaskConfig`, the model builder the
:class:`ArchitectureConfig`, the optimizer its :class:`OptimizerConfig` and
:class:`SchedulerConfig`, the margin schedule its
:class:`MarginSchedulerConfig`, the augmentation its checked mapping
(:func:`check_augmentation`), the trainer its mapping of ``lightning.Trainer``
arguments. Tasks, losses and models take these values as they are: they
re-check nothing.

Names resolve through the registries declared here (:data:`LOSSES`,
:data:`ARCHITECTURES`; optimizers and schedulers by name in torch.optim, as
WeSpeaker does it): an implementation is imported only when a section that
names it is checked or built (:func:`resolve`).

Every error a config.yml can hold is reported here, before anything runs,
as a one-line :class:`~pyannote_embloss.errors.ConfigError` naming the file,
the key, the value and what to do (``pyannote-audio-emb`` exits with code 2):

* an unknown section or key names the closest valid one ("did you mean ...?");
* names are resolved: task (and loss), architecture, optimizer, scheduler;
* parameters are checked against the constructor that takes them (task and
  loss, architecture, optimizer, scheduler, ``lightning.Trainer``), numbers
  against their range (:data:`PARAM_RANGES`: ``duration > 0``,
  ``batches_per_epoch >= 1``, ``num_classes_per_batch >= 2``, ``lr > 0``, ...);
* the loss, the optimizer and its scheduler are built once on a dummy
  parameter, so that what their constructors refuse is refused here;
* sections that go together: a scheduler needs ``task.params.batches_per_epoch``,
  a ``margin_scheduler`` a loss with a margin (``has_margin``).

Only two checks need the training data: a chunk ``duration`` longer than
every training file and more ``num_classes_per_batch`` than training
classes. They run when the task prepares its data, which training does
before it starts (:func:`pyannote_embloss.training.run.train`).

A config.yml checked once need not pay for it again: an experiment whose
``evaluate`` wrote its results remembers it (``EXP/.config-checked.json``,
:meth:`ExperimentConfig.remember`), and :meth:`ExperimentConfig.read` then
skips the checks that import what the config names, as long as config.yml's
text, this plugin's code and the packages checked against are the same
(:func:`validation_stamp`). Any change checks everything again.

:meth:`ExperimentConfig.to_dict` gives the validated configuration as the
plain mapping that :mod:`pyannote_embloss.training.run_config` hashes.

The walk of a value: ``margin``, from config.yml to the loss (6 stops)
----------------------------------------------------------------------

1. ``config.yml``: ``task: {name: aam, params: {margin: 0.2}}``.
2. :meth:`TaskConfig.parse` (here): ``aam`` is found in :data:`LOSSES`, ``margin``
   among its loss' parameters, its value in :data:`PARAM_RANGES`; the only check.
3. :func:`pyannote_embloss.training.run.build_task`: ``section.task_class(protocol, **section.params)``.
4. :class:`pyannote_embloss.tasks.base.SpeakerEmbeddingTask` ``__init__``: keeps it in ``loss_params``.
5. ``SpeakerEmbeddingTask.setup_loss_func``: ``self.loss_class(..., **self.loss_params)``.
6. :class:`pyannote_embloss.losses.margin.AdditiveAngularMarginLoss`: ``self.margin``, which ``forward`` uses.

A ``margin_scheduler`` then moves ``loss_func.margin`` at each step
(:class:`pyannote_embloss.training.schedules.MarginScheduler`, which starts
from :attr:`TaskConfig.loss_params`), and a ``large_margin`` stage trains
again with its own margin (:mod:`pyannote_embloss.training.large_margin`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import inspect
import json
import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple

import yaml

from .errors import ConfigError, did_you_mean
from .io import audio_files, config_directory, split_files, write_if_changed

__all__ = [
    "SECTIONS",
    "PARAM_RANGES",
    "Range",
    "ArchitectureConfig",
    "TaskConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "MarginSchedulerConfig",
    "CheckpointConfig",
    "LargeMarginConfig",
    "ExperimentConfig",
]

#: config.yml's sections
SECTIONS = (
    "protocol",
    "seed",
    "task",
    "architecture",
    "optimizer",
    "scheduler",
    "margin_scheduler",
    "augmentation",
    "trainer",
    "logger",
    "checkpoint",
    "large_margin",
    "description",
)
#: the sections of an experiment whose architecture needs no training
UNTRAINED_SECTIONS = ("protocol", "seed", "architecture", "description")
LOGGERS = ("csv", "tensorboard")
#: lightning.Trainer arguments of every run unless config.yml sets them
TRAINER_DEFAULTS = {"max_epochs": 10, "log_every_n_steps": 1, "num_sanity_val_steps": 0}
#: lightning.Trainer arguments that training sets itself
TRAINER_RESERVED = ("default_root_dir", "callbacks", "logger", "enable_progress_bar", "enable_model_summary")


@dataclass(frozen=True)
class Range:
    """The valid values of a number: integer or not, and its bounds

    Attributes
    ----------
    minimum, maximum : float, optional
        Bounds (None: unbounded).
    exclusive : bool
        The minimum itself is not valid.
    integer : bool
        Only integers are valid.
    """

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive: bool = False
    integer: bool = False

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.minimum is not None and self.maximum is not None:
            return f"{kind} between {self.minimum:g} and {self.maximum:g}"
        if self.minimum is not None:
            return f"{kind} {'>' if self.exclusive else '>='} {self.minimum:g}"
        return kind

    def check(self, value, name: str, path=None) -> None:
        """Raise a ConfigError naming `name` (and the file `path`) when `value` is not in the range"""
        numeric = isinstance(value, int if self.integer else (int, float)) and not isinstance(value, bool)
        valid = numeric and not (
            (self.minimum is not None and (value < self.minimum or (self.exclusive and value == self.minimum)))
            or (self.maximum is not None and value > self.maximum)
        )
        if not valid:
            where = f"{path}: " if path is not None else ""
            raise ConfigError(f"{where}{name} must be {self} (got {value!r}).")


#: ranges of the numeric parameters of tasks and losses (task.params)
PARAM_RANGES: Dict[str, Range] = {
    "duration": Range(0, exclusive=True),
    "min_duration": Range(0, exclusive=True),
    "num_classes_per_batch": Range(2, integer=True),
    "num_chunks_per_class": Range(1, integer=True),
    "batches_per_epoch": Range(1, integer=True),
    "num_workers": Range(0, integer=True),
    "max_bad_files": Range(0, 1),
    "trial_min_duration": Range(0, exclusive=True),
    "max_trials": Range(1, integer=True),
    "margin": Range(0),
    "scale": Range(0, exclusive=True),
    "alpha": Range(0, exclusive=True),
    "loss_weight": Range(0),
    "sub_centers": Range(1, integer=True),
    "inter_topk": Range(0, integer=True),
    "inter_topk_margin": Range(0),
}
LEARNING_RATE = Range(0, exclusive=True)
POSITIVE_INTEGER = Range(1, integer=True)
LR_MULTIPLIER = Range(0)


#: packages whose classes config.yml's checks read (signatures, constructors): a new version checks again
CHECKED_AGAINST = ("pyannote.audio", "torch", "lightning", "pytorch-metric-learning", "tensorboard")


def validation_stamp(text: str) -> str:
    """Digest of what decides whether config.yml `text` is valid: the text, this plugin's code and :data:`CHECKED_AGAINST`

    The plugin's code is its source files' names, sizes and modification
    times (a development tree edited checks again), the packages' their versions.
    """
    from importlib.metadata import PackageNotFoundError, version

    parts = [hashlib.sha256(text.encode()).hexdigest()]
    for package in CHECKED_AGAINST:
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} -")
    root = Path(__file__).parent
    for source in sorted(root.rglob("*.py")):
        status = source.stat()
        parts.append(f"{source.relative_to(root)} {status.st_size} {status.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _check_keys(mapping: dict, valid: Iterable[str], path, where: str, listing: Optional[str] = None) -> None:
    """Raise a ConfigError on the first key of `mapping` not in `valid`, naming the closest valid one

    `listing` says what is valid (default: "valid keys: <valid>").
    """
    valid = list(valid)
    for key in mapping:
        if key not in valid:
            raise ConfigError(
                f"{path}: unknown key {key!r} in {where}{did_you_mean(key, valid)}; "
                f"{listing or 'valid keys: ' + ', '.join(valid)}."
            )


def _mapping(value, path, where: str, expected: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{where}' must be a mapping ({expected}), got {value!r}.")
    return dict(value)


def _named_section(
    config: dict, key: str, path, default_name: Optional[str] = None, extra: Iterable[str] = ()
) -> tuple:
    """(name, params) of a section made of a 'name' and optional 'params' (and the `extra` keys, not returned)"""
    value = config.get(key, {} if default_name else None)
    if value is None:
        raise ConfigError(f"{path}: missing '{key}' section (with a 'name' and optional 'params').")
    value = _mapping(value, path, key, "with 'name' and 'params'")
    _check_keys(value, ("name", "params", *extra), path, f"'{key}'")
    name = value.get("name", default_name)
    if not name:
        raise ConfigError(f"{path}: '{key}' has no 'name'.")
    return str(name), _mapping(value.get("params"), path, f"{key}.params", "parameter: value")


def _signature(function, exclude: Iterable[str]) -> tuple:
    """(names of the parameters of `function` but `exclude`, whether it takes **kwargs)"""
    parameters = inspect.signature(function).parameters
    names = [n for n, p in parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n not in exclude]
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters.values())


# ---------------------------------------------------------------- registries

#: The registries: each name config.yml can give, and the "module:attribute" that implements it. Names are
#: listed (and misspellings suggested) from these tables alone; an implementation is imported, by
#: :func:`resolve`, only when a section that names it is checked or built. So this module sits below
#: every stage: losses, models and tasks import it, never the reverse. Optimizers and schedulers resolve
#: the same way, by name, in torch.optim (``getattr(torch.optim, name)``).
LOSSES: Dict[str, str] = {
    "softmax": "pyannote_embloss.losses.softmax:SoftmaxLoss",
    "center": "pyannote_embloss.losses.center:CenterLoss",
    "coco": "pyannote_embloss.losses.coco:CongenerousCosineLoss",
    "aam": "pyannote_embloss.losses.margin:AdditiveAngularMarginLoss",
    "am": "pyannote_embloss.losses.margin:AdditiveMarginLoss",
    "subcenter_aam": "pyannote_embloss.losses.subcenter:SubCenterAdditiveAngularMarginLoss",
    "contrastive": "pyannote_embloss.losses.contrastive:ContrastiveLoss",
    "triplet": "pyannote_embloss.losses.triplet:TripletLoss",
}
#: one task per loss, under the loss' name (derived from LOSSES by :mod:`pyannote_embloss.tasks`)
TASKS = "pyannote_embloss.tasks:TASKS"
ARCHITECTURES: Dict[str, str] = {
    "SincTDNN": "pyannote_embloss.models.sinctdnn:SincTDNN",
    "ECAPATDNN": "pyannote_embloss.models.ecapa:ECAPATDNN",
    "WeSpeakerResNet34": "pyannote_embloss.models.wespeaker:WeSpeakerResNet34",
    "LogMelStatistics": "pyannote_embloss.models.logmel:LogMelStatistics",
}
#: resolves an architecture name, or any "module.Class" path of a pyannote.audio Model
ARCHITECTURE_RESOLVER = "pyannote_embloss.models:get_architecture"


def resolve(path: str):
    """The attribute a registry's "module:attribute" `path` names (its module imported then)"""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def known(registry: Dict[str, str], name, kind: str) -> str:
    """`name` when `registry` has it; else a ConfigError listing the known names and the closest one"""
    if isinstance(name, str) and name in registry:
        return name
    raise ConfigError(f"Unknown {kind} {name!r}{did_you_mean(str(name), registry)}. Known {kind}s: {', '.join(registry)}.")


def parameter_names(function, exclude: Iterable[str] = ("self",)) -> list:
    """Names of the keyword parameters of `function` but `exclude` (not *args, **kwargs)"""
    return _signature(function, exclude)[0]


def parameter_defaults(function) -> Dict[str, Any]:
    """Default value of each parameter of `function` that has one"""
    return {
        name: p.default for name, p in inspect.signature(function).parameters.items() if p.default is not p.empty
    }


# ---------------------------------------------------------------- schedules


@dataclass(frozen=True)
class SchedulerConfig:
    """`scheduler:` section: a torch.optim.lr_scheduler class, its keyword arguments, its interval

    Attributes
    ----------
    name : str
        Name of a torch.optim.lr_scheduler class, e.g. "OneCycleLR".
    params : dict
        Its keyword arguments; those of SequentialLR and ChainedScheduler hold
        "schedulers", a list of {"name", "params"} mappings.
    interval : {"step", "epoch"}
        Stepped after every optimizer step, or every epoch.
    """

    name: str
    params: Dict[str, Any] = field(default_factory=dict)
    interval: str = "step"


@dataclass(frozen=True)
class MarginSchedulerConfig:
    """`margin_scheduler:` section: the loss' margin, `initial` until start_step, then up to its own at end_step

    See :func:`pyannote_embloss.training.schedules.margin_at`.
    """

    initial: float = 0.0
    start_step: int = 0
    end_step: int = 0
    increase: str = "linear"


def _scheduler_class(name, path: Path):
    import torch

    Klass = getattr(torch.optim.lr_scheduler, str(name), None)
    if not (isinstance(Klass, type) and issubclass(Klass, torch.optim.lr_scheduler.LRScheduler)):
        known = sorted(
            n
            for n, c in vars(torch.optim.lr_scheduler).items()
            if isinstance(c, type) and issubclass(c, torch.optim.lr_scheduler.LRScheduler) and not n.startswith("_")
            and n != "LRScheduler"
        )
        raise ConfigError(
            f"{path}: unknown scheduler {name!r}{did_you_mean(name, known)}: use the name of a "
            f"torch.optim.lr_scheduler class ({', '.join(known)})."
        )
    return Klass


def _check_spec(spec, path: Path, where: str) -> dict:
    if not isinstance(spec, dict) or "name" not in spec:
        raise ConfigError(f"{path}: '{where}' needs a 'name' (a torch.optim.lr_scheduler class) and 'params'.")
    for key in spec:
        if key not in ("name", "params", "interval"):
            raise ConfigError(
                f"{path}: unknown key {key!r} in '{where}'{did_you_mean(key, ('name', 'params', 'interval'))}: "
                "use name, params, interval."
            )
    Klass = _scheduler_class(spec["name"], path)
    params = dict(spec.get("params") or {})
    accepted = sorted(parameter_names(Klass.__init__, ("self", "optimizer")))
    for key in params:
        if key not in accepted:
            raise ConfigError(
                f"{path}: unknown parameter {key!r} for scheduler {spec['name']}{did_you_mean(key, accepted)}: "
                f"it takes {', '.join(accepted)}."
            )
    if "schedulers" in params:
        if not isinstance(params["schedulers"], list):
            raise ConfigError(f"{path}: '{where}.params.schedulers' must be a list of {{name, params}}.")
        params["schedulers"] = [
            _check_spec(s, path, f"{where}.params.schedulers[{i}]") for i, s in enumerate(params["schedulers"])
        ]
    return {"name": str(spec["name"]), "params": params}


def check_scheduler(section, path: Path) -> Optional[SchedulerConfig]:
    """Validated `scheduler:` section (None when absent)

    Raises
    ------
    ConfigError
        On an unknown scheduler name, parameter or interval.
    """
    if section is None:
        return None
    checked = _check_spec(section, path, "scheduler")
    interval = section.get("interval", "step")
    if interval not in ("step", "epoch"):
        raise ConfigError(f"{path}: scheduler interval must be 'step' or 'epoch' (got {interval!r}).")
    return SchedulerConfig(checked["name"], checked["params"], interval)


def check_margin_scheduler(section, path: Path) -> Optional[MarginSchedulerConfig]:
    """Validated `margin_scheduler:` section (None when absent)"""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'margin_scheduler' must be a mapping (initial, start_step, end_step, increase).")
    keys = ("initial", "start_step", "end_step", "increase")
    for key in section:
        if key not in keys:
            raise ConfigError(
                f"{path}: unknown key {key!r} in 'margin_scheduler'{did_you_mean(key, keys)}: use {', '.join(keys)}."
            )
    initial = section.get("initial", 0.0)
    if isinstance(initial, bool) or not isinstance(initial, (int, float)) or initial < 0:
        raise ConfigError(f"{path}: margin_scheduler.initial must be a number >= 0 (got {initial!r}).")
    for key in ("start_step", "end_step"):
        value = section.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{path}: margin_scheduler.{key} must be an integer >= 0 (got {value!r}).")
    checked = {
        "initial": float(section.get("initial", 0.0)),
        "start_step": int(section.get("start_step", 0)),
        "end_step": int(section.get("end_step", 0)),
        "increase": section.get("increase", "linear"),
    }
    if not 0 <= checked["start_step"] <= checked["end_step"]:
        raise ConfigError(
            f"{path}: margin_scheduler needs 0 <= start_step <= end_step (got {checked['start_step']} and "
            f"{checked['end_step']})."
        )
    if checked["increase"] not in ("linear", "exp"):
        raise ConfigError(f"{path}: margin_scheduler increase must be 'linear' or 'exp' (got {checked['increase']!r}).")
    return MarginSchedulerConfig(**checked)


def _build(spec: dict, optimizer, total: int):
    import torch

    Klass = getattr(torch.optim.lr_scheduler, spec["name"])
    params = dict(spec["params"])
    if "schedulers" in params:
        params["schedulers"] = [_build(s, optimizer, total) for s in params["schedulers"]]
    if spec["name"] == "OneCycleLR":
        params.setdefault("total_steps", total)
        params.setdefault("max_lr", [group["lr"] for group in optimizer.param_groups])
    if spec["name"] == "CosineAnnealingLR":
        params.setdefault("T_max", total)
    return Klass(optimizer, **params)


def build_scheduler(section: SchedulerConfig, optimizer, total_steps: int, total_epochs: int) -> dict:
    """Lightning ``lr_scheduler`` configuration of `optimizer`

    Parameters
    ----------
    section : SchedulerConfig
        The `scheduler:` section (:func:`check_scheduler`).
    total_steps, total_epochs : int
        Length of the run, for OneCycleLR's ``total_steps`` and
        CosineAnnealingLR's ``T_max`` when not given (in steps or epochs, as
        the interval).
    """
    total = total_steps if section.interval == "step" else total_epochs
    spec = {"name": section.name, "params": section.params}
    return {"scheduler": _build(spec, optimizer, total), "interval": section.interval, "frequency": 1}


# ---------------------------------------------------------------- augmentation

#: the augmentation transforms (pyannote_embloss.data.augmentation applies them)
TRANSFORMS = ("babble", "noise", "colored_noise", "reverb", "telephone")
#: G.711's companding laws, the codecs of the `telephone` transform (and test condition)
TELEPHONE_CODECS = ("mu-law", "a-law")
#: what a lost packet of the `telephone` transform becomes: the previous packet again, or silence
CONCEALMENTS = ("repeat", "zero")
#: the Nyquist frequency of the 8 kHz telephone line, Hz: the `telephone` transform's highest band edge
TELEPHONE_NYQUIST = 4000.0
#: which files of a noise or impulse response folder a transform draws from (io.file_subset)
AUGMENTATION_SUBSETS = ("train", "test", "all")


def _range(value, key: str, path: Path, low: float = -math.inf) -> Tuple[float, float]:
    if isinstance(value, (int, float)):
        value = (value, value)
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
        raise ConfigError(f"{path}: augmentation {key} must be a number or a [min, max] pair (got {value!r}).")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi:
        raise ConfigError(f"{path}: augmentation {key} range [{lo}, {hi}] has min > max: write it [{hi}, {lo}].")
    if lo < low:
        raise ConfigError(f"{path}: augmentation {key} must be at least {low} (got [{lo}, {hi}]).")
    return lo, hi


def _probability(value, key: str, path: Path) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{path}: augmentation {key} must be a probability in [0, 1] (got {value!r}).")
    return float(value)


_TRANSFORM_KEYS = {
    "babble": {"snr", "speakers"},
    "noise": {"directory", "snr", "categories", "subset"},
    "colored_noise": {"snr", "f_decay"},
    "reverb": {"directory", "rt60", "num", "subset"},
    "telephone": {"low", "high", "codec", "packet_loss", "concealment"},
}


def _check_telephone(transform: dict, path: Path) -> dict:
    """The `telephone` transform's own keys: band edges, codecs, packet loss (defaults around G.712/G.711)"""
    low = _range(transform.get("low", (200.0, 400.0)), "telephone low (lower band edge, Hz)", path, low=0.0)
    high = _range(transform.get("high", (3000.0, 3600.0)), "telephone high (upper band edge, Hz)", path, low=0.0)
    if high[1] > TELEPHONE_NYQUIST:
        raise ConfigError(
            f"{path}: augmentation telephone high [{high[0]:g}, {high[1]:g}] goes above {TELEPHONE_NYQUIST:g} Hz, "
            "the Nyquist frequency of the 8 kHz line: keep it at most 4000."
        )
    if low[1] >= high[0]:
        raise ConfigError(
            f"{path}: augmentation telephone low [{low[0]:g}, {low[1]:g}] must be below high [{high[0]:g}, {high[1]:g}] "
            "(every lower band edge below every upper one, e.g. low: [200, 400], high: [3000, 3600])."
        )
    codec = transform.get("codec", list(TELEPHONE_CODECS))
    codecs = [codec] if isinstance(codec, str) else codec
    if not isinstance(codecs, (list, tuple)) or not codecs or any(c not in TELEPHONE_CODECS for c in codecs):
        raise ConfigError(
            f"{path}: augmentation telephone codec must be {' or '.join(TELEPHONE_CODECS)}, or a list of them to draw "
            f"from (got {codec!r})."
        )
    loss = _range(transform.get("packet_loss", (0.0, 0.05)), "telephone packet_loss", path, low=0.0)
    if loss[1] > 1.0:
        raise ConfigError(f"{path}: augmentation telephone packet_loss must be a rate in [0, 1] (got [{loss[0]:g}, {loss[1]:g}]).")
    concealment = transform.get("concealment", "repeat")
    if concealment not in CONCEALMENTS:
        raise ConfigError(
            f"{path}: augmentation telephone concealment must be {' or '.join(CONCEALMENTS)} (got {concealment!r})."
        )
    return {"low": low, "high": high, "codec": tuple(dict.fromkeys(codecs)), "packet_loss": loss, "concealment": concealment}


def check_transform(transform, path: Path) -> dict:
    """Validated transform entry of the `augmentation.transforms` list"""
    if not isinstance(transform, dict) or "name" not in transform:
        raise ConfigError(f"{path}: each augmentation transform needs a 'name' ({', '.join(TRANSFORMS)}), got {transform!r}.")
    name = transform["name"]
    if name not in TRANSFORMS:
        raise ConfigError(
            f"{path}: unknown augmentation transform {name!r}{did_you_mean(name, TRANSFORMS)}: use one of "
            f"{', '.join(TRANSFORMS)}."
        )
    valid = sorted(_TRANSFORM_KEYS[name] | {"name", "probability", "weight"})
    unknown = sorted(set(transform) - set(valid))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} for augmentation '{name}'{did_you_mean(unknown[0], valid)}: it takes "
            f"{', '.join(k for k in valid if k != 'name')}."
        )
    checked = {
        "name": name,
        "probability": _probability(transform.get("probability", 1.0), f"'{name}' probability", path),
        "weight": float(transform.get("weight", 1.0)),
    }
    if checked["weight"] <= 0:
        raise ConfigError(f"{path}: augmentation '{name}' weight must be positive.")
    subset = transform.get("subset", "train")
    if subset not in AUGMENTATION_SUBSETS:
        raise ConfigError(f"{path}: augmentation '{name}' subset must be one of {', '.join(AUGMENTATION_SUBSETS)} (got {subset!r}).")
    if name == "babble":
        checked["snr"] = _range(transform.get("snr", (13.0, 20.0)), "babble snr", path)
        checked["speakers"] = tuple(int(v) for v in _range(transform.get("speakers", (3, 6)), "babble speakers", path, low=1))
    elif name == "colored_noise":
        checked["snr"] = _range(transform.get("snr", (5.0, 20.0)), "colored_noise snr", path)
        checked["f_decay"] = _range(transform.get("f_decay", (-2.0, 2.0)), "colored_noise f_decay", path)
    elif name == "noise":
        if "directory" not in transform:
            raise ConfigError(f"{path}: augmentation 'noise' needs a 'directory' of noise audio files (e.g. MUSAN).")
        checked["directory"] = str(config_directory(transform["directory"], "noise directory", path))
        checked["snr"] = None if "snr" not in transform else _range(transform["snr"], "noise snr", path)
        categories = transform.get("categories") or {}
        if not isinstance(categories, dict):
            raise ConfigError(f"{path}: augmentation 'noise' categories must map a category to an SNR range.")
        checked["categories"] = {c: _range(r, f"noise {c} snr", path) for c, r in categories.items()}
        checked["subset"] = subset
        if not split_files(audio_files(Path(checked["directory"])), Path(checked["directory"]), subset):
            raise ConfigError(f"{path}: noise directory '{checked['directory']}' has no audio file ({subset} split).")
    elif name == "reverb":
        checked["directory"] = None
        if transform.get("directory") is not None:
            checked["directory"] = str(config_directory(transform["directory"], "reverb directory", path))
        checked["rt60"] = _range(transform.get("rt60", (0.2, 0.8)), "reverb rt60", path, low=0.05)
        checked["num"] = int(transform.get("num", 200))
        checked["subset"] = subset
    elif name == "telephone":
        checked.update(_check_telephone(transform, path))
    return checked


def check_augmentation(section, path: Path) -> Optional[dict]:
    """Validated `augmentation:` section of config.yml (None when absent)

    Raises
    ------
    ConfigError
        Naming the key or value at fault.
    """
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: 'augmentation' must be a mapping (see pyannote_embloss.data.augmentation).")
    valid = ("speed", "probability", "combine", "transforms")
    unknown = sorted(set(section) - set(valid))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r} in 'augmentation'{did_you_mean(unknown[0], valid)}: use "
            f"{', '.join(valid)}."
        )
    speed = section.get("speed") or [1.0]
    if not isinstance(speed, (list, tuple)) or not all(isinstance(s, (int, float)) and 0.5 <= s <= 2.0 for s in speed):
        raise ConfigError(f"{path}: augmentation speed must be a list of factors between 0.5 and 2 (got {speed!r}).")
    speed = sorted({float(s) for s in speed} | {1.0})
    combine = section.get("combine", "one")
    if combine not in ("one", "all"):
        raise ConfigError(f"{path}: augmentation combine must be 'one' or 'all' (got {combine!r}).")
    transforms = section.get("transforms") or []
    if not isinstance(transforms, list):
        raise ConfigError(f"{path}: augmentation transforms must be a list of {{name: ..., ...}} entries.")
    return {
        "speed": speed,
        "probability": _probability(section.get("probability", 1.0), "probability", path),
        "combine": combine,
        "transforms": [check_transform(t, path) for t in transforms],
    }


# ---------------------------------------------------------------- sections


@dataclass(frozen=True)
class ArchitectureConfig:
    """`architecture:` section: the embedding network

    Attributes
    ----------
    name : str
        One of :data:`pyannote_embloss.models.ARCHITECTURES`, or a "module.Class" path.
    params : dict
        Its constructor's keyword arguments.
    """

    name: str = "SincTDNN"
    params: Dict[str, Any] = field(default_factory=dict)

    @property
    def architecture(self) -> type:
        """The architecture's class"""
        return resolve(ARCHITECTURE_RESOLVER)(self.name)

    @property
    def trainable(self) -> bool:
        """False for training-free architectures (e.g. the log-mel statistics baseline)"""
        return bool(getattr(self.architecture, "trainable", True))

    @classmethod
    def parse(cls, config: dict, path, checked: bool = False) -> "ArchitectureConfig":
        """The section, checked (`checked`: already checked, see :meth:`ExperimentConfig.read`)"""
        section = cls(*_named_section(config, "architecture", path, default_name="SincTDNN"))
        if checked:
            return section
        try:
            Klass = section.architecture
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        valid, any_keyword = _signature(Klass.__init__, ("self", "task"))
        if not any_keyword:
            listing = f"{section.name} takes {', '.join(valid) or 'no parameter'}"
            _check_keys(section.params, valid, path, f"architecture.params of {section.name}", listing)
        for key, value in section.params.items():
            if key in POSITIVE_SIZES:
                values = value if isinstance(value, (list, tuple)) else [value]
                if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
                    raise ConfigError(
                        f"{path}: architecture.params.{key} {value!r}: give a positive whole number"
                        f"{' (or a list of them)' if key == 'channels' else ''}."
                    )
        return section


#: architecture parameters that are sizes (positive whole numbers, or lists of them): checked when config.yml is read
POSITIVE_SIZES = frozenset(
    ["dimension", "channels", "n_mels", "num_mel_bins", "stride", "sample_rate", "aggregation_channels",
     "attention_channels", "num_channels", "embed_dim", "feat_dim", "m_channels"]
)


@dataclass(frozen=True)
class TaskConfig:
    """`task:` section: the training task (one per loss) and its parameters

    Attributes
    ----------
    name : str
        A loss of :data:`pyannote_embloss.losses.LOSSES`, whose task trains it.
    params : dict
        Keyword arguments of the task
        (:class:`~pyannote_embloss.tasks.base.SpeakerEmbeddingTask`) and of its loss.
    """

    name: str
    params: Dict[str, Any] = field(default_factory=dict)

    @property
    def task_class(self) -> type:
        """The task of the loss (:mod:`pyannote_embloss.tasks`)"""
        return resolve(TASKS)[known(LOSSES, self.name, "task")]

    @property
    def loss_class(self) -> type:
        """The loss (:data:`LOSSES`)"""
        return resolve(LOSSES[known(LOSSES, self.name, "loss")])

    @property
    def task_params(self) -> Dict[str, Any]:
        """The task's own parameters (task.params but the loss')"""
        loss_keys = loss_param_names(self.loss_class)
        return {k: v for k, v in self.params.items() if k not in loss_keys}

    @property
    def loss_params(self) -> Dict[str, Any]:
        """The loss' hyper-parameters: those task.params gives, over the loss' defaults"""
        Loss = self.loss_class
        names = loss_param_names(Loss)
        defaults = {k: v for k, v in parameter_defaults(Loss.__init__).items() if k in names}
        return {**defaults, **{k: v for k, v in self.params.items() if k in names}}

    @property
    def batches_per_epoch(self) -> Optional[int]:
        """Training steps per epoch (None: as many as cover the training set once)"""
        return self.params.get("batches_per_epoch")

    @classmethod
    def parse(cls, config: dict, path, checked: bool = False) -> "TaskConfig":
        """The section, checked (`checked`: already checked, see :meth:`ExperimentConfig.read`)"""
        section = cls(*_named_section(config, "task", path))
        if checked:
            return section
        try:
            Task = section.task_class
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        Loss = section.loss_class
        task_keys, loss_keys = task_params(Task), loss_param_names(Loss)
        listing = f"the task takes {', '.join(task_keys)}; its loss, {', '.join(loss_keys) or 'nothing'}"
        _check_keys(section.params, task_keys + loss_keys, path, f"task.params of '{section.name}'", listing)
        defaults = parameter_defaults(Task.__init__)
        for key, value in section.params.items():
            if key in PARAM_RANGES and not (value is None and defaults.get(key, 0) is None):
                PARAM_RANGES[key].check(value, f"task.params.{key}", path)
        duration = section.params.get("duration", defaults["duration"])
        min_duration = section.params.get("min_duration")
        if min_duration is not None and min_duration > duration:
            raise ConfigError(
                f"{path}: task.params.min_duration ({min_duration:g} s) is longer than task.params.duration "
                f"({duration:g} s): chunks last between the two."
            )
        chunks = section.params.get("num_chunks_per_class")
        if chunks is not None and chunks < Loss.min_chunks_per_class:
            raise ConfigError(
                f"{path}: the '{section.name}' loss needs positive pairs in each batch: set "
                f"task.params.num_chunks_per_class to at least {Loss.min_chunks_per_class} (got {chunks})."
            )
        loss_params = {k: v for k, v in section.params.items() if k in loss_keys}
        try:  # what the loss itself refuses (e.g. an unknown triplet sampling)
            if Loss.uses_classifier:
                Loss(num_classes=2, embedding_size=2, **loss_params)
            else:
                Loss(**loss_params)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}: invalid task.params for '{section.name}': {e}") from None
        return section


@dataclass(frozen=True)
class OptimizerConfig:
    """`optimizer:` section: a torch.optim class and its keyword arguments

    Attributes
    ----------
    name : str
        Name of a torch.optim class, e.g. "SGD".
    params : dict
        Its keyword arguments, e.g. {"lr": 0.01, "momentum": 0.95, "nesterov": True}.
    lr_multipliers : dict, optional
        Learning rate of some parameters, as a multiple of `lr`: {name prefix: factor}, e.g.
        {"sincnet.conv1d.0": 1000} for SincNet's cut-off frequencies, which are in Hz while an
        Adam step moves a parameter by about `lr`. A parameter takes the factor of the longest
        prefix of its name (:func:`pyannote_embloss.training.run.parameter_groups`).
    """

    name: str = "Adam"
    params: Dict[str, Any] = field(default_factory=dict)
    lr_multipliers: Dict[str, float] = field(default_factory=dict)

    @property
    def optimizer_class(self) -> type:
        """The torch.optim class (ConfigError, without the file, when there is none of that name)"""
        import torch

        Klass = getattr(torch.optim, self.name, None)
        if not (isinstance(Klass, type) and issubclass(Klass, torch.optim.Optimizer)) or self.name == "Optimizer":
            known = sorted(
                n for n, c in vars(torch.optim).items()
                if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and n != "Optimizer"
            )
            raise ConfigError(
                f"unknown optimizer '{self.name}'{did_you_mean(self.name, known)}: use the name of a torch.optim "
                f"class ({', '.join(known)})."
            )
        return Klass

    def with_lr(self, lr: Optional[float]) -> "OptimizerConfig":
        """This optimizer, with learning rate `lr` (itself when None)"""
        return self if lr is None else replace(self, params={**self.params, "lr": lr})

    @classmethod
    def parse(cls, config: dict, path) -> "OptimizerConfig":
        section = cls(*_named_section(config, "optimizer", path, default_name="Adam", extra=("lr_multipliers",)))
        multipliers = _mapping(
            (config.get("optimizer") or {}).get("lr_multipliers"), path, "optimizer.lr_multipliers",
            "parameter name prefix: factor of the learning rate",
        )
        for prefix, factor in multipliers.items():
            LR_MULTIPLIER.check(factor, f"optimizer.lr_multipliers.{prefix}", path)
        section = replace(section, lr_multipliers={str(k): float(v) for k, v in multipliers.items()})
        try:
            Klass = section.optimizer_class
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        valid, _ = _signature(Klass.__init__, ("self", "params"))
        listing = f"{section.name} takes {', '.join(valid)}"
        _check_keys(section.params, valid, path, f"optimizer.params of {section.name}", listing)
        if "lr" in section.params:
            LEARNING_RATE.check(section.params["lr"], "optimizer.params.lr", path)
        return section

    def to_dict(self) -> Dict[str, Any]:
        section = {"name": self.name, "params": dict(self.params)}
        if self.lr_multipliers:  # only then: the hash of the other configs stays
            section["lr_multipliers"] = dict(self.lr_multipliers)
        return section

    def build(self, parameters, path=None):
        """`torch.optim.<name>(parameters, **params)` (ConfigError when it refuses its params)"""
        try:
            return self.optimizer_class(parameters, **self.params)
        except (TypeError, ValueError) as e:
            where = f"{path}: " if path is not None else ""
            raise ConfigError(f"{where}invalid optimizer.params for {self.name}: {e}.") from None


@dataclass(frozen=True)
class CheckpointConfig:
    """`checkpoint:` section

    Attributes
    ----------
    every_n_steps : int, optional
        Also write last.ckpt every that many training steps (None: at epoch ends only).
    average_last : int, optional
        Average the weights of the last that many epochs into average.ckpt
        (:mod:`pyannote_embloss.training.averaging`; None: no averaging).
    """

    every_n_steps: Optional[int] = None
    average_last: Optional[int] = None

    @classmethod
    def parse(cls, value, path) -> "CheckpointConfig":
        value = _mapping(value, path, "checkpoint", "every_n_steps: N, average_last: N")
        _check_keys(value, ("every_n_steps", "average_last"), path, "'checkpoint'")
        for key in ("every_n_steps", "average_last"):
            if value.get(key) is not None:
                POSITIVE_INTEGER.check(value[key], f"checkpoint.{key}", path)
        return cls(value.get("every_n_steps"), value.get("average_last"))

    def to_dict(self) -> Dict[str, Any]:
        """The keys config.yml sets"""
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class LargeMarginConfig:
    """`large_margin:` section: a large-margin fine-tuning stage after the main run

    See :mod:`pyannote_embloss.training.large_margin`.

    Attributes
    ----------
    duration : float
        Chunk duration of the stage, in seconds (fixed-length chunks).
    margin : float
        The loss' margin in the stage, fixed (no margin schedule).
    epochs : int
        Number of epochs of the stage.
    lr : float
        Its constant learning rate.
    batches_per_epoch, num_classes_per_batch : int, optional
        Override the main run's task.params in the stage.
    """

    duration: float
    margin: float
    epochs: int
    lr: float
    batches_per_epoch: Optional[int] = None
    num_classes_per_batch: Optional[int] = None

    @classmethod
    def parse(cls, value, path) -> Optional["LargeMarginConfig"]:
        """The validated section (None when config.yml has none)"""
        if value is None:
            return None
        value = _mapping(value, path, "large_margin", "duration, margin, epochs, lr")
        ranges = {
            "duration": PARAM_RANGES["duration"],
            "margin": PARAM_RANGES["margin"],
            "epochs": POSITIVE_INTEGER,
            "lr": LEARNING_RATE,
            "batches_per_epoch": PARAM_RANGES["batches_per_epoch"],
            "num_classes_per_batch": PARAM_RANGES["num_classes_per_batch"],
        }
        _check_keys(value, ranges, path, "'large_margin'")
        required = ("duration", "margin", "epochs", "lr")
        missing = [key for key in required if key not in value]
        if missing:
            raise ConfigError(f"{path}: large_margin needs {', '.join(required)}: set {', '.join(missing)}.")
        for key, number in value.items():
            if number is not None or key in required:
                ranges[key].check(number, f"large_margin.{key}", path)
        return cls(**value)

    def to_dict(self) -> Dict[str, Any]:
        """The keys config.yml sets"""
        return {key: value for key, value in asdict(self).items() if value is not None}


# ---------------------------------------------------------------- the whole


@dataclass(frozen=True)
class ExperimentConfig:
    """An experiment's validated config.yml, one typed object per section

    Build it with :meth:`read` (a config.yml file) or :meth:`from_dict`.
    Experiments whose architecture needs no training have no task,
    optimizer, schedules, augmentation, trainer, logger nor checkpoint
    settings (:attr:`trainable` is False).

    Attributes
    ----------
    path : Path
        The config.yml it comes from (named by errors).
    protocol : str, optional
        Default protocol.
    seed : int
    description : str
    architecture : ArchitectureConfig
    task : TaskConfig, optional
    optimizer : OptimizerConfig, optional
    scheduler : SchedulerConfig, optional
    margin_scheduler : MarginSchedulerConfig, optional
    augmentation : dict, optional
        Validated by :func:`pyannote_embloss.config.check_augmentation`.
    trainer : dict
        lightning.Trainer keyword arguments.
    logger : {"csv", "tensorboard"}
    checkpoint : CheckpointConfig
    large_margin : LargeMarginConfig, optional
    stamp : str, optional
        See :meth:`read` and :meth:`remember`.
    """

    path: Path = field(compare=False)
    protocol: Optional[str] = None
    seed: int = 0
    description: str = ""
    architecture: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    task: Optional[TaskConfig] = None
    optimizer: Optional[OptimizerConfig] = None
    scheduler: Optional[SchedulerConfig] = None
    margin_scheduler: Optional[MarginSchedulerConfig] = None
    augmentation: Optional[dict] = None
    trainer: Dict[str, Any] = field(default_factory=dict)
    logger: str = "csv"
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    large_margin: Optional[LargeMarginConfig] = None
    #: :func:`validation_stamp` of the text :meth:`read` read, when it was given a memo
    stamp: Optional[str] = field(default=None, compare=False, repr=False)

    @property
    def trainable(self) -> bool:
        """False for training-free architectures (e.g. the log-mel statistics baseline)"""
        return self.task is not None

    @classmethod
    def read(cls, path, memo=None) -> "ExperimentConfig":
        """Read and validate config.yml at `path`

        Parameters
        ----------
        path : str or Path
        memo : str or Path, optional
            Where it is remembered that this config.yml is valid (``Experiment.load``
            gives ``EXP/.config-checked.json``, which :meth:`remember` writes). Read with the same text,
            plugin code and packages (:func:`validation_stamp`), it is parsed without
            the checks that import what it names (the architecture, the task and
            its loss, ``lightning.Trainer``, the optimizer and scheduler built
            once, whether tensorboard is installed): they gave the same answer
            then, and importing pyannote.audio and Lightning for them takes about
            2 s, a quarter of a second ``evaluate`` that reads every embedding from
            its cache. Deleting the file is safe.

        Raises
        ------
        ConfigError
            When it is not valid YAML or holds any error (see the module docstring).
        """
        path = Path(path)
        text = path.read_text()
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from e
        if memo is None:
            return cls.from_dict(config, path)
        stamp = validation_stamp(text)
        try:
            remembered = json.loads(Path(memo).read_text())
        except (OSError, ValueError):
            remembered = None
        trainable = None
        if isinstance(remembered, dict) and remembered.get("stamp") == stamp and isinstance(remembered.get("trainable"), bool):
            trainable = remembered["trainable"]
        return replace(cls.from_dict(config, path, trainable=trainable), stamp=stamp)

    def remember(self, memo) -> None:
        """Write `memo` (see :meth:`read`): this config.yml, as it was read, is valid

        Commands call it once they have written their results (``evaluate``), so that a
        refused command writes nothing. Nothing happens for a config not read with a memo,
        nor when `memo` cannot be written (the next read checks everything again).
        """
        if self.stamp is None:
            return
        with contextlib.suppress(OSError):
            write_if_changed(memo, json.dumps({"stamp": self.stamp, "trainable": self.trainable}) + "\n")

    @classmethod
    def from_dict(cls, config, path, trainable: Optional[bool] = None) -> "ExperimentConfig":
        """Validate the mapping of config.yml's sections `config` (`path` is named by errors)

        `trainable` is given (with its value) only for a config already checked
        (:meth:`read`'s memo): then what needs the implementations it names is
        not checked again, and the rest is.

        Raises
        ------
        ConfigError
            On any error (see the module docstring).
        """
        path = Path(path)
        if not isinstance(config, dict):
            raise ConfigError(f"{path} must be a YAML mapping of sections, got {type(config).__name__}.")
        for key in config:
            if key not in SECTIONS:
                raise ConfigError(
                    f"{path}: unknown section {key!r}{did_you_mean(key, SECTIONS)}; sections: {', '.join(SECTIONS)}."
                )
        protocol = config.get("protocol")
        if protocol is not None and not isinstance(protocol, str):
            raise ConfigError(
                f"{path}: protocol must be a protocol name, e.g. Database.SpeakerVerification.Default (got {protocol!r})."
            )
        seed = config.get("seed", 0)
        Range(integer=True).check(seed, "seed", path)
        description = config.get("description")
        checked = trainable is not None
        architecture = ArchitectureConfig.parse(config, path, checked=checked)
        common = dict(
            path=path,
            protocol=protocol,
            seed=seed,
            description="" if description is None else str(description),
            architecture=architecture,
        )
        if not (architecture.trainable if trainable is None else trainable):
            extra = [key for key in config if key not in UNTRAINED_SECTIONS]
            if extra:
                raise ConfigError(
                    f"{path}: architecture '{architecture.name}' needs no training: remove the training "
                    f"section(s) {', '.join(extra)}."
                )
            return cls(**common)

        logger = config.get("logger", "csv")
        if logger not in LOGGERS:
            raise ConfigError(
                f"{path}: unknown logger {logger!r}{did_you_mean(logger, LOGGERS)}: use one of {', '.join(LOGGERS)}."
            )
        experiment = cls(
            **common,
            task=TaskConfig.parse(config, path, checked=checked),
            optimizer=OptimizerConfig.parse(config, path),
            scheduler=check_scheduler(config.get("scheduler"), path),
            margin_scheduler=check_margin_scheduler(config.get("margin_scheduler"), path),
            augmentation=check_augmentation(config.get("augmentation"), path),
            trainer=_trainer(config.get("trainer"), path, checked=checked),
            logger=logger,
            checkpoint=CheckpointConfig.parse(config.get("checkpoint"), path),
            large_margin=LargeMarginConfig.parse(config.get("large_margin"), path),
        )
        if not checked:
            experiment._check_together()
        return experiment

    def _check_together(self) -> None:
        """Checks across sections: schedules against the task and the run length; build the optimizer and scheduler"""
        path = self.path
        for key in ("margin_scheduler", "large_margin"):
            if getattr(self, key) is not None and not self.task.loss_class.has_margin:
                with_margin = [name for name in LOSSES if resolve(LOSSES[name]).has_margin]
                raise ConfigError(
                    f"{path}: {key} is for the losses with a margin ({', '.join(with_margin)}), "
                    f"not '{self.task.name}': remove it."
                )
        if self.logger == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise ConfigError(
                    f"{path}: 'logger: tensorboard' needs the tensorboard package (pip install tensorboard)."
                ) from None
        import torch

        optimizer = self.optimizer.build([torch.nn.Parameter(torch.zeros(1))], path)
        if self.scheduler is None:
            return
        if self.task.batches_per_epoch is None:
            raise ConfigError(
                f"{path}: a scheduler needs task.params.batches_per_epoch (the number of steps per epoch): set it."
            )

        epochs = self.trainer.get("max_epochs", TRAINER_DEFAULTS["max_epochs"])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build_scheduler(self.scheduler, optimizer, self.task.batches_per_epoch * epochs, epochs)
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as e:
            raise ConfigError(f"{path}: invalid scheduler {self.scheduler.name}: {e}.") from None

    def to_dict(self) -> Dict[str, Any]:
        """The validated configuration as a plain mapping (a copy), as :mod:`pyannote_embloss.training.run_config` hashes it

        Sections hold their values as config.yml gives them (e.g. an integer
        duration stays an integer), so that the hash of a config does not change.
        """
        config = {
            "protocol": self.protocol,
            "seed": self.seed,
            "architecture": {"name": self.architecture.name, "params": dict(self.architecture.params)},
            "description": self.description,
        }
        if self.trainable:
            config.update(
                task={"name": self.task.name, "params": dict(self.task.params)},
                optimizer=self.optimizer.to_dict(),
                trainer=dict(self.trainer),
                scheduler=None if self.scheduler is None else asdict(self.scheduler),
                margin_scheduler=None if self.margin_scheduler is None else asdict(self.margin_scheduler),
                augmentation=self.augmentation,
                logger=self.logger,
                checkpoint=self.checkpoint.to_dict(),
            )
            if self.large_margin is not None:  # only then: the hash of the other configs stays
                config["large_margin"] = self.large_margin.to_dict()
        return copy.deepcopy(config)


def _trainer(value, path, checked: bool = False) -> Dict[str, Any]:
    """Validated `trainer:` section: lightning.Trainer keyword arguments (`checked`: already checked)"""
    trainer = _mapping(value, path, "trainer", "lightning.Trainer argument: value")
    if checked:
        return trainer
    from lightning import Trainer

    for key in trainer:
        if key in TRAINER_RESERVED:
            raise ConfigError(f"{path}: trainer.{key} is set by pyannote-embloss itself: remove it.")
    valid, _ = _signature(Trainer.__init__, ("self",) + TRAINER_RESERVED)
    _check_keys(trainer, valid, path, "'trainer'", f"lightning.Trainer takes {', '.join(valid)}")
    if "max_epochs" in trainer:
        POSITIVE_INTEGER.check(trainer["max_epochs"], "trainer.max_epochs", path)
    return trainer


#: parameters of a task that config.yml's task.params do not give: the protocol, the augmentation (its own
#: section) and the validation metric (a Python object)
NOT_TASK_PARAMS = ("self", "protocol", "augmentation", "metric")


def task_params(task_class: type) -> list:
    """Names of the parameters `task_class` takes from config.yml's task.params, besides its loss'"""
    return parameter_names(task_class.__init__, NOT_TASK_PARAMS)


def loss_param_names(loss_class: type) -> list:
    """Names of the hyper-parameters of `loss_class` (its constructor's, but the classifier's sizes)"""
    return parameter_names(loss_class.__init__, ("self", "num_classes", "embedding_size"))
