"""VoxCeleb protocols, prepared from a miniature VoxCeleb1 + VoxCeleb2 tree made of SpeechOcean762 audio

The tree (built once per module, in a temporary directory) has the official
layout: 8 VoxCeleb1 speakers (6 dev, 2 test) as WAV, 6 VoxCeleb2 dev speakers
as AAC (.m4a), 2 videos x 2 utterances each, the meta files and the trial lists
veri_test.txt, veri_test2.txt, list_test_all2.txt and list_test_hard2.txt.
"""

import itertools
import os
import re
import shutil
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from pyannote.audio.core.io import Audio

from helpers import run_cli
from pyannote_embloss.data import audio as audio_module
from pyannote_embloss.data.audio import load_audio, read_durations
from pyannote_embloss.errors import AudioDecodingError, ConfigError, DataError, MissingFileError
from pyannote_embloss.data.protocols import get_protocol, prepare_corpus
from pyannote_embloss.data.protocols import voxceleb

VOX1_DEV = [f"id1000{i}" for i in range(1, 7)]
VOX1_TEST = ["id10270", "id10271"]
VOX2_DEV = ["id00012", "id00015", "id00016", "id00017", "id00018", "id00019"]
VOX2_TEST_ABSENT = "id00020"  # in vox2_meta.csv, not on disk: VoxCeleb2 test is not needed
NAMES = ("VoxCeleb1", "VoxCeleb1_X", "VoxCeleb2", "Exhaustive", "Hard")
TEST_LISTS = {"VoxCeleb1": "veri_test2.txt", "VoxCeleb1_X": "veri_test2.txt", "VoxCeleb2": "veri_test2.txt",
              "Exhaustive": "list_test_all2.txt", "Hard": "list_test_hard2.txt"}
TRAIN_SPEAKERS = {"VoxCeleb1": VOX1_DEV, "VoxCeleb1_X": VOX1_DEV[:4], "VoxCeleb2": VOX2_DEV,
                  "Exhaustive": VOX2_DEV, "Hard": VOX2_DEV}
pytestmark = pytest.mark.filterwarnings("ignore:Not declared, for lack of inputs")
URI = re.compile(r"^vox[12]/id\d{5}/[A-Za-z0-9_-]{11}/\d{5}$")


def name(protocol: str) -> str:
    return f"VoxCeleb.SpeakerVerification.{protocol}"


# ---------------------------------------------------------------------------
# the miniature corpus


def videos(speaker: str):
    """Two made-up 11-character YouTube ids per speaker"""
    return [f"yt{speaker[-4:]}-{k}_abc"[:11].ljust(11, "x") for k in "AB"]


def relative_files(speaker: str, extension: str):
    return [f"{speaker}/{video}/{n:05d}{extension}" for video in videos(speaker) for n in (1, 2)]


def convert(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    codec = ["-c:a", "aac"] if destination.suffix == ".m4a" else []
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(source), *codec, str(destination)], check=True)


def trial_lines(files, pairs):
    """ "label enrol test" lines of the pairs (i, j) of `files` (paths relative to wav/)"""
    return [f"{int(files[i].split('/')[0] == files[j].split('/')[0])} {files[i]} {files[j]}\n" for i, j in pairs]


def write_trial_lists(directory: Path) -> dict:
    """The four official trial lists, written by hand from the tree: {file name: lines}"""
    test = [f for s in VOX1_TEST for f in relative_files(s, ".wav")]
    every = [f for s in VOX1_DEV + VOX1_TEST for f in relative_files(s, ".wav")]
    lists = {
        "veri_test2.txt": trial_lines(test, itertools.combinations(range(len(test)), 2)),  # 28
        "list_test_all2.txt": trial_lines(every, [(i, (i + k) % 32) for i in range(32) for k in (1, 5)]),  # 64
        "list_test_hard2.txt": trial_lines(every, [(i, (i + k) % 32) for i in range(0, 32, 2) for k in (1, 3)]),  # 32
    }
    lists["veri_test.txt"] = lists["veri_test2.txt"][:10]
    for file_name, lines in lists.items():
        (directory / file_name).write_text("".join(lines))
    return lists


