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

    @property
    def dimension(self) -> int:
        return self.n_mels

    def num_frames(self, num_samples: int) -> int:
        return conv1d_num_frames(num_samples, kernel_size=self.win, stride=self.hop, padding=0, dilation=1)

    def receptive_field_size(self, num_frames: int = 1) -> int:
        return self.win + (num_frames - 1) * self.hop

    def receptive_field_center(self, frame: int = 0) -> int:
        return frame * self.hop + self.win // 2

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, channel, sample) waveforms -> (batch, n_mels, frame) features"""
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            features = torch.log(self.spectrogram(waveforms[:, 0].float()) + 1e-6)
        if self.normalize:
            features = features - features.mean(dim=-1, keepdim=True)
        return features
