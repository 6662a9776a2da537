"""Download and unpack a corpus archive, all or nothing

:func:`download_archive` streams an archive (``.tar.gz``, ``.tar``, ...) over
HTTP(S) (or ``file://``) to a temporary file next to the destination, checks it
(length announced by the server, optional md5, gzip integrity, expected layout),
extracts it safely (``tarfile`` "data" filter: no absolute paths, no ``..``,
no links escaping the extraction directory) into a temporary directory, and
only then renames the corpus directory into place.

Whatever goes wrong (connection closed mid-body, corrupt or truncated archive,
unexpected layout, Ctrl+C), a :class:`DownloadError` (or the original
``KeyboardInterrupt``) is raised and neither a partial destination directory
nor temporary files are left behind.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Iterable, Optional, Sequence

from tqdm import tqdm

from ...errors import DownloadError, OutputExistsError
from ...io import PathLike

CHUNK_SIZE = 1 << 20  # bytes read from the network at once
GZIP_MAGIC = b"\x1f\x8b"


def fetch(
    url: str,
    path: PathLike,
    *,
    md5: Optional[str] = None,
    timeout: float = 60,
    desc: Optional[str] = None,
) -> str:
    """Stream `url` to `path`, with a progress bar

    Parameters
    ----------
    url : str
        URL to download (http, https or file).
    path : str or Path
        Where to write the bytes (overwritten).
    md5 : str, optional
        Expected md5 hex digest of the content.
    timeout : float, optional
        Seconds to wait for the connection and for each read. Defaults to 60.
    desc : str, optional
        Progress bar label. Defaults to the last part of `url`.

    Returns
    -------
    md5 : str
        md5 hex digest of the downloaded content.

    Raises
    ------
    DownloadError
        When the server cannot be reached, answers with an HTTP error, closes
        the connection before sending the announced number of bytes, or when
        the md5 does not match. `path` may then hold partial content: the
        caller removes it.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "pyannote-embloss"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"Could not download '{url}': HTTP error {error.code} ({error.reason}).") from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"Could not reach '{url}': {reason}.") from error

    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    hasher = hashlib.md5(usedforsecurity=False)
    received = 0
    with response, open(path, "wb") as file, tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc or url.rsplit("/", 1)[-1],
    ) as progress:
        while True:
            try:
                chunk = response.read(CHUNK_SIZE)
            except (http.client.HTTPException, OSError) as error:
                raise DownloadError(
                    f"Download of '{url}' was interrupted after {received} bytes"
                    f"{f' of {total}' if total else ''}: {error!r}. Try again."
                ) from error
            if not chunk:
                break
            file.write(chunk)
            hasher.update(chunk)
            received += len(chunk)
            progress.update(len(chunk))

    if total is not None and received != total:
        raise DownloadError(
            f"Download of '{url}' was interrupted: the connection was closed after "
            f"{received} of {total} bytes. Try again (or use a mirror)."
        )
    digest = hasher.hexdigest()
    if md5 is not None and digest != md5.lower():
        raise DownloadError(
            f"Downloaded '{url}' has md5 {digest}, expected {md5.lower()}: the file is "
            "corrupt or not the expected one."
        )
    return digest


def check_gzip(archive: PathLike, url: str = "") -> None:
    """Decompress a gzip file to the end, checking its CRC and length

    Does nothing when `archive` is not gzip-compressed.

    Parameters
    ----------
    archive : str or Path
        Archive to check.
    url : str, optional
        Where it comes from, for error messages.

    Raises
    ------
    DownloadError
        When the gzip stream is corrupt or truncated.
    """
    with open(archive, "rb") as file:
        if file.read(2) != GZIP_MAGIC:
            return
    try:
        with gzip.open(archive, "rb") as stream:
            while stream.read(CHUNK_SIZE):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise DownloadError(
            f"Archive downloaded from '{url or archive}' is corrupt or truncated ({error}). Try again."
        ) from error


