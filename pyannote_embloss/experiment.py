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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

CONFIG = "config.yml"
#: the default recipe, which `train NEW_DIR PROTOCOL` starts from (experiments/aam/config.yml links to it)
DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "aam.yml"
SECTIONS = {
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
    "description",
}


from .errors import ConfigError, MissingFileError
from .io import atomic_write_text


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


def _logger(value, path: Path) -> str:
    loggers = ("csv", "tensorboard")
    if value not in loggers:
        raise ConfigError(f"{path}: unknown logger {value!r}: use one of {', '.join(loggers)}.")
    if value == "tensorboard":
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{path}: 'logger: tensorboard' needs the tensorboard package (pip install tensorboard)."
            ) from None
    return value


def _checkpointing(value, path: Path) -> dict:
    value = dict(value or {})
    unknown = set(value) - {"every_n_steps"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)} in 'checkpoint': only 'every_n_steps'.")
    every = value.get("every_n_steps")
    if every is not None and (not isinstance(every, int) or every < 1):
        raise ConfigError(f"{path}: checkpoint.every_n_steps must be a positive integer (got {every!r}).")
    return value


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
    def create(cls, directory, protocol: str) -> "Experiment":
        """A new experiment directory holding the default recipe (:data:`DEFAULT_RECIPE`) for `protocol`

        The recipe is experiments/aam's: SincTDNN with a log-mel front-end,
        additive angular margin, one-cycle AdamW, margin schedule, speed
        perturbation, babble and reverberation (its comments say why).

        Raises
        ------
        ConfigError
            When `directory` exists and is not empty.
        """
        directory = Path(directory)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise ConfigError(
                f"No {CONFIG} in '{directory}', which is not empty: create one there "
                f"(e.g. a copy of {DEFAULT_RECIPE}), or name a new directory to start from the default recipe."
            )
        text = re.sub(r"^protocol: .*$", f"protocol: {protocol}", DEFAULT_RECIPE.read_text(), count=1, flags=re.M)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(directory / CONFIG, text)
        return cls.load(directory)

    @classmethod
    def load_or_create(cls, directory, protocol: Optional[str] = None) -> "Experiment":
        """:meth:`load` the experiment, or :meth:`create` it with the default recipe when `directory` is new

        A directory without config.yml gets the default recipe when a
        `protocol` is given (and it is new or empty); otherwise, as :meth:`load`.
        """
        if protocol is not None and not (Path(directory) / CONFIG).exists():
            return cls.create(directory, protocol)
        return cls.load(directory)

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
                f"(see experiments/aam/config.yml for an example: {DEFAULT_RECIPE}), or give `train` a new "
                "directory and a protocol to start from the default recipe."
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

        from .models import get_architecture, is_trainable
        from .tasks import get_task_class

        try:
            architecture = _section(config, "architecture", path, default_name="SincTDNN")
            trainable = is_trainable(get_architecture(architecture["name"]))
        except ValueError as e:
            raise ConfigError(f"{path}: {e}") from e
        validated = {
            "protocol": config.get("protocol"),
            "seed": int(config.get("seed", 0)),
            "architecture": architecture,
            "description": config.get("description", ""),
        }
        if not trainable:
            extra = sorted(set(config) - {"protocol", "seed", "architecture", "description"})
            if extra:
                raise ConfigError(
                    f"{path}: architecture '{architecture['name']}' needs no training: remove the "
                    f"training section(s) {extra}."
                )
            return cls(directory=directory, config=validated)

        validated.update(
            task=_section(config, "task", path),
            optimizer=_section(config, "optimizer", path, default_name="Adam"),
            trainer=dict(config.get("trainer") or {}),
        )
        try:
            get_task_class(validated["task"]["name"])
        except ValueError as e:
            raise ConfigError(f"{path}: {e}") from e

        import torch

        if not hasattr(torch.optim, validated["optimizer"]["name"]):
            raise ConfigError(
                f"{path}: unknown optimizer '{validated['optimizer']['name']}': use the name of a "
                "torch.optim class (e.g. SGD, Adam, AdamW)."
            )
        from .schedules import check_margin_scheduler, check_scheduler
        from .augmentation import check_augmentation

        validated["scheduler"] = check_scheduler(config.get("scheduler"), path)
        validated["margin_scheduler"] = check_margin_scheduler(config.get("margin_scheduler"), path)
        validated["augmentation"] = check_augmentation(config.get("augmentation"), path)
        validated["logger"] = _logger(config.get("logger", "csv"), path)
        validated["checkpoint"] = _checkpointing(config.get("checkpoint"), path)
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

    @property
    def training_plot(self) -> Path:
        return self.directory / "training.png"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    def clear_training_outputs(self) -> None:
        """Delete checkpoints, logs, training.json and training.png (before training from scratch)"""
        import shutil

        for directory in (self.checkpoints, self.logs, self.directory / "tensorboard"):
            if directory.exists():
                shutil.rmtree(directory)
        self.training_summary.unlink(missing_ok=True)
        self.training_plot.unlink(missing_ok=True)

    def protocol_name(self, protocol: Optional[str] = None) -> str:
        """Protocol given on the command line, else the config's default"""
        name = protocol or self.config.get("protocol")
        if not name:
            raise ConfigError(
                f"No protocol given and {self.directory / CONFIG} has no default 'protocol'."
            )
        return name

    @property
    def trainable(self) -> bool:
        """False for training-free architectures (e.g. the log-mel statistics baseline)"""
        return "task" in self.config

    def is_trained(self) -> bool:
        """Whether a checkpoint and its training summary exist (always True when there is nothing to train)"""
        if not self.trainable:
            return True
        return self.best_checkpoint.is_file() and self.training_summary.is_file()

    def checkpoint(self, path=None) -> Optional[Path]:
        """The checkpoint to use: `path`, else the best checkpoint

        Returns
        -------
        checkpoint : Path or None
            None for training-free architectures (without `path`).

        Raises
        ------
        MissingFileError
            When the checkpoint does not exist, saying how to train the experiment.
        """
        if path is None and not self.trainable:
            return None
        checkpoint = Path(path) if path is not None else self.best_checkpoint
        if not checkpoint.is_file():
            raise MissingFileError(
                f"No checkpoint '{checkpoint}': train first with `pyannote-audio-emb train {self.directory}`."
            )
        return checkpoint

    def load_model(self, checkpoint=None, trust: bool = False):
        """The experiment's embedding model, for inference

        Parameters
        ----------
        checkpoint : str or Path, optional
            Defaults to :meth:`checkpoint`.
        trust : bool, optional
            Unpickle anything the checkpoint holds (see
            :func:`pyannote_embloss.checkpoint.load_checkpoint`). Defaults to False.
        """
        from .inference import load_model

        path = self.checkpoint(checkpoint)
        if path is None:
            from .models import get_architecture

            section = self.config["architecture"]
            try:
                model = get_architecture(section["name"])(**section["params"])
            except TypeError as e:
                raise ConfigError(
                    f"{self.directory / CONFIG}: invalid architecture.params for '{section['name']}': {e}."
                ) from e
            return load_model(model)
        return load_model(path, trust=trust)

    def read_training_summary(self) -> dict:
        return json.loads(self.training_summary.read_text())
