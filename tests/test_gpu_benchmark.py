"""benchmarks/gpu.py works before it meets a GPU: `--device cpu --tiny` runs every part (issue 33)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.mark.slow  # 8 short trainings and 2 extractions, about 90 s on 2 cores
def test_gpu_benchmark_runs_on_the_cpu(tmp_path):
    output = tmp_path / "gpu.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--output", str(output)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["device"] == "cpu" and results["settings"]["tiny"]
    assert results["machine"]["versions"]["torch"]

    # every network x task x precision trained, on the same batches
    assert sorted(results["training"]) == sorted(
        f"{n}/{t}/{p}" for n in ("SincTDNN", "WeSpeakerResNet34") for t in ("pyannote", "plugin")
        for p in ("32-true", "bf16-mixed")
    )
    for run_ in results["training"].values():
        assert run_["chunks_per_s"] > 0 and run_["peak_device_mb"] is None  # no device memory on the CPU
    assert len(results["ratios"]) == 10 and all(value > 0 for value in results["ratios"].values())
    for key in ("plugin / pyannote, bf16-mixed", "bf16-mixed / 32-true, plugin", "extraction, plugin / Inference"):
        assert f"SincTDNN: {key}" in results["ratios"] and f"WeSpeakerResNet34: {key}" in results["ratios"]

    # both extraction paths embed the same files with the same model: the same embeddings
    for extraction in results["extraction"].values():
        assert extraction["plugin_files_per_s"] > 0 and extraction["pyannote_files_per_s"] > 0
        assert extraction["min_cosine_plugin_vs_pyannote"] > 0.999
    assert "chunks/s" in run.stdout and "plugin / Inference" in run.stdout
