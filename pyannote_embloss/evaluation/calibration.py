"""Score calibration: from similarity scores to log-likelihood ratios, and decisions

A verification score (cosine, AS-norm, PLDA) ranks trials but is not a
decision. This module turns scores into something a user can act on:

* :class:`Calibration`: an affine map ``llr = slope * score + offset`` fitted
  by prior-weighted logistic regression on development trials (BOSARIS'
  ``train_linear_calibration``, WeSpeaker's calibration). With the effective
  target prior π of the fit, the objective is

      C(a, b) = π / N_tar Σ_tar log(1 + exp(-(a s + b + logit π)))
              + (1 - π) / N_non Σ_non log(1 + exp(a s + b + logit π)),

  whose minimiser makes ``a s + b`` a log-likelihood ratio (the prior's
  log-odds is added during the fit and left out of the result). It also keeps
  the score thresholds reaching target false-acceptance rates on those trials.
* :func:`cllr` and :func:`min_cllr`: the log-likelihood-ratio cost of
  calibrated scores, and its minimum over all monotonic maps of the scores
  (pool-adjacent-violators, i.e. the ROC convex hull, as BOSARIS' ``min_cllr``).
* :func:`actual_dcf`: the normalised detection cost of log-likelihood ratios
  thresholded at the Bayes threshold ``log(C_fa (1 - P_tar) / (C_miss P_tar))``,
  to compare with minDCF (:func:`pyannote_embloss.evaluation.metrics.detection_metrics`,
  same normalisation, parameter names and defaults).
* :func:`threshold_at_far` and :func:`error_rates`: the score threshold for a
  target false-acceptance rate, and the FAR and FRR of a threshold.

Conventions are those of :mod:`pyannote_embloss.evaluation.metrics`: labels
are True/1 for target trials, higher scores mean "same speaker", and a trial
is accepted when its score is ``>=`` the threshold.

>>> calibration = Calibration.fit(dev_scores, dev_labels)        # development trials
>>> report = calibration_metrics(calibration, test_scores, test_labels)
>>> report["cllr"], report["min_cllr"], report["act_dcf_0.01"], report["far"]["0.01"]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import isotonic_regression, minimize
from scipy.special import expit

from ..errors import DataError
from .metrics import check_costs, normalized_dcf, check_trials

__all__ = [
    "Calibration",
    "FARS",
    "act_dcf_key",
    "actual_dcf",
    "bayes_threshold",
    "calibration_metrics",
    "cllr",
    "error_rates",
    "far_key",
    "min_cllr",
    "optimal_llr",
    "threshold_at_far",
]

#: target false-acceptance rates whose thresholds a calibration keeps by default
FARS = (0.01, 0.001)


def act_dcf_key(p_target: float) -> str:
    """Result key of the actual detection cost at a target prior: ``"act_dcf_{p:g}"``

    The counterpart of :func:`pyannote_embloss.evaluation.metrics.min_dcf_key`.
    """
    return f"act_dcf_{p_target:g}"


def far_key(far: float) -> str:
    """Key of a target false-acceptance rate in thresholds and reports: ``"{far:g}"``"""
    return f"{far:g}"


def _check_far(far: float) -> float:
    far = float(far)
    if not 0.0 < far < 1.0:
        raise ValueError(f"The target false-acceptance rate must be in ]0, 1[ (got {far}).")
    return far


def _check_prior(prior: float) -> float:
    prior = float(prior)
    if not 0.0 < prior < 1.0:
        raise ValueError(f"The target prior must be in ]0, 1[ (got {prior}).")
    return prior


# --- log-likelihood-ratio cost ----------------------------------------------------


def cllr(llr: ArrayLike, labels: ArrayLike) -> float:
    """Log-likelihood-ratio cost of calibrated scores, in bits

    ``Cllr = [mean_tar log2(1 + exp(-llr)) + mean_non log2(1 + exp(llr))] / 2``:
    0 for a perfect system, 1 for one that always outputs llr = 0.

    Parameters
    ----------
    llr : (n_trials, ) array-like
        Natural log-likelihood ratios. Infinite values are allowed (a target
        trial with llr = +inf costs nothing, one with -inf costs infinitely).
    labels : (n_trials, ) array-like
        True/1 for target trials.

    Returns
    -------
    cllr : float
    """
    labels, _ = check_trials(labels, np.where(np.isfinite(llr), llr, 0.0))
    llr = np.asarray(llr, dtype=np.float64)
    if np.any(np.isnan(llr)):
        raise ValueError("llr contains NaN.")
    target = np.mean(np.logaddexp(0.0, -llr[labels]))
    nontarget = np.mean(np.logaddexp(0.0, llr[~labels]))
    return float((target + nontarget) / (2.0 * np.log(2.0)))


def optimal_llr(scores: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Log-likelihood ratios of the best monotonic map of the scores (PAV)

    Trials are sorted by increasing score, with targets before non-targets
    among tied scores (so that ties are pooled: they get one value); the
    pool-adjacent-violators algorithm then gives the target posterior of each
    trial, from which the empirical prior log-odds is removed (BOSARIS'
    ``opt_loglr``). The values are the slopes of the ROC convex hull.

    Returns
    -------
    llr : (n_trials, ) np.ndarray
        In the order of `scores`; ±inf at the ends when the extreme trials are
        of one class only.
    """
    labels, scores = check_trials(labels, scores)
    order = np.lexsort((~labels, scores))  # by score, targets first among ties
    posterior = np.empty(len(scores))
    posterior[order] = isotonic_regression(labels[order].astype(np.float64)).x
    num_target = np.sum(labels)
    prior_log_odds = np.log(num_target) - np.log(len(labels) - num_target)
    with np.errstate(divide="ignore"):
        return np.log(posterior) - np.log1p(-posterior) - prior_log_odds


