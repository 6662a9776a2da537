"""No NaN on short audio: every architecture, through the plugin's loader, pyannote.audio's and ONNX

Statistics pooling needs two frames (the unbiased standard deviation of one
frame is not a number): each model repeats audio shorter than its
``min_num_samples`` inside ``forward``. Untrained models (real Lightning
checkpoints, with a loss head), real speech cropped to 0.05-0.25 s, to one
25 ms frame, and to one sample short of the minimum (a single pooled frame).
"""

import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import scipy.io.wavfile
import torch
from pyannote.audio import Inference, Model
from pyannote.audio.core.io import Audio

import pyannote_embloss
from pyannote_embloss.data.audio import load_audio
from pyannote_embloss.errors import DataError, ExportError
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.inference.export import export_onnx
from pyannote_embloss.models import ECAPATDNN, LogMelStatistics, SincTDNN, WeSpeakerResNet34, get_architecture
from pyannote_embloss.data.protocols import get_protocol

from helpers import PROTOCOL, save_untrained_checkpoint

REPOSITORY = Path(__file__).resolve().parents[1]


def default_recipe_model():
    """experiments/aam's network: SincTDNN with the log-mel front-end (its 0.18 s files gave NaN)"""
    section = Experiment.load(REPOSITORY / "experiments" / "aam").config.architecture
    return get_architecture(section.name)(**section.params)


ARCHITECTURES = {
    "SincTDNN-sincnet": lambda: SincTDNN(channels=[32, 32, 32, 32, 64], dimension=16),
    "SincTDNN-fbank": default_recipe_model,
    "LogMelStatistics": LogMelStatistics,
    "ECAPATDNN": lambda: ECAPATDNN(channels=64, aggregation_channels=192, dimension=32),
    "WeSpeakerResNet34": WeSpeakerResNet34,
}

#: durations of Deliver 4, in seconds
DURATIONS = (0.05, 0.1, 0.18, 0.25)

#: minimum durations stated in the docstrings (16 kHz, default hyper-parameters)
MIN_NUM_SAMPLES = {"SincTDNN-sincnet": 2646, "SincTDNN-fbank": 2912, "LogMelStatistics": 672, "ECAPATDNN": 672, "WeSpeakerResNet34": 1680}

#: module whose input is the pooled frame-level features
POOLING = {"SincTDNN-sincnet": "stats_pool", "SincTDNN-fbank": "stats_pool", "ECAPATDNN": "pooling", "WeSpeakerResNet34": "resnet.pool"}


@pytest.fixture(scope="module")
def speech(speechocean762_yml):
    """(1, 16000) tensor: one second of a SpeechOcean762 test utterance"""
    path = str(next(iter(get_protocol(PROTOCOL, database_yml=speechocean762_yml).test()))["audio"])
    waveform = load_audio(Audio(sample_rate=16000, mono="downmix"), path)
    return waveform[:, 8000:24000]


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def architecture(request, tmp_path_factory):
    """(name, checkpoint saved by a Lightning trainer, ONNX file or None)"""
    name = request.param
    directory = tmp_path_factory.mktemp(name)
    torch.manual_seed(0)
    model = ARCHITECTURES[name]().eval()
    checkpoint = save_untrained_checkpoint(model, directory / "model.ckpt")
    onnx = None
    if name != "LogMelStatistics":  # torch.quantile has no ONNX operator (test below)
        onnx = export_onnx(model, directory / "model.onnx")
    return name, checkpoint, onnx


def short_inputs(model, speech):
    """{label: (1, num_samples)} real speech excerpts shorter than most receptive fields"""
    sizes = {f"{d:g} s": round(d * 16000) for d in DURATIONS}
    sizes["one 25 ms frame"] = 400
    sizes["one pooled frame"] = model.min_num_samples - 1
    return {label: speech[:, :size] for label, size in sizes.items()}


def test_pooling_gets_two_frames_at_the_minimum(architecture):
    name, checkpoint, _ = architecture
    model = pyannote_embloss.load(checkpoint).model
    assert model.min_num_samples == MIN_NUM_SAMPLES[name]
    assert model.min_duration == pytest.approx(MIN_NUM_SAMPLES[name] / 16000)
    if name not in POOLING:  # LogMelStatistics pools inline (with a finite std for one frame)
        return
    frames = []
    hook = model.get_submodule(POOLING[name]).register_forward_pre_hook(lambda _, args: frames.append(args[0].shape[-1]))
    with torch.inference_mode():
        model(torch.randn(1, 1, model.min_num_samples))
    hook.remove()
    assert frames == [2]


def test_short_files_get_finite_embeddings(architecture, speech, tmp_path):
    name, checkpoint, onnx = architecture
    plugin = pyannote_embloss.load(checkpoint, window="whole")  # sliding windows: one covering a short file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pyannote_model = Model.from_pretrained(checkpoint)
    assert not [w for w in caught if "loss function" in str(w.message)]  # loss_func.W dropped cleanly
    inference = Inference(pyannote_model, window="whole")
    session = onnx and onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    dimension = plugin.dimension

    for label, waveform in short_inputs(plugin.model, speech).items():
        path = tmp_path / f"{label}.wav"
        scipy.io.wavfile.write(path, 16000, (waveform[0].numpy() * 32767).astype(np.int16))
        embeddings = {"pyannote_embloss.load": plugin(str(path)), "pyannote.audio Inference": inference(str(path))}
        if session is not None:
            (embeddings["ONNX"],) = session.run(None, {"waveforms": plugin.model.audio(str(path))[0][None].numpy()})
        for route, embedding in embeddings.items():
            assert embedding.size == dimension, (name, label, route)
            assert np.isfinite(embedding).all(), (name, label, route)
        reference = embeddings["pyannote_embloss.load"].reshape(-1)
        for route, embedding in embeddings.items():
            embedding = np.asarray(embedding).reshape(-1)
            cosine = reference @ embedding / np.linalg.norm(reference) / np.linalg.norm(embedding)
            assert cosine > 0.999, (name, label, route, cosine)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_empty_audio_is_a_clear_error(name):
    with pytest.raises(DataError, match="cannot embed empty audio"):
        ARCHITECTURES[name]().eval()(torch.zeros(1, 1, 0))


def test_log_mel_statistics_cannot_be_exported_and_says_so(tmp_path):
    with pytest.raises(ExportError, match="LogMelStatistics cannot be exported to ONNX: .*quantile"):
        export_onnx(LogMelStatistics(), tmp_path / "baseline.onnx")
    assert not list(tmp_path.iterdir())
