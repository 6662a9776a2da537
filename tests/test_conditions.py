"""Corrupted test conditions: reproducible bit for bit, at the requested SNR, apart from training noises"""

import random
import shutil

import pytest
import torch
from pyannote.audio.core.io import Audio

from pyannote_embloss.audio import load_audio
from pyannote_embloss.augmentation import NoiseSource, reverberate, snr_db
from pyannote_embloss.conditions import SEED, Condition, TestConditions, check_disjoint, parse_conditions
from pyannote_embloss.errors import ConfigError

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
