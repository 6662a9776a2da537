"""Metric-learning losses compared in Coria et al. (SLSP 2020)

Each loss is called as ``loss(embeddings, labels)`` on raw (not normalised)
embeddings and returns a scalar; see :mod:`pyannote_embloss.losses.base` for the
``uses_classifier`` / ``min_chunks_per_class`` contract.

===========  ==================================  ============================================
name         class                               defaults
===========  ==================================  ============================================
softmax      :class:`SoftmaxLoss`
center       :class:`CenterLoss`                 loss_weight=1
coco         :class:`CongenerousCosineLoss`      alpha=6.25
aam          :class:`AdditiveAngularMarginLoss`  margin=0.05 (radians), scale=10
am           :class:`AdditiveMarginLoss`         margin=0.2, scale=30
contrastive  :class:`ContrastiveLoss`            margin=0.4 (cosine distance)
triplet      :class:`TripletLoss`                margin=0.4 (cosine distance), sampling="all"
===========  ==================================  ============================================
"""

from typing import Dict

from .center import CenterLoss
from .coco import CongenerousCosineLoss
from .contrastive import ContrastiveLoss
from .margin import AdditiveAngularMarginLoss, AdditiveMarginLoss
from .softmax import SoftmaxLoss
from .triplet import TripletLoss

LOSSES: Dict[str, type] = {
    "softmax": SoftmaxLoss,
    "center": CenterLoss,
    "coco": CongenerousCosineLoss,
    "aam": AdditiveAngularMarginLoss,
    "am": AdditiveMarginLoss,
    "contrastive": ContrastiveLoss,
    "triplet": TripletLoss,
}


def get_loss_class(name: str) -> type:
    """Loss class registered under `name`

    Parameters
    ----------
    name : str
        One of the keys of :data:`LOSSES`.

    Returns
    -------
    loss_class : type

    Raises
    ------
    ValueError
        If `name` is not a known loss.
    """
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown loss {name!r}; known losses: {', '.join(LOSSES)}."
        ) from None


__all__ = [
    "LOSSES",
    "get_loss_class",
    "SoftmaxLoss",
    "CenterLoss",
    "CongenerousCosineLoss",
    "AdditiveAngularMarginLoss",
    "AdditiveMarginLoss",
    "ContrastiveLoss",
    "TripletLoss",
]
