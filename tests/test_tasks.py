"""The shared speaker-embedding task: upstream fixes, sampler, validation, errors"""

import inspect
import pickle

import numpy as np
import pytest
import torch
from lightning import Callback

from pyannote_embloss.config import TaskConfig
from pyannote_embloss.errors import ConfigError
from pyannote_embloss.models import SincTDNN
from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.tasks import TASKS, AdditiveAngularMargin, SpeakerEmbeddingTask, get_task_class
from pyannote_embloss.evaluation import Trials
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


def test_linear_data_preparation_equals_pyannote_audio(protocol, tmp_path):
    # the plugin's prepare_data builds exactly pyannote.audio's prepared data, without its list scans
    from pyannote.audio.core.task import Task

    task = AdditiveAngularMargin(protocol, num_classes_per_batch=8, num_workers=0)
    task.cache = tmp_path / "plugin.npz"
    task.prepare_data()
    ours = dict(np.load(task.cache, allow_pickle=True))
    task.cache = tmp_path / "pyannote.npz"
    Task.prepare_data(task)
    theirs = dict(np.load(task.cache, allow_pickle=True))
    assert sorted(ours) == sorted(theirs) and len(ours["audio-path"]) == 1250 + 250
    for key in theirs:
        assert ours[key].dtype == theirs[key].dtype, key
        if ours[key].dtype == object:  # metadata-values: a dict of lists
            assert ours[key].item() == theirs[key].item(), key
        else:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert len(ours["metadata-labels"]) == 125 + 25 and ours["annotations-segments"]["global_label_idx"].max() == 149


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


class AlongsidePyannote(AdditiveAngularMargin):
    """Draws each chunk with the plugin's sampler and with pyannote.audio's own, side by side"""

    drawn: list = []

    def train__iter__(self):
        from pyannote.audio.tasks.embedding.mixins import SupervisedRepresentationLearningTaskMixin

        theirs = SupervisedRepresentationLearningTaskMixin.train__iter__(self)  # same moment of the run
        for ours in super().train__iter__():
            upstream = next(theirs)
            self.drawn.append((self.model.current_epoch, ours["y"], upstream["y"], ours["X"], upstream["X"]))
            yield ours


def test_sampler_draws_pyannote_audio_chunks_epoch_after_epoch(protocol, tmp_path):
    # the previous release's draws, and pyannote.audio's: same speakers, files, turns and chunks, in every
    # epoch of a real run (its seeding by epoch, with the epoch Lightning gives samplers)
    task = AlongsidePyannote(protocol, num_classes_per_batch=6, num_chunks_per_class=2, batches_per_epoch=3,
                             num_workers=0)
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, channels=[32, 32, 32, 32, 64], dimension=16)
    trainer = quiet_trainer(tmp_path, max_epochs=3, limit_val_batches=0)
    trainer.fit(model)
    drawn = task.drawn
    assert {epoch for epoch, *_ in drawn} == {0, 1, 2} and len(drawn) >= 3 * 3 * 12
    for epoch, ours, theirs, x, upstream in drawn:
        assert ours == theirs
        # pyannote.audio's chunks may be one sample longer (upstream bug d): ours have the batch's length
        assert torch.equal(x, upstream[:, : x.shape[1]]) and upstream.shape[1] - x.shape[1] in (0, 1)
    # and epochs differ
    by_epoch = {e: [y for epoch, y, *_ in drawn if epoch == e][:36] for e in range(3)}
    assert by_epoch[0] != by_epoch[1] != by_epoch[2]


def test_pair_losses_group_several_chunks_per_speaker(protocol, tmp_path):
    task = get_task_class("triplet")(protocol, num_classes_per_batch=4, num_chunks_per_class=3, num_workers=0)
    setup_task(task, tmp_path)
    samples = task.train__iter__()
    labels = [next(samples)["y"] for _ in range(task.batch_size)]
    assert task.batch_size == 12
    assert sorted(np.unique(labels, return_counts=True)[1]) == [3, 3, 3, 3]


@pytest.mark.parametrize("name", ["contrastive", "triplet"])
def test_pair_loss_with_one_chunk_per_speaker_is_refused(name):
    """By the config, the one validator of task.params (the task re-checks nothing)"""
    with pytest.raises(ConfigError, match="config.yml: .*num_chunks_per_class to at least 2"):
        TaskConfig.parse({"task": {"name": name, "params": {"num_chunks_per_class": 1}}}, "config.yml")


