"""Scores a user can act on: calibration in `evaluate`, `verify`, `score`, and the PLDA for pyannote's VBx

Fast tests use the training-free log-mel statistics baseline on small
SpeechOcean762 protocols (real audio, real pyannote.database protocols), and
refusals that fail before a model is loaded. Slow tests evaluate a copy of
the session's trained experiment on SpeechOcean762 (which calibrates it and
exports its PLDA), then verify, score, and diarize with VBx.
"""

import csv
import json
import re
import shutil
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import pyannote_embloss
from pyannote_embloss.cli import app
from pyannote_embloss.errors import DataError, MissingFileError
from pyannote_embloss.evaluation.verification import TrainingEmbeddings, evaluate, training_cohort
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.inference.loading import load_model
from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.data.protocols.writer import ProtocolWriter, Utterance, make_trials, with_durations
from pyannote_embloss.evaluation.trial_list import TrialList
from pyannote_embloss.evaluation.verify import CSV_COLUMNS, Verifier, score_trial_list, verify

from helpers import PROTOCOL, run_cli
from test_pipelines import segmentation  # noqa: F401  (the fixture: a small segmentation model trained offline)

runner = CliRunner()
SMALL = "Small.SpeakerVerification.Default"

#: the training-free baseline: per-file log-mel statistics (no checkpoint)
BASELINE_CONFIG = """\
protocol: {protocol}
seed: 0
architecture:
  name: LogMelStatistics
  params: {{n_mels: 40, drop: 0.3}}
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def baseline_experiment(directory, protocol):
    directory.mkdir(parents=True)
    (directory / "config.yml").write_text(BASELINE_CONFIG.format(protocol=protocol))
    return Experiment.load(directory)


def speaker_files(corpus_root):
    by_speaker = {}
    for path in sorted((corpus_root / "WAVE").glob("*/*.*")):
        by_speaker.setdefault(path.parent.name, []).append(path)
    return by_speaker


@pytest.fixture(scope="module")
def small_yml(corpus_root, tmp_path_factory):
    """Small.SpeakerVerification.Default: 3 files of 6 training speakers (whole), of 3 development and 3 test speakers (1.8 s)"""
    by_speaker = speaker_files(corpus_root)
    speakers = sorted(by_speaker)[20:32]
    writer, subsets = ProtocolWriter(tmp_path_factory.mktemp("small"), "Small"), {"train": "train"}
    writer.add_subset("train", with_durations([Utterance(f"{s}/{p.stem}", s, p) for s in speakers[:6] for p in by_speaker[s][:3]], progress=False))
    for subset, chosen in (("development", speakers[6:9]), ("test", speakers[9:])):
        files = [Utterance(f"{s}/{p.stem}", s, p, start=0.2, end=2.0) for s in chosen for p in by_speaker[s][:3]]
        writer.add_subset(subset, with_durations(files, progress=False))
        writer.add_trials(subset, make_trials(files, seed=subset))
        subsets[subset] = (subset, subset)
    writer.add_protocol("SpeakerVerification", "Default", **subsets)
    return writer.write()


@pytest.fixture(scope="module")
def calibrated_baseline(small_yml, tmp_path_factory):
    """The baseline evaluated on Small's test trials: calibrated on its development trials, PLDA exported"""
    experiment = baseline_experiment(tmp_path_factory.mktemp("calibrated") / "baseline", SMALL)
    results = evaluate(experiment, database=str(small_yml), progress=False)
    return experiment, results


# --- trial lists ----------------------------------------------------------------------------


def test_trial_list_reads_both_formats_with_paths_relative_to_its_folder(corpus_root, tmp_path):
    first, second = list(speaker_files(corpus_root).values())[:2]
    a, b, c = first[0], first[1], second[0]
    (tmp_path / "audio").mkdir()
    shutil.copy(a, tmp_path / "audio" / a.name)
    trials = tmp_path / "lists" / "trials.txt"
    trials.parent.mkdir()
    trials.write_text(f"1 ../audio/{a.name} {b}\n\n0 {b}   {c}\n../audio/{a.name}\t{c}\n")
    trial_list = TrialList.read(trials)
    assert trial_list.pairs == [(f"../audio/{a.name}", str(b)), (str(b), str(c)), (f"../audio/{a.name}", str(c))]
    assert trial_list.labels == [1, 0, None] and trial_list.lines == [1, 3, 4]
    assert trial_list.files == [trials.parent / "../audio" / a.name, b, c]  # each file once
    assert trial_list.index1.tolist() == [0, 1, 0] and trial_list.index2.tolist() == [1, 2, 2]
    trial_list.check_audio()


