"""A folder per speaker as a pyannote.database speaker verification protocol

``pyannote-audio-emb prepare folders --root DIR --name NAME``::

    DIR/alice/001.wav                  every audio file under a top-level folder
    DIR/alice/session2/004.m4a         is one utterance of that folder's speaker
    DIR/bob/take1.mp3

Audio files are those with an extension of
:data:`pyannote_embloss.audio.AUDIO_EXTENSIONS` (wav, flac, mp3, m4a, ogg,
opus, ...: anything FFmpeg decodes, any sample rate, mono or not); other files
are ignored. The split policy and the files written are those of
:mod:`pyannote_embloss.protocols.own_data`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Tuple

from ..audio import AUDIO_EXTENSIONS
from ..errors import DataError, MissingFileError
from ..io import PathLike
from .own_data import Record, preparer

PREPARE_COMMAND = "pyannote-audio-emb prepare folders"
DATABASE = None  # named by the user (--name)


def read_folders(root: PathLike) -> Tuple[List[Record], None]:
    """One record per audio file under `root`/<speaker>/ (and no trial list)

    Raises
    ------
    MissingFileError
        When `root` is not a directory, or has no speaker folder.
    DataError
        When a speaker folder holds no audio file.
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise MissingFileError(f"'{root}' (--root) is not a directory: give the folder that holds one folder per speaker.")
    speakers = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if loose:
        warnings.warn(
            f"{len(loose)} audio file(s) directly in '{root}' are ignored (e.g. {loose[0]}): "
            "only files inside a speaker folder have a speaker."
        )
    if not speakers:
        raise MissingFileError(f"'{root}' has no speaker folder: put each speaker's audio files in a folder of its own.")
    records = []
    for folder in speakers:
        files = sorted(
            p for p in folder.rglob("*")
            if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
        )
        if not files:
            raise DataError(
                f"Speaker folder '{folder}' holds no audio file ({', '.join(AUDIO_EXTENSIONS)}): "
                "add its recordings or remove the folder."
            )
        records.extend(Record(path=path, speaker=folder.name, source=str(path)) for path in files)
    return records, None


prepare = preparer(read_folders, PREPARE_COMMAND, "DIR, the folder holding one folder per speaker")


