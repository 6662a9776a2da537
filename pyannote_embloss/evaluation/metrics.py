"""Speaker-verification metrics: equal error rate, minimum detection cost, bootstrap CIs

Conventions
-----------
* ``y_true`` is True (or 1) for *target* trials (same speaker) and False (or 0)
  for *non-target* trials; ``scores`` are similarities (higher means "same").
* The DET curve is the one of :func:`pyannote.metrics.binary_classification.det_curve`
  (itself ``sklearn.metrics.roc_curve`` with ``drop_intermediate=True``): operating
  point ``k`` accepts trials whose score is ``>= thresholds[k]``; ``thresholds[0]``
  is ``+inf`` (reject everything: fpr = 0, fnr = 1), the last point accepts
  everything (fpr = 1, fnr = 0).
* Equal error rate. Let ``i`` be the first operating point with ``fpr > fnr`` (the
  very index pyannote.metrics uses). The EER is where the straight segment joining
  points ``i - 1`` and ``i`` of the DET curve crosses the ``fpr == fnr`` diagonal.
  This is what pyannote.metrics does *except* for the last step: pyannote.metrics
  returns the average ``(fpr[i-1] + fpr[i] + fnr[i-1] + fnr[i]) / 4`` of the two
  straddling points, which is biased by up to half the gap between them and, since
  ``drop_intermediate`` collapses runs of same-class trials, gives an EER of 0.25
  for perfectly separated scores. The exact segment crossing does not depend on
  ``drop_intermediate`` (dropped points are collinear with their neighbours), is 0
  for perfectly separated scores and equals the usual "fpr and fnr step functions
  cross" value. pyannote.metrics' estimate is still reported as ``eer_pyannote``.
* Normalised detection cost (NIST SRE):
  ``DCF = (C_miss P_tar fnr + C_fa (1 - P_tar) fpr) / min(C_miss P_tar, C_fa (1 - P_tar))``
  and ``minDCF`` is its minimum over the DET curve operating points. The two
  extreme operating points (reject all, accept all) have DCF >= 1 with one of them
  exactly 1, so ``minDCF <= 1`` always and a system that always rejects scores 1
  (for ``P_tar <= C_fa / (C_miss + C_fa)``, i.e. all usual settings).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from pyannote.metrics.binary_classification import det_curve

__all__ = [
    "check_trials",
    "equal_error_rate",
    "detection_metrics",
    "bootstrap_confidence_intervals",
    "min_dcf_key",
    "paired_bootstrap_eer_difference",
]


def min_dcf_key(p_target: float) -> str:
    """Result key of the minimum detection cost at a given target prior

    Parameters
    ----------
    p_target : float
        Prior probability of target trials.

    Returns
    -------
    key : str
        ``"min_dcf_{p_target:g}"``, e.g. ``"min_dcf_0.01"``. The matching
        threshold is stored under ``"min_dcf_threshold_{p_target:g}"``.
    """
    return f"min_dcf_{p_target:g}"


def _threshold_key(p_target: float) -> str:
    return f"min_dcf_threshold_{p_target:g}"


def check_trials(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate verification trials

    Parameters
    ----------
    y_true : (n_trials, ) array-like
        Reference: True/1 for target trials, False/0 for non-target trials.
    scores : (n_trials, ) array-like
        Similarity scores.

    Returns
    -------
    y_true : (n_trials, ) np.ndarray of bool
    scores : (n_trials, ) np.ndarray of float64

    Raises
    ------
    ValueError
        When arrays are not 1-D, have different lengths, are empty, when
        `y_true` has values other than 0/1/True/False, when `scores` are not
        finite (NaN or inf) or when `y_true` does not contain both classes.
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(scores)
    if y_true.ndim != 1 or scores.ndim != 1:
        raise ValueError(
            f"y_true and scores must be 1-D arrays "
            f"(got shapes {y_true.shape} and {scores.shape})."
        )
    if len(y_true) != len(scores):
        raise ValueError(
            f"y_true and scores have different lengths ({len(y_true)} != {len(scores)})."
        )
    if len(y_true) == 0:
        raise ValueError("y_true and scores are empty: there is no trial to evaluate.")

    if y_true.dtype != bool:
        try:
            valid = np.isin(y_true, (0, 1))
        except TypeError:
            valid = np.zeros(len(y_true), dtype=bool)
        if not np.all(valid):
            bad = np.unique(y_true[~valid])[:5]
            raise ValueError(
                f"y_true must only contain 0/1 or False/True (found {bad.tolist()})."
            )
        y_true = y_true.astype(bool)

    try:
        scores = scores.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"scores must be numeric ({e}).") from None
    not_finite = ~np.isfinite(scores)
    if np.any(not_finite):
        where = np.flatnonzero(not_finite)
        raise ValueError(
            f"scores contain {len(where)} non-finite value(s) (NaN or inf), "
            f"e.g. at trial index(es) {where[:10].tolist()}."
        )

    num_target = int(np.sum(y_true))
    if num_target == 0 or num_target == len(y_true):
        missing = "target" if num_target == 0 else "non-target"
        raise ValueError(
            f"y_true contains a single class (no {missing} trial among {len(y_true)}): "
            f"both target and non-target trials are needed."
        )
    return y_true, scores


def check_costs(p_targets: Sequence[float], c_miss: float, c_fa: float) -> np.ndarray:
    p_targets = np.atleast_1d(np.asarray(p_targets, dtype=np.float64))
    if p_targets.ndim != 1 or len(p_targets) == 0:
        raise ValueError("p_targets must be a non-empty sequence of floats.")
    if np.any(~((p_targets > 0) & (p_targets < 1))):
        raise ValueError(f"p_targets must be in ]0, 1[ (got {p_targets.tolist()}).")
    if not (c_miss > 0 and c_fa > 0):
        raise ValueError(f"c_miss and c_fa must be positive (got {c_miss} and {c_fa}).")
    return p_targets


# --- summaries of a DET curve --------------------------------------------------


def equal_error_rate(fpr: np.ndarray, fnr: np.ndarray) -> tuple[float, int]:
    """Equal error rate: where the DET curve crosses the fpr = fnr diagonal

    The one EER of the package: model selection during training and every
    report (``evaluate``, ``compare``) use it (see the module docstring for
    how it differs from pyannote.metrics' estimate).

    Parameters
    ----------
    fpr, fnr : np.ndarray
        DET curve, starting at (0, 1) and ending at (1, 0), e.g. from
        ``pyannote.metrics.binary_classification.det_curve``.

    Returns
    -------
    eer : float
        Equal error rate.
    index : int
        Index `i` of the first point with fpr > fnr (the crossing is on the
        segment [i-1, i]).
    """
    i = int(np.argmax(fpr > fnr))  # always exists: last point is (1, 0)
    d0 = fnr[i - 1] - fpr[i - 1]  # >= 0
    d1 = fnr[i] - fpr[i]  # < 0
    t = d0 / (d0 - d1)
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    return float(eer), i


def _eer_pyannote(fpr: np.ndarray, fnr: np.ndarray) -> float:
    """Equal error rate as estimated by pyannote.metrics' det_curve"""
    i = int(np.argmax(fpr > fnr))
    return float(0.25 * (fpr[i - 1] + fpr[i] + fnr[i - 1] + fnr[i]))


def normalized_dcf(
    fpr: np.ndarray, fnr: np.ndarray, p_targets: np.ndarray, c_miss: float, c_fa: float
) -> np.ndarray:
    """(n_p_targets, n_points) normalised detection cost along the DET curve"""
    p = p_targets[:, None]
    cost = c_miss * p * fnr + c_fa * (1.0 - p) * fpr
    return cost / np.minimum(c_miss * p, c_fa * (1.0 - p))


def summarize_curve(
    fpr: np.ndarray,
    fnr: np.ndarray,
    thresholds: np.ndarray,
    p_targets: np.ndarray,
    c_miss: float,
    c_fa: float,
) -> dict:
    """EER and minDCF (with their thresholds) of a DET curve"""
    eer, i = equal_error_rate(fpr, fnr)
    # of the two operating points around the crossing, the one with the smaller
    # worst error rate (never the +inf threshold, whose worst error rate is 1)
    worst = np.maximum(fpr[i - 1 : i + 1], fnr[i - 1 : i + 1])
    eer_threshold = thresholds[i - 1] if worst[0] < worst[1] else thresholds[i]
    metrics = {
        "eer": eer,
        "eer_threshold": float(eer_threshold),
        "eer_pyannote": _eer_pyannote(fpr, fnr),
    }
    dcf = normalized_dcf(fpr, fnr, p_targets, c_miss, c_fa)
    best = np.argmin(dcf, axis=1)
    for k, p in enumerate(p_targets):
        metrics[min_dcf_key(p)] = float(dcf[k, best[k]])
        metrics[_threshold_key(p)] = float(thresholds[best[k]])
    return metrics


def detection_metrics(
    y_true: ArrayLike,
    scores: ArrayLike,
    p_targets: Sequence[float] = (0.01, 0.05),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> dict:
    """Equal error rate and minimum normalised detection cost of verification trials

    Parameters
    ----------
    y_true : (n_trials, ) array-like
        Reference: True/1 for target trials, False/0 for non-target trials.
    scores : (n_trials, ) array-like
        Similarity scores (higher means "same speaker").
    p_targets : sequence of float, optional
        Target priors at which to compute minDCF. Defaults to (0.01, 0.05).
    c_miss, c_fa : float, optional
        Costs of a miss (false rejection) and of a false alarm. Default to 1.

    Returns
    -------
    metrics : dict
        "eer" : float
            Equal error rate in [0, 1] (see module docstring for its definition).
        "eer_threshold" : float
            Score threshold (accept if score >= threshold) of the operating point,
            among the two around the EER crossing, with the smaller max(fpr, fnr).
            Without tied scores, both error rates are <= EER at this threshold.
        "eer_pyannote" : float
            EER as estimated by pyannote.metrics' ``det_curve`` (for comparison).
        "min_dcf_{p:g}" : float
            Minimum normalised detection cost at target prior p (e.g. "min_dcf_0.01").
        "min_dcf_threshold_{p:g}" : float
            Threshold reaching it (``inf`` means "reject everything").
        "num_target", "num_nontarget" : int
            Number of target and non-target trials.

    Raises
    ------
    ValueError
        On invalid trials (see :func:`check_trials`) or costs.
    """
    y_true, scores = check_trials(y_true, scores)
    p_targets = check_costs(p_targets, c_miss, c_fa)
    fpr, fnr, thresholds, _ = det_curve(y_true, scores, distances=False)
    metrics = summarize_curve(fpr, fnr, thresholds, p_targets, c_miss, c_fa)
    metrics["num_target"] = int(np.sum(y_true))
    metrics["num_nontarget"] = int(len(y_true) - metrics["num_target"])
    return metrics


# --- fast re-weighted DET curves (bootstrap) -----------------------------------


class SortedTrials:
    """Trials sorted once by decreasing score, for fast DET curves of resampled trials

    A resample is described by how many times each target (resp. non-target)
    trial is drawn. Its DET curve only needs the per-score-value counts, which are
    cumulated along the (fixed) decreasing score order: O(n) per resample.

    Parameters
    ----------
    y_true : (n_trials, ) np.ndarray of bool
    scores : (n_trials, ) np.ndarray of float
    """

    def __init__(self, y_true: np.ndarray, scores: np.ndarray):
        order = np.argsort(scores, kind="mergesort")[::-1]
        sorted_scores = scores[order]
        starts = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
        group = np.empty(len(scores), dtype=np.intp)
        group[order] = np.cumsum(starts) - 1
        # distinct score values, decreasing
        self.thresholds = sorted_scores[starts]
        self.num_groups = len(self.thresholds)
        # score group of each target (resp. non-target) trial, in original order
        self.target_groups = group[y_true]
        self.nontarget_groups = group[~y_true]

    def counts(
        self, target_trials: np.ndarray | None = None, nontarget_trials: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-score-value counts of target and non-target trials

        Parameters
        ----------
        target_trials, nontarget_trials : np.ndarray of int, optional
            Indices (among target, resp. non-target, trials; repetitions allowed)
            of the drawn trials. Defaults to every trial once.

        Returns
        -------
        target_counts, nontarget_counts : (num_groups, ) np.ndarray of int
        """
        tg, ng = self.target_groups, self.nontarget_groups
        if target_trials is not None:
            tg = tg[target_trials]
        if nontarget_trials is not None:
            ng = ng[nontarget_trials]
        return (
            np.bincount(tg, minlength=self.num_groups),
            np.bincount(ng, minlength=self.num_groups),
        )

    def det_curve(
        self, target_counts: np.ndarray, nontarget_counts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """DET curve of trials weighted by integer counts

        Identical (bit for bit) to pyannote.metrics' ``det_curve`` applied to the
        trials repeated according to their counts.

        Parameters
        ----------
        target_counts, nontarget_counts : (num_groups, ) np.ndarray of int
            Number of target and non-target trials per distinct score value.

        Returns
        -------
        fpr, fnr, thresholds : np.ndarray
        """
        keep = (target_counts + nontarget_counts) > 0
        tps = np.cumsum(target_counts[keep])
        fps = np.cumsum(nontarget_counts[keep])
        thresholds = self.thresholds[keep]
        if len(fps) > 2:  # sklearn's roc_curve(drop_intermediate=True)
            optimal = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
            tps, fps, thresholds = tps[optimal], fps[optimal], thresholds[optimal]
        tps = np.r_[0, tps]
        fps = np.r_[0, fps]
        thresholds = np.r_[np.inf, thresholds]
        fpr = fps / fps[-1]
        fnr = 1 - tps / tps[-1]
        return fpr, fnr, thresholds


def bootstrap_confidence_intervals(
    y_true: ArrayLike,
    scores: ArrayLike,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    p_targets: Sequence[float] = (0.01, 0.05),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """Bootstrap percentile confidence intervals of EER and minDCF

    Trials are resampled with replacement, separately among target and among
    non-target trials (so that each resample keeps the original number of each),
    and metrics are recomputed on each resample with a sort-once O(n) DET curve
    that is identical to :func:`detection_metrics` on the resampled trials.

    Parameters
    ----------
    y_true : (n_trials, ) array-like
        Reference: True/1 for target trials, False/0 for non-target trials.
    scores : (n_trials, ) array-like
        Similarity scores (higher means "same speaker").
    n_resamples : int, optional
        Number of bootstrap resamples. Defaults to 1000.
    confidence : float, optional
        Confidence level of the intervals, in ]0, 1[. Defaults to 0.95.
    seed : int, optional
        Seed of the random generator (same seed, same intervals). Defaults to 0.
    p_targets : sequence of float, optional
        Target priors at which to compute minDCF. Defaults to (0.01, 0.05).
    c_miss, c_fa : float, optional
        Costs of a miss and of a false alarm. Default to 1.

    Returns
    -------
    intervals : dict
        "eer" and "min_dcf_{p:g}" (for each p in `p_targets`) -> (low, high),
        the (1 - confidence) / 2 and (1 + confidence) / 2 percentiles of the
        bootstrap distribution.

    Raises
    ------
    ValueError
        On invalid trials (see :func:`check_trials`), costs, `n_resamples` or
        `confidence`.
    """
    y_true, scores = check_trials(y_true, scores)
    p_targets = check_costs(p_targets, c_miss, c_fa)
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be a positive integer (got {n_resamples}).")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in ]0, 1[ (got {confidence}).")

    trials = SortedTrials(y_true, scores)
    num_target, num_nontarget = len(trials.target_groups), len(trials.nontarget_groups)
    rng = np.random.default_rng(seed)

    eers = np.empty(n_resamples)
    dcfs = np.empty((len(p_targets), n_resamples))
    for r in range(n_resamples):
        counts = trials.counts(
            rng.integers(0, num_target, size=num_target),
            rng.integers(0, num_nontarget, size=num_nontarget),
        )
        fpr, fnr, _ = trials.det_curve(*counts)
        eers[r], _ = equal_error_rate(fpr, fnr)
        dcfs[:, r] = np.min(normalized_dcf(fpr, fnr, p_targets, c_miss, c_fa), axis=1)

    percentiles = 100.0 * np.array([(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    intervals = {"eer": tuple(float(v) for v in np.percentile(eers, percentiles))}
    for p, values in zip(p_targets, dcfs):
        intervals[min_dcf_key(p)] = tuple(float(v) for v in np.percentile(values, percentiles))
    return intervals


def paired_bootstrap_eer_difference(
    y_true: ArrayLike,
    scores_a: Sequence[ArrayLike],
    scores_b: Sequence[ArrayLike],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> tuple[float, tuple[float, float]]:
    """EER of system A minus EER of system B on the same trials, with a paired bootstrap interval

    Each system may have several runs (seeds), scored on the same trials:
    its EER is the mean over its runs. Every resample draws the trials (with
    replacement, separately among target and non-target trials) once and
    applies the draw to every run of both systems, so that the interval
    reflects the variability of the trials while the comparison stays paired.

    Parameters
    ----------
    y_true : (n_trials, ) array-like
        Reference of the trials (shared by all runs).
    scores_a, scores_b : sequence of (n_trials, ) array-like
        Scores of each run of system A and of system B.
    n_resamples : int, optional
        Defaults to 1000.
    confidence : float, optional
        Defaults to 0.95.
    seed : int, optional
        Seed of the resampling. Defaults to 0.

    Returns
    -------
    difference : float
        mean EER(A) − mean EER(B) on the original trials.
    interval : (float, float)
        Its `confidence` percentile interval. The difference is significant
        at that level when the interval does not contain 0.
    """
    if not scores_a or not scores_b:
        raise ValueError("each system needs at least one run of scores.")
    checked = [check_trials(y_true, s) for s in list(scores_a) + list(scores_b)]
    y_true = checked[0][0]
    sorted_runs = [SortedTrials(y_true, scores) for _, scores in checked]
    split = len(scores_a)

    def difference(draw_target=None, draw_nontarget=None) -> float:
        eers = []
        for trials in sorted_runs:
            fpr, fnr, _ = trials.det_curve(*trials.counts(draw_target, draw_nontarget))
            eers.append(equal_error_rate(fpr, fnr)[0])
        return float(np.mean(eers[:split]) - np.mean(eers[split:]))

    num_target = int(np.sum(y_true))
    num_nontarget = len(y_true) - num_target
    rng = np.random.default_rng(seed)
    differences = np.array(
        [
            difference(rng.integers(0, num_target, size=num_target), rng.integers(0, num_nontarget, size=num_nontarget))
            for _ in range(int(n_resamples))
        ]
    )
    percentiles = 100.0 * np.array([(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    low, high = np.percentile(differences, percentiles)
    return difference(), (float(low), float(high))