@pytest.mark.parametrize(
    "line", ["1 a.wav", "2 a.wav b.wav", "a.wav b.wav c.wav d.wav", "same a.wav b.wav"]
)
def test_score_refuses_a_malformed_line_naming_it_and_writes_nothing(line, corpus_root, tmp_path):
    good = next((corpus_root / "WAVE").glob("*/*.*"))
    trials = tmp_path / "trials.txt"
    trials.write_text(f"1 {good} {good}\n{line}\n")
    output = tmp_path / "scores.csv"
    # the experiment is not even read: the list is checked first
    result = invoke("score", tmp_path / "no-experiment", trials, "-o", output)
    assert result.exit_code == 2, result.output
    assert f"{trials}, line 2" in result.output and line.split()[0] in result.output
    assert not output.exists()


def test_score_refuses_a_missing_audio_file_naming_it_and_its_line(corpus_root, tmp_path):
    good = next((corpus_root / "WAVE").glob("*/*.*"))
    trials = tmp_path / "trials.txt"
    trials.write_text(f"1 {good} {good}\n0 {good} missing/nowhere.wav\n")
    output = tmp_path / "scores.csv"
    result = invoke("score", tmp_path / "no-experiment", trials, "-o", output)
    assert result.exit_code == 2
    assert f"{trials}, line 2: audio file '{tmp_path / 'missing' / 'nowhere.wav'}' does not exist" in result.output
    assert not output.exists()
    with pytest.raises(MissingFileError, match="Trial list"):
        TrialList.read(tmp_path / "no-such-list.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="has no trial"):
        TrialList.read(tmp_path / "empty.txt")


def test_verify_refuses_a_missing_file_and_an_experiment_without_calibration(corpus_root, tmp_path):
    good = next((corpus_root / "WAVE").glob("*/*.*"))
    experiment = baseline_experiment(tmp_path / "baseline", PROTOCOL).directory
    result = invoke("verify", experiment, good, tmp_path / "missing.wav")
    assert result.exit_code == 2 and f"Audio file '{tmp_path / 'missing.wav'}' does not exist" in result.output
    # never evaluated: say how to get a calibration
    result = invoke("verify", experiment, good, good)
    assert result.exit_code == 2
    assert f"run `pyannote-audio-emb evaluate {experiment} --subset test`" in result.output
    trials = tmp_path / "trials.txt"
    trials.write_text(f"{good} {good}\n")
    result = invoke("score", experiment, trials, "-o", tmp_path / "scores.csv")
    assert result.exit_code == 2 and "No score calibration" in result.output
    assert not (tmp_path / "scores.csv").exists()
    # a model that does not come from an experiment has no calibration to use
    model = pyannote_embloss.load(load_model(experiment), window="whole")
    with pytest.raises(DataError, match="verify needs the calibration of an experiment"):
        model.verify(good, good)


# --- evaluate: the training embeddings, the calibration ---------------------------------------


def test_training_embeddings_give_the_cohort_training_cohort_embeds(tiny_protocol_yml, tmp_path):
    protocol = get_protocol("Tiny.SpeakerVerification.Default", database_yml=tiny_protocol_yml)
    model = load_model(baseline_experiment(tmp_path / "baseline", "Tiny.SpeakerVerification.Default"))
    training = TrainingEmbeddings.of(model, protocol, progress=False)
    assert len(training.speakers) == 12 and len(set(training.speakers)) == 4
    for files_per_speaker in (2, None):
        expected = training_cohort(model, protocol, files_per_speaker, progress=False)
        cohort = training.cohort(files_per_speaker)
        np.testing.assert_array_equal(cohort.speakers, expected.speakers)
        np.testing.assert_array_equal(cohort.mean, expected.mean)


def test_evaluation_without_development_trials_notes_it_and_verify_says_why(tiny_protocol_yml, tmp_path, corpus_root):
    experiment = baseline_experiment(tmp_path / "baseline", "Tiny.SpeakerVerification.Default")
    with pytest.warns(UserWarning, match="No score calibration"):
        results = evaluate(experiment, database=str(tiny_protocol_yml), progress=False)
    saved = json.loads((experiment.results / "Tiny.SpeakerVerification.Default.test.json").read_text())
    assert saved["calibration"] is None and "no development subset" in saved["calibration_note"]
    assert "cllr" not in saved and "calibration" not in saved["normalized"]["plda"]
    # the PLDA is fitted anyway (4 speakers: 3 LDA dimensions) and exported for VBx
    assert results["plda"]["lda_dimension"] == 3 and "eer" in saved["normalized"]["plda"]
    plda = experiment.results / "Tiny.SpeakerVerification.Default.plda"
    assert sorted(p.name for p in plda.iterdir()) == ["plda.npz", "xvec_transform.npz"]
    good = next((corpus_root / "WAVE").glob("*/*.*"))
    result = invoke("verify", experiment.directory, good, good)
    assert result.exit_code == 2
    assert "has no score calibration" in result.output and "no development subset" in result.output


def test_calibrated_baseline_verifies_and_scores_as_the_library(calibrated_baseline, small_yml, tmp_path):
    experiment, results = calibrated_baseline
    # calibrated on the 3 development speakers, reported on the 3 test speakers, for each scoring
    assert results["calibration_trials"]["subset"] == "development"
    for metrics in [results, *results["normalized"].values()]:
        assert set(metrics["far"]) == {"0.01", "0.001"} and metrics["act_dcf_0.01"] >= metrics["min_dcf_0.01"] - 1e-12
        assert metrics["min_cllr"] <= metrics["cllr"] + 1e-12
    assert set(results["normalized"]) == {"mean", "asnorm", "plda"}
    assert results["normalized"]["plda"]["calibration"]["scoring"] == "plda"

    protocol = get_protocol(SMALL, database_yml=small_yml)
    files = [(file["annotation"].labels()[0], str(file["audio"])) for file in protocol.test()]
    (s1, a), (_, b), (s3, c) = files[0], files[1], files[-1]
    assert files[1][0] == s1 != s3
    verdict = verify(experiment.directory, a, b)
    calibration = results["calibration"]
    assert verdict.llr == pytest.approx(calibration["slope"] * verdict.score + calibration["offset"])
    assert verdict.same_speaker == (verdict.score >= calibration["thresholds"]["0.01"])
    # the loaded model decides the same; a prior moves the threshold to the Bayes one
    model = pyannote_embloss.load(experiment.directory, window="whole")  # (training-free: no default window)
    assert model.verify(a, b) == verdict
    at_prior = model.verify(a, b, prior=0.01)
    assert at_prior.same_speaker == (at_prior.llr >= np.log(99.0))

    trials = tmp_path / "trials.txt"
    trials.write_text(f"1 {a} {b}\n0 {a} {c}\n{b} {c}\n")
    summary = score_trial_list(experiment.directory, trials, tmp_path / "scores.csv", progress=False)
    assert summary["num_trials"] == 3 and summary["num_files"] == 3
    assert "far" not in summary  # the last trial has no label
    rows = list(csv.reader((tmp_path / "scores.csv").open()))
    assert tuple(rows[0]) == CSV_COLUMNS and [r[:2] for r in rows[1:]] == [[a, b], [a, c], [b, c]]
    assert float(rows[1][2]) == pytest.approx(verdict.score) and int(rows[1][4]) == verdict.same_speaker
    # PLDA scores, calibrated on their own
    plda = Verifier.from_experiment(experiment.directory, scoring="plda", far=0.001).verify(a, b)
    assert plda.llr == pytest.approx(
        results["normalized"]["plda"]["calibration"]["slope"] * plda.score
        + results["normalized"]["plda"]["calibration"]["offset"]
    )


def test_operating_points_and_scorings_that_cannot_be_used_are_refused(calibrated_baseline, small_yml):
    experiment, _ = calibrated_baseline
    protocol = get_protocol(SMALL, database_yml=small_yml)
    a = str(next(iter(protocol.test()))["audio"])
    for options, message in [
        (["--far", "0.05"], "no threshold for FAR 0.05"),
        (["--far", "2"], r"must be in \]0, 1\["),
        (["--far", "0.01", "--prior", "0.01"], "not both"),
        (["--scoring", "asnorm"], "not 'asnorm'"),
    ]:
        result = invoke("verify", experiment.directory, a, a, *options)
        assert result.exit_code == 2, result.output
        assert re.search(message, result.output), result.output


# --- the session's trained experiment, evaluated (slow) -----------------------------------------


@pytest.fixture(scope="module")
def evaluated(trained_experiment, speechocean762_yml, tmp_path_factory):
    """A copy of the session's trained experiment, evaluated on SpeechOcean762's test trials (CLI)"""
    experiment = tmp_path_factory.mktemp("evaluated") / "experiment"
    shutil.copytree(trained_experiment, experiment)  # (copy2: the checkpoint keeps its time)
    result = run_cli("evaluate", experiment, "--database", speechocean762_yml, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((experiment / "results" / f"{PROTOCOL}.test.json").read_text())
    return experiment, results, result.stdout


def test_evaluate_reports_calibrated_figures_beside_the_minimum_ones(evaluated):
    experiment, results, stdout = evaluated
    print(stdout)
    assert results["calibration_trials"] == {"subset": "development", "num_trials": 2 * 25 * 45, "num_files": 250}
    assert results["calibration"]["num_target"] == 25 * 45
    assert results["plda"]["lda_dimension"] == 124 and results["plda"]["num_speakers"] == 125
    assert results["plda"]["num_utterances"] == 1250
    for name, metrics in {"cosine": results, **results["normalized"]}.items():
        assert metrics["calibration"]["scoring"] == name
        assert 0.0 < metrics["min_cllr"] <= metrics["cllr"] < 1.0, name  # calibrated: better than no information
        assert metrics["min_dcf_0.01"] <= metrics["act_dcf_0.01"] <= 1.5, name
        assert metrics["far"]["0.001"]["threshold"] > metrics["far"]["0.01"]["threshold"]
    assert "Cllr" in stdout and "actDCF(0.01)" in stdout and "threshold for FAR 1 %" in stdout and "PLDA" in stdout


def test_threshold_picked_on_development_trials_for_far_1_percent_gives_about_1_percent_on_test(evaluated):
    # the acceptance: between 0.5 % and 2 % on SpeechOcean762 (4,500 non-target test trials)
    _, results, _ = evaluated
    measured = {name: m["far"]["0.01"]["far"] for name, m in {"cosine": results, **results["normalized"]}.items()}
    print("test FAR at the development threshold for FAR 1 %:", {k: f"{100 * v:.2f} %" for k, v in measured.items()})
    assert 0.005 <= measured["cosine"] <= 0.02


def test_verify_and_score_with_the_trained_experiment(evaluated, speechocean762_yml, tmp_path):
    from pyannote_embloss.inference.embedding import embed_files
    from pyannote_embloss.evaluation.scoring import cosine_scores

    experiment, results, _ = evaluated
    protocol = get_protocol(PROTOCOL, database_yml=speechocean762_yml)
    by_speaker = {}
    for file in protocol.test():
        by_speaker.setdefault(file["annotation"].labels()[0], []).append(str(file["audio"]))
    paths = [path for speaker in sorted(by_speaker)[:6] for path in sorted(by_speaker[speaker])[:4]]
    speakers = np.repeat(np.arange(6), 4)
    # the most alike same-speaker pair and the least alike different-speaker pair of 24 files,
    # by an independent computation (embed_files, cosine)
    embeddings = embed_files(pyannote_embloss.load(experiment).model, paths, progress=False)
    i, j = np.triu_indices(len(paths), k=1)
    scores = cosine_scores(embeddings, i, j)
    same = speakers[i] == speakers[j]
    pairs = [int(np.flatnonzero(same)[np.argmax(scores[same])]), int(np.flatnonzero(~same)[np.argmin(scores[~same])])]
    calibration = results["calibration"]

    verdicts = []
    for k in pairs:
        result = run_cli("verify", experiment, paths[i[k]], paths[j[k]])
        assert result.returncode == 0, result.stderr[-3000:]
        printed = re.search(r"score = (\S+) \(cosine\)  llr = (\S+)  decision: (.*)", result.stdout)
        assert printed, result.stdout
        assert float(printed[1]) == pytest.approx(scores[k], abs=1e-4)
        assert float(printed[2]) == pytest.approx(calibration["slope"] * scores[k] + calibration["offset"], abs=1e-3)
        accept = scores[k] >= calibration["thresholds"]["0.01"]
        assert printed[3] == ("same speaker" if accept else "different speakers")
        verdicts.append(pyannote_embloss.load(experiment).verify(paths[i[k]], paths[j[k]]))  # the library
        assert verdicts[-1].llr == pytest.approx(float(printed[2]), abs=1e-3) and verdicts[-1].same_speaker == accept
    assert verdicts[0].llr > verdicts[1].llr and not verdicts[1].same_speaker
    print(f"same speaker: {verdicts[0]}; different speakers: {verdicts[1]}")

    trials = tmp_path / "trials.txt"
    trials.write_text("".join(f"{int(same[k])} {paths[i[k]]} {paths[j[k]]}\n" for k in pairs))
    output = tmp_path / "scores.csv"
    result = run_cli("score", experiment, trials, "-o", output, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 trials (4 files) scored at FAR 0.01" in result.stdout and "with the list's labels: FAR" in result.stdout
    rows = list(csv.DictReader(output.open()))
    assert [int(row["decision"]) for row in rows] == [int(v.same_speaker) for v in verdicts]
    assert [float(row["llr"]) for row in rows] == pytest.approx([v.llr for v in verdicts], abs=1e-6)


def test_a_checkpoint_newer_than_its_calibration_is_refused(evaluated, tmp_path):
    experiment, _, _ = evaluated
    copy = tmp_path / "copy"
    shutil.copytree(experiment, copy)
    (copy / "checkpoints" / "best.ckpt").touch()  # as if trained again
    with pytest.raises(DataError, match="written after its calibration"):
        Verifier.from_experiment(copy)


def test_exported_plda_runs_pyannote_vbx_through_diarize_and_oracle_der(evaluated, segmentation, tmp_path):  # noqa: F811
    from pyannote.database.util import load_rttm

    from pyannote_embloss.pipelines import SpeakerDiarization, sample_file

    experiment, results, _ = evaluated
    plda = results["plda"]["directory"]
    checkpoint = experiment / "checkpoints" / "best.ckpt"
    pipeline = SpeakerDiarization(embedding=checkpoint, segmentation=segmentation, plda=plda)
    assert type(pipeline.clustering).__name__ == "VBxClustering"
    assert pipeline.clustering.plda.phi.shape == (124,)

    rttm = tmp_path / "sample.rttm"
    result = run_cli("diarize", checkpoint, sample_file()["audio"], "--segmentation", segmentation, "--plda", plda,
                     "--output", rttm)
    assert result.returncode == 0, result.stderr[-3000:]
    diarization = load_rttm(rttm)["sample"]
    assert len(diarization.labels()) >= 1 and diarization.get_timeline().duration() > 15.0

    output = tmp_path / "oracle.json"
    result = run_cli("oracle-der", checkpoint, "--plda", plda, "--output", output)
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    report = json.loads(output.read_text())
    assert 0.0 <= report["der"] <= 1.0 and 0.0 <= report["vbx"]["der"] <= 1.0 and 0.0 <= report["vbx"]["der_own"] <= 1.0
    assert report["files"][0]["num_clusters_vbx_own"] >= 1
    assert f"oracle DER = {100 * report['der']:.1f} % with AHC, {100 * report['vbx']['der']:.1f} % with VBx" in result.stdout
    # a PLDA of another embedding space is refused, naming both dimensions
    other = tmp_path / "other"
    shutil.copytree(plda, other)
    with np.load(other / "xvec_transform.npz") as npz:
        arrays = dict(npz)
    np.savez(other / "xvec_transform.npz", mean1=arrays["mean1"][:64], mean2=arrays["mean2"], lda=arrays["lda"][:64])
    result = run_cli("diarize", checkpoint, sample_file()["audio"], "--segmentation", segmentation, "--plda", other)
    assert result.returncode == 2 and "64-dimensional embeddings, not the 128-dimensional" in result.stderr


def test_verify_warns_about_a_very_short_file_and_still_decides(calibrated_baseline, small_yml, tmp_path):
    """Issue 34: a 0.05 s file was scored without a word"""
    from torchcodec.encoders import AudioEncoder

    experiment, _ = calibrated_baseline
    protocol = get_protocol(SMALL, database_yml=small_yml)
    a = str(next(iter(protocol.test()))["audio"])
    short = tmp_path / "short.wav"
    AudioEncoder(0.1 * torch.randn(1, 800), sample_rate=16000).to_file(str(short))  # 0.05 s
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke("verify", experiment.directory, a, short)
    assert result.exit_code == 0, result.output
    assert f"Warning: '{short}' lasts 0.05 s: below 0.5 s a speaker embedding is unreliable" in result.output
    assert not [line for line in result.output.splitlines() if line.startswith("Error")]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # verify writes nothing
    quiet = invoke("verify", experiment.directory, a, a)
    assert quiet.exit_code == 0 and "Warning" not in quiet.output
