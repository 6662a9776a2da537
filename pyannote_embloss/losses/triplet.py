"""Triplet loss on cosine distances, with all / batch-hard / semi-hard sampling"""

from typing import Optional

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner, TripletMarginMiner
from pytorch_metric_learning.reducers import MeanReducer

from ..errors import ConfigError
from .base import MAX_COSINE_DISTANCE, PairLossMixin

SAMPLINGS = ("all", "hard", "semi-hard")


class TripletLoss(PairLossMixin, TripletMarginLoss):
    """Triplet loss (Schroff et al., 2015) on cosine distances

    With the cosine distance :math:`d(a, b) = 1 - \\hat{a} \\cdot \\hat{b}`
    (in [0, 2]), for a triplet (anchor a, positive p of the same speaker,
    negative n of another speaker):

    .. math::

        \\ell_{apn} = \\max(0, d(a, p) - d(a, n) + m)

    and the loss is the mean of :math:`\\ell_{apn}` over the set T of triplets
    selected by `sampling`:

    * ``"all"``: every valid triplet of the batch -- every ordered pair
      (a, p), a != p, of chunks of the same speaker, with every chunk n of
      another speaker;
    * ``"hard"`` (batch-hard, Hermans et al., 2017): one triplet per anchor
      that has a positive and a negative in the batch, made of its hardest
      positive (largest d(a, p)) and hardest negative (smallest d(a, n))
      -- pml ``BatchHardMiner``;
    * ``"semi-hard"``: the triplets of ``"all"`` such that
      0 < d(a, n) - d(a, p) <= m -- pml
      ``TripletMarginMiner(type_of_triplets="semihard")``.

    Reuses pytorch-metric-learning's ``TripletMarginLoss`` with a
    ``CosineSimilarity`` distance (whose margin d(a,p) - d(a,n) in similarity
    form, s(a,n) - s(a,p), is the same) and a ``MeanReducer``: pml's default
    ``AvgNonZeroReducer`` would average over the triplets with a non-zero
    loss only.

    Parameters
    ----------
    margin : float, optional
        Margin m, in cosine-distance units (the distance ranges in [0, 2]).
        Defaults to 0.4, i.e. the paper's 0.2 x the maximum distance 2.
        Also used as the semi-hard mining margin.
    sampling : {"all", "hard", "semi-hard"}, optional
        Triplet sampling strategy. Defaults to "all".

    Notes
    -----
    Reduction: mean over the |T| selected triplets, ``sum(l) / |T|`` (zero,
    still attached to the graph, when T is empty).
    """

    def __init__(self, margin: float = 0.2 * MAX_COSINE_DISTANCE, sampling: str = "all"):
        if sampling == "semihard":
            sampling = "semi-hard"
        if sampling not in SAMPLINGS:
            raise ConfigError(
                f"Unknown triplet sampling {sampling!r}; expected one of {', '.join(SAMPLINGS)}."
            )
        super().__init__(
            margin=margin,
            triplets_per_anchor="all",
            distance=CosineSimilarity(),
            reducer=MeanReducer(),
        )
        self.sampling = sampling
        self.miner = self._make_miner(sampling, margin)

    @staticmethod
    def _make_miner(sampling: str, margin: float) -> Optional[torch.nn.Module]:
        if sampling == "hard":
            return BatchHardMiner(distance=CosineSimilarity())
        if sampling == "semi-hard":
            return TripletMarginMiner(
                margin=margin, type_of_triplets="semihard", distance=CosineSimilarity()
            )
        return None  # "all": pml enumerates every valid triplet

    def compute_loss(self, embeddings, labels, indices_tuple=None, ref_emb=None, ref_labels=None):
        """pml hook: ``TripletMarginLoss`` on the triplets selected by `sampling`"""
        if indices_tuple is None and self.miner is not None:
            indices_tuple = self.miner(embeddings, labels)
        return super().compute_loss(embeddings, labels, indices_tuple, ref_emb, ref_labels)
