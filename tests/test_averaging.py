"""Checkpoint averaging (checkpoint.average_last): the mean of the last epochs' weights in average.ckpt"""

import json

import numpy as np
import pytest
import torch

from pyannote_embloss.training.averaging import average_checkpoints, average_state_dicts, epoch_checkpoints
from pyannote_embloss.models.checkpoint import load_checkpoint
from pyannote_embloss.errors import ConfigError
from pyannote_embloss.experiment import Experiment

from helpers import tiny_experiment


def state(value):
    return {"w": torch.full((2, 3), float(value)), "half": torch.full((2,), float(value)).half(),
            "bn.num_batches_tracked": torch.tensor(int(value))}


def test_average_state_dicts():
    averaged = average_state_dicts([state(1), state(2), state(6)])
    assert torch.equal(averaged["w"], torch.full((2, 3), 3.0))
    assert averaged["half"].dtype == torch.float16 and torch.equal(averaged["half"], torch.full((2,), 3.0).half())
    assert averaged["bn.num_batches_tracked"].item() == 6  # not a float: the last one's
    with pytest.raises(ValueError, match="different keys"):
        average_state_dicts([state(1), {"w": torch.zeros(2, 3)}])
    with pytest.raises(ValueError):
        average_state_dicts([])


def test_average_checkpoints_of_the_last_epochs(tmp_path):
    for epoch in (0, 1, 2, 10):
        torch.save({"state_dict": state(epoch), "pyannote.audio": {"architecture": {}}, "epoch": epoch,
                    "optimizer_states": ["big"]}, tmp_path / f"epoch-{epoch:03d}.ckpt")
    (tmp_path / "epoch-x.ckpt").write_text("not an epoch checkpoint")
    assert list(epoch_checkpoints(tmp_path)) == [0, 1, 2, 10]
    average = average_checkpoints(tmp_path, 2)
    assert average == {"checkpoint": str(tmp_path / "average.ckpt"), "epochs": [2, 10]}
    written = torch.load(tmp_path / "average.ckpt", weights_only=True)
    assert torch.equal(written["state_dict"]["w"], torch.full((2, 3), 6.0))
    assert written["epoch"] == 10 and "pyannote.audio" in written and "optimizer_states" not in written
    assert not list(tmp_path.glob(".average.ckpt.*"))  # written atomically: no temporary file left
    with pytest.warns(UserWarning, match="only 4 epoch"):
        assert average_checkpoints(tmp_path, 5, tmp_path / "all.ckpt")["epochs"] == [0, 1, 2, 10]
    assert average_checkpoints(tmp_path / "empty", 2) is None


CONFIG = """\
task: {name: aam}
checkpoint: {average_last: %s}
"""


@pytest.mark.parametrize("value", [0, -1, 1.5, "two", True])
def test_average_last_must_be_a_positive_integer(value, tmp_path):
    (tmp_path / "config.yml").write_text(CONFIG % json.dumps(value))
    with pytest.raises(ConfigError, match="average_last"):
        Experiment.load(tmp_path)


def test_average_last_in_config(tmp_path):
    (tmp_path / "config.yml").write_text(CONFIG % 3)
    assert Experiment.load(tmp_path).config.checkpoint.average_last == 3


@pytest.mark.slow
def test_training_averages_the_last_epochs(tiny_protocol_yml, tmp_path):
    from pyannote.audio import Model

    from pyannote_embloss.inference.loading import load_model
    from pyannote_embloss.training.run import train

    directory = tiny_experiment(tmp_path / "averaged", max_epochs=3, extra="checkpoint: {average_last: 2}\n")
    summary = train(Experiment.load(directory), database=str(tiny_protocol_yml), progress_bar=False)
    checkpoints = directory / "checkpoints"
    assert sorted(path.name for path in checkpoints.glob("epoch-*.ckpt")) == ["epoch-001.ckpt", "epoch-002.ckpt"]
    assert summary["average"] == {"checkpoint": str(checkpoints / "average.ckpt"), "epochs": [1, 2]}
    assert json.loads((directory / "training.json").read_text())["average"]["epochs"] == [1, 2]

    first, second = (torch.load(checkpoints / f"epoch-00{e}.ckpt", weights_only=False)["state_dict"] for e in (1, 2))
    average = load_checkpoint(checkpoints / "average.ckpt")["state_dict"]  # weights only
    assert set(average) == set(second) and "loss_func.W" in average
    moved = 0
    for key, value in average.items():
        if value.is_floating_point():
            expected = (first[key].double() + second[key].double()) / 2
            np.testing.assert_allclose(value.double().numpy(), expected.numpy(), atol=1e-6, err_msg=key)
            moved += not torch.equal(first[key], second[key])
    assert moved > 0  # training changed the weights between the two epochs
    # the last epoch is the run's final weights; the epoch of lowest development EER is kept as best-epoch.ckpt
    final = torch.load(checkpoints / "last.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(final[key], second[key]) for key in second)
    # (without development trials, as here, the best epoch is the last one)
    assert summary["dev_eer"] is None
    best_epoch = torch.load(checkpoints / "best-epoch.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(best_epoch[key], second[key]) for key in second)
    # the average is the experiment's model: best.ckpt, what every command uses by default
    best = torch.load(checkpoints / "best.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(best[key], average[key]) for key in average)

    # it loads by name, and in pyannote.audio, without its loss head, and embeds
    waveforms = torch.randn(2, 1, 16000)
    model = load_model(Experiment.load(directory), "average")
    with torch.inference_mode():
        embeddings = model(waveforms)
    assert embeddings.shape == (2, 32) and torch.isfinite(embeddings).all()
    theirs = Model.from_pretrained(checkpoints / "average.ckpt").eval()
    assert not hasattr(theirs, "loss_func")
    with torch.inference_mode():
        np.testing.assert_allclose(theirs(waveforms).numpy(), embeddings.numpy(), atol=1e-5)
