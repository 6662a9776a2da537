"""Softmax (cross-entropy) loss over a linear classifier"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import BaseMetricLossFunction, ClassifierLossMixin, element_losses


class SoftmaxLoss(ClassifierLossMixin, BaseMetricLossFunction):
    """Cross-entropy over a bias-free linear classifier of the raw embeddings

    .. math::

        \\ell = -\\frac{1}{B} \\sum_{i=1}^{B}
            \\log \\frac{e^{x_i \\cdot w_{y_i}}}{\\sum_{j=1}^{C} e^{x_i \\cdot w_j}}

    where :math:`x_i` is the (not normalised) embedding of the i-th chunk,
    :math:`y_i` its speaker and :math:`w_j` the j-th column of `W`. This is
    ``nn.Linear(embedding_size, num_classes, bias=False)`` followed by
    ``nn.CrossEntropyLoss()`` (pyannote.audio 1.1 ``Classification``).

    Parameters
    ----------
    num_classes : int
        Number of classes (speakers) C.
    embedding_size : int
        Embedding dimension D.

    Attributes
    ----------
    W : (embedding_size, num_classes) nn.Parameter
        Class weights, initialised like ``nn.Linear`` (uniform in
        [-1/sqrt(D), 1/sqrt(D)]).

    Notes
    -----
    Reduction: mean over the batch. Logits are computed in the embeddings'
    dtype and device (`W` is cast on the fly, never modified in place).
    """

    def __init__(self, num_classes: int, embedding_size: int):
        super().__init__()
        self.num_classes = num_classes
        self.embedding_size = embedding_size
        self.W = nn.Parameter(torch.empty(embedding_size, num_classes))
        bound = 1.0 / math.sqrt(embedding_size)
        nn.init.uniform_(self.W, -bound, bound)

    def get_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch_size, num_classes) logits x_i . w_j"""
        return embeddings @ self.W.to(dtype=embeddings.dtype, device=embeddings.device)

    def element_losses(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(batch_size, ) cross-entropy of the logits :meth:`get_logits`"""
        return F.cross_entropy(self.get_logits(embeddings), labels.long(), reduction="none")

    def compute_loss(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        """pml hook: one loss per embedding, mean-reduced"""
        return element_losses(self.element_losses(embeddings, labels), embeddings)
