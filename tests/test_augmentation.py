"""Augmentation of training chunks: measured SNRs, reverberation alignment, speed perturbation, telephone line, reproducibility"""

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pyannote.audio.core.io import Audio

from pyannote_embloss.data.audio import load_audio
from pyannote_embloss.data.augmentation import (
    Augmentation,
    ImpulseResponses,
    NoiseSource,
    band_limit,
    packet_loss,
    reverberate,
    snr_db,
    speed_classes,
    speed_perturb,
    telephone,
)
from pyannote_embloss.config import check_augmentation
from pyannote_embloss.errors import AudioDecodingError, ConfigError
from pyannote_embloss.io import file_subset
from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.tasks import get_task_class

from helpers import PROTOCOL

CONFIG = Path("config.yml")
AUDIO = Audio(sample_rate=16000, mono="downmix")


@pytest.fixture(scope="module")
def chunks(corpus_root):
    """8 real 2-second chunks of 8 different speakers, (8, 1, 32000)"""
    files = sorted((corpus_root / "WAVE").glob("*/*.flac"))
    by_speaker = {}
    for path in files:
        by_speaker.setdefault(path.parent.name, path)
    from pyannote.core import Segment

    paths = list(by_speaker.values())[:8]
    return torch.stack([load_audio(AUDIO, str(p), Segment(0.5, 2.5), num_samples=32000) for p in paths])


@pytest.fixture(scope="module")
def musan(corpus_root, tmp_path_factory):
    """A miniature MUSAN layout (noise/, music/, speech/) made of real speech files"""
    root = tmp_path_factory.mktemp("musan")
    files = sorted((corpus_root / "WAVE").glob("*/*.flac"))[:60]
    for i, path in enumerate(files):
        category = ("noise", "music", "speech")[i % 3]
        (root / category / "src").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / category / "src" / f"{i:03d}.flac")
    return root


def test_additive_noise_snr_is_in_the_configured_range(chunks, musan):
    config = check_augmentation(
        {"transforms": [{"name": "noise", "directory": str(musan), "categories": {"music": [5, 7]}}]}, CONFIG
    )
    augmentation = Augmentation(config)
    source = augmentation.transforms[0].source
    assert set(source.files) == {"noise", "music", "speech"}  # MUSAN categories recognised
    assert source.snr == {"noise": (0.0, 15.0), "music": (5.0, 7.0), "speech": (13.0, 20.0)}
    noisy = augmentation(chunks, list(range(8)), random.Random(0))
    assert noisy.shape == chunks.shape
    for clean, mixed in zip(chunks, noisy):
        assert 0.0 - 1e-3 <= snr_db(clean, mixed) <= 20.0 + 1e-3
    # one range for every category
    config = check_augmentation({"transforms": [{"name": "noise", "directory": str(musan), "snr": [10, 12]}]}, CONFIG)
    noisy = Augmentation(config)(chunks, list(range(8)), random.Random(1))
    snrs = [snr_db(c, n) for c, n in zip(chunks, noisy)]
    assert all(10.0 - 1e-3 <= s <= 12.0 + 1e-3 for s in snrs), snrs
    assert max(snrs) - min(snrs) > 0.1  # drawn, not constant


@pytest.mark.parametrize("name, snr", [("babble", [13, 20]), ("colored_noise", [3, 6])])
def test_babble_and_colored_noise_snr(chunks, name, snr):
    augmentation = Augmentation(check_augmentation({"transforms": [{"name": name, "snr": snr}]}, CONFIG))
    noisy = augmentation(chunks, list(range(8)), random.Random(0))
    snrs = [snr_db(c, n) for c, n in zip(chunks, noisy)]
    assert all(snr[0] - 0.01 <= s <= snr[1] + 0.01 for s in snrs), snrs


