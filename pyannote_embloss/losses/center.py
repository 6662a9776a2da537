"""Center loss (cosine variant) on top of the softmax loss"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from .softmax import SoftmaxLoss


class CenterLoss(SoftmaxLoss):
    """Softmax loss plus a cosine center loss

    .. math::

        \\ell = \\mathrm{CE}(x W, y)
            + \\lambda \\, \\frac{1}{2B} \\sum_{i=1}^{B}
              \\left(1 - \\cos(x_i, c_{y_i})\\right)^2

    where the first term is :class:`SoftmaxLoss` (linear classifier on the raw
    embeddings, mean cross-entropy over the batch), :math:`c_k` is the learned
    center of class k and :math:`\\cos(a, b) = a \\cdot b / \\max(\\|a\\| \\|b\\|, \\epsilon)`
    with :math:`\\epsilon = 10^{-8}` (``F.cosine_similarity``). Centers are
    regular parameters updated by the same optimizer as the model (as in
    pyannote.audio 1.1 ``CenterLoss``), not by a moving average.

    Parameters
    ----------
    num_classes : int
        Number of classes (speakers) C.
    embedding_size : int
        Embedding dimension D.
    loss_weight : float, optional
        Weight lambda of the center term (dimensionless). Defaults to 1.

    Attributes
    ----------
    W : (embedding_size, num_classes) nn.Parameter
        Classifier weights (see :class:`SoftmaxLoss`).
    centers : (num_classes, embedding_size) nn.Parameter
        Class centers, initialised from a standard normal distribution.

    Notes
    -----
    Reduction: mean cross-entropy over the batch; the center term is summed
    over the batch and divided by 2B.
    """

    def __init__(self, num_classes: int, embedding_size: int, loss_weight: float = 1.0):
        super().__init__(num_classes, embedding_size)
        self.loss_weight = loss_weight
        self.centers = nn.Parameter(torch.randn(num_classes, embedding_size))

    def center_terms(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(batch_size, ) (1 - cos(x_i, c_{y_i}))^2 / 2 (without lambda)"""
        centers = self.centers.to(dtype=embeddings.dtype, device=embeddings.device)
        cos = F.cosine_similarity(embeddings, centers[labels.long()], dim=1, eps=1e-8)
        return 0.5 * (1.0 - cos) ** 2

    def element_losses(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(batch_size, ) cross-entropy + lambda x :meth:`center_terms`"""
        return super().element_losses(embeddings, labels) + self.loss_weight * self.center_terms(embeddings, labels)
