"""The shared speaker-embedding task: upstream fixes, sampler, validation, errors"""

import pickle

import numpy as np
import pytest
import torch
from pyannote.metrics.binary_classification import det_curve

from pyannote_embloss.models import SincTDNN
from pyannote_embloss.protocols import get_protocol
from pyannote_embloss.tasks import TASKS, get_task_class
from pyannote_embloss.tasks.classification import AdditiveAngularMargin
from pyannote_embloss.tasks.validation import TrialEqualErrorRate

from helpers import PROTOCOL, quiet_trainer


@pytest.fixture(scope="module")
def protocol(speechocean762_yml):
    return get_protocol(PROTOCOL, database_yml=speechocean762_yml)


@pytest.fixture(scope="module")
def train_only_yml(speechocean762_yml, tmp_path_factory):
    """Same training files, no development nor test subsets"""
    text = speechocean762_yml.read_text()
    text = text[: text.index("        development:")]
    path = tmp_path_factory.mktemp("train-only") / "database.yml"
    path.write_text(text)
    return path


def setup_task(task, tmp_path, **model_kwargs):
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, dimension=64, **model_kwargs)
    task.prepare_data()
    model.setup()
    return model


def test_prepared_data_caches_trials_without_pickling_protocol_files(protocol, tmp_path):
    # upstream (a): caching development trials of a database.yml protocol raised PicklingError
    task = AdditiveAngularMargin(protocol, num_classes_per_batch=8, num_workers=0)
    setup_task(task, tmp_path)
    assert (tmp_path / "cache.npz").stat().st_size > 0
    # (b): setup() loads prepared data
    trials = task.prepared_data["validation-trials"]
    assert len(trials) == 2 * 25 * 45
    assert trials["reference"].sum() == 25 * 45
    assert len(task.prepared_data["validation-audio"]) == 250
    # plain strings: picklable without any registry class
    pickle.dumps(task.prepared_data["validation-audio"])
    assert len(task.specifications.classes) == 125
    assert sum(len(files) for files in task._train.values()) == 1250


def test_chunks_of_a_batch_have_the_same_number_of_samples(protocol, tmp_path):
    # upstream (d): with min_duration < duration, chunks could differ by one sample
    task = AdditiveAngularMargin(
        protocol, duration=2.0, min_duration=0.5, num_classes_per_batch=4, num_workers=0
    )
    setup_task(task, tmp_path)
    samples = task.train__iter__()
    lengths, labels = [], []
    for _ in range(12):
        batch = [next(samples) for _ in range(task.batch_size)]
        lengths.append({b["X"].shape[1] for b in batch})
        labels.append([b["y"] for b in batch])
    assert all(len(batch_lengths) == 1 for batch_lengths in lengths)
    # durations are drawn per batch between min_duration and duration
    sizes = sorted(next(iter(s)) for s in lengths)
    assert sizes[0] >= 8000 and sizes[-1] <= 32000 and sizes[0] != sizes[-1]
    # each batch: num_classes_per_batch distinct speakers x num_chunks_per_class
    assert all(len(set(batch_labels)) == 4 for batch_labels in labels)


def test_pair_losses_group_several_chunks_per_speaker(protocol, tmp_path):
    task = get_task_class("triplet")(protocol, num_classes_per_batch=4, num_chunks_per_class=3, num_workers=0)
    setup_task(task, tmp_path)
    samples = task.train__iter__()
    labels = [next(samples)["y"] for _ in range(task.batch_size)]
    assert task.batch_size == 12
    assert sorted(np.unique(labels, return_counts=True)[1]) == [3, 3, 3, 3]


@pytest.mark.parametrize("name", ["contrastive", "triplet"])
def test_pair_loss_with_one_chunk_per_speaker_is_refused(protocol, name):
    with pytest.raises(ValueError, match="num_chunks_per_class to at least 2"):
        get_task_class(name)(protocol, num_chunks_per_class=1)


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError, match="Known tasks: softmax, center, coco, aam, am, contrastive, triplet"):
        get_task_class("arcface")
    assert len(TASKS) == 7


def test_equal_error_rate_is_accumulated_over_batches():
    # upstream (c): EER computed per batch raised IndexError on one-class batches
    rng = np.random.default_rng(0)
    embeddings = torch.tensor(rng.normal(size=(6, 4)), dtype=torch.float32)
    file1 = np.array([0, 0, 1, 2, 3, 4, 0, 5])
    file2 = np.array([1, 2, 3, 4, 5, 5, 3, 1])
    reference = np.array([1, 0, 1, 0, 1, 0, 1, 0])
    metric = TrialEqualErrorRate(file1, file2, reference)
    # one file per batch, in any order: no batch holds a complete trial list
    for f in [5, 2, 0, 4, 1, 3]:
        metric.update(embeddings[f : f + 1], torch.tensor([f]))
    normalised = torch.nn.functional.normalize(embeddings, dim=-1).numpy()
    scores = (normalised[file1] * normalised[file2]).sum(-1)
    _, _, _, expected = det_curve(reference, scores, distances=False)
    assert metric.compute().item() == pytest.approx(expected, abs=1e-6)
    # partial accumulation (e.g. a sanity check) with a single class: no crash, NaN
    partial = TrialEqualErrorRate(file1, file2, reference)
    partial.update(embeddings[:2], torch.tensor([0, 1]))
    assert np.isnan(partial.compute().item())


def test_training_without_development_set(train_only_yml, tmp_path):
    protocol = get_protocol(PROTOCOL, database_yml=train_only_yml)
    task = AdditiveAngularMargin(protocol, num_classes_per_batch=4, batches_per_epoch=2, num_workers=0)
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, channels=[32, 32, 32, 32, 64], dimension=16)
    trainer = quiet_trainer(tmp_path)
    trainer.fit(model)
    assert trainer.global_step == 2
    assert not task.has_validation_trials
    assert task.val_dataloader() == []
    # loss parameters train with the model: AAM weights are 16-d x 125 speakers
    assert model.loss_func.W.shape == (16, 125)


def test_loss_parameters_are_trained_and_checkpointed(protocol, tmp_path):
    task = get_task_class("center")(protocol, num_classes_per_batch=4, batches_per_epoch=2, num_workers=0)
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, channels=[32, 32, 32, 32, 64], dimension=16)
    trainer = quiet_trainer(tmp_path, limit_val_batches=0)
    before = model.state_dict() if hasattr(model, "loss_func") else None
    assert before is None  # the loss is attached at setup, when speakers are known
    trainer.fit(model)
    centers = model.loss_func.centers.detach().clone()
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    state_dict = torch.load(path, weights_only=False)["state_dict"]
    torch.testing.assert_close(state_dict["loss_func.centers"], centers)
    assert {"loss_func.W", "loss_func.centers"} <= set(state_dict)
