"""Tests of pyannote_embloss.evaluation: metrics, scoring and reports"""

import csv
import json

import numpy as np
import pytest
from pyannote.metrics.binary_classification import det_curve

from pyannote_embloss.evaluation import (
    bootstrap_confidence_intervals,
    cosine_scores,
    detection_metrics,
    make_row,
    plot_det_curves,
    score_trials,
    write_json,
    write_table,
)
from pyannote_embloss.evaluation.metrics import SortedTrials, summarize_curve

# --- helpers ---------------------------------------------------------------------


def _trials(n, separation=2.0, p_target=0.2, seed=0, decimals=None):
    """Gaussian target / non-target scores (optionally rounded to create ties)"""
    rng = np.random.default_rng(seed)
    y_true = rng.random(n) < p_target
    y_true[:2] = [True, False]
    scores = rng.normal(size=n) + separation * y_true
    if decimals is not None:
        scores = np.round(scores, decimals)
    return y_true, scores


def _operating_points(y_true, scores):
    """Every (threshold, fpr, fnr), "accept if score >= threshold", by brute force"""
    y_true = np.asarray(y_true, dtype=bool)
    points = []
    for threshold in np.r_[np.inf, np.unique(scores)[::-1]]:
        accept = scores >= threshold
        points.append((threshold, np.mean(accept[~y_true]), np.mean(~accept[y_true])))
    return points


def _brute_force_min_dcf(y_true, scores, p_target, c_miss=1.0, c_fa=1.0):
    norm = min(c_miss * p_target, c_fa * (1 - p_target))
    return min(
        (c_miss * p_target * fnr + c_fa * (1 - p_target) * fpr) / norm
        for _, fpr, fnr in _operating_points(y_true, scores)
    )


def _fast_metrics(y_true, scores, target_trials=None, nontarget_trials=None):
    trials = SortedTrials(np.asarray(y_true, dtype=bool), np.asarray(scores, dtype=float))
    fpr, fnr, thresholds = trials.det_curve(*trials.counts(target_trials, nontarget_trials))
    return summarize_curve(fpr, fnr, thresholds, np.array([0.01, 0.05]), 1.0, 1.0)


# --- EER -----------------------------------------------------------------------


def test_eer_perfect_separation():
    metrics = detection_metrics([1, 1, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.1])
    assert metrics["eer"] == 0.0
    assert metrics["min_dcf_0.01"] == 0.0
    assert metrics["min_dcf_0.05"] == 0.0
    # accepting scores >= 0.7 makes no error
    assert metrics["eer_threshold"] == 0.7
    # pyannote.metrics' 4-point average is biased here (documented, kept for reference)
    assert metrics["eer_pyannote"] == pytest.approx(0.25)


def test_eer_hand_made():
    # sorted scores: T .9, N .8, T .7, N .6, N .5
    # accept >= .8: fpr 1/3, fnr 1/2 ; accept >= .7: fpr 1/3, fnr 0
    # -> fnr jumps from 1/2 to 0 while fpr stays at 1/3: EER = 1/3
    y_true = [True, False, True, False, False]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    metrics = detection_metrics(y_true, scores)
    assert metrics["eer"] == pytest.approx(1 / 3)
    assert metrics["eer_threshold"] == 0.7
    assert metrics["eer_pyannote"] == pytest.approx(0.25 * (1 / 3 + 1 / 3 + 1 / 2 + 0))
    assert metrics["num_target"] == 2
    assert metrics["num_nontarget"] == 3


def test_eer_hand_made_ties():
    # all scores tied: the DET curve is the segment (0, 1) -> (1, 0)
    assert detection_metrics([1, 0, 0, 1], [0.3] * 4)["eer"] == pytest.approx(0.5)
    # T .9, {T, N, N} .5, N .1: points (0, 1) (0, 1/2) (2/3, 0) (1, 0)
    # segment (0, 1/2) -> (2/3, 0) crosses fpr = fnr at 2/7
    metrics = detection_metrics([1, 1, 0, 0, 0], [0.9, 0.5, 0.5, 0.5, 0.1])
    assert metrics["eer"] == pytest.approx(2 / 7)


