"""Tasks whose loss compares chunks of the batch: contrastive and triplet

They need several chunks per speaker in each batch (num_chunks_per_class ≥ 2,
2 by default) and have no parameters of their own. Every task takes the
keyword arguments of :class:`~pyannote_embloss.tasks.base.SpeakerEmbeddingTask`
and those of its loss, with the loss' defaults.
"""

from __future__ import annotations

from .base import SpeakerEmbeddingTask


class Contrastive(SpeakerEmbeddingTask):
    """Contrastive loss over all pairs (:class:`~pyannote_embloss.losses.ContrastiveLoss`: margin)"""

    loss_name = "contrastive"


class Triplet(SpeakerEmbeddingTask):
    """Triplet loss (:class:`~pyannote_embloss.losses.TripletLoss`: margin, sampling)"""

    loss_name = "triplet"
