"""config.yml is parsed once into typed sections, and every error it can hold is one line, before any training"""

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pyannote_embloss.cli import app
from pyannote_embloss.config import ExperimentConfig, OptimizerConfig, TaskConfig
from pyannote_embloss.errors import ConfigError
from pyannote_embloss.evaluation.verification import EvaluationOptions
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.training.run_config import config_hash, effective_config
from pyannote_embloss.training.run import TrainingOptions, train

REPOSITORY = Path(__file__).resolve().parents[1]
TINY = "Tiny.SpeakerVerification.Default"  # conftest's tiny_protocol_yml: 4 training speakers, files of 2.6-4.3 s

#: a valid config on the tiny protocol, that each test breaks in one place
VALID = {
    "protocol": TINY,
    "seed": 0,
    "task": {
        "name": "aam",
        "params": {"duration": 1.0, "num_classes_per_batch": 4, "batches_per_epoch": 2, "num_workers": 0},
    },
    "architecture": {"name": "SincTDNN", "params": {"stride": 10, "channels": [8, 8, 8, 8, 16], "dimension": 8}},
    "optimizer": {"name": "SGD", "params": {"lr": 0.01, "momentum": 0.9}},
    "scheduler": {"name": "ExponentialLR", "params": {"gamma": 0.9}},
    "margin_scheduler": {"initial": 0.0, "start_step": 1, "end_step": 2},
    "trainer": {"max_epochs": 1},
}


def write(directory: Path, **changes) -> Path:
    """An experiment directory whose config.yml is VALID with `changes` (dotted keys; None deletes)"""
    config = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        section = config
        for parent in parents:
            section = section[parent]
        if value is None:
            section.pop(key)
        else:
            section[key] = value
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return directory


def nothing_written(directory: Path) -> bool:
    return not any((directory / name).exists() for name in ("checkpoints", "logs", "training.json", "tensorboard"))


# each error `_train` (or the task and model it built, or the trainer) reported, now reported by Experiment.load
LOAD_ERRORS = {
    "negative learning rate": (
        {"optimizer.params.lr": -0.1}, "optimizer.params.lr must be a number > 0 (got -0.1)"),
    "no batch per epoch": (
        {"task.params.batches_per_epoch": 0}, "task.params.batches_per_epoch must be an integer >= 1 (got 0)"),
    "negative duration": ({"task.params.duration": -2.0}, "task.params.duration must be a number > 0"),
    "one class per batch": ({"task.params.num_classes_per_batch": 1}, "num_classes_per_batch must be an integer >= 2"),
    "negative margin": ({"task.params.margin": -0.1}, "task.params.margin must be a number >= 0"),
    "misspelt task parameter": (
        {"task.params.num_clases_per_batch": 4},
        "unknown key 'num_clases_per_batch' in task.params of 'aam' (did you mean 'num_classes_per_batch'?)",
    ),
    "misspelt section": ({"trainr": {"max_epochs": 1}}, "unknown section 'trainr' (did you mean 'trainer'?)"),
    "margin schedule of a loss without margin": (
        {"task.name": "softmax"}, "margin_scheduler is for the losses with a margin"),
    "scheduler without batches per epoch": (
        {"task.params.batches_per_epoch": None}, "a scheduler needs task.params.batches_per_epoch"),
    "pair loss with one chunk per class": (
        {"task.name": "triplet", "margin_scheduler": None, "task.params.num_chunks_per_class": 1},
        "set task.params.num_chunks_per_class to at least 2"),
    "unknown triplet sampling": (
        {"task.name": "triplet", "margin_scheduler": None, "task.params.sampling": "hardest"},
        "invalid task.params for 'triplet': Unknown triplet sampling 'hardest'"),
    "misspelt optimizer": ({"optimizer.name": "SDG"}, "unknown optimizer 'SDG' (did you mean 'SGD'?)"),
    "misspelt optimizer parameter": (
        {"optimizer.params.momentm": 0.9}, "unknown key 'momentm' in optimizer.params of SGD (did you mean 'momentum'?)"),
    "scheduler missing a parameter": (
        {"scheduler": {"name": "StepLR"}}, "invalid scheduler StepLR: StepLR.__init__() missing 1 required"),
    "misspelt architecture parameter": (
        {"architecture.params.dimenson": 8}, "unknown key 'dimenson' in architecture.params of SincTDNN (did you mean 'dimension'?)"),
    "misspelt trainer argument": ({"trainer.max_epoch": 1}, "unknown key 'max_epoch' in 'trainer' (did you mean 'max_epochs'?)"),
    "trainer argument set by training": ({"trainer.callbacks": []}, "trainer.callbacks is set by pyannote-embloss itself"),
    "no epoch": ({"trainer.max_epochs": 0}, "trainer.max_epochs must be an integer >= 1"),
}


