"""Fixed log-mel filterbank front-end, as an alternative to SincNet

Frames of 25 ms every 10 ms, a Hann window, `n_mels` mel bands, log energy,
and the mean of each band over the input removed (cepstral mean
normalisation): the features of every x-vector recipe (Kaldi, WeSpeaker,
SpeechBrain). It has no trainable parameter and the same frame-counting
interface as pyannote.audio's ``SincNet`` block, so that
:class:`~pyannote_embloss.models.sinctdnn.SincTDNN` can use either.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torchaudio

from pyannote.audio.utils.receptive_field import conv1d_num_frames

__all__ = ["LogMelFilterbank"]


class LogMelFilterbank(nn.Module):
    """Log-mel filterbank features with per-input mean normalisation

    Parameters
    ----------
    sample_rate : int, optional
        Defaults to 16000.
    n_mels : int, optional
        Number of mel bands (output channels). Defaults to 60.
    win_length, hop_length : float, optional
        Frame length and step, in seconds. Default to 25 ms and 10 ms.
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
            center=False,
            power=2.0,
        )
        # the STFT's windowed DFT as convolution kernels, for ONNX export only (not saved in checkpoints)
        stft = self.spectrogram.spectrogram
        left = (n_fft - self.win) // 2
        window = torch.nn.functional.pad(stft.window, (left, n_fft - self.win - left)).double()
        angle = 2 * torch.pi * torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None] * torch.arange(n_fft) / n_fft
        kernels = torch.cat([torch.cos(angle), -torch.sin(angle)]) * window
        self.register_buffer("dft_kernels", kernels.float()[:, None], persistent=False)

    @property
    def dimension(self) -> int:
        return self.n_mels

    def num_frames(self, num_samples: int) -> int:
        return conv1d_num_frames(num_samples, kernel_size=self.win, stride=self.hop, padding=0, dilation=1)

    def receptive_field_size(self, num_frames: int = 1) -> int:
        return self.win + (num_frames - 1) * self.hop

    def receptive_field_center(self, frame: int = 0) -> int:
        return frame * self.hop + self.win // 2

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
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            if torch.onnx.is_in_onnx_export():
                spectrogram = self._exportable_mel_spectrogram(waveforms[:, :1].float())
            else:
                spectrogram = self.spectrogram(waveforms[:, 0].float())
            features = torch.log(spectrogram + 1e-6)
        if self.normalize:
            features = features - features.mean(dim=-1, keepdim=True)
        return features
