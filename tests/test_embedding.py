"""One embedding module: windows, and long files read block by block with the same result"""

import numpy as np
import pytest
import scipy.io.wavfile
import torch

from pyannote_embloss.data.audio import load_audio
from pyannote_embloss.inference.embedding import LongAudio, Window, embed_files, iter_embeddings, open_audio
from pyannote_embloss.errors import ConfigError
from pyannote_embloss.models import SincTDNN


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SincTDNN(stride=10, channels=[32, 32, 32, 32, 64], dimension=16).eval()


@pytest.fixture(scope="module")
def long_file(corpus_root, tmp_path_factory, model):
    """A 3-minute recording made of 60 real utterances"""
    files = sorted((corpus_root / "WAVE").glob("*/*.flac"))[:60]
    waveform = torch.cat([load_audio(model.audio, str(f)) for f in files], dim=1)
    path = tmp_path_factory.mktemp("long") / "long.wav"
    scipy.io.wavfile.write(path, 16000, (waveform[0].numpy() * 32767).astype(np.int16))
    return path


def test_window_defaults_and_errors(model):
    with pytest.raises(ConfigError, match="no training specifications"):
        Window("sliding").resolve(model)
    window = Window("sliding", duration=2.0).resolve(model)
    assert (window.duration, window.step) == (2.0, 0.5)
    starts, size, frames = window.positions(model, 16000 * 5)
    assert size == 32000 and starts == list(range(0, 48001, 8000)) and frames.step == 0.5
    assert Window("sliding", 3.0).positions(model, 16000)[0:2] == ([0], 16000)  # one window covering a short file
    for bad, message in [(dict(kind="full"), "Unknown window 'full'"),
                         (dict(kind="whole", step=1.0), "sliding window options"),
                         (dict(kind="sliding", duration=-1.0), "must be positive")]:
        with pytest.raises(ConfigError, match=message):
            Window(**bad)


