"""Test conditions: short, noisy, babble, reverberant audio, derived deterministically from clean test files

    --condition clean               the test files as they are (always evaluated)
    --condition duration:1          the middle 1 s of each test file (of its segment, when the trial
                                    has one); files shorter than that stay whole
    --condition noise:5             noise files (--noise-dir, their test split) at 5 dB SNR
    --condition colored:5           coloured noise (f_decay in [-2, 2]) at 5 dB SNR
    --condition babble:10           3 to 5 summed utterances of *training* speakers at 10 dB SNR
    --condition reverb              room impulse responses (--rir-dir, their test split, or simulated
                                    rooms with RT60 in [0.3, 0.9] s, from another seed than training's)
    --condition reverb+noise:5      reverberation, then noise (likewise reverb+colored:SNR, reverb+babble:SNR)
    --condition duration:1+noise:5  the middle 1 s, then noise (duration combines with any of the above)
    --condition telephone           a narrowband telephone line: 300-3,400 Hz, 8 kHz, G.711 mu-law, then back
                                    to the model's rate (nothing above 4 kHz); after the room and noise when
                                    combined (telephone+babble:10)
    --condition channel             each file through its own microphone and room: 3 peaking equalisers of
                                    -10 to +10 dB at log-uniform frequencies, a random high-pass and low-pass,
                                    drawn from the file's uri (a speaker's files no longer share a spectrum)

Noise, babble and reverberation are the training augmentation's
(:func:`~pyannote_embloss.data.augmentation.mix_at_snr`,
:func:`~pyannote_embloss.data.augmentation.babble`,
:func:`~pyannote_embloss.data.augmentation.add_colored_noise`,
:func:`~pyannote_embloss.data.augmentation.reverberate`), drawn from test sources.
The corruption of a file depends only on the condition, the file's uri and
:data:`SEED`: every model is tested on exactly the same audio, bit for bit,
and nothing is written over the corpus. Test noises and impulse responses
never overlap the ones training augmentation uses: files are split by a
stable hash (:func:`pyannote_embloss.io.file_subset`), simulated
rooms use another seed, babble uses training speakers (never test ones),
and an explicit overlap is refused (:func:`check_disjoint`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import torch

from .augmentation import (
    ImpulseResponses,
    NoiseSource,
    add_colored_noise,
    babble,
    channel_response,
    colour,
    mix_at_snr,
    reverberate,
    telephone,
)
from ..errors import ConfigError, DataError

__all__ = ["Condition", "TestConditions", "parse_conditions", "check_disjoint", "middle", "SEED"]

#: seed of every test corruption
SEED = 2020
NOISES = ("noise", "colored", "babble")


@dataclass(frozen=True)
class Condition:
    """One test condition

    Parameters
    ----------
    reverb : bool
        Reverberate first.
    noise : str, optional
        "noise", "colored" or "babble" (None for none).
    snr : float, optional
        SNR of the added noise, in dB.
    duration : float, optional
        Keep the middle `duration` seconds of each file (None: all of it).
    """

    reverb: bool = False
    noise: Optional[str] = None
    snr: Optional[float] = None
    duration: Optional[float] = None
    telephone: bool = False
    channel: bool = False

    @property
    def name(self) -> str:
        parts = (
            ([f"duration:{self.duration:g}"] if self.duration is not None else [])
            + (["reverb"] if self.reverb else [])
            + ([f"{self.noise}:{self.snr:g}"] if self.noise else [])
            + (["channel"] if self.channel else [])
            + (["telephone"] if self.telephone else [])
        )
        return "+".join(parts) or "clean"

    @property
    def is_clean(self) -> bool:
        return not (self.reverb or self.noise or self.duration is not None or self.telephone or self.channel)

    @classmethod
    def parse(cls, text: str) -> "Condition":
        """Condition from its name ("clean", "duration:1", "noise:5", "reverb", "reverb+babble:10", ...)

        Raises
        ------
        ConfigError
            Naming the unknown part, or the value that is not a number (or not a positive duration).
        """
        text = text.strip().lower()
        if text == "clean":
            return cls()
        reverb, noise, snr, duration, phone, coloured = False, None, None, None, False, False
        for part in text.split("+"):
            if part == "reverb":
                reverb = True
                continue
            if part == "telephone":
                phone = True
                continue
            if part == "channel":
                coloured = True
                continue
            kind, _, value = part.partition(":")
            if kind == "duration" and value:
                try:
                    duration = float(value)
                except ValueError:
                    duration = math.nan
                if not (math.isfinite(duration) and duration > 0):
                    raise ConfigError(
                        f"Test condition '{text}': the duration '{value}' is not a positive number of seconds."
                    )
                continue
            if kind not in NOISES or not value:
                raise ConfigError(
                    f"Unknown test condition '{text}': use clean, duration:SECONDS, reverb, noise:SNR, colored:SNR, "
                    "babble:SNR, telephone, channel, or their combinations such as reverb+noise:SNR or telephone+babble:10 "
                    "(SNR in dB, e.g. noise:5)."
                )
            try:
                snr = float(value)
            except ValueError:
                raise ConfigError(f"Test condition '{text}': the SNR '{value}' is not a number (dB).") from None
            noise = kind
        return cls(reverb=reverb, noise=noise, snr=snr, duration=duration, telephone=phone, channel=coloured)


def middle(waveform: torch.Tensor, duration: float, sample_rate: int) -> torch.Tensor:
    """The middle `duration` seconds of `waveform` (channel, sample); all of it when it is not longer

    ``round(duration * sample_rate)`` samples, starting ``(num_samples - that) // 2`` samples in.
    """
    num_samples = int(round(duration * sample_rate))
    if waveform.shape[-1] <= num_samples:
        return waveform
    start = (waveform.shape[-1] - num_samples) // 2
    return waveform[..., start : start + num_samples]


def parse_conditions(texts: Iterable[str]) -> List[Condition]:
    """Conditions from their names, clean first, each once"""
    conditions = [Condition()]
    for text in texts:
        condition = Condition.parse(text)
        if condition not in conditions:
            conditions.append(condition)
    return conditions


def check_disjoint(train_files: Sequence[str], test_files: Sequence[str]) -> None:
    """Refuse test noises that training augmentation uses too

    Raises
    ------
    ConfigError
        Listing the shared files.
    """
    shared = sorted(set(map(str, train_files)) & set(map(str, test_files)))
    if shared:
        raise ConfigError(
            f"{len(shared)} noise file(s) would be used both for training augmentation and for a test condition, "
            f"e.g. {shared[:3]}: a model must not be tested on the noises it was trained with. Keep the default "
            "'subset: train' for augmentation (test conditions use the other split), or use other directories."
        )


class TestConditions:
    """Corrupts test waveforms for each condition, deterministically

    Parameters
    ----------
    conditions : list of Condition
    noise_dir : str or Path, optional
        Needed by "noise:SNR" conditions (its test split is used).
    rir_dir : str or Path, optional
        Impulse responses for "reverb" (test split); simulated when absent.
    babble_files : list of str, optional
        Audio files of training speakers, needed by "babble:SNR".
    sample_rate : int, optional
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        conditions: Sequence[Condition],
        noise_dir=None,
        rir_dir=None,
        babble_files: Optional[Sequence[str]] = None,
        sample_rate: int = 16000,
    ):
        self.conditions = list(conditions)
        self.sample_rate = sample_rate
        kinds = {c.noise for c in self.conditions}
        self.noise = None
        if "noise" in kinds:
            if noise_dir is None:
                raise ConfigError("noise:SNR test conditions need --noise-dir (a directory of noise audio files).")
            self.noise = NoiseSource(Path(noise_dir), snr=(0.0, 0.0), subset="test", sample_rate=sample_rate)
        self.rirs = None
        if any(c.reverb for c in self.conditions):
            self.rirs = ImpulseResponses(rir_dir, rt60=(0.3, 0.9), num=100, seed=SEED, subset="test",
                                         sample_rate=sample_rate)
        self.babble_files = list(babble_files or [])
        if "babble" in kinds and len(self.babble_files) < 5:
            raise DataError("babble:SNR test conditions need at least 5 audio files of training speakers.")

    @property
    def noise_files(self) -> List[str]:
        return [] if self.noise is None else self.noise.paths

    def _babble(self, num_samples: int, rng: random.Random) -> torch.Tensor:
        """:func:`~pyannote_embloss.data.augmentation.babble` of 3 to 5 excerpts of training speakers' files"""
        from pyannote.audio.core.io import Audio
        from pyannote.core import Segment

        from .audio import audio_duration, load_audio

        audio = Audio(sample_rate=self.sample_rate, mono="downmix")
        length = num_samples / self.sample_rate
        speech = []
        for path in rng.sample(self.babble_files, rng.randint(3, 5)):
            start = rng.uniform(0.0, max(0.0, audio_duration(path) - length))
            speech.append(load_audio(audio, path, Segment(start, start + length), num_samples=num_samples))
        return babble(speech)

    def identity(self, condition: Condition, key: str) -> str:
        """What decides :meth:`corrupt`'s output for `condition` and `key`, besides the waveform (a cache key)"""
        import hashlib

        sources = [
            [str(p) for p in getattr(self.noise, "paths", [])] if self.noise is not None else None,
            None if self.rirs is None else str(self.rirs.directory or "simulated"),
            self.babble_files if condition.noise == "babble" else None,
        ]
        digest = hashlib.blake2b(repr(sources).encode(), digest_size=12).hexdigest()
        return f"{condition.name}|seed={SEED}|rate={self.sample_rate}|sources={digest}|{key}"

    def corrupt(self, waveform: torch.Tensor, condition: Condition, key: str) -> torch.Tensor:
        """`waveform` (channel, sample) in `condition`; the same `key` (uri) always gives the same audio

        The middle of the waveform is kept first (``duration:``, see
        :func:`middle`), then it is reverberated, then noise is added, then it
        goes through the telephone line (:func:`~pyannote_embloss.data.augmentation.telephone`).
        """
        if condition.is_clean:
            return waveform
        rng = random.Random(f"{SEED}:{condition.name}:{key}")
        out = waveform
        if condition.duration is not None:
            out = middle(out, condition.duration, self.sample_rate)
        if condition.reverb:
            out = reverberate(out, self.rirs.sample(rng))
        if condition.noise == "noise":
            noise, _ = self.noise.excerpt(out.shape[-1], rng)
            out = mix_at_snr(out, noise.to(out.dtype), condition.snr)
        elif condition.noise == "babble":
            out = mix_at_snr(out, self._babble(out.shape[-1], rng).to(out.dtype), condition.snr)
        elif condition.noise == "colored":
            out = add_colored_noise(out, condition.snr, rng.uniform(-2.0, 2.0), rng, self.sample_rate)
        if condition.channel:  # the file's own microphone and room: a colouration drawn from its uri
            response = channel_response(random.Random(f"{SEED}:channel:{key}"), self.sample_rate, 1025)
            out = colour(out, response)
        if condition.telephone:  # the line, after the room and its noise
            out = telephone(out, self.sample_rate)
        return out
