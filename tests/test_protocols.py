"""SpeechOcean762 protocol: prepared from the real corpus, loaded with pyannote.database"""

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pyannote.database.registry import Registry
from torchcodec.decoders import AudioDecoder

from pyannote_embloss.errors import ConfigError
from pyannote_embloss.data.protocols import (
    DEFAULT_DATABASE_YML,
    CorpusNotFoundError,
    find_corpus,
    get_protocol,
    prepare,
    prepare_corpus,
    prepare_if_missing,
)
from pyannote_embloss.data.protocols import speechocean762 as so
from pyannote_embloss.data.protocols.writer import Utterance, make_trials
from pyannote_embloss.data.protocols.speechocean762 import ENV_VAR, PREPARE_COMMAND, PROTOCOL

SUBSETS = {"train": 125, "development": 25, "test": 100}  # number of speakers
URI = re.compile(r"^SPEAKER\d{4}/\d{9}$")


@pytest.fixture(scope="module")
def protocol(speechocean762_yml):
    return get_protocol(PROTOCOL, database_yml=speechocean762_yml)


@pytest.fixture(scope="module")
def files(protocol):
    """{subset: [ProtocolFile]}, with annotation, annotated and audio resolved"""
    files = dict()
    for subset in SUBSETS:
        files[subset] = list(getattr(protocol, subset)())
        for file in files[subset]:
            file["annotation"], file["annotated"], file["audio"]
    return files


@pytest.fixture(scope="module")
def trials(protocol):
    return {subset: list(getattr(protocol, f"{subset}_trial")()) for subset in ("development", "test")}


def speakers(files):
    return {label for file in files for label in file["annotation"].labels()}


def kaldi_keys(path: Path):
    return {line.split()[0] for line in path.read_text().splitlines() if line.strip()}


# ---------------------------------------------------------------------------
# subsets and files


def test_speakers_per_subset_and_disjoint(files):
    per_subset = {subset: speakers(files[subset]) for subset in SUBSETS}
    assert {subset: len(s) for subset, s in per_subset.items()} == SUBSETS
    assert not per_subset["train"] & per_subset["development"]
    assert not per_subset["train"] & per_subset["test"]
    assert not per_subset["development"] & per_subset["test"]


def test_files_per_subset(files, corpus_root):
    assert {subset: len(f) for subset, f in files.items()} == {"train": 1250, "development": 250, "test": 1000}
    # every speaker has its 10 files; train is exactly the official train split
    for subset in SUBSETS:
        counts = Counter(label for file in files[subset] for label in file["annotation"].labels())
        assert set(counts.values()) == {10}
    train_utts = {file["uri"].split("/")[1] for file in files["train"]}
    assert train_utts == kaldi_keys(corpus_root / "train" / "wav.scp")
    test_utts = {file["uri"].split("/")[1] for subset in ("development", "test") for file in files[subset]}
    assert test_utts == kaldi_keys(corpus_root / "test" / "wav.scp")


def test_uris_are_strings_with_leading_zeros(files, trials):
    for subset in SUBSETS:
        for file in files[subset]:
            assert isinstance(file["uri"], str) and URI.match(file["uri"]), file["uri"]
    trial = trials["development"][0]
    for key in ("file1", "file2"):
        assert isinstance(trial[key]["uri"], str) and URI.match(trial[key]["uri"])
    assert files["train"][0]["uri"] == "SPEAKER0001/000010011"


def test_annotation_is_one_turn_over_whole_file(files, corpus_root):
    lines = [line for split in ("train", "test") for line in (corpus_root / split / "utt2spk").read_text().splitlines()]
    utt2spk = dict(line.split() for line in lines)
    for subset in SUBSETS:
        for file in files[subset]:
            speaker, utt = file["uri"].split("/")
            annotation, annotated = file["annotation"], file["annotated"]
            assert annotation.labels() == [speaker] == [f"SPEAKER{utt2spk[utt]}"]
            (turn,) = list(annotation.itersegments())
            (region,) = list(annotated)
            assert turn == region and turn.start == 0.0 and 1.6 < turn.end < 20.0
    # durations come from the audio header, rounded down to the millisecond
    for file in files["train"][::125]:
        duration = AudioDecoder(str(file["audio"])).metadata.duration_seconds_from_header
        assert 0 <= duration - file["annotated"].extent().end < 1e-3


