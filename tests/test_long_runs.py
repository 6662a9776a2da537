"""Long runs survive faults: kill -9, SIGTERM, exact resume, divergence, undecodable training files

Every training here runs `pyannote-audio-emb train` in a subprocess, as a user would.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import run_cli

pytestmark = pytest.mark.slow

#: small but complete recipe: fbank SincTDNN, augmentation, one-cycle schedule, margin schedule
CONFIG = """\
protocol: SpeechOcean762.SpeakerVerification.Default
seed: 0
task:
  name: aam
  params: {{duration: 1.0, num_classes_per_batch: 8, batches_per_epoch: {batches}, num_workers: 1,
            margin: 0.2, scale: 30.0, max_bad_files: {max_bad}}}
architecture:
  name: SincTDNN
  params: {{frontend: fbank, n_mels: 40, channels: [32, 32, 32, 32, 64], dimension: 32}}
optimizer:
  name: AdamW
  params: {{lr: {lr}, weight_decay: 0.00002}}
scheduler:
  name: OneCycleLR
  params: {{pct_start: 0.25}}
margin_scheduler: {{initial: 0.0, start_step: 2, end_step: 10}}
augmentation:
  speed: [0.9, 1.0, 1.1]
  probability: 0.5
  transforms: [{{name: babble}}, {{name: reverb, num: 5}}]
trainer:
  max_epochs: {epochs}
{extra}"""


def experiment(directory: Path, batches=4, epochs=4, lr=0.003, max_bad=0.001, extra="") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yml").write_text(
        CONFIG.format(batches=batches, epochs=epochs, lr=lr, max_bad=max_bad, extra=extra)
    )
    return directory


def start(directory: Path, database: Path, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pyannote_embloss.cli", "train", str(directory), "--database", str(database),
         "--no-progress", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"},
    )


def checkpoint_progress(path: Path):
    """(epoch, global_step) of a checkpoint, None while it does not exist or is being written"""
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:
        return None
    return data["epoch"], data["global_step"]


def wait_for(predicate, process: subprocess.Popen, timeout: float = 600.0):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = predicate()
        if value:
            return value
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.stderr.read()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError("timed out")


def state_dict(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_resume_after_kill_at_epoch_boundary_gives_the_same_weights(speechocean762_yml, tmp_path):
    uninterrupted = experiment(tmp_path / "uninterrupted")
    result = run_cli("train", uninterrupted, "--database", speechocean762_yml, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]

    interrupted = experiment(tmp_path / "interrupted")
    process = start(interrupted, speechocean762_yml)
    last = interrupted / "checkpoints" / "last.ckpt"
    # kill -9 once the end-of-epoch-2 checkpoint is written (during epoch 3)
    wait_for(lambda: (checkpoint_progress(last) or (0, 0))[1] == 8, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint_progress(last) == (1, 8)

    result = run_cli("train", interrupted, "--database", speechocean762_yml, "--no-progress", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((interrupted / "training.json").read_text())
    reference = json.loads((uninterrupted / "training.json").read_text())
    assert summary["resumed"] is True and summary["resumed_from_steps"] == [8]
    assert (summary["epochs"], summary["steps"]) == (reference["epochs"], reference["steps"]) == (4, 16)
    # the machine of each part travels in the checkpoints: the killed part, then the resumed one
    assert [part["from_step"] for part in reference["machines"]] == [0]
    assert [part["from_step"] for part in summary["machines"]] == [0, 8]
    assert all(part["cpu_capability"] == torch.backends.cpu.get_cpu_capability() for part in summary["machines"])
    # same sampler draws, augmentation, learning-rate and margin schedules: the very same weights
    expected = state_dict(uninterrupted / "checkpoints" / "last.ckpt")
    actual = state_dict(last)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert summary["dev_eer"] == pytest.approx(reference["dev_eer"], abs=1e-6)


def test_kill_in_the_middle_of_an_epoch_then_resume(speechocean762_yml, tmp_path):
    directory = experiment(tmp_path / "exp", batches=10, epochs=3, extra="checkpoint: {every_n_steps: 2}\n")
    process = start(directory, speechocean762_yml)
    last = directory / "checkpoints" / "last.ckpt"

    def inside_epoch_2():  # steps 11 to 20; checkpoints every 2 steps
        progress = checkpoint_progress(last)
        return progress if progress is not None and progress[1] >= 12 else None

    wait_for(inside_epoch_2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    epoch, step = checkpoint_progress(last)
    assert epoch == 1 and 12 <= step < 20 and step % 2 == 0  # a mid-epoch checkpoint (8 steps before the boundary)

    result = run_cli("train", directory, "--database", speechocean762_yml, "--no-progress", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((directory / "training.json").read_text())
    assert summary["resumed"] is True and summary["resumed_from_steps"] == [step]
    assert summary["epochs"] == 3 and summary["steps"] == 30
    assert (directory / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sigterm_saves_a_checkpoint_and_resume_finishes(speechocean762_yml, tmp_path):
    directory = experiment(tmp_path / "exp", batches=6, epochs=2)
    process = start(directory, speechocean762_yml)
    metrics = directory / "logs"

    def training_started():
        return any("loss/train_step" in p.read_text() for p in metrics.glob("version_*/metrics.csv"))

    wait_for(training_started, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 3, stderr[-3000:]
    assert "Training interrupted (SIGTERM)" in stderr and "--resume" in stderr
    epoch, step = checkpoint_progress(directory / "checkpoints" / "last.ckpt")
    assert 0 < step < 12
    result = run_cli("train", directory, "--database", speechocean762_yml, "--no-progress", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((directory / "training.json").read_text())
    assert summary["steps"] == 12 and summary["resumed_from_steps"] == [step]


def test_divergence_stops_at_once_and_names_the_step(speechocean762_yml, tmp_path):
    directory = experiment(tmp_path / "exp", batches=6, epochs=2, lr=1e9, extra="checkpoint: {every_n_steps: 1}\n")
    result = run_cli("train", directory, "--database", speechocean762_yml, "--no-progress")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Training diverged at step" in result.stderr and "learning rate" in result.stderr
    last = directory / "checkpoints" / "last.ckpt"
    if last.exists():  # from before the divergence: finite weights only
        assert all(torch.isfinite(v).all() for v in state_dict(last).values() if v.is_floating_point())
    assert not (directory / "training.json").exists()


@pytest.fixture(scope="module")
def small_train_yml(speechocean762_yml, tmp_path_factory):
    """8 training speakers (80 files) of SpeechOcean762, with one truncated FLAC (its header is fine)"""
    source = speechocean762_yml.parent
    root = tmp_path_factory.mktemp("bad-audio")
    uris = (source / "train.lst").read_text().split()
    speakers = sorted({uri.split("/")[0] for uri in uris})[:8]
    kept = [uri for uri in uris if uri.split("/")[0] in speakers]
    wave = source / "WAVE"
    for uri in kept:
        target = root / "WAVE" / f"{uri}.flac"
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (wave / f"{uri}.flac").read_bytes()
        target.write_bytes(data)
    bad = [kept[3], kept[47]]
    for uri in bad:
        path = root / "WAVE" / f"{uri}.flac"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    for suffix in ("lst", "rttm", "uem"):
        lines = [line for line in (source / f"train.{suffix}").read_text().splitlines()
                 if any(uri in line for uri in kept)]
        (root / f"train.{suffix}").write_text("\n".join(lines) + "\n")

    def yml(num_bad: int) -> Path:
        subset = root / f"bad{num_bad}"
        subset.mkdir(exist_ok=True)
        for suffix in ("lst", "rttm", "uem"):
            lines = (root / f"train.{suffix}").read_text().splitlines()
            lines = [line for line in lines if not any(uri in line for uri in bad[num_bad:])]
            (subset / f"train.{suffix}").write_text("\n".join(lines) + "\n")
        text = f"""Databases:
  SpeechOcean762: {root}/WAVE/{{uri}}.flac