def test_long_files_are_read_block_by_block_with_the_same_embeddings(model, long_file):
    waveform = load_audio(model.audio, str(long_file))
    assert waveform.shape[-1] > 3 * 60 * 16000 * 0.99
    streamed = open_audio(model, str(long_file))
    assert isinstance(streamed, LongAudio) and streamed.shape == (1, waveform.shape[-1])
    # whole file: pieces of 60 s, averaged; the same whether the file is in memory or streamed
    ((_, in_memory),) = iter_embeddings(model, [("f", waveform)])
    np.testing.assert_array_equal(embed_files(model, [str(long_file)], progress=False)[0], in_memory)
    window = Window("sliding", duration=2.0, step=0.5)
    ((_, expected),) = iter_embeddings(model, [("f", waveform)], window=window)
    ((_, actual),) = iter_embeddings(model, [("f", LongAudio(model, str(long_file), waveform.shape[-1] / 16000))],
                                     window=window)
    assert actual.data.shape == expected.data.shape == ((waveform.shape[-1] - 32000) // 8000 + 1, 16)
    np.testing.assert_array_equal(actual.data, expected.data)
    # at most two decoded blocks are kept
    assert len(streamed._cache) == 0
    streamed.check()
    assert len(streamed._cache) == 2


# --- batched extraction (issue 36): files of equal length share forward passes, same embeddings --------------


def recipe_model():
    """The recipe's architecture (log-mel SincTDNN, experiments/aam), small and untrained"""
    torch.manual_seed(0)
    return SincTDNN(frontend="fbank", n_mels=60, channels=[64, 64, 64, 64, 128], dimension=32).eval()


@pytest.fixture(scope="module")
def utterances(corpus_root, tmp_path_factory):
    """Real utterances of many lengths, with groups of exactly equal lengths, and segments

    Real files (some sharing a length), crops of others to exactly 2 s and to
    1.25 s, and segments of 1.5 s of yet others.
    """
    from pyannote.audio.core.io import Audio

    from pyannote_embloss.data.audio import audio_duration

    audio = Audio(sample_rate=16000, mono="downmix")
    corpus = sorted((corpus_root / "WAVE").glob("*/*.flac"))[:200]
    by_length: dict = {}
    for path in corpus:
        by_length.setdefault(audio_duration(path), []).append(str(path))
    shared = [group for group in by_length.values() if len(group) > 1][:3]  # real files of equal length
    singles = [group[0] for group in by_length.values() if len(group) == 1][:8]
    assert len(shared) == 3 and len(singles) == 8
    directory = tmp_path_factory.mktemp("crops")
    crops = []
    for n, (source, samples) in enumerate(zip(corpus[-8:], [32000] * 5 + [20000] * 3)):
        waveform = load_audio(audio, str(source))[0, :samples]
        assert waveform.shape[-1] == samples
        crops.append(str(directory / f"crop{n}.wav"))
        scipy.io.wavfile.write(crops[-1], 16000, (waveform.numpy() * 32767).astype(np.int16))
    paths = [p for group in shared for p in group] + singles + crops + [str(p) for p in corpus[-11:-8]]
    segments = [None] * (len(paths) - 3) + [(0.25, 1.75), (1.0, 2.5), (0.5, 2.0)]
    return paths, segments


def one_by_one(model, paths, segments):
    """The extraction before batching: each file alone"""
    return np.stack(
        [embed_files(model, [p], progress=False, segments=[s], batch_size=1)[0] for p, s in zip(paths, segments)]
    )


def cosine_scores(embeddings):
    normalized = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return normalized @ normalized.T


@pytest.mark.parametrize("architecture", ["sincnet", "fbank"])
def test_batched_extraction_gives_the_embeddings_of_one_by_one(architecture, model, utterances):
    model = model if architecture == "sincnet" else recipe_model()
    paths, segments = utterances
    expected = one_by_one(model, paths, segments)
    batches = []
    hook = model.register_forward_hook(lambda module, inputs, output: batches.append(tuple(inputs[0].shape)))
    try:
        batched = embed_files(model, paths, progress=False, segments=segments, batch_size=32)
    finally:
        hook.remove()
    # files of equal length shared forward passes (the crops of 2 s and of 1.25 s, the segments of 1.5 s, the
    # real files of equal length), one forward pass per length: never padded
    by_length = {shape[-1]: shape[0] for shape in batches}
    assert len(by_length) == len(batches) < len(paths) and sum(by_length.values()) == len(paths)
    assert by_length[32000] >= 5 and by_length[20000] >= 3 and sorted(by_length.values())[-4] >= 2
    # same embeddings and the same scores as one by one, to 1e-5
    assert np.abs(batched - expected).max() <= 1e-5 * np.abs(expected).max()
    np.testing.assert_allclose(cosine_scores(batched), cosine_scores(expected), atol=1e-5)


def test_batched_extraction_keeps_the_cache_semantics(model, utterances, tmp_path):
    from pyannote_embloss.errors import AudioDecodingError
    from pyannote_embloss.inference.cache import EmbeddingCache

    paths, segments = utterances
    expected = one_by_one(model, paths, segments)
    cache = EmbeddingCache(tmp_path / "embeddings", model="test", extraction={})
    embedded = []
    hook = model.register_forward_hook(lambda module, inputs, output: embedded.append(inputs[0].shape[0]))
    try:
        # half of them first: computed and stored
        first = embed_files(model, paths[::2], progress=False, segments=segments[::2], cache=cache)
        assert (cache.hits, cache.misses, sum(embedded)) == (0, len(paths[::2]), len(paths[::2]))
        # then all: the cached ones are read, only the others embedded (in batches), and stored
        embedded.clear()
        batched = embed_files(model, paths, progress=False, segments=segments, cache=cache)
        missing = len(paths) - len(paths[::2])
        assert (cache.hits, sum(embedded)) == (len(paths[::2]), missing) and len(embedded) < missing
        np.testing.assert_array_equal(batched[::2], first)
        assert np.abs(batched - expected).max() <= 1e-5 * np.abs(expected).max()
        # a third time: nothing embedded
        embedded.clear()
        again = embed_files(model, paths, progress=False, segments=segments, cache=cache)
        assert embedded == [] and np.array_equal(again, batched)
        # a file that does not decode comes last: the others are embedded and stored, then it is named
        fresh = EmbeddingCache(tmp_path / "fresh", model="test", extraction={})
        corrupt = tmp_path / "corrupt.flac"
        corrupt.write_bytes(b"fLaC" + bytes(range(256)) * 8)
        with pytest.raises(AudioDecodingError, match="corrupt.flac"):
            embed_files(model, [str(corrupt)] + paths[:6], progress=False, cache=fresh)
        assert all(fresh.get(fresh.key(p)) is not None for p in paths[:6])
    finally:
        hook.remove()


def test_evaluate_refuses_a_device_this_machine_does_not_have_in_one_line():
    from pathlib import Path

    from typer.testing import CliRunner

    from pyannote_embloss.cli import app

    experiment = Path(__file__).resolve().parents[1] / "experiments" / "aam"
    runner = CliRunner()
    cases = [("--batch-size", "0", "--batch-size must be an integer >= 1"), ("--device", "tpu9", "Unknown device 'tpu9'")]
    if not torch.cuda.is_available():
        cases += [("--device", "cuda", "Device 'cuda' is not available"), ("--device", "cuda:1", "Device 'cuda:1'")]
    for option, value, message in cases:
        result = runner.invoke(app, ["evaluate", str(experiment), option, value])
        assert result.exit_code == 2, (option, value, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], result.output
