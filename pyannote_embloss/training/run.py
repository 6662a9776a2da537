"""Train an experiment: config.yml → task + model + optimizer + schedules → Lightning Trainer

Long runs survive interruption:

* ``checkpoints/last.ckpt`` is written at the end of every epoch, every
  ``checkpoint.every_n_steps`` training steps when configured, and when the
  run is stopped by SIGTERM (what a cluster scheduler sends before
  pre-emption) or Ctrl-C; ``train --resume`` continues from it. A run
  resumed from an epoch boundary ends with the same weights as an
  uninterrupted one (the sampler's random generator is derived from the
  seed, the epoch and the process, and the seed is restored from the checkpoint);
* checkpoints are read back with ``weights_only=True`` and an allowlist
  (:mod:`pyannote_embloss.models.checkpoint`);
* a non-finite loss or gradient stops training at once, naming the step;
* training files that fail to decode are skipped and reported;
* a lock keeps a second process from writing into the same experiment.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MethodType
from typing import Any, Dict, List, Optional

import torch
from lightning import Callback, Trainer, seed_everything
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from pyannote.audio.core.model import Model

from .averaging import BEST_EPOCH, EpochCheckpoints, average_checkpoints
from ..models.checkpoint import load_checkpoint, safe_globals
from ..config import (
    LEARNING_RATE,
    POSITIVE_INTEGER,
    ArchitectureConfig,
    OptimizerConfig,
    Range,
    TRAINER_DEFAULTS,
    SchedulerConfig,
    TaskConfig,
    build_scheduler,
)
from ..errors import (
    ConfigError, EmblossError, OutputExistsError, TrainingDivergedError, TrainingInterrupted, did_you_mean,
)
from ..experiment import CONFIG, Experiment
from ..io import atomic_path, atomic_write_text
from .large_margin import LargeMarginPaths, StartFromWeights, stage_task_params, start_checkpoint
from ..lock import OutputLock, is_global_zero
from .machine import describe_machine
from ..data.protocols import get_protocol
from .run_config import config_hash, effective_config
from .schedules import MarginScheduler

__all__ = ["train", "TrainingOptions", "build_task", "build_model", "configure_optimizer", "TRAINER_OVERRIDES"]

#: Trainer arguments that the command line may override (multi-device and multi-node training)
TRAINER_OVERRIDES = ("accelerator", "devices", "num_nodes", "strategy", "precision")


def build_task(section: TaskConfig, protocol, augmentation: Optional[dict] = None, **overrides):
    """Instantiate the task of the `task:` section on `protocol`

    Parameters
    ----------
    section : TaskConfig
        The experiment's `task:` section.
    protocol : pyannote.database Protocol
    augmentation : dict, optional
        The `augmentation:` section.
    **overrides
        Task parameters that override the section's (e.g. batches_per_epoch); None ones are ignored.
    """
    params = {**section.params, **{k: v for k, v in overrides.items() if v is not None}}
    if augmentation is not None:
        params["augmentation"] = augmentation
    Klass = section.task_class
    try:
        return Klass(protocol, **params)
    except (TypeError, ConfigError) as e:
        raise ConfigError(
            f"invalid task.params for '{section.name}': {e}. See the docstring of {Klass.__module__}.{Klass.__name__}."
        ) from e


def build_model(section: ArchitectureConfig, task) -> Model:
    """Instantiate the architecture of the `architecture:` section for `task`"""
    try:
        return section.architecture(task=task, **section.params)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid architecture.params for '{section.name}': {e}") from e


def configure_optimizer(
    model: Model,
    optimizer: OptimizerConfig,
    scheduler: Optional[SchedulerConfig] = None,
    total_steps: int = 0,
    total_epochs: int = 0,
) -> None:
    """Make `model` train with the `optimizer:` section's optimizer and an optional scheduler

    The optimizer covers every trainable parameter of the model, including
    the loss' own (``model.loss_func``: classifier weights, centers).
    pyannote.audio's own training recipes set it the same way.

    Parameters
    ----------
    model : Model
    optimizer : OptimizerConfig
        A torch.optim class name and its keyword arguments, e.g.
        ``OptimizerConfig("SGD", {"lr": 0.01, "momentum": 0.95, "nesterov": True})``.
    scheduler : SchedulerConfig, optional
        The `scheduler:` section (see :mod:`pyannote_embloss.training.schedules`).
    total_steps, total_epochs : int, optional
        Length of the run (for schedulers that need it).
    """

    # the loss' parameters (model.loss_func) exist once the trainer has set the task up: checked then
    parameter_groups(model, optimizer, pending=("loss_func",))

    def configure_optimizers(self):
        built = optimizer.build(parameter_groups(self, optimizer))
        if scheduler is None:
            return built
        return {"optimizer": built, "lr_scheduler": build_scheduler(scheduler, built, total_steps, total_epochs)}

    model.configure_optimizers = MethodType(configure_optimizers, model)


def parameter_groups(model: torch.nn.Module, optimizer: OptimizerConfig, pending: tuple = ()) -> list:
    """The trainable parameters of `model`, in one group per learning rate of `optimizer.lr_multipliers`

    Parameters
    ----------
    model : torch.nn.Module
    optimizer : OptimizerConfig
        Its ``lr_multipliers`` ({name prefix: factor}) set the learning rate of
        the parameters whose name starts with the prefix (the longest prefix
        wins) to factor × ``params["lr"]``.
    pending : tuple, optional
        Prefixes of modules that do not exist yet (not checked).

    Returns
    -------
    groups : list
        [{"params": [...]} and, for each factor, {"params": [...], "lr": ...}]:
        torch.optim's parameter groups.

    Raises
    ------
    ConfigError
        When a prefix names no trainable parameter of `model`.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not optimizer.lr_multipliers:
        return [p for _, p in named]

    def matches(name, prefix):
        return name == prefix or name.startswith(prefix + ".")

    for prefix in optimizer.lr_multipliers:
        if not prefix.startswith(pending) and not any(matches(n, prefix) for n, _ in named):
            modules = sorted({n.rsplit(".", 1)[0] for n, _ in named})
            raise ConfigError(
                f"optimizer.lr_multipliers: no trainable parameter of {type(model).__name__} is named "
                f"{prefix!r} or starts with '{prefix}.'{did_you_mean(prefix, modules)}; its modules with "
                f"parameters: {', '.join(modules[:12])}{', ...' if len(modules) > 12 else ''}."
            )
    lr = optimizer.params.get("lr", optimizer.optimizer_class([torch.nn.Parameter(torch.zeros(1))]).defaults["lr"])
    groups: Dict[float, list] = {}
    for name, parameter in named:
        prefixes = [p for p in optimizer.lr_multipliers if matches(name, p)]
        factor = optimizer.lr_multipliers[max(prefixes, key=len)] if prefixes else None
        groups.setdefault(factor, []).append(parameter)
    return [
        {"params": params} if factor is None else {"params": params, "lr": factor * lr}
        for factor, params in groups.items()
    ]


