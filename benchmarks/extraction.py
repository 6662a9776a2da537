"""Batched extraction for evaluation: files of equal length embedded together, against one by one

Embeds the same test files whole with the same model, the two ways side by side in one run:

  one by one   pyannote_embloss.inference.embedding.embed_files(..., batch_size=1): one forward pass
               per file, in the files' order (the extraction `evaluate` ran before batching);
  batched      embed_files(..., batch_size=--batch-size): files sorted by duration, those of exactly
               the same number of samples in one forward pass (never padded), the others alone
               (what `evaluate --batch-size` runs; 32 by default).

Each timing is one fresh Python process embedding every file once, as `evaluate` does (in a
process that has embedded the same lengths before, torch reuses the convolution kernels it set
up for them, and repeated timings would flatter whichever method runs second). The processes
alternate, `--repeats` times (one by one first, then batched first...); imports, model loading
and a warm-up forward pass on 2 s of zeros are not timed; audio decoding is (the header reads
too). files/s is the median over repeats, the ratio the median of the per-repeat ratios. It also
prints the number of forward passes of each, the max absolute difference between the two
methods' embeddings, and the max absolute difference of the cosine scores of every pair of
files (the acceptance: below 1e-5).

Why not pad (`--parts padding`, in this process, the first `--padding-files` test files): the
same files sorted by length and embedded in batches of 8 padded with zeros to the longest of
each, with plain statistics pooling and, when the model takes frame weights, with the padded
frames masked out of the pooling; it prints the smallest cosine between a file's padded and
one-by-one embeddings and the largest cosine score difference. Any difference beyond rounding
rules padding out: the scores must be those of one-by-one extraction to 1e-5.

The model: the checkpoint of `--experiment` (experiments/aam, the default recipe) when it has
one, else (or with `--untrained`) the untrained model of its `architecture:` section (speed does
not depend on the weights); the script says which.

Usage
-----
    python benchmarks/extraction.py                          # the 1,000 SpeechOcean762 test files, ~2 min on 2 cores
    python benchmarks/extraction.py --files 200 --repeats 1  # a subset: the first 200 test files (by uri)
    python benchmarks/extraction.py --parts padding          # padding changes the embeddings: by how much (seconds)
    python benchmarks/extraction.py --device cuda --batch-size 64
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PROTOCOL, REPOSITORY, median, set_threads, write_results
from inference import test_files

METHODS = ("one_by_one", "batched")


def load(experiment: Path, untrained: bool, device: str):
    """(model on `device`, description): the experiment's checkpoint, or its untrained architecture"""
    import torch

    from pyannote_embloss.experiment import Experiment
    from pyannote_embloss.inference.loading import load_model
    from pyannote_embloss.models import get_architecture

    checkpoint = experiment / "checkpoints" / "best.ckpt"
    if checkpoint.is_file() and not untrained:
        return load_model(checkpoint, device=device), f"trained checkpoint {checkpoint}"
    section = Experiment.load(experiment).config.architecture
    torch.manual_seed(0)
    model = get_architecture(section.name)(**section.params)
    why = "--untrained" if untrained else f"no {checkpoint}"
    return load_model(model, device=device), f"untrained {section.name} {section.params} ({why})"


def worker(config: dict) -> dict:
    """Embed `config["files"]` once with `config["method"]`, in this process: seconds, forward passes"""
    import warnings

    warnings.filterwarnings("ignore")
    import numpy as np
    import torch

    from pyannote_embloss.inference.embedding import embed_files

    set_threads(config["threads"])
    model, description = load(Path(config["experiment"]), config["untrained"], config["device"])
    with torch.inference_mode():  # threads, allocator; a length no test file has
        model(torch.zeros(1, 1, model.audio.get_num_samples(2.0) + 1, device=model.device))
    forwards: list = []
    model.register_forward_hook(lambda module, inputs, output: forwards.append(inputs[0].shape[0]))
    batch_size = 1 if config["method"] == "one_by_one" else config["batch_size"]
    start = time.perf_counter()
    embeddings = embed_files(model, config["files"], progress=False, batch_size=batch_size)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - start
    np.save(config["embeddings"], embeddings)
    return {"seconds": seconds, "forward_passes": len(forwards), "largest_batch": max(forwards), "model": description}


