"""A second evaluation against the first: what the embedding cache saves

For `--repeats` rounds, in a copy of the experiment (its config.yml and checkpoints, nothing
else: the experiment's own results and cache are left alone), with the cache emptied and the
memo of config.yml's checks removed first:

  first    ``pyannote-audio-emb evaluate COPY --no-progress``: config.yml checked in full, the
           model loaded, every trial, development, cohort and PLDA file embedded, then stored in
           COPY/embeddings;
  second   the same command again: config.yml read with its memo (COPY/.config-checked.json),
           every embedding read from the cache, so no model loaded.

Each is a fresh process, timed from outside (wall clock, imports included, as a user waits for
it). The script prints both times, their ratio (median over rounds) and whether the two results
JSON are identical once the "cache" field (what each run read and wrote) is set aside; it exits
1 when they are not.

Usage
-----
    python benchmarks/second_evaluate.py                                # experiments/aam, 2 rounds
    python benchmarks/second_evaluate.py --experiment experiments/am --repeats 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPOSITORY, write_results


def evaluate(copy: Path) -> float:
    """Wall-clock seconds of one `evaluate` of `copy`, in a fresh process"""
    command = [sys.executable, "-m", "pyannote_embloss.cli", "evaluate", str(copy), "--no-progress"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"evaluate failed:\n{result.stderr[-3000:]}")
    return elapsed


def results_of(copy: Path) -> dict:
    (path,) = (copy / "results").glob("*.test.json")
    results = json.loads(path.read_text())
    results.pop("cache", None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", type=Path, default=REPOSITORY / "experiments" / "aam")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="JSON to write (default results/benchmarks/).")
    args = parser.parse_args()
    if not (args.experiment / "checkpoints").is_dir():
        sys.exit(f"{args.experiment} is not trained: train it first (bash .ci/main trains experiments/aam).")

    rounds = []
    with tempfile.TemporaryDirectory() as temporary:
        copy = Path(temporary) / args.experiment.name
        copy.mkdir()
        shutil.copy(args.experiment / "config.yml", copy / "config.yml")
        shutil.copytree(args.experiment / "checkpoints", copy / "checkpoints")
        for r in range(args.repeats):
            shutil.rmtree(copy / "embeddings", ignore_errors=True)
            (copy / ".config-checked.json").unlink(missing_ok=True)
            first = evaluate(copy)
            first_results = results_of(copy)
            second = evaluate(copy)
            identical = results_of(copy) == first_results
            rounds.append({"first_s": round(first, 2), "second_s": round(second, 2),
                           "ratio": round(second / first, 3), "identical": identical})
            print(f"round {r + 1}: first {first:.1f} s, second {second:.1f} s, ratio {second / first:.3f}, "
                  f"results {'identical' if identical else 'DIFFERENT'}", flush=True)
    ratio = statistics.median(r["ratio"] for r in rounds)
    identical = all(r["identical"] for r in rounds)
    print(f"second / first (median of {len(rounds)}): {ratio:.3f}; results identical: {identical}")
    path = write_results("second_evaluate", {"experiment": str(args.experiment), "rounds": rounds,
                                             "ratio": ratio, "identical": identical}, args.output)
    print(f"results: {path}")
    sys.exit(0 if identical else 1)


if __name__ == "__main__":
    main()