@pytest.mark.parametrize("changes, message", LOAD_ERRORS.values(), ids=LOAD_ERRORS.keys())
def test_config_errors_are_reported_at_load_time(changes, message, tmp_path):
    experiment = write(tmp_path / "exp", **changes)
    with pytest.raises(ConfigError) as error:
        Experiment.load(experiment)
    assert message in str(error.value)
    assert str(error.value).startswith(f"{experiment / 'config.yml'}: ") and "\n" not in str(error.value)


@pytest.mark.parametrize("changes, message", LOAD_ERRORS.values(), ids=LOAD_ERRORS.keys())
def test_a_remembered_check_never_hides_an_error(changes, message, tmp_path):
    # a valid config.yml, checked and remembered (as `evaluate` does once it has written its results), then broken
    valid = Experiment.load(write(tmp_path / "exp"))
    valid.remember_config_checked()
    assert Experiment.load(tmp_path / "exp").config == valid.config  # read with the memo: the same typed config
    write(tmp_path / "exp", **changes)
    with pytest.raises(ConfigError) as error:
        Experiment.load(tmp_path / "exp")
    assert message in str(error.value)


def test_a_checked_config_is_remembered_until_its_text_changes(tmp_path):
    directory = write(tmp_path / "exp")
    memo = directory / ".config-checked.json"
    experiment = Experiment.load(directory)
    assert not memo.exists()  # reading writes nothing: a command refused later leaves nothing behind
    experiment.remember_config_checked()
    again = Experiment.load(directory)  # parsed without importing what it names
    assert again.config == experiment.config and again.config.stamp == experiment.config.stamp
    assert again.config.task.loss_class.has_margin and again.config.trainable
    path = directory / "config.yml"
    assert ExperimentConfig.from_dict(VALID, path, trainable=True) == ExperimentConfig.from_dict(VALID, path)
    memo.write_text("{")  # a damaged memo: checked in full again
    assert Experiment.load(directory).config == experiment.config
    path.write_text(path.read_text() + "# a comment\n")  # another text: another stamp
    assert Experiment.load(directory).config.stamp != experiment.config.stamp


def test_the_valid_config_is_typed(tmp_path):
    config = Experiment.load(write(tmp_path / "exp")).config
    assert isinstance(config.task, TaskConfig) and config.task.loss_class.has_margin
    assert config.optimizer == OptimizerConfig("SGD", {"lr": 0.01, "momentum": 0.9})
    assert config.optimizer.with_lr(0.5).params == {"lr": 0.5, "momentum": 0.9}
    assert config.scheduler.interval == "step" and config.margin_scheduler.end_step == 2
    assert config.trainable and config.checkpoint.every_n_steps is None


def test_every_repository_config_round_trips():
    for path in sorted((REPOSITORY / "experiments").glob("*/config.yml")) + [REPOSITORY / "pyannote_embloss/recipes/aam.yml"]:
        config = ExperimentConfig.read(path)
        assert ExperimentConfig.from_dict(config.to_dict(), path) == config, path


def test_the_config_hash_did_not_change(tmp_path):
    # a config with every section, hashed by the code before config.yml was typed
    (tmp_path / "config.yml").write_text(PINNED)
    config = Experiment.load(tmp_path).config
    assert config_hash(effective_config(config, "P")) == "651ba34cd6e1e83bac6fce1cc222c9fe720baba112a8628e456df19f45913d2a"
    overridden = effective_config(
        config, "P", seed=1, max_epochs=2, batches_per_epoch=4, num_workers=0, lr=0.1, trainer_overrides={"devices": 2}
    )
    assert config_hash(overridden) == "0362b5ff61ba923389d875e62d438d1ae7dfba377fda4fd631f5724f55e69844"