def test_unknown_task_lists_known_ones():
    with pytest.raises(ValueError, match=f"Known tasks: {', '.join(TASKS)}"):
        get_task_class("arcface")


def test_loss_parameters_reach_the_loss_and_unknown_ones_are_refused(protocol, tmp_path):
    task = get_task_class("aam")(protocol, num_classes_per_batch=4, num_workers=0, margin=0.3, scale=20.0)
    setup_task(task, tmp_path)
    assert task.model.loss_func.margin == pytest.approx(0.3) and task.model.loss_func.scale == 20.0
    # defaults are the loss class's: stated once
    assert TaskConfig("am").loss_params == {"margin": 0.2, "scale": 30.0}
    assert TaskConfig("aam", {"margin": 0.3, "duration": 1.0}).loss_params == {"margin": 0.3, "scale": 10.0}
    with pytest.raises(ConfigError, match=r"unknown key 'margin_deg' in task.params of 'aam'.*its loss, margin, scale") as error:
        TaskConfig.parse({"task": {"name": "aam", "params": {"margin_deg": 3}}}, "config.yml")
    # and every parameter of the task, from its signature (config.yml's task.params)
    task_params = set(inspect.signature(SpeakerEmbeddingTask.__init__).parameters) - {
        "self", "protocol", "augmentation", "metric", "loss_params"}
    listed = str(error.value).split("the task takes ")[1].split("; its loss")[0].split(", ")
    assert set(listed) == task_params and "max_bad_files" in listed and "max_trials" in listed


def test_equal_error_rate_is_accumulated_over_batches():
    # upstream (c): EER computed per batch raised IndexError on one-class batches
    # file 0 against 6 others on the unit circle: target cosines 0.9, 0.8, 0.3, non-target 0.5, 0.2, 0.1;
    # at threshold 0.5 one target of three is missed and one non-target of three accepted: EER = 1/3
    cosines = [1.0, 0.9, 0.8, 0.3, 0.5, 0.2, 0.1]
    angles = np.arccos(cosines)
    embeddings = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.arange(1, 8)[:, None],
                              dtype=torch.float32)  # any norm: cosine scoring
    uris = [f"f{i}" for i in range(7)]
    trials = Trials(uris, [""] * 7, [0] * 6, list(range(1, 7)), [1, 1, 1, 0, 0, 0])
    metric = TrialEqualErrorRate(trials)
    # one file per batch, in any order: no batch holds a complete trial list
    for f in [5, 2, 0, 4, 6, 1, 3]:
        metric.update(embeddings[f : f + 1], torch.tensor([f]))
    assert metric.compute().item() == pytest.approx(1 / 3, abs=1e-6)
    # partial accumulation (e.g. a sanity check) with a single class: no crash, NaN
    partial = TrialEqualErrorRate(trials)
    partial.update(embeddings[:3], torch.tensor([0, 1, 2]))
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


class KeepInitialLoss(Callback):
    """Copies the loss' parameters when training starts (they are created at setup)"""

    def on_train_start(self, trainer, pl_module):
        self.initial = {k: v.detach().clone() for k, v in pl_module.loss_func.state_dict().items()}


def test_loss_parameters_are_trained_and_checkpointed(protocol, tmp_path):
    task = get_task_class("center")(protocol, num_classes_per_batch=4, batches_per_epoch=2, num_workers=0)
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, channels=[32, 32, 32, 32, 64], dimension=16)
    initial = KeepInitialLoss()
    trainer = quiet_trainer(tmp_path, limit_val_batches=0, callbacks=[initial])
    assert not hasattr(model, "loss_func")  # the loss is attached at setup, when speakers are known
    trainer.fit(model)
    centers = model.loss_func.centers.detach().clone()
    # the model's optimizer trained them: the classifier and the centers of the batches' speakers moved
    assert not torch.equal(initial.initial["W"], model.loss_func.W.detach())
    assert not torch.equal(initial.initial["centers"], centers)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    state_dict = torch.load(path, weights_only=False)["state_dict"]
    torch.testing.assert_close(state_dict["loss_func.centers"], centers)
    assert {"loss_func.W", "loss_func.centers"} <= set(state_dict)
