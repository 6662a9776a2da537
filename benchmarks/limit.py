"""How close SincTDNN gets to the machine's limit: FLOPs, matmul peak, fraction reached

* FLOPs of one second of 16 kHz audio through SincTDNN (stride 5 and 10),
  forward and forward + backward, counted by `torch.utils.flop_counter`
  (convolutions and matrix products; element-wise operations, pooling and
  normalisation are not counted, so the fractions below are slight underestimates).
* The machine's float32 matmul peak (GFLOP/s): best of repeated 2048 x 2048
  `torch.mm`, with the same number of threads.
* The fraction of that peak reached
    - in training: forward + loss + backward + Adam step on batches of
      `--batch` 2 s chunks (compute only, no data loading),
    - in inference: forward of whole 4 s files, one at a time (as `evaluate`),
  and, when `training_throughput.json` / `inference.json` exist in
  results/benchmarks, at the end-to-end rates those benchmarks measured.

Usage
-----
    python benchmarks/limit.py                         # ~2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from _common import OUTPUT_DIR, set_threads, write_results

SAMPLE_RATE = 16000


def count_flops(model, seconds: float, backward: bool) -> int:
    """FLOPs of one (1, 1, seconds) waveform through `model`"""
    from torch.utils.flop_counter import FlopCounterMode

    waveform = torch.randn(1, 1, int(seconds * SAMPLE_RATE))
    with FlopCounterMode(display=False) as counter:
        if backward:
            model(waveform).sum().backward()
        else:
            with torch.no_grad():
                model(waveform)
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Best float32 matmul rate, in GFLOP/s"""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def training_rate(model, batch: int, seconds: float, steps: int) -> float:
    """Chunks/s of forward + AAM loss + backward + Adam step (compute only)"""
    from pyannote_embloss.losses import get_loss_class

    loss_func = get_loss_class("aam")(num_classes=125, embedding_size=model.dimension)
    optimizer = torch.optim.Adam([*model.parameters(), *loss_func.parameters()], lr=1e-3)
    x = torch.randn(batch, 1, int(seconds * SAMPLE_RATE))
    y = torch.arange(batch) % 125
    model.train()
    times = []
    for step in range(steps + 1):  # the first step is a warm-up
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_func(model(x), y).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return batch / (sum(times[1:]) / steps)


@torch.inference_mode()
def inference_rate(model, seconds: float, repeats: int) -> float:
    """Seconds of audio embedded per second, one `seconds`-long file at a time"""
    model.eval()
    x = torch.randn(1, 1, int(seconds * SAMPLE_RATE))
    model(x)
    start = time.perf_counter()
    for _ in range(repeats):
        model(x)
    return repeats * seconds / (time.perf_counter() - start)


def read_json(name: str):
    path = OUTPUT_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--batch", type=int, default=64, help="training batch, chunks of 2 s (64)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps (3)")
    parser.add_argument("--output", default=None, help="JSON path (results/benchmarks/limit.json)")
    args = parser.parse_args()
    set_threads(args.threads)
    from pyannote_embloss.models import SincTDNN

    peak = matmul_peak()
    print(f"float32 matmul peak, {args.threads} thread(s): {peak:.1f} GFLOP/s")
    training_json, inference_json = read_json("training_throughput"), read_json("inference")

    results = {"matmul_peak_gflops": peak, "threads": args.threads, "models": {}}
    for stride in (5, 10):
        torch.manual_seed(0)
        model = SincTDNN(stride=stride, dimension=512)
        forward = count_flops(model, 1.0, backward=False)
        forward_backward = count_flops(model, 1.0, backward=True)
        chunks_per_s = training_rate(model, args.batch, 2.0, args.steps)
        audio_per_s = inference_rate(model, 4.0, repeats=20)
        train_gflops = chunks_per_s * 2.0 * forward_backward / 1e9
        infer_gflops = audio_per_s * forward / 1e9
        entry = {
            "gflop_per_audio_second_forward": forward / 1e9,
            "gflop_per_audio_second_forward_backward": forward_backward / 1e9,
            "training_compute_chunks_per_s": chunks_per_s,
            "training_compute_gflops": train_gflops,
            "training_compute_fraction_of_peak": train_gflops / peak,
            "inference_audio_s_per_s": audio_per_s,
            "inference_gflops": infer_gflops,
            "inference_fraction_of_peak": infer_gflops / peak,
        }
        print(f"\nSincTDNN stride {stride}: {forward / 1e9:.2f} GFLOP per second of audio forward, "
              f"{forward_backward / 1e9:.2f} forward+backward")
        print(f"  training (compute only): {chunks_per_s:.1f} chunks/s = {train_gflops:.1f} GFLOP/s "
              f"= {100 * train_gflops / peak:.0f} % of peak")
        print(f"  inference (4 s files):   {audio_per_s:.0f} x real time = {infer_gflops:.1f} GFLOP/s "
              f"= {100 * infer_gflops / peak:.0f} % of peak")

        name = {5: "plugin_stride5", 10: "plugin_stride10"}[stride]
        if training_json is not None and training_json["settings"]["threads"] == args.threads:
            end_to_end = training_json["summary"][name]["chunks_per_s"]
            duration = training_json["settings"]["duration"]
            fraction = end_to_end * duration * forward_backward / 1e9 / peak
            entry["training_end_to_end_fraction_of_peak"] = fraction
            print(f"  training end to end (training_throughput.json, {end_to_end:.1f} chunks/s): {100 * fraction:.0f} % of peak")
        if stride == 5 and inference_json is not None:
            for row in inference_json["rows"]:
                if row["method"] == "plugin" and row["threads"] == args.threads:
                    processed = row["audio_seconds"]  # seconds of audio through the network
                    if row["window"] == "sliding":  # overlapping windows (files shorter than one: less)
                        processed = row["num_embeddings"] * inference_json["settings"]["duration"]
                    gflop = forward / 1e9 * processed / row["seconds"]
                    entry[f"inference_{row['window']}_end_to_end_fraction_of_peak"] = gflop / peak
                    print(f"  inference end to end ({row['window']}, inference.json, RTF {row['rtf']:.4f}): "
                          f"{100 * gflop / peak:.0f} % of peak")
        results["models"][f"stride{stride}"] = entry

    write_results("limit", results, args.output)


if __name__ == "__main__":
    main()
