"""Speaker-embedding tasks, one per loss, derived from the loss registry

Every loss of :data:`pyannote_embloss.losses.LOSSES` has its task, under the
same name: a subclass of :class:`~pyannote_embloss.tasks.base.SpeakerEmbeddingTask`
(sampler, validation, upstream fixes) that only sets ``loss_name``, named
after its loss class without "Loss" (``AdditiveAngularMarginLoss`` →
``AdditiveAngularMargin``). A loss added to the registry thus has its task,
its config name (``task: {name: ...}``) and its place in ``compare``.
"""

from ..errors import ConfigError, did_you_mean
from ..losses import LOSSES
from .base import SpeakerEmbeddingTask

__all__ = ["TASKS", "get_task_class", "SpeakerEmbeddingTask"]


def _derived_task(name: str) -> type:
    """The task of loss `name`: a :class:`SpeakerEmbeddingTask` that only sets ``loss_name``

    Its class lives in this module (for pickling, e.g. by data-loading
    workers started with "spawn").
    """
    Loss = LOSSES[name]
    summary = (Loss.__doc__ or Loss.__name__).strip().splitlines()[0]
    return type(
        Loss.__name__.removesuffix("Loss"),
        (SpeakerEmbeddingTask,),
        {
            "loss_name": name,
            "__module__": __name__,
            "__doc__": f"Speaker embedding trained with the '{name}' loss: {summary}\n\n"
            f"Takes the parameters of :class:`SpeakerEmbeddingTask` and those of "
            f":class:`~pyannote_embloss.losses.{Loss.__name__}`, with its defaults.",
        },
    )


#: task class of each loss, by loss name
TASKS = {name: _derived_task(name) for name in LOSSES}
globals().update({Task.__name__: Task for Task in TASKS.values()})
__all__ += [Task.__name__ for Task in TASKS.values()]


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
        raise ConfigError(f"Unknown task '{name}'{did_you_mean(name, TASKS)}. Known tasks: {', '.join(TASKS)}.") from None