def test_eer_random_scores():
    rng = np.random.default_rng(0)
    y_true = rng.random(10_000) < 0.3
    metrics = detection_metrics(y_true, rng.random(10_000))
    assert metrics["eer"] == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("seed", range(5))
def test_eer_brute_force(seed):
    # without ties the DET curve is a staircase: EER = max over thresholds of min(fpr, fnr)
    y_true, scores = _trials(300, separation=1.0 + seed / 2, seed=seed)
    points = _operating_points(y_true, scores)
    metrics = detection_metrics(y_true, scores)
    assert metrics["eer"] == pytest.approx(max(min(fpr, fnr) for _, fpr, fnr in points), abs=1e-12)
    # both error rates are <= EER at the EER threshold
    accept = scores >= metrics["eer_threshold"]
    assert np.mean(accept[~y_true]) <= metrics["eer"] + 1e-12
    assert np.mean(~accept[y_true]) <= metrics["eer"] + 1e-12


@pytest.mark.parametrize("seed", range(5))
def test_eer_consistent_with_pyannote(seed):
    y_true, scores = _trials(500, seed=seed, decimals=seed % 3)
    fpr, fnr, _, eer_pyannote = det_curve(y_true, scores, distances=False)
    metrics = detection_metrics(y_true, scores)
    assert metrics["eer_pyannote"] == pytest.approx(eer_pyannote, abs=1e-6)
    # same straddling operating points: the crossing lies between them
    i = np.flatnonzero(fpr > fnr)[0]
    assert min(fpr[i - 1], fnr[i]) - 1e-12 <= metrics["eer"] <= max(fpr[i], fnr[i - 1]) + 1e-12


# --- minDCF --------------------------------------------------------------------


def test_min_dcf_hand_made():
    y_true = [True, False, True, False, False]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    # (threshold, fpr, fnr) of every operating point, "accept if score >= threshold"
    points = [
        (np.inf, 0, 1),
        (0.9, 0, 1 / 2),
        (0.8, 1 / 3, 1 / 2),
        (0.7, 1 / 3, 0),
        (0.6, 2 / 3, 0),
        (0.5, 1, 0),
    ]
    # P_tar = 0.25: DCF = (.25 fnr + .75 fpr) / .25 = fnr + 3 fpr -> 1, 1/2, 3/2, 1, 2, 3
    # P_tar = 0.5:  DCF = (.5 fnr + .5 fpr) / .5  = fnr + fpr   -> 1, 1/2, 5/6, 1/3, 2/3, 1
    dcf_25 = [fnr + 3 * fpr for _, fpr, fnr in points]
    dcf_50 = [fnr + fpr for _, fpr, fnr in points]
    assert min(dcf_25) == pytest.approx(0.5) and min(dcf_50) == pytest.approx(1 / 3)

    metrics = detection_metrics(y_true, scores, p_targets=(0.25, 0.5))
    assert metrics["min_dcf_0.25"] == pytest.approx(0.5)
    assert metrics["min_dcf_threshold_0.25"] == 0.9
    assert metrics["min_dcf_0.5"] == pytest.approx(1 / 3)
    assert metrics["min_dcf_threshold_0.5"] == 0.7

    # C_miss = 10, P_tar = 0.25: norm = min(2.5, 0.75) = 0.75
    # DCF = (2.5 fnr + .75 fpr) / .75 -> 10/3, 5/3, 2, 1/3, 2/3, 1
    metrics = detection_metrics(y_true, scores, p_targets=(0.25,), c_miss=10.0)
    assert metrics["min_dcf_0.25"] == pytest.approx(1 / 3)
    assert metrics["min_dcf_threshold_0.25"] == 0.7


