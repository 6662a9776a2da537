"""`pyannote-audio-emb compare`: same trials for every experiment, tables and DET plot"""

import csv
import json
import shutil

from helpers import PROTOCOL, run_cli


def test_compare_writes_tables_and_det_plot(trained_experiment, speechocean762_yml, tmp_path):
    # two trained "losses": the session's experiment under two names
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(trained_experiment, first)
    shutil.copytree(trained_experiment, second)
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    shutil.copy(trained_experiment / "config.yml", untrained / "config.yml")
    output = tmp_path / "comparison"

    def compare(*experiments):
        return run_cli(
            "compare", *experiments, PROTOCOL, "--no-train", "--no-progress",
            "--database", speechocean762_yml, "--output", output,
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
    summary = json.loads((trained_experiment / "training.json").read_text())
    assert int(rows[0]["loss_parameters"]) == summary["loss_parameters"]
    assert int(rows[0]["epochs"]) == summary["epochs"]
    markdown = (output / "comparison.md").read_text()
    assert "| first |" in markdown and "EER (%)" in markdown
    assert (output / "comparison.det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = json.loads((output / "comparison.json").read_text())
    assert report["rows"][0]["eer"] == report["runs"]["first"][0]["eer"]
    assert report["runs"]["first"][0]["num_trials"] == 9000
