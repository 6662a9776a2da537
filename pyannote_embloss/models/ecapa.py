"""ECAPA-TDNN: SE-Res2Net blocks, multi-layer feature aggregation, attentive statistics pooling

Desplanques, Thienpondt and Demuynck, "ECAPA-TDNN: Emphasized Channel
Attention, Propagation and Aggregation in TDNN Based Speaker Verification"
(Interspeech 2020), on the plugin's log-mel front-end.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from pyannote.audio.core.model import Model
from pyannote.audio.core.task import Task

from ..errors import ConfigError
from .base import MIN_POOLED_FRAMES, EmbeddingModel, full_precision
from .frontends import LogMelFilterbank

__all__ = ["ECAPATDNN", "AttentiveStatisticsPooling", "SERes2NetBlock"]


class ConvReLUNorm(nn.Sequential):
    """Conv1d (same length: zero padding), ReLU, batch norm: the TDNN layer of the paper"""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, dilation: int = 1):
        super().__init__(
            nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2),
            nn.ReLU(),
            nn.BatchNorm1d(out_channels),
        )


class Res2NetConv(nn.Module):
    """Res2Net dilated convolution: `scale` channel groups, each convolved with the previous group's output added

    y₁ = x₁, y₂ = K₂(x₂), yᵢ = Kᵢ(xᵢ + yᵢ₋₁) for i > 2: a hierarchy of
    receptive fields within one layer, with fewer parameters than one
    convolution over all channels.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int):
        super().__init__()
        width = channels // scale
        self.convs = nn.ModuleList(ConvReLUNorm(width, width, kernel_size, dilation) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.chunk(len(self.convs) + 1, dim=1)
        outputs, previous = [groups[0]], None
        for conv, group in zip(self.convs, groups[1:]):
            previous = conv(group if previous is None else group + previous)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)


class SqueezeExcitation(nn.Module):
    """Rescale each channel by a gate computed from the channels' means over time"""

    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(channels, bottleneck), nn.ReLU(), nn.Linear(bottleneck, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=-1))[..., None]