def test_file_finder_resolves_audio(files, corpus_root):
    for subset in SUBSETS:
        for file in files[subset]:
            assert Path(file["audio"]) == corpus_root / "WAVE" / f"{file['uri']}.flac"
            assert Path(file["audio"]).is_file()


# ---------------------------------------------------------------------------
# trials


@pytest.mark.parametrize("subset", ["development", "test"])
def test_trials(subset, files, trials):
    num_speakers = SUBSETS[subset]
    subset_uris = {file["uri"] for file in files[subset]}
    speaker = {file["uri"]: file["annotation"].labels()[0] for file in files[subset]}
    references = Counter(int(trial["reference"]) for trial in trials[subset])
    assert references == {1: 45 * num_speakers, 0: 45 * num_speakers}

    pairs = set()
    for trial in trials[subset]:
        uri1, uri2 = trial["file1"]["uri"], trial["file2"]["uri"]
        assert uri1 in subset_uris and uri2 in subset_uris
        assert uri1 < uri2
        pairs.add((uri1, uri2))
        same = trial["file1"]["annotation"].labels() == trial["file2"]["annotation"].labels()
        assert int(trial["reference"]) == int(same) == int(speaker[uri1] == speaker[uri2])
    assert len(pairs) == len(trials[subset])  # no duplicate
    assert [(t["file1"]["uri"], t["file2"]["uri"]) for t in trials[subset]] == sorted(pairs)


def test_trial_files_have_audio_and_try_with(trials):
    trial = trials["test"][0]
    file = trial["file1"]
    assert Path(file["audio"]).is_file()
    assert file["try_with"] == file["annotated"]
    assert file["try_with"].extent().start == 0.0


def test_make_trials_counts():
    utterances = [Utterance(f"S{s}/{u:03d}", f"S{s}", Path("x")) for s in range(3) for u in range(4)]
    trials = make_trials(utterances, seed="x")
    assert Counter(t[0] for t in trials) == {1: 18, 0: 18}
    assert trials == make_trials(list(reversed(utterances)), seed="x")
    # every target pair, once; non-target pairs of different speakers only
    assert {(u1, u2) for r, u1, u2 in trials if r} == {
        (a.uri, b.uri) for a in utterances for b in utterances if a.speaker == b.speaker and a.uri < b.uri
    }
    assert all(u1.split("/")[0] != u2.split("/")[0] for r, u1, u2 in trials if not r)
    with pytest.raises(ValueError, match="non-target"):
        make_trials(utterances[:4], seed="x")  # a single speaker


def test_split_speakers():
    speakers = [f"SPEAKER{i:04d}" for i in range(125)]
    development, test = so.split_speakers(reversed(speakers), 25)
    assert (len(development), len(test)) == (25, 100)
    assert not set(development) & set(test) and set(development) | set(test) == set(speakers)
    assert (development, test) == so.split_speakers(speakers, 25)
    assert so.split_speakers(speakers, 25, seed=1) != (development, test)
    with pytest.raises(ValueError, match="num_development_speakers"):
        so.split_speakers(speakers[:3], 2)


# ---------------------------------------------------------------------------
# determinism, idempotence


def generated(directory: Path):
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.is_file()}


