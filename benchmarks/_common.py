"""Shared helpers of the benchmark scripts: machine facts, threads, JSON output"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")  # never phone home

REPOSITORY = Path(__file__).resolve().parents[1]
OUTPUT_DIR = REPOSITORY / "results" / "benchmarks"
PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"


def machine() -> dict:
    """Facts about the machine and software versions the figures come from"""
    import numpy

    from pyannote_embloss.training.machine import describe_machine

    facts = describe_machine()
    facts["versions"]["numpy"] = numpy.__version__
    facts["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    facts["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    return facts


def set_threads(threads: int) -> None:
    """Use `threads` intra-op threads in torch (and numpy's BLAS where it allows)"""
    import torch

    if threads < 1:
        raise ValueError(f"--threads must be at least 1 (got {threads}).")
    torch.set_num_threads(threads)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB"""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function: Callable, *args, **kwargs) -> tuple[float, object]:
    """Wall-clock seconds taken by `function(*args, **kwargs)`, and its result"""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def write_results(name: str, results: dict, output: Path | None = None) -> Path:
    """Write `results` (plus machine facts) atomically to results/benchmarks/<name>.json"""
    from pyannote_embloss.io import atomic_write_text

    path = Path(output) if output is not None else OUTPUT_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"benchmark": name, "machine": machine(), **results}, indent=2) + "\n")
    print(f"\nwrote {path}")
    return path


def median(values) -> float:
    import numpy as np

    return float(np.median(np.asarray(values, dtype=float)))


def matmul_peak_gflops(size: int = 2048, seconds: float = 2.0, blocks: int = 5) -> float:
    """The machine's float32 matmul peak, in GFLOP/s, with torch's current thread count

    Times ``size`` x ``size`` float32 ``torch.matmul`` after a warm-up, in
    `blocks` blocks of about `seconds` / `blocks` each, and keeps the fastest
    block (2 size³ FLOPs per product): the figure that achieved GFLOP/s are
    compared with.
    """
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    start = time.perf_counter()
    for _ in range(2):  # warm-up (thread pool, caches); also sizes a block
        torch.matmul(a, b, out=out)
    per_product = (time.perf_counter() - start) / 2
    products = max(1, round(seconds / blocks / per_product))
    best = float("inf")
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(products):
            torch.matmul(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / products)
    return 2 * size**3 / best / 1e9
