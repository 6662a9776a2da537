"""A folder per speaker as a pyannote.database speaker verification protocol

``pyannote-audio-emb prepare folders --root DIR --name NAME``::

    DIR/alice/001.wav                  every audio file under a top-level folder
    DIR/alice/session2/004.m4a         is one utterance of that folder's speaker
    DIR/bob/take1.mp3

Audio files are those with an extension of
:data:`pyannote_embloss.data.audio.AUDIO_EXTENSIONS` (wav, flac, mp3, m4a, ogg,
opus, ...: anything FFmpeg decodes, any sample rate, mono or not); other files
are ignored. The split policy and the files written are those of
:mod:`pyannote_embloss.data.protocols.own_data`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict, List, Tuple

from ..audio import AUDIO_EXTENSIONS
from ...errors import DataError, MissingFileError
from ...io import PathLike
from .own_data import preparer
from .writer import Utterance, file_identity

PREPARE_COMMAND = "pyannote-audio-emb prepare folders"
DATABASE = None  # named by the user (--name)


def _speaker_folders(root: Path) -> List[Path]:
    """The top-level folders that are speakers: aliases of another one, and loops, left out with a warning

    A folder (or a symbolic link to one) is a speaker unless its real path is
    that of a speaker listed before it (an alias: ``alias -> spk01``; real
    folders come first), or holds the root itself (a loop: ``loop -> .``,
    ``up -> ..``).
    """
    real_root = root.resolve()
    candidates = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: (p.is_symlink(), p.name),  # real folders first: an alias points to them
    )
    speakers, real_of = [], {}
    for folder in candidates:
        real = folder.resolve()
        if real == real_root or real in real_root.parents:
            warnings.warn(f"'{folder}' leads back to '{root}' (a loop), not to a speaker: it is left out.")
        elif real in real_of:
            warnings.warn(
                f"Speaker folder '{folder.name}' is another path to '{real_of[real].name}' (a link): it is read once, "
                f"as '{real_of[real].name}'."
            )
        else:
            real_of[real] = folder
            speakers.append(folder)
    return sorted(speakers, key=lambda p: p.name)


def _audio_files(folder: Path, other_speakers: set, seen: Dict[tuple, Path]) -> Tuple[List[Path], List[str]]:
    """Audio files under a speaker `folder` (links followed, each directory and each file once)

    Parameters
    ----------
    other_speakers : set of Path
        Real paths of the other speaker folders: never entered from this one.
    seen : dict
        Identity -> path of every file taken so far (shared across speakers).

    Returns
    -------
    files : list of Path
    skipped : list of str
        What was not followed, and why (warnings).
    """
    files, skipped, visited = [], [], set()
    for directory, subdirectories, names in os.walk(folder, followlinks=True):
        real = Path(directory).resolve()
        if real in visited or real in other_speakers:
            reason = "a loop" if real in visited else "another speaker's folder"
            skipped.append(f"'{directory}' ({reason})")
            subdirectories[:] = []
            continue
        visited.add(real)
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        for name in sorted(names):
            path = Path(directory) / name
            if name.startswith(".") or path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
                continue
            identity = file_identity(path)
            if identity in seen:
                if seen[identity].is_relative_to(folder):
                    skipped.append(f"'{path}' (the same file as '{seen[identity]}')")
                    continue
                raise DataError(
                    f"'{path}' and '{seen[identity]}' are the same audio file (a symbolic or hard link) in the "
                    f"folders of two speakers, '{folder.name}' and '{seen[identity].relative_to(folder.parent).parts[0]}': "
                    "keep it in one speaker's folder."
                )
            seen[identity] = path
            files.append(path)
    return files, skipped


def read_folders(root: PathLike) -> Tuple[List[Utterance], None]:
    """One record per audio file under `root`/<speaker>/ (and no trial list)

    Files and folders are identified by their real path: symbolic links are
    followed, but a file reached twice (a link, a loop, a hard link) counts
    once, a folder that aliases a speaker's (or leads back to `root`) is no
    speaker of its own, and a speaker's folder is never read from another's
    (each is said in a warning).

    Raises
    ------
    MissingFileError
        When `root` is not a directory, or has no speaker folder.
    DataError
        When a speaker folder holds no audio file, or one file is in the
        folders of two speakers.
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        if root.is_file():
            raise MissingFileError(
                f"'{root}' (--root) is a file: `prepare folders` takes the folder that holds one folder per speaker "
                "(for a list of files, use `prepare csv --root FILE` or `prepare kaldi --root DATA_DIR`)."
            )
        raise MissingFileError(f"'{root}' (--root) is not a directory: give the folder that holds one folder per speaker.")
    speakers = _speaker_folders(root)
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if loose:
        warnings.warn(
            f"{len(loose)} audio file(s) directly in '{root}' are ignored (e.g. {loose[0]}): "
            "only files inside a speaker folder have a speaker."
        )
    if not speakers:
        raise MissingFileError(f"'{root}' has no speaker folder: put each speaker's audio files in a folder of its own.")
    records, seen = [], {}
    real_speakers = {folder.resolve() for folder in speakers}
    for folder in speakers:
        files, skipped = _audio_files(folder, real_speakers - {folder.resolve()}, seen)
        if skipped:
            warnings.warn(
                f"Speaker '{folder.name}': {len(skipped)} path(s) not read again: {'; '.join(skipped[:3])}"
                + (" ..." if len(skipped) > 3 else "")
            )
        if not files:
            raise DataError(
                f"Speaker folder '{folder}' holds no audio file ({', '.join(AUDIO_EXTENSIONS)}): "
                "add its recordings or remove the folder."
            )
        records.extend(Utterance(None, folder.name, path, source=str(path)) for path in files)
    return records, None


prepare = preparer(read_folders, PREPARE_COMMAND, "DIR, the folder holding one folder per speaker")