class SERes2NetBlock(nn.Module):
    """1x1 TDNN, Res2Net dilated convolution, 1x1 TDNN, squeeze-excitation, plus the input (residual)"""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int, se_channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            ConvReLUNorm(channels, channels),
            Res2NetConv(channels, kernel_size, dilation, scale),
            ConvReLUNorm(channels, channels),
            SqueezeExcitation(channels, se_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class AttentiveStatisticsPooling(nn.Module):
    """Channel- and context-dependent attentive statistics pooling

    Each frame's attention, per channel, is computed from the frame and the
    utterance's global mean and standard deviation (the context); the output
    is the attention-weighted mean ‖ standard deviation of each channel. The
    standard deviation is that of a distribution over frames: finite for a
    single frame.

    Parameters
    ----------
    channels : int
        Input channels C (output: 2C).
    attention_channels : int, optional
        Bottleneck of the attention. Defaults to 128.
    """

    EPSILON = 1e-6

    def __init__(self, channels: int, attention_channels: int = 128):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(3 * channels, attention_channels, kernel_size=1),
            nn.Tanh(),
            nn.Conv1d(attention_channels, channels, kernel_size=1),
        )

    def _statistics(self, x: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of (batch, channel, frame) `x` under (batch, 1 or channel, frame) weights summing to 1

        In float32 under autocast: E[x²] - E[x]² cancels most of bfloat16's digits.
        """
        with full_precision(x):
            x, weights = x.float(), weights.float()
            mean = (x * weights).sum(dim=-1)
            variance = (x**2 * weights).sum(dim=-1) - mean**2
            return mean, variance.clamp(min=self.EPSILON).sqrt()

    def forward(self, x: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(batch, channel, frame) features -> (batch, 2 x channel) statistics

        `weights` (batch, frame), when given (e.g. a speaker's activity), are
        interpolated to the number of frames and weigh both the context and
        the attention.
        """
        num_frames = x.shape[-1]
        if weights is None:
            log_weights = torch.zeros_like(x[:, :1])
        else:
            weights = F.interpolate(weights[:, None].to(x.dtype), size=num_frames, mode="nearest")
            log_weights = torch.log(weights.clamp(min=1e-8))
        uniform = torch.softmax(log_weights, dim=-1)  # (batch, 1, frame)
        mean, std = self._statistics(x, uniform)
        context = torch.cat([x, mean[..., None].expand_as(x), std[..., None].expand_as(x)], dim=1)
        attention = torch.softmax(self.attention(context) + log_weights, dim=-1)  # (batch, channel, frame)
        return torch.cat(self._statistics(x, attention), dim=1)


class ECAPATDNN(EmbeddingModel, Model):
    """ECAPA-TDNN speaker embedding on log-mel filterbanks

    waveform ─► log-mel ─► TDNN k5 ─► SE-Res2Net × 3 ─► aggregation ─► attentive pooling ─► linear ─► embedding

    * front-end: :class:`~pyannote_embloss.models.frontends.LogMelFilterbank`
      (`n_mels` bands, 25 ms frames every 10 ms, mean-normalised; no
      trainable parameter);
    * a TDNN layer (Conv1d k5, ReLU, batch norm) to `channels` channels;
    * three SE-Res2Net blocks (kernel 3, dilations 2, 3 and 4, Res2Net scale
      8, squeeze-excitation bottleneck 128), each with a residual connection
      and, as input, the sum of the outputs of the first layer and of the
      blocks before it (the paper's dense connections by summation);
    * multi-layer feature aggregation: the three blocks' outputs concatenated,
      then a 1x1 TDNN layer to `aggregation_channels` channels (1536);
    * attentive statistics pooling (channel- and context-dependent, bottleneck
      128), batch norm, a linear layer to `dimension` and a batch norm.

    Every convolution keeps the number of frames (zero padding), so the
    network needs only two filterbank frames (:attr:`min_num_samples`: 672
    samples, 0.042 s at 16 kHz). Shorter audio is repeated (tiled) until it is
    that long, so that any non-empty input gets a finite embedding; empty
    audio is an error.

    Parameters
    ----------
    sample_rate : int, optional
        Defaults to 16000.
    num_channels : int, optional
        Defaults to 1 (mono).
    channels : int, optional
        Channels C of the frame-level layers: 512 (the paper's small model,
        6.2 M parameters) or 1024 (its large model, 14.7 M). Any multiple of
        `scale` works (e.g. smaller models for small data). Defaults to 512.
    dimension : int, optional
        Embedding dimension. Defaults to 192, as in the paper.
    n_mels : int, optional
        Mel bands of the front-end. Defaults to 80, as in the paper.
    aggregation_channels : int, optional
        Output channels of the multi-layer feature aggregation. Defaults to
        1536, the paper's for both sizes.
    scale : int, optional
        Res2Net scale (channel groups). Defaults to 8.
    se_channels, attention_channels : int, optional
        Bottlenecks of the squeeze-excitation and of the attention. Default to 128.
    task : Task, optional
    """

    KERNEL_SIZE = 3
    DILATIONS = (2, 3, 4)

    def __init__(
        self,
        sample_rate: int = 16000,
        num_channels: int = 1,
        channels: int = 512,
        dimension: int = 192,
        n_mels: int = 80,
        aggregation_channels: int = 1536,
        scale: int = 8,
        se_channels: int = 128,
        attention_channels: int = 128,
        task: Optional[Task] = None,
    ):
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)
        if scale < 2 or channels < scale or channels % scale:
            raise ConfigError(
                f"ECAPATDNN: channels ({channels}) must be a multiple of the Res2Net scale ({scale}, at least 2)."
            )
        self.save_hyperparameters(
            "channels", "dimension", "n_mels", "aggregation_channels", "scale", "se_channels", "attention_channels"
        )

        self.filterbank = LogMelFilterbank(sample_rate=sample_rate, n_mels=n_mels)
        self.tdnn = ConvReLUNorm(n_mels, channels, kernel_size=5)
        self.blocks = nn.ModuleList(
            SERes2NetBlock(channels, self.KERNEL_SIZE, dilation, scale, se_channels) for dilation in self.DILATIONS
        )
        aggregated = aggregation_channels
        self.aggregation = ConvReLUNorm(len(self.DILATIONS) * channels, aggregated)
        self.pooling = AttentiveStatisticsPooling(aggregated, attention_channels)
        self.pooling_norm = nn.BatchNorm1d(2 * aggregated)
        self.embedding = nn.Linear(2 * aggregated, dimension)
        self.embedding_norm = nn.BatchNorm1d(dimension)

    @property
    def dimension(self) -> int:
        """Dimension of the embedding"""
        return self.hparams.dimension

    @property
    def min_num_samples(self) -> int:
        """Smallest input, in samples, with two frames"""
        return self.filterbank.receptive_field_size(num_frames=MIN_POOLED_FRAMES)

    def num_frames(self, num_samples: int) -> int:
        """Number of frames pooled (those of the front-end: every layer keeps them)"""
        return self.filterbank.num_frames(max(num_samples, self.min_num_samples))

    def _embed(self, outputs: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
        return self.embedding_norm(self.embedding(self.pooling_norm(self.pooling(outputs, weights=weights))))

    def forward(self, waveforms: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute embeddings

        Parameters
        ----------
        waveforms : (batch, channel, sample) torch.Tensor
        weights : (batch, frame) or (batch, speaker, frame) torch.Tensor, optional
            Frame weights of the pooling (e.g. one speaker's activity, as
            pyannote.audio's diarization pipeline gives them).

        Returns
        -------
        embeddings : (batch, dimension) or (batch, speaker, dimension) torch.Tensor
        """
        waveforms, weights = self.repeat_short_input(waveforms, weights)
        outputs = [self.tdnn(self.filterbank(waveforms))]
        for block in self.blocks:  # each block's input: the sum of every previous output
            outputs.append(block(torch.stack(outputs).sum(dim=0)))
        outputs = self.aggregation(torch.cat(outputs[1:], dim=1))
        if weights is not None and weights.dim() == 3:
            return torch.stack([self._embed(outputs, weights[:, s]) for s in range(weights.shape[1])], dim=1)
        return self._embed(outputs, weights)