Protocols:
  SpeechOcean762:
    SpeakerVerification:
      Default:
        scope: global
        train:
          uri: {subset}/train.lst
          annotation: {subset}/train.rttm
          annotated: {subset}/train.uem
"""
        (subset / "database.yml").write_text(text)
        return subset / "database.yml"

    return yml, [str(root / "WAVE" / f"{uri}.flac") for uri in bad]


def test_undecodable_training_files_are_skipped_then_stop_training(small_train_yml, tmp_path):
    yml, bad = small_train_yml
    # one bad file of 80 (1.25 %, below max_bad_files = 2 %): skipped, reported, training finishes
    directory = experiment(tmp_path / "one", batches=40, epochs=1, max_bad=0.02)
    result = run_cli("train", directory, "--database", yml(1), "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((directory / "training.json").read_text())
    assert summary["skipped_files"] == [bad[0]]
    assert "Skipping a training file that fails to decode" in result.stderr and bad[0] in result.stderr
    # two bad files (2.5 %): training stops with both names
    directory = experiment(tmp_path / "two", batches=40, epochs=2, max_bad=0.02)
    result = run_cli("train", directory, "--database", yml(2), "--no-progress")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "2 of the 80 training files fail to decode" in result.stderr
    assert bad[0] in result.stderr and bad[1] in result.stderr and "max_bad_files" in result.stderr
