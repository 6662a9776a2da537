"""Facts about the machine a result comes from

Training on a CPU is deterministic for a given code, config, seed, CPU kernel set
and number of threads: the same run twice gives the same weights, to the bit. On a
CPU whose kernels differ (AVX2 against AVX-512, say), the floating-point roundings
differ, and a training run drifts to other weights and another EER. ``training.json``
and the benchmarks' JSON files therefore record these facts beside their figures.
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("torch", "pyannote.audio", "lightning", "pytorch-metric-learning", "torchcodec")


def cpu_model() -> str:
    """Model name of the first CPU in /proc/cpuinfo, else what `platform` knows"""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine() -> dict:
    """CPU, torch kernel set and threads, and versions of the packages that shape a result

    Returns
    -------
    facts : dict
        ``cpu`` (model name), ``cpu_capability`` (the kernel set torch dispatches to,
        e.g. "AVX512"; ``ATEN_CPU_CAPABILITY`` lowers it), ``logical_cpus``,
        ``torch_threads``, ``platform``, ``python`` and ``versions`` (package name → version).
    """
    import torch

    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:  # vendored or source install without metadata
            continue
    return {
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }
