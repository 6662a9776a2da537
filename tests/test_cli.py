"""Bad inputs get one clear error line (exit code 2) and lose nothing"""

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pyannote_embloss.data.audio import AudioDecodingError, load_audio
from pyannote_embloss.cli import app
from pyannote_embloss.inference.embedding import embed_files
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.models import SincTDNN
from pyannote_embloss.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_missing_corpus_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PYANNOTE_EMBLOSS_SPEECHOCEAN762", raising=False)
    missing = tmp_path / "nowhere"
    result = invoke("prepare", "speechocean762", "--root", missing, "--output", tmp_path / "out")
    assert result.exit_code == 2
    assert str(missing) in result.output
    assert "--download" in result.output
    assert not (tmp_path / "out" / "database.yml").exists()


def test_unknown_corpus_lists_known_ones(tmp_path):
    result = invoke("prepare", "voxceleb9", "--output", tmp_path)
    assert result.exit_code == 2
    assert "Unknown corpus 'voxceleb9'" in result.output and "speechocean762" in result.output


def write_config(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yml").write_text(text)
    return directory


def test_unknown_task_name_lists_known_tasks(tmp_path):
    config = (REPO / "experiments" / "aam" / "config.yml").read_text().replace("name: aam", "name: arcface")
    experiment = write_config(tmp_path / "exp", config)
    result = invoke("train", experiment)
    assert result.exit_code == 2
    assert "Unknown task 'arcface'" in result.output
    assert f"Known tasks: {', '.join(TASKS)}." in result.output
    assert str(experiment / "config.yml") in result.output
    assert not (experiment / "checkpoints").exists()


def test_config_that_is_not_yaml_names_the_file(tmp_path):
    experiment = write_config(tmp_path / "exp", "task:\n  name: aam\n  params: {duration: 2.0\n")
    result = invoke("train", experiment)
    assert result.exit_code == 2
    assert f"{experiment / 'config.yml'} is not valid YAML" in result.output
    assert "line" in result.output


def test_missing_config_says_what_to_create(tmp_path):
    result = invoke("evaluate", tmp_path)
    assert result.exit_code == 2
    assert "No config.yml" in result.output and "experiments/aam/config.yml" in result.output


@pytest.mark.parametrize(
    "bad, message",
    [
        ("architecture:\n  name: ResNet34\n", "Unknown architecture 'ResNet34'"),
        ("optimizer:\n  name: Adamm\n", "unknown optimizer 'Adamm'"),
        ("trainer_: {}\n", "unknown section 'trainer_' (did you mean 'trainer'?)"),
    ],
)
def test_other_config_errors(tmp_path, bad, message):
    experiment = write_config(tmp_path / "exp", "task:\n  name: aam\n" + bad)
    result = invoke("train", experiment)
    assert result.exit_code == 2
    assert message in result.output


def test_invalid_task_parameter_is_reported(tmp_path, speechocean762_yml):
    experiment = write_config(tmp_path / "exp", "task:\n  name: aam\n  params: {margin_deg: 3}\n")
    result = invoke("train", experiment, "SpeechOcean762.SpeakerVerification.Default", "--database", speechocean762_yml)
    assert result.exit_code == 2
    assert "unknown key 'margin_deg' in task.params of 'aam' (did you mean 'margin'?)" in result.output


def test_unknown_protocol_lists_known_ones(tmp_path, speechocean762_yml):
    experiment = write_config(tmp_path / "exp", "task:\n  name: aam\n")
    result = invoke("train", experiment, "VoxCeleb.SpeakerVerification.VoxCeleb1", "--database", speechocean762_yml)
    assert result.exit_code == 2
    assert "Unknown protocol 'VoxCeleb.SpeakerVerification.VoxCeleb1'" in result.output
    assert "SpeechOcean762.SpeakerVerification.Default" in result.output


def test_every_experiment_config_loads():
    for config in sorted((REPO / "experiments").glob("*/config.yml")):
        experiment = Experiment.load(config.parent)
        assert experiment.protocol_name() == "SpeechOcean762.SpeakerVerification.Default"


def test_audio_that_does_not_decode_names_the_file(tmp_path, corpus_root):
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    good = next((corpus_root / "WAVE").glob("*/*.*"))
    model = SincTDNN(stride=10, dimension=16)
    with pytest.raises(AudioDecodingError, match=f"'{corrupt}'"):
        embed_files(model, [good, corrupt], progress=False)
    with pytest.raises(AudioDecodingError, match="missing.wav"):
        load_audio(model.audio, str(tmp_path / "missing.wav"))
    # the corpus file itself is untouched and still decodes
    assert load_audio(model.audio, str(good)).shape[1] > 16000


def test_evaluate_without_checkpoint_says_to_train(tmp_path):
    experiment = tmp_path / "aam"
    shutil.copytree(REPO / "experiments" / "aam", experiment, ignore=shutil.ignore_patterns("checkpoints", "results", "logs", "training.json"))
    result = invoke("evaluate", experiment)
    assert result.exit_code == 2
    assert "train first" in result.output and "pyannote-audio-emb train" in result.output
