"""Embedding extraction speed and memory: the plugin's path vs pyannote.audio's Inference

Embeds the same test files with the same checkpoint through

  * plugin:   pyannote_embloss.inference.embedding.iter_embeddings, the path of
              `pyannote-audio-emb evaluate` and `apply`;
  * pyannote: pyannote.audio.Inference (what pyannote users, and its pipelines, call),

for whole files (one embedding per file) and sliding windows (2 s windows every
0.5 s, batches of 32), with 1 and 2 torch threads. For each window and thread
count, one fresh Python process times both methods in turn (`--repeats` times,
median kept), and one fresh process per method measures its peak resident
memory alone.

Real-time factor (RTF) = processing time / audio duration (lower is faster);
audio decoding is included on both sides.

Then, for long files (`--long-minutes`, default 1, 10 and 60 minutes, made by
concatenating test utterances), it measures the peak resident memory of
`pyannote-audio-emb apply` (whole file, and sliding windows), each in a fresh
process, next to pyannote.audio's `Inference(window="whole")` on the same file:
the plugin reads long files 60 s at a time, so its peak should not grow with
the file's length.

Usage
-----
    python benchmarks/inference.py                      # ~10 minutes on 2 cores
    python benchmarks/inference.py --checkpoint experiments/aam --num-files 20 --repeats 1 --long-minutes 1 10
    python benchmarks/inference.py --parts long                     # peak memory on 1, 10, 60-minute files only
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
    from pyannote_embloss.evaluation import Trials
    from pyannote_embloss.data.protocols import get_protocol

    trials = Trials.from_protocol(get_protocol(protocol_name), "test")
    audio = dict(zip(trials.uris, trials.paths))
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

    from pyannote_embloss.data.audio import load_audio
    from pyannote_embloss.inference.embedding import Window, iter_embeddings
    from pyannote_embloss.inference.pretrained import load_model

    model = load_model(config["checkpoint"])
    files = config["files"]
    duration = sum(Audio().get_duration(path) for path in files)
    window, step = config["duration"], config["step"]

    plugin_window = Window("whole") if config["window"] == "whole" else Window("sliding", window, step)

    def plugin():
        waveforms = ((path, load_audio(model.audio, path)) for path in files)
        return [e for _, e in iter_embeddings(model, waveforms, window=plugin_window)]

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


def long_file(files: list[str], minutes: float, directory: Path) -> Path:
    """A WAV file of `minutes` minutes: the test utterances, concatenated (and repeated)"""
    import numpy as np
    import scipy.io.wavfile
    from pyannote.audio.core.io import Audio

    from pyannote_embloss.data.audio import load_audio

    path = directory / f"long-{minutes:g}min.wav"
    if path.is_file():
        return path
    audio = Audio(sample_rate=16000, mono="downmix")
    speech = np.concatenate([load_audio(audio, f)[0].numpy() for f in files])
    samples = int(minutes * 60 * 16000)
    signal = np.tile(speech, -(-samples // len(speech)))[:samples]
    directory.mkdir(parents=True, exist_ok=True)
    scipy.io.wavfile.write(path, 16000, (signal * 32767).astype(np.int16))
    return path


def long_worker(config: dict) -> dict:
    """Embed one long file, with the plugin's `apply` or pyannote's Inference, in this process: peak memory"""
    import tempfile

    set_threads(config["threads"])
    from pyannote.audio import Inference

    from pyannote_embloss.inference.apply import apply
    from pyannote_embloss.inference.embedding import Window
    from pyannote_embloss.inference.pretrained import load_model

    model = load_model(config["checkpoint"])
    before = peak_rss_mb()
    start = time.perf_counter()
    if config["method"] == "pyannote":
        Inference(model, window="whole")(config["path"])
    else:
        with tempfile.TemporaryDirectory() as output:
            window = Window(config["window"]) if config["window"] == "whole" else Window("sliding", 2.0, 0.5)
            apply(model, [("long", config["path"])], output, window=window, progress=False)
    return {"peak_rss_mb": peak_rss_mb(), "peak_rss_before_mb": before, "seconds": time.perf_counter() - start}


def spawn(config: dict) -> dict:
    """Run :func:`worker` in a fresh Python process"""
    process = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
    )
    if process.returncode != 0:
        raise RuntimeError(f"worker {config.get('methods', config.get('method'))}/{config['window']} failed:\n"
                           f"{process.stderr[-3000:]}")
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
    parser.add_argument("--long-minutes", type=float, nargs="*", default=[1, 10, 60],
                        help="durations of the long files whose peak memory is measured (1 10 60)")
    parser.add_argument("--parts", nargs="+", choices=("speed", "long"), default=["speed", "long"],
                        help="speed against pyannote.audio's Inference, peak memory on long files (both)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/inference.json)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        config = json.loads(args.worker)
        print(json.dumps(long_worker(config) if "path" in config else worker(config)))
        return

    from pyannote_embloss.inference.pretrained import load_model

    load_model(args.checkpoint)  # clear error now if the checkpoint is missing
    files = test_files(args.protocol, args.num_files)
    settings = {"checkpoint": args.checkpoint, "files": files, "duration": args.duration, "step": args.step}
    rows, runs = [], {}
    start = time.perf_counter()
    ratios = {}
    if "speed" in args.parts:
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

    long_rows = []
    for minutes in args.long_minutes if "long" in args.parts else []:
        path = long_file(files, minutes, REPOSITORY / "results" / "benchmarks" / "long-files")
        for method, window in (("plugin", "whole"), ("plugin", "sliding"), ("pyannote", "whole")):
            try:
                result = spawn({"checkpoint": args.checkpoint, "path": str(path), "method": method,
                                "window": window, "threads": max(args.threads)})
            except RuntimeError as error:  # e.g. out of memory
                result = {"peak_rss_mb": None, "error": str(error)[-300:]}
            long_rows.append({"minutes": minutes, "method": method, "window": window, **result})
            peak = "failed" if result["peak_rss_mb"] is None else f"{result['peak_rss_mb']:.0f} MB"
            seconds = "" if result["peak_rss_mb"] is None else f", {result['seconds']:.0f} s"
            print(f"  {minutes:g}-minute file, {method} {window}: peak RSS {peak}{seconds}", flush=True)
    print(f"  wall time {time.perf_counter() - start:.0f} s")
    write_results(
        "inference",
        {"settings": {k: v for k, v in vars(args).items() if k != "worker"},
         "num_files": len(files), "rows": rows, "ratios_pyannote_rtf_over_plugin_rtf": ratios, "runs": runs,
         "long_files": long_rows},
        args.output,
    )


if __name__ == "__main__":
    main()
