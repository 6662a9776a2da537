"""The 3-seed ablation table of docs/results.md: each step against the step it adds to

    python docs/scripts/ablation_steps.py [SEEDS]

Reads the evaluations that ``compare experiments/ablation/* experiments/aam
--seeds 3 --condition duration:1 --condition babble:15`` cached in each run's
``results/`` (seed 0 in ``EXP/``, the others in ``EXP/seeds/<seed>/``), and
prints a Markdown table: per-seed test EER, mean ± std over the seeds, and
the gap to the step before (the mean over seeds of the EER difference on the
same resampled trials) with its paired bootstrap 95 % interval over the
trials, the seeds fixed (:func:`pyannote_embloss.evaluation.metrics.paired_bootstrap_eer_difference`,
which ``compare`` uses for its gap to the best row), clean, at 1 s and under
babble at 15 dB; for clean trials also Welch's 95 % interval over the seeds,
the trials fixed. A run resumed from its last.ckpt after an interruption
shows its training time after the resumption only; a large-margin stage's
time follows the main run's (``+``). Rows 1 to 6 and aam add
one ingredient each to the row before; rows 7 to 9 each add one to aam; the
last row compares aam with row 1 (the whole chain).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

# (step, the step it adds to)
STEPS = [
    ("ablation/1-constant-lr", None),
    ("ablation/2-one-cycle", "ablation/1-constant-lr"),
    ("ablation/3-margin-schedule", "ablation/2-one-cycle"),
    ("ablation/4-babble", "ablation/3-margin-schedule"),
    ("ablation/5-reverb", "ablation/4-babble"),
    ("ablation/6-speed", "ablation/5-reverb"),
    ("aam", "ablation/6-speed"),
    ("ablation/7-subcenter", "aam"),
    ("ablation/8-average", "aam"),
    ("ablation/9-large-margin", "aam"),
    ("aam", "ablation/1-constant-lr"),
]
WHOLE_CHAIN = len(STEPS) - 1  # the last row: aam against row 1
CONDITIONS = [None, "duration:1", "babble:15"]


def runs(step: str, seeds: int) -> list:
    """Cached test evaluations of `step`'s seed runs (:func:`pyannote_embloss.training.comparison.cached_results`)"""
    from pyannote_embloss.training.comparison import cached_results, seed_experiments
    from pyannote_embloss.experiment import Experiment

    experiment = Experiment.load(Path("experiments") / step)
    loaded = []
    for run in seed_experiments(experiment, seeds):
        results = cached_results(run, experiment.protocol_name())
        if results is None:
            sys.exit(f"{run.directory} has no cached test evaluation: run the `compare ... --seeds {seeds}` of "
                     "this script's docstring first.")
        loaded.append({
            "y_true": results["y_true"],
            "scores": {None: results["scores"]["cosine"], **{c: results["condition_scores"][c] for c in CONDITIONS[1:]}},
            "eer": {None: results["eer"], **{c: results["conditions"][c]["eer"] for c in CONDITIONS[1:]}},
            "plda": results["normalized"]["plda"]["eer"],
            "training_time_s": results["training"]["training_time_s"],
            "resumed_from_steps": results["training"].get("resumed_from_steps") or [],
            "large_margin_s": (results["training"].get("large_margin") or {}).get("training_time_s"),
        })
    return loaded


def training_time(run: dict) -> str:
    """Training time of a run; a resumed run's counts only the part after its last resumption"""
    resumed = run["resumed_from_steps"]
    text = f"{run['training_time_s']:.0f}" + (f" (from step {resumed[-1]})" if resumed else "")
    return text + (f" + {run['large_margin_s']:.0f}" if run["large_margin_s"] is not None else "")


def signed(x: float) -> str:
    """A difference of EERs in points, signed, with a typographic minus"""
    return f"{100 * x:+.2f}".replace("-", "\u2212")


def seed_interval(mine: list, theirs: list) -> str:
    """Welch's 95 % interval of the difference of the seed means of the clean test EER (seeds only)"""
    from scipy import stats

    a = np.array([r["eer"][None] for r in mine])
    b = np.array([r["eer"][None] for r in theirs])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.975, dof) * np.sqrt(va + vb)
    difference = a.mean() - b.mean()
    return f"[{signed(difference - half)}, {signed(difference + half)}]"


def main(argv=None):
    from pyannote_embloss.evaluation.metrics import paired_bootstrap_eer_difference

    argv = sys.argv[1:] if argv is None else argv
    seeds = int(argv[0]) if argv else 3
    if seeds < 2:
        sys.exit(f"SEEDS is {seeds}: the spreads and the intervals over seeds need at least 2.")
    results = {step: runs(step, seeds) for step, _ in STEPS}
    pct = lambda x: f"{100 * x:.2f}"
    spread = lambda values: f"{pct(np.mean(values))} ± {pct(np.std(values, ddof=1))}"
    print("| step | adds to | seeds 0, 1, 2: test EER (%) | test EER (%) | gap to the step before [95 % CI over trials] | same gap, 95 % CI over seeds "
          "| `duration:1` (%), gap | `babble:15` (%), gap | PLDA (%) | training (s), per seed |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for index, (step, before) in enumerate(STEPS):
        mine = results[step]
        theirs = results[before] if before else []
        y_true = mine[0]["y_true"]
        if any(not np.array_equal(r["y_true"], y_true) for r in mine + theirs):
            sys.exit(f"{step} and {before} were not evaluated on the same trials.")
        cells = []
        for condition in CONDITIONS:
            eers = [r["eer"][condition] for r in mine]
            cell = spread(eers) if condition is not None else None
            if before is None:
                gap = ""
            else:
                difference, (low, high) = paired_bootstrap_eer_difference(
                    y_true, [r["scores"][condition] for r in mine], [r["scores"][condition] for r in theirs]
                )
                star = " *" if low > 0 or high < 0 else ""
                gap = f"{signed(difference)} [{signed(low)}, {signed(high)}]{star}"
            cells.append(gap if condition is None else f"{cell} ({gap})" if gap else cell)
        seeds_gap = seed_interval(mine, theirs) if before else ""
        print(
            f"| {step.split('/')[-1]}{', the whole chain' if index == WHOLE_CHAIN else ''} | {(before or '').split('/')[-1]} | {', '.join(pct(r['eer'][None]) for r in mine)} "
            f"| {spread([r['eer'][None] for r in mine])} | {cells[0]} | {seeds_gap} | {cells[1]} | {cells[2]} "
            f"| {spread([r['plda'] for r in mine])} | {', '.join(map(training_time, mine))} |"
        )


if __name__ == "__main__":
    main()