@pytest.mark.parametrize("seed", range(4))
def test_min_dcf_brute_force(seed):
    y_true, scores = _trials(400, separation=1.5, seed=seed, decimals=1 + seed % 2)
    metrics = detection_metrics(y_true, scores, p_targets=(0.01, 0.1, 0.5), c_fa=2.0)
    for p in (0.01, 0.1, 0.5):
        expected = _brute_force_min_dcf(y_true, scores, p, c_fa=2.0)
        assert metrics[f"min_dcf_{p:g}"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_min_dcf_at_most_one(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.random(1000) < 0.5
    scores = rng.normal(size=1000) - seed * y_true  # from random to worse than random
    metrics = detection_metrics(y_true, scores, p_targets=(0.001, 0.01, 0.05, 0.5))
    for p in (0.001, 0.01, 0.05, 0.5):
        assert 0.0 <= metrics[f"min_dcf_{p:g}"] <= 1.0


def test_min_dcf_normalized():
    # constant scores: reject all (fpr 0, fnr 1) or accept all (fpr 1, fnr 0)
    # reject all costs C_miss P_tar = min(C_miss P_tar, C_fa (1 - P_tar)): DCF 1
    metrics = detection_metrics([1, 0, 0, 1, 0], [0.0] * 5)
    assert metrics["min_dcf_0.01"] == pytest.approx(1.0)
    assert metrics["min_dcf_threshold_0.01"] == np.inf
    # inverted system: rejecting everything is optimal
    metrics = detection_metrics([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])
    assert metrics["min_dcf_0.01"] == pytest.approx(1.0)
    assert metrics["min_dcf_0.05"] == pytest.approx(1.0)


# --- bootstrap -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_fast_det_curve_matches_pyannote_on_repeated_trials(seed):
    rng = np.random.default_rng(seed)
    y_true, scores = _trials(int(rng.integers(5, 400)), seed=seed, decimals=seed % 3)
    target_trials = rng.integers(0, y_true.sum(), size=y_true.sum())
    nontarget_trials = rng.integers(0, (~y_true).sum(), size=(~y_true).sum())

    trials = SortedTrials(y_true, scores)
    fast = trials.det_curve(*trials.counts(target_trials, nontarget_trials))

    # same resample, materialised
    y_repeated = np.r_[np.ones(len(target_trials), bool), np.zeros(len(nontarget_trials), bool)]
    s_repeated = np.r_[scores[y_true][target_trials], scores[~y_true][nontarget_trials]]
    reference = det_curve(y_repeated, s_repeated, distances=False)
    for a, b in zip(fast, reference[:3]):
        np.testing.assert_array_equal(a, b)

    expected = detection_metrics(y_repeated, s_repeated)
    for key, value in _fast_metrics(y_true, scores, target_trials, nontarget_trials).items():
        assert value == expected[key]
    assert expected["eer_pyannote"] == pytest.approx(reference[3], abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_fast_point_estimate_equals_detection_metrics(seed):
    y_true, scores = _trials(2000, seed=seed, decimals=None if seed < 3 else 2)
    expected = detection_metrics(y_true, scores)
    fast = _fast_metrics(y_true, scores)
    assert set(fast) == set(expected) - {"num_target", "num_nontarget"}
    for key, value in fast.items():
        assert value == expected[key], key


def test_bootstrap_contains_point_estimate():
    y_true, scores = _trials(5000, separation=2.5, seed=1)
    metrics = detection_metrics(y_true, scores)
    intervals = bootstrap_confidence_intervals(y_true, scores, n_resamples=300)
    assert set(intervals) == {"eer", "min_dcf_0.01", "min_dcf_0.05"}
    for key, (low, high) in intervals.items():
        assert low <= metrics[key] <= high, key
        assert low < high


def test_bootstrap_width_shrinks_with_more_trials():
    widths = []
    for n in (500, 5000, 50_000):
        y_true, scores = _trials(n, separation=2.0, seed=2)
        low, high = bootstrap_confidence_intervals(y_true, scores, n_resamples=200)["eer"]
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_bootstrap_seed():
    y_true, scores = _trials(1000, seed=3)
    a = bootstrap_confidence_intervals(y_true, scores, n_resamples=100, seed=7)
    b = bootstrap_confidence_intervals(y_true, scores, n_resamples=100, seed=7)
    c = bootstrap_confidence_intervals(y_true, scores, n_resamples=100, seed=8)
    assert a == b
    assert a != c


def test_bootstrap_confidence_level():
    y_true, scores = _trials(2000, seed=4)
    narrow = bootstrap_confidence_intervals(y_true, scores, n_resamples=200, confidence=0.5)
    wide = bootstrap_confidence_intervals(y_true, scores, n_resamples=200, confidence=0.99)
    assert wide["eer"][0] <= narrow["eer"][0] <= narrow["eer"][1] <= wide["eer"][1]


# --- invalid inputs ------------------------------------------------------------


@pytest.mark.parametrize(
    "y_true, scores, message",
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], "single class"),
        ([0, 0], [0.1, 0.2], "single class"),
        ([1, 0, 1], [0.1, 0.2], "different lengths"),
        ([1, 0], [0.1, np.nan], "non-finite"),
        ([1, 0], [np.inf, 0.2], "non-finite"),
        ([], [], "empty"),
        ([1, 2], [0.1, 0.2], "0/1"),
    ],
)
@pytest.mark.parametrize("function", [detection_metrics, bootstrap_confidence_intervals])
def test_invalid_trials(function, y_true, scores, message):
    with pytest.raises(ValueError, match=message):
        function(y_true, scores)