def cosine_scores(embeddings):
    import numpy as np

    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    return e @ e.T


def padding(model, files: list, batch: int = 8) -> dict:
    """What padding to the longest of a batch does to the embeddings of `files` (see the module docstring)"""
    import inspect

    import numpy as np
    import torch

    from pyannote_embloss.data.audio import load_audio

    waveforms = sorted((load_audio(model.audio, path).to(model.device) for path in files), key=lambda w: w.shape[-1])
    masked = "weights" in inspect.signature(model.forward).parameters and hasattr(model, "num_frames")
    outputs = {"one_by_one": [], "padded": [], "padded_masked": []}
    with torch.inference_mode():
        for waveform in waveforms:
            outputs["one_by_one"].append(model(waveform[None])[0].cpu().numpy())
        for start in range(0, len(waveforms), batch):
            group = waveforms[start : start + batch]
            longest = group[-1].shape[-1]
            padded = torch.stack([torch.nn.functional.pad(w, (0, longest - w.shape[-1])) for w in group])
            outputs["padded"].extend(model(padded).cpu().numpy())
            if masked:
                weights = torch.zeros(len(group), model.num_frames(longest), device=model.device)
                for row, w in enumerate(group):
                    weights[row, : model.num_frames(w.shape[-1])] = 1.0
                outputs["padded_masked"].extend(model(padded, weights=weights).cpu().numpy())
    reference = np.stack(outputs.pop("one_by_one"))
    results = {}
    for name, embeddings in outputs.items():
        if not embeddings:
            continue
        embeddings = np.stack(embeddings)
        cosines = [float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) for a, b in zip(embeddings, reference)]
        results[name] = {
            "min_cosine_to_one_by_one": min(cosines),
            "max_abs_score_difference": float(np.abs(cosine_scores(embeddings) - cosine_scores(reference)).max()),
        }
    return {"batch": batch, "num_files": len(files), "masked_pooling": masked, **results}


