"""Shared test fixtures

The speechocean762 corpus is always available to the tests (CI included): a
missing corpus is a test failure, not a skip.
"""

import os
import shutil
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")  # no pyannote.audio telemetry from tests
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # `pytest -n N`: the cores shared between workers (their subprocesses too)
    os.environ.setdefault(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    )

from pyannote_embloss.errors import CorpusNotFoundError  # noqa: E402
from pyannote_embloss.data.protocols.speechocean762 import find_corpus, prepare  # noqa: E402


#: fixtures that train a model: the tests using them are in the slow tier
TRAINING_FIXTURES = {"trained_experiment", "checkpoint", "pretrained", "segmentation"}


def pytest_report_header(config):
    """The stack the tests run on (CI tests two: .ci/test)"""
    from importlib.metadata import version

    packages = ("torch", "torchaudio", "torchcodec", "pyannote.audio", "lightning", "numpy")
    return "stack: " + ", ".join(f"{p} {version(p)}" for p in packages)


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs a trained model as slow (`pytest -m "not slow"` skips them)"""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """Root of the speechocean762 corpus (see `find_corpus` for where it is looked for)"""
    try:
        return find_corpus()
    except CorpusNotFoundError as error:
        pytest.fail(f"The tests need the speechocean762 corpus.\n{error}", pytrace=False)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]) -> Path:
    """`build(directory)` once per test run, whatever the number of pytest-xdist workers

    Alone, `directory` is a new temporary folder. Under pytest-xdist
    (``pytest -n 2``), the workers share the run's temporary root: the first
    to get there builds, under a file lock, and the others wait and reuse what
    it built (a session fixture would otherwise be built once per worker).
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    directory = tmp_path_factory.getbasetemp().parent / name
    done = directory.with_name(f"{name}.done")
    with FileLock(str(directory.with_name(f"{name}.lock"))):
        if done.is_file():
            return Path(done.read_text())
        if directory.exists():  # a worker that failed half-way
            shutil.rmtree(directory)
        directory.mkdir()
        result = build(directory)
        done.write_text(str(result))
        return result


@pytest.fixture(scope="session")
def speechocean762_yml(corpus_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """database.yml of SpeechOcean762.SpeakerVerification.Default, prepared once per session

    Files are written to <tmp>/data/speechocean762/, mirroring the repository
    layout (so a copy of the repository's database.yml put in <tmp> works too).
    Load it with ``get_protocol(PROTOCOL, database_yml=speechocean762_yml)``.
    """
    return built_once(
        tmp_path_factory, "repository",
        lambda repository: prepare(root=corpus_root, output_dir=repository / "data" / "speechocean762"),
    )


#: a small but real experiment: SincTDNN (stride 10, 128-d) + AAM, 3 epochs of 20 batches of 32 chunks
SMALL_EXPERIMENT_CONFIG = """\
protocol: SpeechOcean762.SpeakerVerification.Default
seed: 0
task:
  name: aam
  params:
    duration: 2.0
    num_classes_per_batch: 32
    num_chunks_per_class: 1
    batches_per_epoch: 20
    num_workers: 1
    margin: 0.05
    scale: 10.0
architecture:
  name: SincTDNN
  params: {stride: 10, dimension: 128}
optimizer:
  name: Adam
  params: {lr: 0.001}
trainer:
  max_epochs: 3
"""


@pytest.fixture(scope="session")
def trained_experiment(tmp_path_factory: pytest.TempPathFactory, speechocean762_yml: Path) -> Path:
    """Experiment directory trained once per session with `pyannote-audio-emb train`

    SMALL_EXPERIMENT_CONFIG on SpeechOcean762.SpeakerVerification.Default (a
    couple of minutes on 2 CPU cores). Its checkpoints/best.ckpt is shared
    by the tests: do not modify the directory.
    """
    import subprocess
    import sys

    def build(experiment: Path) -> Path:
        (experiment / "config.yml").write_text(SMALL_EXPERIMENT_CONFIG)
        result = subprocess.run(
            [sys.executable, "-m", "pyannote_embloss.cli", "train", str(experiment),
             "--database", str(speechocean762_yml), "--no-progress"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0"},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return experiment

    return built_once(tmp_path_factory, "experiment", build)


@pytest.fixture(scope="session")
def checkpoint(trained_experiment: Path) -> Path:
    """best.ckpt of the session's trained experiment"""
    return trained_experiment / "checkpoints" / "best.ckpt"


@pytest.fixture(scope="session")
def tiny_protocol_yml(corpus_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny.SpeakerVerification.Default: a few quick steps of training and a quick evaluation

    SpeechOcean762: train on 3 whole files of 4 speakers; test on 1.5 s
    excerpts (0.5-2 s) of 2 files of 4 other speakers (8 files, every target
    trial and as many non-target ones). No development subset.
    """
    from pyannote_embloss.data.protocols.writer import ProtocolWriter, Utterance, make_trials, with_durations

    by_speaker = {}
    for path in sorted((corpus_root / "WAVE").glob("*/*.*")):
        by_speaker.setdefault(path.parent.name, []).append(path)
    speakers = sorted(by_speaker)[:8]
    train = [Utterance(f"{s}/{p.stem}", s, p) for s in speakers[:4] for p in by_speaker[s][:3]]
    test = [Utterance(f"{s}/{p.stem}", s, p, start=0.5, end=2.0) for s in speakers[4:] for p in by_speaker[s][:2]]

    def build(directory: Path) -> Path:
        writer = ProtocolWriter(directory, "Tiny")
        writer.add_subset("train", with_durations(train, progress=False))
        writer.add_subset("test", with_durations(test, progress=False))
        writer.add_trials("test", make_trials(test, seed="tiny"))
        writer.add_protocol("SpeakerVerification", "Default", train="train", test=("test", "test"))
        return writer.write()

    return built_once(tmp_path_factory, "tiny", build)
