"""Multi-process training through Lightning (DDP on CPU, gloo): distinct batches, gathered validation, one writer"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parent / "scripts" / "train_recording_batches.py"

CONFIG = """\
protocol: SpeechOcean762.SpeakerVerification.Default
seed: 0
task:
  name: aam
  params: {duration: 1.0, num_classes_per_batch: 8, batches_per_epoch: 3, num_workers: 1, margin: 0.2, scale: 30.0}
architecture:
  name: SincTDNN
  params: {frontend: fbank, n_mels: 40, channels: [32, 32, 32, 32, 64], dimension: 32}
optimizer:
  name: AdamW
  params: {lr: 0.003}
scheduler:
  name: OneCycleLR
trainer:
  max_epochs: 2
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0", **(env or {})},
    )


def test_ddp_two_processes(speechocean762_yml, tmp_path):
    experiment = tmp_path / "ddp"
    experiment.mkdir()
    (experiment / "config.yml").write_text(CONFIG)
    record = tmp_path / "batches"
    result = run(SCRIPT, experiment, speechocean762_yml, record, "accelerator=cpu", "devices=2", "strategy=ddp",
                 env={"MASTER_PORT": str(free_port())})
    assert result.returncode == 0, result.stderr[-4000:]

    ranks = [json.loads((record / f"batches.rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 6  # 2 epochs x 3 steps, on each rank
    # each rank draws its own chunks (and speakers)
    for first, second in zip(ranks[0]["batches"], ranks[1]["batches"]):
        assert first["sum"] != second["sum"] and first["labels"] != second["labels"]
    # reproducible: a second run draws the same batches
    again = tmp_path / "again"
    result = run(SCRIPT, experiment, speechocean762_yml, again, "accelerator=cpu", "devices=2", "strategy=ddp",
                 env={"MASTER_PORT": str(free_port())})
    assert result.returncode == 0, result.stderr[-4000:]
    assert json.loads((again / "batches.rank1.json").read_text()) == ranks[1]

    # rank 0 alone writes: one training.json, one set of checkpoints; global steps over both ranks
    summary = json.loads((experiment / "training.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6 and summary["effective_batch_size"] == 16
    assert sorted(p.name for p in (experiment / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    # the development EER of training (gathered from both ranks) is the single-process one of best.ckpt
    result = run_cli("evaluate", experiment, "--subset", "development", "--database", speechocean762_yml,
                     "--no-progress", "--no-norm")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((experiment / "results" / "SpeechOcean762.SpeakerVerification.Default.development.json").read_text())
    assert results["num_files"] == 250
    assert summary["dev_eer"] == pytest.approx(results["eer"], abs=1e-6)


def test_two_nodes_of_one_process_each(speechocean762_yml, tmp_path):
    experiment = tmp_path / "nodes"
    experiment.mkdir()
    (experiment / "config.yml").write_text(CONFIG)
    port = str(free_port())
    processes = []
    for node in (0, 1):
        env = {**os.environ, "PYANNOTE_METRICS_ENABLED": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "NODE_RANK": str(node), "WORLD_SIZE": "2", "LOCAL_RANK": "0"}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "pyannote_embloss.cli", "train", str(experiment), "--database",
             str(speechocean762_yml), "--no-progress", "--accelerator", "cpu", "--devices", "1",
             "--num-nodes", "2", "--strategy", "ddp"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        ))
    outputs = [p.communicate(timeout=900) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-4000:]
    summary = json.loads((experiment / "training.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert (experiment / "checkpoints" / "best.ckpt").is_file()