def build_tree(corpus_root: Path, root: Path) -> dict:
    """root/vox1/{wav, vox1_meta.csv, trial lists}, root/vox2/{aac, vox2_meta.csv}"""
    flacs = [sorted((d).glob("*.flac"))[:4] for d in sorted((corpus_root / "WAVE").iterdir())[:14]]
    jobs = []
    for speaker, sources in zip(VOX1_DEV + VOX1_TEST, flacs[:8]):
        jobs += [(s, root / "vox1" / "wav" / r) for s, r in zip(sources, relative_files(speaker, ".wav"))]
    for speaker, sources in zip(VOX2_DEV, flacs[8:]):
        jobs += [(s, root / "vox2" / "aac" / r) for s, r in zip(sources, relative_files(speaker, ".m4a"))]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda job: convert(*job), jobs))

    rows = [f"{s}\tName_{s}\t{'mf'[n % 2]}\tIreland\t{'dev' if s in VOX1_DEV else 'test'}\n"
            for n, s in enumerate(VOX1_DEV + VOX1_TEST)]
    header = "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
    (root / "vox1" / "vox1_meta.csv").write_text(header + "".join(rows))
    rows = [f"{s} ,n0{s[2:]} ,m ,{'dev' if s in VOX2_DEV else 'test'} \n" for s in VOX2_DEV + [VOX2_TEST_ABSENT]]
    (root / "vox2" / "vox2_meta.csv").write_text("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n" + "".join(rows))
    return write_trial_lists(root / "vox1")