def test_prepare_is_deterministic(speechocean762_yml, corpus_root, tmp_path):
    first = speechocean762_yml.parent
    second = prepare(root=corpus_root, output_dir=tmp_path / "again").parent
    a, b = generated(first), generated(second)
    assert sorted(a) == sorted(b) == sorted(
        [f"{s}.{e}" for s in SUBSETS for e in ("lst", "rttm", "uem")]
        + ["development.trial", "test.trial", "database.yml"]
    )
    yml_a, yml_b = a.pop("database.yml").decode(), b.pop("database.yml").decode()
    assert yml_a.replace(str(first), "OUT") == yml_b.replace(str(second), "OUT")
    assert a == b


def test_prepare_is_idempotent(speechocean762_yml, corpus_root):
    directory = speechocean762_yml.parent
    before = generated(directory)
    mtimes = {name: (directory / name).stat().st_mtime_ns for name in before}
    assert prepare(root=corpus_root, output_dir=directory) == speechocean762_yml
    assert generated(directory) == before
    assert {name: (directory / name).stat().st_mtime_ns for name in before} == mtimes
    assert not [p.name for p in directory.iterdir() if p.name.startswith(".")]  # no temp file left
    assert (directory / "WAVE").resolve() == corpus_root / "WAVE"


# ---------------------------------------------------------------------------
# the repository's database.yml


def test_repository_yml_matches_generated_protocol(speechocean762_yml):
    config = yaml.safe_load(DEFAULT_DATABASE_YML.read_text())
    assert "Requirements" not in config
    # the generated yml (absolute paths, in <tmp>/data/speechocean762) declares the same files
    generated = yaml.safe_load(speechocean762_yml.read_text())["Protocols"]
    repository = speechocean762_yml.parents[2]

    def relative(entries):
        if isinstance(entries, dict):
            return {k: relative(v) for k, v in entries.items()}
        path = Path(entries)
        return str(path.relative_to(repository)) if path.is_absolute() else entries

    assert config["Protocols"] == relative(generated)
    assert config["Databases"] == {"SpeechOcean762": "data/speechocean762/WAVE/{uri}.*"}


def test_repository_yml_loads_before_prepare(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yml = Path(shutil.copy(DEFAULT_DATABASE_YML, tmp_path / "database.yml"))
    registry = Registry()
    registry.load_database(yml)  # no data/ yet: must not fail
    assert list(registry) == [PROTOCOL]
    with pytest.raises(FileNotFoundError, match=re.escape(PREPARE_COMMAND)) as error:
        get_protocol(PROTOCOL, database_yml=yml)
    assert str(tmp_path / "data" / "speechocean762" / "train.lst") in str(error.value)


def test_repository_yml_after_prepare(speechocean762_yml, files, trials, monkeypatch):
    repository = speechocean762_yml.parents[2]
    # relative paths are tried against the working directory first (pyannote.database)
    monkeypatch.chdir(repository)
    yml = Path(shutil.copy(DEFAULT_DATABASE_YML, repository / "database.yml"))
    protocol = get_protocol(PROTOCOL, database_yml=yml)
    development = list(protocol.development())
    assert [f["uri"] for f in development] == [f["uri"] for f in files["development"]]
    audio = Path(development[0]["audio"])
    assert audio == repository / "data" / "speechocean762" / "WAVE" / f"{development[0]['uri']}.flac"
    assert audio.resolve() == Path(files["development"][0]["audio"]).resolve()
    assert len(list(protocol.test_trial())) == len(trials["test"])


def test_fresh_clone_prepares_missing_protocol_files(corpus_root, tmp_path, monkeypatch):
    """On a fresh clone, get_protocol (so `train`, `evaluate`, `compare`, from Python as from the CLI)
    generates data/ from the local corpus"""
    import pyannote_embloss.data.protocols as protocols

    clone = tmp_path / "clone"
    clone.mkdir()
    yml = Path(shutil.copy(DEFAULT_DATABASE_YML, clone / "database.yml"))
    monkeypatch.setattr(protocols, "DEFAULT_DATABASE_YML", yml)
    monkeypatch.setattr(so, "REPO_ROOT", clone)
    monkeypatch.setenv(ENV_VAR, str(corpus_root))
    monkeypatch.delenv("PYANNOTE_DATABASE_CONFIG", raising=False)
    monkeypatch.chdir(clone)

    # another database.yml is left alone, even for a known corpus
    other = Path(shutil.copy(DEFAULT_DATABASE_YML, tmp_path / "other.yml"))
    assert prepare_if_missing(PROTOCOL, database_yml=other) is False
    assert not (clone / "data").exists()
    # the corpus is not on this machine: nothing happens, get_protocol says how to get it
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match=f"Ignoring {ENV_VAR}"):
        assert prepare_if_missing(PROTOCOL) is False
        with pytest.raises(FileNotFoundError, match=re.escape(PREPARE_COMMAND)):
            get_protocol(PROTOCOL)
    assert not (clone / "data").exists()

    monkeypatch.setenv(ENV_VAR, str(corpus_root))
    protocol = get_protocol(PROTOCOL)  # generates the files first
    assert (clone / "data" / "speechocean762" / "test.trial").is_file()
    assert len(list(protocol.train())) == 1250
    assert len(list(protocol.test_trial())) == 9000
    assert prepare_if_missing(PROTOCOL) is False  # already there: nothing to do


