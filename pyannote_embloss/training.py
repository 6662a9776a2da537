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
  (:mod:`pyannote_embloss.checkpoint`);
* a non-finite loss or gradient stops training at once, naming the step;
* training files that fail to decode are skipped and reported;
* a lock keeps a second process from writing into the same experiment.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import MethodType
from typing import Any, Dict, Optional

import torch
from lightning import Callback, Trainer, seed_everything
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from pyannote.audio.core.model import Model

from .checkpoint import load_checkpoint, safe_globals
from .errors import ConfigError, OutputExistsError, TrainingDivergedError, TrainingInterrupted
from .experiment import Experiment
from .io import atomic_path, atomic_write_text
from .lock import OutputLock, is_global_zero
from .machine import describe_machine
from .models import get_architecture
from .protocols import get_protocol
from .schedules import MARGIN_LOSSES, MarginScheduler, build_scheduler
from .tasks import get_task_class

__all__ = ["train", "build_task", "build_model", "configure_optimizer", "TRAINER_OVERRIDES"]

#: Trainer arguments that the command line may override (multi-device and multi-node training)
TRAINER_OVERRIDES = ("accelerator", "devices", "num_nodes", "strategy", "precision")


def build_task(experiment: Experiment, protocol, **overrides):
    """Instantiate the experiment's task on `protocol`

    Parameters
    ----------
    experiment : Experiment
    protocol : pyannote.database Protocol
    **overrides
        Task parameters that override the config's (e.g. batches_per_epoch).
    """
    section = experiment.config["task"]
    params = {**section["params"], **{k: v for k, v in overrides.items() if v is not None}}
    if experiment.config.get("augmentation") is not None:
        params["augmentation"] = experiment.config["augmentation"]
    Klass = get_task_class(section["name"])
    try:
        return Klass(protocol, **params)
    except (TypeError, ConfigError) as e:
        raise ConfigError(
            f"{experiment.directory / 'config.yml'}: invalid task.params for '{section['name']}': {e}. "
            f"See the docstring of {Klass.__module__}.{Klass.__name__}."
        ) from e


def build_model(experiment: Experiment, task) -> Model:
    """Instantiate the experiment's architecture for `task`"""
    section = experiment.config["architecture"]
    Klass = get_architecture(section["name"])
    try:
        return Klass(task=task, **section["params"])
    except TypeError as e:
        raise ConfigError(
            f"{experiment.directory / 'config.yml'}: invalid architecture.params for "
            f"'{section['name']}': {e}."
        ) from e