def test_an_experiment_built_from_a_mapping_is_validated(tmp_path):
    with pytest.raises(ConfigError, match=r"config.yml: unknown key 'num_clases_per_batch'"):
        Experiment(tmp_path, {**VALID, "task": {"name": "aam", "params": {"num_clases_per_batch": 2}}})
    assert Experiment(tmp_path, VALID).config == Experiment.load(write(tmp_path / "exp")).config


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr": -0.1}, "--lr must be a number > 0 (got -0.1)"),
        ({"lr": 0}, "--lr must be a number > 0"),
        ({"batches_per_epoch": 0}, "--batches-per-epoch must be an integer >= 1"),
        ({"max_epochs": 0}, "--max-epochs must be an integer >= 1"),
        ({"checkpoint_every_n_steps": -5}, "--checkpoint-every-n-steps must be an integer >= 1"),
    ],
)
def test_bad_training_options_fail_before_anything(options, message, tmp_path):
    experiment = Experiment.load(write(tmp_path / "exp"))
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainingOptions(**options)
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(experiment, **options)
    assert nothing_written(experiment.directory)


def test_bad_evaluation_options():
    with pytest.raises(ConfigError, match="--subset must be one of test, development"):
        EvaluationOptions(subset="train")
    with pytest.raises(ConfigError, match="--top-n must be an integer >= 1"):
        EvaluationOptions(top_n=0)
    with pytest.raises(TypeError):
        TrainingOptions(trainer_overrides={"max_steps": 3})


def test_negative_lr_on_the_command_line_exits_2(tmp_path):
    experiment = write(tmp_path / "exp")
    result = CliRunner().invoke(app, ["train", str(experiment), "--lr=-0.1", "--no-progress"])
    assert result.exit_code == 2
    assert "--lr must be a number > 0 (got -0.1)" in result.output and nothing_written(experiment)


# ---------------------------------------------------------------- checks against the training data


def test_duration_longer_than_every_training_file(tiny_protocol_yml, tmp_path):
    # was "max() arg is an empty sequence", then a DataError from inside the trainer
    experiment = write(tmp_path / "exp", **{"task.params.duration": 10.0})
    result = CliRunner().invoke(app, ["train", str(experiment), "--database", str(tiny_protocol_yml), "--no-progress"])
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert message.startswith(f"Error: {experiment / 'config.yml'}: task.params.duration is 10 s, longer than every")
    assert "the longest annotated region lasts 4.343 s): set it to 4.343 or less." in message
    assert nothing_written(experiment)


def test_large_margin_stage_duration_is_checked_before_the_main_run(tiny_protocol_yml, tmp_path):
    # was refused only when the stage started, after the whole main run
    experiment = write(tmp_path / "exp", large_margin={"duration": 10.0, "margin": 0.3, "epochs": 1, "lr": 0.001})
    with pytest.raises(ConfigError) as error:
        train(Experiment.load(experiment), database=str(tiny_protocol_yml), progress_bar=False)
    assert str(error.value).startswith(f"{experiment / 'config.yml'}: large_margin.duration is 10 s, longer than every")
    assert nothing_written(experiment)


def test_more_classes_per_batch_than_training_classes(tiny_protocol_yml, tmp_path):
    # was silently capped to the number of classes
    experiment = Experiment.load(write(tmp_path / "exp", **{"task.params.num_classes_per_batch": 5}))
    # the checkpoints of an earlier run stay until the config is known to be good
    (experiment.checkpoints).mkdir()
    (experiment.last_checkpoint).write_text("an earlier run")
    with pytest.raises(ConfigError) as error:
        train(experiment, database=str(tiny_protocol_yml), overwrite=True, progress_bar=False)
    assert str(error.value) == (
        f"{experiment.directory / 'config.yml'}: task.params.num_classes_per_batch is 5, more than the 4 training "
        f"classes of {TINY} (4 speakers): set it to 4 or less."
    )
    assert experiment.last_checkpoint.read_text() == "an earlier run" and not experiment.logs.exists()


def test_speed_perturbation_multiplies_the_classes(tiny_protocol_yml, tmp_path):
    experiment = write(tmp_path / "exp", **{"task.params.num_classes_per_batch": 13, "augmentation": {"speed": [0.9, 1.1]}})
    with pytest.raises(ConfigError, match=r"more than the 12 training classes of .* \(4 speakers x 3 speeds\)"):
        train(Experiment.load(experiment), database=str(tiny_protocol_yml), progress_bar=False)
    assert nothing_written(experiment)


