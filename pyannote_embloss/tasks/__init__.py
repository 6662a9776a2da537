"""Speaker-embedding tasks, one per loss, by name

Every task shares :class:`~pyannote_embloss.tasks.base.SpeakerEmbeddingTask`
(sampler, validation, upstream fixes) and differs only by its loss
(:data:`pyannote_embloss.losses.LOSSES`, under the same names).
"""

from ..errors import ConfigError
from .base import SpeakerEmbeddingTask
from .classification import (
    AdditiveAngularMargin,
    AdditiveMargin,
    Center,
    CongenerousCosine,
    Softmax,
)
from .pairwise import Contrastive, Triplet

TASKS = {
    "softmax": Softmax,
    "center": Center,
    "coco": CongenerousCosine,
    "aam": AdditiveAngularMargin,
    "am": AdditiveMargin,
    "contrastive": Contrastive,
    "triplet": Triplet,
}


def get_task_class(name: str):
    """Task class from its name (e.g. "aam")

    Raises
    ------
    ConfigError
        When `name` is unknown, listing the known names.
    """
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"Unknown task '{name}'. Known tasks: {', '.join(TASKS)}.") from None


__all__ = ["TASKS", "get_task_class", "SpeakerEmbeddingTask", *(c.__name__ for c in TASKS.values())]
