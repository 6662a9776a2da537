"""Your own speakers: a folder tree, a Kaldi data directory and a CSV/JSON-lines manifest become protocols

Miniature corpora are made here from SpeechOcean762 audio, with 8 kHz, stereo
and MP3 copies among the files.
"""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio
from pyannote.audio.core.io import Audio
from torchcodec.encoders import AudioEncoder
from typer.testing import CliRunner

from pyannote_embloss.cli import app
from pyannote_embloss.errors import ConfigError, DataError, MissingFileError
from pyannote_embloss.data.protocols import database_ymls, get_protocol, load_registry, prepare_corpus, register
from pyannote_embloss.data.protocols.own_data import parse_split, split_speakers

runner = CliRunner()
PROTOCOL = "Mini.SpeakerVerification.Default"
OUTPUTS = ("database.yml", "train.lst", "train.rttm", "test.trial", "development.trial", "audio")


def make_tree(corpus_root: Path, tree: Path, num_speakers: int = 12, per_speaker: int = 4) -> Path:
    """`tree`/<speaker>/<utterance>: FLAC copies, and 8 kHz WAV, stereo WAV and MP3 conversions"""
    audio = Audio(sample_rate=16000, mono="downmix")
    speakers = sorted(p for p in (corpus_root / "WAVE").iterdir() if p.is_dir())[:num_speakers]
    for s, speaker in enumerate(speakers):
        (tree / speaker.name).mkdir(parents=True)
        for u, path in enumerate(sorted(speaker.glob("*.flac"))[:per_speaker]):
            kind, target = (s * per_speaker + u) % 6, tree / speaker.name / path.stem
            if kind > 2:
                shutil.copy(path, target.with_suffix(".flac"))
                continue
            waveform, _ = audio({"audio": str(path)})
            if kind == 0:  # 8 kHz
                AudioEncoder(torchaudio.functional.resample(waveform, 16000, 8000), sample_rate=8000).to_file(
                    str(target.with_suffix(".wav"))
                )
            elif kind == 1:  # stereo
                AudioEncoder(torch.cat([waveform, 0.5 * waveform]), sample_rate=16000).to_file(
                    str(target.with_suffix(".wav"))
                )
            else:
                AudioEncoder(waveform, sample_rate=16000).to_file(str(target.with_suffix(".mp3")))
    return tree


@pytest.fixture(scope="module")
def tree(corpus_root, tmp_path_factory) -> Path:
    return make_tree(corpus_root, tmp_path_factory.mktemp("own") / "speakers")


def audio_files(tree: Path):
    return sorted(p for p in tree.rglob("*") if p.is_file())


def write_kaldi(tree: Path, data_dir: Path) -> Path:
    data_dir.mkdir(parents=True)
    files = audio_files(tree)
    (data_dir / "wav.scp").write_text("".join(f"{p.parent.name}-{p.stem} {p}\n" for p in files))
    (data_dir / "utt2spk").write_text("".join(f"{p.parent.name}-{p.stem} {p.parent.name}\n" for p in files))
    return data_dir


def write_csv(tree: Path, manifest: Path) -> Path:
    lines = ["path,speaker"] + [f"{p.relative_to(manifest.parent)},{p.parent.name}" for p in audio_files(tree)]
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def protocol_files(directory: Path) -> dict:
    return {p.name: p.read_text() for p in sorted(directory.iterdir()) if p.is_file() and p.name != "database.yml"}


