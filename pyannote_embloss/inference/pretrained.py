"""Quick usage: speaker embeddings of audio files with a trained checkpoint

>>> import numpy as np
>>> from scipy.spatial.distance import cdist
>>> import pyannote_embloss
>>> model = pyannote_embloss.load("experiments/aam/checkpoints/best.ckpt")
>>> emb1 = model({"audio": "/path/to/1.wav"})   # one embedding per sliding window
>>> emb2 = model({"audio": "/path/to/2.wav"})
>>> distance = np.mean(cdist(emb1, emb2, metric="cosine"))

or, equivalently, ``torch.hub.load(REPOSITORY, "emb", source="local", checkpoint=...)``
(see hubconf.py at the repository root).

Loaded from an experiment (its directory, or a checkpoint in its
checkpoints/) that ``pyannote-audio-emb evaluate`` calibrated, the model also
decides whether two files are of the same speaker:

>>> model = pyannote_embloss.load("experiments/aam")
>>> model.verify("/path/to/1.wav", "/path/to/2.wav")      # at FAR 1 %, or far=0.001, prior=0.01
Verdict(score=0.71, llr=5.2, same_speaker=True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Optional, Union

import numpy as np
import torch
from pyannote.audio.core.io import AudioFile
from pyannote.audio.core.model import Model
from pyannote.core import Segment, SlidingWindowFeature

from ..data.audio import load_audio
from .embedding import Window, embed_waveform
from ..errors import renamed_keyword
from ..io import PathLike
from .loading import experiment_of, load_model


class SpeakerEmbedding:
    """Speaker embeddings of audio files, as in the paper's quick usage

    Parameters
    ----------
    model : Model
        Embedding model (e.g. SincTDNN loaded with :func:`pyannote_embloss.inference.loading.load_model`).
    window : {"sliding", "whole"}, optional
        "sliding" (default) gives one embedding per window, as a
        (num_windows, dimension) `SlidingWindowFeature`; "whole" gives one
        (dimension, ) embedding for the whole file (or excerpt), like
        pyannote.audio's ``Inference(window="whole")``.
    duration : float, optional
        Sliding window duration in seconds. Defaults to the duration of the
        model's training chunks (from the checkpoint's specifications).
    step : float, optional
        Sliding window step in seconds. Defaults to a quarter of `duration`.
    batch_size : int, optional
        Number of windows embedded at once. Defaults to 32.
    experiment : str or Path, optional
        Experiment directory the model comes from, whose calibration
        :meth:`verify` uses.
    checkpoint : str or Path, optional
        Checkpoint the model was loaded from (None: the experiment's
        training-free model).
    verifier : callable, optional
        What :meth:`verify` decides with: ``verifier(experiment, protocol=, scoring=, far=, prior=,
        model=, checkpoint=)`` returns an object with a ``verify(audio1, audio2)`` method.
        :func:`pyannote_embloss.load` gives
        :meth:`pyannote_embloss.evaluation.verify.Verifier.from_experiment` (evaluation sits
        above inference: this module does not import it).

    Usage
    -----
    >>> model = SpeakerEmbedding(load_model("best.ckpt"))
    >>> embeddings = model({"audio": "file.wav"})       # also "file.wav", or
    ...                                                 # {"waveform": ..., "sample_rate": ...}
    >>> for window, embedding in embeddings: ...
    >>> excerpt = model.crop("file.wav", Segment(1.0, 5.0))
    >>> distance = np.mean(cdist(embeddings, excerpt, metric="cosine"))

    Files shorter than `duration` get a single window covering them.
    """

    def __init__(
        self,
        model: Model,
        window: str = "sliding",
        duration: Optional[float] = None,
        step: Optional[float] = None,
        batch_size: int = 32,
        experiment: Optional[PathLike] = None,
        checkpoint: Optional[PathLike] = None,
        verifier: Optional[Callable] = None,
    ):
        model.eval()
        self.verifier = verifier
        self.model = model
        self.window = Window(window, duration=duration, step=step).resolve(model)
        self.batch_size = batch_size
        self.experiment = None if experiment is None else Path(experiment)
        self.checkpoint = None if checkpoint is None else Path(checkpoint)

    @property
    def duration(self) -> Optional[float]:
        """Sliding window duration, in seconds (None for whole files)"""
        return self.window.duration

    @property
    def step(self) -> Optional[float]:
        """Sliding window step, in seconds (None for whole files)"""
        return self.window.step

    @property
    def dimension(self) -> int:
        """Embedding dimension"""
        return self.model.dimension

    @property
    def sample_rate(self) -> int:
        return self.model.audio.sample_rate

    @property
    def metric(self) -> str:
        """Distance to compare embeddings with (as pyannote.audio's embeddings)"""
        return "cosine"

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: Union[str, torch.device]) -> "SpeakerEmbedding":
        """Move the model to `device`"""
        self.model.to(torch.device(device))
        return self

    def _load(self, file: AudioFile, segment: Optional[Segment] = None) -> torch.Tensor:
        """(channel, sample) waveform of `file` (or of its `segment`), at the model's sample rate"""
        if isinstance(file, Mapping) and "waveform" in file:
            audio = self.model.audio
            waveform, _ = audio(file) if segment is None else audio.crop(file, segment, mode="pad")
            return waveform
        path = file["audio"] if isinstance(file, Mapping) else file
        return load_audio(self.model.audio, str(path), segment)

    def _embed(self, waveform: torch.Tensor, start: float = 0.0) -> Union[SlidingWindowFeature, np.ndarray]:
        return embed_waveform(self.model, waveform, self.window, start=start, batch_size=self.batch_size)

    def __call__(self, file: AudioFile) -> Union[SlidingWindowFeature, np.ndarray]:
        """Embeddings of a whole file

        Parameters
        ----------
        file : AudioFile
            Path, {"audio": path} or {"waveform": (channel, sample) tensor, "sample_rate": int}.

        Returns
        -------
        embeddings : SlidingWindowFeature or np.ndarray
            (num_windows, dimension) `SlidingWindowFeature` with `window="sliding"`,
            (dimension, ) array with `window="whole"`.

        Raises
        ------
        AudioDecodingError
            When the file cannot be decoded, naming it.
        """
        return self._embed(self._load(file))

    def crop(self, file: AudioFile, segment: Segment) -> Union[SlidingWindowFeature, np.ndarray]:
        """Embeddings of an excerpt of a file

        Parameters
        ----------
        file : AudioFile
        segment : Segment
            Excerpt, in seconds (zero-padded where it goes beyond the file).

        Returns
        -------
        embeddings : SlidingWindowFeature or np.ndarray
            As :meth:`__call__`; sliding windows are timed from the start of the file.
        """
        return self._embed(self._load(file, segment), start=segment.start)

    def verify(
        self,
        audio1: PathLike,
        audio2: PathLike,
        far: Optional[float] = None,
        prior: Optional[float] = None,
        scoring: str = "cosine",
        protocol: Optional[str] = None,
    ):
        """Same speaker or not: score, calibrated log-likelihood ratio and decision of two audio files

        As ``pyannote-audio-emb verify``: files are embedded whole (whatever
        `window`), scored and calibrated as the experiment's test evaluation
        (:mod:`pyannote_embloss.evaluation.verify`).

        Parameters
        ----------
        audio1, audio2 : str or Path
            Audio files.
        far, prior : float, optional
            Operating point: target false-acceptance rate (0.01, the default,
            or 0.001) or target prior.
        scoring : {"cosine", "plda"}, optional
            Defaults to "cosine".
        protocol : str, optional
            Protocol of the evaluation. Defaults to the experiment's.

        Returns
        -------
        verdict : pyannote_embloss.evaluation.verify.Verdict
            score, llr, same_speaker.

        Raises
        ------
        DataError
            When the model does not come from an experiment, or the
            experiment has no calibration (saying how to get one).
        ConfigError
            When the calibration was fitted with another checkpoint.
        MissingFileError
            When a file does not exist.
        """
        from ..errors import DataError

        if self.experiment is None or self.verifier is None:
            raise DataError(
                "verify needs the calibration of an experiment: load the model from an experiment that "
                "`pyannote-audio-emb evaluate` calibrated (pyannote_embloss.load('experiments/aam'), or its "
                "checkpoints/best.ckpt)."
            )
        verifier = self.verifier(
            self.experiment, protocol=protocol, scoring=scoring, far=far, prior=prior,
            model=self.model, checkpoint=self.checkpoint,
        )
        return verifier.verify(audio1, audio2)

    def __repr__(self) -> str:
        w = self.window
        options = "" if w.kind == "whole" else f", duration={w.duration:g}, step={w.step:g}"
        return f"{type(self).__name__}({type(self.model).__name__}, window='{w.kind}'{options})"