def count_parameters(module: Optional[torch.nn.Module]) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters())


class GradientGuard(Callback):
    """Stops training at the first non-finite gradient, naming the step and learning rate"""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        for name, parameter in pl_module.named_parameters():
            if parameter.grad is not None and not torch.isfinite(parameter.grad).all():
                lrs = ", ".join(f"{group['lr']:.3g}" for group in optimizer.param_groups)
                raise TrainingDivergedError(
                    f"Training diverged at step {trainer.global_step} (epoch {trainer.current_epoch}): the gradient "
                    f"of '{name}' is not finite (learning rate {lrs}). checkpoints/last.ckpt is from before; lower "
                    "the learning rate (or add a warm-up) and train again, or resume."
                )


class PreemptionCheckpoint(Callback):
    """Saves `last.ckpt` when the run is stopped by SIGTERM or Ctrl-C, and restores the sampler's seed

    The sampler's random generator is derived from the global seed, the
    epoch, the process rank and the data-loading worker
    (:func:`pyannote_embloss.tasks.base.sampler_rng`): restoring the seed and
    Lightning's loop state restores the sampler. Checkpoints also record the
    hash of the run's effective config (:mod:`pyannote_embloss.training.run_config`),
    so that ``compare`` does not resume a run whose config changed since.
    """

    def __init__(self, path: Path, seed: int, config_hash: Optional[str] = None):
        self.path = Path(path)
        self.seed = seed
        self.config_hash = config_hash
        self.interrupted: Optional[str] = None

    def state_dict(self) -> dict:
        return {"seed": self.seed, "config_hash": self.config_hash}

    def load_state_dict(self, state_dict: dict) -> None:
        if "seed" in state_dict and state_dict["seed"] != self.seed:
            self.seed = state_dict["seed"]
            seed_everything(self.seed, workers=True, verbose=False)

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            self.interrupted = "SIGTERM" if isinstance(exception, SIGTERMException) else "KeyboardInterrupt"
            trainer.save_checkpoint(self.path)


