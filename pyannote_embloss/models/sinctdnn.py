"""SincTDNN: SincNet front-end on raw audio followed by an x-vector TDNN

The architecture of Coria et al., "A Comparison of Metric Learning Loss
Functions for End-To-End Speaker Verification" (SLSP 2020).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Optional

import torch
import torch.nn as nn
from pyannote.audio.core.model import Model
from pyannote.audio.core.task import Task
from pyannote.audio.models.blocks.pooling import StatsPool
from pyannote.audio.models.blocks.sincnet import SincNet
from pyannote.audio.utils.receptive_field import (
    multi_conv_num_frames,
    multi_conv_receptive_field_center,
    multi_conv_receptive_field_size,
)

from ..errors import ConfigError
from .base import MIN_POOLED_FRAMES, EmbeddingModel, full_precision
from .frontends import LogMelFilterbank

#: front-ends SincTDNN can use
FRONTENDS = ("sincnet", "fbank")
#: the only sample rate of pyannote.audio's SincNet block, Hz
SINCNET_RATE = 16000


class SincTDNN(EmbeddingModel, Model):
    """SincNet + x-vector TDNN speaker embedding

    waveform ─► SincNet ─► TDNN × 5 ─► statistics pooling ─► linear ─► embedding

    * SincNet: 80 learnable band-pass sinc filters of 251 taps (stride `stride`),
      then Conv1d 80→60 (k5) and 60→60 (k5); each of the three stages is
      followed by max-pool 3, instance norm and leaky ReLU.
    * TDNN: five frame-level Conv1d layers with `channels` output channels,
      kernels 5, 3, 3, 1, 1 and dilations 1, 2, 3, 1, 1, each followed by
      leaky ReLU and batch norm.
    * Statistics pooling (mean ‖ std, optionally weighted), then a linear layer
      to a `dimension`-d embedding. The embedding is not normalised: losses
      normalise it when their definition says so, and speaker verification
      scores it with cosine similarity.

    With ``frontend="fbank"``, a fixed log-mel filterbank (25 ms frames every
    10 ms, `n_mels` bands, mean-normalised: :class:`LogMelFilterbank`) replaces
    SincNet, as in the x-vector recipes of Kaldi and WeSpeaker. On small data
    and CPU budgets it learns much faster (see experiments/*/config.yml for the
    measured difference); the default remains the paper's SincNet.

    ``embedding_norm="batchnorm"`` adds a batch normalisation (without affine
    parameters) after the embedding layer, as WeSpeaker's and SpeechBrain's
    heads do; it is off by default, as in the paper.

    Short audio: statistics pooling needs two TDNN frames, i.e.
    :attr:`min_num_samples` samples (at 16 kHz: 2,646 samples, 0.165 s, with
    SincNet at stride 5; 0.315 s at stride 10; 2,912 samples, 0.182 s, with
    the log-mel front-end). Shorter audio is repeated (tiled) until it is that
    long, so that any non-empty input gets a finite embedding; empty audio is
    an error.

    Parameters
    ----------
    sample_rate : int, optional
        Audio sample rate. Defaults to 16000, the only rate of the SincNet
        front-end (pyannote.audio's); the log-mel front-end takes any rate,
        e.g. 8000 for a native narrowband (telephone) model: its frames stay
        25 ms every 10 ms and its mel bands end at the rate's Nyquist frequency.
        pyannote.audio's ``Inference`` resamples any input to the model's rate.
    num_channels : int, optional
        Number of channels. Only mono (1) is supported.
    stride : int, optional
        Stride of the sinc filters. Defaults to 5, as in the paper
        (pyannote.audio's XVectorSincNet uses 10).
    channels : list of int, optional
        Output channels of the five TDNN layers. Defaults to [512, 512, 512, 512, 1500].
    dimension : int, optional
        Embedding dimension. Defaults to 512.
    frontend : {"sincnet", "fbank"}, optional
        Front-end. Defaults to "sincnet" (the paper's).
    n_mels : int, optional
        Number of mel bands of the "fbank" front-end. Defaults to 60.
    embedding_norm : {None, "batchnorm"}, optional
        Normalisation of the embedding. Defaults to None (the paper's).
    task : Task, optional
        Task addressed by the model.
    """

    KERNEL_SIZE = [5, 3, 3, 1, 1]
    DILATION = [1, 2, 3, 1, 1]

    def __init__(
        self,
        sample_rate: int = 16000,
        num_channels: int = 1,
        stride: int = 5,
        channels: Optional[list[int]] = None,
        dimension: int = 512,
        frontend: str = "sincnet",
        n_mels: int = 60,
        embedding_norm: Optional[str] = None,
        task: Optional[Task] = None,
    ):
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)

        channels = list(channels or [512, 512, 512, 512, 1500])
        if len(channels) != len(self.KERNEL_SIZE):
            raise ConfigError(
                f"SincTDNN expects {len(self.KERNEL_SIZE)} TDNN channel sizes, got channels={channels}."
            )
        if frontend not in FRONTENDS:
            raise ConfigError(f"Unknown SincTDNN frontend {frontend!r}: use one of {', '.join(FRONTENDS)}.")
        if embedding_norm not in (None, "batchnorm"):
            raise ConfigError(f"Unknown SincTDNN embedding_norm {embedding_norm!r}: use null or batchnorm.")
        self.save_hyperparameters("stride", "channels", "dimension", "frontend", "n_mels", "embedding_norm")

        if frontend == "sincnet" and sample_rate != SINCNET_RATE:
            raise ConfigError(
                f"SincTDNN's sincnet front-end works at {SINCNET_RATE} Hz only (pyannote.audio's SincNet), not at "
                f"sample_rate {sample_rate}: use frontend: fbank (a log-mel filterbank at any rate) for "
                f"{sample_rate} Hz audio."
            )
        if frontend == "sincnet":
            # attribute name kept for checkpoints and --freeze-frontend
            self.sincnet = SincNet(sample_rate=sample_rate, stride=stride)
            in_channels = 60
        else:
            self.sincnet = LogMelFilterbank(sample_rate=sample_rate, n_mels=n_mels)
            in_channels = n_mels

        self.tdnns = nn.ModuleList()
        for out_channels, kernel_size, dilation in zip(
            channels, self.KERNEL_SIZE, self.DILATION
        ):
            self.tdnns.extend(
                [
                    nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation),
                    nn.LeakyReLU(),
                    nn.BatchNorm1d(out_channels),
                ]
            )
            in_channels = out_channels

        self.stats_pool = StatsPool()
        self.embedding = nn.Linear(2 * in_channels, dimension)
        self.embedding_norm = nn.BatchNorm1d(dimension, affine=False) if embedding_norm == "batchnorm" else None

    @property
    def dimension(self) -> int:
        """Dimension of the embedding"""
        return self.hparams.dimension

    def _tdnn_kwargs(self) -> dict:
        n = len(self.KERNEL_SIZE)
        return dict(
            kernel_size=self.KERNEL_SIZE,
            stride=[1] * n,
            padding=[0] * n,
            dilation=self.DILATION,
        )

    @lru_cache
    def num_frames(self, num_samples: int) -> int:
        """Number of frames at the output of the last TDNN layer

        Parameters
        ----------
        num_samples : int
            Number of input samples.

        Returns
        -------
        num_frames : int
            Number of output frames (at least 1 thanks to short-input repetition).
        """
        num_samples = max(num_samples, self.min_num_samples)
        return multi_conv_num_frames(
            self.sincnet.num_frames(num_samples), **self._tdnn_kwargs()
        )

    def receptive_field_size(self, num_frames: int = 1) -> int:
        """Size of the receptive field, in samples

        Parameters
        ----------
        num_frames : int, optional
            Number of frames in the output signal.

        Returns
        -------
        receptive_field_size : int
            Receptive field size.
        """
        size = multi_conv_receptive_field_size(num_frames, **self._tdnn_kwargs())
        return self.sincnet.receptive_field_size(num_frames=size)

    def receptive_field_center(self, frame: int = 0) -> int:
        """Index of the sample at the center of the receptive field of `frame`

        Parameters
        ----------
        frame : int, optional
            Frame index.

        Returns
        -------
        receptive_field_center : int
            Index of receptive field center.
        """
        center = multi_conv_receptive_field_center(frame, **self._tdnn_kwargs())
        return self.sincnet.receptive_field_center(frame=center)

    @property
    def min_num_samples(self) -> int:
        """Smallest input, in samples, that gives two TDNN output frames

        Two frames, so that the (unbiased) standard deviation of statistics
        pooling is defined.
        """
        return self.receptive_field_size(num_frames=MIN_POOLED_FRAMES)

    def forward(
        self, waveforms: torch.Tensor, weights: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Compute embeddings

        Parameters
        ----------
        waveforms : (batch, channel, sample) torch.Tensor
            Batch of waveforms.
        weights : (batch, frame) torch.Tensor, optional
            Frame weights for statistics pooling (e.g. one speaker's activity,
            as provided by pyannote's speaker diarization pipeline). They are
            interpolated to the number of TDNN frames.

        Returns
        -------
        embeddings : (batch, dimension) torch.Tensor
        """
        waveforms, weights = self.repeat_short_input(waveforms, weights)
        with full_precision(waveforms):
            outputs = self.sincnet(waveforms.float())
        for layer in self.tdnns:
            outputs = layer(outputs)
        with full_precision(outputs):
            outputs = self.stats_pool(outputs.float(), weights=weights)
        outputs = self.embedding(outputs)
        if self.embedding_norm is not None:
            outputs = self.embedding_norm(outputs)
        return outputs