def test_folders_kaldi_and_csv_give_the_same_protocol(tree, tmp_path):
    kaldi = write_kaldi(tree, tmp_path / "kaldi")
    manifest = write_csv(tree, tree.parent / "manifest.csv")
    outputs = {}
    for corpus, root in (("folders", tree), ("kaldi", kaldi), ("csv", manifest)):
        outputs[corpus] = tmp_path / corpus / "out"
        prepare_corpus(corpus, root=root, name="Mini", output_dir=outputs[corpus], register_in_cwd=False)
    written = {corpus: protocol_files(directory) for corpus, directory in outputs.items()}
    assert written["folders"] == written["kaldi"] == written["csv"]
    assert set(written["folders"]) == {f"{s}.{e}" for s in ("train", "development", "test") for e in ("lst", "rttm", "uem")} | {
        "development.trial", "test.trial"}

    protocol = get_protocol(PROTOCOL, database_yml=outputs["folders"] / "database.yml")
    speakers = {s: {f["annotation"].labels()[0] for f in getattr(protocol, s)()} for s in ("train", "development", "test")}
    # 12 speakers, 80/10/10: development and test get 2 speakers each (the least for non-target trials)
    assert [len(speakers[s]) for s in ("train", "development", "test")] == [8, 2, 2]
    assert not (speakers["train"] & speakers["test"]) and not (speakers["development"] & speakers["test"])
    trials = list(protocol.test_trial())
    assert sum(t["reference"] for t in trials) == 2 * 6 == len(trials) - 12  # every target pair, as many non-target
    # 8 kHz, stereo and MP3 files are in, read through the audio links, resampled and downmixed
    suffixes = {Path(f["audio"]).resolve().suffix for s in ("train", "development", "test") for f in getattr(protocol, s)()}
    assert suffixes == {".wav", ".mp3", ".flac"}
    audio = Audio(sample_rate=16000, mono="downmix")
    for f in protocol.train():
        if Path(f["audio"]).resolve().suffix == ".wav":
            waveform, sample_rate = audio(f)
            assert waveform.shape[0] == 1 and sample_rate == 16000
            assert waveform.shape[1] / 16000 == pytest.approx(f["annotated"].extent().duration, abs=0.01)

    # another seed, another split; the same seed, the same files (idempotent)
    again = tmp_path / "again"
    prepare_corpus("folders", root=tree, name="Mini", output_dir=again, seed=1, register_in_cwd=False)
    assert protocol_files(again)["test.lst"] != written["folders"]["test.lst"]
    mtimes = {p: p.stat().st_mtime_ns for p in outputs["folders"].iterdir()}
    prepare_corpus("folders", root=tree, name="Mini", output_dir=outputs["folders"], register_in_cwd=False)
    assert {p: p.stat().st_mtime_ns for p in outputs["folders"].iterdir()} == mtimes


def test_kaldi_segments_and_trials(tree, tmp_path):
    """Utterances as segments of recordings; the corpus' own trials (both styles) make the test subset"""
    data_dir = tmp_path / "kaldi"
    data_dir.mkdir()
    files = audio_files(tree)
    (data_dir / "wav.scp").write_text("".join(f"rec{i} {p}\n" for i, p in enumerate(files)))
    segments, utt2spk = [], []
    for i, p in enumerate(files):
        for part, (start, end) in enumerate([(0.0, 1.0), (1.0, 2.0)]):
            segments.append(f"u{i}-{part} rec{i} {start} {end}\n")
            utt2spk.append(f"u{i}-{part} {p.parent.name}\n")
    (data_dir / "segments").write_text("".join(segments))
    (data_dir / "utt2spk").write_text("".join(utt2spk))
    # speakers of files 0-3 and 4-7: Kaldi-style and VoxCeleb-style lines
    (data_dir / "trials").write_text("u0-0 u1-1 target\n1 u2-0 u3-0\nu0-0 u4-0 nontarget\n0 u5-1 u6-1\n")
    yml = prepare_corpus("kaldi", root=data_dir, name="Mini", output_dir=tmp_path / "out", register_in_cwd=False)
    protocol = get_protocol(PROTOCOL, database_yml=yml)
    trials = list(protocol.test_trial())
    assert [t["reference"] for t in trials] == [1, 1, 0, 0]
    first = trials[0]["file1"]
    assert first["try_with"].extent().duration == pytest.approx(1.0) and str(first["uri"]).endswith("@0.000-1.000")
    test_speakers = {f["annotation"].labels()[0] for f in protocol.test()}
    assert test_speakers == {files[0].parent.name, files[4].parent.name}
    assert not test_speakers & {f["annotation"].labels()[0] for f in protocol.train()}
    # training turns are the segments
    train = next(iter(protocol.train()))
    assert train["annotation"].get_timeline().extent().duration == pytest.approx(1.0)


