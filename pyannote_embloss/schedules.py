"""Learning-rate and margin schedules, from config.yml

    scheduler:                  # any torch.optim.lr_scheduler class, by name
      name: OneCycleLR
      interval: step            # step (default) or epoch
      params: {max_lr: 0.005, pct_start: 0.15}   # OneCycleLR's total_steps defaults to the run's

    scheduler:                  # warm-up then exponential decay (WeSpeaker)
      name: SequentialLR
      params:
        schedulers:
          - {name: LinearLR, params: {start_factor: 0.1, total_iters: 100}}
          - {name: ExponentialLR, params: {gamma: 0.998}}
        milestones: [100]

    margin_scheduler:           # losses with a margin (AAM, AM): `initial` until start_step, then up to the loss' margin
      initial: 0.0
      start_step: 100
      end_step: 500
      increase: linear          # or exp (WeSpeaker's MarginScheduler)

Steps are optimizer steps counted over all devices (Lightning's
``global_step``), so that schedules resume exactly and do not depend on the
number of GPUs.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from lightning.pytorch.callbacks import Callback

from .errors import ConfigError, did_you_mean

__all__ = ["SchedulerConfig", "MarginSchedulerConfig", "check_scheduler", "check_margin_scheduler", "build_scheduler", "MarginScheduler", "margin_at"]


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

    See :func:`pyannote_embloss.schedules.margin_at`.
    """

    initial: float = 0.0
    start_step: int = 0
    end_step: int = 0
    increase: str = "linear"


def _scheduler_class(name, path: Path):
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
    accepted = sorted(set(inspect.signature(Klass.__init__).parameters) - {"self", "optimizer"})
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


def _build(spec: dict, optimizer, total: int):
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


# ---------------------------------------------------------------- margin


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


def margin_at(step: int, final: float, initial: float = 0.0, start_step: int = 0, end_step: int = 0,
              increase: str = "linear") -> float:
    """Margin at optimizer step `step`

    `initial` up to `start_step`, `final` from `end_step` on, and in between
    a linear ramp, or WeSpeaker's exponential one
    (``final - (final - initial) * exp(-5 r)`` rescaled so that it reaches
    `final` at `end_step`, r being the position in the ramp).
    """
    if step <= start_step:
        return initial
    if step >= end_step:
        return final
    r = (step - start_step) / (end_step - start_step)
    if increase == "exp":
        r = (1.0 - math.exp(-5.0 * r)) / (1.0 - math.exp(-5.0))
    return initial + (final - initial) * r


class MarginScheduler(Callback):
    """Sets the loss' margin before every training step (see :func:`margin_at`)

    Parameters
    ----------
    final : float
        Target margin (the loss' configured margin).
    initial, start_step, end_step, increase
        See :func:`margin_at`.
    """

    def __init__(self, final: float, initial: float = 0.0, start_step: int = 0, end_step: int = 0,
                 increase: str = "linear"):
        self.final = final
        self.settings = dict(initial=initial, start_step=start_step, end_step=end_step, increase=increase)

    def margin(self, step: int) -> float:
        return margin_at(step, self.final, **self.settings)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        margin = self.margin(trainer.global_step)
        pl_module.loss_func.margin = margin
        pl_module.log("margin", margin, on_step=True, on_epoch=False, prog_bar=False, logger=True, batch_size=1)
