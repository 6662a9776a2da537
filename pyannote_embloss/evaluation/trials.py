"""Speaker verification trials: the files they use, once each, and the pairs to score

:class:`Trials` is what training-time validation and ``evaluate`` share: both
embed ``trials.paths`` (whole files, :func:`pyannote_embloss.embedding.embed_files`
or the validation dataloader) and score with :meth:`Trials.score`, raw cosine
or normalised (:mod:`pyannote_embloss.evaluation.normalization`).

>>> trials = Trials.from_protocol(protocol, "test")
>>> embeddings = embed_files(model, trials.paths)        # (len(trials.uris), dimension)
>>> scores = trials.score(embeddings)                     # (len(trials), )
>>> metrics = detection_metrics(trials.reference, scores)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .scoring import cosine_scores

__all__ = ["Trials", "TRIAL_SUBSETS", "score_trials"]

TRIAL_SUBSETS = ("development", "test")


@dataclass
class Trials:
    """Trials of a verification protocol subset

    Parameters
    ----------
    uris : list of str
        Files used by the trials, each once, in order of first appearance.
    paths : list of str
        Audio path of each of `uris` (empty strings when unknown).
    index1, index2 : (num_trials, ) np.ndarray of int
        Rows of `uris` compared by each trial.
    reference : (num_trials, ) np.ndarray of bool
        True for target trials (same speaker).
    """

    uris: list
    paths: list
    index1: np.ndarray
    index2: np.ndarray
    reference: np.ndarray

    def __post_init__(self):
        self.index1 = np.asarray(self.index1, dtype=np.int64)
        self.index2 = np.asarray(self.index2, dtype=np.int64)
        self.reference = np.asarray(self.reference, dtype=bool)

    def __len__(self) -> int:
        return len(self.reference)

    @property
    def num_files(self) -> int:
        return len(self.uris)

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_triplets(
        cls, triplets: Iterable[tuple], audio: Optional[Mapping[str, str]] = None
    ) -> "Trials":
        """Trials from (uri1, uri2, reference) triplets

        Parameters
        ----------
        triplets : iterable of (uri1, uri2, reference)
            `reference` is True/1 for target trials, False/0 otherwise.
        audio : dict, optional
            Audio path of each uri.

        Raises
        ------
        DataError
            When there is no trial, a trial is not a triplet, or a reference
            is not 0/1.
        """
        triplets = triplets if isinstance(triplets, list) else list(triplets)
        if not triplets:
            raise DataError("There is no trial to score.")
        try:
            table = np.array(triplets, dtype=object)
        except ValueError:  # ragged
            table = None
        if table is None or table.ndim != 2 or table.shape[1] != 3:
            for t, trial in enumerate(triplets):
                try:
                    if len(trial) == 3:
                        continue
                except TypeError:
                    pass
                raise DataError(f"Trial #{t} must be a (uri1, uri2, reference) triplet (got {trial!r}).")
            raise DataError("Trials must be (uri1, uri2, reference) triplets of scalars (e.g. str, str, bool).")
        references = table[:, 2]
        valid = np.array((references == 0) | (references == 1), dtype=bool)  # also True / False
        if not valid.all():
            t = int(np.argmin(valid))
            raise DataError(
                f"Trial #{t} ({table[t, 0]}, {table[t, 1]}) has reference {references[t]!r}: "
                "expected 0/1 or False/True."
            )
        # one row per distinct uri (hash-based, in order of first appearance)
        codes, uris = pd.factorize(np.concatenate([table[:, 0], table[:, 1]]), sort=False)
        n = len(triplets)
        uris = [str(uri) for uri in uris]
        paths = [str((audio or {}).get(uri, "")) for uri in uris]
        return cls(uris, paths, codes[:n], codes[n:], references.astype(bool))

    @classmethod
    def from_protocol(cls, protocol, subset: str = "test") -> "Trials":
        """Trials of a pyannote.database speaker verification protocol subset

        Parameters
        ----------
        protocol : SpeakerVerificationProtocol
            With an "audio" preprocessor (e.g. from
            :func:`pyannote_embloss.protocols.get_protocol`).
        subset : {"development", "test"}

        Raises
        ------
        DataError
            When the subset is unknown, the protocol has no trials, or none for `subset`.
        """
        if subset not in TRIAL_SUBSETS:
            raise DataError(f"Unknown subset '{subset}': choose one of {', '.join(TRIAL_SUBSETS)}.")
        trial_method = getattr(protocol, f"{subset}_trial", None)
        if trial_method is None:
            raise DataError(f"Protocol {protocol.name} is not a speaker verification protocol (no trials).")
        triplets, audio = [], {}
        for trial in trial_method():
            uris = []
            for key in ("file1", "file2"):
                uri = str(trial[key]["uri"])
                audio.setdefault(uri, str(trial[key]["audio"]))
                uris.append(uri)
            triplets.append((uris[0], uris[1], int(trial["reference"])))
        if not triplets:
            raise DataError(f"Protocol {protocol.name} has no {subset} trials.")
        return cls.from_triplets(triplets, audio)

    # -- storage (e.g. pyannote.audio's prepared data cache) -------------------------

    def to_arrays(self, prefix: str) -> Dict[str, np.ndarray]:
        """Plain numpy arrays (no Python objects) that :meth:`from_arrays` reads back"""
        return {
            f"{prefix}-uris": np.array(self.uris, dtype=np.str_),
            f"{prefix}-audio": np.array(self.paths, dtype=np.str_),
            f"{prefix}-trials": np.rec.fromarrays(
                [self.index1.astype(np.int32), self.index2.astype(np.int32), self.reference.astype(np.int8)],
                names=["file1", "file2", "reference"],
            ).view(np.ndarray),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> "Trials":
        trials = arrays[f"{prefix}-trials"]
        return cls(
            [str(u) for u in arrays[f"{prefix}-uris"]],
            [str(p) for p in arrays[f"{prefix}-audio"]],
            trials["file1"],
            trials["file2"],
            trials["reference"].astype(bool),
        )

    # -- scoring ----------------------------------------------------------------------

    def score(self, embeddings: np.ndarray, normalization=None) -> np.ndarray:
        """Score every trial

        Parameters
        ----------
        embeddings : (num_files, dimension) array-like
            Embedding of each of `uris`, in that order.
        normalization : ScoreNormalization, optional
            e.g. :class:`~pyannote_embloss.evaluation.normalization.AdaptiveSNorm`.
            Defaults to raw cosine similarity.

        Returns
        -------
        scores : (num_trials, ) np.ndarray of float64

        Raises
        ------
        DataError
            When the embeddings do not match the files, or some used
            embedding has zero norm or non-finite values (naming the files).
        """
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2 or len(embeddings) != self.num_files:
            raise DataError(
                f"Expected one embedding per trial file, i.e. ({self.num_files}, dimension), "
                f"got shape {embeddings.shape}."
            )
        bad = ~np.all(np.isfinite(embeddings), axis=1) | ~np.any(embeddings != 0, axis=1)
        if np.any(bad):
            names = [self.uris[i] for i in np.flatnonzero(bad)]
            raise DataError(
                f"Cannot score trials: the embeddings of {len(names)} file(s) have zero norm or non-finite "
                f"values (NaN or inf), e.g. {names[:10]}. The model produced them: check its training."
            )
        if normalization is None:
            return cosine_scores(embeddings, self.index1, self.index2)
        return normalization.score(embeddings, self.index1, self.index2)

    def subset(self, keep: Sequence[bool]) -> "Trials":
        """The trials where `keep` is True (same files)"""
        keep = np.asarray(keep, dtype=bool)
        return Trials(self.uris, self.paths, self.index1[keep], self.index2[keep], self.reference[keep])


def score_trials(
    embeddings: Mapping[str, np.ndarray], triplets: Iterable[tuple], normalization=None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of (uri1, uri2, reference) trials from a uri -> embedding mapping

    A convenience over :class:`Trials` (same scoring).

    Parameters
    ----------
    embeddings : dict
        Maps each file uri to its (dimension, ) embedding.
    triplets : iterable of (uri1, uri2, reference)
    normalization : ScoreNormalization, optional
        Defaults to raw cosine similarity.

    Returns
    -------
    y_true : (num_trials, ) np.ndarray of bool
    scores : (num_trials, ) np.ndarray of float64

    Raises
    ------
    KeyError
        When a trial uri has no embedding (the message names the uri and trial).
    DataError
        On malformed trials, inconsistent dimensions or unusable embeddings.
    """
    trials = Trials.from_triplets(triplets)
    missing = [row for row, uri in enumerate(trials.uris) if uri not in embeddings]
    if missing:
        row = missing[0]
        t = int(np.flatnonzero((trials.index1 == row) | (trials.index2 == row))[0])
        raise KeyError(f"no embedding for uri '{trials.uris[row]}' (used by trial #{t}).")
    vectors = [np.asarray(embeddings[uri]).reshape(-1) for uri in trials.uris]
    dimensions = {len(v) for v in vectors}
    if len(dimensions) > 1:
        raise DataError(f"Embeddings have inconsistent dimensions {sorted(dimensions)}.")
    return trials.reference, trials.score(np.stack(vectors), normalization)
