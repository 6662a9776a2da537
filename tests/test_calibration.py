"""Calibration of verification scores, Cllr, actual DCF, thresholds at a target FAR, decisions

Synthetic scores with a known log-likelihood ratio: target scores ~ N(2, 1),
non-target scores ~ N(0, 1). The true LLR is affine in the score,
log N(s; 2, 1) − log N(s; 0, 1) = 2 s − 2, and is distributed as
N(±2, 4) (d' = 2), whose Cllr is 0.51406 bits (numerical integration below).
"""

import json

import numpy as np
import pytest
from scipy import integrate, stats

from pyannote_embloss.errors import ConfigError, DataError
from pyannote_embloss.evaluation.calibration import (
    Calibration,
    actual_dcf,
    bayes_threshold,
    calibration_metrics,
    cllr,
    error_rates,
    min_cllr,
    threshold_at_far,
)
from pyannote_embloss.evaluation.decisions import Decision
from pyannote_embloss.evaluation.metrics import detection_metrics

SLOPE, OFFSET = 2.0, -2.0


def gaussian_trials(num_target, num_nontarget, seed=0):
    """(scores, labels): targets ~ N(2, 1), non-targets ~ N(0, 1); true LLR = 2 s − 2"""
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(2.0, 1.0, num_target), rng.normal(0.0, 1.0, num_nontarget)]
    labels = np.r_[np.ones(num_target, dtype=bool), np.zeros(num_nontarget, dtype=bool)]
    return scores, labels


def true_llr(scores):
    return SLOPE * scores + OFFSET


def theoretical_cllr(d_prime=2.0):
    """Cllr of the true LLR of equal-variance Gaussian scores (LLR | target ~ N(d'²/2, d'²))"""
    mean, std = d_prime**2 / 2, d_prime
    integrand = lambda l: np.logaddexp(0.0, -l) * stats.norm.pdf(l, mean, std)  # noqa: E731
    return integrate.quad(integrand, mean - 12 * std, mean + 12 * std)[0] / np.log(2)


# --- the fitted map ---------------------------------------------------------------


@pytest.mark.parametrize("prior, tolerance", [(0.5, 0.04), (0.01, 0.08)])
def test_fitted_map_recovers_the_true_llr(prior, tolerance):
    # 100,000 trials per class. Over 40 seeds of 20,000 per class the estimates'
    # standard deviations were 0.019 (slope) and 0.024 (offset) at prior 0.5,
    # 0.039 and 0.055 at prior 0.01: the tolerances are ~4 standard deviations
    # at 100,000 per class. Keeping the prior's log-odds in the map would put
    # the offset off by logit(0.01) = -4.6.
    scores, labels = gaussian_trials(100_000, 100_000, seed=1)
    calibration = Calibration.fit(scores, labels, prior=prior)
    assert calibration.slope == pytest.approx(SLOPE, abs=tolerance)
    assert calibration.offset == pytest.approx(OFFSET, abs=tolerance)
    assert calibration.prior == prior
    assert (calibration.num_target, calibration.num_nontarget) == (100_000, 100_000)
    grid = np.linspace(-2.0, 4.0, 7)
    np.testing.assert_allclose(calibration.llr(grid), true_llr(grid), atol=3 * tolerance)


def test_fit_does_not_depend_on_the_scale_or_shift_of_the_scores():
    scores, labels = gaussian_trials(5_000, 20_000, seed=2)
    calibration = Calibration.fit(scores, labels)
    moved = Calibration.fit(1000.0 * scores - 300.0, labels)
    np.testing.assert_allclose(moved.llr(1000.0 * scores - 300.0), calibration.llr(scores), atol=1e-6)


