"""Train an experiment: config.yml → task + model + optimizer → Lightning Trainer"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from types import MethodType
from typing import Any, Dict, Optional

import torch
from lightning import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from pyannote.audio.core.model import Model

from .experiment import ConfigError, Experiment
from .io import atomic_path, atomic_write_text
from .models import get_architecture
from .protocols import get_protocol
from .tasks import get_task_class


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
    Klass = get_task_class(section["name"])
    try:
        return Klass(protocol, **params)
    except TypeError as e:
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


def configure_optimizer(model: Model, name: str, params: Dict[str, Any]) -> None:
    """Make `model` train with `torch.optim.<name>(**params)`

    The optimizer covers every trainable parameter of the model, including
    the loss' own (``model.loss_func``: classifier weights, centers).
    pyannote.audio's own training recipes set it the same way.

    Parameters
    ----------
    model : Model
    name : str
        Name of a torch.optim class, e.g. "SGD".
    params : dict
        Its keyword arguments, e.g. {"lr": 0.01, "momentum": 0.95, "nesterov": True}.
    """
    Optimizer = getattr(torch.optim, name)

    def configure_optimizers(self):
        return Optimizer([p for p in self.parameters() if p.requires_grad], **params)

    model.configure_optimizers = MethodType(configure_optimizers, model)


def count_parameters(module: Optional[torch.nn.Module]) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters())


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
) -> dict:
    """Train `experiment` and return its training summary

    Writes `checkpoints/best.ckpt` (lowest development EER, or last epoch
    when the protocol has no development trials), `checkpoints/last.ckpt`,
    CSV logs under `logs/`, and `training.json`.

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
    """
    protocol_name = experiment.protocol_name(protocol)
    if lr is not None and lr <= 0:
        raise ValueError(f"The learning rate must be positive (got --lr {lr}).")
    if pretrained is not None:
        from .finetuning import PretrainedCheckpoint

        pretrained = PretrainedCheckpoint(pretrained)  # fail early on a bad checkpoint
    if experiment.checkpoints.exists() and any(experiment.checkpoints.iterdir()):
        if overwrite:
            shutil.rmtree(experiment.checkpoints)
            experiment.training_summary.unlink(missing_ok=True)
        elif not (resume and experiment.last_checkpoint.is_file()):
            raise FileExistsError(
                f"'{experiment.checkpoints}' already has checkpoints: pass --overwrite to train "
                "from scratch, or --resume to continue from last.ckpt."
            )

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
    optimizer = experiment.config["optimizer"]
    optimizer_params = {**optimizer["params"], **({} if lr is None else {"lr": lr})}
    configure_optimizer(model, optimizer["name"], optimizer_params)

    has_validation = task.has_validation
    checkpoint = ModelCheckpoint(
        dirpath=experiment.checkpoints,
        filename="best",
        monitor="EqualErrorRate" if has_validation else None,
        mode="min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    trainer_params = dict(experiment.config["trainer"])
    if max_epochs is not None:
        trainer_params["max_epochs"] = max_epochs
    trainer_params.setdefault("max_epochs", 10)
    trainer_params.setdefault("log_every_n_steps", 1)
    trainer_params.setdefault("num_sanity_val_steps", 0)
    trainer = Trainer(
        default_root_dir=experiment.directory,
        callbacks=[checkpoint, TQDMProgressBar()] if progress_bar else [checkpoint],
        logger=CSVLogger(experiment.directory, name="logs"),
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        **trainer_params,
    )

    start = time.perf_counter()
    trainer.fit(model, ckpt_path=str(experiment.last_checkpoint) if resume else None)
    elapsed = time.perf_counter() - start

    best = Path(checkpoint.best_model_path or checkpoint.last_model_path)
    if best.resolve() != experiment.best_checkpoint.resolve():
        with atomic_path(experiment.best_checkpoint) as tmp:
            shutil.copyfile(best, tmp)

    best_score = checkpoint.best_model_score
    summary = {
        "experiment": experiment.name,
        "protocol": protocol_name,
        "task": experiment.config["task"]["name"],
        "seed": seed,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "training_time_s": round(elapsed, 1),
        "batch_size": task.batch_size,
        "num_speakers": len(task.specifications.classes),
        "dev_eer": None if best_score is None else float(best_score),
        "model_parameters": count_parameters(model) - count_parameters(getattr(model, "loss_func", None)),
        "loss_parameters": count_parameters(getattr(model, "loss_func", None)),
        "checkpoint": str(experiment.best_checkpoint),
        "pretrained": None if pretrained is None else str(pretrained.path),
        "frozen": frozen,
        "lr": optimizer_params.get("lr"),
    }
    atomic_write_text(experiment.training_summary, json.dumps(summary, indent=2) + "\n")
    return summary
