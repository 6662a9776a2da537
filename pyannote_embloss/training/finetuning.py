"""Fine-tuning: start training from a pretrained checkpoint

    pyannote-audio-emb train EXPERIMENT_DIR PROTOCOL --pretrained CHECKPOINT \
        [--freeze-frontend] [--lr 1e-4]

The model is built with the architecture hyper-parameters of the pretrained
checkpoint (they win over config.yml's, with a warning when they differ), and
its embedding network gets the pretrained weights. The training loss is not
taken from the checkpoint: pyannote.audio's `Model.setup` builds a new one
for the new task (`SpeakerEmbeddingTask.setup_loss_func`), so a
classifier-based loss gets a freshly initialised classifier sized for the new
speakers.

The checkpoint is one written by ``pyannote-audio-emb train``, or one in the
format pyannote.audio distributes its own models in, without
``hyper_parameters`` (e.g. the ``pytorch_model.bin`` of
pyannote/wespeaker-voxceleb-resnet34-LM: fine-tune the embedding of
pyannote.audio's diarization pipelines with ``architecture: {name:
WeSpeakerResNet34}``), whose architecture's defaults then apply.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import List, Tuple

from pyannote.audio.core.model import Model
from pyannote.audio.models.embedding import XVectorMFCC, XVectorSincNet
from pyannote.audio.models.embedding.wespeaker import BaseWeSpeakerResNet

from ..models.checkpoint import drop_loss_parameters, load_checkpoint
from ..errors import ConfigError, DataError, MissingFileError
from ..experiment import Experiment
from ..io import PathLike
from ..inference.loading import architecture_class
from ..models import ECAPATDNN, LogMelStatistics, SincTDNN, get_architecture

#: front-end of each architecture (and of its subclasses): (its modules, what it is), for `--freeze-frontend`
FRONTENDS = {
    SincTDNN: (["sincnet"], "SincNet, or the log-mel filterbank with frontend: fbank"),
    ECAPATDNN: (["filterbank"], "log-mel filterbank"),
    LogMelStatistics: (["filterbank"], "log-mel filterbank"),
    BaseWeSpeakerResNet: ([], "Kaldi filterbank, a function of the waveform"),
    XVectorSincNet: (["sincnet"], "SincNet"),
    XVectorMFCC: (["mfcc"], "MFCC"),
}


def constructor_arguments(Klass: type, hyper_parameters: dict) -> dict:
    """The hyper-parameters that `Klass`'s constructor takes (as Lightning's checkpoint loading keeps them)

    pyannote.audio's WeSpeaker models save hyper-parameters of their base
    class (e.g. ``fbank_centering_span``) that ``WeSpeakerResNet34()`` does not take.
    """
    parameters = inspect.signature(Klass.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(hyper_parameters)
    return {name: value for name, value in hyper_parameters.items() if name in parameters and name != "task"}


class PretrainedCheckpoint:
    """A checkpoint to fine-tune from

    Parameters
    ----------
    path : str or Path
        Checkpoint written by ``pyannote-audio-emb train`` (``.ckpt``), or
        a pyannote.audio model checkpoint without hyper-parameters (e.g.
        pyannote/wespeaker-voxceleb-resnet34-LM's ``pytorch_model.bin``).
    trust : bool, optional
        Unpickle anything it holds (see :mod:`pyannote_embloss.models.checkpoint`).
        Defaults to False.

    Attributes
    ----------
    architecture : type
        Model class of the checkpoint.
    hyper_parameters : dict
        Its constructor arguments (stride, channels, dimension, ...); empty
        for a checkpoint without them (the architecture's defaults apply).
    state_dict : dict
        Weights of the embedding network (without the loss' parameters).

    Raises
    ------
    MissingFileError
        When `path` does not exist.
    DataError
        When it is not a pyannote.audio model checkpoint.
    UntrustedCheckpointError
        When it holds more than weights and allow-listed classes.
    """

    def __init__(self, path: PathLike, trust: bool = False):
        self.path = Path(path)
        if not self.path.is_file():
            raise MissingFileError(
                f"No pretrained checkpoint '{self.path}': pass a .ckpt written by "
                "`pyannote-audio-emb train` (e.g. EXPERIMENT_DIR/checkpoints/best.ckpt) or a pyannote.audio "
                "pytorch_model.bin."
            )
        checkpoint = load_checkpoint(self.path, trust=trust)
        self.architecture = architecture_class(checkpoint, self.path, trust=trust)
        self.hyper_parameters = constructor_arguments(self.architecture, checkpoint.get("hyper_parameters") or {})
        self.state_dict = dict(checkpoint["state_dict"])
        drop_loss_parameters(self.state_dict)

    def architecture_params(self, experiment: Experiment) -> Tuple[dict, dict]:
        """Architecture parameters to build the model with: the checkpoint's win over config.yml's

        Parameters
        ----------
        experiment : Experiment

        Returns
        -------
        params : dict
            config.yml's architecture.params updated with the checkpoint's hyper-parameters.
        overridden : dict
            {name: (config value, checkpoint value)} of the config.yml values that differ.

        Raises
        ------
        ConfigError
            When config.yml's architecture is not the checkpoint's.
        """
        section = experiment.config.architecture
        Klass = get_architecture(section.name)
        if Klass is not self.architecture:
            raise ConfigError(
                f"{experiment.directory / 'config.yml'}: architecture '{section.name}' "
                f"({Klass.__module__}.{Klass.__name__}) does not match the pretrained checkpoint "
                f"'{self.path}' ({self.architecture.__module__}.{self.architecture.__name__}): "
                "set architecture.name to the checkpoint's."
            )
        overridden = {
            name: (value, self.hyper_parameters[name])
            for name, value in section.params.items()
            if name in self.hyper_parameters and value != self.hyper_parameters[name]
        }
        return {**section.params, **self.hyper_parameters}, overridden


def build_pretrained_model(experiment: Experiment, task, pretrained: PretrainedCheckpoint) -> Tuple[Model, dict]:
    """Instantiate the checkpoint's architecture for `task`, with its pretrained weights

    Parameters
    ----------
    experiment : Experiment
    task : SpeakerEmbeddingTask
    pretrained : PretrainedCheckpoint

    Returns
    -------
    model : Model
        With the pretrained embedding network; the loss is built later, by
        `Model.setup`, for `task`'s speakers.
    overridden : dict
        config.yml architecture parameters overridden by the checkpoint's
        (see :meth:`PretrainedCheckpoint.architecture_params`).
    """
    params, overridden = pretrained.architecture_params(experiment)
    if overridden:
        warnings.warn(
            f"Fine-tuning '{pretrained.path}': its architecture hyper-parameters override "
            f"{experiment.directory / 'config.yml'}'s: "
            + ", ".join(f"{name}={new!r} (config: {old!r})" for name, (old, new) in overridden.items())
            + "."
        )
    model = pretrained.architecture(task=task, **params)
    try:
        model.load_state_dict(pretrained.state_dict, strict=True)
    except RuntimeError as e:
        raise DataError(f"Could not load the weights of '{pretrained.path}' into {type(model).__name__}: {e}") from e
    return model, overridden


def freeze_frontend(model: Model) -> List[str]:
    """Freeze the front-end of `model` (:data:`FRONTENDS`: e.g. SincNet's filters and convolutions)

    A front-end without trainable parameters (log-mel or Kaldi filterbanks)
    has nothing to freeze: a warning says so.

    Parameters
    ----------
    model : Model

    Returns
    -------
    frozen : list of str
        Names of the frozen modules.

    Raises
    ------
    ConfigError
        When the architecture has no known front-end.
    """
    known = next((FRONTENDS[Klass] for Klass in type(model).__mro__ if Klass in FRONTENDS), None)
    if known is None:
        raise ConfigError(
            f"--freeze-frontend: no known front-end for architecture {type(model).__name__} "
            f"(known: {', '.join(sorted(Klass.__name__ for Klass in FRONTENDS))})."
        )
    modules, description = known
    if not any(p.requires_grad for name in modules for p in getattr(model, name).parameters()):
        warnings.warn(
            f"--freeze-frontend: the front-end of {type(model).__name__} ({description}) has no trainable "
            "parameter: nothing to freeze."
        )
    return model.freeze_by_name(modules)