def test_babble_never_mixes_a_speaker_with_itself(chunks):
    augmentation = Augmentation(check_augmentation({"transforms": [{"name": "babble", "speakers": [1, 1]}]}, CONFIG))
    # two speakers: each chunk can only be mixed with the other speaker's
    speakers = [0, 0, 0, 0, 1, 1, 1, 1]
    batch = torch.cat([chunks[:1].repeat(4, 1, 1), chunks[1:2].repeat(4, 1, 1)])
    noisy = augmentation(batch, speakers, random.Random(0))
    for i in range(8):
        other = batch[4 if i < 4 else 0]
        residual = noisy[i] - batch[i]
        cosine = torch.nn.functional.cosine_similarity(residual.flatten(), other.flatten(), dim=0)
        assert cosine > 0.999


def test_reverberation_keeps_length_and_alignment(chunks):
    x = chunks[0]
    identity = torch.zeros(4000)
    identity[0] = 1.0
    torch.testing.assert_close(reverberate(x, identity), x, atol=1e-5, rtol=0)
    # a delayed impulse (direct path at 100 samples) does not shift speech either
    delayed = torch.zeros(4000)
    delayed[100] = 2.0
    torch.testing.assert_close(reverberate(x, delayed), x, atol=1e-5, rtol=0)
    rirs = ImpulseResponses(rt60=(0.4, 0.6), num=3, seed=0)
    click = torch.zeros(1, 32000)
    click[0, 10000] = 1.0
    for rir in rirs.responses:
        assert reverberate(x, rir).shape == x.shape
        # aligned: a click stays where it was (at the direct path), its reverberation follows it
        y = reverberate(click, rir)[0]
        assert int(torch.argmax(y.abs())) == 10000
        assert y[:9950].abs().max() < 0.05 * y.abs().max() and y[10010:].abs().sum() > 0
    # simulated rooms are reproducible, and test rooms are not training rooms
    again = ImpulseResponses(rt60=(0.4, 0.6), num=3, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(rirs.responses, again.responses))
    test = ImpulseResponses(rt60=(0.4, 0.6), num=3, seed=0, subset="test")
    assert not any(torch.equal(a, b) for a in rirs.responses for b in test.responses)


def test_impulse_responses_from_a_rirs_noises_directory(tmp_path):
    root = tmp_path / "RIRS_NOISES"
    import scipy.io.wavfile

    for i in range(30):
        rir = np.zeros(800, dtype=np.float32)
        rir[i] = 1.0
        folder = root / "simulated_rirs" / "smallroom" / f"Room{i:03d}"
        folder.mkdir(parents=True)
        scipy.io.wavfile.write(folder / f"Room{i:03d}-00001.wav", 16000, rir)
    (root / "real_rirs_isotropic_noises").mkdir()
    scipy.io.wavfile.write(root / "real_rirs_isotropic_noises" / "RVB2014_type1_noise_largeroom1_1.wav", 16000,
                           np.ones(800, dtype=np.float32))
    train = ImpulseResponses(root, subset="train")
    test = ImpulseResponses(root, subset="test")
    assert len(train.responses) + len(test.responses) == 30  # isotropic noise recordings left out
    assert len(train.responses) > len(test.responses) > 0
    assert all(r.shape == (800,) for r in train.responses)


def test_speed_perturbation_changes_duration_and_labels(chunks, protocol_yml, tmp_path):
    x = chunks[0]
    for factor in (0.9, 1.1):
        y = speed_perturb(x, factor)
        assert y.shape[-1] == round(x.shape[-1] / factor)
        # pitch and tempo: a 440 Hz tone comes out at 440 x factor Hz
        t = torch.arange(32000) / 16000
        tone = speed_perturb(torch.sin(2 * np.pi * 440 * t)[None], factor)[0].numpy()
        peak = np.argmax(np.abs(np.fft.rfft(tone))) * 16000 / len(tone)
        assert peak == pytest.approx(440 * factor, abs=2.0)
    assert speed_classes(["A", "B"], [0.9, 1.0, 1.1]) == ["A@speed0.9", "B@speed0.9", "A", "B", "A@speed1.1", "B@speed1.1"]

    # in the task: each speed is a new speaker, the classifier grows, chunks keep their length
    from pyannote_embloss.models import SincTDNN

    augmentation = check_augmentation({"speed": [0.9, 1.1]}, CONFIG)
    task = get_task_class("aam")(get_protocol(PROTOCOL, database_yml=protocol_yml), num_classes_per_batch=16,
                                 num_workers=0, augmentation=augmentation)
    task.cache = tmp_path / "cache.npz"
    model = SincTDNN(task=task, stride=10, dimension=16)
    task.prepare_data()
    model.setup()
    assert len(task.specifications.classes) == 3 * 125
    assert model.loss_func.W.shape == (16, 375)
    samples = task.train__iter__()
    batch = [next(samples) for _ in range(task.batch_size)]
    assert {b["X"].shape for b in batch} == {(1, 32000)}
    labels = [task.specifications.classes[b["y"]] for b in batch]
    assert any("@speed" in label for label in labels) and any("@speed" not in label for label in labels)


