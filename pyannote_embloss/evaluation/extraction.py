"""Embedding extraction: one embedding per file, or per sliding window"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
import torch
from pyannote.audio.core.model import Model
from pyannote.core import Segment, SlidingWindow, SlidingWindowFeature
from tqdm import tqdm

from ..audio import load_audio

#: files longer than this (seconds) are embedded piece-wise to bound memory
MAX_PIECE_DURATION = 60.0


@torch.inference_mode()
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
    waveform = waveform.to(model.device)
    piece = model.audio.get_num_samples(max_piece_duration)
    num_samples = waveform.shape[-1]
    if num_samples <= piece:
        return model(waveform[None]).squeeze(0).cpu().numpy()
    num_pieces = -(-num_samples // piece)
    bounds = np.linspace(0, num_samples, num_pieces + 1).round().astype(int)
    embeddings = [model(waveform[None, :, s:e]).squeeze(0) for s, e in zip(bounds[:-1], bounds[1:])]
    lengths = torch.tensor(np.diff(bounds), dtype=torch.float32, device=model.device)
    return (torch.stack(embeddings) * lengths[:, None] / lengths.sum()).sum(0).cpu().numpy()


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

    Raises
    ------
    AudioDecodingError
        When a file cannot be decoded, naming it.
    """
    model.eval()
    paths = list(paths)
    embeddings = np.zeros((len(paths), model.dimension), dtype=np.float32)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="file", disable=not progress)):
        embeddings[i] = embed_waveform(model, load_audio(model.audio, str(path)))
    return embeddings


@torch.inference_mode()
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
    duration = duration or model.specifications.duration
    step = step or duration / 4
    waveform = load_audio(model.audio, str(path)).to(model.device)
    num_samples = waveform.shape[-1]
    window = model.audio.get_num_samples(duration)
    hop = max(1, model.audio.get_num_samples(step))
    if num_samples <= window:
        starts = [0]
        window = num_samples
    else:
        starts = list(range(0, num_samples - window + 1, hop))
    chunks = torch.stack([waveform[:, s : s + window] for s in starts])
    data = torch.cat([model(chunks[i : i + batch_size]) for i in range(0, len(chunks), batch_size)])
    sr = model.audio.sample_rate
    frames = SlidingWindow(start=0.0, duration=window / sr, step=hop / sr)
    return SlidingWindowFeature(data.cpu().numpy(), frames)


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
