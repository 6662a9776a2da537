"""pyannote-embloss: speaker-embedding training with metric-learning losses for pyannote.audio 4.

Importing this package turns pyannote.audio's telemetry off unless the user has
explicitly set ``PYANNOTE_METRICS_ENABLED`` beforehand: nothing leaves the machine
by default.
"""

import os

# must run before pyannote.audio.telemetry is imported (it sets its default "true")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

from .version import __version__  # noqa: E402

__all__ = ["__version__"]