@pytest.fixture(scope="module")
def protocol_yml(speechocean762_yml):
    return speechocean762_yml


def test_augmentation_is_reproducible_under_a_seed(chunks, musan):
    config = check_augmentation(
        {
            "probability": 0.8,
            "transforms": [
                {"name": "babble"},
                {"name": "noise", "directory": str(musan)},
                {"name": "reverb", "num": 5},
                {"name": "colored_noise"},
            ],
        },
        CONFIG,
    )
    # about 80 % of the chunks are changed, the others are left alone
    assert_reproducible(config, chunks, min_changed=4)


def assert_reproducible(config: dict, chunks, min_changed: int) -> None:
    """Same seed and epoch: same output; another epoch: another; at least `min_changed` of the 8 chunks
    changed (drawn with the augmentation's probability); the global torch generator untouched (colored
    noise and the telephone line draw from the augmentation's own generator)"""
    first = Augmentation(config, seed=3)(chunks, list(range(8)), random.Random("epoch 0"))
    second = Augmentation(config, seed=3)(chunks, list(range(8)), random.Random("epoch 0"))
    assert torch.equal(first, second)
    other = Augmentation(config, seed=3)(chunks, list(range(8)), random.Random("epoch 1"))
    assert not torch.equal(first, other)
    changed = [not torch.equal(a, b) for a, b in zip(chunks, first)]
    assert min_changed <= sum(changed) <= 8
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    Augmentation(config, seed=3)(chunks, list(range(8)), random.Random(5))
    assert torch.equal(torch.rand(1), expected)


def test_noise_and_impulse_response_files_are_split_for_test_conditions(musan):
    train = NoiseSource(musan, subset="train").paths
    test = NoiseSource(musan, subset="test").paths
    assert train and test and not set(train) & set(test)
    assert sorted(train + test) == sorted(NoiseSource(musan, subset="all").paths)
    assert file_subset("noise/src/001.flac") == file_subset("noise/src/001.flac")


