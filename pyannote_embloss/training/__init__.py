"""Training: build a task and a model from an experiment's config, run, and the stages around a run

* :mod:`.run`: :func:`~.run.train` and :class:`~.run.TrainingOptions` (build, callbacks, run);
* :mod:`.schedules`: learning-rate and margin schedules;
* :mod:`.finetuning`: starting from pretrained weights;
* :mod:`.large_margin`: the large-margin fine-tuning stage;
* :mod:`.averaging`: checkpoint averaging;
* :mod:`.curves`: training curves;
* :mod:`.run_config`: the effective configuration of a run and its hash;
* :mod:`.comparison`: train and evaluate several experiments (``compare``);
* :mod:`.machine`: the machine a run trained on.
"""


def __getattr__(name):  # `from pyannote_embloss.training import train` without importing torch here
    if name in ("train", "TrainingOptions"):
        from . import run

        return getattr(run, name)
    raise AttributeError(name)
