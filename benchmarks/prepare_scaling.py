"""Protocol writing and training data preparation at VoxCeleb2 scale: time and memory against N files

A synthetic VoxCeleb2-like training listing of N files (N/180 speakers, 8
videos each, durations given: no audio, no decoding) and a small VoxCeleb1-O
like test subset (40 speakers x 10 files, every target pair + as many
non-target pairs), for each N of `--sizes`:

  (a) write:  ``ProtocolWriter`` add_subset (train and test) + add_trials +
      add_protocol + write, what ``prepare voxceleb`` does once durations are
      read (building the Utterance objects is timed apart, as "synthesize");
  (b) task:   the data preparation at the start of training, on that protocol:
      constructing the "aam" task, ``task.prepare_data()`` then
      ``task.setup()``, as a training does (loading the protocol with
      pyannote.database is part of it). The protocol is made of plain lists
      (.lst, .rttm, .uem), so the task reads them once
      (:mod:`pyannote_embloss.data.protocols.lists`). Audio is never touched:
      the "annotated" UEM gives the durations and the "audio" preprocessor
      returns a dummy path.
  (c) before: (b) file by file through pyannote.database, as before the lists
      were read once (``read_protocol_lists = False``: pyannote.audio's
      ``check_protocol`` and ``prepare_data`` each load the RTTM and UEM with
      pandas), for the sizes of ``--before-sizes``: today's figure, side by side.
  (d) upstream: (c) with pyannote.audio 4.0.7's own ``Task.prepare_data``
      instead of the plugin's linear one (:mod:`pyannote_embloss.tasks.prepared_data`),
      for the sizes of ``--upstream-sizes``.

The prepared data of (b), (c) and (d) are compared, array by array: the
table says whether they are the same ("same as task").

Each (size, step) runs in a fresh Python process, which reports its wall time
and its peak resident memory (``getrusage(RUSAGE_SELF).ru_maxrss``) next to its
memory once imports are done, so that peaks are the step's own. The table
gives time(N) / time(previous N) next to N / previous N: equal ratios mean
linear growth.

Usage
-----
    python benchmarks/prepare_scaling.py                            # 10^4, 10^5, 10^6 (~25 min, ~7 GB: (c) at 10^6)
    python benchmarks/prepare_scaling.py --sizes 10000 100000       # ~5 minutes
    python benchmarks/prepare_scaling.py --sizes 100000 1000000 --upstream-sizes  # (b) and (c) at 10^5 and 10^6
    python benchmarks/prepare_scaling.py --sizes 1000000 --before-sizes   # (a) and (b) alone at 10^6 (~2 minutes)
    python benchmarks/prepare_scaling.py --sizes 100000 --profile   # where step (b)'s time goes
    python benchmarks/prepare_scaling.py --sizes 1000000 --steps write  # the writer alone
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from _common import peak_rss_mb, write_results

FILES_PER_SPEAKER = 180
VIDEOS_PER_SPEAKER = 8
TEST_SPEAKERS, TEST_FILES_PER_SPEAKER = 40, 10
PROTOCOL = "VoxCeleb.SpeakerVerification.Synthetic"
STEPS = ("write", "task", "before", "upstream")


# ---------------------------------------------------------------------------
# child processes: one step, one size


def synthetic(num_files: int):
    """Train (VoxCeleb2-like) and test (VoxCeleb1-O-like) utterances with durations, no audio"""
    from pyannote_embloss.data.protocols.writer import Utterance

    num_speakers = max(2, num_files // FILES_PER_SPEAKER)
    train = []
    for n in range(num_files):
        speaker, rank = f"id{n % num_speakers:05d}", n // num_speakers
        uri = f"vox2/{speaker}/video{rank % VIDEOS_PER_SPEAKER:05d}/{rank:05d}"
        train.append(Utterance(uri, speaker, f"/synthetic/{uri}.wav", 3.0 + (n % 97) / 10))
    test = [
        Utterance(f"vox1/id1{s:04d}/video00000/{k:05d}", f"id1{s:04d}", f"/synthetic/vox1/id1{s:04d}/{k:05d}.wav",
                  4.0 + k / 10)
        for s in range(TEST_SPEAKERS)
        for k in range(TEST_FILES_PER_SPEAKER)
    ]
    return train, test


def step_write(num_files: int, directory: Path) -> dict:
    from pyannote_embloss.data.protocols.writer import ProtocolWriter, make_trials

    start = time.perf_counter()
    train, test = synthetic(num_files)
    synthesize = time.perf_counter() - start

    start = time.perf_counter()
    writer = ProtocolWriter(directory, "VoxCeleb", "/nonexistent/{uri}.wav")
    writer.add_subset("vox2-dev", train)
    writer.add_subset("vox1-o", test)
    writer.add_trials("vox1-o", make_trials(test, seed=0))
    writer.add_protocol("SpeakerVerification", "Synthetic", train="vox2-dev", test=("vox1-o", "vox1-o"))
    writer.write()
    return {"synthesize_seconds": synthesize, "seconds": time.perf_counter() - start,
            "num_speakers": len({u.speaker for u in train}), "num_trials": len(writer.trials("vox1-o"))}


def step_task(num_files: int, directory: Path, step: str = "task") -> dict:
    from pyannote.audio.core.task import Task

    from pyannote_embloss.data.protocols import get_protocol
    from pyannote_embloss.tasks import get_task_class

    Klass = get_task_class("aam")
    if step != "task":  # file by file, as before the lists were read once
        Klass = type("FileByFile", (Klass,), {"read_protocol_lists": False})
    cache = directory / f"{step}.npz"
    cache.unlink(missing_ok=True)
    start = time.perf_counter()
    # dummy audio paths: the files are never opened ("annotated" comes from the UEM)
    protocol = get_protocol(PROTOCOL, database_yml=directory / "database.yml",
                            preprocessors={"audio": lambda file: f"/nonexistent/{file['uri']}.wav"})
    task = Klass(protocol, num_classes_per_batch=32, num_workers=0, cache=str(cache))
    construct = time.perf_counter() - start
    start = time.perf_counter()
    Task.prepare_data(task) if step == "upstream" else task.prepare_data()
    prepare_data = time.perf_counter() - start
    start = time.perf_counter()
    task.setup()
    setup = time.perf_counter() - start
    return {"construct_seconds": construct, "prepare_data_seconds": prepare_data, "setup_seconds": setup,
            "seconds": construct + prepare_data + setup, "num_classes": len(task.specifications.classes)}


def same_prepared_data(first: Path, second: Path) -> bool:
    """Whether two prepared-data caches hold the same keys, dtypes and values"""
    import numpy as np

    with np.load(first, allow_pickle=True) as a, np.load(second, allow_pickle=True) as b:
        if sorted(a.files) != sorted(b.files):
            return False
        for key in a.files:
            x, y = a[key], b[key]
            if x.dtype != y.dtype or x.shape != y.shape:
                return False
            if x.dtype == object and x.item() != y.item():
                return False
            if x.dtype != object and not np.array_equal(x, y):
                return False
    return True


def child(step: str, num_files: int, directory: Path, profile: bool) -> None:
    import pyannote_embloss.data.protocols  # noqa: F401  (imports first: their memory is not the step's)
    import pyannote_embloss.tasks  # noqa: F401

    baseline = peak_rss_mb()
    function = step_write if step == "write" else partial(step_task, step=step)
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(function, num_files, directory)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
    else:
        result = function(num_files, directory)
    result.update(peak_rss_mb=peak_rss_mb(), baseline_rss_mb=baseline)
    print(json.dumps(result))


# ---------------------------------------------------------------------------
# parent process


def run_child(step: str, num_files: int, directory: Path, profile: bool) -> dict:
    command = [sys.executable, __file__, "--child", step, "--size", str(num_files), "--directory", str(directory)]
    result = subprocess.run(command + (["--profile"] if profile else []), capture_output=True, text=True)
    if profile:
        print(result.stderr, file=sys.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{step} with {num_files:,} files failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def ratio_table(sizes, results) -> list:
    rows = []
    print(f"\n{'step':<8} {'files':>10} {'speakers':>9} {'seconds':>9} {'x prev':>7} {'N x prev':>9} "
          f"{'peak MB':>8} {'step MB':>8} {'same as task':>12}")
    for step in STEPS:
        previous = None
        for size in sizes:
            r = results[step].get(str(size))
            if r is None:
                continue
            time_ratio = r["seconds"] / previous[1]["seconds"] if previous else None
            size_ratio = size / previous[0] if previous else None
            r["time_ratio_to_previous"], r["size_ratio_to_previous"] = time_ratio, size_ratio
            step_mb = r["peak_rss_mb"] - r["baseline_rss_mb"]
            print(f"{step:<8} {size:>10,} {max(2, size // FILES_PER_SPEAKER):>9,} {r['seconds']:>9.2f} "
                  f"{'' if time_ratio is None else f'{time_ratio:.1f}':>7} "
                  f"{'' if size_ratio is None else f'{size_ratio:.0f}':>9} {r['peak_rss_mb']:>8.0f} {step_mb:>8.0f} "
                  f"{str(r.get('same_as_task', '')):>12}")
            previous = (size, r)
            rows.append({"step": step, "files": size, **r})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000],
                        help="numbers of training files (10000 100000 1000000)")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS),
                        help="steps to run (write task before upstream)")
    parser.add_argument("--before-sizes", type=int, nargs="*", default=None,
                        help="sizes at which the file-by-file preparation is also timed (every size)")
    parser.add_argument("--upstream-sizes", type=int, nargs="*", default=[10_000, 100_000],
                        help="sizes at which pyannote.audio's own prepare_data is also timed (10000 100000)")
    parser.add_argument("--profile", action="store_true", help="print cProfile statistics of each step (slower)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/prepare_scaling.json)")
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--directory", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.size, args.directory, args.profile)

    sizes = sorted(set(args.sizes))
    step_sizes = {"before": sizes if args.before_sizes is None else args.before_sizes, "upstream": args.upstream_sizes}
    results = {step: {} for step in STEPS}
    start = time.perf_counter()
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix=f"prepare_scaling_{size}_") as directory:
            for step in STEPS:
                if step not in args.steps or size not in step_sizes.get(step, [size]):
                    continue
                results[step][str(size)] = r = run_child(step, size, Path(directory), args.profile)
                print(f"{step:<8} {size:>10,} files: {r['seconds']:8.2f} s, peak {r['peak_rss_mb']:7.0f} MB "
                      f"({r['peak_rss_mb'] - r['baseline_rss_mb']:.0f} MB above imports)", flush=True)
            reference = Path(directory) / "task.npz"
            for step in ("before", "upstream"):
                cache = Path(directory) / f"{step}.npz"
                if reference.is_file() and cache.is_file():
                    results[step][str(size)]["same_as_task"] = same_prepared_data(reference, cache)
    rows = ratio_table(sizes, results)
    if args.profile:
        print("\n(--profile: timings include the profiler's overhead; no JSON written)")
        return
    write_results(
        "prepare_scaling",
        {"settings": {"sizes": sizes, "files_per_speaker": FILES_PER_SPEAKER,
                      "test_files": TEST_SPEAKERS * TEST_FILES_PER_SPEAKER, "before_sizes": step_sizes["before"],
                      "upstream_sizes": args.upstream_sizes},
         "steps": results, "rows": rows, "wall_seconds": time.perf_counter() - start},
        args.output,
    )


if __name__ == "__main__":
    main()
