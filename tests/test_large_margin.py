"""Large-margin fine-tuning (large_margin:): a second stage after the main run, with its loss head"""

import json

import pytest
import torch
from lightning import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from pyannote_embloss.models.checkpoint import load_checkpoint
from pyannote_embloss.errors import ConfigError, TrainingInterrupted
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.training.large_margin import stage_task_params
from pyannote_embloss.losses import AdditiveAngularMarginLoss, SubCenterAdditiveAngularMarginLoss

from helpers import tiny_experiment

STAGE = "{duration: 1.5, margin: 0.5, epochs: 1, lr: 0.0001, batches_per_epoch: 3}"


def write(directory, loss="subcenter_aam", large_margin=STAGE):
    loss_params = ", margin: 0.2, scale: 10.0" if loss != "softmax" else ""
    return tiny_experiment(directory, loss, loss_params, extra=f"large_margin: {large_margin}\n")


@pytest.mark.parametrize(
    "loss, large_margin, message",
    [
        ("subcenter_aam", "{duration: 6.0, margin: 0.5, epochs: 1}", "set lr"),
        ("subcenter_aam", "{duration: 6.0, margin: 0.5, epochs: 1, lr: 0.0001, ramp: 1}", "unknown key 'ramp'"),
        ("subcenter_aam", "{duration: 0, margin: 0.5, epochs: 1, lr: 0.0001}", "large_margin.duration"),
        ("subcenter_aam", "{duration: 6.0, margin: 0.5, epochs: 0.5, lr: 0.0001}", "large_margin.epochs"),
        ("subcenter_aam", "{duration: 6.0, margin: 0.5, epochs: 1, lr: -1}", "large_margin.lr"),
        ("softmax", STAGE, "large_margin is for the losses with a margin"),
    ],
)
def test_invalid_large_margin_section(loss, large_margin, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        Experiment.load(write(tmp_path, loss, large_margin))


def test_large_margin_section_and_hash(tmp_path):
    from pyannote_embloss.training.run_config import effective_config

    stage = Experiment.load(write(tmp_path / "stage")).config
    assert (stage.large_margin.duration, stage.large_margin.margin, stage.large_margin.lr) == (1.5, 0.5, 0.0001)
    assert effective_config(stage, "P")["large_margin"] == {
        "duration": 1.5, "margin": 0.5, "epochs": 1, "lr": 0.0001, "batches_per_epoch": 3
    }
    # a config without the section hashes as before it existed (no "large_margin" key)
    none = write(tmp_path / "none", large_margin="null")
    assert "large_margin" not in effective_config(Experiment.load(none).config, "P")


def test_stage_task_params(tmp_path):
    stage = Experiment.load(write(tmp_path)).config.large_margin
    params = {"duration": 2.0, "min_duration": 1.0, "margin": 0.2, "num_classes_per_batch": 8}
    expected = {**params, "duration": 1.5, "min_duration": 1.5, "margin": 0.5, "batches_per_epoch": 3}
    assert stage_task_params(params, AdditiveAngularMarginLoss, stage) == expected
    # WeSpeaker's large-margin fine-tuning drops the inter-top-k penalty
    assert stage_task_params(params, SubCenterAdditiveAngularMarginLoss, stage) == {**expected, "inter_topk": 0}


class Recorder(Callback):
    """Records each run's task, loss and weights at its first step; stops the stage at `stop_at` (SIGTERM)"""

    def __init__(self, stop_at=None):
        self.runs, self.stop_at = [], stop_at

    def on_train_start(self, trainer, pl_module):
        self.runs.append({"from_step": trainer.global_step, "steps": []})

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        run = self.runs[-1]
        if not run["steps"]:
            loss, task = pl_module.loss_func, pl_module.task
            run.update(duration=task.duration, min_duration=task.min_duration, margin=loss.margin,
                       inter_topk=loss.inter_topk, lr=trainer.optimizers[0].param_groups[0]["lr"],
                       weights={k: v.detach().clone() for k, v in pl_module.state_dict().items()})
        run["steps"].append(trainer.global_step)
        if self.stop_at is not None and task_is_stage(pl_module) and trainer.global_step == self.stop_at:
            raise SIGTERMException()  # as when a cluster scheduler pre-empts the job


def task_is_stage(pl_module):
    return pl_module.task.duration == 1.5


@pytest.mark.slow
def test_large_margin_stage_continues_the_main_run_and_resumes(tiny_protocol_yml, tmp_path):
    from pyannote_embloss.inference.loading import load_model
    from pyannote_embloss.training.run import train

    directory = write(tmp_path / "lm")
    checkpoints = directory / "checkpoints"
    recorder = Recorder(stop_at=1)
    with pytest.raises(TrainingInterrupted, match="large_margin stage"):
        train(Experiment.load(directory), database=str(tiny_protocol_yml), progress_bar=False, callbacks=[recorder])
    main, stage = recorder.runs
    assert (main["duration"], main["min_duration"], main["margin"], main["inter_topk"]) == (1.0, 1.0, 0.2, 5)
    assert main["steps"] == [0, 1, 2, 3]
    # the stage: longer chunks, the larger margin, no inter-top-k, its learning rate
    assert (stage["duration"], stage["min_duration"], stage["margin"], stage["inter_topk"]) == (1.5, 1.5, 0.5, 0)
    assert stage["lr"] == 0.0001 and stage["steps"] == [0, 1]
    # ... from the main run's final weights, loss head included
    final = load_checkpoint(checkpoints / "last.ckpt")["state_dict"]
    assert "loss_func.W" in final and set(stage["weights"]) == set(final)
    assert all(torch.equal(stage["weights"][key], final[key]) for key in final)
    # interrupted: its own last.ckpt; the experiment is not trained yet (compare would resume it)
    assert load_checkpoint(checkpoints / "large_margin" / "last.ckpt")["global_step"] == 1
    assert not Experiment.load(directory).is_trained()
    main_mtime = (checkpoints / "last.ckpt").stat().st_mtime_ns

    resumed = Recorder()
    summary = train(Experiment.load(directory), database=str(tiny_protocol_yml), progress_bar=False, resume=True,
                    callbacks=[resumed])
    assert [run["from_step"] for run in resumed.runs] == [1]  # the stage only, from where it stopped
    assert resumed.runs[0]["steps"] == [1, 2] and resumed.runs[0]["margin"] == 0.5
    assert (checkpoints / "last.ckpt").stat().st_mtime_ns == main_mtime

    written = json.loads((directory / "training.json").read_text())
    assert written["steps"] == 4 and written["task"] == "subcenter_aam" and written["config"]["large_margin"]["margin"] == 0.5
    stage_summary = written["large_margin"]
    assert (stage_summary["steps"], stage_summary["duration"], stage_summary["margin"]) == (3, 1.5, 0.5)
    assert stage_summary["start"] == str(checkpoints / "last.ckpt") and stage_summary["resumed"] is True
    assert summary["large_margin"]["steps"] == 3
    # best.ckpt is the stage's final model; the main run's stays available as main.ckpt
    best = load_checkpoint(checkpoints / "best.ckpt")["state_dict"]
    stage_last = load_checkpoint(checkpoints / "large_margin" / "last.ckpt")["state_dict"]
    assert all(torch.equal(best[key], stage_last[key]) for key in best)
    kept = load_checkpoint(checkpoints / "main.ckpt")["state_dict"]
    assert all(torch.equal(kept[key], final[key]) for key in final)
    assert Experiment.load(directory).is_trained()
    with torch.inference_mode():
        assert torch.isfinite(load_model(Experiment.load(directory), "main")(torch.randn(1, 1, 16000))).all()