# ---------------------------------------------------------------------------
# get_protocol errors


def test_get_protocol_unknown_name(speechocean762_yml):
    with pytest.raises(ValueError, match="Known protocols: SpeechOcean762.SpeakerVerification.Default"):
        get_protocol("SpeechOcean762.SpeakerVerification.Nope", database_yml=speechocean762_yml)


def test_get_protocol_missing_yml(tmp_path):
    missing = tmp_path / "nope.yml"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        get_protocol(PROTOCOL, database_yml=missing)


def test_get_protocol_missing_requirement(tmp_path):
    yml = tmp_path / "database.yml"
    yml.write_text("Requirements:\n  - data/speechocean762/database.yml\n")
    with pytest.raises(FileNotFoundError, match=re.escape(PREPARE_COMMAND)) as error:
        get_protocol(PROTOCOL, database_yml=yml)
    assert "data/speechocean762/database.yml" in str(error.value)


def test_get_protocol_uses_pyannote_database_config(speechocean762_yml, monkeypatch):
    monkeypatch.setenv("PYANNOTE_DATABASE_CONFIG", str(speechocean762_yml))
    protocol = get_protocol(PROTOCOL)
    assert next(protocol.train())["uri"] == "SPEAKER0001/000010011"


def test_prepare_command_dispatches_to_the_corpus(corpus_root, speechocean762_yml, tmp_path):
    output = tmp_path / "so762"
    yml = prepare_corpus("speechocean762", root=corpus_root, output_dir=output, progress=False)
    # the same protocol as the corpus module's own prepare (the session's), file for file
    for name in ("train.lst", "development.trial", "test.trial", "test.rttm"):
        assert (output / name).read_text() == (speechocean762_yml.parent / name).read_text()
    assert len(list(get_protocol(PROTOCOL, database_yml=yml).test_trial())) == 9000
    # options the corpus does not have are refused, and nothing is written
    with pytest.raises(ConfigError, match="--trials is not an option of `prepare speechocean762`"):
        prepare_corpus("speechocean762", root=corpus_root, output_dir=tmp_path / "other", trials=[Path("x.txt")])
    with pytest.raises(ConfigError, match="Unknown corpus 'timit'.*speechocean762"):
        prepare_corpus("timit")
    assert not (tmp_path / "other").exists()


# ---------------------------------------------------------------------------
# finding the corpus


def fake_corpus(path: Path) -> Path:
    for split in ("train", "test"):
        (path / split).mkdir(parents=True)
        (path / split / "wav.scp").write_text("")
    return path