@pytest.fixture(scope="module")
def tree(corpus_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("voxceleb")
    lists = build_tree(corpus_root, root)
    return root, lists


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    root, _ = tree
    output = tmp_path_factory.mktemp("prepared")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every protocol is declared: no warning
        return voxceleb.prepare(root, output_dir=output, progress=False)


@pytest.fixture(scope="module")
def protocols(prepared):
    return {n: get_protocol(name(n), database_yml=prepared) for n in NAMES}


def variant(tree, directory: Path, meta1=True, meta2=True, vox2=True, lists=None) -> Path:
    """A root linking to the tree's audio, with its own meta files and trial lists

    lists: {file name: lines} written in vox1/ (defaults to the tree's).
    """
    root, tree_lists = tree
    (directory / "vox1").mkdir(parents=True)
    (directory / "vox1" / "wav").symlink_to(root / "vox1" / "wav")
    if meta1:
        shutil.copy(root / "vox1" / "vox1_meta.csv", directory / "vox1")
    if vox2:
        (directory / "vox2").mkdir()
        (directory / "vox2" / "aac").symlink_to(root / "vox2" / "aac")
        if meta2:
            shutil.copy(root / "vox2" / "vox2_meta.csv", directory / "vox2")
    for file_name, lines in (tree_lists if lists is None else lists).items():
        (directory / "vox1" / file_name).write_text("".join(lines))
    return directory


def lines_of(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


# ---------------------------------------------------------------------------
# the protocols


def test_every_protocol_is_declared(prepared):
    config = yaml.safe_load(prepared.read_text())
    assert list(config["Protocols"]["VoxCeleb"]["SpeakerVerification"]) == list(NAMES)
    # one audio template per corpus, through the links to wav/ and aac/
    assert config["Databases"]["VoxCeleb"] == [f"{prepared.parent}/{{uri}}.wav", f"{prepared.parent}/{{uri}}.m4a"]
    assert os.readlink(prepared.parent / "vox1").endswith("vox1/wav")
    assert os.readlink(prepared.parent / "vox2").endswith("vox2/aac")


@pytest.mark.parametrize("protocol_name", NAMES)
def test_trial_counts_and_disjoint_speakers(protocol_name, protocols, tree):
    root, _ = tree
    protocol = protocols[protocol_name]
    trials = list(protocol.test_trial())
    assert len(trials) == lines_of(root / "vox1" / TEST_LISTS[protocol_name])
    expected = {"veri_test2.txt": 28, "list_test_all2.txt": 64, "list_test_hard2.txt": 32}
    assert len(trials) == expected[TEST_LISTS[protocol_name]]
    for trial in trials:
        same = trial["file1"]["annotation"].labels() == trial["file2"]["annotation"].labels()
        assert int(trial["reference"]) == int(same)
    train = {label for file in protocol.train() for label in file["annotation"].labels()}
    assert sorted(train) == TRAIN_SPEAKERS[protocol_name]
    tested = {label for t in trials for key in ("file1", "file2") for label in t[key]["annotation"].labels()}
    assert not train & tested
    if protocol_name in ("Exhaustive", "Hard"):  # VoxCeleb1 dev and test speakers
        assert tested == set(VOX1_DEV + VOX1_TEST)
    else:
        assert tested == set(VOX1_TEST)


def test_voxceleb1_x_development(protocols):
    protocol = protocols["VoxCeleb1_X"]
    development = {label for file in protocol.development() for label in file["annotation"].labels()}
    assert sorted(development) == VOX1_DEV[4:]  # the last speakers, sorted (2 of 6)
    trials = list(protocol.development_trial())
    references = [int(t["reference"]) for t in trials]
    assert references.count(1) == references.count(0) == 2 * 6  # C(4, 2) target pairs per speaker
    train = {label for file in protocol.train() for label in file["annotation"].labels()}
    assert not train & development


def test_uris_labels_and_audio(protocols):
    decoder = Audio(sample_rate=16000, mono="downmix")
    files = {}
    for protocol in protocols.values():
        subsets = ("train", "development", "test") if protocol.name.endswith("_X") else ("train", "test")
        for subset in subsets:
            for file in getattr(protocol, subset)():
                files[file["uri"]] = file
    assert len(files) == 8 * 4 + 6 * 4
    for uri, file in files.items():
        assert URI.match(uri), uri
        assert file["annotation"].labels() == [uri.split("/")[1]]
        path = Path(file["audio"])
        assert path.is_file() and path.suffix == (".wav" if uri.startswith("vox1/") else ".m4a")
        waveform = load_audio(decoder, str(path))  # m4a included
        (region,) = list(file["annotated"])
        # header durations: to the millisecond for WAV; AAC decodes its encoder padding too
        tolerance = 0.002 if path.suffix == ".wav" else 0.1
        assert region.start == 0 and 0 <= waveform.shape[1] / 16000 - region.end < tolerance
    assert files["vox1/id10270/yt0270-A_ab/00001"]["annotation"].labels() == ["id10270"]


def test_exhaustive_and_hard_never_train_on_voxceleb1(prepared):
    protocols = yaml.safe_load(prepared.read_text())["Protocols"]["VoxCeleb"]["SpeakerVerification"]
    for protocol in ("Exhaustive", "Hard", "VoxCeleb2"):
        assert Path(protocols[protocol]["train"]["uri"]).name == "vox2-dev.lst"


def test_task_data_from_protocol(protocols, tmp_path):
    from pyannote_embloss.models import SincTDNN
    from pyannote_embloss.tasks import get_task_class

    task = get_task_class("aam")(protocols["VoxCeleb1_X"], num_classes_per_batch=4, num_workers=0)
    task.cache = tmp_path / "c.npz"
    model = SincTDNN(task=task, stride=10, dimension=16)
    task.prepare_data()
    model.setup()
    assert len(task.specifications.classes) == 4
    assert task.has_validation_trials


# ---------------------------------------------------------------------------
# layouts


def test_voxceleb1_alone(tree, tmp_path):
    root, _ = tree
    with pytest.warns(UserWarning, match="Not declared.*VoxCeleb2.*no VoxCeleb2 under"):
        yml = voxceleb.prepare(root / "vox1", output_dir=tmp_path / "out", progress=False)  # flat
    config = yaml.safe_load(yml.read_text())
    assert list(config["Protocols"]["VoxCeleb"]["SpeakerVerification"]) == ["VoxCeleb1", "VoxCeleb1_X"]
    assert config["Databases"]["VoxCeleb"] == [f"{tmp_path / 'out'}/{{uri}}.wav"]
    protocol = get_protocol(name("VoxCeleb1"), database_yml=yml)
    assert len(list(protocol.test_trial())) == 28


def test_flat_voxceleb1_with_converted_voxceleb2(tree, tmp_path):
    """root/wav + vox1_meta.csv (flat VoxCeleb1), root/vox2/wav (VoxCeleb2 converted to WAV)"""
    root, _ = tree
    flat = tmp_path / "flat"
    (flat / "vox2" / "wav").mkdir(parents=True)
    (flat / "wav").symlink_to(root / "vox1" / "wav")
    shutil.copy(root / "vox1" / "vox1_meta.csv", flat)
    shutil.copy(root / "vox2" / "vox2_meta.csv", flat / "vox2")
    for file_name in ("veri_test2.txt", "list_test_hard2.txt"):
        shutil.copy(root / "vox1" / file_name, flat)
    wavs = sorted((root / "vox1" / "wav").rglob("*.wav"))
    for source, relative in zip(wavs, [r for s in VOX2_DEV for r in relative_files(s, ".wav")]):
        (flat / "vox2" / "wav" / relative).parent.mkdir(parents=True, exist_ok=True)
        (flat / "vox2" / "wav" / relative).symlink_to(source)
    with pytest.warns(UserWarning, match="Exhaustive.*list_test_all2.txt"):
        yml = voxceleb.prepare(flat, output_dir=tmp_path / "out", progress=False)
    config = yaml.safe_load(yml.read_text())
    declared = list(config["Protocols"]["VoxCeleb"]["SpeakerVerification"])
    assert declared == ["VoxCeleb1", "VoxCeleb1_X", "VoxCeleb2", "Hard"]
    assert config["Databases"]["VoxCeleb"] == [f"{tmp_path / 'out'}/{{uri}}.wav"]  # one template for both
    protocol = get_protocol(name("Hard"), database_yml=yml)
    assert len(list(protocol.test_trial())) == lines_of(root / "vox1" / "list_test_hard2.txt")
    train = list(protocol.train())
    assert len(train) == 24 and all(Path(f["audio"]).suffix == ".wav" for f in train)


def test_explicit_trials_replace_those_found(tree, tmp_path):
    root, lists = tree
    veri_test = tmp_path / "elsewhere" / "veri_test.txt"
    veri_test.parent.mkdir()
    veri_test.write_text("".join(lists["veri_test.txt"]))
    yml = voxceleb.prepare(root, output_dir=tmp_path / "out", trials=[veri_test], progress=False)
    assert lines_of(tmp_path / "out" / "vox1-o.trial") == 10
    assert len(list(get_protocol(name("VoxCeleb2"), database_yml=yml).test_trial())) == 10


# ---------------------------------------------------------------------------
# errors


def test_missing_meta_file(tree, tmp_path):
    root = variant(tree, tmp_path / "root", meta1=False)
    with pytest.raises(MissingFileError, match="vox1_meta.csv") as error:
        voxceleb.prepare(root, output_dir=tmp_path / "out", progress=False)
    assert f"'{root / 'vox1'}' nor '{root}'" in str(error.value)
    assert not (tmp_path / "out" / "database.yml").exists()


def test_missing_trial_lists(tree, tmp_path):
    root = variant(tree, tmp_path / "root", vox2=False, lists={})
    with pytest.raises(MissingFileError) as error:
        voxceleb.prepare(root, output_dir=tmp_path / "out", progress=False)
    message = str(error.value)
    assert "No VoxCeleb protocol can be declared" in message
    assert "veri_test2.txt nor veri_test.txt" in message and str(root / "vox1") in message
    nowhere = tmp_path / "nowhere" / "veri_test2.txt"
    with pytest.raises(MissingFileError, match=r"'.*nowhere/veri_test2.txt' \(given with --trials\) does not exist"):
        voxceleb.prepare(root, output_dir=tmp_path / "out", trials=[nowhere], progress=False)
    with pytest.raises(ConfigError, match="unknown file name 'trials.txt'.*veri_test2.txt"):
        voxceleb.prepare(root, output_dir=tmp_path / "out", trials=[tmp_path / "trials.txt"], progress=False)


def test_listed_files_absent_and_missing_meta_in_one_error(tree, tmp_path):
    _, lists = tree
    absent = [f"1 id10270/{letter * 11}/00009.wav id10270/yt0270-A_ab/00001.wav\n" for letter in "abcd"]
    bad = {**lists, "veri_test2.txt": lists["veri_test2.txt"] + absent}
    root = variant(tree, tmp_path / "root", meta2=False, lists=bad)
    with pytest.raises(MissingFileError) as error:
        voxceleb.prepare(root, output_dir=tmp_path / "out", progress=False)
    message = str(error.value)
    assert "4 of the 12 files of trial list" in message and "veri_test2.txt" in message
    assert f"{root / 'vox1' / 'wav' / 'id10270' / 'aaaaaaaaaaa' / '00009.wav'}" in message and "..." in message
    assert "vox2_meta.csv" in message  # both problems, one error
    assert not (tmp_path / "out").exists()


def test_training_speaker_in_trials_is_refused(tree, tmp_path):
    """An E/H-like overlap: VoxCeleb1-O trials that use VoxCeleb1 dev speakers"""
    _, lists = tree
    overlap = lists["veri_test2.txt"] + ["0 id10001/yt0001-A_ab/00001.wav id10270/yt0270-A_ab/00001.wav\n"]
    root = variant(tree, tmp_path / "root", lists={"veri_test2.txt": overlap})
    with pytest.raises(DataError, match=r"VoxCeleb1 would train on 1 speaker\(s\) of its trials.*veri_test2.*id10001"):
        voxceleb.prepare(root, output_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "database.yml").exists()


def test_trial_label_contradicting_speakers(tree, tmp_path):
    wrong = ["1 id10270/yt0270-A_ab/00001.wav id10271/yt0271-A_ab/00001.wav\n"]  # two speakers
    root = variant(tree, tmp_path / "root", lists={"veri_test2.txt": wrong})
    with pytest.raises(DataError, match="veri_test2.txt, line 1: label 1 but the files are of two speakers"):
        voxceleb.prepare(root, output_dir=tmp_path / "out", progress=False)


def test_options(tree, tmp_path):
    root, _ = tree
    with pytest.raises(ConfigError, match="--exclude-bad needs --check-audio"):
        voxceleb.prepare(root, output_dir=tmp_path, exclude_bad=True)
    with pytest.raises(ConfigError, match="cannot download"):
        prepare_corpus("voxceleb", root=root, output_dir=tmp_path, download=True)


def test_check_audio_and_exclude_bad(tree, tmp_path):
    root, lists = tree
    copy = variant(tree, tmp_path / "root", vox2=False, lists={"veri_test2.txt": lists["veri_test2.txt"]})
    (copy / "vox1" / "wav").unlink()
    for source in (root / "vox1" / "wav").rglob("*.wav"):
        target = copy / "vox1" / "wav" / source.relative_to(root / "vox1" / "wav")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)
    broken = copy / "vox1" / "wav" / "id10271" / "yt0271-B_ab" / "00002.wav"
    broken.unlink()
    broken.write_bytes(b"not audio" * 100)
    with pytest.raises(AudioDecodingError, match="(?s)1 of 32 audio files fail to decode.*00002.wav"):
        voxceleb.prepare(copy, output_dir=tmp_path / "out", check_audio=True, num_workers=2, progress=False)
    assert not (tmp_path / "out" / "database.yml").exists()
    with pytest.warns(UserWarning, match="7 of the 28 trials of .*veri_test2.txt.* are dropped"):
        yml = voxceleb.prepare(copy, output_dir=tmp_path / "out", check_audio=True, exclude_bad=True,
                               num_workers=2, progress=False)
    assert lines_of(tmp_path / "out" / "vox1-o.trial") == 21
    assert str(broken) in (tmp_path / "out" / "bad_files.txt").read_text()
    assert len(list(get_protocol(name("VoxCeleb1"), database_yml=yml).test_trial())) == 21


# ---------------------------------------------------------------------------
# idempotence, resuming, command line


def snapshot(directory: Path) -> dict:
    return {p.name: (p.lstat().st_mtime_ns, p.read_bytes() if not p.is_symlink() else os.readlink(p))
            for p in directory.iterdir()}


def test_prepare_twice_changes_nothing(prepared, tree):
    root, _ = tree
    before = snapshot(prepared.parent)
    assert voxceleb.prepare(root, output_dir=prepared.parent, progress=False) == prepared
    assert snapshot(prepared.parent) == before


def test_interrupted_durations_resume_from_cache(tree, tmp_path, monkeypatch):
    root, _ = tree
    files = sorted(map(str, (root / "vox1" / "wav").rglob("*.wav")))
    files += sorted(map(str, (root / "vox2" / "aac").rglob("*.m4a")))
    cache = tmp_path / "out" / "durations.tsv"
    read_durations(files[:20], cache=cache, progress=False)  # a run interrupted after 20 files
    assert len(cache.read_text().splitlines()) == 20
    read = []
    original = audio_module.audio_duration
    monkeypatch.setattr(audio_module, "audio_duration", lambda path: read.append(path) or original(path))
    voxceleb.prepare(root, output_dir=tmp_path / "out", progress=False)
    assert sorted(read) == files[20:]  # only the others are read
    lines = cache.read_text().splitlines()
    assert len(lines) == len(set(lines)) == len(files) == 56
    assert {line.split("\t")[0] for line in lines} == set(files)


def test_command_line(tree, tmp_path):
    root, lists = tree
    (tmp_path / "veri_test.txt").write_text("".join(lists["veri_test.txt"]))
    result = run_cli("prepare", "voxceleb", "--root", root, "--output", tmp_path / "out",
                     "--trials", tmp_path / "veri_test.txt", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "declared by" in result.stdout and str(tmp_path / "out" / "database.yml") in result.stdout
    assert lines_of(tmp_path / "out" / "vox1-o.trial") == 10
    assert lines_of(tmp_path / "out" / "vox1-e.trial") == 64


# ---------------------------------------------------------------------------
# training on the protocols


REPOSITORY = Path(__file__).resolve().parents[1]
SMALL = """\
protocol: VoxCeleb.SpeakerVerification.VoxCeleb2
seed: 0
task:
  name: aam
  params: {duration: 1.0, num_classes_per_batch: 6, batches_per_epoch: 3, num_workers: 0}
architecture:
  name: SincTDNN
  params: {frontend: fbank, n_mels: 40, channels: [32, 32, 32, 32, 64], dimension: 32}
trainer:
  max_epochs: 1
"""


@pytest.mark.slow
def test_train_then_evaluate_on_a_voxceleb_protocol(prepared, tmp_path):
    experiment = tmp_path / "small"
    experiment.mkdir()
    (experiment / "config.yml").write_text(SMALL)
    result = run_cli("train", experiment, "--database", prepared, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = yaml.safe_load((experiment / "training.json").read_text())
    assert summary["num_speakers"] == len(VOX2_DEV) and summary["steps"] == 3
    result = run_cli("evaluate", experiment, "--database", prepared, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    results = yaml.safe_load(
        (experiment / "results" / "VoxCeleb.SpeakerVerification.VoxCeleb2.test.json").read_text()
    )
    assert results["num_trials"] == 28 and results["num_files"] == 8
    assert "AS-norm" in result.stdout  # cohort of the VoxCeleb2 training speakers


@pytest.mark.slow
def test_the_papers_full_recipes_build_and_train_a_few_steps(prepared, corpus_root, tmp_path, monkeypatch):
    from pyannote_embloss.experiment import Experiment
    from pyannote_embloss.training.run import train

    musan = tmp_path / "musan"
    for i, source in enumerate(sorted((corpus_root / "WAVE").glob("*/*.flac"))[:30]):
        target = musan / ("noise", "music", "speech")[i % 3] / f"{i:02d}.flac"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    monkeypatch.setenv("MUSAN", str(musan))
    configs = sorted((REPOSITORY / "experiments" / "voxceleb").glob("*/config.yml"))
    assert [c.parent.name for c in configs] == sorted(["aam", "am", "center", "coco", "contrastive", "softmax", "triplet"])
    for config in configs:
        experiment = Experiment.load(config.parent)
        assert experiment.config.architecture.params["frontend"] == "sincnet"
        assert experiment.config.trainer["precision"] == "16-mixed"
        # a copy, trained a couple of steps on CPU, on the miniature tree (with development trials), with a
        # batch of its 4 training speakers
        directory = tmp_path / config.parent.name
        directory.mkdir()
        settings = experiment.config.to_dict()
        settings["task"]["params"]["num_classes_per_batch"] = 4
        copy = Experiment(directory=directory, config=settings)
        summary = train(
            copy, protocol="VoxCeleb.SpeakerVerification.VoxCeleb1_X", database=str(prepared),
            max_epochs=1, batches_per_epoch=2, num_workers=0, progress_bar=False,
            accelerator="cpu", devices=1, strategy="auto", precision="32-true",
        )
        assert summary["steps"] == 2, config
        assert summary["dev_eer"] is not None
