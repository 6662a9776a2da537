"""WeSpeakerResNet34: pyannote.audio's own speaker embedding network, safe on short audio

pyannote.audio 4 ships ``WeSpeakerResNet34`` (the embedding inside its
diarization pipelines, pyannote/wespeaker-voxceleb-resnet34-LM). This thin
subclass keeps its architecture, hyper-parameters and weights (its state
dict is pyannote.audio's, key for key: each loads into the other) and adds
what the plugin's models share:

* short audio is repeated up to :attr:`WeSpeakerResNet34.min_num_samples`
  (pyannote.audio's class gives a NaN embedding below 0.105 s, and an error
  below one 25 ms frame);
* ONNX export (its Kaldi filterbank is computed with ``torch.vmap`` and an
  FFT, which ONNX has not: :class:`~pyannote_embloss.models.frontends.ExportableKaldiFbank`
  computes the same features for the export);
* inference checkpoints without the training loss' parameters.
"""

from __future__ import annotations

from functools import cached_property
from typing import Optional

import torch
from pyannote.audio.core.task import Task
from pyannote.audio.models.embedding.wespeaker import WeSpeakerResNet34 as PyannoteWeSpeakerResNet34

from ..errors import ConfigError
from .base import EmbeddingModel, full_precision, smallest_input
from .frontends import KALDI_WINDOWS, ExportableKaldiFbank

__all__ = ["WeSpeakerResNet34", "PyannoteWeSpeakerResNet34"]


class WeSpeakerResNet34(EmbeddingModel, PyannoteWeSpeakerResNet34):
    """pyannote.audio's WeSpeaker ResNet34 speaker embedding, with any loss of the plugin

    fbank ─► ResNet34 ─► statistics pooling ─► linear ─► 256-d embedding

    * front-end: Kaldi filterbank of `num_mel_bins` bands (25 ms frames every
      10 ms, Hamming window, no trainable parameter), each band's mean over
      the input removed;
    * ResNet34 (32 base channels, four stages of 3, 4, 6 and 3 basic blocks,
      frequency and time strides 2 in stages 2 to 4), statistics pooling
      (mean ‖ std, optionally weighted) and one linear layer: 6.6 M parameters.

    Short audio: statistics pooling needs two ResNet frames, i.e. nine
    filterbank frames (:attr:`min_num_samples`: 1,680 samples, 0.105 s at
    16 kHz). Shorter audio is repeated (tiled) until it is that long, so that
    any non-empty input gets a finite embedding; empty audio is an error.
    From :attr:`min_num_samples` on, the embeddings are pyannote.audio's.

    Parameters
    ----------
    sample_rate : int, optional
        Defaults to 16000.
    num_channels : int, optional
        Defaults to 1 (mono).
    num_mel_bins : int, optional
        Filterbank bands. Defaults to 80.
    frame_length, frame_shift : int, optional
        Filterbank frame length and step, in milliseconds. Default to 25 and 10.
    dither : float, optional
        Defaults to 0.
    window_type : str, optional
        Defaults to "hamming".
    use_energy : bool, optional
        Defaults to False.
    task : Task, optional
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        num_channels: int = 1,
        num_mel_bins: int = 80,
        frame_length: int = 25,
        frame_shift: int = 10,
        dither: float = 0.0,
        window_type: str = "hamming",
        use_energy: bool = False,
        task: Optional[Task] = None,
    ):
        super().__init__(
            sample_rate=sample_rate,
            num_channels=num_channels,
            num_mel_bins=num_mel_bins,
            frame_length=frame_length,
            frame_shift=frame_shift,
            dither=dither,
            window_type=window_type,
            use_energy=use_energy,
            task=task,
        )
        # the same features, for ONNX export only (no parameter, nothing saved in checkpoints)
        self.exportable_fbank = None
        if window_type in KALDI_WINDOWS:
            self.exportable_fbank = ExportableKaldiFbank(
                sample_rate=sample_rate,
                num_mel_bins=num_mel_bins,
                frame_length=frame_length,
                frame_shift=frame_shift,
                window_type=window_type,
                round_to_power_of_two=self.hparams.round_to_power_of_two,
            )

    @cached_property
    def min_num_samples(self) -> int:
        """Smallest input, in samples, with two ResNet output frames"""
        return smallest_input(self.num_frames, upper=self.audio.get_num_samples(1.0))

    def compute_fbank(self, waveforms: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export():
            with full_precision(waveforms):  # the mel projection would run in half precision under autocast
                return super().compute_fbank(waveforms.float())
        defaults = {"dither": 0.0, "use_energy": False, "snip_edges": True, "fbank_centering_span": None}
        unsupported = {name: self.hparams[name] for name, value in defaults.items() if self.hparams[name] != value}
        if self.exportable_fbank is None:
            unsupported["window_type"] = self.hparams.window_type
        if unsupported:
            raise ConfigError(
                f"{type(self).__name__} cannot be exported to ONNX with "
                + ", ".join(f"{name}={value!r}" for name, value in unsupported.items())
                + f" (its filterbank is exportable with {', '.join(f'{n}={v!r}' for n, v in defaults.items())} "
                f"and a {', '.join(KALDI_WINDOWS)} window)."
            )
        return self.exportable_fbank(waveforms)

    def forward(self, waveforms: torch.Tensor, weights: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Compute embeddings

        Parameters
        ----------
        waveforms : (batch, channel, sample) torch.Tensor
        weights : (batch, frame) or (batch, speaker, frame) torch.Tensor, optional
            Frame weights of statistics pooling (e.g. a speaker's activity in
            pyannote.audio's diarization pipeline).

        Returns
        -------
        embeddings : (batch, dimension) or (batch, speaker, dimension) torch.Tensor
        """
        waveforms, weights = self.repeat_short_input(waveforms, weights)
        return super().forward(waveforms, weights=weights)