def test_fit_of_separated_trials_stays_finite_and_equal_scores_are_refused():
    labels = np.array([0, 0, 0, 1, 1, 1])
    calibration = Calibration.fit([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], labels)
    assert np.isfinite(calibration.slope) and calibration.slope > 0
    assert calibration.llr(0.8) > 0 > calibration.llr(0.2)
    with pytest.raises(DataError, match="all equal"):
        Calibration.fit(np.ones(6), labels)
    with pytest.raises(ValueError, match="single class"):
        Calibration.fit([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="prior"):
        Calibration.fit([0.1, 0.2], [0, 1], prior=1.0)


def test_calibration_round_trips_through_json_and_refuses_garbage():
    scores, labels = gaussian_trials(2_000, 2_000)
    calibration = Calibration.fit(scores, labels, scoring="asnorm")
    again = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    assert again == calibration
    assert set(again.thresholds) == {"0.01", "0.001"}
    with pytest.raises(DataError, match="Not a saved calibration"):
        Calibration.from_dict({"eer": 0.1})
    with pytest.raises(DataError, match="Invalid saved calibration"):
        Calibration.from_dict({"slope": "steep", "offset": 0.0})


# --- Cllr and min Cllr ------------------------------------------------------------------


def test_cllr_of_the_true_llr_is_its_theoretical_value_and_close_to_min_cllr():
    theory = theoretical_cllr()
    assert theory == pytest.approx(0.51406, abs=1e-5)
    scores, labels = gaussian_trials(100_000, 100_000, seed=3)
    actual = cllr(true_llr(scores), labels)
    # over 40 seeds of 20,000 per class, its standard deviation was 0.0038
    assert actual == pytest.approx(theory, abs=0.01)
    # PAV is the best monotonic map on these very trials: min Cllr <= Cllr of the
    # true LLR (a monotonic map), and only by its overfitting (0.002-0.003 at 20,000)
    best = min_cllr(scores, labels)
    assert 0.0 <= actual - best < 0.005
    # min Cllr only depends on the order of the scores
    assert min_cllr(np.exp(scores), labels) == pytest.approx(best, abs=1e-12)


def test_cllr_and_min_cllr_on_hand_computed_cases():
    labels = np.array([1, 1, 0, 0])
    assert cllr(np.zeros(4), labels) == pytest.approx(1.0)  # an uninformative system
    # each class: one free trial (llr ±inf on the right side) and one costing log2(1 + e⁻⁵)
    assert cllr([np.inf, 5.0, -np.inf, -5.0], labels) == pytest.approx(np.log2(1 + np.exp(-5.0)) / 2)
    assert cllr([-np.inf, 5.0, -7.0, -5.0], labels) == np.inf
    assert min_cllr([0.9, 0.8, 0.1, 0.2], labels) == 0.0  # separated
    assert min_cllr([0.5, 0.5, 0.5, 0.5], labels) == pytest.approx(1.0)  # all tied
    # scores 1 < 2 < 3 < 4 with labels 0, 1, 0, 1: PAV pools the middle two (posterior
    # 1/2, LLR 0); the ends get LLRs -inf (non-target) and +inf (target), which cost nothing
    assert min_cllr([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1]) == pytest.approx(0.5)


def test_calibration_fitted_on_development_trials_removes_the_miscalibration_of_test_trials():
    dev_scores, dev_labels = gaussian_trials(20_000, 20_000, seed=4)
    test_scores, test_labels = gaussian_trials(20_000, 20_000, seed=5)
    raw = 3.0 * true_llr(test_scores) + 2.0  # over-confident and shifted
    best = min_cllr(test_scores, test_labels)
    assert cllr(raw, test_labels) > best + 0.3
    calibration = Calibration.fit(3.0 * true_llr(dev_scores) + 2.0, dev_labels)
    calibrated = cllr(calibration.llr(raw), test_labels)
    assert best <= calibrated < best + 0.01
    assert calibrated == pytest.approx(cllr(true_llr(test_scores), test_labels), abs=0.002)


# --- DCF, FAR and FRR ------------------------------------------------------------------------


def test_actual_dcf_is_never_below_min_dcf_and_close_to_it_when_calibrated():
    scores, labels = gaussian_trials(20_000, 200_000, seed=6)
    for p in (0.01, 0.05):
        min_dcf = detection_metrics(labels, scores, p_targets=(p,))[f"min_dcf_{p:g}"]
        calibrated = actual_dcf(true_llr(scores), labels, p_target=p)
        shifted = actual_dcf(true_llr(scores) + 3.0, labels, p_target=p)
        assert min_dcf <= calibrated < min_dcf + 0.03
        assert shifted > min_dcf + 0.2


def test_actual_dcf_error_rates_and_bayes_threshold_by_hand():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    llr = np.array([6.0, 5.0, 4.0, -1.0, 5.0, 0.0, -3.0, -6.0])
    threshold = bayes_threshold(0.01)
    assert threshold == pytest.approx(np.log(99.0))  # 4.595
    # accepted (llr >= 4.595): targets 6, 5 (FRR 2/4); non-target 5 (FAR 1/4)
    assert error_rates(llr, labels, threshold) == (0.25, 0.5)
    expected = (0.01 * 0.5 + 0.99 * 0.25) / 0.01
    assert actual_dcf(llr, labels, p_target=0.01) == pytest.approx(expected)
    # costs move the threshold as a prior does: C_miss = 99 at prior 0.01 is threshold 0
    assert bayes_threshold(0.01, c_miss=99.0) == pytest.approx(0.0)
    assert error_rates(llr, labels, 5.0) == (0.25, 0.5)  # ">=": the tie at 5 is accepted


def test_threshold_at_far_on_ties_and_small_sets():
    labels = np.array([0] * 10 + [1])
    scores = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 8.0, 10.0])
    # 10 non-targets, FAR 0.1: 1 may be accepted, but the two highest are tied at 8:
    # the threshold must reject both, halfway to the next higher non-target (none): just above 8
    assert threshold_at_far(scores, labels, 0.1) == pytest.approx(8.0) and threshold_at_far(scores, labels, 0.1) > 8.0
    # FAR 0.2: both 8s accepted, threshold halfway between 7 and 8
    assert threshold_at_far(scores, labels, 0.2) == 7.5
    assert threshold_at_far(scores, labels, 0.25) == 7.5  # floor(2.5) = 2
    for far in (0.1, 0.2, 0.3, 0.55):
        assert error_rates(scores, labels, threshold_at_far(scores, labels, far))[0] <= far
    with pytest.raises(ValueError, match="false-acceptance rate"):
        threshold_at_far(scores, labels, 0.0)


