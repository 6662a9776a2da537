"""On-the-fly data augmentation of training chunks, from config.yml's `augmentation:` section

    augmentation:
      speed: [0.9, 1.0, 1.1]     # speed perturbation; each speed is a new speaker (Kaldi, WeSpeaker)
      probability: 0.6           # share of chunks that are corrupted
      combine: one               # one: each corrupted chunk gets one transform, drawn by weight
                                 # all: each transform applies with its own probability, in order
      transforms:
        - {name: babble, snr: [13, 20], speakers: [3, 6]}     # other chunks of the batch, summed
        - {name: reverb, rt60: [0.2, 0.8]}                    # simulated rooms (pyroomacoustics)
        - {name: reverb, directory: /data/RIRS_NOISES}        # or impulse responses from files
        - {name: noise, directory: /data/musan, snr: [0, 15]} # any directory; MUSAN's noise/music/speech
        - {name: colored_noise, snr: [5, 20], f_decay: [-2, 2]}
        - {name: telephone, low: [200, 400], high: [3000, 3600], codec: [mu-law, a-law],
           packet_loss: [0, 0.05], concealment: repeat}          # a narrowband phone line

The ``telephone`` transform is the chain of the ``telephone`` test condition
(:func:`telephone`: band-pass, 8 kHz, G.711 companding, back to the model's
rate) with its parameters drawn per chunk: the pass band's edges uniformly in
`low` and `high` (Hz; defaults [200, 400] and [3000, 3600], around G.712's
300-3,400 Hz; `high` at most 4,000 and every `low` below every `high`), the
codec among `codec` (``mu-law``, ``a-law``; default both), and a packet loss
rate uniformly in `packet_loss` (default [0, 0.05]): at that rate, 20 ms
packets of the 8 kHz line are lost (:func:`packet_loss`) and concealed as
`concealment` says, ``repeat`` (the previous packet played again, the
default, as G.711 Appendix I's concealment does in spirit) or ``zero``
(silence). Pure torch and torchaudio: no codec library is needed.

Every random draw comes from the sampler's random generator (one per epoch,
process and data-loading worker), so that augmentation is reproducible
under the config's seed and resumes exactly.

Noise and impulse response files are split in two by a stable hash of
their path (:func:`pyannote_embloss.io.file_subset`): ``subset: train`` (the default for
training) uses 80 % of them, and the test conditions of ``evaluate --condition``
use the other 20 %, so that a model is never tested on the noises it was
trained with.

torch_audiomentations' file-based transforms call ``torchaudio.info``, which
torchaudio 2.9 removed (iver56/torch-audiomentations#184), and list only
``.wav`` files: noise and impulse responses are read with the project's own
loader (torchcodec) instead. Its in-memory ``AddColoredNoise`` is reused.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..config import CONCEALMENTS, TELEPHONE_CODECS
from ..errors import ConfigError, MissingFileError
from ..io import audio_files, split_files

__all__ = [
    "Augmentation",
    "NoiseSource",
    "ImpulseResponses",
    "add_colored_noise",
    "babble",
    "mix_at_snr",
    "reverberate",
    "speed_perturb",
    "snr_db",
    "telephone",
    "packet_loss",
    "band_limit",
    "channel_response",
    "colour",
]

#: MUSAN categories and their default SNR ranges (dB), as in WeSpeaker
MUSAN_SNR = {"noise": (0.0, 15.0), "music": (5.0, 15.0), "speech": (13.0, 20.0)}


# ---------------------------------------------------------------- signal processing


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Signal-to-noise ratio of `noisy` with respect to `clean`, in dB"""
    noise = noisy.double() - clean.double()
    return float(10.0 * torch.log10(clean.double().pow(2).sum() / noise.pow(2).sum().clamp(min=1e-20)))


def mix_at_snr(clean: torch.Tensor, noise: torch.Tensor, snr: float) -> torch.Tensor:
    """`clean` plus `noise` scaled so that the mixture has the given SNR (dB)

    Parameters
    ----------
    clean, noise : (channel, sample) torch.Tensor
        Of the same shape.
    snr : float
        In dB. Silent noise or silent chunks are returned unchanged.
    """
    clean_power = clean.pow(2).mean()
    noise_power = noise.pow(2).mean()
    if clean_power <= 0 or noise_power <= 0:
        return clean
    scale = torch.sqrt(clean_power / (noise_power * 10.0 ** (snr / 10.0)))
    return clean + scale * noise


