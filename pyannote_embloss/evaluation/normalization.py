"""Score normalisation: mean normalisation and adaptive s-norm

Both are built from the embeddings of a protocol's *training* files (never
the trials'), and plug into the single scoring path,
:meth:`pyannote_embloss.evaluation.trials.Trials.score`::

    cohort = Cohort.from_embeddings(train_embeddings, train_speakers)
    raw = trials.score(embeddings)
    mean_normalised = trials.score(embeddings, MeanNormalization(cohort.mean))
    as_norm = trials.score(embeddings, AdaptiveSNorm(cohort, top_n=100))

Adaptive s-norm is WeSpeaker's ``score_norm.py`` (and Coria et al., 2020,
section 4.3): the cohort is the per-speaker mean embedding of the training
speakers; the training mean embedding is subtracted from cohort, enrolment
and test embeddings, which are then L2-normalised; for each side of a trial
the `top_n` highest cohort scores give a mean μ and a standard deviation σ,
and

    s' = ½ [(s − μ₁) / σ₁ + (s − μ₂) / σ₂].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .scoring import cosine_scores

__all__ = ["Cohort", "MeanNormalization", "AdaptiveSNorm", "NORMALIZATIONS", "normalizations"]

#: names of the scorings reported side by side
NORMALIZATIONS = ("cosine", "mean", "asnorm")


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass
class Cohort:
    """Cohort of per-speaker mean embeddings, and the mean training embedding

    Parameters
    ----------
    speakers : (num_speakers, dimension) np.ndarray
        Mean embedding of each cohort speaker.
    mean : (dimension, ) np.ndarray
        Mean of the training embeddings.
    """

    speakers: np.ndarray
    mean: np.ndarray

    @classmethod
    def from_embeddings(
        cls,
        embeddings: np.ndarray,
        labels: Sequence[str],
        size: Optional[int] = None,
        seed: int = 0,
    ) -> "Cohort":
        """Cohort from the embeddings of training files

        Parameters
        ----------
        embeddings : (num_files, dimension) np.ndarray
        labels : sequence of str
            Speaker of each file.
        size : int, optional
            Number of cohort speakers, drawn at random (with `seed`) when the
            training set has more. Defaults to every training speaker.

        Raises
        ------
        ConfigError
            When `size` is not positive.
        DataError
            When there are fewer than 2 speakers.
        """
        embeddings = np.asarray(embeddings, dtype=np.float64)
        labels = np.asarray(labels)
        if len(labels) != len(embeddings):
            raise DataError(f"{len(embeddings)} embeddings but {len(labels)} speaker labels.")
        names, inverse = np.unique(labels, return_inverse=True)
        if len(names) < 2:
            raise DataError(f"A score normalisation cohort needs at least 2 speakers (got {len(names)}).")
        sums = np.zeros((len(names), embeddings.shape[1]))
        np.add.at(sums, inverse, embeddings)
        speakers = sums / np.bincount(inverse)[:, None]
        if size is not None:
            if size < 1:
                raise ConfigError(f"The cohort size must be positive (got {size}).")
            if size < len(names):
                keep = np.sort(np.random.default_rng(seed).choice(len(names), size=size, replace=False))
                speakers = speakers[keep]
        return cls(speakers=speakers, mean=embeddings.mean(axis=0))

    def __len__(self) -> int:
        return len(self.speakers)


class MeanNormalization:
    """Cosine similarity after subtracting the mean training embedding

    Parameters
    ----------
    mean : (dimension, ) np.ndarray
    """

    name = "mean"

    def __init__(self, mean: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)

    def score(self, embeddings: np.ndarray, index1: np.ndarray, index2: np.ndarray) -> np.ndarray:
        return cosine_scores(np.asarray(embeddings, dtype=np.float64) - self.mean, index1, index2)


class AdaptiveSNorm:
    """Adaptive symmetric score normalisation (AS-norm)

    Parameters
    ----------
    cohort : Cohort
    top_n : int, optional
        Number of highest cohort scores per side. Defaults to 300
        (WeSpeaker), capped at the cohort size.
    """

    name = "asnorm"

    def __init__(self, cohort: Cohort, top_n: int = 300):
        if top_n < 2:
            raise ConfigError(f"AS-norm needs top_n of at least 2 (got {top_n}).")
        self.cohort = cohort
        self.top_n = min(int(top_n), len(cohort))
        self._cohort = _l2(cohort.speakers - cohort.mean)

    def statistics(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of the `top_n` highest cohort scores of each embedding"""
        normalised = _l2(np.asarray(embeddings, dtype=np.float64) - self.cohort.mean)
        scores = normalised @ self._cohort.T
        top = -np.partition(-scores, self.top_n - 1, axis=1)[:, : self.top_n]
        return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-12)

    def score(self, embeddings: np.ndarray, index1: np.ndarray, index2: np.ndarray) -> np.ndarray:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        raw = cosine_scores(embeddings - self.cohort.mean, index1, index2)
        mu, sigma = self.statistics(embeddings)
        return 0.5 * ((raw - mu[index1]) / sigma[index1] + (raw - mu[index2]) / sigma[index2])


def normalizations(cohort: Optional[Cohort], top_n: int = 300) -> dict:
    """The scorings to report: raw cosine, and, with a cohort, mean normalisation and AS-norm

    Returns
    -------
    normalizations : dict
        {"cosine": None, "mean": MeanNormalization, "asnorm": AdaptiveSNorm}
        (only "cosine" without a cohort).
    """
    scorings = {"cosine": None}
    if cohort is not None:
        scorings["mean"] = MeanNormalization(cohort.mean)
        scorings["asnorm"] = AdaptiveSNorm(cohort, top_n=top_n)
    return scorings