class MachineRecord(Callback):
    """Records the machine of each part of a run: the first, and each resumption

    A run is bit-reproducible only on the same CPU kernel set and number of
    threads (:mod:`pyannote_embloss.training.machine`). The list travels in the
    checkpoints, so that a run resumed on another machine still says where each
    of its parts was trained.

    Attributes
    ----------
    parts : list of dict
        :func:`~pyannote_embloss.training.machine.describe_machine` facts, each with
        ``from_step``, the global step that part started from.
    """

    def __init__(self):
        self.parts: list = []

    def state_dict(self) -> dict:
        return {"parts": self.parts}

    def load_state_dict(self, state_dict: dict) -> None:
        self.parts = list(state_dict.get("parts", []))

    def on_train_start(self, trainer, pl_module):
        self.parts.append({"from_step": trainer.global_step, **describe_machine()})


def _callbacks(directory: Path, has_validation: bool, every_n_steps: Optional[int], progress_bar: bool):
    def last(**when):
        return ModelCheckpoint(dirpath=directory, filename="last", save_top_k=1, enable_version_counter=False, **when)

    # last.ckpt at every epoch end (Lightning's save_last only follows improvements of the monitored metric)
    callbacks = [last(every_n_epochs=1), GradientGuard(), LearningRateMonitor(logging_interval="step")]
    best = None
    if has_validation:  # without development trials, best.ckpt is the last one
        best = ModelCheckpoint(
            dirpath=directory,
            filename="best",
            monitor="EqualErrorRate",
            mode="min",
            save_top_k=1,
            enable_version_counter=False,
        )
        callbacks.insert(0, best)
    if every_n_steps:
        callbacks.append(last(every_n_train_steps=every_n_steps))
    if progress_bar:
        callbacks.append(TQDMProgressBar())
    return best, callbacks


def _loggers(experiment: Experiment, stage: str = ""):
    """CSV logs in logs/ (a stage's in logs/STAGE/), and TensorBoard's in tensorboard/ when configured"""
    loggers = [CSVLogger(experiment.directory, name=str(Path("logs") / stage))]
    if experiment.config.logger == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(experiment.directory, name=str(Path("tensorboard") / stage)))
    return loggers


