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

from .base import MIN_POOLED_FRAMES, EmbeddingModel
from .frontends import LogMelFilterbank

__all__ = ["LogMelStatistics"]


class LogMelStatistics(EmbeddingModel, Model):
    """Mean and standard deviation of log-mel bands over the loudest frames

    Audio shorter than two frames (:attr:`min_num_samples`: 672 samples,
    0.042 s at 16 kHz) is repeated until it is that long; empty audio is an
    error.

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

    #: why `pyannote-audio-emb export` refuses it
    not_exportable = "ONNX has no quantile operator (its selection of the loudest frames)"

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

    @property
    def min_num_samples(self) -> int:
        """Smallest input, in samples, with two frames"""
        return self.filterbank.receptive_field_size(num_frames=MIN_POOLED_FRAMES)

    def forward(self, waveforms: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(batch, channel, sample) waveforms -> (batch, 2 x n_mels) embeddings

        `weights` (batch, frame), when given, weigh the frames instead of the
        energy-based selection (e.g. a speaker's activity in diarization).
        """
        waveforms, weights = self.repeat_short_input(waveforms, weights)
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
