"""Shared pieces of the metric-learning losses

Every loss of :mod:`pyannote_embloss.losses` is a pytorch-metric-learning
loss (``BaseMetricLossFunction``: its ``forward`` checks the shapes, moves
the labels and reduces; each loss only implements the ``compute_loss`` hook,
or reuses pml's), called as ``loss(embeddings, labels)`` where

* ``embeddings`` is a (batch_size, embedding_size) tensor of *raw* (not
  L2-normalised) embeddings, as they come out of the model;
* ``labels`` is a (batch_size, ) integer tensor of speaker indices;

and which returns a scalar tensor. Two class attributes tell the training task
how to use it:

* ``uses_classifier`` -- True when the loss owns per-class parameters (class
  weights, centers). Its constructor is then
  ``__init__(num_classes, embedding_size, **hyper_parameters)``; otherwise it
  only takes its hyper-parameters.
* ``min_chunks_per_class`` -- minimum number of chunks of each speaker that a
  batch must contain for the loss to be meaningful (1 for classification
  losses, 2 for pair/triplet losses which need positive pairs).
* ``has_margin`` -- True when the loss adds a margin to its target logits
  (``self.margin``: AAM, AM), which config.yml's ``margin_scheduler`` ramps
  up during training. The margin of the contrastive and triplet losses is a
  distance threshold, not scheduled.
"""

from typing import Tuple

import torch
from pytorch_metric_learning.losses import BaseMetricLossFunction
from pytorch_metric_learning.utils import common_functions as c_f

#: maximum cosine distance d = 1 - cos between two embeddings
MAX_COSINE_DISTANCE = 2.0


class ClassifierLossMixin:
    """Marks losses owning per-class parameters (one chunk per class suffices)"""

    uses_classifier: bool = True
    min_chunks_per_class: int = 1
    has_margin: bool = False


class MarginLossMixin(ClassifierLossMixin):
    """Marks classification losses with a margin on their target logits (``self.margin``), which can be scheduled"""

    has_margin: bool = True


class PairLossMixin:
    """Marks losses comparing embeddings of the batch with each other"""

    uses_classifier: bool = False
    min_chunks_per_class: int = 2
    has_margin: bool = False


def element_losses(losses: torch.Tensor, embeddings: torch.Tensor) -> dict:
    """pytorch-metric-learning loss dictionary of one loss per embedding (mean-reduced)"""
    return {"loss": {"losses": losses, "indices": c_f.torch_arange_from_size(embeddings), "reduction_type": "element"}}


def reduced_loss(loss: torch.Tensor) -> dict:
    """pytorch-metric-learning loss dictionary of an already reduced loss"""
    return {"loss": {"losses": loss, "indices": None, "reduction_type": "already_reduced"}}


class CastClassWeightsMixin:
    """Non-destructive dtype/device handling for pytorch-metric-learning classifiers

    pytorch-metric-learning's classification losses (``LargeMarginSoftmaxLoss``
    family, ``NormalizedSoftmaxLoss``) call ``cast_types`` at every forward,
    which *overwrites* ``self.W.data`` with a copy in the embeddings' dtype and
    device. Under mixed precision this silently turns the float32 parameter
    into a float16 one (breaking the optimizer / gradient scaler). Here the
    parameter is left untouched and a differentiable cast of it is used
    instead, so that logits are computed in the embeddings' dtype and device.

    Expects ``self.W`` (embedding_size, num_classes) and ``self.distance``;
    must come before the pml loss in the bases (it overrides pml's hooks).
    """

    def cast_types(self, dtype, device):  # noqa: D102 -- pml hook, no-op on purpose
        pass

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        """pml hook: pml's cross-entropy needs int64 labels, accept any integer dtype"""
        labels = labels.long()
        if ref_emb is embeddings:  # pml's default references (no ref_emb given)
            ref_labels = labels
        return super().compute_loss(embeddings, labels, indices_tuple, ref_emb, ref_labels)

    def class_weights_like(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(embedding_size, num_classes) class weights cast like `embeddings`"""
        return self.W.to(dtype=embeddings.dtype, device=embeddings.device)

    def get_cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch_size, num_classes) cosine similarities cos(x_i, w_j)"""
        return self.distance(embeddings, self.class_weights_like(embeddings).t())


def upper_triangle_pairs(
    batch_size: int, device: torch.device
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j) of all pairs i < j of a batch"""
    i, j = torch.triu_indices(batch_size, batch_size, offset=1, device=device)
    return i, j


__all__ = [
    "BaseMetricLossFunction",
    "CastClassWeightsMixin",
    "ClassifierLossMixin",
    "MarginLossMixin",
    "MAX_COSINE_DISTANCE",
    "PairLossMixin",
    "element_losses",
    "reduced_loss",
    "upper_triangle_pairs",
]
