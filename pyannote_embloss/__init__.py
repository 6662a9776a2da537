"""pyannote-embloss: speaker-embedding training with metric-learning losses for pyannote.audio 4.

Importing this package turns pyannote.audio's telemetry off unless the user has
explicitly set ``PYANNOTE_METRICS_ENABLED`` beforehand: nothing leaves the machine
by default.
"""

import os

# must run before pyannote.audio.telemetry is imported (it sets its default "true")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

from .version import __version__  # noqa: E402

__all__ = ["__version__", "load"]


def load(checkpoint, window="sliding", duration=None, step=None, device=None, batch_size=32):
    """Load a trained checkpoint as a callable speaker embedding (the paper's quick usage)

    >>> model = pyannote_embloss.load("experiments/aam/checkpoints/best.ckpt")
    >>> emb1 = model({"audio": "/path/to/1.wav"})
    >>> emb2 = model({"audio": "/path/to/2.wav"})
    >>> distance = np.mean(cdist(emb1, emb2, metric="cosine"))

    Parameters
    ----------
    checkpoint : str, Path or Model
        Checkpoint (``.ckpt``) written by ``pyannote-audio-emb train``, or an
        experiment directory (its ``checkpoints/best.ckpt``), or a Model.
    window : {"sliding", "whole"}, optional
        "sliding" (default): one embedding per window, as a (num_windows,
        dimension) `SlidingWindowFeature`. "whole": one (dimension, )
        embedding per file.
    duration, step : float, optional
        Sliding window duration and step, in seconds. Default to the
        checkpoint's training chunk duration, and a quarter of it.
    device : str or torch.device, optional
        Defaults to CPU.
    batch_size : int, optional
        Number of windows embedded at once. Defaults to 32.

    Returns
    -------
    model : pyannote_embloss.inference.SpeakerEmbedding
        ``model(file)`` embeds a whole file, ``model.crop(file, segment)`` an excerpt.
    """
    from .inference import load as _load  # lazy: pyannote.audio is imported after the telemetry default

    return _load(checkpoint, window=window, duration=duration, step=step, device=device, batch_size=batch_size)
