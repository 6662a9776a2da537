"""Test conditions: reproducible bit for bit, at the requested SNR, apart from training noises; the middle N seconds"""

import random
import shutil

import numpy as np
import pytest
import torch
from pyannote.audio.core.io import Audio
from pyannote.core import Segment
from typer.testing import CliRunner

from pyannote_embloss.data.audio import load_audio
from pyannote_embloss.data.augmentation import NoiseSource, reverberate, snr_db
from pyannote_embloss.cli import app
from pyannote_embloss.data.conditions import SEED, Condition, TestConditions, check_disjoint, parse_conditions
from pyannote_embloss.inference.embedding import embed_files
from pyannote_embloss.errors import ConfigError
from pyannote_embloss.models import SincTDNN

from test_verify import small_yml  # noqa: F401  (the fixture)

AUDIO = Audio(sample_rate=16000, mono="downmix")


@pytest.fixture(scope="module")
def files(corpus_root):
    return sorted(str(p) for p in (corpus_root / "WAVE").glob("*/*.flac"))


@pytest.fixture(scope="module")
def noise_dir(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("noises")
    for i, path in enumerate(files[100:140]):
        shutil.copy(path, root / f"{i:02d}.flac")
    return root


def test_condition_names_parse_and_round_trip():
    conditions = parse_conditions(["noise:5", "reverb", "reverb+babble:10", "noise:5"])
    assert [c.name for c in conditions] == ["clean", "noise:5", "reverb", "reverb+babble:10"]
    assert conditions[3] == Condition(reverb=True, noise="babble", snr=10.0)
    for bad in ("noise", "wind:5", "noise:loud"):
        with pytest.raises(ConfigError, match="condition"):
            Condition.parse(bad)


@pytest.mark.parametrize("name", ["noise:5", "colored:0", "babble:10", "reverb+noise:15"])
def test_corruption_is_reproducible_and_at_the_requested_snr(files, noise_dir, name):
    condition = Condition.parse(name)
    conditions = TestConditions([condition], noise_dir=noise_dir, babble_files=files[:50])
    clean = load_audio(AUDIO, files[500])
    first = conditions.corrupt(clean, condition, "SPEAKER0001/000010011")
    again = TestConditions([condition], noise_dir=noise_dir, babble_files=files[:50]).corrupt(
        clean, condition, "SPEAKER0001/000010011"
    )
    assert torch.equal(first, again)  # same seed, same audio, bit for bit
    assert not torch.equal(first, conditions.corrupt(clean, condition, "another/uri"))
    assert first.shape == clean.shape
    reference = clean
    if condition.reverb:  # the SNR is that of the added noise, over the reverberated speech
        rng = random.Random(f"{SEED}:{condition.name}:SPEAKER0001/000010011")
        reference = reverberate(clean, conditions.rirs.sample(rng))
    assert abs(snr_db(reference, first) - condition.snr) < 0.5


def test_test_noises_are_not_training_noises(noise_dir):
    train = NoiseSource(noise_dir, subset="train").paths
    test = TestConditions([Condition.parse("noise:5")], noise_dir=noise_dir).noise_files
    check_disjoint(train, test)  # the documented split keeps them apart
    with pytest.raises(ConfigError, match="both for training augmentation and for a test condition"):
        check_disjoint(NoiseSource(noise_dir, subset="all").paths, test)
    with pytest.raises(ConfigError, match="--noise-dir"):
        TestConditions([Condition.parse("noise:5")])


# --- duration:SECONDS: the middle of each trial file ----------------------------------------------


def test_duration_condition_parses_and_refuses_bad_values_in_one_line(tmp_path):
    assert Condition.parse("duration:1") == Condition(duration=1.0)
    assert Condition.parse("duration:0.5").name == "duration:0.5"
    assert Condition.parse("duration:1+reverb+noise:5").name == "duration:1+reverb+noise:5"
    assert not Condition.parse("duration:1").is_clean
    for bad in ("duration:abc", "duration:0", "duration:-1", "duration:inf"):
        with pytest.raises(ConfigError, match=f"the duration '{bad.split(':')[1]}' is not a positive number of seconds"):
            Condition.parse(bad)
    # on the command line: exit code 2, one line naming the value
    experiment = tmp_path / "baseline"
    experiment.mkdir()
    (experiment / "config.yml").write_text("seed: 0\narchitecture:\n  name: LogMelStatistics\n")
    result = CliRunner().invoke(app, ["evaluate", str(experiment), "--condition", "duration:1s"])
    assert result.exit_code == 2
    assert "the duration '1s' is not a positive number of seconds" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def model():
    """An untrained SincTDNN: any model embeds the same audio the same way"""
    torch.manual_seed(0)
    return SincTDNN(stride=10, dimension=32).eval()


def test_duration_condition_embeds_the_middle_of_each_trial_file(model, files):
    """Through the extraction path `evaluate` uses: the middle 1 s, cropped by hand, gives the same embedding"""
    condition = Condition.parse("duration:1")
    conditions = TestConditions([condition])
    paths = files[500:503]
    segments = [None, (0.25, 1.95), (0.0, 0.7)]  # a whole file, a trial segment, a segment shorter than 1 s
    embeddings = embed_files(
        model, paths, progress=False, segments=segments,
        transform=lambda waveform, i: conditions.corrupt(waveform, condition, paths[i]),
    )
    with torch.inference_mode():
        for path, segment, embedding in zip(paths, segments, embeddings):
            waveform = load_audio(model.audio, path, None if segment is None else Segment(*segment))
            if waveform.shape[-1] > 16000:
                start = (waveform.shape[-1] - 16000) // 2
                waveform = waveform[:, start : start + 16000]
            expected = model(waveform[None])[0].numpy()
            np.testing.assert_allclose(embedding, expected, atol=1e-5)
    # every file was longer than 1 s: the condition changed what was embedded (but not the short segment)
    clean = embed_files(model, paths, progress=False, segments=segments)
    assert not np.allclose(clean[:2], embeddings[:2], atol=1e-3)
    np.testing.assert_allclose(clean[2], embeddings[2], atol=1e-5)


def energy_above(waveform: torch.Tensor, hertz: float, sample_rate: int = 16000) -> float:
    """Share of the signal's energy above `hertz`"""
    power = torch.fft.rfft(waveform.double(), dim=-1).abs() ** 2
    frequencies = torch.fft.rfftfreq(waveform.shape[-1], d=1.0 / sample_rate)
    return float(power[..., frequencies > hertz].sum() / power.sum())


def test_telephone_condition_is_band_limited_deterministic_and_combines(files):
    """Issue 37: 300-3,400 Hz, 8 kHz, G.711 mu-law, back at 16 kHz; nothing above 4 kHz"""
    clean = load_audio(AUDIO, files[500])
    assert energy_above(clean, 4000) > 0.01  # read speech has energy up there
    phone = Condition.parse("telephone")
    assert phone.name == "telephone" and not phone.is_clean
    conditions = TestConditions([phone, Condition.parse("telephone+babble:10")], babble_files=files[:50])
    line = conditions.corrupt(clean, phone, "SPEAKER0001/000010011")
    assert line.shape == clean.shape
    assert energy_above(line, 4000) < 1e-12  # no energy above 4 kHz
    assert energy_above(line, 3450) < 1e-3
    low = torch.fft.rfft(line.double()).abs()[..., : int(250 * line.shape[-1] / 16000)]
    assert float((low**2).sum()) < 1e-3 * float((torch.fft.rfft(line.double()).abs() ** 2).sum())  # nor below 300 Hz
    assert torch.equal(line, conditions.corrupt(clean, phone, "another/uri"))  # nothing random: the same audio
    assert torch.equal(line, TestConditions([phone]).corrupt(clean, phone, "SPEAKER0001/000010011"))
    # mu-law coding is lossy but keeps the speech: close to the band-limited signal
    from pyannote_embloss.data.augmentation import band_limit

    band = band_limit(clean, 16000, 300.0, 3400.0)
    assert snr_db(band, line) > 25
    # combined: babble in the room, then the line
    both = Condition.parse("babble:10+telephone")
    assert both == Condition.parse("telephone+babble:10") and both.name == "babble:10+telephone"
    noisy = conditions.corrupt(clean, both, "SPEAKER0001/000010011")
    assert energy_above(noisy, 4000) < 1e-12 and not torch.equal(noisy, line)
    assert torch.equal(noisy, conditions.corrupt(clean, both, "SPEAKER0001/000010011"))


def test_evaluate_with_the_telephone_condition(small_yml, tmp_path):  # noqa: F811
    from pyannote_embloss.evaluation.verification import evaluate

    from test_verify import SMALL, baseline_experiment

    experiment = baseline_experiment(tmp_path / "baseline", SMALL)
    results = evaluate(experiment, database=str(small_yml), progress=False, normalize=False,
                       conditions=parse_conditions(["telephone", "telephone+colored:10"]))
    assert set(results["conditions"]) == {"telephone", "colored:10+telephone"}
    for name, metrics in results["conditions"].items():
        assert 0.0 <= metrics["eer"] <= 1.0
        assert not np.allclose(results["condition_scores"][name], results["scores"]["cosine"])  # other audio


def test_channel_condition_gives_each_file_its_own_spectrum(files):
    """Issue 37: a speaker's files no longer share a long-term spectrum; deterministic per file"""
    clean = load_audio(AUDIO, files[500])
    channel = Condition.parse("channel")
    assert channel.name == "channel" and not channel.is_clean
    conditions = TestConditions([channel])

    def response_db(key):  # what the condition did to the spectrum, in 1/3-octave-ish bands
        out = conditions.corrupt(clean, channel, key)
        assert out.shape == clean.shape and torch.isfinite(out).all()
        assert torch.equal(out, TestConditions([channel]).corrupt(clean, channel, key))  # deterministic
        assert float(out.pow(2).mean()) == pytest.approx(float(clean.pow(2).mean()), rel=1e-4)  # same power
        ratio = torch.fft.rfft(out.double()).abs() ** 2 / (torch.fft.rfft(clean.double()).abs() ** 2 + 1e-12)
        bands = torch.logspace(np.log10(200), np.log10(5000), 12)
        bins = (bands / 8000 * (ratio.shape[-1] - 1)).long()
        return torch.stack([10 * torch.log10(ratio[..., b - 20 : b + 20].mean()) for b in bins])

    first, second, third = response_db("spk/1"), response_db("spk/2"), response_db("spk/3")
    for a, b in ((first, second), (first, third), (second, third)):
        assert float((a - b).abs().max()) > 3.0  # at least 3 dB apart somewhere between 200 Hz and 5 kHz
    assert Condition.parse("channel+babble:10").name == "babble:10+channel"
