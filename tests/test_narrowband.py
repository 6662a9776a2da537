"""Narrowband (native 8 kHz) models: trained, evaluated and loaded in pyannote.audio on 8 kHz telephone-rate files

A user whose data is all telephone audio trains at ``sample_rate: 8000``;
pyannote.audio's ``Inference`` resamples any input to the model's rate, so
that the same model embeds 16 kHz audio too.
"""

import time

import numpy as np
import pytest
import scipy.io.wavfile
import torch
import torchaudio
from pyannote.audio.core.io import Audio

from pyannote_embloss.data.audio import load_audio
from pyannote_embloss.data.conditions import Condition
from pyannote_embloss.experiment import Experiment
from pyannote_embloss.models import ECAPATDNN, LogMelStatistics, SincTDNN, WeSpeakerResNet34
from pyannote_embloss.errors import ConfigError

#: a few seconds of training (helpers.TINY_TRAINING's) of a tiny 8 kHz SincTDNN with the log-mel front-end,
#: on telephone-rate audio, with the telephone transform
CONFIG = """\
protocol: Narrowband.SpeakerVerification.Default
seed: 0
task:
  name: aam
  params: {duration: 1.0, num_classes_per_batch: 2, num_chunks_per_class: 2, batches_per_epoch: 2, num_workers: 0}
architecture:
  name: SincTDNN
  params: {sample_rate: 8000, frontend: fbank, channels: [32, 32, 32, 32, 64], dimension: 32}
augmentation:
  probability: 0.5
  transforms: [{name: telephone}]
optimizer:
  name: Adam
  params: {lr: 0.01}
trainer:
  max_epochs: 2
"""


@pytest.fixture(scope="module")
def narrowband(corpus_root, tmp_path_factory):
    """Narrowband.SpeakerVerification.Default: 8 kHz WAV copies of SpeechOcean762 files

    Like conftest's Tiny protocol (train: 3 files of each of 4 speakers; test: 2
    files of each of 4 others), each file resampled to 8 kHz (torchaudio) and
    written as 16-bit WAV. Returns (database.yml, {uri: (8 kHz path, 16 kHz original)}).
    """
    from pyannote_embloss.data.protocols.writer import ProtocolWriter, Utterance, make_trials, with_durations

    root = tmp_path_factory.mktemp("narrowband")
    audio = Audio(sample_rate=16000, mono="downmix")
    by_speaker = {}
    for path in sorted((corpus_root / "WAVE").glob("*/*.flac")):
        by_speaker.setdefault(path.parent.name, []).append(path)
    speakers = sorted(by_speaker)[:8]
    files = {}

    def narrow(speaker, path):
        waveform = load_audio(audio, str(path))  # (1, sample) at 16 kHz, the corpus' rate
        waveform = torchaudio.functional.resample(waveform, 16000, 8000)
        target = root / "wav8k" / speaker / f"{path.stem}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        pcm = (waveform[0].clamp(-1.0, 1.0) * 32767).round().to(torch.int16).numpy()
        scipy.io.wavfile.write(target, 8000, pcm)
        files[f"{speaker}/{path.stem}"] = (target, path)
        return Utterance(f"{speaker}/{path.stem}", speaker, target)

    train = [narrow(s, p) for s in speakers[:4] for p in by_speaker[s][:3]]
    test = [narrow(s, p) for s in speakers[4:] for p in by_speaker[s][:2]]
    writer = ProtocolWriter(root / "protocol", "Narrowband")
    writer.add_subset("train", with_durations(train, progress=False))
    writer.add_subset("test", with_durations(test, progress=False))
    writer.add_trials("test", make_trials(test, seed="narrowband"))
    writer.add_protocol("SpeakerVerification", "Default", train="train", test=("test", "test"))
    return writer.write(), files


@pytest.fixture(scope="module")
def narrowband_experiment(narrowband, tmp_path_factory):
    """A tiny 8 kHz experiment trained for 2 epochs of 2 batches on the Narrowband protocol"""
    from pyannote_embloss.training.run import train

    database_yml, _ = narrowband
    directory = tmp_path_factory.mktemp("experiment")
    (directory / "config.yml").write_text(CONFIG)
    start = time.perf_counter()
    train(Experiment.load(directory), database=str(database_yml), progress_bar=False)
    print(f"8 kHz training: {time.perf_counter() - start:.1f} s")
    return directory


def test_files_are_narrowband(narrowband):
    _, files = narrowband
    for narrow, wide in list(files.values())[:3]:
        rate, samples = scipy.io.wavfile.read(narrow)
        assert rate == 8000 and samples.dtype == np.int16
        assert abs(len(samples) / 8000 - load_audio(Audio(sample_rate=16000), str(wide)).shape[-1] / 16000) < 0.01


