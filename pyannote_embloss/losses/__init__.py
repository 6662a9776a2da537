"""Metric-learning losses compared in Coria et al. (SLSP 2020)

Each loss is called as ``loss(embeddings, labels)`` on raw (not normalised)
embeddings and returns a scalar; see :mod:`pyannote_embloss.losses.base` for the
``uses_classifier`` / ``min_chunks_per_class`` / ``has_margin`` contract.

:data:`LOSSES` resolves the one registry of losses, :data:`pyannote_embloss.config.LOSSES`; the training tasks are derived
from it (:mod:`pyannote_embloss.tasks`), under the same names.

=============  ===========================================  ==================================
name           class                                        hyper-parameters
=============  ===========================================  ==================================
softmax        :class:`SoftmaxLoss`
center         :class:`CenterLoss`                          loss_weight
coco           :class:`CongenerousCosineLoss`               alpha
aam            :class:`AdditiveAngularMarginLoss`           margin (radians), scale
am             :class:`AdditiveMarginLoss`                  margin, scale
subcenter_aam  :class:`SubCenterAdditiveAngularMarginLoss`  margin (radians), scale,
                                                            sub_centers, inter_topk,
                                                            inter_topk_margin (radians)
contrastive    :class:`ContrastiveLoss`                     margin (cosine distance)
triplet        :class:`TripletLoss`                         margin (cosine distance), sampling
=============  ===========================================  ==================================

Their defaults (the paper's where it had them) are those of each class's
constructor, the one place they are stated.
"""

from typing import Dict, List

from ..config import LOSSES as REGISTRY
from ..config import resolve
from ..errors import ConfigError

from .center import CenterLoss
from .coco import CongenerousCosineLoss
from .contrastive import ContrastiveLoss
from .margin import AdditiveAngularMarginLoss, AdditiveMarginLoss
from .softmax import SoftmaxLoss
from .subcenter import SubCenterAdditiveAngularMarginLoss
from .triplet import TripletLoss

#: the loss classes, by name: config.LOSSES (the registry, which config.yml's names are checked against) resolved
LOSSES: Dict[str, type] = {name: resolve(path) for name, path in REGISTRY.items()}


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


def losses_with_margin() -> List[str]:
    """Names of the losses with a schedulable margin on their target logits (``has_margin``)"""
    return [name for name, Loss in LOSSES.items() if Loss.has_margin]


__all__ = [
    "LOSSES",
    "get_loss_class",
    "losses_with_margin",
    "SoftmaxLoss",
    "CenterLoss",
    "CongenerousCosineLoss",
    "AdditiveAngularMarginLoss",
    "AdditiveMarginLoss",
    "SubCenterAdditiveAngularMarginLoss",
    "ContrastiveLoss",
    "TripletLoss",
]