@pytest.mark.parametrize("far, tolerance", [(0.01, 0.0012), (0.001, 0.0004)])
def test_threshold_at_far_gives_the_requested_far_on_new_trials(far, tolerance):
    # 200,000 non-targets to pick the threshold, 200,000 others to measure it: the
    # standard deviation of the measured FAR is about √2 · √(far (1 − far) / 200,000),
    # 0.0003 at 1 % and 0.0001 at 0.1 %; tolerances are ~4 of them
    dev_scores, dev_labels = gaussian_trials(1_000, 200_000, seed=7)
    test_scores, test_labels = gaussian_trials(1_000, 200_000, seed=8)
    threshold = threshold_at_far(dev_scores, dev_labels, far)
    assert threshold == pytest.approx(stats.norm.isf(far), abs=0.05)
    dev_far, _ = error_rates(dev_scores, dev_labels, threshold)
    assert far - 1 / 200_000 < dev_far <= far
    test_far, test_frr = error_rates(test_scores, test_labels, threshold)
    assert test_far == pytest.approx(far, abs=tolerance)
    assert test_frr == pytest.approx(stats.norm.cdf(stats.norm.isf(far) - 2.0), abs=0.03)


def test_calibration_metrics_reports_costs_and_far_thresholds_on_test_trials():
    dev_scores, dev_labels = gaussian_trials(10_000, 100_000, seed=9)
    test_scores, test_labels = gaussian_trials(10_000, 100_000, seed=10)
    calibration = Calibration.fit(dev_scores, dev_labels, scoring="cosine")
    report = calibration_metrics(calibration, test_scores, test_labels)
    assert set(report) == {"cllr", "min_cllr", "act_dcf_0.01", "act_dcf_0.05", "far", "calibration"}
    assert report["min_cllr"] <= report["cllr"] < report["min_cllr"] + 0.01
    minimum = detection_metrics(test_labels, test_scores)
    assert minimum["min_dcf_0.01"] <= report["act_dcf_0.01"] < minimum["min_dcf_0.01"] + 0.05
    assert list(report["far"]) == ["0.01", "0.001"]
    one = report["far"]["0.01"]
    assert one["threshold"] == calibration.thresholds["0.01"]
    assert one["far"] == pytest.approx(0.01, abs=0.002)
    assert (one["far"], one["frr"]) == error_rates(test_scores, test_labels, one["threshold"])
    assert report["calibration"] == calibration.to_dict()
    json.dumps(report)


# --- decisions ------------------------------------------------------------------------------


def test_decisions_at_a_far_and_at_a_prior():
    dev_scores, dev_labels = gaussian_trials(10_000, 100_000, seed=11)
    saved = Calibration.fit(dev_scores, dev_labels, scoring="cosine").to_dict()
    test_scores, test_labels = gaussian_trials(10_000, 100_000, seed=12)

    decide = Decision(saved, far=0.01)
    llr, accept = decide(test_scores)
    assert np.array_equal(accept, test_scores >= saved["thresholds"]["0.01"])
    np.testing.assert_allclose(llr, saved["slope"] * test_scores + saved["offset"])
    assert np.mean(accept[~test_labels]) == pytest.approx(0.01, abs=0.002)
    assert Decision(saved).operating_point == "FAR 0.01"  # the default

    # prior 0.01: accept LLR >= log(99); the LLR is calibrated, so that is s >= (log 99 + 2) / 2
    llr, accept = Decision(saved, prior=0.01)(test_scores)
    assert np.array_equal(accept, llr >= np.log(99.0))
    boundary = test_scores[accept].min()
    assert boundary == pytest.approx((np.log(99.0) + 2.0) / 2.0, abs=0.05)

    one_llr, one_decision = Decision(saved, prior=0.5)(2.0)
    assert isinstance(one_decision, bool) and one_decision and one_llr == pytest.approx(2.0, abs=0.1)


def test_decision_errors_say_what_to_do():
    with pytest.raises(DataError, match=r"run `pyannote-audio-emb evaluate aam --subset test`.*development trials"):
        Decision(None, experiment="aam")
    saved = Calibration.fit(*gaussian_trials(1_000, 1_000), scoring="cosine").to_dict()
    with pytest.raises(ConfigError, match=r"no threshold for FAR 0.05 \(it has: 0.001, 0.01\)"):
        Decision(saved, far=0.05)
    with pytest.raises(ConfigError, match="not both"):
        Decision(saved, far=0.01, prior=0.01)
    with pytest.raises(ConfigError, match="fitted on cosine scores, not plda"):
        Decision(saved, scoring="plda")
    with pytest.raises(DataError, match="Not a saved calibration"):
        Decision({"cosine": 0.3})
