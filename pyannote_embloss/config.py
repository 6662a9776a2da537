"""The experiment configuration: `config.yml`, parsed once into typed sections

:meth:`ExperimentConfig.read` (what ``Experiment.load`` calls) reads an
experiment's ``config.yml`` once into an :class:`ExperimentConfig`, and each
module receives its own section: the task builder the :class:`TaskConfig`, the
model builder the :class:`ArchitectureConfig`, the optimizer its
:class:`OptimizerConfig` and :class:`SchedulerConfig`, the margin schedule its
:class:`MarginSchedulerConfig`, the trainer its mapping of
``lightning.Trainer`` arguments.

Every error a config.yml can hold is reported there, before anything runs,
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
before it starts (:func:`pyannote_embloss.training.train`).

:meth:`ExperimentConfig.to_dict` gives the validated configuration as the
plain mapping that :mod:`pyannote_embloss.run_config` hashes.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

import yaml

from .errors import ConfigError, did_you_mean
from .schedules import MarginSchedulerConfig, SchedulerConfig, check_margin_scheduler, check_scheduler

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
        from .models import get_architecture

        return get_architecture(self.name)

    @property
    def trainable(self) -> bool:
        """False for training-free architectures (e.g. the log-mel statistics baseline)"""
        from .models import is_trainable

        return is_trainable(self.architecture)

    @classmethod
    def parse(cls, config: dict, path) -> "ArchitectureConfig":
        section = cls(*_named_section(config, "architecture", path, default_name="SincTDNN"))
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
        from .tasks import get_task_class

        return get_task_class(self.name)

    @property
    def loss_class(self) -> type:
        from .losses import get_loss_class

        return get_loss_class(self.name)

    @property
    def batches_per_epoch(self) -> Optional[int]:
        """Training steps per epoch (None: as many as cover the training set once)"""
        return self.params.get("batches_per_epoch")

    @classmethod
    def parse(cls, config: dict, path) -> "TaskConfig":
        from .tasks.base import loss_param_names, task_params

        section = cls(*_named_section(config, "task", path))
        try:
            Task = section.task_class
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        Loss = section.loss_class
        task_keys, loss_keys = task_params(Task), loss_param_names(Loss)
        listing = f"the task takes {', '.join(task_keys)}; its loss, {', '.join(loss_keys) or 'nothing'}"
        _check_keys(section.params, task_keys + loss_keys, path, f"task.params of '{section.name}'", listing)
        defaults = {
            name: p.default for name, p in inspect.signature(Task.__init__).parameters.items()
        }
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
        prefix of its name (:func:`pyannote_embloss.training.parameter_groups`).
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
        (:mod:`pyannote_embloss.averaging`; None: no averaging).
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

    See :mod:`pyannote_embloss.large_margin`.

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
        Validated by :func:`pyannote_embloss.augmentation.check_augmentation`.
    trainer : dict
        lightning.Trainer keyword arguments.
    logger : {"csv", "tensorboard"}
    checkpoint : CheckpointConfig
    large_margin : LargeMarginConfig, optional
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

    @property
    def trainable(self) -> bool:
        """False for training-free architectures (e.g. the log-mel statistics baseline)"""
        return self.task is not None

    @classmethod
    def read(cls, path) -> "ExperimentConfig":
        """Read and validate config.yml at `path`

        Raises
        ------
        ConfigError
            When it is not valid YAML or holds any error (see the module docstring).
        """
        path = Path(path)
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from e
        return cls.from_dict(config, path)

    @classmethod
    def from_dict(cls, config, path) -> "ExperimentConfig":
        """Validate the mapping of config.yml's sections `config` (`path` is named by errors)

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
        architecture = ArchitectureConfig.parse(config, path)
        common = dict(
            path=path,
            protocol=protocol,
            seed=seed,
            description="" if description is None else str(description),
            architecture=architecture,
        )
        if not architecture.trainable:
            extra = [key for key in config if key not in UNTRAINED_SECTIONS]
            if extra:
                raise ConfigError(
                    f"{path}: architecture '{architecture.name}' needs no training: remove the training "
                    f"section(s) {', '.join(extra)}."
                )
            return cls(**common)

        from .augmentation import check_augmentation

        logger = config.get("logger", "csv")
        if logger not in LOGGERS:
            raise ConfigError(
                f"{path}: unknown logger {logger!r}{did_you_mean(logger, LOGGERS)}: use one of {', '.join(LOGGERS)}."
            )
        experiment = cls(
            **common,
            task=TaskConfig.parse(config, path),
            optimizer=OptimizerConfig.parse(config, path),
            scheduler=check_scheduler(config.get("scheduler"), path),
            margin_scheduler=check_margin_scheduler(config.get("margin_scheduler"), path),
            augmentation=check_augmentation(config.get("augmentation"), path),
            trainer=_trainer(config.get("trainer"), path),
            logger=logger,
            checkpoint=CheckpointConfig.parse(config.get("checkpoint"), path),
            large_margin=LargeMarginConfig.parse(config.get("large_margin"), path),
        )
        experiment._check_together()
        return experiment

    def _check_together(self) -> None:
        """Checks across sections: schedules against the task and the run length; build the optimizer and scheduler"""
        path = self.path
        for key in ("margin_scheduler", "large_margin"):
            if getattr(self, key) is not None and not self.task.loss_class.has_margin:
                from .losses import losses_with_margin

                raise ConfigError(
                    f"{path}: {key} is for the losses with a margin ({', '.join(losses_with_margin())}), "
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
        from .run_config import TRAINER_DEFAULTS
        from .schedules import build_scheduler

        epochs = self.trainer.get("max_epochs", TRAINER_DEFAULTS["max_epochs"])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                build_scheduler(self.scheduler, optimizer, self.task.batches_per_epoch * epochs, epochs)
        except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError) as e:
            raise ConfigError(f"{path}: invalid scheduler {self.scheduler.name}: {e}.") from None

    def to_dict(self) -> Dict[str, Any]:
        """The validated configuration as a plain mapping (a copy), as :mod:`pyannote_embloss.run_config` hashes it

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


def _trainer(value, path) -> Dict[str, Any]:
    """Validated `trainer:` section: lightning.Trainer keyword arguments"""
    from lightning import Trainer

    trainer = _mapping(value, path, "trainer", "lightning.Trainer argument: value")
    for key in trainer:
        if key in TRAINER_RESERVED:
            raise ConfigError(f"{path}: trainer.{key} is set by pyannote-embloss itself: remove it.")
    valid, _ = _signature(Trainer.__init__, ("self",) + TRAINER_RESERVED)
    _check_keys(trainer, valid, path, "'trainer'", f"lightning.Trainer takes {', '.join(valid)}")
    if "max_epochs" in trainer:
        POSITIVE_INTEGER.check(trainer["max_epochs"], "trainer.max_epochs", path)
    return trainer