def find_root(names: Iterable[str], required: Sequence[str]) -> str:
    """Find the folder of an archive that has the `required` layout

    Parameters
    ----------
    names : iterable of str
        Archive member names ("a/b/c.txt"; directories with or without a
        trailing slash).
    required : sequence of str
        Paths the folder must contain, relative to it. The first one must be a
        file. Paths ending with "/" are directories (any member under them
        counts).

    Returns
    -------
    prefix : str
        Folder, as a member name prefix ("" for the top level, else ending
        with "/"). The shallowest one when several match.

    Raises
    ------
    DownloadError
        When no folder has the layout.
    """
    names = {name[2:] if name.startswith("./") else name for name in names}
    names = {name.rstrip("/") for name in names}
    anchor = required[0]
    prefixes = sorted(
        {name[: -len(anchor)] for name in names if name == anchor or name.endswith("/" + anchor)},
        key=lambda prefix: (prefix.count("/"), prefix),
    )

    def has(prefix: str, path: str) -> bool:
        if path.endswith("/"):
            directory = prefix + path.rstrip("/")
            return directory in names or any(name.startswith(directory + "/") for name in names)
        return prefix + path in names

    for prefix in prefixes:
        if all(has(prefix, path) for path in required):
            return prefix
    raise DownloadError(
        f"it does not have the expected layout, no folder contains all of "
        f"{', '.join(required)}"
        + (f" (found {anchor} under {', '.join(repr(p or '.') for p in prefixes)})." if prefixes else ".")
    )


def _remove(path: Optional[Path]) -> None:
    """Remove a file or directory tree, if it exists"""
    if path is None or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def download_archive(
    url: str,
    destination: PathLike,
    *,
    required: Sequence[str],
    md5: Optional[str] = None,
    timeout: float = 60,
) -> Path:
    """Download a tar archive and unpack the folder that has the `required` layout

    Parameters
    ----------
    url : str
        Archive URL (http, https or file), any compression `tarfile` reads.
    destination : str or Path
        Directory to create with the content of the folder of the archive that
        has the `required` layout (the archive's top-level folder, whatever its
        name, or the archive root). Must not exist, or be an empty directory.
        Temporary files go to its parent directory.
    required : sequence of str
        Layout to check, e.g. ("train/wav.scp", "test/wav.scp", "WAVE/"). See
        :func:`find_root`.
    md5 : str, optional
        Expected md5 hex digest of the archive.
    timeout : float, optional
        Network timeout in seconds. Defaults to 60.

    Returns
    -------
    destination : Path
        Absolute path to the unpacked folder.

    Raises
    ------
    FileExistsError
        When `destination` exists and is not an empty directory.
    DownloadError
        When downloading, checking or unpacking fails. Nothing is left behind.
    """
    destination = Path(destination).expanduser().absolute()
    if destination.is_symlink() or (
        destination.exists() and not (destination.is_dir() and not any(destination.iterdir()))
    ):
        raise OutputExistsError(
            f"Cannot download into '{destination}': it already exists and is not an empty "
            "directory. Remove it or choose another destination."
        )
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)

    fd, name = tempfile.mkstemp(dir=parent, prefix=f".{destination.name}.", suffix=".download")
    os.close(fd)
    archive, workdir = Path(name), None
    try:
        fetch(url, archive, md5=md5, timeout=timeout, desc=destination.name)
        check_gzip(archive, url)
        workdir = Path(tempfile.mkdtemp(dir=parent, prefix=f".{destination.name}.", suffix=".extract"))
        try:
            with tarfile.open(archive, "r:*") as tar:
                try:
                    prefix = find_root(tar.getnames(), required)
                except DownloadError as error:
                    message = f"Archive downloaded from '{url}' is not the expected corpus: {error}"
                    raise DownloadError(message) from None
                tar.extractall(workdir, filter="data")
        except (tarfile.TarError, EOFError, zlib.error) as error:
            raise DownloadError(f"Could not unpack the archive downloaded from '{url}': {error}") from error
        root = workdir / prefix
        missing = [path for path in required if not (root / path).exists()]
        if missing:
            raise DownloadError(f"Unpacked archive from '{url}' lacks {', '.join(missing)}.")
        if destination.is_dir():
            destination.rmdir()  # empty, checked above
        os.rename(root, destination)
    except DownloadError:
        raise
    except OSError as error:
        raise DownloadError(f"Could not download and unpack '{url}' into '{destination}': {error}") from error
    finally:
        _remove(archive)
        _remove(workdir)
    return destination
