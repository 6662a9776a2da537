"""Same speaker or not? Score, calibrated log-likelihood ratio and decision for pairs of audio files

With an experiment evaluated on its test trials (which calibrates its scores
on the development trials, :mod:`pyannote_embloss.evaluation.verification`)::

    verdict = verify("experiments/aam", "a.wav", "b.wav")       # at FAR 1 %, cosine
    verdict.score, verdict.llr, verdict.same_speaker
    score_trial_list("experiments/aam", "trials.txt", "scores.csv", prior=0.01)

or, from a loaded model, ``pyannote_embloss.load("experiments/aam").verify("a.wav", "b.wav")``.
Files are embedded whole, as ``evaluate`` embeds trial files, so that the
calibration applies; each file once. The command line is

    pyannote-audio-emb verify EXP A.wav B.wav [--far 0.01 | --prior P] [--scoring cosine|plda] [--checkpoint C]
    pyannote-audio-emb score EXP TRIALS -o OUTPUT.csv [--far 0.01 | --prior P] [--scoring cosine|plda] [--checkpoint C]
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from pyannote.audio.core.model import Model

from ..inference.cache import CACHE_DIR, EmbeddingCache
from ..inference.embedding import embed_files
from ..errors import MissingFileError, renamed_keyword
from .decisions import Decision
from .saved import SavedEvaluation
from .trials import Trials
from ..experiment import Experiment
from ..io import PathLike, atomic_path
from ..inference.loading import load_model
from .trial_list import TrialList

__all__ = ["Verdict", "Verifier", "verify", "score_trial_list", "CSV_COLUMNS"]

#: header of the CSV file `score` writes
CSV_COLUMNS = ("path1", "path2", "score", "llr", "decision")


@dataclass(frozen=True)
class Verdict:
    """Outcome of one trial

    Parameters
    ----------
    score : float
        Score of the scoring (cosine similarity, or PLDA log-likelihood ratio).
    llr : float
        Calibrated log-likelihood ratio of "same speaker" (natural log).
    same_speaker : bool
        Decision at the operating point.
    """

    score: float
    llr: float
    same_speaker: bool


class Verifier:
    """Scores pairs of audio files and decides, with a model and a calibrated scoring

    Parameters
    ----------
    model : Model
        Embedding model (whole files are embedded).
    decision : Decision
        Calibration and operating point of the scoring.
    normalization : PLDAScoring, optional
        What :meth:`Trials.score` scores with. Defaults to cosine.
    cache : EmbeddingCache, optional
        Embeddings already computed (the experiment's, :mod:`pyannote_embloss.inference.cache`).
    """

    def __init__(self, model: Model, decision: Decision, normalization=None, cache=None):
        self.model = model
        self.decision = decision
        self.normalization = normalization
        self.cache = cache

    @classmethod
    def from_experiment(
        cls,
        experiment: Union[Experiment, PathLike],
        protocol: Optional[str] = None,
        scoring: str = "cosine",
        far: Optional[float] = None,
        prior: Optional[float] = None,
        model: Optional[Model] = None,
        checkpoint: Optional[PathLike] = None,
        trust_checkpoint: bool = False,
        database: Optional[PathLike] = None,
        trust: Optional[bool] = None,
    ) -> "Verifier":
        """Verifier with the calibration of an experiment's test evaluation

        Parameters
        ----------
        experiment : Experiment or str or Path
        protocol : str, optional
            Protocol of the evaluation. Defaults to the config's.
        scoring : {"cosine", "plda"}, optional
            Defaults to "cosine".
        far, prior : float, optional
            Operating point: a target false-acceptance rate (0.01 or 0.001,
            whose thresholds the calibration keeps; default 0.01) or a target
            prior (Bayes threshold on the log-likelihood ratio).
        model : Model, optional
            The model, when already loaded from `checkpoint`.
        checkpoint : str or Path, optional
            Without `model`: the checkpoint to load, a file or the name of one
            of the experiment's (see :meth:`Experiment.checkpoint`); it must
            be the one the calibration was fitted with, which is the default.
            With `model`: the checkpoint it was loaded from (None for
            training-free models).
        trust_checkpoint : bool, optional
            Unpickle anything the checkpoint holds (see
            :func:`pyannote_embloss.inference.loading.load_model`). Defaults to False.
        database : str or Path, optional
            database.yml declaring `protocol`: when the experiment has no
            evaluation of it, an unknown protocol is named as such.
        trust : bool, optional
            Deprecated: `trust_checkpoint`.

        Raises
        ------
        DataError
            Without calibration (saying how to get one), or with a stale one.
        ConfigError
            On an invalid operating point or scoring, or a model (or `checkpoint`) other than the calibrated one.
        """
        trust_checkpoint = renamed_keyword("trust", trust, "trust_checkpoint", trust_checkpoint, default=False)
        if not isinstance(experiment, Experiment):
            experiment = Experiment.load(experiment)
        if experiment.trainable and checkpoint is None and not experiment.best_checkpoint.is_file():
            raise MissingFileError(
                f"Experiment {experiment.directory} is not trained ({experiment.best_checkpoint} does not exist): "
                f"train it (`pyannote-audio-emb train {experiment.directory}`), then calibrate it "
                f"(`pyannote-audio-emb evaluate {experiment.directory}`)."
            )
        saved = SavedEvaluation.load(experiment, protocol, database=database)
        decision = saved.decision(scoring, far=far, prior=prior)
        normalization = saved.scoring(scoring)
        if model is None:
            if checkpoint is None:
                checkpoint = saved.checkpoint()
            else:
                checkpoint = experiment.checkpoint(checkpoint)
                saved.check_checkpoint(checkpoint)
            model = load_model(experiment, checkpoint, trust=trust_checkpoint)
        else:
            saved.check_checkpoint(None if checkpoint is None else Path(checkpoint))
        cache = EmbeddingCache.for_model(experiment.directory / CACHE_DIR, model, checkpoint)
        return cls(model, decision, normalization, cache=cache)

    def score_files(
        self,
        files: Sequence[PathLike],
        index1: np.ndarray,
        index2: np.ndarray,
        progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embed each file once, then score and decide each (files[index1[i]], files[index2[i]]) pair

        Returns
        -------
        scores, llr : (num_trials, ) np.ndarray of float
        decisions : (num_trials, ) np.ndarray of bool
            True: same speaker.

        Raises
        ------
        AudioDecodingError
            When a file cannot be decoded, naming it.
        """
        paths = [str(f) for f in files]
        embeddings = embed_files(self.model, paths, progress=progress, desc="Embedding trial files", cache=self.cache)
        trials = Trials(paths, paths, index1, index2, np.zeros(len(index1), dtype=bool))
        scores = trials.score(embeddings, self.normalization)
        llr, decisions = self.decision(scores)
        return scores, llr, decisions

    def verify(self, audio1: PathLike, audio2: PathLike) -> Verdict:
        """Score, calibrated log-likelihood ratio and decision of two audio files

        Raises
        ------
        MissingFileError
            When a file does not exist, naming it.
        """
        files = _existing(audio1, audio2)
        _warn_short(files)
        scores, llr, decisions = self.score_files(files, np.array([0]), np.array([1]))
        return Verdict(float(scores[0]), float(llr[0]), bool(decisions[0]))

    def score(self, trials: TrialList, output: PathLike, progress: bool = True) -> dict:
        """Score a trial list, write the CSV (atomically)

        Parameters
        ----------
        trials : TrialList
            With existing audio files (:meth:`TrialList.check_audio`).
        output : str or Path
            CSV file: a header row (:data:`CSV_COLUMNS`), then per trial its
            two paths as written in the list, score, llr and decision (1 =
            same speaker).

        Returns
        -------
        summary : dict
            "csv", "num_trials", "num_files", "num_same" (trials decided
            same speaker), "operating_point", and with labels on every trial
            the "far" and "frr" of the decisions.
        """
        scores, llr, decisions = self.score_files(trials.files, trials.index1, trials.index2, progress=progress)
        with atomic_path(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for (path1, path2), s, l, d in zip(trials.pairs, scores, llr, decisions):
                writer.writerow([path1, path2, float(s), float(l), int(d)])
        summary = {
            "csv": str(output),
            "num_trials": len(trials),
            "num_files": len(trials.files),
            "num_same": int(np.sum(decisions)),
            "operating_point": self.decision.operating_point,
        }
        if all(label is not None for label in trials.labels):
            same = np.array(trials.labels, dtype=bool)
            summary["far"] = float(np.mean(decisions[~same])) if np.any(~same) else None
            summary["frr"] = float(np.mean(~decisions[same])) if np.any(same) else None
        return summary


def _existing(*audio: PathLike) -> list:
    """Paths of audio files, refusing a missing one (naming it)"""
    paths = [Path(a) for a in audio]
    for path in paths:
        if not path.is_file():
            raise MissingFileError(f"Audio file '{path}' does not exist.")
    return paths


#: below this, an embedding is unreliable: warned about (docs/results.md, "Short segments": 30 % EER at 0.5 s)
SHORT_AUDIO = 0.5


def _warn_short(paths: Sequence[PathLike]) -> None:
    """Warn about audio files shorter than :data:`SHORT_AUDIO` seconds (naming them and their duration)"""
    from ..data.audio import audio_duration
    from ..errors import AudioDecodingError

    for path in paths:
        try:
            duration = audio_duration(path)
        except AudioDecodingError:
            continue  # decoding it says what is wrong
        if duration < SHORT_AUDIO:
            warnings.warn(
                f"'{path}' lasts {duration:.2f} s: below {SHORT_AUDIO:g} s a speaker embedding is unreliable "
                "(its score and decision mean little)."
            )


def verify(
    experiment: Union[Experiment, PathLike],
    audio1: PathLike,
    audio2: PathLike,
    far: Optional[float] = None,
    prior: Optional[float] = None,
    scoring: str = "cosine",
    protocol: Optional[str] = None,
    trust_checkpoint: bool = False,
    checkpoint: Optional[PathLike] = None,
    database: Optional[PathLike] = None,
    trust: Optional[bool] = None,
) -> Verdict:
    """Same speaker or not, as ``pyannote-audio-emb verify EXP A B`` decides

    Files are checked before the model is loaded. See :meth:`Verifier.from_experiment`
    for the parameters (`trust` is the deprecated name of `trust_checkpoint`) and errors.
    """
    trust_checkpoint = renamed_keyword("trust", trust, "trust_checkpoint", trust_checkpoint, default=False)
    _existing(audio1, audio2)
    verifier = Verifier.from_experiment(
        experiment, protocol=protocol, scoring=scoring, far=far, prior=prior, checkpoint=checkpoint,
        trust_checkpoint=trust_checkpoint, database=database,
    )
    return verifier.verify(audio1, audio2)


def score_trial_list(
    experiment: Union[Experiment, PathLike],
    trials: PathLike,
    output: PathLike,
    far: Optional[float] = None,
    prior: Optional[float] = None,
    scoring: str = "cosine",
    protocol: Optional[str] = None,
    progress: bool = True,
    trust_checkpoint: bool = False,
    checkpoint: Optional[PathLike] = None,
    database: Optional[PathLike] = None,
    trust: Optional[bool] = None,
) -> dict:
    """Score a VoxCeleb-format trial list into a CSV, as ``pyannote-audio-emb score EXP TRIALS -o OUTPUT`` does

    The list and its audio files are checked before the model is loaded:
    nothing is written when a line is malformed or a file is missing. See
    :meth:`Verifier.from_experiment` for the other parameters (`trust` is the
    deprecated name of `trust_checkpoint`).

    Returns
    -------
    summary : dict
        See :meth:`Verifier.score`.

    Raises
    ------
    DataError
        On a malformed line (naming the list and line), or without calibration.
    MissingFileError
        When the list or an audio file does not exist (naming it and its line).
    """
    trust_checkpoint = renamed_keyword("trust", trust, "trust_checkpoint", trust_checkpoint, default=False)
    trial_list = TrialList.read(trials)
    trial_list.check_audio()
    verifier = Verifier.from_experiment(
        experiment, protocol=protocol, scoring=scoring, far=far, prior=prior, checkpoint=checkpoint,
        trust_checkpoint=trust_checkpoint, database=database,
    )
    return verifier.score(trial_list, output, progress=progress)
