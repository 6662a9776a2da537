"""Tasks whose loss classifies training speakers: softmax, center, CoCo, AAM, AM

Each owns per-speaker parameters (classifier weights, centers), trained with
the model and stored in its checkpoints as ``loss_func.*``. Every task takes
the keyword arguments of :class:`~pyannote_embloss.tasks.base.SpeakerEmbeddingTask`
(duration, num_classes_per_batch, num_chunks_per_class, batches_per_epoch, ...)
and those of its loss, with the loss' defaults.
"""

from __future__ import annotations

from .base import SpeakerEmbeddingTask


class Softmax(SpeakerEmbeddingTask):
    """Softmax cross-entropy on a linear classifier (:class:`~pyannote_embloss.losses.SoftmaxLoss`)"""

    loss_name = "softmax"


class Center(SpeakerEmbeddingTask):
    """Softmax plus λ · center loss (:class:`~pyannote_embloss.losses.CenterLoss`: loss_weight)"""

    loss_name = "center"


class CongenerousCosine(SpeakerEmbeddingTask):
    """Congenerous cosine (:class:`~pyannote_embloss.losses.CongenerousCosineLoss`: alpha)"""

    loss_name = "coco"


class AdditiveAngularMargin(SpeakerEmbeddingTask):
    """Additive angular margin, ArcFace, the paper's best loss

    :class:`~pyannote_embloss.losses.AdditiveAngularMarginLoss`: margin (in
    **radians**), scale.
    """

    loss_name = "aam"


class AdditiveMargin(SpeakerEmbeddingTask):
    """Additive margin, CosFace (:class:`~pyannote_embloss.losses.AdditiveMarginLoss`: margin, scale)"""

    loss_name = "am"
