"""Shared pieces of the metric-learning losses

Every loss of :mod:`pyannote_embloss.losses` is a :class:`torch.nn.Module`
called as ``loss(embeddings, labels)`` where

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
"""

from typing import Tuple

import torch

#: maximum cosine distance d = 1 - cos between two embeddings
MAX_COSINE_DISTANCE = 2.0


def check_inputs(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Check shapes and return `labels` as int64 on the embeddings' device

    Parameters
    ----------
    embeddings : (batch_size, embedding_size) torch.Tensor
    labels : (batch_size, ) torch.Tensor

    Returns
    -------
    labels : (batch_size, ) torch.LongTensor
        On the same device as `embeddings`.
    """
    if embeddings.ndim != 2:
        raise ValueError(
            f"embeddings must be (batch_size, embedding_size), got {tuple(embeddings.shape)}"
        )
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels must be (batch_size={embeddings.shape[0]}, ), got {tuple(labels.shape)}"
        )
    return labels.to(device=embeddings.device, dtype=torch.long)


class EmbeddingLossMixin:
    """Shared ``forward(embeddings, labels)`` of all the losses

    Checks the inputs with :func:`check_inputs`, then hands them to
    :meth:`checked_forward`. Must come before the :class:`torch.nn.Module`
    (or pytorch-metric-learning loss) base class in the bases of a loss, so
    that its ``forward`` is the one called.

    * hand-written losses (:class:`torch.nn.Module` subclasses) override
      :meth:`checked_forward` with their formula;
    * losses reusing a pytorch-metric-learning loss keep the default
      :meth:`checked_forward`, which calls the ``forward`` of the next class
      in the MRO (the pml loss), possibly extended to pass it extra keyword
      arguments (e.g. ``indices_tuple``).

    (pml losses already have a ``compute_loss`` method, hence the name of the
    hook.)
    """

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Compute the loss

        Parameters
        ----------
        embeddings : (batch_size, embedding_size) torch.Tensor
            Raw (not normalised) embeddings; losses on cosines normalise them
            inside.
        labels : (batch_size, ) torch.Tensor
            Speaker indices: class indices in [0, num_classes) for losses with
            ``uses_classifier``, any integers otherwise.

        Returns
        -------
        loss : scalar torch.Tensor

        Raises
        ------
        ValueError
            If `embeddings` is not 2-D or `labels` is not (batch_size, ).
        """
        labels = check_inputs(embeddings, labels)
        return self.checked_forward(embeddings, labels)

    def checked_forward(
        self, embeddings: torch.Tensor, labels: torch.Tensor, **kwargs
    ) -> torch.Tensor:
        """Compute the loss of inputs already checked by :func:`check_inputs`

        Parameters
        ----------
        embeddings : (batch_size, embedding_size) torch.Tensor
            Raw embeddings.
        labels : (batch_size, ) torch.LongTensor
            Speaker indices, on the same device as `embeddings`.
        **kwargs
            Passed on to the ``forward`` of the next class in the MRO (e.g.
            ``indices_tuple`` for pytorch-metric-learning losses).

        Returns
        -------
        loss : scalar torch.Tensor
        """
        return super().forward(embeddings, labels, **kwargs)


class ClassifierLossMixin(EmbeddingLossMixin):
    """Marks losses owning per-class parameters (one chunk per class suffices)"""

    uses_classifier: bool = True
    min_chunks_per_class: int = 1


class PairLossMixin(EmbeddingLossMixin):
    """Marks losses comparing embeddings of the batch with each other"""

    uses_classifier: bool = False
    min_chunks_per_class: int = 2


class CastClassWeightsMixin:
    """Non-destructive dtype/device handling for pytorch-metric-learning classifiers

    pytorch-metric-learning's classification losses (``LargeMarginSoftmaxLoss``
    family, ``NormalizedSoftmaxLoss``) call ``cast_types`` at every forward,
    which *overwrites* ``self.W.data`` with a copy in the embeddings' dtype and
    device. Under mixed precision this silently turns the float32 parameter
    into a float16 one (breaking the optimizer / gradient scaler). Here the
    parameter is left untouched and a differentiable cast of it is used
    instead, so that logits are computed in the embeddings' dtype and device.

    Expects ``self.W`` (embedding_size, num_classes) and ``self.distance``.
    """

    def cast_types(self, dtype, device):  # noqa: D102 -- pml hook, no-op on purpose
        pass

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
