"""Every loss trains end to end: a short Lightning training lowers its loss"""

import pytest
import torch
from lightning import seed_everything

from pyannote_embloss.models import SincTDNN
from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.tasks import TASKS
from pyannote_embloss.config import OptimizerConfig
from pyannote_embloss.training.run import configure_optimizer

from helpers import PROTOCOL, quiet_trainer

pytestmark = pytest.mark.slow  # seven short trainings

NUM_SPEAKERS = 8


@pytest.fixture(scope="module")
def eight_speakers_yml(speechocean762_yml, tmp_path_factory):
    """Train-only protocol with the first 8 training speakers of SpeechOcean762"""
    source = speechocean762_yml.parent
    directory = tmp_path_factory.mktemp("eight-speakers")
    uris = (source / "train.lst").read_text().split()
    speakers = sorted({uri.split("/")[0] for uri in uris})[:NUM_SPEAKERS]
    keep = lambda line: line.split()[1 if line.startswith("SPEAKER ") else 0].split("/")[0] in speakers  # noqa: E731
    for suffix in ("lst", "rttm", "uem"):
        lines = (source / f"train.{suffix}").read_text().splitlines()
        (directory / f"train.{suffix}").write_text("\n".join(filter(keep, lines)) + "\n")
    text = speechocean762_yml.read_text()
    text = text[: text.index("        development:")].replace(str(source), str(directory))
    (directory / "database.yml").write_text(text)
    return directory / "database.yml"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_short_training_lowers_the_loss(name, eight_speakers_yml, tmp_path):
    seed_everything(0, verbose=False)
    protocol = get_protocol(PROTOCOL, database_yml=eight_speakers_yml)
    task = TASKS[name](
        protocol,
        duration=1.0,
        num_classes_per_batch=NUM_SPEAKERS,
        num_chunks_per_class=2,
        batches_per_epoch=25,
        num_workers=0,
        cache=str(tmp_path / "cache.npz"),
    )
    model = SincTDNN(task=task, stride=10, channels=[64, 64, 64, 64, 128], dimension=32)
    configure_optimizer(model, OptimizerConfig("Adam", {"lr": 0.003}))
    trainer = quiet_trainer(tmp_path, enable_checkpointing=False)
    # a fixed batch, drawn by the task's own sampler, scored before and after training
    task.prepare_data()
    model.setup()
    samples = task.train__iter__()
    batch = task.collate_fn([next(samples) for _ in range(4 * task.batch_size)], stage="val")
    loss_params = [p.detach().clone() for p in model.loss_func.parameters()]

    def loss_on_fixed_batch():
        model.eval()
        with torch.no_grad():
            loss = model.loss_func(model(batch["X"]), batch["y"]).item()
        model.train()
        return loss

    before = loss_on_fixed_batch()
    trainer.fit(model)
    after = loss_on_fixed_batch()

    assert trainer.global_step == 25
    if model.loss_func.uses_classifier:
        assert after < 0.95 * before, (name, before, after)
    else:
        # untrained embeddings are nearly collinear, so pair and triplet losses start
        # at their margin and move slowly: only require a decrease
        assert after < before - 1e-3, (name, before, after)
    # the loss' own parameters (classifier weights, centers) were trained too
    assert len(loss_params) == (2 if name == "center" else int(model.loss_func.uses_classifier))
    for old, new in zip(loss_params, model.loss_func.parameters()):
        assert not torch.allclose(old, new.detach())
