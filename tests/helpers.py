"""Helpers shared by the tests (fixtures live in conftest.py)"""

import os
import subprocess
import sys

PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"


def run_module(module, *args, cwd=None):
    """Run `python -m module args...` in a fresh process, telemetry off"""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"},
    )


def run_cli(*args, cwd=None):
    """Run `pyannote-audio-emb args...` in a fresh process, telemetry off"""
    return run_module("pyannote_embloss.cli", *args, cwd=cwd)


def quiet_trainer(root, **kwargs):
    """A Lightning Trainer for a few CPU steps: no progress bar, summary or logger"""
    from lightning import Trainer

    settings = dict(
        max_epochs=1,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    return Trainer(**{**settings, **kwargs})
