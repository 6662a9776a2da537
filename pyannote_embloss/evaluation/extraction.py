"""Embedding extraction: one embedding per file, or per sliding window"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Union

import numpy as np
import torch
from pyannote.audio.core.model import Model
from pyannote.core import Segment, SlidingWindow, SlidingWindowFeature
from tqdm import tqdm

from ..audio import load_audio

#: files longer than this (seconds) are embedded piece-wise to bound memory
MAX_PIECE_DURATION = 60.0


def embed_waveform(model: Model, waveform: torch.Tensor, max_piece_duration: float = MAX_PIECE_DURATION) -> np.ndarray:
    """Embedding of a whole (channel, sample) waveform

    Waveforms longer than `max_piece_duration` are cut into pieces of at most
    that duration, and their embeddings averaged (weighted by duration).

    Parameters
    ----------
    model : Model
        Embedding model, in eval mode.
    waveform : (channel, sample) torch.Tensor
    max_piece_duration : float, optional
        In seconds. Defaults to 60.

    Returns
    -------
    embedding : (dimension, ) np.ndarray
    """
    ((_, embedding),) = iter_embeddings(model, [(None, waveform)], window="whole", max_piece_duration=max_piece_duration)
    return embedding


def embed_files(
    model: Model,
    paths: Iterable[str],
    progress: bool = True,
    desc: str = "Embedding",
) -> np.ndarray:
    """Whole-file embeddings of audio files

    Parameters
    ----------
    model : Model
        Embedding model.
    paths : iterable of str
        Audio files.
    progress : bool, optional
        Show a progress bar. Defaults to True.

    Returns
    -------
    embeddings : (num_files, dimension) np.ndarray
        Those of :func:`embed_waveform` (computed by :func:`iter_embeddings`,
        the path `apply` uses too: files of equal length share batches).

    Raises
    ------
    AudioDecodingError
        When a file cannot be decoded, naming it.
    """
    model.eval()
    paths = list(paths)
    embeddings = np.zeros((len(paths), model.dimension), dtype=np.float32)
    waveforms = (
        (i, load_audio(model.audio, str(path)))
        for i, path in enumerate(tqdm(paths, desc=desc, unit="file", disable=not progress))
    )
    for i, embedding in iter_embeddings(model, waveforms, window="whole"):
        embeddings[i] = embedding
    return embeddings


def sliding_windows(
    model: Model,
    num_samples: int,
    duration: Optional[float] = None,
    step: Optional[float] = None,
) -> tuple[list[int], int, SlidingWindow]:
    """Positions of sliding windows over `num_samples` samples

    Parameters
    ----------
    model : Model
        Embedding model (gives the sample rate and the default duration).
    num_samples : int
        Number of samples of the waveform.
    duration : float, optional
        Window duration in seconds. Defaults to the model's training chunk duration.
    step : float, optional
        Window step in seconds. Defaults to a quarter of `duration`.

    Returns
    -------
    starts : list of int
        First sample of each window.
    window : int
        Number of samples of each window; a waveform shorter than `duration`
        gets a single window covering it.
    frames : SlidingWindow
        The windows, in seconds, starting at 0.
    """
    duration = duration or model.specifications.duration
    step = step or duration / 4
    if duration <= 0 or step <= 0:
        raise ValueError(f"Window duration and step must be positive (got duration={duration}, step={step}).")
    window = model.audio.get_num_samples(duration)
    hop = max(1, model.audio.get_num_samples(step))
    if num_samples <= window:
        starts, window = [0], num_samples
    else:
        starts = list(range(0, num_samples - window + 1, hop))
    sr = model.audio.sample_rate
    return starts, window, SlidingWindow(start=0.0, duration=window / sr, step=hop / sr)


def embed_sliding_windows_waveform(
    model: Model,
    waveform: torch.Tensor,
    duration: Optional[float] = None,
    step: Optional[float] = None,
    batch_size: int = 32,
    start: float = 0.0,
) -> SlidingWindowFeature:
    """Embeddings of sliding windows over a (channel, sample) waveform

    Parameters
    ----------
    model : Model
        Embedding model, in eval mode.
    waveform : (channel, sample) torch.Tensor
    duration, step : float, optional
        See :func:`sliding_windows`.
    batch_size : int, optional
        Number of windows embedded at once. Defaults to 32.
    start : float, optional
        Time of the first sample of `waveform`, in seconds (e.g. the start of
        an excerpt). Defaults to 0.

    Returns
    -------
    embeddings : SlidingWindowFeature
        (num_windows, dimension) embeddings.
    """
    ((_, embeddings),) = iter_embeddings(
        model, [(None, waveform)], window="sliding", duration=duration, step=step, batch_size=batch_size
    )
    frames = embeddings.sliding_window
    return SlidingWindowFeature(embeddings.data, SlidingWindow(start=start, duration=frames.duration, step=frames.step))


def embed_sliding_windows(
    model: Model,
    path: str,
    duration: Optional[float] = None,
    step: Optional[float] = None,
    batch_size: int = 32,
) -> SlidingWindowFeature:
    """Embeddings of sliding windows over a file

    Parameters
    ----------
    model : Model
        Embedding model.
    path : str
        Audio file.
    duration : float, optional
        Window duration in seconds. Defaults to the model's training chunk duration.
    step : float, optional
        Window step in seconds. Defaults to a quarter of `duration`.
    batch_size : int, optional
        Number of windows embedded at once. Defaults to 32.

    Returns
    -------
    embeddings : SlidingWindowFeature
        (num_windows, dimension) embeddings; a file shorter than `duration`
        gets a single window covering it.
    """
    model.eval()
    waveform = load_audio(model.audio, str(path))
    return embed_sliding_windows_waveform(model, waveform, duration=duration, step=step, batch_size=batch_size)


@dataclass
class _Job:
    """One waveform being embedded by :func:`iter_embeddings`"""

    key: Any
    pieces: list  # (channel, sample) tensors
    weights: np.ndarray  # whole: piece durations; sliding: unused
    frames: Optional[SlidingWindow]  # sliding windows, or None for whole
    outputs: list = field(default_factory=list)


@torch.inference_mode()
def iter_embeddings(
    model: Model,
    waveforms: Iterable[tuple[Any, torch.Tensor]],
    window: str = "whole",
    duration: Optional[float] = None,
    step: Optional[float] = None,
    batch_size: int = 32,
    max_piece_duration: float = MAX_PIECE_DURATION,
) -> Iterator[tuple[Any, Union[np.ndarray, SlidingWindowFeature]]]:
    """Embed many waveforms, batching equal-length pieces across them

    Whole waveforms (cut into pieces of at most `max_piece_duration`, as
    :func:`embed_waveform` does) or sliding windows (as
    :func:`embed_sliding_windows_waveform`) of up to `batch_size` pieces are
    gathered, grouped by length and embedded in batches: sliding windows of
    different files share batches, and so do whole files of equal length.
    Results are the same as those of the one-file functions.

    Parameters
    ----------
    model : Model
        Embedding model, in eval mode.
    waveforms : iterable of (key, (channel, sample) torch.Tensor)
        Waveforms to embed, with any key identifying them.
    window : {"whole", "sliding"}, optional
        One embedding per waveform (default), or one per sliding window.
    duration, step : float, optional
        Sliding windows (see :func:`sliding_windows`).
    batch_size : int, optional
        Maximum number of pieces embedded at once. Defaults to 32.
    max_piece_duration : float, optional
        See :func:`embed_waveform`.

    Yields
    ------
    key : any
    embeddings : (dimension, ) np.ndarray or SlidingWindowFeature
        In the order of `waveforms`, as soon as they are computed.

    Notes
    -----
    When iterating over `waveforms` raises (e.g. a file cannot be decoded),
    the waveforms received before are embedded and yielded first, then the
    error is raised: no work done is lost.
    """
    if window not in ("whole", "sliding"):
        raise ValueError(f"Unknown window '{window}': use 'whole' or 'sliding'.")
    piece = model.audio.get_num_samples(max_piece_duration)

    def make_job(key, waveform: torch.Tensor) -> _Job:
        waveform = waveform.to(model.device)
        num_samples = waveform.shape[-1]
        if window == "sliding":
            starts, size, frames = sliding_windows(model, num_samples, duration, step)
            pieces = [waveform[:, s : s + size] for s in starts]
            return _Job(key, pieces, np.ones(len(pieces)), frames)
        num_pieces = max(1, -(-num_samples // piece))
        bounds = np.linspace(0, num_samples, num_pieces + 1).round().astype(int)
        pieces = [waveform[:, s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        return _Job(key, pieces, np.diff(bounds).astype(np.float64), None)

    def run(jobs: list) -> Iterator:
        by_shape: dict = {}
        for job in jobs:
            job.outputs = [None] * len(job.pieces)
            for p, tensor in enumerate(job.pieces):
                by_shape.setdefault(tuple(tensor.shape), []).append((job, p))
        for items in by_shape.values():
            for i in range(0, len(items), batch_size):
                batch = items[i : i + batch_size]
                embeddings = model(torch.stack([job.pieces[p] for job, p in batch])).cpu().numpy()
                for (job, p), embedding in zip(batch, embeddings):
                    job.outputs[p] = embedding
        for job in jobs:
            data = np.stack(job.outputs)
            if job.frames is None:
                weights = job.weights / job.weights.sum()
                yield job.key, (data * weights[:, None]).sum(axis=0).astype(np.float32)
            else:
                yield job.key, SlidingWindowFeature(data, job.frames)

    jobs, num_pieces, error = [], 0, None
    source = iter(waveforms)
    while True:
        try:
            key, waveform = next(source)
        except StopIteration:
            break
        except Exception as e:  # e.g. AudioDecodingError: embed what came before, then raise
            error = e
            break
        jobs.append(make_job(key, waveform))
        num_pieces += len(jobs[-1].pieces)
        if num_pieces >= batch_size:
            yield from run(jobs)
            jobs, num_pieces = [], 0
    yield from run(jobs)
    if error is not None:
        raise error


def embed_segment(model: Model, path: str, segment: Segment) -> np.ndarray:
    """Embedding of an excerpt of a file

    Parameters
    ----------
    model : Model
    path : str
        Audio file.
    segment : Segment
        Excerpt, in seconds.

    Returns
    -------
    embedding : (dimension, ) np.ndarray
    """
    model.eval()
    return embed_waveform(model, load_audio(model.audio, str(path), segment))