def spawn(config: dict) -> dict:
    """Run :func:`worker` in a fresh Python process"""
    process = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(config)], capture_output=True, text=True, cwd=REPOSITORY
    )
    if process.returncode != 0:
        raise RuntimeError(f"worker {config['method']} failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def speed(args, files: list, device) -> dict:
    """The two methods in turns, each in a fresh process: times, forward passes, differences"""
    import numpy as np

    seconds = {method: [] for method in METHODS}
    runs, embeddings = {}, {}
    with tempfile.TemporaryDirectory() as directory:
        for repeat in range(args.repeats):
            for method in METHODS if repeat % 2 == 0 else METHODS[::-1]:
                config = {
                    "method": method, "files": files, "experiment": str(args.experiment.resolve()),
                    "untrained": args.untrained, "device": str(device), "threads": args.threads,
                    "batch_size": args.batch_size, "embeddings": str(Path(directory) / f"{method}.npy"),
                }
                runs[method] = spawn(config)
                seconds[method].append(runs[method]["seconds"])
                embeddings[method] = np.load(config["embeddings"])
                if repeat == 0 and method == METHODS[0]:
                    print(f"model: {runs[method]['model']}, on {device}, {args.threads} torch thread(s)", flush=True)
                print(f"repeat {repeat + 1}  {method:<10}  {len(files) / seconds[method][-1]:7.1f} files/s  "
                      f"({seconds[method][-1]:.2f} s, {runs[method]['forward_passes']} forward passes, "
                      f"largest batch {runs[method]['largest_batch']})", flush=True)
    one, batched = embeddings["one_by_one"], embeddings["batched"]
    results = {
        "model": runs["one_by_one"]["model"],
        "seconds": seconds,
        "forward_passes": {method: run["forward_passes"] for method, run in runs.items()},
        "largest_batch": runs["batched"]["largest_batch"],
        "files_per_s": {method: len(files) / median(times) for method, times in seconds.items()},
        "batched_over_one_by_one": median([o / b for o, b in zip(seconds["one_by_one"], seconds["batched"])]),
        "max_abs_embedding": float(np.abs(one).max()),
        "max_abs_embedding_difference": float(np.abs(batched - one).max()),
        "max_abs_score_difference": float(np.abs(cosine_scores(batched) - cosine_scores(one)).max()),
    }
    print()
    print(f"one by one  {results['files_per_s']['one_by_one']:7.1f} files/s  "
          f"({results['forward_passes']['one_by_one']} forward passes)")
    print(f"batched     {results['files_per_s']['batched']:7.1f} files/s  "
          f"({results['forward_passes']['batched']} forward passes, batch size {args.batch_size})")
    print(f"batched / one by one: {results['batched_over_one_by_one']:.2f} (median of the per-repeat ratios)")
    print(f"max |embedding difference| {results['max_abs_embedding_difference']:.2e} (embeddings up to "
          f"{results['max_abs_embedding']:.1f}); max |cosine score difference| {results['max_abs_score_difference']:.2e} "
          f"over {len(files) * (len(files) - 1) // 2} pairs", flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=("speed", "padding"), default=["speed", "padding"])
    parser.add_argument("--experiment", type=Path, default=REPOSITORY / "experiments" / "aam")
    parser.add_argument("--untrained", action="store_true", help="the experiment's architecture, untrained")
    parser.add_argument("--protocol", default=PROTOCOL)
    parser.add_argument("--files", "--num-files", dest="num_files", type=int, default=1000,
                        help="the first N test files, by uri (1000: all of SpeechOcean762's)")
    parser.add_argument("--padding-files", type=int, default=200, help="files of the padding part (200)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu)")
    parser.add_argument("--batch-size", type=int, default=32, help="batched method's batch size (32)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timings per method (3)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/extraction.json)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.batch_size < 2:
        parser.error("--batch-size must be at least 2 (1 is the one-by-one method)")
    set_threads(args.threads)

    import warnings

    warnings.filterwarnings("ignore")
    from pyannote.audio.core.io import Audio

    from pyannote_embloss.data.audio import audio_duration, load_audio
    from pyannote_embloss.inference.embedding import check_device

    device = check_device(args.device)
    load_before = os.getloadavg()
    print(f"load average at the start: {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min)", flush=True)
    results = {"device": str(device), "threads": args.threads, "batch_size": args.batch_size}
    if "speed" in args.parts:
        files = test_files(args.protocol, args.num_files)
        audio = Audio(sample_rate=16000, mono="downmix")
        results.update(
            num_files=len(files),
            audio_seconds=sum(audio_duration(path) for path in files),
            distinct_lengths=len({load_audio(audio, path).shape[-1] for path in files}),
        )
        print(f"{len(files)} test files, {results['audio_seconds']:.0f} s of audio, {results['distinct_lengths']} "
              "distinct lengths (in samples)", flush=True)
        results.update(speed(args, files, device))
    if "padding" in args.parts:
        model, description = load(args.experiment.resolve(), args.untrained, str(device))
        results["padding"] = padding(model, test_files(args.protocol, args.padding_files))
        print(f"\npadding ({description}): {args.padding_files} test files sorted by length, batches of 8 padded "
              "to the longest, against one by one:")
        for name in ("padded", "padded_masked"):
            if name in results["padding"]:
                r = results["padding"][name]
                print(f"  {name:<14} min cosine {r['min_cosine_to_one_by_one']:.4f}, max |cosine score difference| "
                      f"{r['max_abs_score_difference']:.2e}")
    load_after = os.getloadavg()
    print(f"load average at the end: {load_after[0]:.2f} (1 min), {load_after[1]:.2f} (5 min)")
    results["load_average"] = {"start": load_before, "end": load_after}
    write_results("extraction", results, args.output)


if __name__ == "__main__":
    main()