@pytest.mark.parametrize(
    "section, message",
    [
        ({"transforms": [{"name": "noise", "directory": "/does/not/exist"}]}, "noise directory '/does/not/exist' does not exist"),
        ({"transforms": [{"name": "babble", "snr": [20, 10]}]}, "range [20.0, 10.0] has min > max"),
        ({"transforms": [{"name": "echo"}]}, "unknown augmentation transform 'echo'"),
        ({"transforms": [{"name": "babble", "snr_db": 3}]}, "unknown key 'snr_db' for augmentation 'babble' (did you mean 'snr'?)"),
        ({"transforms": [{"name": "reverbb"}]}, "unknown augmentation transform 'reverbb' (did you mean 'reverb'?)"),
        ({"probabilty": 0.3}, "unknown key 'probabilty' in 'augmentation' (did you mean 'probability'?)"),
        ({"probability": 1.5}, "probability must be a probability in [0, 1]"),
        ({"speed": [0.1]}, "speed must be a list of factors"),
        ({"transforms": [{"name": "noise"}]}, "needs a 'directory'"),
        ({"transforms": [{"name": "telephone", "low": [3500, 3700]}]}, "telephone low [3500, 3700] must be below high [3000, 3600]"),
        ({"transforms": [{"name": "telephone", "low": 300, "high": [3000, 4400]}]}, "telephone high [3000, 4400] goes above 4000 Hz"),
        ({"transforms": [{"name": "telephone", "high": [3400, 3000]}]}, "telephone high (upper band edge, Hz) range [3400.0, 3000.0] has min > max"),
        ({"transforms": [{"name": "telephone", "low": [-100, 300]}]}, "telephone low (lower band edge, Hz) must be at least 0.0"),
        ({"transforms": [{"name": "telephone", "codec": "gsm"}]}, "telephone codec must be mu-law or a-law"),
        ({"transforms": [{"name": "telephone", "codec": []}]}, "telephone codec must be mu-law or a-law"),
        ({"transforms": [{"name": "telephone", "packet_loss": [0, 1.5]}]}, "telephone packet_loss must be a rate in [0, 1]"),
        ({"transforms": [{"name": "telephone", "concealment": "fade"}]}, "telephone concealment must be repeat or zero"),
        ({"transforms": [{"name": "telephone", "band": [300, 3400]}]}, "unknown key 'band' for augmentation 'telephone'"),
        ({"transforms": [{"name": "telefone"}]}, "unknown augmentation transform 'telefone' (did you mean 'telephone'?)"),
    ],
)
def test_bad_augmentation_config_names_the_key(section, message):
    with pytest.raises(ConfigError) as error:
        check_augmentation(section, CONFIG)
    assert message in str(error.value) and "config.yml" in str(error.value)


def test_empty_noise_directory_and_unreadable_noise_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=f"noise directory '{empty}' has no audio file"):
        check_augmentation({"transforms": [{"name": "noise", "directory": str(empty), "subset": "all"}]}, CONFIG)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(AudioDecodingError, match="bad.wav"):
        NoiseSource(broken, subset="all")


# ---------------------------------------------------------------- the telephone line


def energy_above(waveform, frequency, sample_rate=16000):
    """Share of `waveform`'s energy above `frequency` Hz (FFT)"""
    power = torch.fft.rfft(waveform.double()).abs().pow(2).sum(0)
    frequencies = torch.fft.rfftfreq(waveform.shape[-1], d=1.0 / sample_rate)
    return float(power[frequencies > frequency].sum() / power.sum())


def upper_edge(waveform, tolerance=1e-4, sample_rate=16000):
    """The lowest frequency above which `waveform` has less than `tolerance` of its energy"""
    power = torch.fft.rfft(waveform.double()).abs().pow(2).sum(0)
    frequencies = torch.fft.rfftfreq(waveform.shape[-1], d=1.0 / sample_rate)
    above = power.flip(0).cumsum(0).flip(0) / power.sum()
    return float(frequencies[(above < tolerance).nonzero()[0]])


def test_telephone_defaults():
    checked = check_augmentation({"transforms": [{"name": "telephone"}]}, CONFIG)["transforms"][0]
    assert checked == {
        "name": "telephone", "probability": 1.0, "weight": 1.0, "low": (200.0, 400.0), "high": (3000.0, 3600.0),
        "codec": ("mu-law", "a-law"), "packet_loss": (0.0, 0.05), "concealment": "repeat",
    }
    # one codec may be given alone
    assert check_augmentation({"transforms": [{"name": "telephone", "codec": "a-law"}]}, CONFIG)["transforms"][0]["codec"] == ("a-law",)


def test_telephone_transform_is_drawn_and_band_limited(chunks):
    config = check_augmentation(
        {"transforms": [{"name": "telephone", "low": [200, 400], "high": [3000, 3600], "packet_loss": 0}]}, CONFIG
    )
    augmentation = Augmentation(config)
    out = augmentation(chunks, list(range(8)), random.Random(0))
    assert out.shape == chunks.shape and out.dtype == chunks.dtype and torch.isfinite(out).all()
    for clean, line in zip(chunks, out):
        assert not torch.equal(clean, line)
        assert energy_above(clean, 3600) > 1e-3  # real speech has energy above the band: it is removed
        assert energy_above(line, 3600) < 1e-4  # what remains is the codec's quantisation noise
        assert energy_above(line, 4000) < 1e-12  # nothing above the 8 kHz line's Nyquist frequency
    # the band's upper edge is drawn per chunk, within the configured range: one chunk, eight draws
    edges = [upper_edge(line) for line in augmentation(chunks[3:4].repeat(8, 1, 1), [0] * 8, random.Random(1))]
    assert all(2900 <= edge <= 3600 for edge in edges), edges
    assert max(edges) - min(edges) > 150, edges
    assert upper_edge(chunks[3]) > 7000


