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
