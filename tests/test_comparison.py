"""`pyannote-audio-emb compare`: same trials for every experiment, tables and DET plot"""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from helpers import run_cli, trained_from_cli

from pyannote_embloss.data.protocols.writer import ProtocolWriter, Utterance, escape_template, make_trials, with_durations


@pytest.fixture(scope="module")
def mini_trained(mini_yml, tmp_path_factory):
    """TINY_CONFIG trained on the Mini protocol (seconds)"""
    return trained_from_cli(tmp_path_factory.mktemp("mini-trained"), TINY_CONFIG, mini_yml)


@pytest.mark.slow
def test_compare_writes_tables_and_det_plot(mini_trained, mini_yml, tmp_path):
    # two trained "losses": one experiment under two names, on the Mini protocol (150 files of 15
    # speakers: the tables are the point here, not SpeechOcean762's 2,500 files)
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(mini_trained, first)
    shutil.copytree(mini_trained, second)
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(mini_trained / "config.yml", untrained / "config.yml")
    output = tmp_path / "comparison"

    def compare(*experiments):
        return run_cli(
            "compare", *experiments, "Mini.SpeakerVerification.Default", "--no-train", "--no-progress",
            "--database", mini_yml, "--output", output,
        )

    # --no-train refuses an untrained experiment, and writes nothing
    result = compare(first, untrained)
    assert result.returncode == 2 and "is not trained" in result.stderr
    assert not output.exists()

    result = compare(first, second)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = list(csv.DictReader((output / "comparison.csv").open()))
    # the training-free baseline is always compared with the trained systems
    assert [row["system"] for row in rows] == ["first", "second", "baseline (no training)"]
    assert 0.0 < float(rows[2]["eer"]) < 50.0 and rows[2]["eer"] != rows[0]["eer"]
    # same checkpoint, same trials: same EER, inside its confidence interval
    assert rows[0]["eer"] == rows[1]["eer"]
    assert float(rows[0]["eer_low"]) <= float(rows[0]["eer"]) <= float(rows[0]["eer_high"])
    summary = json.loads((mini_trained / "training.json").read_text())
    assert int(rows[0]["loss_parameters"]) == summary["loss_parameters"]
    assert int(rows[0]["epochs"]) == summary["epochs"]
    markdown = (output / "comparison.md").read_text()
    assert "| first |" in markdown and "EER (%)" in markdown
    assert (output / "comparison.det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((output / "comparison.json").read_text())
    assert report["rows"][0]["eer"] == report["runs"]["first"][0]["eer"]
    assert report["runs"]["first"][0]["num_trials"] == len((mini_yml.parent / "test.trial").read_text().splitlines())


#: a tiny experiment for a fast multi-seed comparison (seconds of training)
TINY_CONFIG = """\
protocol: Mini.SpeakerVerification.Default
seed: 0
task:
  name: aam
  params: {duration: 1.0, num_classes_per_batch: 8, num_chunks_per_class: 2, batches_per_epoch: 4, num_workers: 0}
architecture:
  name: SincTDNN
  params: {stride: 10, channels: [32, 32, 32, 32, 64], dimension: 32}
optimizer:
  name: Adam
  params: {lr: 0.003}
trainer:
  max_epochs: 2
"""


@pytest.fixture(scope="module")
def mini_yml(corpus_root, tmp_path_factory):
    """Mini.SpeakerVerification.Default: 8 training, 3 development and 4 test speakers of SpeechOcean762"""
    by_speaker = {}
    for path in sorted((corpus_root / "WAVE").glob("*/*.flac")):
        by_speaker.setdefault(path.parent.name, []).append(path)
    speakers = sorted(by_speaker)[:15]
    utterances = with_durations(
        [Utterance(f"{s}/{p.stem}", s, p) for s in speakers for p in by_speaker[s]], progress=False
    )
    subsets = {"train": speakers[:8], "development": speakers[8:11], "test": speakers[11:]}
    writer = ProtocolWriter(
        tmp_path_factory.mktemp("mini"), "Mini", f"{escape_template(corpus_root / 'WAVE')}/{{uri}}.flac"
    )
    for subset, chosen in subsets.items():
        files = [u for u in utterances if u.speaker in chosen]
        writer.add_subset(subset, files)
        if subset != "train":
            writer.add_trials(subset, make_trials(files, seed=subset))
    writer.add_protocol(
        "SpeakerVerification", "Default", train="train",
        development=("development", "development"), test=("test", "test"),
    )
    return writer.write()


@pytest.mark.slow
def test_compare_with_seeds_and_conditions(mini_yml, tmp_path):
    experiment = tmp_path / "tiny"
    experiment.mkdir()
    (experiment / "config.yml").write_text(TINY_CONFIG)
    output = tmp_path / "comparison"

    def compare(*options):
        return run_cli(
            "compare", experiment, "--seeds", "2", "--condition", "colored:10", "--condition", "reverb",
            "--no-progress", "--database", mini_yml, "--output", output, *options,
        )

    result = compare()
    assert result.returncode == 0, result.stderr[-3000:]

    # seeds are independent: seed 1 trained in its own directory, into other weights
    first = torch.load(experiment / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    second = torch.load(experiment / "seeds" / "1" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert first["state_dict"].keys() == second["state_dict"].keys()
    assert any(not torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"])
    assert json.loads((experiment / "seeds" / "1" / "training.json").read_text())["seed"] == 1

    rows = {row["system"]: row for row in csv.DictReader((output / "comparison.csv").open())}
    assert list(rows) == ["tiny", "baseline (no training)"]
    report = json.loads((output / "comparison.json").read_text())
    tiny, baseline = rows["tiny"], rows["baseline (no training)"]
    assert tiny["seeds"] == "2"
    # mean ± std over the seeds, per condition, with the degradation from clean
    for condition in (None, "colored:10", "reverb"):
        column = "eer" if condition is None else f"eer[{condition}]"
        values = [
            run["eer"] if condition is None else run["conditions"][condition]["eer"] for run in report["runs"]["tiny"]
        ]
        assert float(tiny[column]) == pytest.approx(np.mean(values))
        assert float(tiny[f"{column}_std"]) == pytest.approx(np.std(values, ddof=1))
    # the two seeds were scored separately: their figures differ somewhere. One EER alone can tie between
    # two near-random tiny models (180 trials of each class: a tie of 91/180 failed this on another CPU).
    figures = [
        [run["eer"], run["min_dcf_0.01"]] + [c[k] for c in run["conditions"].values() for k in ("eer", "min_dcf_0.01")]
        for run in report["runs"]["tiny"]
    ]
    assert figures[0] != figures[1]
    for condition in ("colored:10", "reverb"):
        for row in (tiny, baseline):
            assert float(row[f"degradation[{condition}]"]) == pytest.approx(
                float(row[f"eer[{condition}]"]) / float(row["eer"]) - 1.0
            )
    # the gap of the other system to the best one, clean and per condition, with its interval
    best, other = sorted([tiny, baseline], key=lambda row: float(row["eer"]))
    assert best["vs_best"] == best["vs_best[reverb]"] == "best"
    for suffix in ("", "[colored:10]", "[reverb]"):
        low, gap, high = (float(other[f"eer_gap{suffix}{part}"]) for part in ("_low", "", "_high"))
        assert low <= gap <= high
        assert other[f"vs_best{suffix}"] == ("significant" if low > 0 or high < 0 else "not significant")
    assert float(other["eer_gap[reverb]"]) == pytest.approx(
        float(other["eer[reverb]"]) - float(best["eer[reverb]"])
    )
    for name in ("comparison.det.png", "comparison.colored_10.det.png", "comparison.reverb.det.png",
                 "comparison.snr.png"):
        assert (output / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    # done work is not done again: the same table, from the saved evaluations
    saved = sorted(experiment.rglob("*.comparison.npz"))
    assert len(saved) == 2
    mtimes = [path.stat().st_mtime_ns for path in saved]
    table = (output / "comparison.csv").read_text()
    result = compare("--no-train")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [path.stat().st_mtime_ns for path in saved] == mtimes
    assert (output / "comparison.csv").read_text() == table

    # a seed run is an experiment of its own: its config.yml (the experiment's, with its seed) lets evaluate load it
    seed_run = experiment / "seeds" / "1"
    assert yaml.safe_load((seed_run / "config.yml").read_text()) == {**yaml.safe_load(TINY_CONFIG), "seed": 1}
    result = run_cli("evaluate", seed_run, "--no-progress", "--database", mini_yml)
    assert result.returncode == 0, result.stderr[-3000:]
    path = result.stdout.split("results: ")[1].splitlines()[0]
    assert json.loads(open(path).read())["eer"] == report["runs"]["tiny"][1]["eer"]  # the checkpoint compare scored


def cheapest_config(description: str, lr: float) -> str:
    """TINY_CONFIG at its cheapest: 2 steps on Tiny.SpeakerVerification.Default (4 training speakers, no validation)"""
    config = yaml.safe_load(TINY_CONFIG)
    config.update(protocol="Tiny.SpeakerVerification.Default", description=description, trainer={"max_epochs": 1})
    config["task"]["params"].update(batches_per_epoch=2, num_classes_per_batch=4)  # Tiny's 4 training speakers
    config["optimizer"]["params"]["lr"] = lr
    return yaml.safe_dump(config, sort_keys=False)


@pytest.mark.slow
def test_compare_retrains_an_experiment_whose_config_changed(tiny_protocol_yml, tmp_path):
    experiment = tmp_path / "cheapest"
    experiment.mkdir()
    config, summary = experiment / "config.yml", experiment / "training.json"
    checkpoint = experiment / "checkpoints" / "best.ckpt"

    def compare(*options):
        return run_cli("compare", experiment, "--no-progress", "--database", tiny_protocol_yml,
                       "--output", tmp_path / "comparison", *options)

    config.write_text(cheapest_config("first", 0.003))
    result = compare()
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads(summary.read_text())
    assert trained["config"]["optimizer"]["params"]["lr"] == 0.003 and len(trained["config_hash"]) == 64
    mtime = checkpoint.stat().st_mtime_ns

    # a section that does not change training: the run is reused
    config.write_text(cheapest_config("same training, other words", 0.003))
    result = compare()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "changed" not in result.stderr and checkpoint.stat().st_mtime_ns == mtime

    # a run trained before runs recorded their config is reused, saying so
    summary.write_text(json.dumps({k: v for k, v in trained.items() if k not in ("config", "config_hash")}))
    result = compare()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained before runs recorded their config" in result.stderr and checkpoint.stat().st_mtime_ns == mtime
    summary.write_text(json.dumps(trained))

    # another learning rate: --no-train refuses the stale run, compare trains it again and says why
    config.write_text(cheapest_config("first", 0.001))
    result = compare("--no-train")
    assert result.returncode == 2 and "its config changed since it was trained" in result.stderr
    result = compare()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "its config changed since it was trained (optimizer.params.lr): training it again." in result.stderr
    retrained = json.loads(summary.read_text())
    assert retrained["config"]["optimizer"]["params"]["lr"] == 0.001
    assert retrained["config_hash"] != trained["config_hash"]
    assert checkpoint.stat().st_mtime_ns != mtime
