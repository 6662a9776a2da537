"""Errors a user can fix: bad configuration, data, audio, downloads, missing or existing files

Every error the plugin raises on purpose for its users derives from
:class:`EmblossError`, and its message names the file, key or value at fault
and what to do. ``pyannote-audio-emb`` prints these as one line (exit code 2);
any other exception is a bug and keeps its traceback.

Each class also derives from the matching built-in exception (``ValueError``,
``FileNotFoundError``, ...), so that code catching those keeps working.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Iterable

__all__ = [
    "did_you_mean",
    "EmblossError",
    "ConfigError",
    "DataError",
    "AudioDecodingError",
    "DownloadError",
    "MissingFileError",
    "CorpusNotFoundError",
    "OutputExistsError",
    "LockedError",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "UntrustedCheckpointError",
    "ExportError",
]


class EmblossError(Exception):
    """Base class of the errors a user can fix"""


class ConfigError(EmblossError, ValueError):
    """An experiment's config.yml, or an option, is missing or invalid"""


class DataError(EmblossError, ValueError):
    """A corpus, a protocol, trials or input data are invalid"""


class AudioDecodingError(EmblossError, RuntimeError):
    """An audio file could not be read or decoded"""


class DownloadError(EmblossError, OSError):
    """A download failed, was interrupted, or gave an unexpected archive"""


class MissingFileError(EmblossError, FileNotFoundError):
    """A file or directory the run needs does not exist"""


class CorpusNotFoundError(MissingFileError):
    """A corpus could not be found; the message lists where it was looked for"""


class OutputExistsError(EmblossError, FileExistsError):
    """An output already exists and would be overwritten"""


class LockedError(EmblossError, RuntimeError):
    """Another process is writing the same outputs"""


class TrainingDivergedError(EmblossError, RuntimeError):
    """Training produced a non-finite loss or gradient"""


class TrainingInterrupted(EmblossError, RuntimeError):
    """Training was stopped by SIGTERM or Ctrl-C, after saving last.ckpt"""


class UntrustedCheckpointError(EmblossError, RuntimeError):
    """A checkpoint needs more than the allow-listed classes to be unpickled"""


class ExportError(EmblossError, RuntimeError):
    """A model cannot be exported (to ONNX)"""


def did_you_mean(name, valid: Iterable) -> str:
    """`` (did you mean 'X'?)``, X being the valid name closest to `name`; empty when none is close

    For the one-line errors on unknown names (config.yml sections and keys,
    optimizers, schedulers)::

        f"unknown key {key!r}{did_you_mean(key, valid)}"
    """
    valid = [str(v) for v in valid]
    by_lower = {v.lower(): v for v in valid}  # a name off by its case only ("Adamw") means that one ("AdamW")
    if str(name).lower() in by_lower:
        return f" (did you mean '{by_lower[str(name).lower()]}'?)"
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def renamed_keyword(old: str, old_value, new: str, value, default=None):
    """The value of a keyword argument renamed from `old` to `new` in this release

    `old_value` when it is given (not None), with a DeprecationWarning to the
    caller's caller; else `value`. Both given (`value` not its `default`)
    is a ConfigError.
    """
    if old_value is None:
        return value
    warnings.warn(f"{old}= is deprecated (removed in the next release): use {new}=.", DeprecationWarning, stacklevel=3)
    if value != default:
        raise ConfigError(f"{new} and {old} (its deprecated name) both given: pass {new} only.")
    return old_value