def min_cllr(scores: ArrayLike, labels: ArrayLike) -> float:
    """Minimum Cllr: the Cllr of the scores after the best monotonic calibration

    The part of Cllr that calibration cannot remove (discrimination loss);
    ``cllr(llr, labels) - min_cllr(llr, labels)`` is the calibration loss.

    Parameters
    ----------
    scores : (n_trials, ) array-like
        Any scores (higher means "same speaker").
    labels : (n_trials, ) array-like
        True/1 for target trials.

    Returns
    -------
    min_cllr : float
        In [0, 1].
    """
    return cllr(optimal_llr(scores, labels), labels)


# --- detection costs and error rates ----------------------------------------------


def bayes_threshold(p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """LLR threshold of minimum expected cost: ``log(C_fa (1 - P_tar) / (C_miss P_tar))``"""
    check_costs([p_target], c_miss, c_fa)
    return float(np.log(c_fa * (1.0 - p_target)) - np.log(c_miss * p_target))


def error_rates(scores: ArrayLike, labels: ArrayLike, threshold: float) -> tuple[float, float]:
    """False-acceptance and false-rejection rates of a threshold

    Parameters
    ----------
    scores : (n_trials, ) array-like
    labels : (n_trials, ) array-like
        True/1 for target trials.
    threshold : float
        Trials with ``score >= threshold`` are accepted.

    Returns
    -------
    far : float
        Fraction of non-target trials accepted.
    frr : float
        Fraction of target trials rejected.
    """
    labels, scores = check_trials(labels, scores)
    accept = scores >= threshold
    return float(np.mean(accept[~labels])), float(np.mean(~accept[labels]))


def actual_dcf(
    llr: ArrayLike, labels: ArrayLike, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """Normalised detection cost of log-likelihood ratios at the Bayes threshold

    Same normalisation as minDCF (:mod:`pyannote_embloss.evaluation.metrics`):
    ``(C_miss P_tar FRR + C_fa (1 - P_tar) FAR) / min(C_miss P_tar, C_fa (1 - P_tar))``,
    with trials accepted when ``llr >= bayes_threshold(p_target, c_miss, c_fa)``.
    It is never below minDCF; the gap measures miscalibration at that prior.

    Parameters
    ----------
    llr : (n_trials, ) array-like
        Calibrated scores (e.g. :meth:`Calibration.llr`).
    labels : (n_trials, ) array-like
        True/1 for target trials.
    p_target : float, optional
        Prior probability of target trials. Defaults to 0.01.
    c_miss, c_fa : float, optional
        Costs of a miss and of a false alarm. Default to 1.

    Returns
    -------
    dcf : float
    """
    far, frr = error_rates(llr, labels, bayes_threshold(p_target, c_miss, c_fa))
    return float(normalized_dcf(np.array([far]), np.array([frr]), np.array([p_target]), c_miss, c_fa)[0, 0])


def threshold_at_far(scores: ArrayLike, labels: ArrayLike, far: float) -> float:
    """Lowest score threshold whose false-acceptance rate on the trials is at most `far`

    With N non-target trials, at most ``k = floor(far N)`` of them may be
    accepted: the threshold lies halfway between the (k+1)-th highest
    non-target score and the next higher one (just above the highest when
    k = 0), so that exactly the non-targets above it are accepted, ties
    included. The FAR is resolved to 1 / N: ask for FARs well above it.

    Parameters
    ----------
    scores : (n_trials, ) array-like
    labels : (n_trials, ) array-like
        True/1 for target trials (only non-target scores are used).
    far : float
        Target false-acceptance rate, in ]0, 1[.

    Returns
    -------
    threshold : float
        Accept trials with ``score >= threshold``.
    """
    labels, scores = check_trials(labels, scores)
    far = _check_far(far)
    nontarget = np.sort(scores[~labels])[::-1]
    k = min(int(np.floor(far * len(nontarget) * (1.0 + 1e-12))), len(nontarget) - 1)
    v = nontarget[k]
    higher = nontarget[:k][nontarget[:k] > v]
    if len(higher) == 0:
        return float(np.nextafter(v, np.inf))
    return float(0.5 * (v + higher[-1]))


# --- affine calibration -------------------------------------------------------------


def _logistic_objective(params, z, y, weights, prior_log_odds, regularization):
    """Prior-weighted logistic loss of llr = a z + b, its gradient and Hessian"""
    a, b = params
    t = a * z + b + prior_log_odds
    loss = np.sum(weights * np.where(y, np.logaddexp(0.0, -t), np.logaddexp(0.0, t)))
    p = expit(t)
    g = weights * (p - y)
    h = weights * p * (1.0 - p)
    gradient = np.array([g @ z + regularization * a, np.sum(g)])
    hessian = np.array([[h @ (z * z) + regularization, h @ z], [h @ z, np.sum(h)]])
    return loss + 0.5 * regularization * a * a, gradient, hessian


@dataclass
class Calibration:
    """Affine map from scores to log-likelihood ratios, and thresholds at target FARs

    Parameters
    ----------
    slope, offset : float
        ``llr = slope * score + offset`` (natural log).
    prior : float
        Effective target prior of the fit.
    thresholds : dict, optional
        ``{far_key(far): score threshold}`` picked on the fitting trials
        (:func:`threshold_at_far`).
    scoring : str, optional
        Name of the scoring whose scores were calibrated (e.g. "cosine",
        "asnorm", "plda"): a calibration only applies to that scoring.
    num_target, num_nontarget : int, optional
        Number of trials of each class it was fitted on.
    """

    slope: float
    offset: float
    prior: float = 0.5
    thresholds: dict = field(default_factory=dict)
    scoring: Optional[str] = None
    num_target: int = 0
    num_nontarget: int = 0

    @classmethod
    def fit(
        cls,
        scores: ArrayLike,
        labels: ArrayLike,
        prior: float = 0.5,
        fars: Sequence[float] = FARS,
        scoring: Optional[str] = None,
        regularization: float = 1e-6,
    ) -> "Calibration":
        """Fit by prior-weighted logistic regression (see the module docstring)

        Parameters
        ----------
        scores : (n_trials, ) array-like
            Scores of development trials.
        labels : (n_trials, ) array-like
            True/1 for target trials.
        prior : float, optional
            Effective target prior of the fit: the weight of target trials in
            the objective. Defaults to 0.5 (BOSARIS, WeSpeaker). When the
            scores follow the model (log-likelihood ratio affine in the score),
            any prior gives the same map; otherwise the map is most accurate
            around the Bayes threshold of that prior.
        fars : sequence of float, optional
            Target false-acceptance rates whose score thresholds are kept.
            Defaults to (0.01, 0.001).
        scoring : str, optional
            Name of the calibrated scoring, kept for reference.
        regularization : float, optional
            L2 penalty on the slope of the standardised scores, which only
            matters (keeps the slope finite) when the trials are perfectly
            separated. Defaults to 1e-6.

        Returns
        -------
        calibration : Calibration

        Raises
        ------
        ValueError
            On invalid trials (:func:`pyannote_embloss.evaluation.metrics.check_trials`),
            prior or FARs.
        DataError
            When every score is the same.
        """
        labels, scores = check_trials(labels, scores)
        prior = _check_prior(prior)
        center, scale = float(np.mean(scores)), float(np.std(scores))
        if not scale > 0:
            raise DataError("Cannot calibrate scores that are all equal.")
        z = (scores - center) / scale
        num_target = int(np.sum(labels))
        num_nontarget = len(labels) - num_target
        weights = np.where(labels, prior / num_target, (1.0 - prior) / num_nontarget)
        result = minimize(
            _logistic_objective,
            x0=np.array([1.0, 0.0]),
            args=(z, labels.astype(np.float64), weights, np.log(prior) - np.log1p(-prior), regularization),
            jac=True,
            hess=lambda params, *args: _logistic_objective(params, *args)[2],
            method="trust-exact",
            options={"gtol": 1e-10},
        )
        a, b = result.x
        thresholds = {far_key(far): threshold_at_far(scores, labels, far) for far in fars}
        return cls(
            slope=float(a / scale),
            offset=float(b - a * center / scale),
            prior=prior,
            thresholds=thresholds,
            scoring=scoring,
            num_target=num_target,
            num_nontarget=num_nontarget,
        )

    def llr(self, scores: ArrayLike) -> np.ndarray:
        """Log-likelihood ratios of scores: ``slope * scores + offset``"""
        return self.slope * np.asarray(scores, dtype=np.float64) + self.offset

    def threshold(self, far: float) -> float:
        """Score threshold kept for a target false-acceptance rate

        Raises
        ------
        KeyError
            When the calibration keeps no threshold for `far` (the message
            lists those it keeps).
        """
        key = far_key(_check_far(far))
        if key not in self.thresholds:
            kept = ", ".join(sorted(self.thresholds, key=float)) or "none"
            raise KeyError(f"The calibration has no threshold for FAR {key} (it has: {kept}).")
        return float(self.thresholds[key])

    def to_dict(self) -> dict:
        """JSON-serialisable dict that :meth:`from_dict` reads back"""
        return {
            "slope": self.slope,
            "offset": self.offset,
            "prior": self.prior,
            "thresholds": {str(k): float(v) for k, v in self.thresholds.items()},
            "scoring": self.scoring,
            "num_target": self.num_target,
            "num_nontarget": self.num_nontarget,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "Calibration":
        """Calibration saved by :meth:`to_dict`

        Raises
        ------
        DataError
            When `data` is not a saved calibration.
        """
        if not isinstance(data, Mapping) or "slope" not in data or "offset" not in data:
            raise DataError(f"Not a saved calibration (expected keys 'slope' and 'offset'): {data!r:.200}")
        try:
            calibration = cls(
                slope=float(data["slope"]),
                offset=float(data["offset"]),
                prior=float(data.get("prior", 0.5)),
                thresholds={far_key(float(k)): float(v) for k, v in (data.get("thresholds") or {}).items()},
                scoring=data.get("scoring"),
                num_target=int(data.get("num_target", 0)),
                num_nontarget=int(data.get("num_nontarget", 0)),
            )
        except (TypeError, ValueError) as error:
            raise DataError(f"Invalid saved calibration ({error}): {dict(data)!r:.200}") from None
        if not (np.isfinite(calibration.slope) and np.isfinite(calibration.offset)):
            raise DataError(f"Invalid saved calibration: slope and offset must be finite ({dict(data)!r:.200}).")
        return calibration


def calibration_metrics(
    calibration: Calibration,
    scores: ArrayLike,
    labels: ArrayLike,
    p_targets: Sequence[float] = (0.01, 0.05),
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> dict:
    """How well a calibration fitted on development trials does on (test) trials

    Parameters
    ----------
    calibration : Calibration
        Fitted on other (development) trials.
    scores : (n_trials, ) array-like
        Scores of the evaluated trials (same scoring as the calibration).
    labels : (n_trials, ) array-like
        True/1 for target trials.
    p_targets : sequence of float, optional
        Target priors of the actual DCFs. Defaults to (0.01, 0.05), those of
        :func:`~pyannote_embloss.evaluation.metrics.detection_metrics`' minDCF.
    c_miss, c_fa : float, optional
        Default to 1.

    Returns
    -------
    metrics : dict
        "cllr", "min_cllr" : float
            Cllr of the calibrated scores and its minimum (bits).
        "act_dcf_{p:g}" : float
            Actual DCF at the Bayes threshold of each prior (compare with
            "min_dcf_{p:g}" of ``detection_metrics``).
        "far" : dict
            For each FAR the calibration keeps a threshold for:
            ``{far_key(far): {"threshold", "far", "frr"}}``, the FAR and FRR
            that threshold gives on these trials.
        "calibration" : dict
            ``calibration.to_dict()``.
    """
    labels, scores = check_trials(labels, scores)
    p_targets = check_costs(p_targets, c_miss, c_fa)
    llr = calibration.llr(scores)
    metrics = {"cllr": cllr(llr, labels), "min_cllr": min_cllr(scores, labels)}
    for p in p_targets:
        metrics[act_dcf_key(p)] = actual_dcf(llr, labels, p_target=float(p), c_miss=c_miss, c_fa=c_fa)
    metrics["far"] = {}
    for key, threshold in sorted(calibration.thresholds.items(), key=lambda item: -float(item[0])):
        far, frr = error_rates(scores, labels, threshold)
        metrics["far"][key] = {"threshold": float(threshold), "far": far, "frr": frr}
    metrics["calibration"] = calibration.to_dict()
    return metrics