def load(
    checkpoint: Union[PathLike, Model],
    window: str = "sliding",
    duration: Optional[float] = None,
    step: Optional[float] = None,
    device: Optional[Union[str, torch.device]] = None,
    batch_size: int = 32,
    trust_checkpoint: bool = False,
    verifier: Optional[Callable] = None,
    trust: Optional[bool] = None,
) -> SpeakerEmbedding:
    """Load a trained checkpoint as a callable :class:`SpeakerEmbedding`

    Parameters
    ----------
    checkpoint : str, Path or Model
        Checkpoint (``.ckpt``) written by ``pyannote-audio-emb train``, or an
        experiment directory (its ``checkpoints/best.ckpt``), or a Model.
    window : {"sliding", "whole"}, optional
        Defaults to "sliding".
    duration, step : float, optional
        Sliding window duration and step, in seconds. Default to the
        checkpoint's training chunk duration, and a quarter of it.
    device : str or torch.device, optional
        Defaults to CPU.
    batch_size : int, optional
        Number of windows embedded at once. Defaults to 32.
    trust_checkpoint : bool, optional
        See :func:`pyannote_embloss.inference.loading.load_model` (its `trust`). Defaults to False.
        ``trust=`` still works, with a DeprecationWarning.
    verifier : callable, optional
        See :class:`SpeakerEmbedding` (:func:`pyannote_embloss.load` gives it).

    Returns
    -------
    model : SpeakerEmbedding
        With a :meth:`~SpeakerEmbedding.verify` method when `checkpoint`
        belongs to an experiment.
    """
    trust_checkpoint = renamed_keyword("trust", trust, "trust_checkpoint", trust_checkpoint, default=False)
    experiment, path = experiment_of(checkpoint)
    return SpeakerEmbedding(
        load_model(checkpoint, device=device, trust=trust_checkpoint),
        window=window,
        duration=duration,
        step=step,
        batch_size=batch_size,
        experiment=experiment,
        checkpoint=path,
        verifier=verifier,
    )

