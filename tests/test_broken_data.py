"""Own data that cannot go silently wrong (issue 34)

Every probe of the issue, on miniature trees of real SpeechOcean762 audio:
each test checks the exit code, the message, and what is (not) written.
Then one property test breaks good speaker trees at random, under a seed, and
checks that every outcome is either a refusal (exit 2, an error line, nothing
written) or a protocol that pyannote.database loads with every readable file
once, no file in two subsets and every speaker's label intact.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pyannote_embloss.cli import app
from pyannote_embloss.data.protocols import get_protocol

from helpers import run_cli
from test_own_data import prepare_cli as prepare  # in-process, from a directory

runner = CliRunner()

#: speaker names a user may have: spaces, Unicode, quotes, punctuation
NAMES = ["Zoë Smith", "李 雷", "O'Brien", 'the "boss"', "ana-maria", "Jean  Paul", "x,y", "spk_07", "Ωμέγα", "#1 fan"]


def copy_speakers(corpus_root: Path, tree: Path, names, per_speaker: int = 3) -> dict:
    """`tree`/<name>/<file>.flac copies of real utterances (one corpus speaker per name); {file: name}"""
    sources = sorted(p for p in (corpus_root / "WAVE").iterdir() if p.is_dir())
    owner = {}
    for name, source in zip(names, sources):
        (tree / name).mkdir(parents=True)
        for path in sorted(source.glob("*.flac"))[:per_speaker]:
            shutil.copy(path, tree / name / path.name)
            owner[tree / name / path.name] = name
    return owner


def write_manifest(path: Path, rows) -> Path:
    """A CSV manifest (path, speaker), quoted as the csv module quotes"""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "speaker"])
        writer.writerows([str(p), n] for p, n in rows)
    return path


def written(directory: Path) -> list:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")) if directory.exists() else []


def assert_refused(result, *messages, nothing_in=()):
    """Exit 2, one error line naming `messages`, no traceback, nothing written in `nothing_in`"""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    text = " ".join(result.output.split())
    for message in messages:
        assert message in text, result.output
    for directory in nothing_in:
        assert written(directory) == [], written(directory)


def labels(yml: Path, name: str) -> dict:
    """{real path of each file: (subset, speaker label as pyannote.database loads it)}"""
    protocol = get_protocol(f"{name}.SpeakerVerification.Default", database_yml=yml)
    found = {}
    for subset in ("train", "development", "test"):
        try:
            files = list(getattr(protocol, subset)())
        except (AttributeError, ValueError):
            continue
        for file in files:
            key = os.path.realpath(file["audio"])
            assert key not in found, f"{key} in {found[key][0]} and {subset}"  # no file in two subsets
            found[key] = (subset, file["annotation"].labels())
    return found


@pytest.fixture
def speakers(corpus_root, tmp_path):
    """A good tree of 12 speakers x 3 files, 10 of them with awkward names; the run directory beside it"""
    tree = tmp_path / "tree"
    names = NAMES + ["spk10", "spk11"]
    owner = copy_speakers(corpus_root, tree, names)
    run = tmp_path / "run"
    run.mkdir()
    return tree, owner, run


# -- identity of files and speakers ------------------------------------------------------------------------


def test_symlinked_folders_never_become_speakers(speakers):
    tree, owner, run = speakers
    os.symlink("spk10", tree / "alias")  # another path to a speaker
    os.symlink(".", tree / "loop")  # every file of the tree, test speakers included
    os.symlink("../spk11", tree / "spk10" / "other")  # a speaker's folder inside another's
    first = sorted((tree / "spk10").glob("*.flac"))[0]
    os.link(first, tree / "spk10" / "again.flac")  # one file, twice in its folder
    result = prepare(["folders", "--root", tree, "--name", "Mine"], run)
    assert result.exit_code == 0, result.output
    assert "'alias' is another path to 'spk10'" in result.output and "(a loop)" in result.output
    assert "another speaker's folder" in result.output and "the same file as" in result.output
    found = labels(run / "data" / "Mine" / "database.yml", "Mine")
    assert sorted(found) == sorted(os.path.realpath(p) for p in owner)  # 36 files, each once (was 125 in the probe)
    for path, name in owner.items():
        assert found[os.path.realpath(path)][1] == [name]


def test_one_file_in_two_speakers_folders_is_refused(speakers):
    tree, owner, run = speakers
    first = sorted((tree / "spk10").glob("*.flac"))[0]
    os.link(first, tree / "spk11" / "borrowed.flac")
    result = prepare(["folders", "--root", tree, "--name", "Mine"], run)
    assert_refused(result, "are the same audio file", "two speakers, 'spk11' and 'spk10'", nothing_in=[run])


def test_a_file_listed_twice_through_a_link_is_refused_in_a_manifest(speakers):
    tree, owner, run = speakers
    path = sorted(owner)[0]
    os.symlink(path, tree / "link.flac")
    manifest = write_manifest(tree.parent / "list.csv", [*owner.items(), (tree / "link.flac", owner[path])])
    result = prepare(["csv", "--root", manifest, "--name", "Mine"], run)
    assert_refused(result, "would have the same audio in its", "link.flac", nothing_in=[run / "data"])


# -- speaker labels ---------------------------------------------------------------------------------------------


def test_any_speaker_name_round_trips_through_folders_kaldi_and_csv(speakers):
    tree, owner, run = speakers
    manifest = write_manifest(tree.parent / "list.csv", owner.items())
    kaldi = tree.parent / "kaldi"
    kaldi.mkdir()
    ids = {p: f"{n.replace(' ', '_')}-{p.stem}" for p, n in owner.items()}  # Kaldi ids have no space
    (kaldi / "wav.scp").write_text("".join(f"{ids[p]} {p}\n" for p in owner))
    (kaldi / "utt2spk").write_text("".join(f"{ids[p]} {n.replace(' ', '_')}\n" for p, n in owner.items()))
    for kind, root, name in (("folders", tree, "F"), ("csv", manifest, "C"), ("kaldi", kaldi, "K")):
        result = prepare([kind, "--root", root, "--name", name], run)
        assert result.exit_code == 0, result.output
        found = labels(run / "data" / name / "database.yml", name)
        expected = {n if kind != "kaldi" else n.replace(" ", "_") for n in owner.values()}
        assert {label for _, (_, (label,)) in found.items()} == expected
        assert len(found) == len(owner)


@pytest.mark.parametrize("name", ["None", "NA", "nan"])
def test_a_name_pandas_reads_as_missing_is_refused(speakers, name):
    tree, owner, run = speakers
    (tree / "spk11").rename(tree / name)
    assert_refused(prepare(["folders", "--root", tree, "--name", "Mine"], run), f"Speaker label '{name}'", "rename",
                   nothing_in=[run / "data"])


# -- bad audio ----------------------------------------------------------------------------------------------


def damage(tree: Path) -> tuple:
    """A FLAC whose body is garbage after a valid header, and random bytes named .wav"""
    flac = sorted((tree / "spk10").glob("*.flac"))[0]
    data = bytearray(flac.read_bytes())
    rng = random.Random(0)
    data[8192:] = bytes(rng.randrange(256) for _ in range(len(data) - 8192))
    flac.write_bytes(bytes(data))
    noise = tree / "spk11" / "noise.wav"
    noise.write_bytes(bytes(rng.randrange(256) for _ in range(20000)))
    return flac, noise


def test_damaged_audio_is_listed_and_left_out(speakers):
    tree, owner, run = speakers
    flac, noise = damage(tree)
    # the unreadable header stops a plain prepare, pointing to --check-audio --exclude-bad
    assert_refused(prepare(["folders", "--root", tree, "--name", "Mine"], run), "noise.wav", "--check-audio --exclude-bad",
                   nothing_in=[run / "data"])
    # --check-audio lists both; the garbage body decodes shorter than its header says (torchcodec 0.8),
    # or fails to decode (torchcodec 0.17)
    result = prepare(["folders", "--root", tree, "--name", "Mine", "--check-audio"], run)
    assert_refused(result, "2 of 37 audio files fail to decode", str(flac), "noise.wav", nothing_in=[run / "data"])
    text = " ".join(result.output.split())
    assert f"'{flac}' decodes" in text and "s its header gives" in text or f"Could not decode audio file '{flac}'" in text
    result = prepare(["folders", "--root", tree, "--name", "Mine", "--check-audio", "--exclude-bad"], run)
    assert result.exit_code == 0, result.output
    output = run / "data" / "Mine"
    assert sorted(line.split("\t")[0] for line in (output / "bad_files.txt").read_text().splitlines()) == sorted(
        [str(flac), str(noise)]
    )
    found = labels(output / "database.yml", "Mine")
    assert sorted(found) == sorted(os.path.realpath(p) for p in owner if p != flac)
    # the UEM holds what decodes
    from torchcodec.decoders import AudioDecoder

    for line in "".join((output / f"{s}.uem").read_text() for s in ("train", "development", "test")).splitlines():
        uri, _, start, end = line.split()
        samples = AudioDecoder(str(output / "audio" / uri)).get_all_samples()
        assert float(end) == pytest.approx(samples.data.shape[-1] / samples.sample_rate, abs=1e-3)


# -- registrations ------------------------------------------------------------------------------------------


def test_a_deleted_data_folder_does_not_brick_the_directory(speakers):
    tree, owner, run = speakers
    assert prepare(["folders", "--root", tree, "--name", "Mine"], run).exit_code == 0
    shutil.rmtree(run / "data" / "Mine")
    # a new process: pyannote.database reads ./database.yml when it is imported
    listed = run_cli("prepare", "folders", "--root", tree, "--name", "Mine", "--no-progress", cwd=run)
    assert listed.returncode == 0, listed.stderr
    assert "no longer exist" in listed.stderr and "Traceback" not in listed.stderr
    assert (run / "data" / "Mine" / "database.yml").is_file()
    assert yaml.safe_load((run / "database.yml").read_text())["Requirements"] == ["data/Mine/database.yml"]
    shutil.rmtree(run / "data")
    trained = run_cli("train", run / "exp", "Mine.SpeakerVerification.Default", cwd=run)
    assert trained.returncode == 2 and "Unknown protocol 'Mine.SpeakerVerification.Default'" in trained.stderr
    assert "Traceback" not in trained.stderr and yaml.safe_load((run / "database.yml").read_text())["Requirements"] == []


def test_output_outside_the_directory_is_registered_and_a_file_is_refused(speakers, tmp_path):
    tree, owner, run = speakers
    outside = tmp_path / "elsewhere" / "mine"
    result = prepare(["folders", "--root", tree, "--name", "Mine", "--output", outside], run)
    assert result.exit_code == 0 and f"Registered in {run / 'database.yml'}" in result.output, result.output
    assert yaml.safe_load((run / "database.yml").read_text())["Requirements"] == [str(outside / "database.yml")]
    previous = os.getcwd()
    os.chdir(run)
    try:
        assert len(list(get_protocol("Mine.SpeakerVerification.Default").train())) > 0  # found from here
    finally:
        os.chdir(previous)
    a_file = tmp_path / "a_file"
    a_file.write_text("mine\n")
    assert_refused(prepare(["folders", "--root", tree, "--name", "Other", "--output", a_file], run),
                   f"--output '{a_file}'", "is a file, not a directory")
    assert a_file.read_text() == "mine\n"


@contextmanager
def immutable(directory: Path):
    """`directory` cannot be written, even by root (chattr +i)"""
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_unwritable_output_or_working_directory_is_refused_first(speakers, tmp_path):
    tree, owner, run = speakers
    locked = tmp_path / "locked"
    locked.mkdir()
    with immutable(locked):
        assert_refused(prepare(["folders", "--root", tree, "--name", "Mine", "--output", locked / "out"], run),
                       f"--output '{locked / 'out'}' cannot be written", nothing_in=[locked])
        assert_refused(prepare(["folders", "--root", tree, "--name", "Mine"], locked),
                       "The working directory", "cannot be written", nothing_in=[locked])
    assert written(run) == []


def test_a_name_that_hides_a_corpus_is_refused_unless_forced(speakers):
    tree, owner, run = speakers
    assert_refused(prepare(["folders", "--root", tree, "--name", "SpeechOcean762"], run),
                   "--name SpeechOcean762 is the name of a corpus", "--force", nothing_in=[run])
    result = prepare(["folders", "--root", tree, "--name", "SpeechOcean762", "--force"], run)
    assert result.exit_code == 0, result.output


# -- options checked before any work ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "1"])
def test_max_trials_out_of_range_is_refused(speakers, value):
    tree, owner, run = speakers
    assert_refused(prepare(["folders", "--root", tree, "--name", "Mine", "--max-trials", value], run),
                   f"--max-trials {value}: give at least 2", nothing_in=[run])


def test_a_second_prepare_without_development_removes_its_old_files(speakers):
    tree, owner, run = speakers
    assert prepare(["folders", "--root", tree, "--name", "Mine"], run).exit_code == 0
    output = run / "data" / "Mine"
    assert (output / "development.trial").is_file()
    assert prepare(["folders", "--root", tree, "--name", "Mine", "--split", "90/0/10"], run).exit_code == 0
    assert not any(output.glob("development.*"))
    assert "development" not in yaml.safe_load((output / "database.yml").read_text())["Protocols"]["Mine"][
        "SpeakerVerification"]["Default"]


def test_misleading_messages_now_name_the_problem(speakers, tmp_path):
    tree, owner, run = speakers
    # a tab-separated file named .csv is read as TSV, with a warning
    manifest = tree.parent / "list.csv"
    manifest.write_text("path\tspeaker\n" + "".join(f"{p}\t{n}\n" for p, n in owner.items()))
    result = prepare(["csv", "--root", manifest, "--name", "Tabs"], run)
    assert result.exit_code == 0 and "its header is tab-separated" in result.output, result.output
    # a folder given to `prepare csv`
    assert_refused(prepare(["csv", "--root", tree, "--name", "Mine"], run), "is a directory", "prepare folders")
    # a file given to `prepare folders`
    assert_refused(prepare(["folders", "--root", manifest, "--name", "Mine"], run), "is a file", "prepare csv")
    # `apply` on a missing folder, `verify` on an untrained experiment, an optimizer off by its case
    experiment = tmp_path / "exp"
    experiment.mkdir()
    (experiment / "config.yml").write_text("protocol: Tabs.SpeakerVerification.Default\ntask: {name: aam}\n")
    result = runner.invoke(app, ["apply", str(experiment), str(tmp_path / "missing"), "-o", str(tmp_path / "out")])
    assert_refused(result, "is neither a directory of audio files nor a protocol name", "no such directory")
    audio = str(sorted(owner)[0])
    result = runner.invoke(app, ["verify", str(experiment), audio, audio])
    assert_refused(result, "is not trained", "pyannote-audio-emb train")
    (experiment / "config.yml").write_text("protocol: Tabs.SpeakerVerification.Default\ntask: {name: aam}\n"
                                           "optimizer: {name: Adamw}\n")
    assert_refused(runner.invoke(app, ["train", str(experiment)]), "unknown optimizer 'Adamw' (did you mean 'AdamW'?)")
    (experiment / "config.yml").write_text("protocol: Tabs.SpeakerVerification.Default\ntask: {name: aam}\n"
                                           "architecture: {name: SincTDNN, params: {dimension: -5}}\n")
    assert_refused(runner.invoke(app, ["train", str(experiment)]), "architecture.params.dimension -5",
                   "positive whole number")
    assert written(experiment) == ["config.yml"]


def test_a_refused_train_leaves_no_new_directory(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "newexp"), "Unknown.SpeakerVerification.Default"])
    assert_refused(result, "Unknown protocol 'Unknown.SpeakerVerification.Default'")
    assert not (tmp_path / "newexp").exists()


# -- the property test ----------------------------------------------------------------------------------------

DEFECTS = ("alias", "loop", "cross", "empty", "header", "body", "duplicate", "hardlink", "across", "na", "unwritable",
           "file_output")


def broken_case(corpus_root: Path, directory: Path, seed: int) -> dict:
    """A good tree broken at random under `seed`; what a correct prepare must do with it"""
    rng = random.Random(seed)
    names = rng.sample(NAMES + [f"spk{i}" for i in range(20, 30)], 7)
    tree = directory / "tree"
    owner = copy_speakers(corpus_root, tree, names, per_speaker=rng.choice([2, 3]))
    defects = sorted(rng.sample(DEFECTS, rng.randint(0, 4)), key=lambda d: d == "na")  # renaming a speaker last
    case = {"tree": tree, "run": directory / "run", "defects": defects, "refused": False, "bad": set(),
            "check_audio": rng.random() < 0.5, "options": []}
    case["run"].mkdir()
    files = sorted(owner)
    speakers = sorted(set(owner.values()))
    for defect in defects:
        if defect == "alias":
            os.symlink(rng.choice(speakers), tree / "zz alias")
        elif defect == "loop":
            os.symlink(".", tree / "loop") if rng.random() < 0.5 else os.symlink("..", tree / rng.choice(speakers) / "up")
        elif defect == "cross":
            a, b = rng.sample(speakers, 2)
            os.symlink(f"../{b}", tree / a / "link")
        elif defect == "empty":
            (tree / "nobody").mkdir()
            case["refused"] = True
        elif defect == "header":
            (tree / rng.choice(speakers) / "random.wav").write_bytes(bytes(rng.randrange(256) for _ in range(5000)))
            case["bad"].add("header")
        elif defect == "body":
            victim = rng.choice(files)
            data = bytearray(victim.read_bytes())
            data[8192:] = bytes(rng.randrange(256) for _ in range(len(data) - 8192))
            victim.write_bytes(bytes(data))
            case.setdefault("damaged", set()).add(os.path.realpath(victim))
        elif defect == "duplicate":
            victim = rng.choice(files)
            shutil.copy(victim, victim.with_suffix(".wav"))
            case["refused"] = True
        elif defect == "hardlink":
            victim = rng.choice(files)
            os.link(victim, victim.with_name("same " + victim.name))
        elif defect == "across":
            victim = rng.choice(files)
            other = rng.choice([s for s in speakers if s != owner[victim]])
            os.link(victim, tree / other / ("theirs_" + victim.name))
            case["refused"] = True
        elif defect == "na":
            (tree / speakers[0]).rename(tree / "None")
            owner = {tree / "None" / p.name if n == speakers[0] else p: ("None" if n == speakers[0] else n)
                     for p, n in owner.items()}
            case["refused"] = True
        elif defect == "unwritable":
            case["locked"] = directory / "locked"
            case["locked"].mkdir()
            case["options"] += ["--output", case["locked"] / "out"]
            case["refused"] = True
        elif defect == "file_output":
            (directory / "taken").write_text("x\n")
            case["options"] += ["--output", directory / "taken"]
            case["refused"] = True
    if "header" in case["bad"] and not case["check_audio"]:
        case["refused"] = True  # an unreadable header: only --check-audio --exclude-bad leaves it out
    if case["check_audio"]:
        case["options"] += ["--check-audio", "--exclude-bad"]
    case["owner"] = owner
    return case


def check_case(case: dict) -> None:
    run, tree = case["run"], case["tree"]
    output = run / "data" / "Broken"
    lock = immutable(case["locked"]) if "locked" in case else contextmanager(lambda: (yield None))()
    with lock:
        result = prepare(["folders", "--root", tree, "--name", "Broken", "--split", "60/20/20", *case["options"]], run)
    if result.exit_code != 0:
        assert_refused(result, nothing_in=[run])  # exit 2, one error line, nothing written
        assert case["refused"] or case["defects"], (case["defects"], result.output)
        return
    assert not case["refused"], (case["defects"], result.output)
    found = labels(output / "database.yml", "Broken")  # no file in two subsets (asserted there)
    expected = {os.path.realpath(p): n for p, n in case["owner"].items()}
    if case["check_audio"]:  # damaged files are left out, every other readable file is in
        for path in case.get("damaged", ()):
            expected.pop(path)
    assert sorted(found) == sorted(expected), case["defects"]  # every readable file exactly once
    for path, (_, label) in found.items():
        assert label == [expected[path]], (path, label)  # every speaker's label as pyannote.database loads it


@pytest.mark.parametrize("seed", range(24))
def test_broken_trees_are_refused_or_prepared_right(corpus_root, tmp_path, seed):
    check_case(broken_case(corpus_root, tmp_path, seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(24, 424))
def test_broken_trees_are_refused_or_prepared_right_many(corpus_root, tmp_path, seed):
    check_case(broken_case(corpus_root, tmp_path, seed))