@dataclass
class TrainingOptions:
    """How to run a training: the options of ``pyannote-audio-emb train``, each overriding config.yml

    Validated when built: an invalid value is a ConfigError, before anything runs.

    Attributes
    ----------
    protocol : str, optional
        Protocol name. Defaults to the config's.
    database : str, optional
        database.yml to load. Defaults to those pyannote.database loads.
    max_epochs, batches_per_epoch, num_workers : int, optional
        Override the config's budget.
    overwrite : bool
        Delete existing checkpoints first. Without it (or `resume`), training
        an experiment that already has checkpoints is an error.
    resume : bool
        Resume from `checkpoints/last.ckpt`.
    progress_bar : bool
        Show a progress bar. Defaults to True.
    seed : int, optional
        Override the config's seed.
    pretrained : str, optional
        Fine-tune: start from this checkpoint's embedding network (and
        architecture hyper-parameters), with a new loss for the protocol's
        speakers. See :mod:`pyannote_embloss.training.finetuning`.
    freeze_frontend : bool
        Do not train the front-end (SincNet). Defaults to False.
    lr : float, optional
        Override the optimizer's learning rate.
    checkpoint_every_n_steps : int, optional
        Also write `last.ckpt` every that many training steps. Defaults to
        the config's `checkpoint.every_n_steps`, else epoch ends only.
    trust_checkpoint : bool
        Unpickle anything the `--resume` / `--pretrained` checkpoint holds.
    callbacks : list of lightning.Callback
        Added to the trainer's.
    trainer_overrides : dict
        accelerator, devices, num_nodes, strategy, precision
        (:data:`TRAINER_OVERRIDES`): override the config's `trainer:` section.
    """

    protocol: Optional[str] = None
    database: Optional[str] = None
    max_epochs: Optional[int] = None
    batches_per_epoch: Optional[int] = None
    num_workers: Optional[int] = None
    overwrite: bool = False
    resume: bool = False
    progress_bar: bool = True
    seed: Optional[int] = None
    pretrained: Optional[str] = None
    freeze_frontend: bool = False
    lr: Optional[float] = None
    checkpoint_every_n_steps: Optional[int] = None
    trust_checkpoint: bool = False
    callbacks: List[Callback] = field(default_factory=list)
    trainer_overrides: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.trainer_overrides) - set(TRAINER_OVERRIDES)
        if unknown:
            raise TypeError(f"unknown trainer override(s) {sorted(unknown)}: only {', '.join(TRAINER_OVERRIDES)}")
        self.trainer_overrides = {k: v for k, v in self.trainer_overrides.items() if v is not None}
        self.callbacks = list(self.callbacks or [])
        checks = {
            "--lr": (self.lr, LEARNING_RATE),
            "--max-epochs": (self.max_epochs, POSITIVE_INTEGER),
            "--batches-per-epoch": (self.batches_per_epoch, POSITIVE_INTEGER),
            "--num-workers": (self.num_workers, Range(0, integer=True)),
            "--checkpoint-every-n-steps": (self.checkpoint_every_n_steps, POSITIVE_INTEGER),
            "--seed": (self.seed, Range(integer=True)),
        }
        for option, (value, valid) in checks.items():
            if value is not None:
                valid.check(value, option)


