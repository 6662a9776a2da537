"""Atomic file output.

Every file this package writes (protocol lists, checkpoints, results, plots,
embeddings) goes through :func:`atomic_path`: the content is written to a
temporary file in the same directory and renamed over the destination only once
complete, so a crash never leaves a half-written file that looks good.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path that replaces `path` when the block exits without error

    Parameters
    ----------
    path : str or Path
        Final destination. Its parent directory is created when missing.

    Yields
    ------
    tmp : Path
        Temporary file, in the same directory as `path`, to write to.
        It is removed if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    # mkstemp creates owner-only files: give the usual permissions (0666 minus umask)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write `text` to `path` atomically

    Parameters
    ----------
    path : str or Path
        Destination file.
    text : str
        Content.

    Returns
    -------
    path : Path
        Destination file.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
