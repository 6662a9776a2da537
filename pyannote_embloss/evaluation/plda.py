"""Two-covariance PLDA, with the front end and the file format of pyannote.audio's VBx

The two-covariance model (Brümmer & de Villiers, 2010; Kaldi's ``Plda``,
WeSpeaker's ``TwoCovPLDA``): a speaker is a point ``y ~ N(μ, B)``, each of its
embeddings is ``x = y + e`` with ``e ~ N(0, W)``. Verification scores are the
log-likelihood ratio of "same speaker" against "different speakers":

    LLR(x₁, x₂) = log N([x₁; x₂]; [μ; μ], [[B + W, B], [B, B + W]])
                  − log N(x₁; μ, B + W) − log N(x₂; μ, B + W).

:class:`TwoCovariance` is that model, fitted by EM. :class:`PLDA` puts in
front of it the transform of BUT's VBx recipe, which pyannote.audio 4
applies before VBx clustering (``pyannote.audio.utils.vbx.vbx_setup``)::

    x → √D · (x − mean1) / ‖x − mean1‖          centre, length-normalise (D dims)
      → x @ lda − mean2                          LDA to d dims, centre
      → √d · x / ‖x‖                              length-normalise (d dims)

and writes it as pyannote.audio reads it: ``xvec_transform.npz`` (``mean1``
(D,), ``mean2`` (d,), ``lda`` (D, d)) and ``plda.npz`` (``mu`` (d,), ``tr``
(d, d), ``psi`` (d,)), where ``tr`` maps to the space where W is the identity
and B is ``diag(psi)``. pyannote.audio rebuilds W and B from ``tr`` and
``psi``, sorts the dimensions by decreasing ``psi`` and keeps the first
``lda_dimension`` (128 when loaded with ``PLDA.from_pretrained``) of them.

>>> plda = PLDA.fit(train_embeddings, train_speakers)        # lda_dimension=min(128, D, S - 1)
>>> llr = plda.score(enroll, test)                           # (num_pairs, ) log-likelihood ratios
>>> trials.score(embeddings, PLDAScoring(plda))              # beside cosine, mean, asnorm
>>> plda.export("plda/")                                     # xvec_transform.npz, plda.npz
>>> pyannote.audio.core.plda.PLDA.from_pretrained("plda/")   # what VBxClustering uses
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy.linalg import eigh

from ..errors import ConfigError, DataError, MissingFileError
from ..io import PathLike, atomic_path

__all__ = ["TwoCovariance", "PLDA", "PLDAScoring", "TRANSFORM_FILE", "PLDA_FILE", "LDA_DIMENSION"]

#: file names pyannote.audio's `PLDA.from_pretrained` loads from a directory
TRANSFORM_FILE = "xvec_transform.npz"
PLDA_FILE = "plda.npz"
#: default (and maximum used by pyannote.audio's `PLDA.from_pretrained`) LDA dimension
LDA_DIMENSION = 128


def _length_normalize(x: np.ndarray) -> np.ndarray:
    """√dimension · x / ‖x‖, row-wise"""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.sqrt(x.shape[1]) * x / np.maximum(norms, 1e-12)


def _speakers(embeddings: np.ndarray, labels: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Validated (num, dimension) float64 embeddings and integer speaker index of each"""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise DataError(
            f"Expected (num_embeddings, dimension) embeddings with one speaker label each "
            f"(got shape {embeddings.shape} and {len(labels)} labels)."
        )
    if not np.all(np.isfinite(embeddings)):
        raise DataError("Cannot fit a PLDA: some embeddings have non-finite values (NaN or inf).")
    names, index = np.unique(labels, return_inverse=True)
    if len(names) < 2:
        raise DataError(f"A PLDA needs at least 2 speakers (got {len(names)}).")
    if len(names) == len(labels):
        raise DataError("A PLDA needs several embeddings of some speakers (every speaker has one).")
    return embeddings, index


