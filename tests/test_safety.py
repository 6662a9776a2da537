"""Safe checkpoint loading and one run per output"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import pyannote_embloss
from pyannote_embloss.models.checkpoint import load_checkpoint
from pyannote_embloss.errors import LockedError, UntrustedCheckpointError
from pyannote_embloss.lock import LOCK_NAME, OutputLock

from helpers import PROTOCOL, run_cli

REPOSITORY = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this creates a file (what a malicious checkpoint would do)"""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def malicious_copy(checkpoint: Path, path: Path, target: Path) -> Path:
    data = torch.load(checkpoint, map_location="cpu", weights_only=False)
    data["hyper_parameters"]["payload"] = Payload(target)
    torch.save(data, path)
    return path


@pytest.fixture
def evil(checkpoint, tmp_path):
    """(experiment directory whose best.ckpt and last.ckpt are malicious, marker file they would create)"""
    target = tmp_path / "pwned"
    experiment = tmp_path / "evil"
    (experiment / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint.parents[1] / "config.yml", experiment / "config.yml")
    for name in ("best.ckpt", "last.ckpt"):
        malicious_copy(checkpoint, experiment / "checkpoints" / name, target)
    shutil.copy(checkpoint.parents[1] / "training.json", experiment / "training.json")
    return experiment, target


def test_no_entry_point_runs_the_code_of_a_malicious_checkpoint(evil, speechocean762_yml, tmp_path):
    experiment, target = evil
    best = experiment / "checkpoints" / "best.ckpt"
    # the payload works: a trusting load creates the file
    load_checkpoint(best, trust=True)
    assert target.exists()
    target.unlink()

    with pytest.raises(UntrustedCheckpointError, match="posix.system|os.system|GLOBAL"):
        pyannote_embloss.load(best)
    with pytest.raises(UntrustedCheckpointError):
        torch.hub.load(str(REPOSITORY), "emb", source="local", checkpoint=str(best))
    database = ("--database", speechocean762_yml)
    commands = [
        ("evaluate", experiment, *database, "--no-progress"),
        ("apply", experiment, PROTOCOL, "--output", tmp_path / "embeddings", *database, "--no-progress"),
        ("export", experiment, "--output", tmp_path / "model.onnx"),
        ("train", tmp_path / "finetune", *database, "--pretrained", best, "--max-epochs", "1", "--no-progress"),
        ("train", experiment, *database, "--resume", "--no-progress"),
    ]
    (tmp_path / "finetune").mkdir()
    shutil.copy(experiment / "config.yml", tmp_path / "finetune" / "config.yml")
    for command in commands:
        result = run_cli(*command)
        assert result.returncode == 2, (command, result.stderr[-2000:])
        assert "Refusing to load checkpoint" in result.stderr and "--trust-checkpoint" in result.stderr, command
        assert not target.exists(), command
    assert not (tmp_path / "embeddings" / "index.csv").exists() and not (tmp_path / "model.onnx").exists()

    # the documented way out, for a file one trusts
    result = run_cli("export", experiment, "--output", tmp_path / "model.onnx", "--trust-checkpoint")
    assert result.returncode == 0, result.stderr[-2000:]
    assert target.exists()


def test_a_checkpoint_naming_a_foreign_architecture_is_refused(checkpoint, tmp_path):
    data = torch.load(checkpoint, map_location="cpu", weights_only=False)
    data["pyannote.audio"]["architecture"] = {"module": "os", "class": "system"}
    path = tmp_path / "foreign.ckpt"
    torch.save(data, path)
    with pytest.raises(UntrustedCheckpointError, match="architecture os.system is not from pyannote_embloss"):
        pyannote_embloss.load(path)


HOLD = textwrap.dedent(
    """
    import sys, time
    from pyannote_embloss.lock import OutputLock
    with OutputLock(sys.argv[1], "train"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_a_second_writer_is_refused_and_a_stale_lock_is_taken_over(tmp_path, speechocean762_yml):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "600"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"PID {holder.pid}"):
            with OutputLock(tmp_path, "evaluate"):
                pass
        # the command line refuses at once, naming the holder
        experiment = tmp_path
        shutil.copy(REPOSITORY / "experiments" / "aam" / "config.yml", experiment / "config.yml")
        result = run_cli("train", experiment, "--database", speechocean762_yml, "--no-progress")
        assert result.returncode == 2 and f"PID {holder.pid}" in result.stderr and "started" in result.stderr
        assert holder.poll() is None  # refused while the lock was held: it did not wait for its release
        assert not (experiment / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    # killed without releasing: the lock file still names it, but the lock is free
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid
    with pytest.warns(UserWarning, match=f"stale lock.*PID {holder.pid}"):
        with OutputLock(tmp_path, "evaluate") as lock:
            assert lock.took_over["pid"] == holder.pid
    # released cleanly: no warning next time
    with OutputLock(tmp_path, "evaluate") as lock:
        assert lock.took_over is None


HOLD_WITH_WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pyannote_embloss.lock import OutputLock
    with OutputLock(sys.argv[1], "train"):
        worker = os.fork()
        if worker == 0:  # a forked worker (as a DataLoader's) that outlives its parent
            os.write(1, b"forked\\n")  # running: its after-fork handlers (closing the lock) are done
            time.sleep(600)
            os._exit(0)
        os.write(1, f"locked {worker}\\n".encode())  # one write each: lines never interleave, buffered or not
        time.sleep(600)
    """
)


def test_the_lock_dies_with_its_holder_not_with_its_forked_workers(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WITH_WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        # either order: the parent may print before the worker runs
        lines = sorted([holder.stdout.readline().split(), holder.stdout.readline().split()])
        assert lines[0] == ["forked"] and lines[1][0] == "locked"
        worker = lines[1][1]
        with pytest.raises(LockedError, match=f"PID {holder.pid}"):
            with OutputLock(tmp_path, "evaluate"):
                pass
        holder.kill()
        holder.wait()
        # the worker is still alive (signal 0 raises if not), yet the killed holder's lock is free
        os.kill(int(worker), 0)
        with pytest.warns(UserWarning, match=f"stale lock.*PID {holder.pid}"):
            with OutputLock(tmp_path, "evaluate") as lock:
                assert lock.took_over["pid"] == holder.pid
    finally:
        # the worker too; nothing left to kill if the holder died before forking it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