def test_front_ends_follow_the_sample_rate():
    # the log-mel filterbank: 25 ms frames every 10 ms in samples of the model's rate, mel bands up to its Nyquist
    for rate in (8000, 16000):
        model = SincTDNN(sample_rate=rate, frontend="fbank", channels=[8, 8, 8, 8, 8], dimension=8)
        fbank = model.sincnet
        assert (fbank.win, fbank.hop) == (rate // 40, rate // 100)
        assert fbank.frame_size >= fbank.win
        mel = fbank.spectrogram.mel_scale
        assert mel.sample_rate == rate and mel.f_max == rate / 2
        assert (mel.fb.sum(dim=0) > 0).all()  # no empty band at 8 kHz either
        assert model.min_duration == pytest.approx(SincTDNN(frontend="fbank").min_duration, abs=0.01)
    for Klass in (ECAPATDNN, LogMelStatistics):
        mel = Klass(sample_rate=8000).filterbank.spectrogram.mel_scale
        assert mel.f_max == 4000 and (mel.fb.sum(dim=0) > 0).all()
    model = WeSpeakerResNet34(sample_rate=8000).eval()
    with torch.inference_mode():
        assert model(torch.randn(1, 1, 8000)).shape == (1, 256)
    # SincNet is 16 kHz only (pyannote.audio): said as a configuration error, with the way out
    with pytest.raises(ConfigError, match="frontend: fbank"):
        SincTDNN(sample_rate=8000)


def test_native_8khz_model_trains_evaluates_and_loads_in_pyannote(narrowband, narrowband_experiment):
    from pyannote.audio import Inference, Model

    from pyannote_embloss.evaluation.verification import evaluate

    database_yml, files = narrowband
    checkpoint = narrowband_experiment / "checkpoints" / "best.ckpt"
    assert checkpoint.exists()
    assert torch.load(checkpoint, weights_only=False)["hyper_parameters"]["sample_rate"] == 8000

    # evaluated on 8 kHz trials, clean and through the telephone test condition
    results = evaluate(Experiment.load(narrowband_experiment), database=str(database_yml), progress=False,
                       conditions=[Condition.parse("telephone")])
    assert 0.0 <= results["eer"] <= 100.0 and np.isfinite(results["scores"]["cosine"]).all()
    assert np.isfinite(results["condition_scores"]["telephone"]).all()

    model = Model.from_pretrained(checkpoint)
    assert model.audio.sample_rate == 8000 and not hasattr(model, "loss_func")
    inference = Inference(model, window="whole")
    test = [uri for uri in files if uri.split("/")[0] in sorted({u.split("/")[0] for u in files})[4:]]
    narrow = np.stack([inference(str(files[uri][0])) for uri in test])  # 8 kHz files
    wide = np.stack([inference(str(files[uri][1])) for uri in test])  # their 16 kHz originals, resampled by pyannote
    assert narrow.shape == wide.shape == (len(test), 32)
    assert np.isfinite(narrow).all() and np.isfinite(wide).all()

    def cosine(a, b):
        a = a / np.linalg.norm(a, axis=-1, keepdims=True)
        b = b / np.linalg.norm(b, axis=-1, keepdims=True)
        return a @ b.T

    assert np.diag(cosine(narrow, wide)).min() > 0.99
    # centred on the 8 kHz embeddings' mean (a briefly trained model's embeddings share a large common part)
    mean = narrow.mean(axis=0)
    similarity = cosine(narrow - mean, wide - mean)  # (8 kHz utterance, 16 kHz utterance)
    same = np.diag(similarity)
    speakers = np.array([uri.split("/")[0] for uri in test])
    other = similarity[speakers[:, None] != speakers[None, :]]
    # the 16 kHz samples given to the model as they are, not resampled: another signal altogether
    audio = Audio(sample_rate=16000, mono="downmix")
    with torch.inference_mode():
        unresampled = np.stack([model(load_audio(audio, str(files[uri][1]))[None])[0].numpy() for uri in test])
    unresampled = np.diag(cosine(narrow - mean, unresampled - mean))
    print(f"centred cosine, 8 vs 16 kHz of one utterance: min {same.min():.4f}; different speakers: mean "
          f"{other.mean():.4f}, max {other.max():.4f}; 16 kHz samples not resampled: mean {unresampled.mean():.4f}")
    assert same.min() > 0.99  # measured 1.0000: pyannote.audio resamples to 8 kHz as the files were made
    assert other.mean() < 0.5  # measured -0.05 to -0.10
    assert unresampled.mean() < 0.95  # measured 0.61 to 0.74: the resampling is what makes them match


def test_sincnet_at_8khz_is_a_configuration_error(narrowband, tmp_path):
    from pyannote_embloss.training.run import train

    database_yml, _ = narrowband
    (tmp_path / "config.yml").write_text(CONFIG.replace("frontend: fbank, ", ""))
    with pytest.raises(ConfigError, match="sincnet front-end works at 16000 Hz only.*use frontend: fbank"):
        train(Experiment.load(tmp_path), database=str(database_yml), progress_bar=False)
    assert not (tmp_path / "checkpoints" / "best.ckpt").exists()