def test_nemo_json_lines_and_subsets(tree, tmp_path):
    files = audio_files(tree)
    speakers = sorted({p.parent.name for p in files})
    subset = {s: "train" if i < 8 else ("development" if i < 10 else "test") for i, s in enumerate(speakers)}
    manifest = tmp_path / "manifest.jsonl"
    with open(manifest, "w") as f:
        for p in files:
            f.write(json.dumps({"audio_filepath": str(p), "label": p.parent.name, "offset": 0.0, "duration": 1.5,
                                "text": "-", "subset": subset[p.parent.name]}) + "\n")
    yml = prepare_corpus("csv", root=manifest, name="Mini", output_dir=tmp_path / "out", register_in_cwd=False)
    protocol = get_protocol(PROTOCOL, database_yml=yml)
    assert {f["annotation"].labels()[0] for f in protocol.test()} == {s for s, x in subset.items() if x == "test"}
    assert all(f["annotated"].extent().duration == pytest.approx(1.5) for f in protocol.train())  # durations given


def test_max_trials_caps_generated_trials(tree, tmp_path):
    yml = prepare_corpus("folders", root=tree, name="Mini", output_dir=tmp_path, split="50/0/50", max_trials=20,
                         register_in_cwd=False)
    trials = list(get_protocol(PROTOCOL, database_yml=yml).test_trial())
    assert len(trials) == 20 and sum(t["reference"] for t in trials) == 10


def test_split_policy():
    speakers = [f"s{i}" for i in range(100)]
    assignment = split_speakers(speakers, (80, 10, 10), seed=0)
    counts = {s: list(assignment.values()).count(s) for s in ("train", "development", "test")}
    assert counts == {"train": 80, "development": 10, "test": 10}
    assert split_speakers(list(reversed(speakers)), (80, 10, 10), seed=0) == assignment
    assert split_speakers(speakers, (80, 10, 10), seed=1) != assignment
    small = split_speakers(speakers[:5], (80, 10, 10), seed=0)  # the least: 1 train, 2 development, 2 test
    assert sorted(small.values()) == ["development", "development", "test", "test", "train"]
    assert set(split_speakers(speakers[:3], (90, 0, 10), seed=0).values()) == {"train", "test"}
    assert parse_split("70/15/15") == (70, 15, 15)


# -- bad input: one clear error naming the file, line or key; nothing written ----------------------------


def prepare_cli(args, cwd):
    """`pyannote-audio-emb prepare ...` in-process, from `cwd`"""
    import os

    previous = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, ["prepare", *map(str, args), "--no-progress"])
    finally:
        os.chdir(previous)


def assert_refused(result, output: Path, *messages):
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    for message in messages:
        assert message in line, result.output
    assert not any((output / name).exists() for name in OUTPUTS), sorted(p.name for p in output.iterdir())


def subtree(tree: Path, destination: Path, speakers: int = 6) -> Path:
    for folder in sorted(tree.iterdir())[:speakers]:
        shutil.copytree(folder, destination / folder.name)
    return destination


def test_missing_listed_files(tree, tmp_path):
    manifest = write_csv(tree, tree.parent / "missing.csv")
    with open(manifest, "a") as f:
        f.write("nowhere/a.wav,X\nnowhere/b.wav,X\n")
    result = prepare_cli(["csv", "--root", manifest, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "2 listed audio file(s) do not exist", "nowhere/a.wav", "missing.csv, line")


@pytest.mark.parametrize(
    "header, message",
    [("path,speakr", "unknown column 'speakr'. Did you mean 'speaker'?"),
     ("path,subset", "missing required column(s) speaker")],
)
def test_unknown_or_missing_column(tree, tmp_path, header, message):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"{header}\nx.wav,A\n")
    assert_refused(prepare_cli(["csv", "--root", manifest, "--name", "Mini"], tmp_path), tmp_path, "m.csv", message)


