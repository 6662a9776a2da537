"""Embedding extraction speed and memory: the plugin's path vs pyannote.audio's Inference

Embeds the same test files with the same checkpoint through

  * plugin:   pyannote_embloss.evaluation.extraction.iter_embeddings, the path of
              `pyannote-audio-emb evaluate` and `apply`;
  * pyannote: pyannote.audio.Inference (what pyannote users, and its pipelines, call),

for whole files (one embedding per file) and sliding windows (2 s windows every
0.5 s, batches of 32), with 1 and 2 torch threads. For each window and thread
count, one fresh Python process times both methods in turn (`--repeats` times,
median kept), and one fresh process per method measures its peak resident
memory alone.

Real-time factor (RTF) = processing time / audio duration (lower is faster);
audio decoding is included on both sides.

Usage
-----
    python benchmarks/inference.py                      # ~7 minutes on 2 cores
    python benchmarks/inference.py --checkpoint experiments/aam --num-files 20 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _common import PROTOCOL, REPOSITORY, median, peak_rss_mb, set_threads, write_results

METHODS = ("plugin", "pyannote")
WINDOWS = ("whole", "sliding")


def test_files(protocol_name: str, num_files: int) -> list[str]:
    """Audio paths of the first `num_files` files of the test trials (sorted by uri)"""
    from pyannote_embloss.evaluation.verification import load_trials
    from pyannote_embloss.protocols import get_protocol

    _, audio = load_trials(get_protocol(protocol_name), "test")
    return [str(audio[uri]) for uri in sorted(audio)[:num_files]]


def worker(config: dict) -> dict:
    """Embed `config["files"]` with each of `config["methods"]` in turn, in this process

    Returns the times of each method over `config["repeats"]` alternating
    repeats, and this process' peak memory (meaningful with a single method).
    """
    import numpy as np
    import torch

    set_threads(config["threads"])
    from pyannote.audio import Inference
    from pyannote.audio.core.io import Audio

    from pyannote_embloss.audio import load_audio
    from pyannote_embloss.evaluation.extraction import iter_embeddings
    from pyannote_embloss.inference import load_model

    model = load_model(config["checkpoint"])
    files = config["files"]
    duration = sum(Audio().get_duration(path) for path in files)
    window, step = config["duration"], config["step"]

    def plugin():
        waveforms = ((path, load_audio(model.audio, path)) for path in files)
        return [e for _, e in iter_embeddings(model, waveforms, window=config["window"], duration=window, step=step)]

    if config["window"] == "whole":
        inference = Inference(model, window="whole")
    else:
        inference = Inference(model, window="sliding", duration=window, step=step, batch_size=32)

    def pyannote():
        return [inference(path) for path in files]

    embed = {"plugin": plugin, "pyannote": pyannote}
    with torch.inference_mode():
        model(torch.zeros(1, 1, model.audio.get_num_samples(window)))  # warm-up
    rss_before = peak_rss_mb()
    seconds = {method: [] for method in config["methods"]}
    num_embeddings = {}
    for _ in range(config["repeats"]):
        for method in config["methods"]:
            start = time.perf_counter()
            outputs = embed[method]()
            seconds[method].append(time.perf_counter() - start)
            num_embeddings[method] = int(sum(1 if np.ndim(o) == 1 else len(o) for o in outputs))
    return {
        "seconds": seconds,
        "audio_seconds": duration,
        "num_embeddings": num_embeddings,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_before_mb": rss_before,
    }


def spawn(config: dict) -> dict:
    """Run :func:`worker` in a fresh Python process"""
    process = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
    )
    if process.returncode != 0:
        raise RuntimeError(f"worker {config['method']}/{config['window']} failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(REPOSITORY / "experiments" / "aam"),
                        help="checkpoint or experiment directory (experiments/aam: run `bash .ci/main` first)")
    parser.add_argument("--protocol", default=PROTOCOL)
    parser.add_argument("--num-files", type=int, default=100, help="test files embedded (100)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads (1 2)")
    parser.add_argument("--duration", type=float, default=2.0, help="sliding window duration, s (2.0)")
    parser.add_argument("--step", type=float, default=0.5, help="sliding window step, s (0.5)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings per method; the median is kept (3)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/inference.json)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    from pyannote_embloss.inference import load_model

    load_model(args.checkpoint)  # clear error now if the checkpoint is missing
    files = test_files(args.protocol, args.num_files)
    settings = {"checkpoint": args.checkpoint, "files": files, "duration": args.duration, "step": args.step}
    rows, runs = [], {}
    start = time.perf_counter()
    for threads in args.threads:
        for window in WINDOWS:
            # speed: both methods alternate in one process, `--repeats` times
            timing = spawn({**settings, "methods": list(METHODS), "window": window,
                            "threads": threads, "repeats": args.repeats})
            for method in METHODS:
                # memory: each method alone in a fresh process
                memory = spawn({**settings, "methods": [method], "window": window,
                                "threads": threads, "repeats": 1})
                times = timing["seconds"][method]
                entry = {
                    "method": method,
                    "window": window,
                    "threads": threads,
                    "rtf": median(times) / timing["audio_seconds"],
                    "seconds": median(times),
                    "audio_seconds": timing["audio_seconds"],
                    "num_embeddings": timing["num_embeddings"][method],
                    "peak_rss_mb": memory["peak_rss_mb"],
                    "extraction_rss_mb": memory["peak_rss_mb"] - memory["peak_rss_before_mb"],
                }
                rows.append(entry)
                runs[f"{method}/{window}/{threads}"] = {"seconds": times, "memory_run": memory}
                repeats = ", ".join(f"{t / entry['audio_seconds']:.4f}" for t in times)
                print(f"{method:<8} {window:<7} {threads} thread(s)  RTF {entry['rtf']:.4f} "
                      f"(repeats {repeats})  peak RSS {entry['peak_rss_mb']:.0f} MB", flush=True)

    def row(method, window, threads):
        return next(r for r in rows if (r["method"], r["window"], r["threads"]) == (method, window, threads))

    ratios = {
        f"{window}_{threads}_threads": row("pyannote", window, threads)["rtf"] / row("plugin", window, threads)["rtf"]
        for threads in args.threads
        for window in WINDOWS
    }
    print(f"\n{len(files)} test files, {rows[0]['audio_seconds']:.0f} s of audio, median of {args.repeats} repeats:")
    print(f"  {'method':<9}{'window':<9}{'threads':>7}{'RTF':>9}{'x real time':>13}{'peak RSS MB':>13}{'  (+ extraction)':>16}")
    for r in rows:
        print(f"  {r['method']:<9}{r['window']:<9}{r['threads']:>7}{r['rtf']:>9.4f}{1 / r['rtf']:>13.0f}"
              f"{r['peak_rss_mb']:>13.0f}{r['extraction_rss_mb']:>16.0f}")
    for key, value in ratios.items():
        print(f"  speed-up plugin / pyannote.audio Inference, {key.replace('_', ' ')}: {value:.2f}  (goal >= 1.0)")
    print(f"  wall time {time.perf_counter() - start:.0f} s")
    write_results(
        "inference",
        {"settings": {k: v for k, v in vars(args).items() if k != "worker"},
         "num_files": len(files), "rows": rows, "ratios_pyannote_rtf_over_plugin_rtf": ratios, "runs": runs},
        args.output,
    )


if __name__ == "__main__":
    main()
