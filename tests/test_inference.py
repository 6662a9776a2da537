"""Quick usage, as in the paper: torch.hub / pyannote_embloss.load, then cdist

Real SpeechOcean762 audio and the session's trained checkpoint.
"""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from pyannote.audio import Inference
from pyannote.core import Segment, SlidingWindowFeature
from scipy.spatial.distance import cdist

import pyannote_embloss
from pyannote_embloss.data.audio import AudioDecodingError
from pyannote_embloss.inference.pretrained import SpeakerEmbedding
from pyannote_embloss.inference.loading import load_model
from pyannote_embloss.data.protocols import get_protocol

from helpers import PROTOCOL

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def test_files(speechocean762_yml):
    """{speaker: [audio paths]}: 4 utterances of 10 test speakers (never seen in training)"""
    files = {}
    for file in get_protocol(PROTOCOL, database_yml=speechocean762_yml).test():
        files.setdefault(file["annotation"].labels()[0], []).append(str(file["audio"]))
    return {speaker: sorted(paths)[:4] for speaker, paths in sorted(files.items())[:10]}


def test_torch_hub_and_load_give_the_same_callable_model(checkpoint, test_files):
    hub = torch.hub.load(str(REPOSITORY), "emb", source="local", checkpoint=str(checkpoint))
    model = pyannote_embloss.load(checkpoint)
    assert isinstance(hub, SpeakerEmbedding) and isinstance(model, SpeakerEmbedding)
    assert not hasattr(model.model, "loss_func")  # inference model: no classifier

    path = next(iter(test_files.values()))[0]
    embeddings = model({"audio": path})
    assert isinstance(embeddings, SlidingWindowFeature)
    np.testing.assert_allclose(hub({"audio": path}).data, embeddings.data, atol=1e-5)

    # window = training chunk duration (2 s, from the checkpoint), step = a quarter of it
    window = embeddings.sliding_window
    assert window.duration == pytest.approx(2.0) and window.step == pytest.approx(0.5)
    num_samples = model.model.audio({"audio": path})[0].shape[-1]
    assert num_samples > 32000
    assert embeddings.data.shape == ((num_samples - 32000) // 8000 + 1, 128)
    # the last window ends within the file
    assert window[len(embeddings.data) - 1].end <= num_samples / 16000 + 1e-6


def test_paper_usage_same_speaker_pairs_are_closer(checkpoint, test_files):
    model = pyannote_embloss.load(checkpoint)
    embeddings = {path: model({"audio": path}) for paths in test_files.values() for path in paths}
    speaker = {path: s for s, paths in test_files.items() for path in paths}
    same, different = [], []
    for file1, file2 in itertools.combinations(sorted(embeddings), 2):
        # exactly the paper's usage, on two SlidingWindowFeature
        distance = np.mean(cdist(embeddings[file1], embeddings[file2], metric="cosine"))
        (same if speaker[file1] == speaker[file2] else different).append(distance)
    assert len(same) == 10 * 6 and len(different) == 45 * 16
    print(f"mean cosine distance: same speaker {np.mean(same):.4f}, different speakers {np.mean(different):.4f}")
    assert np.mean(same) < np.mean(different)


def test_whole_and_sliding_windows_match_pyannote_inference(checkpoint, test_files):
    paths = [paths[0] for paths in test_files.values()][:3]
    model = pyannote_embloss.load(checkpoint, window="whole")
    whole = np.stack([model(path) for path in paths])  # a plain path works too
    assert whole.shape == (3, 128)
    # reference: pyannote.audio's own inference, independent of the plugin's extraction
    inference = Inference(load_model(checkpoint), window="whole")
    np.testing.assert_allclose(whole, np.stack([inference(path) for path in paths]), atol=1e-5)
    sliding = pyannote_embloss.load(checkpoint, window="sliding")(paths[0])
    reference = Inference(load_model(checkpoint), window="sliding", duration=2.0, step=0.5)(paths[0])
    # the same complete windows; pyannote.audio adds a zero-padded window over the
    # remainder, which the plugin leaves out (it would embed silence as speech)
    assert len(reference.data) - len(sliding.data) in (0, 1) and len(sliding.data) >= 1
    np.testing.assert_allclose(sliding.data, reference.data[: len(sliding.data)], rtol=1e-5, atol=1e-4)
    assert sliding.sliding_window.step == pytest.approx(reference.sliding_window.step)


def test_crop_options_and_waveform_input(checkpoint, test_files):
    path = next(iter(test_files.values()))[0]
    model = pyannote_embloss.load(checkpoint, duration=1.0, step=0.25)
    assert model.duration == 1.0 and model.step == 0.25

    excerpt = model.crop({"audio": path}, Segment(0.5, 2.0))
    assert isinstance(excerpt, SlidingWindowFeature)
    # windows of 1 s every 0.25 s over 1.5 s, timed from the start of the file
    assert excerpt.data.shape == (3, 128)
    assert excerpt.sliding_window[0].start == pytest.approx(0.5)
    assert excerpt.sliding_window[2].end == pytest.approx(2.0)

    # an in-memory waveform gives the same embeddings as its file
    waveform, sample_rate = model.model.audio({"audio": path})
    from_waveform = model({"waveform": waveform, "sample_rate": sample_rate})
    np.testing.assert_allclose(from_waveform.data, model(path).data, atol=1e-5)

    # a file shorter than the window gets one window covering it
    short = model.crop(path, Segment(0.0, 0.6))
    assert short.data.shape == (1, 128) and short.sliding_window.duration == pytest.approx(0.6)

    whole = pyannote_embloss.load(checkpoint, window="whole")
    assert whole.crop(path, Segment(0.5, 2.0)).shape == (128,)


def test_clear_errors(checkpoint, tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        pyannote_embloss.load(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="Unknown window 'full'"):
        pyannote_embloss.load(checkpoint, window="full")
    with pytest.raises(ValueError, match="sliding window options"):
        pyannote_embloss.load(checkpoint, window="whole", step=0.5)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioDecodingError, match="bad.wav"):
        pyannote_embloss.load(checkpoint)({"audio": str(bad)})
    # an experiment directory is accepted in place of its best checkpoint
    assert pyannote_embloss.load(checkpoint.parents[1]).dimension == 128


def test_one_loader_for_checkpoints_experiments_and_models(corpus_root, tmp_path):
    """pyannote_embloss.load and every command load models through pyannote_embloss.inference.loading.load_model"""
    from helpers import save_untrained_checkpoint

    from pyannote_embloss.errors import ConfigError, MissingFileError
    from pyannote_embloss.experiment import DEFAULT_RECIPE, Experiment
    from pyannote_embloss.inference.loading import experiment_of
    from pyannote_embloss.models import SincTDNN

    experiment = tmp_path / "exp"
    (experiment / "checkpoints").mkdir(parents=True)
    (experiment / "config.yml").write_text(DEFAULT_RECIPE.read_text())
    torch.manual_seed(0)
    best = save_untrained_checkpoint(SincTDNN(stride=10, dimension=32), experiment / "checkpoints" / "best.ckpt")
    audio = sorted(str(p) for p in (corpus_root / "WAVE").glob("*/*.flac"))[:2]
    model = pyannote_embloss.load(best)  # the paper's usage: model({'audio': path}), then cdist
    embeddings = [model({"audio": path}) for path in audio]
    assert 0.0 <= np.mean(cdist(embeddings[0], embeddings[1], metric="cosine")) <= 2.0
    assert (model.experiment, model.checkpoint) == experiment_of(best) == (experiment, best)
    # the same weights, loaded from the file, the experiment directory, or the experiment and a checkpoint of it
    expected = model.model.state_dict()
    for loaded in (load_model(experiment), load_model(Experiment.load(experiment), checkpoint=best)):
        assert not loaded.training and not hasattr(loaded, "loss_func")
        assert all(torch.equal(expected[k], v) for k, v in loaded.state_dict().items())
    with pytest.raises(ConfigError, match="is not an experiment directory"):
        load_model(best, checkpoint=best)
    best.unlink()
    with pytest.raises(MissingFileError, match=f"train first with `pyannote-audio-emb train {experiment}`"):
        load_model(experiment)
