"""The single scoring path: Trials, mean normalisation, AS-norm, paired significance"""

import numpy as np
import pytest

from pyannote_embloss.evaluation import AdaptiveSNorm, Cohort, MeanNormalization, Trials, score_trials
from pyannote_embloss.evaluation.metrics import detection_metrics, paired_bootstrap_eer_difference
from pyannote_embloss.errors import DataError


def test_trials_from_triplets_share_files_and_round_trip():
    trials = Trials.from_triplets([("a", "b", 1), ("a", "c", 0), ("c", "b", True)], audio={"a": "a.wav"})
    assert trials.uris == ["a", "c", "b"]  # each file once, in order of first appearance
    assert len(trials) == 3 and trials.num_files == 3
    assert trials.reference.tolist() == [True, False, True]
    assert trials.paths[trials.uris.index("a")] == "a.wav"
    again = Trials.from_arrays(trials.to_arrays("x"), "x")
    assert again.uris == trials.uris and np.array_equal(again.index1, trials.index1)
    assert np.array_equal(again.reference, trials.reference)
    with pytest.raises(DataError, match="reference 2"):
        Trials.from_triplets([("a", "b", 2)])
    with pytest.raises(DataError, match="zero norm or non-finite.*'b'"):
        trials.score(np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, 0.0]]))


def test_mean_normalisation_is_cosine_of_centred_embeddings():
    embeddings = {"a": np.array([2.0, 1.0]), "b": np.array([1.0, 2.0]), "c": np.array([3.0, 3.0])}
    triplets = [("a", "b", 0), ("a", "c", 1)]
    mean = np.array([1.0, 1.0])
    _, scores = score_trials(embeddings, triplets, normalization=MeanNormalization(mean))
    # (1, 0) . (0, 1) = 0 ; (1, 0) . (2, 2)/|.| = 1/sqrt(2)
    np.testing.assert_allclose(scores, [0.0, 1 / np.sqrt(2)])


def test_as_norm_equals_a_direct_computation_on_a_hand_made_cohort():
    # cohort: 3 speakers with 2 training embeddings each
    train = np.array([[1.0, 0.0, 0.0], [0.8, 0.2, 0.0], [0.0, 1.0, 0.0], [0.1, 0.9, 0.1], [0.0, 0.0, 1.0], [0.2, 0.0, 0.8]])
    speakers = ["s1", "s1", "s2", "s2", "s3", "s3"]
    cohort = Cohort.from_embeddings(train, speakers)
    np.testing.assert_allclose(cohort.speakers, [[0.9, 0.1, 0.0], [0.05, 0.95, 0.05], [0.1, 0.0, 0.9]])
    np.testing.assert_allclose(cohort.mean, train.mean(axis=0))
    norm = AdaptiveSNorm(cohort, top_n=2)

    enrol, test = np.array([0.7, 0.3, 0.1]), np.array([0.2, 0.6, 0.4])
    mu = cohort.mean

    def unit(v):
        return v / np.linalg.norm(v)

    def stats(x):
        scores = sorted((unit(x - mu) @ unit(c - mu) for c in cohort.speakers), reverse=True)[:2]
        return np.mean(scores), np.std(scores)

    s = unit(enrol - mu) @ unit(test - mu)
    (m1, s1), (m2, s2) = stats(enrol), stats(test)
    expected = 0.5 * ((s - m1) / s1 + (s - m2) / s2)
    _, scores = score_trials({"e": enrol, "t": test}, [("e", "t", 1)], normalization=norm)
    assert scores[0] == pytest.approx(expected, rel=1e-9)
    # top_n is capped at the cohort size; the cohort size option keeps that many speakers
    assert AdaptiveSNorm(cohort, top_n=300).top_n == 3
    assert len(Cohort.from_embeddings(train, speakers, size=2)) == 2


def _scores(n, separation, seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    return y, np.r_[rng.normal(separation, 1, n), rng.normal(0, 1, n)]


def test_paired_bootstrap_knows_identical_and_separated_systems():
    y, a = _scores(1000, 2.0, seed=0)
    # identical systems: difference 0, interval contains 0
    difference, (low, high) = paired_bootstrap_eer_difference(y, [a], [a.copy()], n_resamples=200)
    assert difference == 0.0 and low <= 0.0 <= high
    # clearly better system B: EER(A) - EER(B) > 0, interval excludes 0
    _, b = _scores(1000, 3.5, seed=1)
    difference, (low, high) = paired_bootstrap_eer_difference(y, [a], [b], n_resamples=200)
    expected = detection_metrics(y, a)["eer"] - detection_metrics(y, b)["eer"]
    assert difference == pytest.approx(expected)
    assert 0.0 < low <= difference <= high
    # pooled over seeds: the mean over runs
    _, a2 = _scores(1000, 2.0, seed=2)
    difference, _ = paired_bootstrap_eer_difference(y, [a, a2], [b], n_resamples=20)
    pooled = (detection_metrics(y, a)["eer"] + detection_metrics(y, a2)["eer"]) / 2 - detection_metrics(y, b)["eer"]
    assert difference == pytest.approx(pooled)
