"""pyannote-embloss: speaker-embedding training with metric-learning losses for pyannote.audio 4.

Importing this package turns pyannote.audio's telemetry off unless the user has
explicitly set ``PYANNOTE_METRICS_ENABLED`` beforehand: nothing leaves the machine
by default.
"""

import os

# must run before pyannote.audio.telemetry is imported (it sets its default "true")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

from .version import __version__  # noqa: E402
from .io import prune_missing_requirements  # noqa: E402

# before pyannote.database is imported: it loads ./database.yml then, and dies on a requirement that is gone
prune_missing_requirements("database.yml")

__all__ = ["__version__", "load"]


def load(checkpoint, **kwargs):
    """Load a trained checkpoint as a callable speaker embedding (the paper's quick usage)

    >>> model = pyannote_embloss.load("experiments/aam/checkpoints/best.ckpt")
    >>> emb1 = model({"audio": "/path/to/1.wav"})
    >>> emb2 = model({"audio": "/path/to/2.wav"})
    >>> distance = np.mean(cdist(emb1, emb2, metric="cosine"))

    Loaded from an experiment that ``pyannote-audio-emb evaluate`` calibrated,
    it also decides whether two files are of the same speaker:

    >>> model = pyannote_embloss.load("experiments/aam")
    >>> verdict = model.verify("/path/to/1.wav", "/path/to/2.wav")   # at FAR 1 %
    >>> verdict.score, verdict.llr, verdict.same_speaker

    Keyword arguments (window, duration, step, device, batch_size) are those of
    :func:`pyannote_embloss.inference.pretrained.load`.
    """
    # lazy: pyannote.audio is imported after the telemetry default
    from .evaluation.verify import Verifier
    from .inference.pretrained import load as _load

    return _load(checkpoint, verifier=Verifier.from_experiment, **kwargs)