def test_find_corpus_order(tmp_path, monkeypatch):
    explicit, env = fake_corpus(tmp_path / "explicit"), fake_corpus(tmp_path / "env")
    relative_to_repository = fake_corpus(tmp_path / "r" / "shared" / "data" / "speechocean762")
    relative_to_cwd = fake_corpus(tmp_path / "c" / "shared" / "data" / "speechocean762")
    monkeypatch.setattr(so, "REPO_ROOT", tmp_path / "r" / "repo")
    (tmp_path / "c" / "work").mkdir()
    monkeypatch.chdir(tmp_path / "c" / "work")

    monkeypatch.setenv(ENV_VAR, str(env))
    assert find_corpus(explicit) == explicit.resolve()
    assert find_corpus() == env.resolve()
    monkeypatch.delenv(ENV_VAR)
    assert find_corpus() == relative_to_repository.resolve()
    shutil.rmtree(relative_to_repository)
    assert find_corpus() == relative_to_cwd.resolve()
    # an invalid environment variable is ignored, with a warning
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match=ENV_VAR):
        assert find_corpus() == relative_to_cwd.resolve()


def test_find_corpus_default_is_shared_data(monkeypatch, corpus_root):
    monkeypatch.delenv(ENV_VAR, raising=False)
    shared = (so.REPO_ROOT / so.SHARED_CORPUS).resolve()
    if not so.is_corpus_root(shared):  # e.g. CI providing the corpus through the environment variable
        pytest.skip(f"no corpus at the default location {shared}")
    assert find_corpus() == shared


def test_find_corpus_bad_explicit_root(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(fake_corpus(tmp_path / "env")))
    bad = tmp_path / "bad"
    (bad / "train").mkdir(parents=True)
    (bad / "train" / "wav.scp").write_text("")
    with pytest.raises(CorpusNotFoundError, match=re.escape(str(bad))) as error:
        find_corpus(bad)  # no fallback to the environment variable
    assert "test/wav.scp" in str(error.value) and "train/wav.scp" not in str(error.value)
    with pytest.raises(CorpusNotFoundError, match="does not exist"):
        find_corpus(tmp_path / "nowhere")


def test_find_corpus_suggests_nested_folder(tmp_path):
    fake_corpus(tmp_path / "speechocean762")
    with pytest.raises(CorpusNotFoundError, match="Did you mean"):
        find_corpus(tmp_path)


def test_corpus_not_found(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(so, "REPO_ROOT", tmp_path / "a" / "repo")
    (tmp_path / "b" / "cwd").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "b" / "cwd")
    with pytest.raises(CorpusNotFoundError) as error:
        find_corpus()
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    for expected in (f"{PREPARE_COMMAND} --download", "--root DIR", ENV_VAR, "OpenSLR resource 101",
                     str(tmp_path / "a" / "shared" / "data" / "speechocean762"),
                     str(tmp_path / "b" / "shared" / "data" / "speechocean762")):
        assert expected in message
    with pytest.raises(CorpusNotFoundError, match="--download"):
        prepare(output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# corpus lists


def test_mixed_extensions_are_rejected(tmp_path):
    root = tmp_path / "corpus"
    for split, utt, speaker, extension in (("train", "000010011", "0001", "flac"), ("test", "000020011", "0002", "WAV")):
        (root / split).mkdir(parents=True)
        (root / split / "wav.scp").write_text(f"{utt}\tWAVE/SPEAKER{speaker}/{utt}.{extension}\n")
        (root / split / "utt2spk").write_text(f"{utt} {speaker}\n")
    with pytest.raises(ValueError, match=r"mix audio file extensions \(\.WAV, \.flac\)"):
        so.read_corpus(root)


def test_wav_scp_paths_must_be_under_wave(tmp_path):
    root = tmp_path / "corpus"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        (root / split / "wav.scp").write_text("000010011\tsox x.wav -t wav - |\n")
        (root / split / "utt2spk").write_text("000010011 0001\n")
    with pytest.raises(ValueError, match="expected a path relative to the corpus root"):
        so.read_corpus(root)
