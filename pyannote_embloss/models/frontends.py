"""Fixed log-mel filterbank front-end, as an alternative to SincNet

Frames of 25 ms every 10 ms, a Hann window, `n_mels` mel bands, log energy,
and the mean of each band over the input removed (cepstral mean
normalisation): the features of every x-vector recipe (Kaldi, WeSpeaker,
SpeechBrain). It has no trainable parameter and the same frame-counting
interface as pyannote.audio's ``SincNet`` block, so that
:class:`~pyannote_embloss.models.sinctdnn.SincTDNN` can use either.

:class:`ExportableKaldiFbank` computes pyannote.audio's WeSpeaker front-end
(``torchaudio.compliance.kaldi.fbank``) with operations ONNX has, for the
export of :class:`~pyannote_embloss.models.wespeaker.WeSpeakerResNet34`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torchaudio

from pyannote.audio.utils.receptive_field import conv1d_num_frames

from .base import full_precision

__all__ = ["LogMelFilterbank", "ExportableKaldiFbank"]


def dft_matrix(size: int, num_samples: int) -> torch.Tensor:
    """(2 x (size // 2 + 1), num_samples) float64 real and imaginary parts of a `size`-point DFT

    Applied to `num_samples` samples (zero-padded to `size` when fewer).
    """
    angle = 2 * torch.pi * torch.arange(size // 2 + 1, dtype=torch.float64)[:, None] * torch.arange(num_samples) / size
    return torch.cat([torch.cos(angle), -torch.sin(angle)])


class LogMelFilterbank(nn.Module):
    """Log-mel filterbank features with per-input mean normalisation

    Parameters
    ----------
    sample_rate : int, optional
        Defaults to 16000.
    n_mels : int, optional
        Number of mel bands (output channels). Defaults to 60.
    win_length, hop_length : float, optional
        Frame length and step, in seconds. Default to 25 ms and 10 ms: in
        samples of `sample_rate` (400 and 160 at 16 kHz, with a 512-point FFT;
        200 and 80 at 8 kHz, with a 256-point FFT). The mel bands span 0 Hz to
        the Nyquist frequency of `sample_rate` (4 kHz at 8 kHz).
    normalize : bool, optional
        Remove each band's mean over the input. Defaults to True.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 60,
        win_length: float = 0.025,
        hop_length: float = 0.010,
        normalize: bool = True,
    ):
        super().__init__()
        self.win = int(round(win_length * sample_rate))
        self.hop = int(round(hop_length * sample_rate))
        n_fft = 1 << (self.win - 1).bit_length()
        self.n_mels = n_mels
        self.normalize = normalize
        self.spectrogram = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=self.win,
            hop_length=self.hop,
            n_mels=n_mels,
            f_min=0.0,
            f_max=sample_rate / 2,
            center=False,
            power=2.0,
        )
        # the STFT's windowed DFT as convolution kernels, for ONNX export only (not saved in checkpoints)
        stft = self.spectrogram.spectrogram
        left = (n_fft - self.win) // 2
        window = torch.nn.functional.pad(stft.window, (left, n_fft - self.win - left)).double()
        self.register_buffer("dft_kernels", (dft_matrix(n_fft, n_fft) * window).float()[:, None], persistent=False)

    @property
    def dimension(self) -> int:
        return self.n_mels

    @property
    def frame_size(self) -> int:
        """Samples per frame: the FFT size (the STFT frames by `n_fft`, the window centred in it)"""
        return self.spectrogram.n_fft

    def num_frames(self, num_samples: int) -> int:
        return conv1d_num_frames(num_samples, kernel_size=self.frame_size, stride=self.hop, padding=0, dilation=1)

    def receptive_field_size(self, num_frames: int = 1) -> int:
        return self.frame_size + (num_frames - 1) * self.hop

    def receptive_field_center(self, frame: int = 0) -> int:
        return frame * self.hop + self.frame_size // 2

    def _exportable_mel_spectrogram(self, waveforms: torch.Tensor) -> torch.Tensor:
        """The same mel power spectrogram, with the STFT as a convolution by DFT kernels

        ONNX has no complex STFT; this is used only inside ``torch.onnx.export``
        (the FFT is several times cheaper for training and inference).
        """
        stft = self.spectrogram.spectrogram
        parts = torch.nn.functional.conv1d(waveforms, self.dft_kernels, stride=stft.hop_length)
        real, imaginary = parts.chunk(2, dim=1)
        power = real**2 + imaginary**2  # (batch, freq, frame)
        return torch.matmul(power.transpose(1, 2), self.spectrogram.mel_scale.fb).transpose(1, 2)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, channel, sample) waveforms -> (batch, n_mels, frame) features"""
        with full_precision(waveforms):
            if torch.onnx.is_in_onnx_export():
                spectrogram = self._exportable_mel_spectrogram(waveforms[:, :1].float())
            else:
                spectrogram = self.spectrogram(waveforms[:, 0].float())
            features = torch.log(spectrogram + 1e-6)
        if self.normalize:
            features = features - features.mean(dim=-1, keepdim=True)
        return features


#: windows of ``torchaudio.compliance.kaldi`` that :class:`ExportableKaldiFbank` knows
KALDI_WINDOWS = ("hamming", "hanning", "povey", "rectangular")


def _kaldi_frame_kernels(window_size: int, padded_size: int, window_type: str, preemphasis: float) -> torch.Tensor:
    """The linear part of Kaldi's processing of one frame, as (2 x frequency, window_size) kernels

    DC offset removal, pre-emphasis (the first sample repeated before the
    frame), windowing, zero-padding to `padded_size` and the real and
    imaginary parts of the DFT, composed in float64.
    """
    dtype = torch.float64
    identity = torch.eye(window_size, dtype=dtype)
    remove_dc = identity - 1.0 / window_size
    previous = torch.diag(torch.ones(window_size - 1, dtype=dtype), diagonal=-1)
    previous[0, 0] = 1.0
    pre_emphasis = identity - preemphasis * previous
    if window_type == "hamming":
        window = torch.hamming_window(window_size, periodic=False, alpha=0.54, beta=0.46, dtype=dtype)
    elif window_type in ("hanning", "povey"):
        window = torch.hann_window(window_size, periodic=False, dtype=dtype)
        window = window.pow(0.85) if window_type == "povey" else window
    else:
        window = torch.ones(window_size, dtype=dtype)
    return (dft_matrix(padded_size, window_size) * window) @ pre_emphasis @ remove_dc


class ExportableKaldiFbank(nn.Module):
    """pyannote.audio's WeSpeaker front-end, with operations ONNX has

    The features of ``BaseWeSpeakerResNet.compute_fbank`` with its defaults
    (``torchaudio.compliance.kaldi.fbank`` of the waveform scaled to the
    16-bit range: no dither, no energy, `snip_edges`; then the mean of each
    band over the input removed), with the framing, DC removal, pre-emphasis,
    window and DFT as one strided convolution. ``torch.vmap`` and
    ``torch.fft`` cannot be exported: this is used only inside
    ``torch.onnx.export``. Its kernels are not saved in checkpoints.

    Parameters
    ----------
    sample_rate, num_mel_bins, frame_length, frame_shift, window_type, round_to_power_of_two
        As in pyannote.audio's ``BaseWeSpeakerResNet`` (lengths in milliseconds).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        num_mel_bins: int = 80,
        frame_length: float = 25.0,
        frame_shift: float = 10.0,
        window_type: str = "hamming",
        round_to_power_of_two: bool = True,
    ):
        from torchaudio.compliance.kaldi import get_mel_banks

        super().__init__()
        if window_type not in KALDI_WINDOWS:
            from ..errors import ConfigError

            raise ConfigError(f"No exportable Kaldi fbank with window {window_type!r}: use one of {', '.join(KALDI_WINDOWS)}.")
        window_size = int(sample_rate * frame_length * 0.001)
        self.window_shift = int(sample_rate * frame_shift * 0.001)
        padded_size = 1 << (window_size - 1).bit_length() if round_to_power_of_two else window_size
        kernels = _kaldi_frame_kernels(window_size, padded_size, window_type, preemphasis=0.97)
        mel_banks, _ = get_mel_banks(num_mel_bins, padded_size, float(sample_rate), 20.0, 0.0, 100.0, -500.0, 1.0)
        self.register_buffer("kernels", kernels.float()[:, None], persistent=False)
        self.register_buffer("mel_banks", torch.nn.functional.pad(mel_banks, (0, 1)).T.float(), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, 1, sample) waveforms -> (batch, frame, num_mel_bins) features"""
        parts = torch.nn.functional.conv1d(waveforms[:, :1].float() * (1 << 15), self.kernels, stride=self.window_shift)
        real, imaginary = parts.chunk(2, dim=1)
        power = (real**2 + imaginary**2).transpose(1, 2)  # (batch, frame, frequency)
        features = torch.log(torch.clamp(torch.matmul(power, self.mel_banks), min=torch.finfo(torch.float).eps))
        return features - features.mean(dim=1, keepdim=True)
