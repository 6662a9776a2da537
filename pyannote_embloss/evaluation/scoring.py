"""Cosine similarity of pairs of embeddings: the one scoring function of the package"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["cosine_scores"]


def _check_index(index: ArrayLike, name: str, num_embeddings: int) -> np.ndarray:
    """Validate a 1-D array of row indices into the embeddings"""
    index = np.asarray(index)
    if index.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (got shape {index.shape}).")
    if len(index) > 0 and not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"{name} must contain integers (got dtype {index.dtype}).")
    index = index.astype(np.intp, copy=False)
    out_of_range = (index < 0) | (index >= num_embeddings)
    if np.any(out_of_range):
        bad = index[out_of_range]
        raise ValueError(
            f"{name} contains {len(bad)} index(es) outside [0, {num_embeddings}), "
            f"e.g. {bad[:10].tolist()}."
        )
    return index


def _normalize(embeddings: np.ndarray, used: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of `embeddings`, checking those that are `used`"""
    norms = np.linalg.norm(embeddings, axis=1)
    bad = used & ~(np.isfinite(norms) & (norms > 0))
    if np.any(bad):
        rows = np.flatnonzero(bad)
        zero = rows[norms[rows] == 0]
        non_finite = rows[~np.isfinite(norms[rows])]
        problems = []
        if len(zero):
            problems.append(f"zero norm at row(s) {zero[:20].tolist()}")
        if len(non_finite):
            problems.append(f"non-finite values at row(s) {non_finite[:20].tolist()}")
        raise ValueError(
            "cannot compute cosine similarity: embeddings have "
            + " and ".join(problems)
            + f" ({len(rows)} row(s) in total)."
        )
    norms[~used] = 1.0  # unused rows are never read: avoid division warnings
    return embeddings / norms[:, None]


def cosine_scores(
    embeddings: ArrayLike,
    index1: ArrayLike,
    index2: ArrayLike,
    batch_size: int = 1024,
) -> np.ndarray:
    """Cosine similarity of pairs of embeddings

    Embeddings are L2-normalised once, then trials are scored `batch_size` at a
    time, so that memory stays bounded by 2 x batch_size x dimension values
    whatever the number of trials. Small batches keep the gathered rows in the
    CPU cache: on 1,000,000 trials of 512-d embeddings, 1024 trials at a time
    is 2.4 times faster than 16384 (``benchmarks/scoring.py``).

    Parameters
    ----------
    embeddings : (num_embeddings, dimension) array-like
        Embeddings (float32 computations are kept in float32).
    index1, index2 : (num_trials, ) array-like of int
        Rows of `embeddings` compared by each trial.
    batch_size : int, optional
        Number of trials scored at once. Defaults to 1024.

    Returns
    -------
    scores : (num_trials, ) np.ndarray of float64
        Cosine similarity, in [-1, 1].

    Raises
    ------
    ValueError
        When shapes do not match, indices are out of range, or a row used by
        some trial has zero norm (or non-finite values); the message names the rows.
    """
    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ValueError(
            "embeddings must be a (num_embeddings, dimension) array "
            f"(got shape {embeddings.shape})."
        )
    if not np.issubdtype(embeddings.dtype, np.floating):
        embeddings = embeddings.astype(np.float64)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer (got {batch_size}).")
    batch_size = int(batch_size)

    num_embeddings = len(embeddings)
    index1 = _check_index(index1, "index1", num_embeddings)
    index2 = _check_index(index2, "index2", num_embeddings)
    if len(index1) != len(index2):
        raise ValueError(
            f"index1 and index2 have different lengths ({len(index1)} != {len(index2)})."
        )

    used = np.zeros(num_embeddings, dtype=bool)
    used[index1] = True
    used[index2] = True
    normalized = _normalize(embeddings, used)

    scores = np.empty(len(index1), dtype=np.float64)
    for start in range(0, len(index1), batch_size):
        chunk = slice(start, start + batch_size)
        scores[chunk] = np.einsum(
            "ij,ij->i", normalized[index1[chunk]], normalized[index2[chunk]]
        )
    return scores
