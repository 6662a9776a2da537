"""Congenerous cosine (CoCo) loss"""

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import NormalizedSoftmaxLoss

from .base import CastClassWeightsMixin, ClassifierLossMixin


class CongenerousCosineLoss(ClassifierLossMixin, CastClassWeightsMixin, NormalizedSoftmaxLoss):
    """Congenerous cosine loss (Liu et al., 2017)

    Cross-entropy over scaled cosine similarities between the L2-normalised
    embedding and the L2-normalised class centers:

    .. math::

        \\ell = -\\frac{1}{B} \\sum_{i=1}^{B}
            \\log \\frac{e^{\\alpha \\cos(x_i, c_{y_i})}}
                        {\\sum_{k=1}^{C} e^{\\alpha \\cos(x_i, c_k)}}

    with :math:`\\cos(x, c) = \\hat{x} \\cdot \\hat{c}` (both normalised).
    This is pyannote.audio 1.1 ``CongenerousCosineLoss`` (``CocoLinear``).

    Reuses pytorch-metric-learning's ``NormalizedSoftmaxLoss`` with a
    ``CosineSimilarity`` distance and ``temperature = 1 / alpha``; only the
    cosines are computed differently (class weights are cast, not overwritten).

    Parameters
    ----------
    num_classes : int
        Number of classes (speakers) C.
    embedding_size : int
        Embedding dimension D.
    alpha : float, optional
        Scale alpha applied to the cosine similarities (dimensionless, the
        norm the embeddings are rescaled to). Defaults to 6.25.

    Attributes
    ----------
    W : (embedding_size, num_classes) nn.Parameter
        Class centers c_k (one per column), initialised from a standard normal
        distribution (pml default, same as pyannote.audio 1.1).

    Notes
    -----
    Reduction: mean over the batch (pml ``MeanReducer``).
    """

    def __init__(self, num_classes: int, embedding_size: int, alpha: float = 6.25):
        super().__init__(
            num_classes=num_classes,
            embedding_size=embedding_size,
            temperature=1.0 / alpha,
            distance=CosineSimilarity(),
        )
        # pml's NormalizedSoftmaxLoss records these names without setting them (-> 0)
        self.num_classes = num_classes
        self.embedding_size = embedding_size

    @property
    def alpha(self) -> float:
        """Scale alpha = 1 / pml's temperature"""
        return 1.0 / self.temperature

    def get_logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch_size, num_classes) logits cos(x_i, c_k) / temperature = alpha * cos(x_i, c_k)"""
        return self.get_cosine(embeddings) / self.temperature