def reverberate(waveform: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve `waveform` with a room impulse response, keeping its length and alignment

    The response is normalised to unit energy and the output is shifted by
    the position of its direct path (its largest peak), so that speech stays
    where it was; an identity response (a unit impulse) changes nothing.

    Parameters
    ----------
    waveform : (channel, sample) torch.Tensor
    rir : (sample, ) torch.Tensor
    """
    rir = rir.to(waveform.dtype).reshape(-1)
    rir = rir / rir.norm().clamp(min=1e-12)
    peak = int(torch.argmax(rir.abs()))
    n = waveform.shape[-1] + len(rir) - 1
    size = 1 << (n - 1).bit_length()
    spectrum = torch.fft.rfft(waveform, n=size) * torch.fft.rfft(rir, n=size)
    return torch.fft.irfft(spectrum, n=size)[..., peak : peak + waveform.shape[-1]]


#: the telephone band of G.712 (narrowband telephony), Hz
TELEPHONE_BAND = (300.0, 3400.0)
#: the sample rate of narrowband telephony (G.711), Hz
TELEPHONE_RATE = 8000
#: duration of a VoIP packet, s (20 ms: 160 samples of G.711 at 8 kHz)
PACKET_DURATION = 0.02


def band_limit(waveform: torch.Tensor, sample_rate: int, low: float, high: float) -> torch.Tensor:
    """Keep only the frequencies within [low, high] Hz (an ideal filter: the FFT bins outside are zeroed)"""
    num_samples = waveform.shape[-1]
    spectrum = torch.fft.rfft(waveform.double(), n=num_samples)
    frequencies = torch.fft.rfftfreq(num_samples, d=1.0 / sample_rate)
    spectrum[..., (frequencies < low) | (frequencies > high)] = 0
    return torch.fft.irfft(spectrum, n=num_samples).to(waveform.dtype)


def telephone(
    waveform: torch.Tensor,
    sample_rate: int,
    band: Tuple[float, float] = TELEPHONE_BAND,
    codec: str = "mu-law",
    loss: float = 0.0,
    rng: Optional[random.Random] = None,
    concealment: str = "repeat",
) -> torch.Tensor:
    """`waveform` as a narrowband telephone line delivers it, at `sample_rate` again

    The signal is band-limited to `band` (default 300-3,400 Hz), resampled
    to 8 kHz, coded with G.711's 8-bit companding (``"mu-law"`` or
    ``"a-law"``, each sample quantised to 256 levels, after a peak
    normalisation that the decoder undoes), then brought back to
    `sample_rate` by an ideal interpolation (nothing above 4 kHz). Without
    packet loss it draws nothing at random: the same input always gives the
    same output (the ``telephone`` test condition).

    Parameters
    ----------
    waveform : (channel, sample) torch.Tensor
    sample_rate : int
    band : (low, high), optional
        Pass band in Hz, within (0, 4000).
    codec : {"mu-law", "a-law"}, optional
    loss : float, optional
        Packet loss rate in [0, 1] of the decoded 8 kHz line (:func:`packet_loss`). Defaults to 0.
    rng : random.Random, optional
        Draws the lost packets; needed when `loss` > 0.
    concealment : {"repeat", "zero"}, optional
        What a lost packet becomes. Defaults to "repeat".
    """
    import torchaudio.functional as F

    if codec not in TELEPHONE_CODECS:
        raise ConfigError(f"Unknown telephone codec '{codec}': use mu-law or a-law.")
    low, high = band
    narrow = band_limit(waveform.float(), sample_rate, low, high)
    if sample_rate != TELEPHONE_RATE:
        narrow = F.resample(narrow, orig_freq=sample_rate, new_freq=TELEPHONE_RATE)
    peak = narrow.abs().max().clamp(min=1e-8)
    line = narrow / peak
    if codec == "mu-law":
        line = F.mu_law_decoding(F.mu_law_encoding(line.clamp(-1.0, 1.0), 256), 256)
    else:
        line = _a_law(line.clamp(-1.0, 1.0))
    line = line * peak
    if loss > 0:
        if rng is None:
            raise ValueError("telephone() needs an `rng` to draw lost packets")
        line = packet_loss(line, loss, rng, TELEPHONE_RATE, concealment=concealment)
    if sample_rate != TELEPHONE_RATE:
        line = F.resample(line, orig_freq=TELEPHONE_RATE, new_freq=sample_rate)
        line = band_limit(line, sample_rate, 0.0, TELEPHONE_RATE / 2)  # the ideal interpolation's images removed
    num_samples = waveform.shape[-1]
    line = line[..., :num_samples]
    if line.shape[-1] < num_samples:
        line = torch.nn.functional.pad(line, (0, num_samples - line.shape[-1]))
    return line.to(waveform.dtype)


def packet_loss(
    waveform: torch.Tensor,
    rate: float,
    rng: random.Random,
    sample_rate: int = TELEPHONE_RATE,
    packet: float = PACKET_DURATION,
    concealment: str = "repeat",
) -> torch.Tensor:
    """`waveform` (channel, sample) with packets of `packet` seconds lost at `rate`

    Each packet (the last one may be shorter) is lost independently with
    probability `rate`, drawn from `rng`; a lost packet is replaced by the
    previous one as played (``"repeat"``: consecutive losses repeat it again;
    the first packet, having none before it, becomes silence) or by silence
    (``"zero"``). A rate of 0 returns the input.
    """
    if concealment not in CONCEALMENTS:
        raise ConfigError(f"Unknown packet loss concealment '{concealment}': use repeat or zero.")
    if rate <= 0:
        return waveform
    size = max(1, int(round(packet * sample_rate)))
    num_samples = waveform.shape[-1]
    out = waveform.clone()
    for start in range(0, num_samples, size):
        if rng.random() >= rate:
            continue
        end = min(start + size, num_samples)
        if concealment == "zero" or start == 0:
            out[..., start:end] = 0
        else:
            out[..., start:end] = out[..., start - size : start - size + end - start]
    return out


def channel_response(rng: random.Random, sample_rate: int, num_bins: int, peaks: int = 3) -> torch.Tensor:
    """A random microphone-and-room colouration: the (num_bins, ) magnitude response of an rfft grid

    `peaks` peaking equalisers of -10 to +10 dB, centred at log-uniform
    frequencies between 100 Hz and 6 kHz (bandwidth 0.5 to 2 octaves), times
    a high-pass (cut-off 50 to 300 Hz) and a low-pass (cut-off 3.5 to 7.5 kHz,
    below Nyquist), both of the second order. Drawn from `rng` alone.
    """
    frequencies = torch.linspace(0.0, sample_rate / 2, num_bins, dtype=torch.float64)
    octaves = torch.log2(frequencies.clamp(min=1.0))
    gain_db = torch.zeros(num_bins, dtype=torch.float64)
    for _ in range(peaks):
        centre = math.log2(math.exp(rng.uniform(math.log(100.0), math.log(6000.0))))
        width = rng.uniform(0.5, 2.0)
        gain_db += rng.uniform(-10.0, 10.0) * torch.exp(-0.5 * ((octaves - centre) / (width / 2)) ** 2)
    high = rng.uniform(50.0, 300.0)
    low = min(rng.uniform(3500.0, 7500.0), 0.45 * sample_rate)
    ratio_high, ratio_low = frequencies / high, frequencies / low
    response = 10 ** (gain_db / 20)
    response = response * ratio_high**2 / torch.sqrt(1 + ratio_high**4)  # second-order high-pass (Butterworth)
    response = response / torch.sqrt(1 + ratio_low**4)  # second-order low-pass (Butterworth)
    return response


def colour(waveform: torch.Tensor, response: torch.Tensor) -> torch.Tensor:
    """`waveform` (channel, sample) filtered by a zero-phase magnitude `response` on its rfft grid, at the same power"""
    num_samples = waveform.shape[-1]
    spectrum = torch.fft.rfft(waveform.double(), n=num_samples)
    grid = torch.nn.functional.interpolate(response[None, None], size=spectrum.shape[-1], mode="linear")[0, 0]
    out = torch.fft.irfft(spectrum * grid, n=num_samples)
    out = out * (waveform.double().pow(2).mean() / out.pow(2).mean().clamp(min=1e-20)).sqrt()
    return out.to(waveform.dtype)


def _a_law(x: torch.Tensor, a: float = 87.6, levels: int = 256) -> torch.Tensor:
    """G.711 A-law companding of `x` in [-1, 1], quantised to `levels` codes, and back"""
    magnitude = x.abs()
    small = magnitude < 1.0 / a
    compressed = torch.where(small, a * magnitude, 1.0 + torch.log((a * magnitude).clamp(min=1.0))) / (1.0 + math.log(a))
    half = levels // 2
    code = torch.round(compressed * (half - 1)) / (half - 1)
    expanded = torch.where(code < 1.0 / (1.0 + math.log(a)), code * (1.0 + math.log(a)) / a,
                           torch.exp(code * (1.0 + math.log(a)) - 1.0) / a)
    return torch.sign(x) * expanded


def babble(speech: Sequence[torch.Tensor]) -> torch.Tensor:
    """Babble noise: the sum of utterances of other speakers, each normalised to unit power

    Parameters
    ----------
    speech : sequence of (channel, sample) torch.Tensor
        At least one utterance, all of the same shape.

    Returns
    -------
    babble : (channel, sample) torch.Tensor
        To mix with :func:`mix_at_snr`.
    """
    total = torch.zeros_like(speech[0])
    for utterance in speech:
        total += utterance / utterance.pow(2).mean().sqrt().clamp(min=1e-8)
    return total


def add_colored_noise(
    waveform: torch.Tensor, snr: float, f_decay: float, rng: random.Random, sample_rate: int = 16000
) -> torch.Tensor:
    """`waveform` plus coloured noise (torch_audiomentations' ``AddColoredNoise``) at `snr` dB

    Parameters
    ----------
    waveform : (channel, sample) torch.Tensor
    snr : float
        In dB.
    f_decay : float
        Decay of the noise's power spectrum, 1 / f ** f_decay: 0 is white,
        1 pink, 2 brown, -1 blue, -2 violet.
    rng : random.Random
        Draws the seed of the noise (torch's global generator is left as it was).
    sample_rate : int, optional
    """
    from torch_audiomentations import AddColoredNoise

    transform = AddColoredNoise(
        min_snr_in_db=snr, max_snr_in_db=snr, min_f_decay=f_decay, max_f_decay=f_decay,
        p=1.0, sample_rate=sample_rate, output_type="dict",
    )
    with torch.random.fork_rng(devices=[]):  # draw the noise from `rng`, not from the global generator
        torch.manual_seed(rng.randrange(2**63))
        return transform(waveform[None], sample_rate=sample_rate).samples[0]


def speed_perturb(waveform: torch.Tensor, factor: float, sample_rate: int = 16000) -> torch.Tensor:
    """Play `waveform` `factor` times faster (tempo and pitch), as sox's ``speed``

    The output has ``round(num_samples / factor)`` samples (resampling by
    torchaudio, polyphase). A factor of 1 returns the input.
    """
    if factor == 1.0:
        return waveform
    import torchaudio

    source = int(round(sample_rate * factor))
    return torchaudio.functional.resample(waveform, orig_freq=source, new_freq=sample_rate)


# ---------------------------------------------------------------- files


class NoiseSource:
    """Noise excerpts from a directory of audio files

    Files are grouped into categories by their first sub-directory when it
    is one of MUSAN's (``noise/``, ``music/``, ``speech/``), else into a
    single "noise" category; a category is drawn uniformly, then a file
    (weighted by duration), then an excerpt.

    Parameters
    ----------
    directory : str or Path
    snr : (float, float), optional
        SNR range (dB) of every category; defaults to MUSAN's per-category
        ranges (noise 0–15, music 5–15, speech 13–20 dB).
    categories : dict, optional
        SNR range of each category, overriding `snr`.
    subset : {"train", "test", "all"}, optional
        Which files (see :func:`pyannote_embloss.io.file_subset`). Defaults to "train".
    sample_rate : int, optional

    Raises
    ------
    MissingFileError
        When the directory has no audio file (in `subset`).
    AudioDecodingError
        When some file cannot be read, naming them.
    """

    def __init__(
        self,
        directory,
        snr: Optional[Tuple[float, float]] = None,
        categories: Optional[Dict[str, Tuple[float, float]]] = None,
        subset: str = "train",
        sample_rate: int = 16000,
    ):
        from pyannote.audio.core.io import Audio

        from .audio import read_durations

        self.directory = Path(directory)
        files = split_files(audio_files(self.directory), self.directory, subset)
        if not files:
            raise MissingFileError(
                f"Noise directory '{self.directory}' has no audio file"
                + ("" if subset == "all" else f" in its {subset} split (see pyannote_embloss.io.file_subset)")
                + "."
            )
        durations = read_durations(files, progress=False, desc="Reading noise durations")
        self.files: Dict[str, List[Tuple[str, float]]] = {}
        for file, duration in zip(files, durations):
            first = file.relative_to(self.directory).parts[0]
            category = first if first in MUSAN_SNR and len(file.relative_to(self.directory).parts) > 1 else "noise"
            self.files.setdefault(category, []).append((str(file), duration))
        self.snr = {
            category: tuple((categories or {}).get(category) or snr or MUSAN_SNR.get(category, MUSAN_SNR["noise"]))
            for category in self.files
        }
        self.audio = Audio(sample_rate=sample_rate, mono="downmix")
        self.sample_rate = sample_rate

    @property
    def paths(self) -> List[str]:
        return [path for files in self.files.values() for path, _ in files]

    def excerpt(self, num_samples: int, rng: random.Random) -> Tuple[torch.Tensor, Tuple[float, float]]:
        """A random noise excerpt of `num_samples` samples, and the SNR range of its category"""
        from pyannote.core import Segment

        from .audio import load_audio

        category = rng.choice(sorted(self.files))
        files = self.files[category]
        path, duration = rng.choices(files, weights=[d for _, d in files], k=1)[0]
        length = num_samples / self.sample_rate
        start = rng.uniform(0.0, max(0.0, duration - length))
        noise = load_audio(self.audio, path, Segment(start, start + length), num_samples=num_samples)
        if duration < length:  # loop short noises
            noise = load_audio(self.audio, path)
            noise = noise.repeat(1, -(-num_samples // noise.shape[-1]))[:, :num_samples]
        return noise, self.snr[category]


class ImpulseResponses:
    """Room impulse responses, from files or simulated

    Parameters
    ----------
    directory : str or Path, optional
        Directory of impulse response files (any layout; in RIRS_NOISES,
        ``simulated_rirs/`` and ``real_rirs_isotropic_noises/`` are used, and
        its isotropic noise recordings left out). Without it, `num` rooms are
        simulated with pyroomacoustics (image source method).
    rt60 : (float, float), optional
        Reverberation time range of simulated rooms, in seconds. Defaults to (0.2, 0.8).
    num : int, optional
        Number of simulated (or at most loaded) impulse responses. Defaults to 200.
    seed : int or str, optional
        Seed of the simulation (or of the choice of files).
    subset : {"train", "test", "all"}, optional
        Files: which of them (see :func:`pyannote_embloss.io.file_subset`). Simulation: "train" and
        "test" use different seeds. Defaults to "train".
    sample_rate : int, optional
    """

    def __init__(
        self,
        directory=None,
        rt60: Tuple[float, float] = (0.2, 0.8),
        num: int = 200,
        seed=0,
        subset: str = "train",
        sample_rate: int = 16000,
    ):
        self.sample_rate = sample_rate
        self.directory = None if directory is None else Path(directory)
        rng = random.Random(f"{seed}:{subset}:rirs")
        if self.directory is None:
            self.responses = [self.simulate(rng, rt60) for _ in range(num)]
            return
        files = [
            f
            for f in audio_files(self.directory)
            if "isotropic" not in f.name.lower() and "noise" not in f.name.lower()
        ]
        files = split_files(files, self.directory, subset)
        if not files:
            raise MissingFileError(f"Impulse response directory '{self.directory}' has no audio file ({subset} split).")
        if len(files) > num:
            files = sorted(rng.sample(files, num))
        from pyannote.audio.core.io import Audio

        from .audio import load_audio

        audio = Audio(sample_rate=sample_rate, mono="downmix")
        self.responses = [load_audio(audio, str(f))[0] for f in files]

    def simulate(self, rng: random.Random, rt60: Tuple[float, float]) -> torch.Tensor:
        """One impulse response of a random shoebox room (pyroomacoustics)"""
        import pyroomacoustics as pra

        target = rng.uniform(*rt60)
        room_dim = np.array([rng.uniform(3.0, 10.0), rng.uniform(3.0, 8.0), rng.uniform(2.5, 4.0)])
        absorption, max_order = pra.inverse_sabine(target, room_dim)
        room = pra.ShoeBox(
            room_dim, fs=self.sample_rate, materials=pra.Material(absorption), max_order=min(max_order, 30)
        )
        room.add_source([rng.uniform(0.5, d - 0.5) for d in room_dim])
        room.add_microphone([rng.uniform(0.5, d - 0.5) for d in room_dim])
        room.compute_rir()
        return torch.tensor(np.asarray(room.rir[0][0]), dtype=torch.float32)

    def sample(self, rng: random.Random) -> torch.Tensor:
        return self.responses[rng.randrange(len(self.responses))]


# ---------------------------------------------------------------- application


@dataclass
class _Transform:
    config: dict
    source: object = None  # NoiseSource or ImpulseResponses


class Augmentation:
    """Corrupts batches of training chunks, as configured

    Parameters
    ----------
    config : dict
        Output of :func:`pyannote_embloss.config.check_augmentation`.
    sample_rate : int, optional
    seed : int, optional
        Seed of the simulated impulse responses.
    """

    def __init__(self, config: dict, sample_rate: int = 16000, seed: int = 0):
        self.config = config
        self.sample_rate = sample_rate
        self.transforms = []
        for transform in config["transforms"]:
            source = None
            if transform["name"] == "noise":
                source = NoiseSource(
                    transform["directory"], transform["snr"], transform["categories"],
                    subset=transform["subset"], sample_rate=sample_rate,
                )
            elif transform["name"] == "reverb":
                source = ImpulseResponses(
                    transform["directory"], transform["rt60"], transform["num"], seed=seed,
                    subset=transform["subset"], sample_rate=sample_rate,
                )
            self.transforms.append(_Transform(transform, source))

    def __call__(self, X: torch.Tensor, speakers: Sequence[int], rng: random.Random) -> torch.Tensor:
        """Corrupt a batch

        Parameters
        ----------
        X : (batch, channel, sample) torch.Tensor
            Clean chunks (not modified).
        speakers : sequence of int
            Speaker of each chunk (speed-perturbed copies of a speaker count as
            the same speaker, so that babble never mixes a speaker with itself).
        rng : random.Random

        Returns
        -------
        X : (batch, channel, sample) torch.Tensor
        """
        if not self.transforms or self.config["probability"] == 0.0:
            return X
        clean = X
        out = X.clone()
        for i in range(len(X)):
            if rng.random() >= self.config["probability"]:
                continue
            if self.config["combine"] == "one":
                weights = [t.config["weight"] for t in self.transforms]
                chosen = rng.choices(self.transforms, weights=weights, k=1)
            else:
                chosen = [t for t in self.transforms if rng.random() < t.config["probability"]]
            for transform in chosen:
                out[i] = self.apply(transform, out[i], i, clean, speakers, rng)
        return out

    def apply(self, transform: _Transform, x: torch.Tensor, i: int, batch, speakers, rng) -> torch.Tensor:
        """One transform on chunk `x` (the `i`-th of `batch`)"""
        config = transform.config
        name = config["name"]
        if name == "reverb":
            return reverberate(x, transform.source.sample(rng))
        if name == "noise":
            noise, snr = transform.source.excerpt(x.shape[-1], rng)
            return mix_at_snr(x, noise.to(x.dtype), rng.uniform(*snr))
        if name == "babble":
            others = [j for j in range(len(batch)) if speakers[j] != speakers[i]]
            if not others:
                return x
            k = min(len(others), rng.randint(*config["speakers"]))
            return mix_at_snr(x, babble([batch[j] for j in rng.sample(others, k)]), rng.uniform(*config["snr"]))
        if name == "colored_noise":
            snr = rng.uniform(*config["snr"])
            f_decay = rng.uniform(*config["f_decay"])
            return add_colored_noise(x, snr, f_decay, rng, self.sample_rate)
        if name == "telephone":
            band = (rng.uniform(*config["low"]), rng.uniform(*config["high"]))
            codec = rng.choice(config["codec"])
            loss = rng.uniform(*config["packet_loss"])
            return telephone(x, self.sample_rate, band, codec, loss=loss, rng=rng, concealment=config["concealment"])
        raise AssertionError(name)  # pragma: no cover


def speed_classes(classes: Sequence[str], speeds: Sequence[float]) -> List[str]:
    """Class names with speed-perturbed copies of each speaker ("SPK", "SPK@speed0.9", ...)"""
    names = []
    for speed in speeds:
        suffix = "" if speed == 1.0 else f"@speed{speed:g}"
        names.extend(f"{klass}{suffix}" for klass in classes)
    return names


def chunk_with_speed(load, num_samples: int, factor: float, sample_rate: int) -> torch.Tensor:
    """A chunk of `num_samples` samples played `factor` times faster

    Parameters
    ----------
    load : callable
        load(num_input_samples) -> (channel, num_input_samples) clean audio.
    """
    if factor == 1.0:
        return load(num_samples)
    needed = int(math.ceil(num_samples * factor)) + 64
    perturbed = speed_perturb(load(needed), factor, sample_rate)
    if perturbed.shape[-1] < num_samples:
        perturbed = F.pad(perturbed, (0, num_samples - perturbed.shape[-1]))
    return perturbed[..., :num_samples]
