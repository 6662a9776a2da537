"""A checkpoint written before the restructuring into folders still loads, evaluates and fine-tunes (issue 35)

``tests/fixtures/old-experiment`` was trained by the code at commit a369c75,
when every module sat at the package root (``pyannote_embloss.training``,
``pyannote_embloss.loading``...): a tiny SincTDNN (log-mel front-end, 32-d) +
AAM experiment, 1 epoch of 5 batches on SpeechOcean762. The same code wrote
``old-embeddings.npz`` (sliding windows of 2 s every 0.5 s) and
``old-embeddings-whole.npz`` (whole files) for three SpeechOcean762 files with
``pyannote_embloss.load``: today's code must give the same numbers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pyannote.audio import Model

import pyannote_embloss
from pyannote_embloss.evaluation.verification import evaluate
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.training.run import train

FIXTURES = Path(__file__).parent / "fixtures"
OLD_EXPERIMENT = FIXTURES / "old-experiment"


@pytest.fixture
def old_experiment(tmp_path: Path) -> Path:
    """A copy of the fixture (evaluate and train write into the experiment)"""
    return Path(shutil.copytree(OLD_EXPERIMENT, tmp_path / "old-experiment"))


@pytest.mark.parametrize("window", ["sliding", "whole"])
def test_old_checkpoint_gives_the_embeddings_it_gave(corpus_root: Path, window: str):
    stored = np.load(FIXTURES / ("old-embeddings.npz" if window == "sliding" else "old-embeddings-whole.npz"))
    model = pyannote_embloss.load(OLD_EXPERIMENT, window=window)
    assert len(stored.files) == 3
    for relative in stored.files:
        embedding = model({"audio": str(corpus_root / relative)})
        embedding = np.asarray(embedding.data if window == "sliding" else embedding)
        assert embedding.shape == stored[relative].shape, relative
        np.testing.assert_allclose(embedding, stored[relative], atol=1e-4, rtol=1e-4, err_msg=relative)


def test_old_checkpoint_loads_in_pyannote_audio():
    model = Model.from_pretrained(OLD_EXPERIMENT / "checkpoints" / "best.ckpt")
    assert type(model).__module__ == "pyannote_embloss.models.sinctdnn" and model.dimension == 32
    with torch.inference_mode():
        assert model(torch.zeros(1, 1, 32000)).shape == (1, 32)


def test_old_experiment_evaluates(old_experiment: Path, tiny_protocol_yml: Path):
    results = evaluate(
        Experiment.load(old_experiment), protocol="Tiny.SpeakerVerification.Default",
        database=str(tiny_protocol_yml), progress=False, conditions=[],
    )
    saved = json.loads((old_experiment / "results" / "Tiny.SpeakerVerification.Default.test.json").read_text())
    assert saved["num_trials"] == results["num_trials"] > 0 and saved["num_files"] == 8
    assert 0.0 <= saved["eer"] <= 1.0 and saved["eer"] == results["eer"]


def test_old_checkpoint_fine_tunes(old_experiment: Path, tiny_protocol_yml: Path, tmp_path: Path):
    """Its weights are the start of a new run, which then changes them"""
    new = tmp_path / "fine-tuned"
    new.mkdir()
    config = (OLD_EXPERIMENT / "config.yml").read_text()
    (new / "config.yml").write_text(config.replace("num_classes_per_batch: 8", "num_classes_per_batch: 4"))
    pretrained = OLD_EXPERIMENT / "checkpoints" / "best.ckpt"
    summary = train(
        Experiment.load(new), protocol="Tiny.SpeakerVerification.Default", database=str(tiny_protocol_yml),
        pretrained=str(pretrained), max_epochs=1, batches_per_epoch=2, num_workers=0, progress_bar=False,
    )
    assert summary["pretrained"] == str(pretrained)
    old = torch.load(pretrained, map_location="cpu", weights_only=False)["state_dict"]
    tuned = torch.load(new / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    embedding_keys = [k for k in old if not k.startswith("loss_func.")]
    assert set(embedding_keys) <= set(tuned)
    assert any(not torch.equal(old[k], tuned[k]) for k in embedding_keys)  # trained from there
