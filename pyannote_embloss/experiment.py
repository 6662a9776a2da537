"""Experiment directories: `config.yml` in, checkpoints, logs and results out

An experiment directory holds a `config.yml`::

    protocol: SpeechOcean762.SpeakerVerification.Default   # default protocol
    seed: 0
    task:                     # one of pyannote_embloss.tasks.TASKS
      name: aam
      params: {duration: 2.0, num_classes_per_batch: 125, margin: 0.05, scale: 10.0}
    architecture:             # one of pyannote_embloss.models.ARCHITECTURES
      name: SincTDNN
      params: {stride: 5}
    optimizer:                # any torch.optim class
      name: SGD
      params: {lr: 0.01, momentum: 0.95, nesterov: true}
    trainer:                  # any lightning.Trainer keyword argument
      max_epochs: 10

and training writes `checkpoints/` (`best.ckpt`, `last.ckpt`), `logs/` and
`training.json`; evaluation writes `results/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

CONFIG = "config.yml"
SECTIONS = {"protocol", "seed", "task", "architecture", "optimizer", "trainer", "description"}


class ConfigError(ValueError):
    """An experiment's config.yml is missing or invalid"""


def _section(config: dict, key: str, path: Path, default_name: Optional[str] = None) -> dict:
    value = config.get(key, {} if default_name else None)
    if value is None:
        raise ConfigError(f"{path}: missing '{key}' section (with a 'name' and optional 'params').")
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{key}' must be a mapping with 'name' and 'params', got {value!r}.")
    unknown = set(value) - {"name", "params"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)} in '{key}': only 'name' and 'params' are allowed."
        )
    name = value.get("name", default_name)
    if not name:
        raise ConfigError(f"{path}: '{key}' has no 'name'.")
    params = value.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: '{key}.params' must be a mapping, got {params!r}.")
    return {"name": str(name), "params": dict(params)}


@dataclass
class Experiment:
    """An experiment directory and its validated configuration

    Parameters
    ----------
    directory : Path
        Experiment directory.
    config : dict
        Validated configuration (see module docstring).
    """

    directory: Path
    config: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, directory) -> "Experiment":
        """Read and validate `directory/config.yml`

        Raises
        ------
        ConfigError
            When the directory or config.yml is missing, is not valid YAML, or
            has unknown sections, task or architecture names.
        """
        directory = Path(directory)
        path = directory / CONFIG
        if not directory.is_dir():
            raise ConfigError(f"Experiment directory '{directory}' does not exist.")
        if not path.is_file():
            raise ConfigError(
                f"No {CONFIG} in experiment directory '{directory}': create one "
                "(see experiments/aam/config.yml for an example)."
            )
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from e
        if not isinstance(config, dict):
            raise ConfigError(f"{path} must be a YAML mapping of sections, got {type(config).__name__}.")

        unknown = set(config) - SECTIONS
        if unknown:
            raise ConfigError(
                f"{path}: unknown section(s) {sorted(unknown)}; known sections: {sorted(SECTIONS)}."
            )

        from .models import get_architecture
        from .tasks import get_task_class

        validated = {
            "protocol": config.get("protocol"),
            "seed": int(config.get("seed", 0)),
            "task": _section(config, "task", path),
            "architecture": _section(config, "architecture", path, default_name="SincTDNN"),
            "optimizer": _section(config, "optimizer", path, default_name="Adam"),
            "trainer": dict(config.get("trainer") or {}),
            "description": config.get("description", ""),
        }
        try:
            get_task_class(validated["task"]["name"])
            get_architecture(validated["architecture"]["name"])
        except ValueError as e:
            raise ConfigError(f"{path}: {e}") from e

        import torch

        if not hasattr(torch.optim, validated["optimizer"]["name"]):
            raise ConfigError(
                f"{path}: unknown optimizer '{validated['optimizer']['name']}': use the name of a "
                "torch.optim class (e.g. SGD, Adam, AdamW)."
            )
        return cls(directory=directory, config=validated)

    @property
    def name(self) -> str:
        return self.directory.resolve().name

    @property
    def checkpoints(self) -> Path:
        return self.directory / "checkpoints"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def results(self) -> Path:
        return self.directory / "results"

    @property
    def training_summary(self) -> Path:
        return self.directory / "training.json"

    def protocol_name(self, protocol: Optional[str] = None) -> str:
        """Protocol given on the command line, else the config's default"""
        name = protocol or self.config.get("protocol")
        if not name:
            raise ConfigError(
                f"No protocol given and {self.directory / CONFIG} has no default 'protocol'."
            )
        return name

    def is_trained(self) -> bool:
        return self.best_checkpoint.is_file() and self.training_summary.is_file()

    def read_training_summary(self) -> dict:
        return json.loads(self.training_summary.read_text())