def _class_statistics(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts (S,), class means (S, d), within-class scatter Σ_s Σ_i (x_i − x̄_s)(x_i − x̄_s)ᵀ)"""
    counts = np.bincount(index)
    sums = np.zeros((len(counts), x.shape[1]))
    np.add.at(sums, index, x)
    means = sums / counts[:, None]
    centred = x - means[index]
    return counts, means, centred.T @ centred


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return 0.5 * (matrix + matrix.T)


@dataclass
class TwoCovariance:
    """Two-covariance PLDA model: speakers ~ N(mean, between), embeddings ~ N(speaker, within)

    Parameters
    ----------
    mean : (d, ) np.ndarray
    between : (d, d) np.ndarray
        Between-speaker covariance B.
    within : (d, d) np.ndarray
        Within-speaker covariance W.
    """

    mean: np.ndarray
    between: np.ndarray
    within: np.ndarray

    def __post_init__(self):
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.between = np.asarray(self.between, dtype=np.float64)
        self.within = np.asarray(self.within, dtype=np.float64)
        # tr W trᵀ = I and tr B trᵀ = diag(psi), psi decreasing
        psi, vectors = eigh(self.between, self.within)
        self.psi, self.transform = psi[::-1], vectors.T[::-1]

    @property
    def dimension(self) -> int:
        return len(self.mean)

    @classmethod
    def fit(cls, embeddings: np.ndarray, labels: Sequence, num_iterations: int = 10) -> "TwoCovariance":
        """Maximum-likelihood model by expectation-maximisation

        Starts from the within-class covariance and the covariance of the
        speaker means, then alternates the posterior of each speaker's point
        given its embeddings (E) and the closed-form update of mean, B and W (M).
        Each iteration increases :meth:`log_likelihood`.

        Parameters
        ----------
        embeddings : (num_embeddings, d) array-like
        labels : (num_embeddings, ) sequence
            Speaker of each embedding.
        num_iterations : int, optional
            EM iterations. Defaults to 10 (Kaldi's ``ivector-compute-plda``).

        Raises
        ------
        DataError
            With fewer than 2 speakers, or a single embedding per speaker.
        """
        x, index = _speakers(embeddings, labels)
        counts, means, scatter = _class_statistics(x, index)
        num, dimension = x.shape
        within = scatter / num
        between = np.cov(means.T, bias=True).reshape(dimension, dimension)
        mean = means.mean(axis=0)
        ridge = 1e-10 * np.trace(within) / dimension * np.eye(dimension)
        sizes, of_size = np.unique(counts, return_inverse=True)  # speakers grouped by count
        for _ in range(int(num_iterations)):
            within_inv = np.linalg.inv(within + ridge)
            between_inv = np.linalg.inv(between + ridge)
            # E-step: posterior N(m_s, C_s) of each speaker's point (C_s only depends on its count)
            covariances = np.linalg.inv(between_inv[None] + sizes[:, None, None] * within_inv[None])
            rhs = between_inv @ mean + counts[:, None] * (means @ within_inv)
            posteriors = np.einsum("sij,sj->si", covariances[of_size], rhs)
            expected_covariance = np.einsum("s,sij->ij", np.bincount(of_size), covariances)
            # M-step
            mean = posteriors.mean(axis=0)
            deviation = posteriors - mean
            between = _symmetric((deviation.T @ deviation + expected_covariance) / len(counts))
            # Σ_s Σ_i E[(x_i − y_s)(x_i − y_s)ᵀ] = scatter + Σ_s n_s [(x̄_s − m_s)(x̄_s − m_s)ᵀ + C_s]
            residual = means - posteriors
            expected_scatter = np.einsum("k,kij->ij", np.bincount(of_size, weights=counts), covariances)
            within = _symmetric((scatter + (counts[:, None] * residual).T @ residual + expected_scatter) / num)
        return cls(mean=mean, between=between, within=within)

    def log_likelihood(self, embeddings: np.ndarray, labels: Sequence) -> float:
        """Log-likelihood of embeddings grouped by speaker, under the model

        For a speaker with n embeddings of mean x̄ and scatter S:
        ``log N(x̄; μ, B + W/n) − ½ [(n−1) log|2πW| + d log n + tr(W⁻¹ S)]``.
        """
        x, index = _speakers(embeddings, labels)
        counts, means, scatter = _class_statistics(x, index)
        d = self.dimension
        _, logdet_w = np.linalg.slogdet(2 * np.pi * self.within)
        total = -0.5 * (np.sum((counts - 1) * logdet_w + d * np.log(counts))
                        + np.trace(np.linalg.solve(self.within, scatter)))
        for n in np.unique(counts):
            covariance = self.between + self.within / n
            deviation = means[counts == n] - self.mean
            _, logdet = np.linalg.slogdet(2 * np.pi * covariance)
            quadratic = np.einsum("si,si->s", deviation, np.linalg.solve(covariance, deviation.T).T)
            total += -0.5 * np.sum(logdet + quadratic)
        return float(total)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Coordinates where W is the identity and B is ``diag(psi)``: ``(x − mean) trᵀ``"""
        return (np.asarray(x, dtype=np.float64) - self.mean) @ self.transform.T

    def log_likelihood_ratio(self, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
        """Same-speaker log-likelihood ratio of pairs of embeddings (rows of x1 and x2)

        Computed in the diagonal coordinates of :meth:`project`, where it is a
        sum over dimensions of closed-form bivariate Gaussian terms.

        Returns
        -------
        llr : (num_pairs, ) np.ndarray
        """
        return _diagonal_llr(self.project(np.atleast_2d(x1)), self.project(np.atleast_2d(x2)), self.psi)


def _diagonal_llr(u: np.ndarray, v: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """LLR of pairs (u, v) when W = I and B = diag(psi) (mean 0), summed over dimensions

    With a = 1 + ψ, b = ψ: log N([u; v]; 0, [[a, b], [b, a]]) − log N(u; 0, a) − log N(v; 0, a)
    = −½ log(a² − b²) + log a − ½ [(a (u² + v²) − 2 b u v) / (a² − b²) − (u² + v²) / a].
    """
    a, b = 1.0 + psi, psi
    det = a * a - b * b
    squares = u * u + v * v
    terms = -0.5 * np.log(det) + np.log(a) - 0.5 * ((a * squares - 2.0 * b * u * v) / det - squares / a)
    return terms.sum(axis=1)


class PLDA:
    """Front end (centring, LDA, length normalisation) and a two-covariance PLDA

    Parameters
    ----------
    mean1 : (D, ) np.ndarray
        Mean of the training embeddings.
    lda : (D, d) np.ndarray
        LDA projection (columns: directions).
    mean2 : (d, ) np.ndarray
        Mean of the projected training embeddings.
    model : TwoCovariance
        Fitted on the transformed training embeddings (d dimensions).
    """

    def __init__(self, mean1: np.ndarray, lda: np.ndarray, mean2: np.ndarray, model: TwoCovariance):
        self.mean1 = np.asarray(mean1, dtype=np.float64)
        self.lda = np.asarray(lda, dtype=np.float64)
        self.mean2 = np.asarray(mean2, dtype=np.float64)
        self.model = model

    @property
    def dimension(self) -> int:
        """Dimension D of the embeddings"""
        return self.lda.shape[0]

    @property
    def lda_dimension(self) -> int:
        """Dimension d of the PLDA space"""
        return self.lda.shape[1]

    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        labels: Sequence,
        lda_dimension: Optional[int] = None,
        num_iterations: int = 10,
    ) -> "PLDA":
        """Fit front end and PLDA on training embeddings with speaker labels

        LDA is fitted on the centred, length-normalised embeddings: its
        directions solve ``S_b v = λ S_w v`` (between-speaker covariance of
        the speaker means, each speaker weighing the same; within-speaker
        covariance of the embeddings), normalised so that ``vᵀ S_w v = 1``, as
        Kaldi's ``ivector-compute-lda``. The two-covariance model is fitted on
        the fully transformed embeddings (:meth:`transform`).

        Parameters
        ----------
        embeddings : (num_embeddings, D) array-like
            Training embeddings (e.g. of the protocol's training files).
        labels : (num_embeddings, ) sequence
            Speaker of each embedding.
        lda_dimension : int, optional
            Dimension d kept by LDA, at most ``min(D, num_speakers - 1)``.
            Defaults to ``min(128, D, num_speakers - 1)``; pyannote.audio's VBx
            uses at most 128 of them.
        num_iterations : int, optional
            EM iterations of the PLDA. Defaults to 10.

        Raises
        ------
        DataError
            With fewer than 2 speakers, a single embedding per speaker, or
            non-finite embeddings.
        ConfigError
            When `lda_dimension` is not in [1, min(D, num_speakers - 1)].
        """
        x, index = _speakers(embeddings, labels)
        num_speakers, dimension = int(index.max()) + 1, x.shape[1]
        largest = min(dimension, num_speakers - 1)
        if lda_dimension is None:
            lda_dimension = min(LDA_DIMENSION, largest)
        if not 1 <= int(lda_dimension) <= largest:
            raise ConfigError(
                f"lda_dimension must be in [1, {largest}] = [1, min(dimension, num_speakers - 1)] "
                f"with {dimension}-dimensional embeddings of {num_speakers} speakers (got {lda_dimension})."
            )
        mean1 = x.mean(axis=0)
        x = _length_normalize(x - mean1)
        _, means, scatter = _class_statistics(x, index)
        within = scatter / len(x) + 1e-6 * np.eye(dimension)
        deviation = means - means.mean(axis=0)
        between = deviation.T @ deviation / num_speakers
        _, vectors = eigh(between, within)
        lda = vectors[:, ::-1][:, : int(lda_dimension)]
        projected = x @ lda
        mean2 = projected.mean(axis=0)
        transformed = _length_normalize(projected - mean2)
        model = TwoCovariance.fit(transformed, index, num_iterations=num_iterations)
        return cls(mean1=mean1, lda=lda, mean2=mean2, model=model)

    def _check(self, embeddings) -> np.ndarray:
        embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dimension:
            raise DataError(
                f"This PLDA takes {self.dimension}-dimensional embeddings (got shape {embeddings.shape})."
            )
        return embeddings

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Front end: centre, length-normalise, LDA, centre, length-normalise

        The same as the ``xvec_tf`` pyannote.audio builds from
        ``xvec_transform.npz``.

        Returns
        -------
        transformed : (num_embeddings, d) np.ndarray
        """
        x = _length_normalize(self._check(embeddings) - self.mean1)
        return _length_normalize(x @ self.lda - self.mean2)

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings in the PLDA space (W = I, B = diag(psi), psi decreasing)

        What pyannote.audio's ``PLDA.__call__`` returns (with ``lda_dimension``
        equal to d), up to the sign of each dimension.
        """
        return self.model.project(self.transform(embeddings))

    @property
    def psi(self) -> np.ndarray:
        """Between-speaker variances in the PLDA space (pyannote.audio's ``PLDA.phi``)"""
        return self.model.psi

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Log-likelihood ratios of pairs of single embeddings

        Parameters
        ----------
        enroll, test : (num_pairs, D) or (D, ) array-like
            Row i of `enroll` is compared with row i of `test`.

        Returns
        -------
        llr : (num_pairs, ) np.ndarray
            Natural-log likelihood ratio of "same speaker" in the PLDA space.
        """
        enroll, test = self._check(enroll), self._check(test)
        if len(enroll) != len(test):
            raise DataError(f"enroll and test have different numbers of embeddings ({len(enroll)} != {len(test)}).")
        return _diagonal_llr(self.project(enroll), self.project(test), self.psi)

    # -- files of pyannote.audio's VBx ------------------------------------------------

    def export(self, directory: PathLike) -> Path:
        """Write ``xvec_transform.npz`` and ``plda.npz`` for pyannote.audio's VBx

        Load them with ``pyannote.audio.core.plda.PLDA.from_pretrained(directory)``
        or pass ``plda={"checkpoint": directory}`` to pyannote.audio's
        ``SpeakerDiarization`` (with ``clustering="VBxClustering"``).

        Parameters
        ----------
        directory : str or Path
            Created when missing; existing files are replaced (atomically).

        Returns
        -------
        directory : Path
        """
        directory = Path(directory)
        with atomic_path(directory / TRANSFORM_FILE) as tmp, open(tmp, "wb") as f:
            np.savez(f, mean1=self.mean1, mean2=self.mean2, lda=self.lda)
        with atomic_path(directory / PLDA_FILE) as tmp, open(tmp, "wb") as f:
            np.savez(f, mu=self.model.mean, tr=self.model.transform, psi=self.model.psi)
        return directory

    @classmethod
    def load(cls, directory: PathLike) -> "PLDA":
        """PLDA from the files :meth:`export` writes (or any VBx PLDA of the same format)

        Raises
        ------
        MissingFileError
            When a file is missing.
        DataError
            When a file lacks a key or shapes do not match.
        """
        directory = Path(directory)
        arrays = {}
        for name, keys in ((TRANSFORM_FILE, ("mean1", "mean2", "lda")), (PLDA_FILE, ("mu", "tr", "psi"))):
            path = directory / name
            if not path.is_file():
                raise MissingFileError(f"No PLDA file '{path}': export one with PLDA.export.")
            with np.load(path) as npz:
                missing = [key for key in keys if key not in npz]
                if missing:
                    raise DataError(f"'{path}' lacks {', '.join(missing)}: it is not a VBx PLDA file.")
                arrays.update({key: np.asarray(npz[key], dtype=np.float64) for key in keys})
        tr, psi, lda = arrays["tr"], arrays["psi"], arrays["lda"]
        d = lda.shape[1] if lda.ndim == 2 else -1
        if not (tr.shape == (d, d) and psi.shape == (d,) and arrays["mu"].shape == (d,) and arrays["mean2"].shape == (d,)
                and arrays["mean1"].shape == (lda.shape[0],)):
            raise DataError(f"The PLDA files in '{directory}' have inconsistent shapes.")
        # as pyannote.audio's vbx_setup: W = (trᵀ tr)⁻¹, B = (trᵀ diag(1/psi) tr)⁻¹
        within = np.linalg.inv(tr.T @ tr)
        between = np.linalg.inv((tr.T / psi) @ tr)
        model = TwoCovariance(mean=arrays["mu"], between=_symmetric(between), within=_symmetric(within))
        return cls(mean1=arrays["mean1"], lda=lda, mean2=arrays["mean2"], model=model)


class PLDAScoring:
    """PLDA log-likelihood ratios as a scoring of :meth:`Trials.score`

    Beside raw cosine, mean normalisation and AS-norm
    (:mod:`pyannote_embloss.evaluation.normalization`), with the same interface.

    Parameters
    ----------
    plda : PLDA
    """

    name = "plda"

    def __init__(self, plda: PLDA):
        self.plda = plda

    def score(self, embeddings: np.ndarray, index1: np.ndarray, index2: np.ndarray) -> np.ndarray:
        projected = self.plda.project(embeddings)  # each file once
        return _diagonal_llr(projected[np.asarray(index1)], projected[np.asarray(index2)], self.plda.psi)