def train(experiment: Experiment, options: Optional[TrainingOptions] = None, **kwargs) -> dict:
    """Train `experiment` and return its training summary

    Writes `checkpoints/best.ckpt` (lowest development EER, or last epoch
    when the protocol has no development trials), `checkpoints/last.ckpt`,
    CSV logs under `logs/`, `training.json` and `training.png` (loss,
    learning rate, margin and development EER against steps). With
    `checkpoint.average_last`, also `checkpoints/average.ckpt`
    (:mod:`pyannote_embloss.training.averaging`); with a `large_margin` section, a
    second stage follows, whose final weights become `best.ckpt`
    (:mod:`pyannote_embloss.training.large_margin`).

    Every error of the configuration and options is reported before
    training starts: those of config.yml when it is loaded, those that
    depend on the training data (chunk duration, classes per batch) once
    the data is prepared, before the trainer runs.

    Parameters
    ----------
    experiment : Experiment
    options : TrainingOptions, optional
        How to train (defaults: :class:`TrainingOptions`'s).
    **kwargs
        Instead of `options`: its attributes (e.g. ``protocol=``,
        ``max_epochs=``), and the trainer overrides by name (``devices=``,
        ``strategy=``, ...).

    Raises
    ------
    ConfigError
        On an invalid option, or a config the training data cannot serve.
    LockedError
        When another process trains (or evaluates) this experiment.
    TrainingDivergedError
        On a non-finite loss or gradient.
    """
    if options is None:
        overrides = {key: kwargs.pop(key) for key in TRAINER_OVERRIDES if key in kwargs}
        options = TrainingOptions(**kwargs, trainer_overrides=overrides)
    elif kwargs:
        raise TypeError(f"train() takes options or keyword arguments, not both (got {sorted(kwargs)})")
    if not experiment.trainable:
        raise ConfigError(
            f"{experiment.directory}: architecture '{experiment.config.architecture.name}' needs no training: "
            f"evaluate it directly (`pyannote-audio-emb evaluate {experiment.directory}`)."
        )
    try:
        with OutputLock(experiment.directory, "train"):
            return _train(experiment, options)
    except EmblossError:  # refused before anything was written (unknown protocol, bad option): nothing left behind
        experiment.discard_if_unused()
        raise


def _check_training_data(experiment: Experiment, task, section: str = "task.params") -> None:
    """Prepare and index the training data (rank 0), so that what the config asks and the data cannot serve
    (chunk duration, classes per batch) is a ConfigError before the trainer runs

    `section` is where the config sets the task's duration and classes per batch ("large_margin" for the stage).
    """
    if not is_global_zero():
        return  # the trainer prepares the data on the other processes of a distributed run
    try:
        task.prepare_data()
        task.setup()
    except ConfigError as e:
        raise ConfigError(f"{experiment.config.path}: {str(e).replace('task.params.', section + '.')}") from None


def _train(experiment: Experiment, options: TrainingOptions) -> dict:
    config = experiment.config
    protocol_name = experiment.protocol_name(options.protocol)
    pretrained = None
    if options.pretrained is not None:
        from .finetuning import PretrainedCheckpoint

        # fail early on a bad checkpoint
        pretrained = PretrainedCheckpoint(options.pretrained, trust=options.trust_checkpoint)
    resumed_from, clear = None, False
    if not is_global_zero():
        pass  # the other processes of a distributed run neither check nor clear outputs: rank 0 does
    elif options.resume:
        if not experiment.last_checkpoint.is_file():
            raise ConfigError(
                f"--resume: '{experiment.last_checkpoint}' does not exist (nothing to resume): train without --resume."
            )
        # fail early, with a clear message, on a checkpoint that is not plain weights
        checkpoint = load_checkpoint(experiment.last_checkpoint, trust=options.trust_checkpoint)
        resumed_from = int(checkpoint.get("global_step", 0))
    elif experiment.checkpoints.exists() and any(experiment.checkpoints.iterdir()):
        if not options.overwrite:
            raise OutputExistsError(
                f"'{experiment.checkpoints}' already has checkpoints: pass --overwrite to train "
                "from scratch, or --resume to continue from last.ckpt."
            )
        clear = True  # once the config is checked against the data

    seed = config.seed if options.seed is None else options.seed
    effective = effective_config(
        config, protocol_name, seed=seed, max_epochs=options.max_epochs,
        batches_per_epoch=options.batches_per_epoch, num_workers=options.num_workers, lr=options.lr,
        pretrained=None if pretrained is None else pretrained.path, freeze_frontend=options.freeze_frontend,
        trainer_overrides=options.trainer_overrides,
    )
    context = _Context(experiment, options, protocol_name, seed, effective, pretrained)
    stage = None if config.large_margin is None else LargeMarginPaths(experiment.checkpoints)
    if stage is not None and options.resume and stage.started():
        summary = stage.read_main_summary()  # the main run had ended: continue the stage
    else:
        main = _Run(
            experiment.checkpoints, config.task, config.optimizer.with_lr(options.lr), config.scheduler,
            config.margin_scheduler, options.max_epochs, resume=options.resume, clear=clear,
            average_last=config.checkpoint.average_last,
        )
        fitted = _fit(context, main)
        summary = {} if fitted is None else _main_summary(context, fitted, resumed_from)
        if stage is not None and fitted is not None:
            stage.begin(summary)
    if stage is not None:  # every process of a distributed run trains it
        summary["large_margin"] = _large_margin(context, stage)
    if not is_global_zero():
        return {}
    atomic_write_text(experiment.training_summary, json.dumps(summary, indent=2) + "\n")
    try:
        from .curves import plot_training

        summary["plot"] = str(plot_training(sorted(experiment.logs.glob("version_*/metrics.csv")), experiment.training_plot))
    except FileNotFoundError:  # no metrics logged (e.g. zero steps)
        pass
    return summary


