"""Audio files: loading, durations from headers, directories of audio, with errors that name the file"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import torch
from pyannote.core import Segment
from tqdm import tqdm

from ..errors import AudioDecodingError, DataError, MissingFileError
from ..io import AUDIO_EXTENSIONS, PathLike

if TYPE_CHECKING:  # a type only: importing pyannote.audio costs seconds, and reading headers needs none of it
    from pyannote.audio.core.io import Audio

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioDecodingError",
    "audio_directory_files",
    "audio_duration",
    "check_audio",
    "load_audio",
    "read_durations",
]

#: extensions of the audio files found in a directory (case-insensitive)


def load_audio(
    audio: Audio,
    path: str,
    segment: Optional[Segment] = None,
    num_samples: Optional[int] = None,
) -> torch.Tensor:
    """Load a whole file, or an excerpt, as a (channel, sample) tensor

    Parameters
    ----------
    audio : pyannote.audio.core.io.Audio
        Audio reader (sets sample rate and downmixing).
    path : str
        Path to the audio file.
    segment : Segment, optional
        Excerpt to load. Defaults to the whole file.
    num_samples : int, optional
        Exact number of samples expected for `segment`; the excerpt is
        zero-padded or truncated to that size (avoids off-by-one chunk sizes).

    Returns
    -------
    waveform : (channel, sample) torch.Tensor

    Raises
    ------
    AudioDecodingError
        When the file is missing or cannot be decoded, naming the file.
    """
    try:
        if segment is None:
            waveform, _ = audio({"audio": path})
        else:
            waveform, _ = audio.crop({"audio": path}, segment, mode="pad")
    except Exception as e:
        raise AudioDecodingError(
            f"Could not decode audio file '{path}' ({type(e).__name__}: {e}). "
            "Check that the file exists and is a valid audio file (FFmpeg must be able to read it), "
            "or remove it from the protocol."
        ) from e

    if waveform.shape[-1] == 0:
        raise AudioDecodingError(f"Audio file '{path}' is empty (0 samples).")

    if num_samples is not None and waveform.shape[1] != num_samples:
        if waveform.shape[1] > num_samples:
            waveform = waveform[:, :num_samples]
        else:
            waveform = torch.nn.functional.pad(
                waveform, (0, num_samples - waveform.shape[1])
            )
    return waveform


def audio_duration(path: PathLike) -> float:
    """Duration in seconds of an audio file, from its header (torchcodec)

    Parameters
    ----------
    path : str or Path
        Audio file.

    Returns
    -------
    duration : float
        Duration in seconds (decoded when the header does not tell).

    Raises
    ------
    AudioDecodingError
        When the file cannot be read or is empty, naming it.
    """
    from torchcodec.decoders import AudioDecoder

    try:
        duration = AudioDecoder(str(path)).metadata.duration_seconds_from_header
        if not duration:
            duration = AudioDecoder(str(path)).get_all_samples().duration_seconds
    except Exception as error:  # torchcodec raises RuntimeError/ValueError
        raise AudioDecodingError(
            f"Could not decode audio file '{path}' (reading its duration: {error}). "
            "Check that the file is a valid audio file (FFmpeg must be able to read it), or remove it."
        ) from error
    if not duration or duration <= 0:
        raise AudioDecodingError(f"'{path}' is empty.")
    return float(duration)


def _read_cache(cache: Path) -> Dict[str, float]:
    durations: Dict[str, float] = {}
    if not cache.is_file():
        return durations
    with open(cache) as f:
        for line in f:
            path, tab, value = line.rstrip("\n").rpartition("\t")
            if not tab:
                continue  # a line cut by an interruption
            try:
                durations[path] = float(value)
            except ValueError:
                continue
    return durations


def read_durations(
    paths: Sequence[PathLike],
    num_workers: Optional[int] = None,
    cache: Optional[PathLike] = None,
    progress: bool = True,
    desc: str = "Reading durations",
) -> List[float]:
    """Durations of many audio files, read from their headers in parallel

    Parameters
    ----------
    paths : sequence of str or Path
        Audio files.
    num_workers : int, optional
        Number of threads reading headers (FFmpeg releases the GIL while it
        reads). Defaults to 4 per CPU, at most 32: header reads wait on the disk.
    cache : str or Path, optional
        Tab-separated "path, duration" file. Durations found there are not read
        again, and new ones are appended as they come (flushed every 1,000),
        so that an interrupted run resumes where it stopped.
    progress : bool, optional
        Show a progress bar. Defaults to True.

    Returns
    -------
    durations : list of float
        In the order of `paths`.

    Raises
    ------
    AudioDecodingError
        When files cannot be read: the message gives their number and the
        first few (all the others are read, and cached, first).
    """
    keys = [str(path) for path in paths]
    known = _read_cache(Path(cache)) if cache is not None else {}
    todo = sorted(set(keys) - set(known))
    errors: List[Tuple[str, str]] = []
    if todo:
        workers = num_workers or min(32, 4 * (os.cpu_count() or 1))
        out = None
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            out = open(cache, "a")
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = pool.map(_duration_or_error, todo, chunksize=64)
                for n, (path, (duration, error)) in enumerate(
                    zip(todo, tqdm(results, total=len(todo), desc=desc, unit="file", disable=not progress))
                ):
                    if error is not None:
                        errors.append((path, error))
                        continue
                    known[path] = duration
                    if out is not None:
                        out.write(f"{path}\t{duration!r}\n")
                        if n % 1000 == 999:
                            out.flush()
        finally:
            if out is not None:
                out.close()
    if errors:
        raise AudioDecodingError(
            f"Could not read the duration of {len(errors)} audio file(s), e.g.:\n"
            + "\n".join(f" - {error}" for _, error in errors[:5])
            + "\nFix or remove them, or leave them out with `pyannote-audio-emb prepare ... --check-audio --exclude-bad`."
        )
    return [known[key] for key in keys]


def _duration_or_error(path: str) -> Tuple[Optional[float], Optional[str]]:
    try:
        return audio_duration(path), None
    except AudioDecodingError as error:
        return None, str(error)


#: how much shorter than its header a file may decode (MP3 and AAC headers are approximate)
HEADER_TOLERANCE = 0.1  # seconds, or this share of the header's duration when larger
HEADER_TOLERANCE_SHARE = 0.02


def _decode_or_error(path: str) -> Tuple[Optional[float], Optional[str]]:
    """(seconds that decode, None), or (None, why the file is bad): unreadable, empty, or shorter than its header"""
    from torchcodec.decoders import AudioDecoder

    try:
        header = audio_duration(path)
        samples = AudioDecoder(path).get_all_samples()
    except AudioDecodingError as error:
        return None, str(error)
    except Exception as error:  # torchcodec raises RuntimeError/ValueError on a damaged body
        return None, f"Could not decode audio file '{path}' ({type(error).__name__}: {error})."
    decoded = samples.data.shape[-1] / samples.sample_rate
    if decoded <= 0:
        return None, f"Audio file '{path}' is empty (0 samples)."
    if decoded < header - max(HEADER_TOLERANCE, HEADER_TOLERANCE_SHARE * header):
        return None, (
            f"'{path}' decodes {decoded:.2f} s of the {header:.2f} s its header gives: it is truncated or damaged."
        )
    return decoded, None


def check_audio(
    paths: Sequence[PathLike], num_workers: Optional[int] = None, progress: bool = True
) -> Tuple[Dict[str, str], Dict[str, float]]:
    """Decode every file once (in parallel): the files that fail, with why, and what the others last

    A file fails when its header cannot be read, its body does not decode, it
    is empty, or it decodes shorter than its header says (a truncated or
    damaged body: more than 0.1 s or 2 % shorter).

    Parameters
    ----------
    paths : sequence of str or Path
    num_workers : int, optional
        Decoding threads. Defaults to the number of CPUs.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    failures : dict
        {path: error message} of the files that could not be decoded (empty when all are fine).
    durations : dict
        {path: seconds decoded} of the others.
    """
    keys = sorted({str(path) for path in paths})
    failures: Dict[str, str] = {}
    durations: Dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=num_workers or os.cpu_count() or 1) as pool:
        results = pool.map(_decode_or_error, keys, chunksize=16)
        for path, (duration, error) in zip(keys, tqdm(results, total=len(keys), desc="Checking audio", unit="file", disable=not progress)):
            if error is not None:
                failures[path] = error
            else:
                durations[path] = duration
    return failures, durations


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
    MissingFileError
        When `directory` does not exist or has no audio file.
    DataError
        When two files give the same uri (e.g. a.wav and a.flac).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise MissingFileError(f"Audio directory '{directory}' does not exist.")
    files: Dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        if path.suffix.lower() not in AUDIO_EXTENSIONS or not path.is_file():
            continue
        uri = path.relative_to(directory).with_suffix("").as_posix()
        if uri in files:
            raise DataError(f"'{files[uri]}' and '{path}' have the same uri '{uri}': rename one of them.")
        files[uri] = str(path)
    if not files:
        raise MissingFileError(
            f"No audio file ({', '.join(AUDIO_EXTENSIONS)}) in '{directory}' nor its subfolders."
        )
    return sorted(files.items())
