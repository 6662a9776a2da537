"""LogMelStatistics: a training-free speaker embedding, the reference every trained model must beat

Per file: log-mel filterbank frames (40 bands, 25 ms every 10 ms), the 30 %
of frames of lowest energy dropped (a crude voice activity detection), then
the mean and the standard deviation of each band over the remaining frames:
an (80, ) embedding, compared with cosine similarity like any other.

It needs no training: ``compare`` always reports it as the row
``baseline (no training)``, so that every table says at a glance whether
training helped (see ``experiments/baseline/config.yml``).
"""

from __future__ import annotations

from typing import Optional

import torch
from pyannote.audio.core.model import Model

from .frontends import LogMelFilterbank

__all__ = ["LogMelStatistics"]


class LogMelStatistics(Model):
    """Mean and standard deviation of log-mel bands over the loudest frames

    Parameters
    ----------
    sample_rate : int, optional
        Defaults to 16000.
    num_channels : int, optional
        Defaults to 1 (mono).
    n_mels : int, optional
        Number of mel bands. Defaults to 40.
    drop : float, optional
        Share of frames of lowest energy left out, in [0, 1[. Defaults to 0.3.
    """

    #: nothing to train: `pyannote-audio-emb evaluate` and `compare` use it as is
    trainable = False

    def __init__(self, sample_rate: int = 16000, num_channels: int = 1, n_mels: int = 40, drop: float = 0.3):
        super().__init__(sample_rate=sample_rate, num_channels=num_channels)
        if not 0.0 <= drop < 1.0:
            from ..errors import ConfigError

            raise ConfigError(f"LogMelStatistics: drop must be in [0, 1[ (got {drop}).")
        self.save_hyperparameters("n_mels", "drop")
        self.filterbank = LogMelFilterbank(sample_rate=sample_rate, n_mels=n_mels, normalize=False)

    @property
    def dimension(self) -> int:
        return 2 * self.hparams.n_mels

    def forward(self, waveforms: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(batch, channel, sample) waveforms -> (batch, 2 x n_mels) embeddings

        `weights` (batch, frame), when given, weigh the frames instead of the
        energy-based selection (e.g. a speaker's activity in diarization).
        """
        num_samples = waveforms.shape[-1]
        minimum = self.filterbank.receptive_field_size(num_frames=2)
        if num_samples < minimum:  # repeat short audio, as SincTDNN does
            waveforms = waveforms.repeat(1, 1, -(-minimum // num_samples))
        features = self.filterbank(waveforms)  # (batch, band, frame)
        if weights is None:
            energy = features.mean(dim=1)  # (batch, frame)
            threshold = torch.quantile(energy, self.hparams.drop, dim=1, keepdim=True)
            weights = (energy >= threshold).to(features.dtype)
        else:
            weights = torch.nn.functional.interpolate(
                weights[:, None].to(features.dtype), size=features.shape[-1], mode="nearest"
            )[:, 0]
        total = weights.sum(dim=1, keepdim=True).clamp(min=1.0)
        mean = (features * weights[:, None]).sum(dim=-1) / total
        variance = (((features - mean[..., None]) ** 2) * weights[:, None]).sum(dim=-1) / (total - 1).clamp(min=1.0)
        return torch.cat([mean, variance.sqrt()], dim=1)