@dataclass
class _Context:
    """What every run of a training shares: the experiment, the options, and what they resolve to"""

    experiment: Experiment
    options: TrainingOptions
    protocol: str
    seed: int
    effective: dict
    pretrained: Any = None


@dataclass
class _Run:
    """What one run trains (the main run, or the large-margin stage after it) and where it writes

    Attributes
    ----------
    checkpoints : Path
        Where its last.ckpt (and best.ckpt, epoch checkpoints) go.
    task, optimizer, scheduler, margin_scheduler
        The config sections it trains with.
    max_epochs : int, optional
        Overrides config.yml's trainer.max_epochs.
    resume : bool
        Resume from its last.ckpt.
    clear : bool
        Delete the experiment's training outputs first (once the config is checked against the data).
    average_last : int, optional
        Average the last that many epochs into average.ckpt (:mod:`pyannote_embloss.training.averaging`).
    stage : str
        Its name ("" for the main run): its logs go to logs/STAGE/.
    batches_per_epoch : int, optional
        Overrides the task's (None: the command line's, if any).
    start_from : Path, optional
        Checkpoint whose weights, loss head included, it starts from (not when resuming).
    """

    checkpoints: Path
    task: TaskConfig
    optimizer: OptimizerConfig
    scheduler: Optional[SchedulerConfig] = None
    margin_scheduler: Any = None
    max_epochs: Optional[int] = None
    resume: bool = False
    clear: bool = False
    average_last: Optional[int] = None
    stage: str = ""
    batches_per_epoch: Optional[int] = None
    start_from: Optional[Path] = None

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"


@dataclass
class _Fitted:
    """A run once trained: its trainer, task, model, and what its callbacks recorded"""

    trainer: Trainer
    task: Any
    model: Model
    best: Optional[ModelCheckpoint]
    preemption: PreemptionCheckpoint
    machines: MachineRecord
    elapsed: float
    frozen: List[str]
    average: Optional[dict] = None


