"""Scoring speed and memory: 1,000,000 cosine trials over 10,000 files, EER and minDCF

Synthetic 512-d embeddings of 1,000 speakers (10 files each: a speaker direction
plus noise, so that the DET curve is not degenerate) and 1,000,000 random trials
(10 % target). Times (median of `--repeats`), and peak memory of one more call
traced by tracemalloc (numpy allocations included):

  * `score_trials`: from a {uri: embedding} dict and (uri1, uri2, reference)
    trials, as `pyannote-audio-emb evaluate` does;
  * `cosine_scores`: the same from row indices (the vectorised core);
  * `detection_metrics`: EER and minDCF (P_target 0.01 and 0.05), on
    pyannote.metrics' DET curve;
  * for reference, pyannote.metrics' `det_curve` alone, and a naive baseline
    that scores trials one by one with `scipy.spatial.distance.cosine`
    (measured on 20,000 trials and extrapolated).

Usage
-----
    python benchmarks/scoring.py                       # ~1 minute
    python benchmarks/scoring.py --trials 100000 --files 1000
"""

from __future__ import annotations

import argparse
import tracemalloc

import numpy as np

from _common import set_threads, timed, write_results

GOAL_SECONDS = 5.0


def synthetic(num_files: int, num_trials: int, dimension: int, seed: int = 0):
    """Embeddings, uris and trials of a synthetic verification set"""
    rng = np.random.default_rng(seed)
    files_per_speaker = 10
    num_speakers = max(1, num_files // files_per_speaker)
    speaker = np.arange(num_files) % num_speakers
    centers = rng.standard_normal((num_speakers, dimension)).astype(np.float32)
    embeddings = centers[speaker] + 4.0 * rng.standard_normal((num_files, dimension)).astype(np.float32)

    num_target = num_trials // 10
    by_speaker = np.argsort(speaker, kind="stable").reshape(num_speakers, -1)
    s = rng.integers(0, num_speakers, num_target)
    a, b = rng.integers(0, by_speaker.shape[1], (2, num_target))
    b = (a + 1 + b % (by_speaker.shape[1] - 1)) % by_speaker.shape[1]  # another file of that speaker
    target = np.stack([by_speaker[s, a], by_speaker[s, b]], axis=1)
    i1 = rng.integers(0, num_files, num_trials - num_target)
    i2 = rng.integers(0, num_files, num_trials - num_target)
    keep = speaker[i1] != speaker[i2]
    nontarget = np.stack([i1[keep], i2[keep]], axis=1)
    while len(nontarget) < num_trials - num_target:  # top up rejected same-speaker pairs
        j1, j2 = rng.integers(0, num_files, (2, num_trials))
        more = np.stack([j1, j2], axis=1)[speaker[j1] != speaker[j2]]
        nontarget = np.concatenate([nontarget, more])
    nontarget = nontarget[: num_trials - num_target]
    index = np.concatenate([target, nontarget])
    y_true = np.r_[np.ones(num_target, bool), np.zeros(len(nontarget), bool)]
    order = rng.permutation(num_trials)
    return embeddings, index[order, 0], index[order, 1], y_true[order]


def peak_traced_mb(function) -> float:
    """Peak memory (MB) allocated during one call, as traced by tracemalloc (numpy included)"""
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1_000_000, help="number of trials (1,000,000)")
    parser.add_argument("--files", type=int, default=10_000, help="number of files (10,000)")
    parser.add_argument("--dimension", type=int, default=512, help="embedding dimension (512)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per step; the median is kept (3)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/scoring.json)")
    args = parser.parse_args()
    set_threads(args.threads)

    from pyannote.metrics.binary_classification import det_curve
    from scipy.spatial.distance import cosine

    from pyannote_embloss.evaluation.metrics import detection_metrics
    from pyannote_embloss.evaluation import cosine_scores, score_trials

    embeddings, index1, index2, y_true = synthetic(args.files, args.trials, args.dimension)
    uris = [f"file{i:05d}" for i in range(args.files)]
    by_uri = dict(zip(uris, embeddings))
    trials = list(zip([uris[i] for i in index1], [uris[i] for i in index2], y_true.tolist()))

    steps = {
        "score_trials (uris)": lambda: score_trials(by_uri, trials),
        "cosine_scores (indices)": lambda: cosine_scores(embeddings, index1, index2),
    }
    scores = cosine_scores(embeddings, index1, index2)
    steps["detection_metrics (EER, minDCF)"] = lambda: detection_metrics(y_true, scores, p_targets=(0.01, 0.05))
    steps["pyannote.metrics det_curve alone"] = lambda: det_curve(y_true, scores, distances=False)

    results = {}
    for name, step in steps.items():
        results[name] = {  # timed without tracemalloc, which slows allocations down
            "seconds": float(np.median([timed(step)[0] for _ in range(args.repeats)])),
            "peak_traced_mb": peak_traced_mb(step),
        }
        print(f"{name:<36} {results[name]['seconds']:7.3f} s   peak {results[name]['peak_traced_mb']:7.1f} MB", flush=True)

    metrics = detection_metrics(y_true, scores, p_targets=(0.01, 0.05))
    naive_trials = min(20_000, args.trials)
    seconds, _ = timed(lambda: [1 - cosine(embeddings[a], embeddings[b]) for a, b in zip(index1[:naive_trials], index2[:naive_trials])])
    naive = seconds * args.trials / naive_trials
    print(f"{'naive scipy cosine per trial (extrap.)':<36} {naive:7.1f} s")

    total = results["score_trials (uris)"]["seconds"] + results["detection_metrics (EER, minDCF)"]["seconds"]
    print(f"\n{args.trials:,} trials over {args.files:,} files ({args.dimension}-d): "
          f"EER {100 * metrics['eer']:.2f} %, minDCF(0.01) {metrics['min_dcf_0.01']:.3f}")
    print(f"  score + EER + minDCF: {total:.2f} s  = {total / GOAL_SECONDS:.2f} x the 5 s goal (goal <= 1.0)")
    print(f"  speed-up over naive per-trial scipy scoring: {naive / results['score_trials (uris)']['seconds']:.0f} x")
    write_results(
        "scoring",
        {"settings": vars(args), "steps": results, "total_seconds": total,
         "ratio_to_goal": total / GOAL_SECONDS, "naive_scipy_seconds_extrapolated": naive,
         "eer": metrics["eer"], "min_dcf_0.01": metrics["min_dcf_0.01"]},
        args.output,
    )


if __name__ == "__main__":
    main()