def test_invalid_parameters():
    y_true, scores = [1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2]
    with pytest.raises(ValueError, match="p_targets"):
        detection_metrics(y_true, scores, p_targets=(0.0,))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_confidence_intervals(y_true, scores, confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_confidence_intervals(y_true, scores, n_resamples=0)


# --- scoring -------------------------------------------------------------------


def test_cosine_scores():
    from sklearn.metrics.pairwise import cosine_similarity

    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(50, 16))
    index1, index2 = rng.integers(0, 50, size=(2, 500))
    expected = cosine_similarity(embeddings)[index1, index2]
    np.testing.assert_allclose(cosine_scores(embeddings, index1, index2), expected, atol=1e-12)

    float32 = cosine_scores(embeddings.astype(np.float32), index1, index2)
    assert float32.dtype == np.float64
    np.testing.assert_allclose(float32, expected, atol=1e-5)


def test_cosine_scores_batch_size():
    rng = np.random.default_rng(1)
    embeddings = rng.normal(size=(30, 8))
    index1, index2 = rng.integers(0, 30, size=(2, 1001))
    reference = cosine_scores(embeddings, index1, index2, batch_size=10_000)
    for batch_size in (1, 7, 100, 1001):
        np.testing.assert_array_equal(
            cosine_scores(embeddings, index1, index2, batch_size=batch_size), reference
        )


def test_cosine_scores_zero_norm():
    embeddings = np.ones((5, 4))
    embeddings[[1, 3]] = 0.0
    with pytest.raises(ValueError, match=r"zero norm at row\(s\) \[1, 3\]"):
        cosine_scores(embeddings, [0, 1], [3, 2])
    # unused zero rows do not matter
    assert cosine_scores(embeddings, [0, 2], [4, 4]) == pytest.approx([1.0, 1.0])


def test_cosine_scores_invalid_indices():
    embeddings = np.ones((3, 4))
    with pytest.raises(ValueError, match="outside"):
        cosine_scores(embeddings, [0, 3], [1, 2])
    with pytest.raises(ValueError, match="different lengths"):
        cosine_scores(embeddings, [0, 1], [1])


def test_score_trials():
    embeddings = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 2.0]), "c": np.array([3.0, 3.0])}
    trials = [("a", "b", 0), ("a", "c", True), ("c", "c", 1)]
    y_true, scores = score_trials(embeddings, trials)
    np.testing.assert_array_equal(y_true, [False, True, True])
    np.testing.assert_allclose(scores, [0.0, np.sqrt(0.5), 1.0])

    with pytest.raises(KeyError, match="'d'.*trial #1"):
        score_trials(embeddings, [("a", "b", 0), ("a", "d", 1)])
    with pytest.raises(ValueError, match="zero norm"):
        score_trials({**embeddings, "z": np.zeros(2)}, [("a", "z", 0)])


# --- reports -------------------------------------------------------------------


def test_plot_det_curves(tmp_path):
    import matplotlib.image

    y_true, scores = _trials(1000, separation=2.0, seed=0)
    _, better = _trials(1000, separation=3.0, seed=0)
    curves = {"baseline": (y_true, scores), "better": (y_true, better)}
    path = plot_det_curves(curves, tmp_path / "det.png", title="DET")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert [p.name for p in tmp_path.iterdir()] == ["det.png"]