def _fit(context: _Context, run: _Run) -> Optional[_Fitted]:
    """Build the task, model, optimizer and trainer of `run`, and train (None on processes other than rank 0)"""
    experiment, options, config = context.experiment, context.options, context.experiment.config
    seed_everything(context.seed, workers=True, verbose=False)
    task = build_task(
        run.task,
        get_protocol(context.protocol, database_yml=options.database),
        augmentation=config.augmentation,
        batches_per_epoch=run.batches_per_epoch or options.batches_per_epoch,
        num_workers=options.num_workers,
    )
    if context.pretrained is None:
        model = build_model(config.architecture, task)
    else:
        from .finetuning import build_pretrained_model

        model, _ = build_pretrained_model(experiment, task, context.pretrained)
    frozen = []
    if options.freeze_frontend:
        from .finetuning import freeze_frontend as freeze

        frozen = freeze(model)
    _check_training_data(experiment, task)
    if not run.stage and config.large_margin is not None and not options.resume:
        # what the stage asks of the data (its chunk duration, classes per batch) is checked before the main run
        stage_task = build_task(
            _stage_task(config), task.protocol,  # the protocol the main run's task already loaded
            augmentation=config.augmentation, batches_per_epoch=config.large_margin.batches_per_epoch,
            num_workers=options.num_workers,
        )
        _check_training_data(experiment, stage_task, section="large_margin")
    trainer_params = {**config.trainer, **options.trainer_overrides}
    if run.max_epochs is not None:
        trainer_params["max_epochs"] = run.max_epochs
    for key, value in TRAINER_DEFAULTS.items():
        trainer_params.setdefault(key, value)

    try:
        configure_optimizer(
            model,
            run.optimizer,
            scheduler=run.scheduler,
            total_steps=(task.batches_per_epoch or 0) * trainer_params["max_epochs"],
            total_epochs=trainer_params["max_epochs"],
        )
    except ConfigError as e:  # lr_multipliers naming no parameter of this model
        raise ConfigError(f"{experiment.directory / CONFIG}: {e}") from None
    if run.clear:  # once nothing is left to refuse
        experiment.clear_training_outputs()

    every_n_steps = options.checkpoint_every_n_steps or config.checkpoint.every_n_steps
    # a stage keeps its final weights: no best.ckpt of its own
    best, callbacks = _callbacks(run.checkpoints, task.has_validation and not run.stage, every_n_steps, options.progress_bar)
    preemption = PreemptionCheckpoint(run.last_checkpoint, context.seed, config_hash(context.effective))
    machines = MachineRecord()
    callbacks.extend([preemption, machines])
    callbacks.extend(options.callbacks)
    if run.margin_scheduler is not None:
        callbacks.append(MarginScheduler(run.task.loss_params["margin"], **asdict(run.margin_scheduler)))
    if run.average_last:
        callbacks.append(EpochCheckpoints(run.checkpoints, run.average_last))
    if run.start_from is not None and not run.resume:
        callbacks.append(StartFromWeights(run.start_from, trust=options.trust_checkpoint))

    trainer = Trainer(
        default_root_dir=experiment.directory,
        callbacks=callbacks,
        logger=_loggers(experiment, run.stage),
        enable_progress_bar=options.progress_bar,
        enable_model_summary=False,
        **trainer_params,
    )

    start = time.perf_counter()
    try:
        with safe_globals():
            trainer.fit(
                model,
                ckpt_path=str(run.last_checkpoint) if run.resume else None,
                weights_only=None if not run.resume else not options.trust_checkpoint,
            )
    except (KeyboardInterrupt, SIGTERMException, SystemExit):
        if preemption.interrupted and trainer.is_global_zero:
            raise TrainingInterrupted(
                f"Training interrupted ({preemption.interrupted}) at step {trainer.global_step}, epoch "
                f"{trainer.current_epoch}{f' of its {run.stage} stage' if run.stage else ''}: "
                f"'{run.last_checkpoint}' was saved; continue with "
                f"`pyannote-audio-emb train {experiment.directory} --resume`."
            ) from None
        raise
    elapsed = time.perf_counter() - start
    if not trainer.is_global_zero:
        return None
    fitted = _Fitted(trainer, task, model, best, preemption, machines, elapsed, frozen)
    if run.average_last:
        fitted.average = average_checkpoints(run.checkpoints, run.average_last)
    return fitted


