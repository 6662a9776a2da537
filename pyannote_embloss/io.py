"""Atomic file output.

Every file this package writes (protocol lists, checkpoints, results, plots,
embeddings) goes through :func:`atomic_path`: the content is written to a
temporary file in the same directory and renamed over the destination only once
complete, so a crash never leaves a half-written file that looks good.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, List, Union

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


def write_if_changed(path: PathLike, text: str) -> None:
    """Atomically write `text` to `path`, unless it already holds exactly that"""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return
    atomic_write_text(path, text)


def check_writable_dir(path: PathLike, what: str) -> Path:
    """Refuse, before any work, an output directory that is a file or cannot be written

    Parameters
    ----------
    path : str or Path
        The directory (it may not exist yet: its nearest existing parent is
        checked, by writing and removing a file there).
    what : str
        How the user named it, e.g. "--output".

    Raises
    ------
    ConfigError
        Naming the path, and what to do.
    """
    from .errors import ConfigError

    path = Path(path).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{what} '{path}': '{existing}' is a file, not a directory. Give a directory (it is created when missing)."
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".embloss-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise ConfigError(
            f"{what} '{path}' cannot be written ({error.strerror or error} in '{existing}'). Give a directory you "
            "can write to."
        ) from None
    return path


def prune_missing_requirements(database_yml: PathLike) -> list:
    """Remove the ``Requirements:`` entries of `database_yml` whose file is gone; the entries removed

    ``prepare`` registers what it writes in ./database.yml as a requirement;
    pyannote.database loads that file when it is imported and fails on a
    requirement that no longer exists (a deleted ``data/NAME``), before any
    command could say why. Importing the plugin prunes such entries (a
    warning names them; nothing else in the file changes), so that no command
    dies on them and ``prepare`` can write the protocol again.
    """
    import warnings

    import yaml

    path = Path(database_yml)
    try:
        text = path.read_text()
        config = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    requirements = config.get("Requirements") if isinstance(config, dict) else None
    requirements = [requirements] if isinstance(requirements, str) else requirements
    if not isinstance(requirements, list):
        return []
    missing = [
        r for r in requirements
        if isinstance(r, str) and not (Path(r).expanduser() if Path(r).expanduser().is_absolute() else path.parent / r).is_file()
    ]
    if not missing:
        return []
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if line.strip().lstrip("- ").strip("'\"") not in missing or not line.lstrip().startswith("-")]
    remaining = [r for r in requirements if r not in missing]
    if not remaining:  # an empty "Requirements:" key would be null, and an empty file kills pyannote.database
        kept = ["Requirements: []\n" if line.rstrip() == "Requirements:" else line for line in kept]
    new = "".join(kept)
    try:
        check = yaml.safe_load(new) or {}
    except yaml.YAMLError:
        check = None
    if not isinstance(check, dict) or (check.get("Requirements") or []) != remaining:
        if not isinstance(config, dict):
            return []
        config = dict(config)
        config["Requirements"] = remaining
        new = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    try:
        atomic_write_text(path, new)
    except OSError:
        return []
    warnings.warn(
        f"'{path}' required {', '.join(repr(r) for r in missing)}, which no longer exist(s): removed from it "
        "(run `pyannote-audio-emb prepare` again to write that protocol)."
    )
    return missing


# ---------------------------------------------------------------- folders of audio files (noise, impulse responses)

#: extensions of the audio files looked for in folders
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".sph", ".aif", ".aiff")
#: share of noise / impulse response files used for training (the others are for test conditions)
TRAIN_SHARE = 0.8


def file_subset(path: str) -> str:
    """"train" or "test": the half of a noise / impulse response split a file belongs to

    A stable hash (sha1) of the file's path relative to its directory decides:
    the same file is in the same subset on every machine.
    """
    digest = hashlib.sha1(path.encode()).digest()
    return "train" if int.from_bytes(digest[:4], "big") / 2**32 < TRAIN_SHARE else "test"


def audio_files(directory: Path) -> List[Path]:
    """The audio files under `directory` (recursively, by extension), sorted"""
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def config_directory(value, key: str, path: Path) -> Path:
    """The directory `value` of config key `key` (in file `path`), environment variables expanded (ConfigError when missing)"""
    from .errors import ConfigError

    directory = Path(os.path.expandvars(str(value))).expanduser()
    if "$" in str(directory):
        raise ConfigError(
            f"{path}: {key} '{value}' names an environment variable that is not set: set it (e.g. "
            f"export {str(directory).split('$')[1].strip('{}').split('/')[0]}=/path/to/dir) or write the path."
        )
    if not directory.is_dir():
        raise ConfigError(f"{path}: {key} '{directory}' does not exist (or is not a directory).")
    return directory


def split_files(files: List[Path], root: Path, subset: str) -> List[Path]:
    """The `files` (under `root`) of `subset`: "train", "test" (:func:`file_subset`) or "all" (every file)"""
    if subset == "all":
        return files
    return [f for f in files if file_subset(f.relative_to(root).as_posix()) == subset]
