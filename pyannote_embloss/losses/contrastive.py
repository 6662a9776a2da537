"""Contrastive loss on cosine distances"""

import torch
from pytorch_metric_learning.distances import CosineSimilarity

from .base import MAX_COSINE_DISTANCE, BaseMetricLossFunction, PairLossMixin, reduced_loss, upper_triangle_pairs


class ContrastiveLoss(PairLossMixin, BaseMetricLossFunction):
    """Contrastive loss (Hadsell et al., 2006) over all pairs of the batch

    With the cosine distance :math:`d_{ij} = 1 - \\hat{x}_i \\cdot \\hat{x}_j`
    (in [0, 2]) and :math:`g_{ij} = 1` if chunks i and j belong to different
    speakers, 0 otherwise:

    .. math::

        \\ell = \\frac{1}{2P} \\sum_{i < j}
            (1 - g_{ij}) \\, d_{ij}^2 + g_{ij} \\, \\max(0, m - d_{ij})^2

    where P = B (B - 1) / 2 is the number of pairs (i < j) of the batch
    (pyannote.audio 1.1 ``ContrastiveLoss``: summed, halved, divided by the
    number of pairs).

    Written by hand: pytorch-metric-learning's ``ContrastiveLoss`` hinges
    the *unsquared* distances (max(0, m - d), and its ``power`` option squares
    d before the hinge, not the hinge) and by default averages positive and
    negative terms separately over their non-zero values
    (``AvgNonZeroReducer``). Only its ``CosineSimilarity`` is reused.

    Parameters
    ----------
    margin : float, optional
        Margin m, in cosine-distance units (the distance ranges in [0, 2]).
        Defaults to 0.4, i.e. the paper's 0.2 x the maximum distance 2.

    Notes
    -----
    Reduction: mean over all P pairs of the batch of half the per-pair term.
    A batch with fewer than 2 chunks gives a zero loss (still attached to the
    graph).
    """

    def __init__(self, margin: float = 0.2 * MAX_COSINE_DISTANCE):
        super().__init__(distance=CosineSimilarity())
        self.margin = margin

    def compute_loss(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        """pml hook: mean over the pairs i < j of half the per-pair term"""
        i, j = upper_triangle_pairs(embeddings.shape[0], embeddings.device)
        if len(i) == 0:
            return self.zero_losses()
        distance = 1.0 - self.distance(embeddings)[i, j]
        different = labels[i] != labels[j]
        per_pair = torch.where(
            different,
            torch.clamp(self.margin - distance, min=0.0) ** 2,
            distance**2,
        )
        return reduced_loss(0.5 * torch.mean(per_pair))
