"""Embed many audio files with a trained experiment and save the embeddings

    pyannote-audio-emb apply EXPERIMENT_DIR (PROTOCOL --subset S | AUDIO_DIR) OUTPUT

writes, in OUTPUT::

    <uri>.npy          (rows, dimension) float32 embeddings of each file: one row
                       (whole file) or one per sliding window. A uri with "/"
                       gives subfolders.
    index.csv          uri, path (of the .npy, relative to OUTPUT), duration (s), rows
    embeddings.json    settings: checkpoint (and its sha256), window, duration, step

Every file is written atomically. Running the command again resumes: files
whose .npy exists are skipped (and kept in the index), provided the settings
are the same.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

from .audio import load_audio
from .io import atomic_path, atomic_write_text

PathLike = Union[str, os.PathLike]

INDEX = "index.csv"
SETTINGS = "embeddings.json"
INDEX_COLUMNS = ("uri", "path", "duration", "rows")
#: extensions of the audio files found in an AUDIO_DIR (case-insensitive)
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".sph", ".aif", ".aiff")


def audio_directory_files(directory: PathLike) -> List[Tuple[str, str]]:
    """Audio files under `directory` (recursively), with their uri

    Parameters
    ----------
    directory : str or Path

    Returns
    -------
    files : list of (uri, path)
        uri is the path relative to `directory`, without extension
        ("speaker1/file2"); sorted by uri.

    Raises
    ------
    FileNotFoundError
        When `directory` has no audio file.
    ValueError
        When two files give the same uri (e.g. a.wav and a.flac).
    """
    directory = Path(directory)
    files: Dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        uri = path.relative_to(directory).with_suffix("").as_posix()
        if uri in files:
            raise ValueError(f"'{files[uri]}' and '{path}' have the same uri '{uri}': rename one of them.")
        files[uri] = str(path)
    if not files:
        raise FileNotFoundError(
            f"No audio file ({', '.join(AUDIO_EXTENSIONS)}) in '{directory}' nor its subfolders."
        )
    return sorted(files.items())


def protocol_files(protocol: str, subset: str = "test", database: Optional[PathLike] = None) -> List[Tuple[str, str]]:
    """Files of a protocol subset, with their uri

    Parameters
    ----------
    protocol : str
        pyannote.database protocol name.
    subset : {"train", "development", "test"}, optional
        Defaults to "test".
    database : str or Path, optional
        database.yml (see `pyannote_embloss.protocols.get_protocol`).

    Returns
    -------
    files : list of (uri, path)
        Sorted by uri, each uri once.
    """
    from .protocols import get_protocol

    subsets = ("train", "development", "test")
    if subset not in subsets:
        raise ValueError(f"Unknown subset '{subset}': choose one of {', '.join(subsets)}.")
    files: Dict[str, str] = {}
    for file in getattr(get_protocol(protocol, database_yml=database), subset)():
        files.setdefault(str(file["uri"]), str(file["audio"]))
    if not files:
        raise ValueError(f"Protocol {protocol} has no {subset} files.")
    return sorted(files.items())


def npy_path(uri: str) -> str:
    """Path of the embeddings of `uri`, relative to the output directory

    Raises
    ------
    ValueError
        When `uri` is empty, absolute or goes up ("..").
    """
    path = PurePosixPath(uri)
    if not uri or path.is_absolute() or ".." in path.parts or "\\" in uri:
        raise ValueError(f"uri '{uri}' cannot be used as a relative file path (absolute, empty, or with '..').")
    return f"{uri}.npy"


def file_sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_npy(path: PathLike, array: np.ndarray) -> None:
    """Write `array` to `path` atomically (np.save would append .npy to a temporary name)"""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def read_index(output_dir: Path) -> Dict[str, dict]:
    """Rows of an existing index.csv, by uri (empty when there is none)"""
    path = output_dir / INDEX
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["uri"]: row for row in csv.DictReader(f)}


def write_index(output_dir: Path, rows: Dict[str, dict]) -> Path:
    """Write index.csv atomically, rows sorted by uri"""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for uri in sorted(rows):
        writer.writerow({column: rows[uri][column] for column in INDEX_COLUMNS})
    return atomic_write_text(output_dir / INDEX, buffer.getvalue())


def check_settings(output_dir: Path, settings: dict, overwrite: bool) -> None:
    """Refuse to mix embeddings computed with other settings in `output_dir`"""
    path = output_dir / SETTINGS
    if path.is_file() and not overwrite:
        previous = json.loads(path.read_text())
        keys = ("checkpoint_sha256", "window", "duration", "step")
        different = [k for k in keys if previous.get(k) != settings.get(k)]
        if different:
            raise FileExistsError(
                f"'{output_dir}' holds embeddings computed with other settings ("
                + ", ".join(f"{k}: {previous.get(k)!r} then, {settings.get(k)!r} now" for k in different)
                + "): choose another output directory, or pass --overwrite to recompute every file."
            )


def apply(
    model,
    files: Iterable[Tuple[str, str]],
    output_dir: PathLike,
    window: str = "whole",
    duration: Optional[float] = None,
    step: Optional[float] = None,
    batch_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint: Optional[PathLike] = None,
) -> dict:
    """Embed `files` and save one .npy per file, with an index

    Parameters
    ----------
    model : Model
        Embedding model.
    files : iterable of (uri, path)
        Audio files (see :func:`protocol_files`, :func:`audio_directory_files`).
    output_dir : str or Path
    window : {"whole", "sliding"}, optional
        One embedding per file (default), or one per sliding window.
    duration, step : float, optional
        Sliding windows: default to the model's training chunk duration and a
        quarter of it.
    batch_size : int, optional
        Number of pieces (windows, files of equal length) embedded at once.
    overwrite : bool, optional
        Recompute files whose .npy exists. Defaults to resuming (skip them).
    progress : bool, optional
        Show a progress bar.
    checkpoint : str or Path, optional
        Checkpoint of `model`, recorded in embeddings.json (with its sha256).

    Returns
    -------
    summary : dict
        "computed" and "skipped" numbers of files, "index" path.

    Raises
    ------
    AudioDecodingError
        When a file cannot be decoded, naming it. Files embedded before are
        saved and indexed first.
    """
    from .evaluation.extraction import iter_embeddings

    if window not in ("whole", "sliding"):
        raise ValueError(f"Unknown window '{window}': use 'whole' or 'sliding'.")
    if window == "whole" and (duration is not None or step is not None):
        raise ValueError("--duration and --step are sliding window options: add --window sliding.")
    output_dir = Path(output_dir)
    files = list(files)
    paths = {uri: npy_path(uri) for uri, _ in files}

    model.eval()
    if window == "sliding":
        duration = float(duration or model.specifications.duration)
        step = float(step or duration / 4)
    settings = {
        "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
        "checkpoint_sha256": None if checkpoint is None else file_sha256(checkpoint),
        "window": window,
        "duration": duration,
        "step": step,
        "dimension": int(model.dimension),
        "sample_rate": int(model.audio.sample_rate),
    }
    check_settings(output_dir, settings, overwrite)
    atomic_write_text(output_dir / SETTINGS, json.dumps(settings, indent=2) + "\n")

    # previous index entries whose .npy still exists are kept
    index = {
        uri: row
        for uri, row in read_index(output_dir).items()
        if (output_dir / row["path"]).is_file() and not (overwrite and uri in paths)
    }
    todo, skipped = [], 0
    for uri, path in files:
        if overwrite or not (output_dir / paths[uri]).is_file():
            todo.append((uri, path))
            continue
        skipped += 1
        if uri not in index:  # written by an interrupted run
            from .protocols.speechocean762 import audio_duration

            rows = np.load(output_dir / paths[uri], mmap_mode="r").shape[0]
            index[uri] = {"uri": uri, "path": paths[uri], "duration": f"{audio_duration(Path(path)):.3f}", "rows": rows}

    durations: Dict[str, float] = {}

    def waveforms() -> Iterator:
        for uri, path in todo:
            waveform = load_audio(model.audio, path)
            durations[uri] = waveform.shape[-1] / model.audio.sample_rate
            yield uri, waveform

    computed = 0
    try:
        results = iter_embeddings(model, waveforms(), window=window, duration=duration, step=step, batch_size=batch_size)
        for uri, embeddings in tqdm(results, total=len(todo), desc="Embedding", unit="file", disable=not progress):
            data = getattr(embeddings, "data", embeddings)  # SlidingWindowFeature or (dimension, ) array
            data = np.asarray(data, dtype=np.float32).reshape(-1, model.dimension)
            save_npy(output_dir / paths[uri], data)
            index[uri] = {"uri": uri, "path": paths[uri], "duration": f"{durations[uri]:.3f}", "rows": len(data)}
            computed += 1
    finally:
        index_path = write_index(output_dir, index)
    return {"computed": computed, "skipped": skipped, "index": str(index_path), "output": str(output_dir)}
