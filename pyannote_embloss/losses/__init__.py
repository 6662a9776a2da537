"""Metric-learning losses compared in Coria et al. (SLSP 2020)

Each loss is called as ``loss(embeddings, labels)`` on raw (not normalised)
embeddings and returns a scalar; see :mod:`pyannote_embloss.losses.base` for the
``uses_classifier`` / ``min_chunks_per_class`` contract.

===========  ==================================  ==================================
name         class                               hyper-parameters
===========  ==================================  ==================================
softmax      :class:`SoftmaxLoss`
center       :class:`CenterLoss`                 loss_weight
coco         :class:`CongenerousCosineLoss`      alpha
aam          :class:`AdditiveAngularMarginLoss`  margin (radians), scale
am           :class:`AdditiveMarginLoss`         margin, scale
contrastive  :class:`ContrastiveLoss`            margin (cosine distance)
triplet      :class:`TripletLoss`                margin (cosine distance), sampling
===========  ==================================  ==================================

Their defaults (the paper's where it had them) are those of each class's
constructor, the one place they are stated.
"""

from typing import Dict

from ..errors import ConfigError

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
    ConfigError
        If `name` is not a known loss.
    """
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ConfigError(
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
