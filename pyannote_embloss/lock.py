"""One run per output: an exclusive lock on what a command writes

``train``, ``evaluate``, ``compare`` and ``apply`` take :class:`OutputLock`
on the directory they write into. A second process that would write the same
outputs is refused at once, with the holder's PID, host, command and start
time. The lock is an ``fcntl.flock`` on ``<directory>/.pyannote-embloss.lock``:
the kernel releases it when its holder dies, however it dies (``kill -9``
included), so a lock file left by a killed process is detected as stale and
taken over, with a warning. A ``flock`` belongs to the open file, which a
forked child (a data-loading worker) shares: children close their copy at
fork, so that the lock dies with its holder, not with its last worker.

Under multi-process training (DDP), only global rank 0 locks: the other
ranks write nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

from .errors import LockedError
from .io import PathLike

__all__ = ["OutputLock", "LOCK_NAME", "is_global_zero"]

LOCK_NAME = ".pyannote-embloss.lock"

#: lock files held by this process (their forked children close them)
_HELD: set = set()


def _close_in_child() -> None:
    """In a forked child: close the inherited lock files (the parent keeps its locks)"""
    for file in _HELD:
        try:
            file.close()
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


def is_global_zero() -> bool:
    """Whether this process is the (global) rank 0 of a distributed run, or not distributed at all"""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(variable)
        if value not in (None, "", "0"):
            return False
    return True


class OutputLock:
    """Exclusive lock on an output directory, as a context manager

    Parameters
    ----------
    directory : str or Path
        Directory whose outputs are locked (created when missing).
    purpose : str
        What the holder does, e.g. "train", for the messages.

    Raises
    ------
    LockedError
        On entering, when another living process holds the lock.
    """

    def __init__(self, directory: PathLike, purpose: str):
        self.directory = Path(directory)
        self.purpose = purpose
        self.path = self.directory / LOCK_NAME
        self._file = None
        self.took_over: Optional[dict] = None

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> "OutputLock":
        if not is_global_zero():
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            holder = self._holder()
            started = holder.get("started")
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "an unknown time"
            raise LockedError(
                f"'{self.directory}' is being written by another process (PID {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, `{holder.get('command', holder.get('purpose', '?'))}`, started {when}). "
                "Wait for it to finish, or stop it, before running this command on the same outputs."
            ) from None
        previous = self._holder()
        if previous.get("pid") and previous.get("pid") != os.getpid():
            self.took_over = previous
            warnings.warn(
                f"Taking over a stale lock on '{self.directory}': PID {previous.get('pid')} "
                f"(`{previous.get('command', previous.get('purpose', '?'))}`) stopped without releasing it."
            )
        file.seek(0)
        file.truncate()
        file.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "purpose": self.purpose,
                    "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                    "started": time.time(),
                }
            )
        )
        file.flush()
        self._file = file
        _HELD.add(file)
        return self

    def __exit__(self, *exc) -> None:
        if self._file is None:
            return
        try:
            self._file.seek(0)
            self._file.truncate()  # an empty lock file is a released lock
            self._file.flush()
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            _HELD.discard(self._file)
            self._file.close()
            self._file = None