def test_telephone_transform_is_reproducible_under_a_seed(chunks):
    config = check_augmentation({"probability": 0.7, "transforms": [{"name": "telephone", "packet_loss": [0, 0.2]}]}, CONFIG)
    assert_reproducible(config, chunks, min_changed=3)


@pytest.mark.parametrize("codec", ["mu-law", "a-law"])
def test_telephone_codecs_quantise_to_256_levels(chunks, codec):
    import torchaudio

    band = (300.0, 3400.0)
    for clean in chunks[:4]:
        narrow = torchaudio.functional.resample(clean, 16000, 8000)
        line = telephone(narrow, 8000, band, codec)  # at 8 kHz, the line's own samples: 8-bit codes
        assert line.shape == narrow.shape
        assert torch.unique(line).numel() <= 256
        assert torch.unique(band_limit(narrow, 8000, *band)).numel() > 5000
        # companding keeps about 38 dB of SNR over the speech's range (G.711), whatever its level
        for gain in (1.0, 0.01):
            reference = band_limit(narrow * gain, 8000, *band)
            assert 30.0 < snr_db(reference, telephone(narrow * gain, 8000, band, codec)) < 45.0
    # the two laws quantise differently, at 16 kHz too
    mu, a = (telephone(chunks[0], 16000, band, c) for c in ("mu-law", "a-law"))
    assert not torch.equal(mu, a) and snr_db(mu, a) > 25.0
    config = check_augmentation({"transforms": [{"name": "telephone", "codec": codec, "packet_loss": 0}]}, CONFIG)
    out = Augmentation(config, sample_rate=8000)(chunks[:, :, ::2], list(range(8)), random.Random(0))
    assert all(torch.unique(line).numel() <= 256 for line in out)


@pytest.mark.parametrize("concealment", ["zero", "repeat"])
def test_telephone_packet_loss(chunks, concealment):
    config = check_augmentation(
        {"transforms": [{"name": "telephone", "packet_loss": [0.2, 0.4], "concealment": concealment}]}, CONFIG
    )
    narrow = chunks[:, :, ::2].contiguous()  # 8 kHz: the line's 20 ms packets are 160 samples
    out = Augmentation(config, sample_rate=8000)(narrow, list(range(8)), random.Random(0))
    packets = out[:, 0, : 16000 // 160 * 160].reshape(8, -1, 160)  # (chunk, packet, sample)
    if concealment == "zero":
        lost = (packets == 0).all(dim=-1)
    else:
        lost = (packets[:, 1:] == packets[:, :-1]).all(dim=-1)
    rates = lost.float().mean(dim=1)
    assert all(0.05 <= rate <= 0.6 for rate in rates), rates  # about 20 to 40 % of 100 packets
    # without loss, no packet is repeated nor silent
    lossless = Augmentation(check_augmentation({"transforms": [{"name": "telephone", "packet_loss": 0}]}, CONFIG),
                            sample_rate=8000)(narrow, list(range(8)), random.Random(0))
    packets = lossless[:, 0, : 16000 // 160 * 160].reshape(8, -1, 160)
    assert not (packets == 0).all(dim=-1).any() and not (packets[:, 1:] == packets[:, :-1]).all(dim=-1).any()
    # the function itself: a rate of 0 changes nothing, a rate of 1 loses everything
    x = narrow[0]
    assert torch.equal(packet_loss(x, 0.0, random.Random(0)), x)
    assert torch.equal(packet_loss(x, 1.0, random.Random(0), concealment=concealment), torch.zeros_like(x))
