"""The effective configuration of a training run, and its hash

What a run trains is set by its experiment's validated ``config.yml`` and by
the command-line options of ``train`` that change training: the protocol,
the seed, the budget (``--max-epochs``, ``--batches-per-epoch``), the data
loading workers (each draws its own chunks), the learning rate, fine-tuning
(``--pretrained``, ``--freeze-frontend``) and the trainer overrides
(devices, nodes, strategy, precision). :func:`effective_config` gathers them
into one mapping, without the sections that do not change the trained
weights (description, logger, checkpointing), and :func:`config_hash` hashes it.

``training.json`` records both (``config``, ``config_hash``) and the run's
checkpoints the hash, so that ``compare`` retrains a run whose config
changed since it was trained (:func:`changed_keys` says what changed).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..config import TRAINER_DEFAULTS

if TYPE_CHECKING:
    from ..config import ExperimentConfig

__all__ = ["effective_config", "config_hash", "changed_keys"]

#: config.yml sections that do not change what a run trains
NOT_TRAINING = ("description", "logger", "checkpoint")
#: lightning.Trainer arguments a run gets unless config.yml sets them


def effective_config(
    config: "ExperimentConfig",
    protocol: str,
    seed: Optional[int] = None,
    max_epochs: Optional[int] = None,
    batches_per_epoch: Optional[int] = None,
    num_workers: Optional[int] = None,
    lr: Optional[float] = None,
    pretrained: Optional[str] = None,
    freeze_frontend: bool = False,
    trainer_overrides: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """The configuration a training run actually trains with

    Parameters
    ----------
    config : ExperimentConfig
        Validated config.yml of a trainable experiment (``Experiment.config``).
    protocol : str
        The protocol it trains on.
    seed, max_epochs, batches_per_epoch, num_workers, lr : optional
        Command-line overrides (None: the config's).
    pretrained : str, optional
        Checkpoint it is fine-tuned from.
    freeze_frontend : bool, optional
        Whether the front-end is frozen.
    trainer_overrides : dict, optional
        accelerator, devices, num_nodes, strategy, precision.

    Returns
    -------
    effective : dict
        `config` as a mapping (:meth:`ExperimentConfig.to_dict`) without
        :data:`NOT_TRAINING` sections, the overrides applied.
    """
    mapping = config.to_dict()
    effective = {key: value for key, value in mapping.items() if key not in NOT_TRAINING}
    average_last = (mapping.get("checkpoint") or {}).get("average_last")
    if average_last:  # which weights the run ends with (and the large-margin stage starts from)
        effective["average_last"] = average_last
    effective["protocol"] = protocol
    if seed is not None:
        effective["seed"] = seed
    task_overrides = {"batches_per_epoch": batches_per_epoch, "num_workers": num_workers}
    effective["task"]["params"].update({key: value for key, value in task_overrides.items() if value is not None})
    if lr is not None:
        effective["optimizer"]["params"]["lr"] = lr
    trainer = effective["trainer"]
    trainer.update({key: value for key, value in (trainer_overrides or {}).items() if value is not None})
    if max_epochs is not None:
        trainer["max_epochs"] = max_epochs
    for key, value in TRAINER_DEFAULTS.items():
        trainer.setdefault(key, value)
    if pretrained is not None:
        effective["pretrained"] = {"checkpoint": str(pretrained), "freeze_frontend": freeze_frontend}
    elif freeze_frontend:
        effective["freeze_frontend"] = True
    return effective


def _canonical(config: Dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def config_hash(effective: Dict[str, Any]) -> str:
    """SHA-256 of `effective` (its canonical JSON: sorted keys)"""
    return hashlib.sha256(_canonical(effective).encode()).hexdigest()


def changed_keys(old: Any, new: Any, prefix: str = "") -> List[str]:
    """Dotted keys whose values differ between two effective configs (e.g. "optimizer.params.lr")"""
    if isinstance(old, dict) and isinstance(new, dict):
        changed = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{prefix}{key}"
            if key not in old or key not in new:
                changed.append(name)
            else:
                changed += changed_keys(old[key], new[key], f"{name}.")
        return changed
    same = json.loads(_canonical({"value": old})) == json.loads(_canonical({"value": new}))
    return [] if same else [prefix.rstrip(".")]
