"""`pyannote-audio-emb export EXPERIMENT_DIR --output OUT.onnx`: same embeddings in onnxruntime"""


import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from pyannote_embloss.data.audio import load_audio
from pyannote_embloss.inference.loading import load_model
from pyannote_embloss.data.protocols import get_protocol

from helpers import PROTOCOL, run_cli


@pytest.fixture(scope="module")
def exported(trained_experiment, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "embedding.onnx"
    result = run_cli("export", trained_experiment, "--output", path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "waveforms (batch, 1, samples)" in result.stdout
    return path


@pytest.fixture(scope="module")
def real_audio(speechocean762_yml):
    """Real speech of 0.2 s, 1 s, 3 s and 10 s: test utterances cropped, or concatenated"""
    from pyannote.audio.core.io import Audio

    audio = Audio(sample_rate=16000, mono="downmix")
    files = [str(f["audio"]) for f, _ in zip(get_protocol(PROTOCOL, database_yml=speechocean762_yml).test(), range(8))]
    speech = torch.cat([load_audio(audio, path) for path in files], dim=1)
    assert speech.shape[1] > 10 * 16000
    return {duration: speech[:, 16000 : 16000 + round(duration * 16000)] for duration in (0.2, 1.0, 3.0, 10.0)}


def test_onnx_embeddings_match_torch(exported, trained_experiment, real_audio):
    model = load_model(trained_experiment / "checkpoints" / "best.ckpt")
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (inputs,), (outputs,) = session.get_inputs(), session.get_outputs()
    assert inputs.name == "waveforms" and outputs.name == "embeddings"
    # dynamic batch and sample axes
    assert isinstance(inputs.shape[0], str) and isinstance(inputs.shape[2], str)

    gaps = {}
    for duration, waveform in real_audio.items():
        # a batch of two different excerpts of the same length
        batch = torch.stack([waveform, waveform.flip(-1)])
        with torch.inference_mode():
            expected = model(batch).numpy()
        (actual,) = session.run(None, {"waveforms": batch.numpy()})
        assert actual.shape == (2, 128)
        cosine = np.sum(actual * expected, axis=1) / np.linalg.norm(actual, axis=1) / np.linalg.norm(expected, axis=1)
        gaps[duration] = float(1 - cosine.min())
        assert cosine.min() > 0.999, (duration, cosine)
    print("ONNX vs torch, 1 - cosine:", gaps)
    # 0.2 s is shorter than the receptive field: repeated in ONNX as in torch
    assert model.min_num_samples > real_audio[0.2].shape[1]


def test_onnx_has_no_loss_head_and_no_temporary_file(exported, trained_experiment):
    graph = onnx.load(str(exported)).graph
    shapes = [tuple(initializer.dims) for initializer in graph.initializer]
    # the AAM classifier is 128 x 125 (speakers): not exported
    assert not any(set(shape) == {128, 125} for shape in shapes)
    assert (128, 3000) in shapes or (3000, 128) in shapes  # final embedding layer (2 x 1500 -> 128)
    assert not list(exported.parent.glob("*.tmp"))


def test_export_errors(tmp_path):
    (tmp_path / "config.yml").write_text("task: {name: aam}\n")
    result = run_cli("export", tmp_path, "--output", tmp_path / "out.onnx")
    assert result.returncode == 2
    assert "No checkpoint" in result.stderr and "pyannote-audio-emb train" in result.stderr
    assert not (tmp_path / "out.onnx").exists()


def test_log_mel_front_end_exports_too(real_audio, tmp_path):
    # the default recipe's SincTDNN(frontend="fbank"): STFT and mel filterbank in the ONNX graph
    from pyannote_embloss.inference.export import export_onnx
    from pyannote_embloss.models import SincTDNN

    torch.manual_seed(0)
    model = SincTDNN(frontend="fbank", channels=[32, 32, 32, 32, 64], dimension=16).eval()
    path = export_onnx(model, tmp_path / "fbank.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for duration in (0.2, 3.0, 10.0):
        batch = real_audio[duration][None]
        with torch.inference_mode():
            expected = model(batch).numpy()
        (actual,) = session.run(None, {"waveforms": batch.numpy()})
        cosine = np.sum(actual * expected) / np.linalg.norm(actual) / np.linalg.norm(expected)
        assert cosine > 0.999, (duration, cosine)