def test_plot_det_curves_invalid_leaves_previous_file(tmp_path):
    path = tmp_path / "det.png"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError, match="'broken'.*non-finite"):
        plot_det_curves({"ok": ([1, 0], [0.9, 0.1]), "broken": ([1, 0], [np.nan, 0.1])}, path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["det.png"]


def test_write_json_round_trip(tmp_path):
    y_true, scores = _trials(500, seed=0)
    results = {
        "metrics": detection_metrics(y_true, scores),
        "intervals": bootstrap_confidence_intervals(y_true, scores, n_resamples=20),
        "numpy": {"float": np.float32(0.5), "int": np.int64(3), "array": np.arange(3)},
        "infinite": np.inf,
    }
    path = write_json(tmp_path / "results.json", results)
    loaded = json.loads(path.read_text())
    assert loaded["metrics"] == pytest.approx(results["metrics"])
    assert loaded["intervals"] == {k: list(v) for k, v in results["intervals"].items()}
    assert loaded["numpy"] == {"float": 0.5, "int": 3, "array": [0, 1, 2]}
    assert loaded["infinite"] is None  # strict JSON has no Infinity


def test_write_json_failure_is_atomic(tmp_path):
    path = tmp_path / "results.json"
    with pytest.raises(TypeError):
        write_json(path, {"eer": 0.1, "model": object()})
    assert list(tmp_path.iterdir()) == []

    write_json(path, {"eer": 0.1})
    previous = path.read_text()
    with pytest.raises(TypeError):
        write_json(path, {"eer": 0.2, "padding": list(range(10_000)), "model": object()})
    assert path.read_text() == previous
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_write_table(tmp_path):
    rows = [
        make_row("baseline", {"eer": 0.0452, "min_dcf_0.01": 0.3125, "num_target": 10},
                 {"eer": (0.039, 0.051), "min_dcf_0.01": (0.28, 0.35)}),
        make_row("aam", {"eer": 0.021, "min_dcf_0.01": 0.2, "num_target": 10}),
    ]
    csv_path, md_path = write_table(rows, tmp_path / "results.csv", tmp_path / "results.md")

    with open(csv_path) as f:
        table = list(csv.reader(f))
    assert table[0] == [
        "system", "eer", "eer_low", "eer_high",
        "min_dcf_0.01", "min_dcf_0.01_low", "min_dcf_0.01_high", "num_target",
    ]
    assert table[1] == ["baseline", "0.0452", "0.039", "0.051", "0.3125", "0.28", "0.35", "10"]
    assert table[2] == ["aam", "0.021", "", "", "0.2", "", "", "10"]

    lines = md_path.read_text().splitlines()
    assert lines[0] == "| System | EER (%) | minDCF (P_tar=0.01) | # target |"
    assert lines[1] == "|:---|---:|---:|---:|"
    assert lines[2] == "| baseline | 4.52 [3.90, 5.10] | 0.3125 [0.2800, 0.3500] | 10 |"
    assert lines[3] == "| aam | 2.10 | 0.2000 | 10 |"
    assert len(lines) == 4

    # explicit columns; those of a test condition (compare --condition) are named after it
    write_table(rows, csv_path, md_path, columns=["system", "eer"])
    assert md_path.read_text().splitlines()[0] == "| System | EER (%) |"
    with open(csv_path) as f:
        assert next(csv.reader(f)) == ["system", "eer", "eer_low", "eer_high"]
    write_table(rows, csv_path, md_path, columns=["system", "eer[channel]", "eer_plda[channel]"])
    assert md_path.read_text().splitlines()[0] == "| System | EER channel (%) | EER PLDA, channel (%) |"


def test_write_table_failure_is_atomic(tmp_path):
    csv_path, md_path = tmp_path / "results.csv", tmp_path / "results.md"
    write_table([{"system": "a", "eer": 0.1}], csv_path, md_path)
    before = csv_path.read_text(), md_path.read_text()
    with pytest.raises(ValueError):  # malformed interval: nothing written
        write_table([{"system": "a", "eer": 0.2, "eer_ci": (0.1, 0.2, 0.3)}], csv_path, md_path)
    assert (csv_path.read_text(), md_path.read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.md"]
