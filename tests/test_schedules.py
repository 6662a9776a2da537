"""Learning-rate and margin schedules take the configured values at given steps, in a real Lightning run"""

import math
from pathlib import Path

import pytest
from lightning import Callback

from pyannote_embloss.errors import ConfigError
from pyannote_embloss.models import SincTDNN
from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.config import check_margin_scheduler, check_scheduler
from pyannote_embloss.training.schedules import MarginScheduler, margin_at
from pyannote_embloss.tasks import get_task_class
from pyannote_embloss.config import OptimizerConfig
from pyannote_embloss.training.run import configure_optimizer

from helpers import PROTOCOL, quiet_trainer

CONFIG = Path("config.yml")


class Record(Callback):
    """Learning rate and margin used by each optimizer step"""

    def __init__(self):
        self.lr, self.margin = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lr.append(trainer.optimizers[0].param_groups[0]["lr"])
        self.margin.append(pl_module.loss_func.margin)


def test_warmup_then_exponential_decay_and_margin_ramp(speechocean762_yml, tmp_path):
    scheduler = check_scheduler(
        {
            "name": "SequentialLR",
            "params": {
                "schedulers": [
                    {"name": "LinearLR", "params": {"start_factor": 0.1, "total_iters": 4}},
                    {"name": "ExponentialLR", "params": {"gamma": 0.5}},
                ],
                "milestones": [4],
            },
        },
        CONFIG,
    )
    margin = check_margin_scheduler({"initial": 0.0, "start_step": 2, "end_step": 6}, CONFIG)
    task = get_task_class("aam")(
        get_protocol(PROTOCOL, database_yml=speechocean762_yml), num_classes_per_batch=2, batches_per_epoch=4,
        num_workers=0, margin=0.2, duration=0.5,
    )
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, channels=[16, 16, 16, 16, 32], dimension=8)
    configure_optimizer(model, OptimizerConfig("SGD", {"lr": 0.1}), scheduler=scheduler, total_steps=8, total_epochs=2)
    record = Record()
    trainer = quiet_trainer(tmp_path, max_epochs=2, limit_val_batches=0,
                            callbacks=[MarginScheduler(0.2, **vars(margin)), record])
    trainer.fit(model)
    assert trainer.global_step == 8
    # warm-up from 0.1 x lr over 4 steps, then halved at every step
    expected_lr = [0.01, 0.0325, 0.055, 0.0775, 0.1, 0.05, 0.025, 0.0125]
    assert record.lr == pytest.approx(expected_lr, rel=1e-6)
    # margin: 0 until step 2, then linearly up to 0.2 at step 6
    assert record.margin == pytest.approx([0.0, 0.0, 0.0, 0.05, 0.1, 0.15, 0.2, 0.2], abs=1e-9)


def test_one_cycle_gets_the_run_length():
    scheduler = check_scheduler({"name": "OneCycleLR", "params": {"max_lr": 0.01, "pct_start": 0.25}}, CONFIG)
    import torch

    from pyannote_embloss.config import build_scheduler

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.01)
    built = build_scheduler(scheduler, optimizer, total_steps=100, total_epochs=5)
    assert built["interval"] == "step" and built["scheduler"].total_steps == 100
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        built["scheduler"].step()
    assert max(lrs) == pytest.approx(0.01) and lrs.index(max(lrs)) == 24
    assert lrs[-1] < 1e-5


def test_exponential_margin_ramp():
    assert margin_at(0, 0.2, start_step=10, end_step=20, increase="exp") == 0.0
    assert margin_at(20, 0.2, start_step=10, end_step=20, increase="exp") == 0.2
    middle = margin_at(15, 0.2, start_step=10, end_step=20, increase="exp")
    assert middle == pytest.approx(0.2 * (1 - math.exp(-2.5)) / (1 - math.exp(-5)))
    assert middle > margin_at(15, 0.2, start_step=10, end_step=20)  # faster than linear at first


@pytest.mark.parametrize(
    "section, message",
    [
        ({"name": "WarmupCosine"}, "unknown scheduler 'WarmupCosine'"),
        ({"name": "StepLR", "params": {"step": 3}}, "unknown parameter 'step' for scheduler StepLR"),
        ({"name": "StepLR", "interval": "batch"}, "interval must be 'step' or 'epoch'"),
    ],
)
def test_bad_scheduler_names_the_key(section, message):
    with pytest.raises(ConfigError) as error:
        check_scheduler(section, CONFIG)
    assert message in str(error.value) and "config.yml" in str(error.value)


def test_bad_margin_scheduler():
    with pytest.raises(ConfigError, match="start_step <= end_step"):
        check_margin_scheduler({"start_step": 10, "end_step": 5}, CONFIG)
    with pytest.raises(ConfigError, match="increase must be 'linear' or 'exp'"):
        check_margin_scheduler({"increase": "cosine"}, CONFIG)
