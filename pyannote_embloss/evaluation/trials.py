"""Speaker verification trials: the utterances they use, once each, and the pairs to score

An utterance is a (uri, segment) pair: a whole file, or a segment of it (a
speech turn of a conversation, a Kaldi segment). :class:`Trials` is what
training-time validation and ``evaluate`` share: both embed each utterance
once (:func:`pyannote_embloss.inference.embedding.embed_files` with ``trials.paths`` and
``trials.segments``, or the validation dataloader) and score with
:meth:`Trials.score`, raw cosine or normalised
(:mod:`pyannote_embloss.evaluation.normalization`).

Trials come from the protocol's trial list (pyannote.database ``trial:``
files, each file embedded over its ``try_with`` region) or, for protocols
without one (speaker diarization protocols), from the speech turns of the
subset (:meth:`Trials.from_turns`).

>>> trials = Trials.from_protocol(protocol, "test")
>>> embeddings = embed_files(model, trials.paths, segments=trials.segments)  # (trials.num_files, dimension)
>>> scores = trials.score(embeddings)                     # (len(trials), )
>>> metrics = detection_metrics(trials.reference, scores)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..errors import DataError
from .scoring import cosine_scores

__all__ = ["Trials", "TRIAL_SUBSETS", "MIN_TURN_DURATION", "MAX_TURN_TRIALS", "score_trials", "speech_turns"]

TRIAL_SUBSETS = ("development", "test")

#: speech turns shorter than this (seconds) make no trial (:meth:`Trials.from_turns`)
MIN_TURN_DURATION = 1.0
#: at most this many trials are drawn from speech turns (half of them target trials)
MAX_TURN_TRIALS = 20000


@dataclass
class Trials:
    """Trials of a verification protocol subset

    Parameters
    ----------
    uris : list of str
        File of each utterance used by the trials (each utterance once, in
        order of first appearance).
    paths : list of str
        Audio path of each of `uris` (empty strings when unknown).
    index1, index2 : (num_trials, ) np.ndarray of int
        Rows of `uris` compared by each trial.
    reference : (num_trials, ) np.ndarray of bool
        True for target trials (same speaker).
    segments : (num_files, 2) np.ndarray of float, optional
        (start, end) in seconds of each utterance in its file; NaN rows (and
        the default, None) stand for whole files.
    """

    uris: list
    paths: list
    index1: np.ndarray
    index2: np.ndarray
    reference: np.ndarray
    segments: Optional[np.ndarray] = None

    def __post_init__(self):
        self.index1 = np.asarray(self.index1, dtype=np.int64)
        self.index2 = np.asarray(self.index2, dtype=np.int64)
        self.reference = np.asarray(self.reference, dtype=bool)
        if self.segments is None:
            self.segments = np.full((len(self.uris), 2), np.nan)
        self.segments = np.asarray(self.segments, dtype=np.float64).reshape(len(self.uris), 2)

    def __len__(self) -> int:
        return len(self.reference)

    @property
    def num_files(self) -> int:
        """Number of utterances (whole files or segments) the trials use"""
        return len(self.uris)

    def segment(self, i: int) -> Optional[Tuple[float, float]]:
        """(start, end) of the i-th utterance in its file, or None for the whole file"""
        start, end = self.segments[i]
        return None if np.isnan(start) else (float(start), float(end))

    @property
    def names(self) -> List[str]:
        """Name of each utterance: its uri, followed by its segment when it is one"""
        return [
            uri if self.segment(i) is None else f"{uri}[{self.segments[i, 0]:.3f}-{self.segments[i, 1]:.3f}]"
            for i, uri in enumerate(self.uris)
        ]

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_triplets(
        cls,
        triplets: Iterable[tuple],
        audio: Optional[Mapping[str, str]] = None,
        segments: Optional[Mapping[str, Tuple[float, float]]] = None,
    ) -> "Trials":
        """Trials from (uri1, uri2, reference) triplets

        Parameters
        ----------
        triplets : iterable of (uri1, uri2, reference)
            `reference` is True/1 for target trials, False/0 otherwise.
        audio : dict, optional
            Audio path of each uri.
        segments : dict, optional
            (start, end) of each uri in its audio file, for utterances that
            are segments (uris then name utterances, not files).

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
        bounds = [(segments or {}).get(uri) or (np.nan, np.nan) for uri in uris]
        return cls(uris, paths, codes[:n], codes[n:], references.astype(bool), np.array(bounds, dtype=np.float64))

    @classmethod
    def from_protocol(
        cls,
        protocol,
        subset: str = "test",
        min_duration: float = MIN_TURN_DURATION,
        max_trials: Optional[int] = MAX_TURN_TRIALS,
    ) -> "Trials":
        """Trials of a pyannote.database protocol subset: its trial list, else its speech turns

        Parameters
        ----------
        protocol : Protocol
            With an "audio" preprocessor (e.g. from
            :func:`pyannote_embloss.data.protocols.get_protocol`).
        subset : {"development", "test"}
        min_duration, max_trials : optional
            For protocols without a trial list for `subset` (e.g. speaker
            diarization protocols): see :meth:`from_turns`.

        Raises
        ------
        DataError
            When the subset is unknown, or has neither trials nor speech turns
            to make them from.
        """
        if subset not in TRIAL_SUBSETS:
            raise DataError(f"Unknown subset '{subset}': choose one of {', '.join(TRIAL_SUBSETS)}.")
        trial_list = _trial_list(protocol, subset)
        if trial_list is None:
            return cls.from_turns(protocol, subset, min_duration=min_duration, max_trials=max_trials)
        triplets, audio, segments = [], {}, {}
        for trial in trial_list:
            uris = []
            for key in ("file1", "file2"):
                file = trial[key]
                uri = str(file["uri"])
                if uri not in audio:
                    audio[uri] = str(file["audio"])
                    region = _try_with(file)
                    if region is not None:
                        segments[uri] = region
                uris.append(uri)
            triplets.append((uris[0], uris[1], int(trial["reference"])))
        if not triplets:
            raise DataError(f"Protocol {protocol.name} has no {subset} trials.")
        return cls.from_triplets(triplets, audio, segments)

    @classmethod
    def from_turns(
        cls,
        protocol,
        subset: str = "test",
        min_duration: float = MIN_TURN_DURATION,
        max_trials: Optional[int] = MAX_TURN_TRIALS,
        seed: str = "turns",
    ) -> "Trials":
        """Trials between the speech turns of a protocol subset (e.g. a speaker diarization protocol)

        Every speech turn of the subset's files, within their annotated
        regions and without their overlapped speech, that lasts at least
        `min_duration` is an utterance. Target trials pair turns of the same
        label, non-target trials turns of different labels (:func:`pyannote_embloss.data.trials.draw_pairs`):
        with ``scope: global``, pairs may cross files; with ``scope: database``
        they stay within a database, with ``scope: file`` within a file.

        Parameters
        ----------
        protocol : Protocol
            With an "audio" preprocessor, and speaker-labelled annotations.
        subset : {"development", "test"}
        min_duration : float, optional
            Shortest speech turn used, in seconds. Defaults to 1 s.
        max_trials : int, optional
            At most this many trials (half of them target trials). Defaults to 20,000.
        seed : str, optional
            Seed of the draws (with `subset`).

        Raises
        ------
        DataError
            When the subset has no such turns, or too few speakers.
        """
        try:
            files = list(getattr(protocol, subset)())
        except (AttributeError, NotImplementedError):
            files = []
        if not files:
            raise DataError(f"Protocol {protocol.name} has no {subset} subset to make trials from.")
        uris, paths, bounds, labels, groups = [], [], [], [], []
        for file in files:
            uri, scope = str(file["uri"]), file.get("scope", "file")
            for segment, label in speech_turns(file, min_duration):
                uris.append(uri)
                paths.append(str(file["audio"]))
                bounds.append((segment.start, segment.end))
                labels.append(label)
                groups.append({"global": None, "database": file["database"]}.get(scope, uri))
        if not uris:
            raise DataError(
                f"Protocol {protocol.name}: no speech turn of its {subset} subset lasts {min_duration:g} s or more "
                "(without overlapped speech): there is nothing to make trials of. Lower the minimum turn duration."
            )
        from ..data.trials import draw_pairs

        try:
            pairs = draw_pairs(labels, seed=f"{seed}:{subset}", groups=groups, max_trials=max_trials)
        except DataError as error:
            raise DataError(f"Protocol {protocol.name}, {subset} speech turns: {error}") from None
        used = sorted({i for _, i, j in pairs} | {j for _, i, j in pairs})
        row = {i: r for r, i in enumerate(used)}
        return cls(
            [uris[i] for i in used],
            [paths[i] for i in used],
            [row[i] for _, i, _ in pairs],
            [row[j] for _, _, j in pairs],
            [reference for reference, _, _ in pairs],
            np.array([bounds[i] for i in used], dtype=np.float64),
        )

    # -- storage (e.g. pyannote.audio's prepared data cache) -------------------------

    def to_arrays(self, prefix: str) -> Dict[str, np.ndarray]:
        """Plain numpy arrays (no Python objects) that :meth:`from_arrays` reads back"""
        return {
            f"{prefix}-uris": np.array(self.uris, dtype=np.str_),
            f"{prefix}-audio": np.array(self.paths, dtype=np.str_),
            f"{prefix}-segments": self.segments,
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
            arrays.get(f"{prefix}-segments"),
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
            names = [self.names[i] for i in np.flatnonzero(bad)]
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
        return Trials(self.uris, self.paths, self.index1[keep], self.index2[keep], self.reference[keep], self.segments)


def _trial_list(protocol, subset: str) -> Optional[list]:
    """The protocol's trials of `subset`, or None when it has no trial list for it"""
    method = getattr(protocol, f"{subset}_trial", None)
    if method is None:
        return None
    try:
        return list(method())
    except (AttributeError, NotImplementedError):  # pyannote.database: "..._trial_iter is not implemented"
        return None


def _try_with(file) -> Optional[Tuple[float, float]]:
    """Extent of the region of a trial file to embed (pyannote.database's "try_with"), if it says"""
    try:
        region = file["try_with"]
    except (KeyError, AttributeError, ValueError):
        return None
    if not region:
        return None
    extent = region.extent()
    return float(extent.start), float(extent.end)


def speech_turns(file, min_duration: float):
    """(segment, label) of a file's single-speaker speech turns, within its annotated region, of at least `min_duration`"""
    annotation = file["annotation"]
    if "annotated" in file:
        annotation = annotation.crop(file["annotated"], mode="intersection")
    overlap = annotation.get_overlap()
    if overlap:
        annotation = annotation.extrude(overlap)
    turns = [
        (segment, str(label))
        for segment, _, label in annotation.itertracks(yield_label=True)
        if segment.duration >= min_duration
    ]
    return sorted(turns, key=lambda turn: (turn[0].start, turn[0].end, turn[1]))


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