def configure_optimizer(
    model: Model,
    name: str,
    params: Dict[str, Any],
    scheduler: Optional[dict] = None,
    total_steps: int = 0,
    total_epochs: int = 0,
) -> None:
    """Make `model` train with `torch.optim.<name>(**params)` and an optional scheduler

    The optimizer covers every trainable parameter of the model, including
    the loss' own (``model.loss_func``: classifier weights, centers).
    pyannote.audio's own training recipes set it the same way.

    Parameters
    ----------
    model : Model
    name : str
        Name of a torch.optim class, e.g. "SGD".
    params : dict
        Its keyword arguments, e.g. {"lr": 0.01, "momentum": 0.95, "nesterov": True,
        "weight_decay": 1e-4}.
    scheduler : dict, optional
        Validated `scheduler:` section (see :mod:`pyannote_embloss.schedules`).
    total_steps, total_epochs : int, optional
        Length of the run (for schedulers that need it).
    """
    Optimizer = getattr(torch.optim, name)

    def configure_optimizers(self):
        try:
            optimizer = Optimizer([p for p in self.parameters() if p.requires_grad], **params)
        except TypeError as e:
            raise ConfigError(f"Invalid optimizer.params for {name}: {e}.") from e
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": build_scheduler(scheduler, optimizer, total_steps, total_epochs)}

    model.configure_optimizers = MethodType(configure_optimizers, model)


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
    Lightning's loop state restores the sampler.
    """

    def __init__(self, path: Path, seed: int):
        self.path = Path(path)
        self.seed = seed
        self.interrupted: Optional[str] = None

    def state_dict(self) -> dict:
        return {"seed": self.seed}

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
    threads (:mod:`pyannote_embloss.machine`). The list travels in the
    checkpoints, so that a run resumed on another machine still says where each
    of its parts was trained.

    Attributes
    ----------
    parts : list of dict
        :func:`~pyannote_embloss.machine.describe_machine` facts, each with
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


def _callbacks(experiment: Experiment, has_validation: bool, every_n_steps: Optional[int], progress_bar: bool):
    def last(**when):
        return ModelCheckpoint(
            dirpath=experiment.checkpoints, filename="last", save_top_k=1, enable_version_counter=False, **when
        )

    # last.ckpt at every epoch end (Lightning's save_last only follows improvements of the monitored metric)
    callbacks = [last(every_n_epochs=1), GradientGuard(), LearningRateMonitor(logging_interval="step")]
    best = None
    if has_validation:  # without development trials, best.ckpt is the last one
        best = ModelCheckpoint(
            dirpath=experiment.checkpoints,
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


def _loggers(experiment: Experiment):
    loggers = [CSVLogger(experiment.directory, name="logs")]
    if experiment.config.get("logger") == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(experiment.directory, name="tensorboard"))
    return loggers


def train(
    experiment: Experiment,
    protocol: Optional[str] = None,
    database: Optional[str] = None,
    max_epochs: Optional[int] = None,
    batches_per_epoch: Optional[int] = None,
    num_workers: Optional[int] = None,
    overwrite: bool = False,
    resume: bool = False,
    progress_bar: bool = True,
    seed: Optional[int] = None,
    pretrained: Optional[str] = None,
    freeze_frontend: bool = False,
    lr: Optional[float] = None,
    checkpoint_every_n_steps: Optional[int] = None,
    trust_checkpoint: bool = False,
    callbacks: Optional[list] = None,
    **trainer_overrides,
) -> dict:
    """Train `experiment` and return its training summary

    Writes `checkpoints/best.ckpt` (lowest development EER, or last epoch
    when the protocol has no development trials), `checkpoints/last.ckpt`,
    CSV logs under `logs/`, `training.json` and `training.png` (loss,
    learning rate, margin and development EER against steps).

    Parameters
    ----------
    experiment : Experiment
    protocol : str, optional
        Protocol name. Defaults to the config's.
    database : str, optional
        database.yml to load. Defaults to $PYANNOTE_DATABASE_CONFIG, then the
        repository's database.yml.
    max_epochs, batches_per_epoch, num_workers : int, optional
        Override the config's budget.
    overwrite : bool, optional
        Delete existing checkpoints first. Without it (or `resume`), training
        an experiment that already has checkpoints is an error.
    resume : bool, optional
        Resume from `checkpoints/last.ckpt`.
    progress_bar : bool, optional
        Show a progress bar. Defaults to True.
    seed : int, optional
        Override the config's seed.
    pretrained : str, optional
        Fine-tune: start from this checkpoint's embedding network (and
        architecture hyper-parameters), with a new loss for the protocol's
        speakers. See :mod:`pyannote_embloss.finetuning`.
    freeze_frontend : bool, optional
        Do not train the front-end (SincNet). Defaults to False.
    lr : float, optional
        Override the optimizer's learning rate.
    checkpoint_every_n_steps : int, optional
        Also write `last.ckpt` every that many training steps. Defaults to
        the config's `checkpoint.every_n_steps`, else epoch ends only.
    trust_checkpoint : bool, optional
        Unpickle anything the `--resume` / `--pretrained` checkpoint holds.
    callbacks : list of lightning.Callback, optional
        Added to the trainer's.
    **trainer_overrides
        accelerator, devices, num_nodes, strategy, precision: override the
        config's `trainer:` section.

    Raises
    ------
    LockedError
        When another process trains (or evaluates) this experiment.
    TrainingDivergedError
        On a non-finite loss or gradient.
    """
    unknown = set(trainer_overrides) - set(TRAINER_OVERRIDES)
    if unknown:
        raise TypeError(f"train() got unexpected keyword argument(s) {sorted(unknown)}")
    if not experiment.trainable:
        raise ConfigError(
            f"{experiment.directory}: architecture '{experiment.config['architecture']['name']}' needs no training: "
            f"evaluate it directly (`pyannote-audio-emb evaluate {experiment.directory}`)."
        )
    with OutputLock(experiment.directory, "train"):
        return _train(
            experiment, protocol, database, max_epochs, batches_per_epoch, num_workers, overwrite, resume,
            progress_bar, seed, pretrained, freeze_frontend, lr, checkpoint_every_n_steps, trust_checkpoint,
            list(callbacks or []), {k: v for k, v in trainer_overrides.items() if v is not None},
        )


def _train(
    experiment, protocol, database, max_epochs, batches_per_epoch, num_workers, overwrite, resume, progress_bar,
    seed, pretrained, freeze_frontend, lr, checkpoint_every_n_steps, trust_checkpoint, extra_callbacks,
    trainer_overrides,
) -> dict:
    protocol_name = experiment.protocol_name(protocol)
    if lr is not None and lr <= 0:
        raise ConfigError(f"The learning rate must be positive (got --lr {lr}).")
    if pretrained is not None:
        from .finetuning import PretrainedCheckpoint

        pretrained = PretrainedCheckpoint(pretrained, trust=trust_checkpoint)  # fail early on a bad checkpoint
    resumed_from = None
    if not is_global_zero():
        pass  # the other processes of a distributed run neither check nor clear outputs: rank 0 does
    elif resume:
        if not experiment.last_checkpoint.is_file():
            raise ConfigError(
                f"--resume: '{experiment.last_checkpoint}' does not exist (nothing to resume): train without --resume."
            )
        # fail early, with a clear message, on a checkpoint that is not plain weights
        resumed_from = int(load_checkpoint(experiment.last_checkpoint, trust=trust_checkpoint).get("global_step", 0))
    elif experiment.checkpoints.exists() and any(experiment.checkpoints.iterdir()):
        if not overwrite:
            raise OutputExistsError(
                f"'{experiment.checkpoints}' already has checkpoints: pass --overwrite to train "
                "from scratch, or --resume to continue from last.ckpt."
            )
        experiment.clear_training_outputs()

    seed = experiment.config["seed"] if seed is None else seed
    seed_everything(seed, workers=True, verbose=False)

    task = build_task(
        experiment,
        get_protocol(protocol_name, database_yml=database),
        batches_per_epoch=batches_per_epoch,
        num_workers=num_workers,
    )
    if pretrained is None:
        model = build_model(experiment, task)
    else:
        from .finetuning import build_pretrained_model

        model, _ = build_pretrained_model(experiment, task, pretrained)
    frozen = []
    if freeze_frontend:
        from .finetuning import freeze_frontend as freeze

        frozen = freeze(model)

    trainer_params = {**experiment.config["trainer"], **trainer_overrides}
    if max_epochs is not None:
        trainer_params["max_epochs"] = max_epochs
    trainer_params.setdefault("max_epochs", 10)
    trainer_params.setdefault("log_every_n_steps", 1)
    trainer_params.setdefault("num_sanity_val_steps", 0)

    optimizer = experiment.config["optimizer"]
    optimizer_params = {**optimizer["params"], **({} if lr is None else {"lr": lr})}
    steps_per_epoch = task.batches_per_epoch
    if steps_per_epoch is None and experiment.config.get("scheduler") is not None:
        raise ConfigError(
            f"{experiment.directory / 'config.yml'}: a scheduler needs task.params.batches_per_epoch "
            "(the number of steps per epoch)."
        )
    configure_optimizer(
        model,
        optimizer["name"],
        optimizer_params,
        scheduler=experiment.config.get("scheduler"),
        total_steps=(steps_per_epoch or 0) * trainer_params["max_epochs"],
        total_epochs=trainer_params["max_epochs"],
    )

    every_n_steps = checkpoint_every_n_steps or experiment.config.get("checkpoint", {}).get("every_n_steps")
    best, callbacks = _callbacks(experiment, task.has_validation, every_n_steps, progress_bar)
    preemption = PreemptionCheckpoint(experiment.last_checkpoint, seed)
    machines = MachineRecord()
    callbacks.extend([preemption, machines])
    callbacks.extend(extra_callbacks)
    margin = experiment.config.get("margin_scheduler")
    if margin is not None:
        if experiment.config["task"]["name"] not in MARGIN_LOSSES:
            raise ConfigError(
                f"{experiment.directory / 'config.yml'}: margin_scheduler is for the margin losses "
                f"({', '.join(MARGIN_LOSSES)}), not '{experiment.config['task']['name']}'."
            )
        callbacks.append(MarginScheduler(task.loss_func_params()["margin"], **margin))

    trainer = Trainer(
        default_root_dir=experiment.directory,
        callbacks=callbacks,
        logger=_loggers(experiment),
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        **trainer_params,
    )

    start = time.perf_counter()
    try:
        with safe_globals():
            trainer.fit(
                model,
                ckpt_path=str(experiment.last_checkpoint) if resume else None,
                weights_only=None if not resume else not trust_checkpoint,
            )
    except (KeyboardInterrupt, SIGTERMException, SystemExit):
        if preemption.interrupted and trainer.is_global_zero:
            raise TrainingInterrupted(
                f"Training interrupted ({preemption.interrupted}) at step {trainer.global_step}, epoch "
                f"{trainer.current_epoch}: '{experiment.last_checkpoint}' was saved; continue with "
                f"`pyannote-audio-emb train {experiment.directory} --resume`."
            ) from None
        raise
    elapsed = time.perf_counter() - start

    if not trainer.is_global_zero:
        return {}
    best_path = Path((best and best.best_model_path) or experiment.last_checkpoint)
    if best_path.resolve() != experiment.best_checkpoint.resolve():
        with atomic_path(experiment.best_checkpoint) as tmp:
            shutil.copyfile(best_path, tmp)

    previous = experiment.read_training_summary() if resume and experiment.training_summary.is_file() else {}
    best_score = None if best is None else best.best_model_score
    summary = {
        "experiment": experiment.name,
        "protocol": protocol_name,
        "task": experiment.config["task"]["name"],
        "seed": preemption.seed,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "training_time_s": round(elapsed + (previous.get("training_time_s", 0.0) if resume else 0.0), 1),
        "batch_size": task.batch_size,
        "world_size": trainer.world_size,
        "effective_batch_size": task.batch_size * trainer.world_size,
        "num_speakers": len(task.speakers),
        "num_classes": len(task.specifications.classes),
        "dev_eer": None if best_score is None else float(best_score),
        "model_parameters": count_parameters(model) - count_parameters(getattr(model, "loss_func", None)),
        "loss_parameters": count_parameters(getattr(model, "loss_func", None)),
        "checkpoint": str(experiment.best_checkpoint),
        "pretrained": None if pretrained is None else str(pretrained.path),
        "frozen": frozen,
        "lr": optimizer_params.get("lr"),
        "resumed": bool(resume) or bool(previous.get("resumed")),
        "resumed_from_steps": previous.get("resumed_from_steps", []) + ([resumed_from] if resume else []),
        "skipped_files": sorted(task.bad_files),
        "machine": describe_machine(),
        "machines": machines.parts,
    }
    atomic_write_text(experiment.training_summary, json.dumps(summary, indent=2) + "\n")
    try:
        from .curves import plot_training

        summary["plot"] = str(plot_training(sorted(experiment.logs.glob("version_*/metrics.csv")), experiment.training_plot))
    except FileNotFoundError:  # no metrics logged (e.g. zero steps)
        pass
    return summary

