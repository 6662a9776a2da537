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
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np
import torch
from pyannote.audio.core.io import AudioFile
from pyannote.audio.core.model import Model
from pyannote.core import Segment, SlidingWindowFeature

from .audio import load_audio
from .embedding import Window, embed_waveform
from .checkpoint import load_model_checkpoint
from .errors import MissingFileError
from .io import PathLike


def load_model(
    checkpoint: Union[PathLike, Model],
    device: Optional[Union[str, torch.device]] = None,
    trust: bool = False,
) -> Model:
    """Load an embedding model for inference

    Parameters
    ----------
    checkpoint : str, Path or Model
        Checkpoint written by ``pyannote-audio-emb train`` (e.g.
        ``experiments/aam/checkpoints/best.ckpt``), an experiment directory
        (its ``checkpoints/best.ckpt`` is used), or an already loaded Model.
    device : str or torch.device, optional
        Defaults to CPU (as pyannote.audio).
    trust : bool, optional
        Unpickle anything the checkpoint holds. Defaults to False: only
        weights and the classes pyannote.audio and this plugin save are
        loaded (see :mod:`pyannote_embloss.checkpoint`).

    Returns
    -------
    model : Model
        In eval mode, on `device`, without the training loss (classifier).

    Raises
    ------
    MissingFileError
        When the checkpoint does not exist.
    UntrustedCheckpointError
        When the checkpoint holds more than weights and allow-listed classes.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(checkpoint, Model):
        model = checkpoint
    else:
        path = Path(checkpoint).expanduser()
        if path.is_dir() and not (path / "checkpoints" / "best.ckpt").is_file() and (path / "config.yml").is_file():
            from .experiment import Experiment

            return Experiment.load(path).load_model(trust=trust).to(device)
        if path.is_dir() and (path / "checkpoints" / "best.ckpt").is_file():
            path = path / "checkpoints" / "best.ckpt"
        if not path.is_file():
            raise MissingFileError(
                f"No checkpoint '{path}': pass the path of a .ckpt written by "
                "`pyannote-audio-emb train` (e.g. EXPERIMENT_DIR/checkpoints/best.ckpt) "
                "or an experiment directory that has one."
            )
        model = load_model_checkpoint(path, map_location=device, trust=trust)
    model.eval()
    return model.to(device)


class SpeakerEmbedding:
    """Speaker embeddings of audio files, as in the paper's quick usage

    Parameters
    ----------
    model : Model
        Embedding model (e.g. SincTDNN loaded with :func:`load_model`).
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
    ):
        model.eval()
        self.model = model
        self.window = Window(window, duration=duration, step=step).resolve(model)
        self.batch_size = batch_size

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
    trust: bool = False,
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
    trust : bool, optional
        See :func:`load_model`. Defaults to False.

    Returns
    -------
    model : SpeakerEmbedding
    """
    return SpeakerEmbedding(
        load_model(checkpoint, device=device, trust=trust),
        window=window,
        duration=duration,
        step=step,
        batch_size=batch_size,
    )
