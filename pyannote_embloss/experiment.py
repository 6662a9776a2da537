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
`training.json`; evaluation writes `results/`. :meth:`Experiment.load` reads
config.yml once into an :class:`~pyannote_embloss.config.ExperimentConfig`
(typed sections, every error reported at load time).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from .config import ExperimentConfig
from .errors import ConfigError, MissingFileError
from .io import atomic_write_text

CONFIG = "config.yml"
#: where Experiment.load remembers that config.yml was checked (ExperimentConfig.read's memo; safe to delete)
CONFIG_CHECKED = ".config-checked.json"
#: the default recipe, which `train NEW_DIR PROTOCOL` starts from (experiments/aam/config.yml links to it)
DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "aam.yml"


@dataclass
class Experiment:
    """An experiment directory and its validated configuration

    Parameters
    ----------
    directory : Path
        Experiment directory.
    config : ExperimentConfig
        Its validated config.yml. A mapping of config.yml's sections is
        validated into one (errors name `directory`/config.yml).
    """

    directory: Path
    config: ExperimentConfig
    #: made by :meth:`create` in this process: :meth:`discard_if_unused` may remove it
    created: bool = field(default=False, compare=False)

    def __post_init__(self):
        self.directory = Path(self.directory)
        if isinstance(self.config, Mapping):
            self.config = ExperimentConfig.from_dict(dict(self.config), self.directory / CONFIG)

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
        experiment = cls.load(directory)
        experiment.created = True
        return experiment

    def discard_if_unused(self) -> bool:
        """Remove what :meth:`create` wrote (config.yml, and the directory when it is empty then), if nothing else is there

        A command refused before it wrote anything leaves nothing behind.
        """
        if not self.created or not self.directory.is_dir():
            return False
        leftovers = {p.name for p in self.directory.iterdir()} - {CONFIG, ".pyannote-embloss.lock"}
        if leftovers:
            return False
        for name in (CONFIG, ".pyannote-embloss.lock"):
            (self.directory / name).unlink(missing_ok=True)
        try:
            self.directory.rmdir()
        except OSError:
            pass
        return True

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
        """Read and validate `directory/config.yml` (:meth:`ExperimentConfig.read`)

        Raises
        ------
        ConfigError
            When the directory or config.yml is missing, or config.yml holds
            any error (see :mod:`pyannote_embloss.config`).
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
        return cls(directory=directory, config=ExperimentConfig.read(path, memo=directory / CONFIG_CHECKED))

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

    def remember_config_checked(self) -> None:
        """Remember that config.yml is valid, so that the next :meth:`load` checks less (:meth:`ExperimentConfig.remember`)"""
        self.config.remember(self.directory / CONFIG_CHECKED)

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
        name = protocol or self.config.protocol
        if not name:
            raise ConfigError(
                f"No protocol given and {self.directory / CONFIG} has no default 'protocol'."
            )
        return name

    @property
    def trainable(self) -> bool:
        """False for training-free architectures (e.g. the log-mel statistics baseline)"""
        return self.config.trainable

    def is_trained(self) -> bool:
        """Whether a checkpoint and its training summary exist (always True when there is nothing to train)"""
        if not self.trainable:
            return True
        return self.best_checkpoint.is_file() and self.training_summary.is_file()

    def checkpoint(self, path=None) -> Optional[Path]:
        """The checkpoint to use: `path`, else the best checkpoint

        Parameters
        ----------
        path : str or Path, optional
            A checkpoint file, or the bare name of one of the experiment's
            (e.g. "best-epoch" for checkpoints/best-epoch.ckpt, "average", "main", "last").

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
        if path is not None and not checkpoint.exists() and checkpoint.name == str(path) and not checkpoint.suffix:
            checkpoint = self.checkpoints / f"{path}.ckpt"
        if not checkpoint.is_file():
            raise MissingFileError(
                f"No checkpoint '{checkpoint}': train first with `pyannote-audio-emb train {self.directory}`."
            )
        return checkpoint

    def read_training_summary(self) -> dict:
        return json.loads(self.training_summary.read_text())