#: every section, as hashed before config.yml was typed (test_the_config_hash_did_not_change)
PINNED = """\
protocol: SpeechOcean762.SpeakerVerification.Default
seed: 3
description: pinned
task:
  name: aam
  params: {duration: 2, min_duration: 1.5, num_classes_per_batch: 16, batches_per_epoch: 10, margin: 0.2, scale: 30}
architecture:
  name: SincTDNN
  params: {stride: 10, dimension: 64}
optimizer:
  name: SGD
  params: {lr: 0.01, momentum: 0.9, nesterov: true}
scheduler:
  name: SequentialLR
  params:
    schedulers:
      - {name: LinearLR, params: {start_factor: 0.1, total_iters: 5}}
      - {name: ExponentialLR, params: {gamma: 0.9}}
    milestones: [5]
margin_scheduler: {initial: 0, start_step: 5, end_step: 20}
augmentation:
  speed: [0.9, 1.1]
  probability: 0.5
  transforms:
    - {name: babble, snr: [13, 20], speakers: [3, 6]}
logger: csv
checkpoint: {every_n_steps: 5}
trainer: {max_epochs: 3, gradient_clip_val: 5}
"""


# ---------------------------------------------------------------- learning rate per parameter


def test_lr_multipliers_set_the_learning_rate_of_the_named_parameters(tmp_path):
    import torch

    from pyannote_embloss.models import SincTDNN
    from pyannote_embloss.config import build_scheduler
    from pyannote_embloss.training.run import parameter_groups

    config = Experiment.load(write(
        tmp_path / "exp", optimizer={"name": "AdamW", "params": {"lr": 0.002, "weight_decay": 0.0}, "lr_multipliers": {"sincnet.conv1d.0": 1000}},
        scheduler={"name": "OneCycleLR", "interval": "step", "params": {"pct_start": 0.5}},
        **{"task.params.batches_per_epoch": 10},
    )).config
    assert config.optimizer.lr_multipliers == {"sincnet.conv1d.0": 1000.0}
    assert config.to_dict()["optimizer"]["lr_multipliers"] == {"sincnet.conv1d.0": 1000.0}
    model = SincTDNN(stride=10, channels=[8, 8, 8, 8, 16], dimension=8)
    optimizer = config.optimizer.build(parameter_groups(model, config.optimizer))
    cutoffs = [model.sincnet.conv1d[0].filterbank.low_hz_, model.sincnet.conv1d[0].filterbank.band_hz_]
    (rest,) = [g for g in optimizer.param_groups if not any(p is cutoffs[0] for p in g["params"])]
    (sinc,) = [g for g in optimizer.param_groups if any(p is cutoffs[0] for p in g["params"])]
    assert sinc["lr"] == pytest.approx(2.0) and rest["lr"] == pytest.approx(0.002) and len(sinc["params"]) == 2
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))
    # the one-cycle schedule peaks at each group's own rate
    build_scheduler(config.scheduler, optimizer, total_steps=10, total_epochs=1)
    assert [g["max_lr"] for g in (sinc, rest)] == pytest.approx([2.0, 0.002])

    # one Adam step moves each parameter by about its group's rate: the cut-offs (in Hz) by 1000 times more
    before = [p.detach().clone() for p in cutoffs + [model.sincnet.conv1d[1].weight]]
    for g in optimizer.param_groups:
        g["lr"] = g["max_lr"]
    model(torch.randn(2, 1, 16000)).square().sum().backward()
    optimizer.step()
    moved = [(p.detach() - b).abs().max().item() for p, b in zip(cutoffs + [model.sincnet.conv1d[1].weight], before)]
    assert moved[0] == pytest.approx(2.0, rel=0.01) and moved[2] == pytest.approx(0.002, rel=0.01)


def test_lr_multipliers_of_no_parameter_are_refused_before_anything(tiny_protocol_yml, tmp_path):
    with pytest.raises(ConfigError, match=r"lr_multipliers.sincnet must be a number >= 0 \(got -1\)"):
        Experiment.load(write(tmp_path / "bad", **{"optimizer.lr_multipliers": {"sincnet": -1}}))
    experiment = write(tmp_path / "exp", **{"optimizer.lr_multipliers": {"sincnet.conv1d.9": 10}})
    (experiment / "checkpoints").mkdir()
    (experiment / "checkpoints" / "last.ckpt").write_text("an earlier run")
    with pytest.raises(ConfigError) as error:
        train(Experiment.load(experiment), database=str(tiny_protocol_yml), overwrite=True, progress_bar=False)
    message = str(error.value)
    assert message.startswith(f"{experiment / 'config.yml'}: optimizer.lr_multipliers: no trainable parameter of "
                              "SincTDNN is named 'sincnet.conv1d.9'") and "(did you mean 'sincnet.conv1d." in message
    assert (experiment / "checkpoints" / "last.ckpt").read_text() == "an earlier run" and not (experiment / "logs").exists()
