"""What every embedding architecture of the plugin shares

:class:`EmbeddingModel` is mixed into each architecture (before its
pyannote.audio ``Model`` base class):

* **short audio**: statistics pooling needs two frames at least (the
  unbiased standard deviation of a single frame is not a number). Audio
  shorter than the architecture's :attr:`~EmbeddingModel.min_num_samples`
  is repeated (tiled) until it is long enough, inside ``forward``, so that
  pyannote.audio's own loaders and pipelines (``Inference``,
  ``PretrainedSpeakerEmbedding``, ``SpeakerDiarization``) get a finite
  embedding for any non-empty input too. Empty audio is a
  :class:`~pyannote_embloss.errors.DataError`;
* **mixed precision**: under ``torch.autocast`` (``trainer: {precision:
  bf16-mixed}``), the front-ends compute their features and statistics
  pooling its moments in float32 (:func:`full_precision`): a log of a mel
  energy or a variance over hundreds of frames loses most of its digits in
  bfloat16's 8-bit mantissa; the convolutions between them run in half
  precision;
* **inference checkpoints**: loaded without a task, a model drops the
  training loss' parameters that its checkpoint holds (``loss_func.*``:
  classifier weights, centers), so that pyannote.audio's strict loading
  (``Model.from_pretrained``, ``PretrainedSpeakerEmbedding``) is clean.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch

from .checkpoint import drop_loss_parameters
from ..errors import DataError

__all__ = ["EmbeddingModel", "MIN_POOLED_FRAMES", "full_precision", "smallest_input"]

#: frames that statistics pooling needs for a finite (unbiased) standard deviation
MIN_POOLED_FRAMES = 2


def smallest_input(num_frames, frames: int = MIN_POOLED_FRAMES, upper: int = 1 << 20) -> int:
    """Smallest number of samples for which `num_frames(num_samples)` reaches `frames`

    Parameters
    ----------
    num_frames : callable
        Number of output frames of a network, from its number of input
        samples (non-decreasing).
    frames : int, optional
        Defaults to :data:`MIN_POOLED_FRAMES`.
    upper : int, optional
        An input size known to be large enough. Defaults to 2^20 samples.
    """
    lower = 0  # num_frames(lower) < frames <= num_frames(upper)
    while lower + 1 < upper:
        middle = (lower + upper) // 2
        if num_frames(middle) >= frames:
            upper = middle
        else:
            lower = middle
    return upper


@contextmanager
def full_precision(tensor: torch.Tensor) -> Iterator[None]:
    """Turn autocast off on `tensor`'s device within the block (float32 where precision matters)

    Cast the block's inputs with ``.float()``: autocast has already made some of
    them half precision.
    """
    with torch.autocast(device_type=tensor.device.type, enabled=False):
        yield


class EmbeddingModel:
    """Mixin of the plugin's embedding models: short-audio repetition, loss-free inference checkpoints

    Subclasses define :attr:`min_num_samples` and call
    :meth:`repeat_short_input` first thing in ``forward``.
    """

    @property
    def min_num_samples(self) -> int:
        """Smallest input, in samples, that the network embeds as it is (two pooled frames)"""
        raise NotImplementedError

    @property
    def min_duration(self) -> float:
        """:attr:`min_num_samples` in seconds"""
        return self.min_num_samples / self.audio.sample_rate

    def repeat_short_input(
        self, waveforms: torch.Tensor, weights: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Repeat (tile) waveforms shorter than :attr:`min_num_samples` until they are long enough

        Parameters
        ----------
        waveforms : (batch, channel, sample) torch.Tensor
        weights : (..., frame) torch.Tensor, optional
            Frame weights of statistics pooling: repeated as many times.

        Returns
        -------
        waveforms, weights
            Unchanged when long enough.

        Raises
        ------
        DataError
            On empty audio (0 samples).
        """
        num_samples = waveforms.shape[-1]
        if num_samples == 0:
            raise DataError(f"{type(self).__name__} cannot embed empty audio (0 samples).")
        minimum = self.min_num_samples
        if num_samples >= minimum:
            return waveforms, weights
        repeats = -(-minimum // num_samples)
        waveforms = waveforms.repeat(1, 1, repeats)
        if weights is not None:
            weights = weights.repeat(*([1] * (weights.dim() - 1)), repeats)
        return waveforms, weights

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # A checkpoint stores the training loss' own parameters under
        # `loss_func.*` so that training can resume. A model loaded for
        # inference has no loss: drop them so that strict loading is clean.
        super().on_load_checkpoint(checkpoint)
        if not hasattr(self, "loss_func"):
            drop_loss_parameters(checkpoint.get("state_dict", {}))