def test_malformed_lines(tree, tmp_path):
    manifest = write_csv(tree, tree.parent / "malformed.csv")
    text = manifest.read_text().splitlines()
    text[3] += ",extra"
    manifest.write_text("\n".join(text) + "\n")
    result = prepare_cli(["csv", "--root", manifest, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "malformed.csv, line 4: 3 field(s) where the header has 2")
    kaldi = write_kaldi(tree, tmp_path / "kaldi")
    with open(kaldi / "utt2spk", "a") as f:
        f.write("lonely\n")
    result = prepare_cli(["kaldi", "--root", kaldi, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "utt2spk, line 49: expected 2 fields")


def test_duplicate_utterances(tree, tmp_path):
    kaldi = write_kaldi(tree, tmp_path / "kaldi")
    first = (kaldi / "wav.scp").read_text().splitlines()[0]
    with open(kaldi / "wav.scp", "a") as f:
        f.write(first + "\n")
    result = prepare_cli(["kaldi", "--root", kaldi, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "wav.scp, line 49:", "is listed twice (first on line 1)")
    folders = subtree(tree, tmp_path / "folders")
    flac = next(folders.rglob("*.flac"))
    shutil.copy(flac, flac.with_suffix(".wav"))
    result = prepare_cli(["folders", "--root", folders, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "Duplicate utterance", flac.name, flac.with_suffix(".wav").name)


def test_speaker_with_a_single_utterance_is_left_out_of_target_trials(tree, tmp_path):
    folders = subtree(tree, tmp_path / "folders", speakers=12)
    assignment = split_speakers([p.name for p in folders.iterdir()], (20, 0, 80), seed=0)
    lonely = folders / min(s for s, subset in assignment.items() if subset == "test")
    for extra in sorted(lonely.iterdir())[1:]:
        extra.unlink()
    with pytest.warns(UserWarning, match="single utterance"):
        yml = prepare_corpus("folders", root=folders, name="Mini", output_dir=tmp_path / "out", split="20/0/80",
                             register_in_cwd=False)
    trials = list(get_protocol(PROTOCOL, database_yml=yml).test_trial())
    used = {f["annotation"].labels()[0] for t in trials for f in (t["file1"], t["file2"]) if t["reference"]}
    assert lonely.name not in used and len(used) > 1


def test_too_few_speakers_for_the_split(tree, tmp_path):
    folders = subtree(tree, tmp_path / "folders", speakers=4)
    result = prepare_cli(["folders", "--root", folders, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "Cannot split 4 speakers", "at least 5 speakers", "--split")


def test_segment_beyond_the_end_of_its_file(tree, tmp_path):
    kaldi = write_kaldi(tree, tmp_path / "kaldi")
    utts = [line.split()[0] for line in (kaldi / "wav.scp").read_text().splitlines()]
    (kaldi / "segments").write_text("".join(f"{u}-s {u} 0.5 {60.0 if n == 7 else 1.5}\n" for n, u in enumerate(utts)))
    (kaldi / "utt2spk").write_text("".join(f"{u}-s {u.split('-')[0]}\n" for u in utts))
    result = prepare_cli(["kaldi", "--root", kaldi, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "segments, line 8: segment [0.5, 60] ends after the end of")


def test_pipe_in_wav_scp_is_refused_and_never_run(tree, tmp_path):
    kaldi = write_kaldi(tree, tmp_path / "kaldi")
    marker = tmp_path / "executed"
    lines = (kaldi / "wav.scp").read_text().splitlines()
    lines[2] = f"{lines[2].split()[0]} touch {marker} |"
    (kaldi / "wav.scp").write_text("\n".join(lines) + "\n")
    result = prepare_cli(["kaldi", "--root", kaldi, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "wav.scp, line 3:", "is a shell command, which prepare never runs")
    assert not marker.exists()


def test_empty_speaker_folder(tree, tmp_path):
    folders = subtree(tree, tmp_path / "folders")
    (folders / "nobody").mkdir()
    (folders / "nobody" / "notes.txt").write_text("no audio here")
    result = prepare_cli(["folders", "--root", folders, "--name", "Mini"], tmp_path)
    assert_refused(result, tmp_path, "Speaker folder", "nobody' holds no audio file")


# -- where protocols are found ----------------------------------------------------------------------------


def test_protocols_are_found_where_pyannote_database_finds_them(tree, tmp_path, monkeypatch):
    """./database.yml (written by prepare), ~/.pyannote/database.yml and PYANNOTE_DATABASE_CONFIG"""
    monkeypatch.delenv("PYANNOTE_DATABASE_CONFIG", raising=False)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    result = prepare_cli(["folders", "--root", tree, "--name", "Mini"], work)
    assert result.exit_code == 0, result.output
    assert "Registered in" in result.output and (work / "data" / "Mini" / "database.yml").is_file()
    assert len(list(get_protocol(PROTOCOL).test_trial())) == 24
    # a user's ./database.yml keeps its content (and comments); preparing again adds nothing
    text = (work / "database.yml").read_text()
    assert prepare_cli(["folders", "--root", tree, "--name", "Mini"], work).exit_code == 0
    assert (work / "database.yml").read_text() == text
    # from elsewhere: ~/.pyannote/database.yml, then PYANNOTE_DATABASE_CONFIG
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(DataError, match="Unknown protocol 'Mini.SpeakerVerification.Default'"):
        get_protocol(PROTOCOL)
    (home / ".pyannote").mkdir()
    (home / ".pyannote" / "database.yml").write_text(f"Requirements:\n  - {work / 'data' / 'Mini' / 'database.yml'}\n")
    assert get_protocol(PROTOCOL).name == PROTOCOL
    (home / ".pyannote" / "database.yml").unlink()
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", str(work / "data" / "Mini" / "database.yml"))
    assert work / "data" / "Mini" / "database.yml" in database_ymls()
    assert get_protocol(PROTOCOL).name == PROTOCOL


def test_register_appends_to_a_users_database_yml(tmp_path, tree, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "database.yml").write_text("# my protocols\nProtocols: {}\n")
    yml = prepare_corpus("folders", root=tree, name="Mini", output_dir=tmp_path / "data" / "Mini", register_in_cwd=False)
    assert register(yml) == tmp_path / "database.yml"
    text = (tmp_path / "database.yml").read_text()
    assert text.startswith("# my protocols\nProtocols: {}\n") and "Requirements:\n  - data/Mini/database.yml" in text
    assert register(yml) is None  # already there
    # outside the current directory: required by its absolute path (issue 34)
    outside = prepare_corpus("folders", root=tree, name="Outside", output_dir=tmp_path.parent / "outside",
                             register_in_cwd=False)
    assert register(outside) == tmp_path / "database.yml"
    assert f"  - {outside}\n" in (tmp_path / "database.yml").read_text()
    assert "Outside.SpeakerVerification.Default" in load_registry(database_ymls())
    # the same name again, elsewhere, would hide it: refused unless forced
    with pytest.raises(ConfigError, match="already declared by .*Force|already declared by"):
        prepare_corpus("folders", root=tree, name="Mini", output_dir=tmp_path / "elsewhere", register_in_cwd=False)
    assert not (tmp_path / "elsewhere").exists()


# -- training on your own data, from the command line ------------------------------------------------------

#: a few minutes' worth of the default recipe: log-mel SincTDNN, AAM
TINY_CONFIG = """\
protocol: {protocol}
seed: 0
task:
  name: aam
  params: {{duration: 1.0, num_classes_per_batch: 8, num_chunks_per_class: 1, batches_per_epoch: 8,
           num_workers: 0, margin: 0.2, scale: 30.0}}
architecture:
  name: SincTDNN
  params: {{frontend: fbank, channels: [64, 64, 64, 64, 192], dimension: 64}}
optimizer:
  name: AdamW
  params: {{lr: 0.005}}
trainer:
  max_epochs: 3
"""


def epoch_eers(experiment: Path) -> list:
    """Development EER logged at each epoch (Lightning's CSV logger)"""
    import csv

    (metrics,) = sorted(experiment.glob("logs/version_*/metrics.csv"))
    with open(metrics) as f:
        return [float(row["EqualErrorRate"]) for row in csv.DictReader(f) if row.get("EqualErrorRate")]


@pytest.mark.slow
def test_folders_to_trained_model_from_the_command_line(tree, tmp_path):
    """prepare folders -> train -> evaluate, in a fresh directory outside the repository, no --database"""
    from helpers import run_cli

    work = tmp_path / "work"
    (work / "exp").mkdir(parents=True)
    result = run_cli("prepare", "folders", "--root", tree, "--name", "Mini", "--no-progress", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    (work / "exp" / "config.yml").write_text(TINY_CONFIG.format(protocol=PROTOCOL))
    result = run_cli("train", "exp", "--no-progress", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((work / "exp" / "training.json").read_text())
    eers = epoch_eers(work / "exp")
    assert summary["dev_eer"] is not None and len(eers) == 3
    assert summary["dev_eer"] == pytest.approx(min(eers), abs=1e-6)  # best.ckpt: the epoch of the lowest dev EER
    best = torch.load(work / "exp" / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert best["epoch"] == int(np.argmin(eers))
    result = run_cli("evaluate", "exp", "--no-progress", cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{PROTOCOL} test: 24 trials" in result.stdout and "EER          =" in result.stdout


def write_diarization_protocol(corpus_root: Path, directory: Path, scope: str = "global") -> Path:
    """Conv.SpeakerDiarization.Default: conversations of SpeechOcean762 speakers, RTTM, no trials"""
    from pyannote_embloss.pipelines.conversations import make_conversations

    speakers = sorted(p for p in (corpus_root / "WAVE").iterdir() if p.is_dir())
    groups = {"train": speakers[:16], "development": speakers[16:22], "test": speakers[22:28]}
    counts = {"train": 8, "development": 3, "test": 3}
    entries = []
    for s, (subset, group) in enumerate(groups.items()):
        utterances = [(p.name, str(f)) for p in group for f in sorted(p.glob("*.flac"))]
        files = make_conversations(utterances, directory, num_conversations=counts[subset], num_speakers=3, seed=s)
        for f in files:  # conversationN.wav: one name per subset
            wav = Path(f["audio"]).rename(directory / f"{subset}-{f['uri']}.wav")
            f["uri"], f["audio"] = f"{subset}-{f['uri']}", str(wav)
            f["annotation"].uri = f["annotated"].uri = f["uri"]
        (directory / f"{subset}.lst").write_text("".join(f"{f['uri']}\n" for f in files))
        (directory / f"{subset}.rttm").write_text("".join(f["annotation"].to_rttm() for f in files))
        (directory / f"{subset}.uem").write_text("".join(f["annotated"].to_uem() for f in files))
        entries.append(f"        {subset}: {{uri: {subset}.lst, annotation: {subset}.rttm, annotated: {subset}.uem}}\n")
    yml = directory / "database.yml"
    yml.write_text(
        f"Databases:\n  Conv: {directory}/{{uri}}.wav\nProtocols:\n  Conv:\n    SpeakerDiarization:\n"
        f"      Default:\n        scope: {scope}\n" + "".join(entries)
    )
    return yml


@pytest.mark.slow
def test_diarization_protocol_trains_with_development_trials_from_speech_turns(corpus_root, tmp_path):
    from helpers import run_cli
    from pyannote_embloss.evaluation.trials import Trials

    conversations = tmp_path / "conversations"
    conversations.mkdir()
    yml = write_diarization_protocol(corpus_root, conversations)
    protocol = get_protocol("Conv.SpeakerDiarization.Default", database_yml=yml)
    trials = Trials.from_protocol(protocol, "development")
    # turns of the development conversations: same label = target, pairs across files (scope: global)
    assert trials.reference.sum() == (~trials.reference).sum() > 0
    assert not np.isnan(trials.segments).any() and (np.diff(trials.segments, axis=1) >= 1.0).all()
    assert len(set(trials.uris)) == 3
    crossing = [trials.uris[i] != trials.uris[j] for i, j in zip(trials.index1, trials.index2)]
    assert any(crossing)

    experiment = tmp_path / "exp"
    experiment.mkdir()
    (experiment / "config.yml").write_text(TINY_CONFIG.format(protocol="Conv.SpeakerDiarization.Default"))
    result = run_cli("train", experiment, "--database", yml, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((experiment / "training.json").read_text())
    assert summary["dev_eer"] is not None and summary["dev_eer"] == pytest.approx(min(epoch_eers(experiment)), abs=1e-6)
    assert summary["num_speakers"] == len({label for f in protocol.train() for label in f["annotation"].labels()})
    result = run_cli("evaluate", experiment, "--subset", "development", "--database", yml, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((experiment / "results" / "Conv.SpeakerDiarization.Default.development.json").read_text())
    assert results["num_trials"] == len(trials) and "asnorm" in results["normalized"]  # cohort: training turns
    assert summary["dev_eer"] == pytest.approx(results["eer"], abs=1e-6)


def test_file_scope_labels_pair_within_files_and_train_per_file(corpus_root, tmp_path):
    """scope: file: a label means a speaker of its file only"""
    from pyannote_embloss.evaluation.trials import Trials
    from pyannote_embloss.models import SincTDNN
    from pyannote_embloss.tasks import AdditiveAngularMargin

    yml = write_diarization_protocol(corpus_root, tmp_path, scope="file")
    protocol = get_protocol("Conv.SpeakerDiarization.Default", database_yml=yml)
    trials = Trials.from_protocol(protocol, "test", max_trials=40)
    assert len(trials) == 40 and trials.reference.sum() == 20
    assert all(trials.uris[i] == trials.uris[j] for i, j in zip(trials.index1, trials.index2))
    task = AdditiveAngularMargin(protocol, num_classes_per_batch=4, num_workers=0)
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, dimension=32)
    task.prepare_data()
    model.setup()
    assert len(task.speakers) == 8 * 3  # every (conversation, label) is a class
    assert task.has_validation_trials


def test_a_new_experiment_directory_starts_from_the_default_recipe(tmp_path):
    import yaml

    from pyannote_embloss.errors import ConfigError
    from pyannote_embloss.experiment import DEFAULT_RECIPE, Experiment

    experiment = Experiment.load_or_create(tmp_path / "mine", PROTOCOL)
    config = yaml.safe_load((tmp_path / "mine" / "config.yml").read_text())
    recipe = yaml.safe_load(DEFAULT_RECIPE.read_text())
    assert config == {**recipe, "protocol": PROTOCOL} and experiment.protocol_name() == PROTOCOL
    assert Experiment.load_or_create(tmp_path / "mine").config == experiment.config  # loaded from then on
    # experiments/aam is the default recipe
    assert (Path(__file__).parents[1] / "experiments" / "aam" / "config.yml").resolve() == DEFAULT_RECIPE.resolve()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="which is not empty"):
        Experiment.load_or_create(tmp_path / "busy", PROTOCOL)
    with pytest.raises(ConfigError, match="No config.yml"):
        Experiment.load_or_create(tmp_path / "busy")  # no protocol: nothing to start from
