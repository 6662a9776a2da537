"""Tasks whose loss compares chunks of the batch: contrastive and triplet

They need several chunks per speaker in each batch (num_chunks_per_class ≥ 2,
2 by default) and have no parameters of their own. Every task takes the keyword arguments of
:class:`~pyannote_embloss.tasks.base.SpeakerEmbeddingTask`.
"""

from __future__ import annotations

from pyannote.database import Protocol

from .base import SpeakerEmbeddingTask


class Contrastive(SpeakerEmbeddingTask):
    """Speaker embedding with the contrastive loss over all pairs of the batch

    (1 − g)·d² + g·max(0, m − d)² per pair, d the cosine distance and g = 1 for
    different speakers; summed, halved and divided by the number of pairs.

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol.
    margin : float, optional
        Margin m, in cosine distance (0 to 2). Defaults to 0.4, the paper's
        0.2 × maximum distance.
    """

    loss_name = "contrastive"

    def __init__(self, protocol: Protocol, margin: float = 0.4, **kwargs):
        super().__init__(protocol, loss=dict(margin=margin), **kwargs)


class Triplet(SpeakerEmbeddingTask):
    """Speaker embedding with the triplet loss, cosine distance

    max(0, d(a, p) − d(a, n) + m), averaged over the triplets of the batch
    selected by `sampling`.

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol.
    margin : float, optional
        Margin m, in cosine distance (0 to 2). Defaults to 0.4, the paper's
        0.2 × maximum distance.
    sampling : {"all", "hard", "semi-hard"}, optional
        Every valid triplet, the hardest positive and negative per anchor
        (batch-hard), or semi-hard negatives. Defaults to "all".
    """

    loss_name = "triplet"

    def __init__(self, protocol: Protocol, margin: float = 0.4, sampling: str = "all", **kwargs):
        super().__init__(protocol, loss=dict(margin=margin, sampling=sampling), **kwargs)
