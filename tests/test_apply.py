"""`pyannote-audio-emb apply`: embeddings of many files to .npy, indexed, resumable"""

import csv
import os

import numpy as np
import pytest
from pyannote.audio import Inference

import pyannote_embloss
from pyannote_embloss.inference.apply import apply
from pyannote_embloss.data.audio import audio_directory_files
from pyannote_embloss.inference.cache import EmbeddingCache
from pyannote_embloss.inference.embedding import Window, embed_files
from pyannote_embloss.inference.loading import load_model
from pyannote_embloss.pipelines import SAMPLE_PROTOCOL, sample_protocol
from pyannote_embloss.data.protocols import get_protocol

from helpers import PROTOCOL, run_cli


def read_index(output):
    with open(output / "index.csv", newline="") as f:
        return {row["uri"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def test_audio(speechocean762_yml):
    """Audio paths of 6 test utterances (3 speakers x 2), by uri ("SPEAKERxxxx/yyyy")"""
    files = {}
    for file in get_protocol(PROTOCOL, database_yml=speechocean762_yml).test():
        files.setdefault(file["annotation"].labels()[0], []).append((file["uri"], str(file["audio"])))
    return dict(pair for pairs in sorted(files.values())[:3] for pair in sorted(pairs)[:2])


@pytest.fixture
def audio_dir(tmp_path, test_audio):
    """A directory of real audio files in subfolders (links to the corpus)"""
    directory = tmp_path / "audio"
    for uri, path in test_audio.items():
        link = directory / (uri + os.path.splitext(path)[1])
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return directory


def mtimes(output):
    return {path.relative_to(output): path.stat().st_mtime_ns for path in output.rglob("*.npy")}


def test_whole_file_embeddings_resume(trained_experiment, checkpoint, audio_dir, test_audio, tmp_path):
    output = tmp_path / "embeddings"
    # --no-cache: the experiment's embedding cache is shared with the other tests
    result = run_cli("apply", trained_experiment, audio_dir, "-o", output, "--no-progress", "--no-cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 files embedded, 0 read from the embedding cache, 0 already done" in result.stdout

    index = read_index(output)
    assert sorted(index) == sorted(test_audio)
    # reference: pyannote.audio's own whole-file inference (independent of the plugin's batching)
    model = load_model(checkpoint)
    inference = Inference(model, window="whole")
    expected = [inference(test_audio[uri]) for uri in sorted(index)]
    for (uri, row), embedding in zip(sorted(index.items()), expected):
        assert row["path"] == f"{uri}.npy" and "/" in uri  # uri "SPEAKERxxxx/yyyy" -> subfolder
        data = np.load(output / row["path"])
        assert data.shape == (1, 128) and data.dtype == np.float32 and int(row["rows"]) == 1
        np.testing.assert_allclose(data[0], embedding, atol=1e-5)
        assert float(row["duration"]) == pytest.approx(model.audio.get_duration(test_audio[uri]), abs=1e-3)
    assert not list(output.rglob("*.tmp"))

    # second run: nothing to do, nothing rewritten
    before = mtimes(output)
    result = run_cli("apply", trained_experiment, audio_dir, "-o", output, "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 files embedded, 0 read from the embedding cache, 6 already done" in result.stdout
    assert mtimes(output) == before and read_index(output) == index

    # one .npy deleted: only that one is recomputed
    deleted = output / index[sorted(index)[1]]["path"]
    deleted.unlink()
    result = run_cli("apply", trained_experiment, audio_dir, "-o", output, "--no-progress", "--no-cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 files embedded, 0 read from the embedding cache, 5 already done" in result.stdout
    after = mtimes(output)
    changed = {path for path in after if after[path] != before.get(path)}
    assert changed == {deleted.relative_to(output)}
    assert read_index(output) == index

    # with the experiment's cache (the default): a second output directory is filled from it
    for name in ("first", "second"):
        result = run_cli("apply", trained_experiment, audio_dir, "-o", tmp_path / name, "--no-progress")
        assert result.returncode == 0, result.stderr[-3000:]
    assert "0 files embedded, 6 read from the embedding cache, 0 already done" in result.stdout
    for uri, row in index.items():
        np.testing.assert_array_equal(np.load(tmp_path / "second" / row["path"]), np.load(output / row["path"]))
    assert read_index(tmp_path / "second") == index


def test_whole_file_embeddings_shared_with_evaluation_cache(checkpoint, audio_dir, tmp_path):
    """apply reads what evaluate's extraction stored, and stores what it computes"""
    model = load_model(checkpoint)
    cache = EmbeddingCache.for_model(tmp_path / "cache", model, checkpoint)
    files = audio_directory_files(audio_dir)  # links to the corpus: the cache keys the real file
    evaluated = embed_files(model, [path for _, path in files[:4]], progress=False, cache=cache)
    summary = apply(model, files, tmp_path / "a", progress=False, checkpoint=checkpoint, cache=cache)
    assert (summary["cached"], summary["computed"], cache.hits) == (4, 2, 4)
    for (uri, _), embedding in zip(files[:4], evaluated):
        np.testing.assert_array_equal(np.load(tmp_path / "a" / f"{uri}.npy"), embedding[np.newaxis])
    # the two apply computed are in the cache now: evaluate's extraction reads all 6
    again = embed_files(model, [path for _, path in files], progress=False, cache=cache)
    assert cache.misses == 4 + 2  # the first embed_files' 4 and apply's 2, nothing since
    for (uri, _), embedding in zip(files, again):
        np.testing.assert_array_equal(np.load(tmp_path / "a" / f"{uri}.npy")[0], embedding)
    # sliding windows do not use it
    summary = apply(model, files, tmp_path / "b", window=Window("sliding", duration=1.0, step=0.5),
                    progress=False, checkpoint=checkpoint, cache=cache)
    assert (summary["cached"], summary["computed"]) == (0, 6)


def test_sliding_windows_and_settings_check(checkpoint, audio_dir, test_audio, tmp_path):
    output = tmp_path / "sliding"
    model = load_model(checkpoint)
    summary = apply(
        model, audio_directory_files(audio_dir), output,
        window=Window("sliding", duration=1.0, step=0.5), batch_size=8, progress=False, checkpoint=checkpoint,
    )
    assert summary["computed"] == 6 and summary["skipped"] == 0
    reference = pyannote_embloss.load(checkpoint, duration=1.0, step=0.5)
    for uri, row in read_index(output).items():
        expected = reference(test_audio[uri])  # windows of all files were batched together by `apply`
        data = np.load(output / row["path"])
        assert data.shape == expected.data.shape == (int(row["rows"]), 128) and len(data) > 1
        np.testing.assert_allclose(data, expected.data, rtol=1e-5, atol=1e-4)

    # other settings in the same output directory: refused, nothing changed
    before = mtimes(output)
    with pytest.raises(FileExistsError, match="other settings.*--overwrite"):
        apply(model, audio_directory_files(audio_dir), output, progress=False, checkpoint=checkpoint)
    assert mtimes(output) == before


def test_protocol_subset(trained_experiment, tmp_path):
    database = sample_protocol(tmp_path / "protocol")  # pyannote.audio's sample.wav (30 s)
    output = tmp_path / "sample"
    result = run_cli(
        "apply", trained_experiment, SAMPLE_PROTOCOL, "-o", output, "--subset", "train", "--database", database,
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = read_index(output).values()
    assert row["uri"] == "sample" and float(row["duration"]) == pytest.approx(30.0, abs=0.01)
    assert np.load(output / "sample.npy").shape == (1, 128)


def test_decoding_error_names_the_file_and_keeps_finished_work(trained_experiment, audio_dir, tmp_path):
    # files are embedded in uri order: "<third speaker>/0" comes after the 4 files
    # of the first two speakers, before the 2 of the third one
    third_speaker = sorted(path.name for path in audio_dir.iterdir())[2]
    bad = audio_dir / third_speaker / "0.wav"
    bad.write_bytes(b"RIFF....WAVEfmt this is not audio")
    uris = sorted([str(p.relative_to(audio_dir).with_suffix("")) for p in audio_dir.rglob("*.*")])
    position = uris.index(f"{third_speaker}/0")
    assert position == 4 and len(uris) == 7
    output = tmp_path / "embeddings"

    # --no-cache: the experiment's embedding cache may hold the files after the bad one (other tests')
    result = run_cli("apply", trained_experiment, audio_dir, "-o", output, "--no-progress", "--no-cache")
    assert result.returncode == 2
    assert str(bad) in result.stderr and "Could not decode" in result.stderr
    # files before the bad one are embedded, saved and indexed
    assert sorted(read_index(output)) == uris[:position]
    assert all((output / f"{uri}.npy").is_file() for uri in uris[:position])

    # --skip-errors: the bad file is listed in failed.csv, every other file is embedded
    skipping = tmp_path / "skipping"
    result = run_cli("apply", trained_experiment, audio_dir, "-o", skipping, "--no-progress", "--skip-errors")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 file(s) failed to decode" in result.stdout
    with open(skipping / "failed.csv", newline="") as f:
        (failed,) = list(csv.DictReader(f))
    assert failed["uri"] == f"{third_speaker}/0" and failed["path"] == str(bad) and "Could not decode" in failed["error"]
    assert sorted(read_index(skipping)) == [uri for uri in uris if uri != f"{third_speaker}/0"]

    # once the bad file is removed, the run resumes with the files left
    bad.unlink()
    result = run_cli("apply", trained_experiment, audio_dir, "-o", output, "--no-progress", "--no-cache")
    assert result.returncode == 0, result.stderr[-3000:]
    left = len(uris) - 1 - position
    assert f"{left} files embedded, 0 read from the embedding cache, {position} already done" in result.stdout
    assert len(read_index(output)) == len(uris) - 1
