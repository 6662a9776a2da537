"""Embed many audio files with a trained experiment and save the embeddings

    pyannote-audio-emb apply EXPERIMENT_DIR (PROTOCOL --subset S | AUDIO_DIR) --output OUTPUT

writes, in OUTPUT::

    <uri>.npy          (rows, dimension) float32 embeddings of each file: one row
                       (whole file) or one per sliding window. A uri with "/"
                       gives subfolders.
    index.csv          uri, path (of the .npy, relative to OUTPUT), duration (s), rows
    embeddings.json    settings: checkpoint (and its sha256), window, duration, step
    failed.csv         with --skip-errors: uri, path, error of the files that failed to decode

Every file is written atomically. Running the command again resumes: files
whose .npy exists are skipped (and kept in the index), provided the settings
are the same.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

from ..data.audio import AudioDecodingError, audio_duration
from .embedding import LongAudio, Window, iter_embeddings, open_audio
from ..errors import ConfigError, DataError, OutputExistsError
from ..io import PathLike, atomic_path, atomic_write_text
from ..lock import OutputLock

INDEX = "index.csv"
SETTINGS = "embeddings.json"
FAILED = "failed.csv"
INDEX_COLUMNS = ("uri", "path", "duration", "rows")


def protocol_files(protocol: str, subset: str = "test", database: Optional[PathLike] = None) -> List[Tuple[str, str]]:
    """Files of a protocol subset, with their uri

    Parameters
    ----------
    protocol : str
        pyannote.database protocol name.
    subset : {"train", "development", "test"}, optional
        Defaults to "test".
    database : str or Path, optional
        database.yml (see `pyannote_embloss.data.protocols.get_protocol`).

    Returns
    -------
    files : list of (uri, path)
        Sorted by uri, each uri once.
    """
    from ..data.protocols import get_protocol

    subsets = ("train", "development", "test")
    if subset not in subsets:
        raise ConfigError(f"Unknown subset '{subset}': choose one of {', '.join(subsets)}.")
    files: Dict[str, str] = {}
    for file in getattr(get_protocol(protocol, database_yml=database), subset)():
        files.setdefault(str(file["uri"]), str(file["audio"]))
    if not files:
        raise DataError(f"Protocol {protocol} has no {subset} files.")
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
        raise DataError(f"uri '{uri}' cannot be used as a relative file path (absolute, empty, or with '..').")
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
            raise OutputExistsError(
                f"'{output_dir}' holds embeddings computed with other settings ("
                + ", ".join(f"{k}: {previous.get(k)!r} then, {settings.get(k)!r} now" for k in different)
                + "): choose another output directory, or pass --overwrite to recompute every file."
            )


def apply(
    model,
    files: Iterable[Tuple[str, str]],
    output_dir: PathLike,
    window: Union[str, Window] = "whole",
    batch_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint: Optional[PathLike] = None,
    skip_errors: bool = False,
    cache=None,
) -> dict:
    """Embed `files` and save one .npy per file, with an index

    Parameters
    ----------
    model : Model
        Embedding model.
    files : iterable of (uri, path)
        Audio files (see :func:`protocol_files`, :func:`pyannote_embloss.data.audio.audio_directory_files`).
    output_dir : str or Path
    window : Window or {"whole", "sliding"}, optional
        One embedding per file (default), or one per sliding window (whose
        duration and step default to the model's training chunk duration and
        a quarter of it).
    batch_size : int, optional
        Number of pieces (windows, files of equal length) embedded at once.
    overwrite : bool, optional
        Recompute files whose .npy exists. Defaults to resuming (skip them).
    progress : bool, optional
        Show a progress bar.
    checkpoint : str or Path, optional
        Checkpoint of `model`, recorded in embeddings.json (with its sha256).
    skip_errors : bool, optional
        Files that fail to decode are listed in `failed.csv` (uri, path,
        error) and the others embedded. Defaults to False: the first bad file
        stops the run, with its name.
    cache : EmbeddingCache, optional
        With whole files: the embeddings `model` already gave (the
        experiment's ``EXP/embeddings``, filled by ``evaluate``, ``verify``,
        ``score`` or an earlier ``apply``, :mod:`pyannote_embloss.inference.cache`)
        are read instead of computed, and the computed ones are stored there.
        Ignored with sliding windows.

    Returns
    -------
    summary : dict
        "computed", "cached" (read from `cache`), "skipped" (already done)
        and "failed" numbers of files, "index" path, and "failed_csv" when
        files failed.

    Raises
    ------
    AudioDecodingError
        When a file cannot be decoded (without `skip_errors`), naming it.
        Files embedded before are saved and indexed first.
    DataError
        When the model gives a non-finite embedding (never written).
    LockedError
        When another process writes into `output_dir`.
    """
    with OutputLock(output_dir, "apply"):
        return _apply(model, files, output_dir, window, batch_size, overwrite, progress, checkpoint, skip_errors, cache)


def _apply(model, files, output_dir, window, batch_size, overwrite, progress, checkpoint, skip_errors, cache) -> dict:
    output_dir = Path(output_dir)
    files = list(files)
    paths = {uri: npy_path(uri) for uri, _ in files}

    model.eval()
    window = (window if isinstance(window, Window) else Window(window)).resolve(model)
    settings = {
        "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
        "checkpoint_sha256": None if checkpoint is None else file_sha256(checkpoint),
        **window.settings(),
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
            rows = np.load(output_dir / paths[uri], mmap_mode="r").shape[0]
            index[uri] = _index_row(uri, paths[uri], audio_duration(Path(path)), rows)

    keys: Dict[str, str] = {}
    cached = 0
    if cache is not None and window.kind == "whole":
        todo, found, keys = _from_cache(cache, todo, model.dimension)
        for uri, (path, embedding) in found.items():
            save_npy(output_dir / paths[uri], embedding[np.newaxis])
            index[uri] = _index_row(uri, paths[uri], audio_duration(Path(path)), 1)
        cached = len(found)

    durations: Dict[str, float] = {}
    failed: List[Tuple[str, str, str]] = []

    def waveforms() -> Iterator:
        for uri, path in todo:
            try:
                waveform = open_audio(model, path)
                if skip_errors and isinstance(waveform, LongAudio):
                    waveform.check()  # long files are decoded block by block, later: find errors now
            except AudioDecodingError as error:
                if not skip_errors:
                    raise
                failed.append((uri, path, str(error)))
                continue
            durations[uri] = waveform.shape[-1] / model.audio.sample_rate
            yield uri, waveform

    computed = 0
    try:
        results = iter_embeddings(model, waveforms(), window=window, batch_size=batch_size)
        for uri, embeddings in tqdm(results, total=len(todo), desc="Embedding", unit="file", disable=not progress):
            data = getattr(embeddings, "data", embeddings)  # SlidingWindowFeature or (dimension, ) array
            data = np.asarray(data, dtype=np.float32).reshape(-1, model.dimension)
            if not np.all(np.isfinite(data)):
                raise DataError(
                    f"The model gave a non-finite embedding (NaN or inf) for '{uri}': nothing was written for it. "
                    "The checkpoint is broken (e.g. training diverged): check its training."
                )
            save_npy(output_dir / paths[uri], data)
            if uri in keys:
                cache.put(keys[uri], data[0])
            index[uri] = _index_row(uri, paths[uri], durations[uri], len(data))
            computed += 1
    finally:
        index_path = write_index(output_dir, index)
        failed_csv = write_failed(output_dir, failed)
    summary = {"computed": computed, "cached": cached, "skipped": skipped, "failed": len(failed), "index": str(index_path),
               "output": str(output_dir)}
    if failed_csv is not None:
        summary["failed_csv"] = str(failed_csv)
    return summary


def _index_row(uri: str, npy: str, duration: float, rows: int) -> dict:
    """index.csv's row of a file: its .npy (relative to the output directory), duration and number of embeddings"""
    return {"uri": uri, "path": npy, "duration": f"{duration:.3f}", "rows": rows}


def _from_cache(cache, todo: List[Tuple[str, str]], dimension: int):
    """(files still to embed, {uri: (path, embedding)} found in `cache`, {uri: cache key} of those to store)"""
    remaining, found, keys = [], {}, {}
    for uri, path in todo:
        key, embedding = cache.find(path, dimension)
        if embedding is not None:
            found[uri] = (path, embedding)
            continue
        if key is not None:
            keys[uri] = key
        remaining.append((uri, path))
    return remaining, found, keys


def write_failed(output_dir: Path, failed: List[Tuple[str, str, str]]) -> Optional[Path]:
    """Write failed.csv (uri, path, error) atomically, or remove a stale one when nothing failed"""
    path = output_dir / FAILED
    if not failed:
        path.unlink(missing_ok=True)
        return None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["uri", "path", "error"])
    writer.writerows(sorted(failed))
    return atomic_write_text(path, buffer.getvalue())