def _main_summary(context: _Context, fitted: _Fitted, resumed_from: Optional[int]) -> dict:
    """Make the main run's best checkpoint best.ckpt; its training summary"""
    experiment, options = context.experiment, context.options
    trainer, task, model, best = fitted.trainer, fitted.task, fitted.model, fitted.best
    best_path = Path((best and best.best_model_path) or experiment.last_checkpoint)
    if fitted.average is not None:  # the average is the model; the epoch of lowest development EER is kept
        best_epoch = experiment.checkpoints / BEST_EPOCH
        if not best_epoch.is_file():  # (a resumed run's best.ckpt may already be the average)
            with atomic_path(best_epoch) as tmp:
                shutil.copyfile(best_path, tmp)
        best_path = Path(fitted.average["checkpoint"])
    if best_path.resolve() != experiment.best_checkpoint.resolve():
        with atomic_path(experiment.best_checkpoint) as tmp:
            shutil.copyfile(best_path, tmp)

    previous = experiment.read_training_summary() if options.resume and experiment.training_summary.is_file() else {}
    best_score = None if best is None else best.best_model_score
    summary = {
        "experiment": experiment.name,
        "protocol": context.protocol,
        "task": experiment.config.task.name,
        "seed": fitted.preemption.seed,
        "config_hash": config_hash(context.effective),
        "config": context.effective,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "training_time_s": round(fitted.elapsed + (previous.get("training_time_s", 0.0) if options.resume else 0.0), 1),
        "batch_size": task.batch_size,
        "world_size": trainer.world_size,
        "effective_batch_size": task.batch_size * trainer.world_size,
        "num_speakers": len(task.speakers),
        "num_classes": len(task.specifications.classes),
        "dev_eer": None if best_score is None else float(best_score),
        "model_parameters": count_parameters(model) - count_parameters(getattr(model, "loss_func", None)),
        "loss_parameters": count_parameters(getattr(model, "loss_func", None)),
        "checkpoint": str(experiment.best_checkpoint),
        "pretrained": None if context.pretrained is None else str(context.pretrained.path),
        "frozen": fitted.frozen,
        "lr": experiment.config.optimizer.with_lr(options.lr).params.get("lr"),
        "resumed": bool(options.resume) or bool(previous.get("resumed")),
        "resumed_from_steps": previous.get("resumed_from_steps", []) + ([resumed_from] if options.resume else []),
        "skipped_files": sorted(task.bad_files),
        "machine": describe_machine(),
        "machines": fitted.machines.parts,
    }
    if fitted.average is not None:
        summary["average"] = fitted.average
    return summary


def _stage_task(config) -> TaskConfig:
    """The `task:` section of the large-margin stage: the main run's, with the stage's chunks and fixed margin"""
    return replace(config.task, params=stage_task_params(config.task.params, config.task.loss_class, config.large_margin))


def _large_margin(context: _Context, paths: LargeMarginPaths) -> dict:
    """Train the large-margin stage (:mod:`pyannote_embloss.training.large_margin`); its summary (empty but on rank 0)"""
    config = context.experiment.config
    stage = config.large_margin
    resume = context.options.resume and paths.last.is_file()
    start = start_checkpoint(context.experiment.checkpoints, average=bool(config.checkpoint.average_last))
    run = _Run(
        paths.directory, _stage_task(config), config.optimizer.with_lr(stage.lr), max_epochs=stage.epochs, resume=resume, stage="large_margin",
        batches_per_epoch=stage.batches_per_epoch, start_from=start,
    )
    fitted = _fit(context, run)
    if fitted is None:
        return {}
    paths.finish()
    eer = fitted.trainer.callback_metrics.get("EqualErrorRate")
    return {
        "start": str(start),
        "duration": stage.duration,
        "margin": fitted.model.loss_func.margin,
        "lr": stage.lr,
        "epochs": fitted.trainer.current_epoch,
        "steps": fitted.trainer.global_step,
        "batch_size": fitted.task.batch_size,
        "training_time_s": round(fitted.elapsed, 1),
        "dev_eer": None if eer is None else float(eer),
        "resumed": resume,
        "checkpoint": str(paths.best),
        "main_checkpoint": str(paths.main_checkpoint),
        "skipped_files": sorted(fitted.task.bad_files),
        "machines": fitted.machines.parts,
    }
