"""Tasks whose loss classifies training speakers: softmax, center, CoCo, AM, AAM

Each owns per-speaker parameters (classifier weights, centers), trained with
the model and stored in its checkpoints as ``loss_func.*``. Every task takes
the keyword arguments of :class:`~pyannote_embloss.tasks.base.SpeakerEmbeddingTask`
(duration, num_classes_per_batch, num_chunks_per_class, batches_per_epoch, ...).
"""

from __future__ import annotations

from pyannote.database import Protocol

from .base import SpeakerEmbeddingTask


class Softmax(SpeakerEmbeddingTask):
    """Speaker embedding with softmax cross-entropy on a linear classifier (no bias)

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol.
    """

    loss_name = "softmax"

    def __init__(self, protocol: Protocol, **kwargs):
        super().__init__(protocol, loss={}, **kwargs)


class Center(SpeakerEmbeddingTask):
    """Speaker embedding with softmax cross-entropy plus λ · center loss

    The center term is Σ_i (1 − cos(x_i, c_{y_i}))² / 2B; the centers c are
    parameters learned by the model's optimizer, as in the paper's code.

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol.
    loss_weight : float, optional
        λ. Defaults to 1, as in the paper.
    """

    loss_name = "center"

    def __init__(self, protocol: Protocol, loss_weight: float = 1.0, **kwargs):
        super().__init__(protocol, loss=dict(loss_weight=loss_weight), **kwargs)


class CongenerousCosine(SpeakerEmbeddingTask):
    """Speaker embedding with the congenerous cosine (CoCo) loss

    Cross-entropy over α · cos(x, c_k), c_k being speaker k's learned center.

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol.
    alpha : float, optional
        Scale α. Defaults to 6.25, as in the paper.
    """

    loss_name = "coco"

    def __init__(self, protocol: Protocol, alpha: float = 6.25, **kwargs):
        super().__init__(protocol, loss=dict(alpha=alpha), **kwargs)


class AdditiveAngularMargin(SpeakerEmbeddingTask):
    """Speaker embedding with the additive angular margin (AAM, ArcFace) loss

    Cross-entropy over s·cos θ_j for j ≠ y and s·cos(θ_y + m) for the true
    speaker y, θ_j being the angle between the embedding and speaker j's
    weight. The paper's best loss.

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol.
    margin : float, optional
        Angular margin m, in **radians**. Defaults to 0.05, as in the paper.
    scale : float, optional
        Scale s. Defaults to 10, as in the paper.
    """

    loss_name = "aam"

    def __init__(self, protocol: Protocol, margin: float = 0.05, scale: float = 10.0, **kwargs):
        super().__init__(protocol, loss=dict(margin=margin, scale=scale), **kwargs)


class AdditiveMargin(SpeakerEmbeddingTask):
    """Speaker embedding with the additive margin (AM-softmax, CosFace) loss

    Cross-entropy over s·cos θ_j for j ≠ y and s·(cos θ_y − m) for the true
    speaker y. Not in the paper; every other toolkit has it.

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol.
    margin : float, optional
        Cosine margin m. Defaults to 0.2.
    scale : float, optional
        Scale s. Defaults to 30.
    """

    loss_name = "am"

    def __init__(self, protocol: Protocol, margin: float = 0.2, scale: float = 30.0, **kwargs):
        super().__init__(protocol, loss=dict(margin=margin, scale=scale), **kwargs)
