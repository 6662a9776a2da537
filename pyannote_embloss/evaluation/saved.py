"""An experiment's saved test evaluation: its calibrations, the checkpoint they fit, its PLDA

``pyannote-audio-emb evaluate EXP`` writes ``EXP/results/<protocol>.test.json``
with, for each scoring, a calibration fitted on the development trials
(:mod:`pyannote_embloss.evaluation.verification`), and exports the PLDA to
``EXP/results/<protocol>.plda/``. :class:`SavedEvaluation` reads them back
for ``verify`` and ``score`` (:mod:`pyannote_embloss.evaluation.verify`), and refuses,
saying what to run, when they are missing or older than the checkpoint::

    saved = SavedEvaluation.load(Experiment.load("experiments/aam"))
    decide = saved.decision("cosine", far=0.01)     # Decision: scores -> (llr, same speaker)
    scoring = saved.scoring("plda")                 # PLDAScoring (None for cosine)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import ConfigError, DataError
from ..experiment import Experiment
from .decisions import Decision
from .plda import PLDA, PLDAScoring

__all__ = ["SavedEvaluation", "SCORINGS"]

#: scorings that pairs of files can be scored with, without the training data
SCORINGS = ("cosine", "plda")


@dataclass
class SavedEvaluation:
    """The results of ``evaluate`` on an experiment's test trials

    Parameters
    ----------
    experiment : Experiment
    path : Path
        The results JSON file.
    results : dict
        Its content.
    """

    experiment: Experiment
    path: Path
    results: dict

    @classmethod
    def load(cls, experiment: Experiment, protocol: Optional[str] = None, database=None) -> "SavedEvaluation":
        """The saved evaluation of the test trials of `protocol` (the config's by default)

        Parameters
        ----------
        experiment : Experiment
        protocol : str, optional
        database : str or Path, optional
            database.yml declaring `protocol` (defaults to those pyannote.database
            loads), read only when `protocol` has no saved evaluation.

        Raises
        ------
        DataError
            When the experiment was not evaluated on its test trials, saying
            how to evaluate it, or when `protocol` is unknown (not declared).
        """
        protocol_name = experiment.protocol_name(protocol)
        path = experiment.results / f"{protocol_name}.test.json"
        if not path.is_file():
            if protocol is not None:
                _check_declared(protocol, database)
            Decision(None, experiment=str(experiment.directory))  # raises: "run `... evaluate EXP --subset test`"
        try:
            results = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise DataError(f"{path} is not valid JSON ({error}): evaluate the experiment again.") from None
        return cls(experiment=experiment, path=path, results=results)

    def _metrics(self, scoring: str) -> dict:
        if scoring not in SCORINGS:
            raise ConfigError(
                f"Pairs of files are scored with {' or '.join(SCORINGS)}, not '{scoring}' "
                "(score normalisations need the training cohort, which is not saved)."
            )
        if scoring == "cosine":
            return self.results
        metrics = self.results.get("normalized", {}).get(scoring)
        if metrics is None:
            raise DataError(
                f"{self.path} has no {scoring} scores: evaluate without --no-norm "
                f"(`pyannote-audio-emb evaluate {self.experiment.directory}`), which fits and calibrates a PLDA."
            )
        return metrics

    def decision(
        self, scoring: str = "cosine", far: Optional[float] = None, prior: Optional[float] = None
    ) -> Decision:
        """The calibrated decision of a scoring at an operating point (see :class:`Decision`)

        Raises
        ------
        DataError
            When the evaluation has no calibration (saying why, and how to get one).
        ConfigError
            On an invalid operating point or scoring.
        """
        calibration = self._metrics(scoring).get("calibration")
        if calibration is None and self.results.get("calibration_note"):
            raise DataError(f"{self.path} has no score calibration. {self.results['calibration_note']}")
        return Decision(calibration, far=far, prior=prior, scoring=scoring, experiment=str(self.experiment.directory))

    def scoring(self, scoring: str = "cosine") -> Optional[PLDAScoring]:
        """What :meth:`Trials.score` takes to score with `scoring`: None (cosine) or a PLDAScoring

        Raises
        ------
        DataError, MissingFileError
            When the evaluation has no PLDA, or its files are missing.
        """
        self._metrics(scoring)
        if scoring == "cosine":
            return None
        directory = self.results.get("plda", {}).get("directory")
        if directory is None or not Path(directory).is_dir():  # e.g. a moved experiment
            directory = self.path.with_name(f"{self.results['protocol']}.plda")
        return PLDAScoring(PLDA.load(directory))

    def checkpoint(self) -> Optional[Path]:
        """The checkpoint the calibration was fitted with (None for training-free experiments)

        Looked for under the experiment's checkpoints/ first (the experiment
        may have been moved or copied), then where it was.

        Raises
        ------
        MissingFileError
            When it does not exist anymore.
        DataError
            When it changed after the evaluation (the calibration is stale).
        """
        recorded = self.results.get("checkpoint")
        if recorded in (None, "None"):
            return None
        path = Path(recorded)
        if (self.experiment.checkpoints / path.name).is_file():
            path = self.experiment.checkpoints / path.name
        path = self.experiment.checkpoint(path)
        self.check_checkpoint(path)
        return path

    def check_checkpoint(self, checkpoint: Optional[Path]) -> None:
        """Refuse a checkpoint other than the calibrated one, or changed since

        Raises
        ------
        ConfigError
            When `checkpoint` is not the one the evaluation used.
        DataError
            When it was written after the evaluation.
        """
        recorded = self.results.get("checkpoint")
        evaluate = f"`pyannote-audio-emb evaluate {self.experiment.directory} --subset test"
        if recorded in (None, "None") or checkpoint is None:
            if (recorded in (None, "None")) != (checkpoint is None):
                raise ConfigError(
                    f"The calibration in {self.path} was fitted with checkpoint {recorded}, not {checkpoint}: "
                    f"evaluate that one ({evaluate} --checkpoint CKPT`)."
                )
            return
        if Path(recorded).name != Path(checkpoint).name:
            raise ConfigError(
                f"The calibration in {self.path} was fitted with checkpoint {recorded}, not {checkpoint}: "
                f"evaluate that one ({evaluate} --checkpoint {checkpoint}`)."
            )
        if Path(checkpoint).stat().st_mtime > self.path.stat().st_mtime:
            raise DataError(
                f"Checkpoint {checkpoint} was written after its calibration ({self.path}): "
                f"evaluate it again ({evaluate}`)."
            )


def _check_declared(protocol: str, database=None) -> None:
    """Refuse a protocol that no database.yml declares (a typo, or a missing --database), naming where it looked"""
    from ..data.protocols import database_ymls, load_registry

    paths = database_ymls(database)
    known = sorted(load_registry(paths))
    if protocol not in known:
        where = ", ".join(str(path) for path in paths) or "no database.yml"
        raise DataError(
            f"Unknown protocol '{protocol}' (looked in {where}): pass --database FILE, the database.yml that "
            f"declares it. Known protocols: {', '.join(known) or 'none'}."
        )
