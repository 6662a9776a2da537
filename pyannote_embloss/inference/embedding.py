"""Embedding extraction: one embedding per file, or one per sliding window

The one place where audio becomes embeddings: training-time validation,
``evaluate``, ``apply``, :func:`pyannote_embloss.load` and the diarization
tools all go through :func:`iter_embeddings`, with a :class:`Window` saying
what to embed.

>>> window = Window("sliding").resolve(model)          # training chunk duration, quarter step
>>> for key, embeddings in iter_embeddings(model, [("a", waveform)], window): ...
>>> matrix = embed_files(model, ["1.wav", "2.wav"])   # (2, dimension), whole files

Batching never changes what is embedded: a forward pass takes waveforms of
exactly the same number of samples (whole files of equal length, equal pieces
of long files, sliding windows), never padded or cropped ones. Padding would
change the embeddings (the log-mel front-end's mean normalisation, SincNet's
instance norms and statistics pooling would see the padded frames), and the
architectures have no mask. :func:`embed_files` embeds its files sorted by
duration, so that those of equal length share forward passes; the embeddings
are those of one-by-one extraction to float rounding (below 1e-5,
tests/test_embedding.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from pyannote.core import SlidingWindow, SlidingWindowFeature
from tqdm import tqdm

from ..data.audio import load_audio
from ..errors import AudioDecodingError, ConfigError

if TYPE_CHECKING:  # a type only: embeddings read from a cache need no model, nor pyannote.audio
    from pyannote.audio.core.model import Model

__all__ = [
    "Window",
    "WINDOWS",
    "MAX_PIECE_DURATION",
    "DEFAULT_BATCH_SIZE",
    "check_device",
    "LongAudio",
    "open_audio",
    "load_utterance",
    "iter_embeddings",
    "embed_files",
    "embed_waveform",
    "DeferredModel",
]

#: files longer than this (seconds) are embedded piece-wise to bound memory
MAX_PIECE_DURATION = 60.0

WINDOWS = ("whole", "sliding")

#: default number of waveforms (or pieces, or windows) embedded per forward pass
DEFAULT_BATCH_SIZE = 32


def check_device(device: Union[str, torch.device]) -> torch.device:
    """The torch device named `device` ("cpu", "cuda", "cuda:1", "mps"...), checked to be usable here

    Raises
    ------
    ConfigError
        On a name torch does not know, or a device this machine does not have
        (e.g. "cuda" without a GPU, or without a CUDA build of torch).
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"Unknown device {str(device)!r}: use cpu, cuda, cuda:N or mps.") from None
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = "a CUDA build" if torch.backends.cuda.is_built() else "a CPU-only build"
            raise ConfigError(
                f"Device '{device}' is not available: this machine has no usable CUDA GPU (torch {torch.__version__}, "
                f"{build}). Use --device cpu."
            )
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(
                f"Device '{device}' is not available: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}."
            )
        return resolved
    if resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"Device '{device}' is not available: MPS needs an Apple silicon Mac. Use --device cpu.")
        return resolved
    try:
        torch.empty(1, device=resolved)
    except Exception as error:  # e.g. xpu without its runtime
        raise ConfigError(f"Device '{device}' is not available ({type(error).__name__}: {error}). Use --device cpu.") from None
    return resolved


@dataclass(frozen=True)
class Window:
    """What to embed: whole files, or sliding windows

    Parameters
    ----------
    kind : {"whole", "sliding"}, optional
        One embedding per file (default), or one per sliding window.
    duration : float, optional
        Sliding window duration, in seconds. Defaults (see :meth:`resolve`)
        to the duration of the model's training chunks.
    step : float, optional
        Sliding window step, in seconds. Defaults to a quarter of `duration`.

    Raises
    ------
    ConfigError
        On an unknown kind, a duration or step given for whole files, or a
        non-positive duration or step.
    """

    kind: str = "whole"
    duration: Optional[float] = None
    step: Optional[float] = None

    def __post_init__(self):
        if self.kind not in WINDOWS:
            raise ConfigError(f"Unknown window '{self.kind}': use one of {', '.join(WINDOWS)}.")
        if self.kind == "whole" and (self.duration is not None or self.step is not None):
            raise ConfigError(
                "A window duration and step are sliding window options: do not set them for whole files "
                "(use --window sliding)."
            )
        for name in ("duration", "step"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"The sliding window {name} must be positive (got {value}).")

    @property
    def is_resolved(self) -> bool:
        return self.kind == "whole" or (self.duration is not None and self.step is not None)

    def resolve(self, model: Model) -> "Window":
        """This window, with the default duration and step of `model`

        Raises
        ------
        ConfigError
            When a sliding window has no duration and the model has no
            training specifications to take it from.
        """
        if self.is_resolved:
            return self
        duration = self.duration
        if duration is None:
            from pyannote.audio.core.task import UnknownSpecificationsError

            try:
                duration = float(model.specifications.duration)
            except (AttributeError, UnknownSpecificationsError):
                raise ConfigError(
                    f"{type(model).__name__} has no training specifications (it was not loaded from a "
                    "checkpoint): pass the sliding window duration."
                ) from None
        return replace(self, duration=float(duration), step=float(self.step or duration / 4))

    def positions(self, model: Model, num_samples: int) -> tuple[list[int], int, SlidingWindow]:
        """Positions of the sliding windows over `num_samples` samples

        Returns
        -------
        starts : list of int
            First sample of each window.
        size : int
            Number of samples of each window; a waveform shorter than the
            window gets a single window covering it.
        frames : SlidingWindow
            The windows, in seconds, starting at 0.
        """
        window = self.resolve(model)
        size = model.audio.get_num_samples(window.duration)
        hop = max(1, model.audio.get_num_samples(window.step))
        if num_samples <= size:
            starts, size = [0], num_samples
        else:
            starts = list(range(0, num_samples - size + 1, hop))
        sr = model.audio.sample_rate
        return starts, size, SlidingWindow(start=0.0, duration=size / sr, step=hop / sr)

    def settings(self) -> dict:
        """JSON-able description"""
        return {"window": self.kind, "duration": self.duration, "step": self.step}


def as_window(window: Union[str, Window, None]) -> Window:
    """A :class:`Window` from a window or its kind"""
    if window is None:
        return Window()
    if isinstance(window, Window):
        return window
    return Window(window)


def _materialize(piece) -> torch.Tensor:
    return piece.load() if isinstance(piece, LazyPiece) else piece


def _release_memory() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``; a no-op elsewhere)

    Decoding a block and embedding it allocate and free tens of megabytes; without
    trimming, glibc's heap fragments and the resident memory of a one-hour file
    grows by ~400 MB over the file (measured by ``benchmarks/inference.py --parts long``).
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


class LongAudio:
    """A long audio file read block by block, as a (channel, sample) "waveform" for :func:`iter_embeddings`

    Slicing it (``audio[:, start:end]``) returns a :class:`LazyPiece`,
    decoded only when its batch is embedded; the last two decoded blocks
    are kept, so that consecutive windows are decoded once. Memory is set by
    the block length, not by the file's.

    Parameters
    ----------
    model : Model
        Gives the audio reader (sample rate, downmixing).
    path : str
        Audio file.
    duration : float
        Its duration, in seconds (from the header).
    block : float, optional
        Decoded block duration, in seconds. Defaults to :data:`MAX_PIECE_DURATION`.
    """

    def __init__(self, model: Model, path: str, duration: float, block: float = MAX_PIECE_DURATION):
        self.audio = model.audio
        self.path = str(path)
        self.num_samples = model.audio.get_num_samples(duration)
        self.block = model.audio.get_num_samples(block)
        self._cache: dict = {}

    @property
    def shape(self) -> tuple:
        return (1, self.num_samples)

    def __getitem__(self, index) -> "LazyPiece":
        _, samples = index
        start, stop, _ = samples.indices(self.num_samples)
        return LazyPiece(self, start, stop)

    def _block(self, b: int) -> torch.Tensor:
        if b not in self._cache:
            from pyannote.core import Segment

            start, stop = b * self.block, min(self.num_samples, (b + 1) * self.block)
            sr = self.audio.sample_rate
            self._cache[b] = load_audio(self.audio, self.path, Segment(start / sr, stop / sr), num_samples=stop - start)
            for old in sorted(self._cache)[:-2]:
                del self._cache[old]
        return self._cache[b]

    def check(self) -> None:
        """Decode the whole file once, block by block (raises AudioDecodingError naming it)"""
        for b in range(-(-self.num_samples // self.block)):
            self._block(b)

    def read(self, start: int, stop: int) -> torch.Tensor:
        parts = []
        for b in range(start // self.block, (max(start, stop - 1)) // self.block + 1):
            block = self._block(b)
            offset = b * self.block
            parts.append(block[:, max(0, start - offset) : stop - offset])
        return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class LazyPiece:
    """Samples [start, stop) of a :class:`LongAudio`, decoded on demand"""

    source: LongAudio
    start: int
    stop: int

    @property
    def shape(self) -> tuple:
        return (1, self.stop - self.start)

    def load(self) -> torch.Tensor:
        return self.source.read(self.start, self.stop)


#: files longer than this (seconds) are read block by block (:class:`LongAudio`)
LONG_FILE_DURATION = 2 * MAX_PIECE_DURATION


#: a segment that ends less than this before the end of its file (seconds) stands for the whole file
#: (protocol annotations are rounded down to the millisecond)
WHOLE_FILE_TOLERANCE = 0.0015


def open_audio(model: Model, path: str, segment: Optional[tuple] = None, duration: Optional[float] = None):
    """An utterance's waveform: a whole file, or a segment of it

    Parameters
    ----------
    model : Model
        Gives the audio reader (sample rate, downmixing).
    path : str
        Audio file.
    segment : (start, end), optional
        Segment of the file, in seconds. Defaults to the whole file; a segment
        that covers the file (to the millisecond) is the whole file.
    duration : float, optional
        The file's duration, when already read from its header.

    Returns
    -------
    waveform : (channel, sample) torch.Tensor, or LongAudio
        A long whole file (more than :data:`LONG_FILE_DURATION`) is a
        :class:`LongAudio`, read block by block.
    """
    from ..data.audio import audio_duration

    if duration is None:
        duration = audio_duration(path)
    excerpt = audio_segment(segment, duration)
    if excerpt is not None:
        return load_audio(model.audio, str(path), excerpt)
    if duration > LONG_FILE_DURATION:
        return LongAudio(model, path, duration)
    return load_audio(model.audio, str(path))


def load_utterance(
    model: Model, path: str, segment: Optional[tuple] = None, duration: Optional[float] = None
) -> torch.Tensor:
    """An utterance's waveform in memory: the whole file, or its `segment` (as in :func:`open_audio`)"""
    from ..data.audio import audio_duration

    if segment is None:
        excerpt = None
    else:
        excerpt = audio_segment(segment, audio_duration(path) if duration is None else duration)
    return load_audio(model.audio, str(path), excerpt)


def audio_segment(segment: Optional[tuple], duration: float):
    """The pyannote.core Segment to load from a file of `duration` seconds, or None for the whole file"""
    from pyannote.core import Segment

    if segment is None:
        return None
    start, end = segment
    if start <= 0 and end >= duration - WHOLE_FILE_TOLERANCE:
        return None
    return Segment(max(0.0, start), min(end, duration))


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
    window: Union[str, Window] = "whole",
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_piece_duration: float = MAX_PIECE_DURATION,
) -> Iterator[tuple[Any, Union[np.ndarray, SlidingWindowFeature]]]:
    """Embed many waveforms, in batches

    Whole waveforms are cut into pieces of at most `max_piece_duration`
    (equal lengths, embedded together) and their embeddings averaged,
    weighted by duration, so that memory does not grow with file length.
    A forward pass takes pieces (or sliding windows) of exactly the same
    number of samples, from one waveform or several (whole waveforms of
    equal length share one), never padded: a waveform's embedding is the
    same, to float rounding (below 1e-5), whatever it is batched with.
    Waveforms of equal length share batches when they come close together
    (:func:`embed_files` sorts its files by duration for that).

    Parameters
    ----------
    model : Model
        Embedding model, in eval mode.
    waveforms : iterable of (key, (channel, sample) torch.Tensor)
        Waveforms to embed, with any key identifying them.
    window : Window or {"whole", "sliding"}, optional
        Defaults to whole waveforms.
    batch_size : int, optional
        Maximum number of pieces embedded at once, and how many are gathered
        before embedding them. Defaults to :data:`DEFAULT_BATCH_SIZE`; 1
        embeds each piece alone.
    max_piece_duration : float, optional
        In seconds. Defaults to 60.

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
    window = as_window(window).resolve(model)
    piece = model.audio.get_num_samples(max_piece_duration)

    def make_job(key, waveform) -> _Job:
        if isinstance(waveform, torch.Tensor):
            waveform = waveform.to(model.device)
        num_samples = waveform.shape[-1]
        if window.kind == "sliding":
            starts, size, frames = window.positions(model, num_samples)
            pieces = [waveform[:, s : s + size] for s in starts]
            return _Job(key, pieces, np.ones(len(pieces)), frames)
        num_pieces = max(1, -(-num_samples // piece))
        bounds = np.linspace(0, num_samples, num_pieces + 1).round().astype(int)
        pieces = [waveform[:, s:e] for s, e in zip(bounds[:-1], bounds[1:])]
        return _Job(key, pieces, np.diff(bounds).astype(np.float64), None)

    def run(jobs: list) -> Iterator:
        groups: dict = {}
        for job in jobs:
            job.outputs = [None] * len(job.pieces)
            for p, tensor in enumerate(job.pieces):
                # pieces of exactly equal size share batches, within a waveform and across waveforms:
                # never padded, so that an embedding does not depend on what it is batched with
                groups.setdefault(tuple(tensor.shape), []).append((job, p))
        for items in groups.values():
            # at most `piece` samples (60 s of audio) per forward pass: memory does not grow with file length
            job, p = items[0]
            size = max(1, min(batch_size, piece // max(1, job.pieces[p].shape[-1])))
            for i in range(0, len(items), size):
                batch = items[i : i + size]
                waveforms = torch.stack([_materialize(job.pieces[p]).to(model.device) for job, p in batch])
                embeddings = model(waveforms).float().cpu().numpy()
                for (job, p), embedding in zip(batch, embeddings):
                    job.outputs[p] = embedding
                if any(isinstance(job.pieces[p], LazyPiece) for job, p in batch):
                    _release_memory()  # long files: memory bounded by the block, not the file
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


def embed_waveform(
    model: Model,
    waveform: torch.Tensor,
    window: Union[str, Window] = "whole",
    start: float = 0.0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Union[np.ndarray, SlidingWindowFeature]:
    """Embedding(s) of one (channel, sample) waveform

    Parameters
    ----------
    model : Model
        Embedding model, in eval mode.
    waveform : (channel, sample) torch.Tensor
    window : Window or {"whole", "sliding"}, optional
        Defaults to the whole waveform.
    start : float, optional
        Time of the first sample (e.g. the start of an excerpt), for the
        timing of sliding windows. Defaults to 0.
    batch_size : int, optional
        Number of windows embedded at once.

    Returns
    -------
    embeddings : (dimension, ) np.ndarray or (num_windows, dimension) SlidingWindowFeature
    """
    ((_, embeddings),) = iter_embeddings(model, [(None, waveform)], window=window, batch_size=batch_size)
    if isinstance(embeddings, SlidingWindowFeature) and start:
        frames = embeddings.sliding_window
        return SlidingWindowFeature(
            embeddings.data, SlidingWindow(start=start, duration=frames.duration, step=frames.step)
        )
    return embeddings


class DeferredModel:
    """A model loaded only when an embedding has to be computed

    A second ``evaluate`` reads every embedding from the cache: it then loads
    no model (nor imports pyannote.audio and Lightning, seconds of a run that
    otherwise takes a few). :func:`embed_files` takes it in place of a model.

    Parameters
    ----------
    load : callable
        load() -> Model, called at most once.
    dimension : int
        Dimension of the model's embeddings (from its card in the cache:
        :meth:`~pyannote_embloss.inference.cache.EmbeddingCache.for_checkpoint`).
    """

    def __init__(self, load: Callable[[], "Model"], dimension: int):
        self._load, self.dimension, self._model = load, dimension, None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def get(self) -> "Model":
        """The model, loaded at the first call"""
        if self._model is None:
            self._model = self._load()
        return self._model


def embed_files(
    model: Union[Model, DeferredModel],
    paths: Sequence[str],
    progress: bool = True,
    desc: str = "Embedding",
    transform: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
    segments: Optional[Sequence] = None,
    cache=None,
    conditions: Optional[Sequence[str]] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Embeddings of audio files, whole or segments of them

    The files to embed (those not in `cache`) are embedded sorted by
    duration, so that utterances of exactly the same number of samples share
    forward passes (:func:`iter_embeddings`); the others are embedded alone,
    never padded. On the model's device (``model.to(device)``).

    Parameters
    ----------
    model : Model or DeferredModel
        Embedding model (a deferred one is loaded only when an embedding is not in `cache`).
    paths : sequence of str
        Audio files.
    progress : bool, optional
        Show a progress bar. Defaults to True.
    transform : callable, optional
        transform(waveform, i) -> waveform, applied to the i-th file once
        loaded (e.g. a test condition's corruption).
    segments : sequence of (start, end) or None, optional
        Segment of each file to embed (None or NaN: the whole file), as in
        :meth:`pyannote_embloss.evaluation.trials.Trials.segments`. Defaults
        to whole files.
    cache : EmbeddingCache, optional
        Embeddings of `model` already computed (:mod:`pyannote_embloss.inference.cache`):
        those found are read, the others computed and stored.
    conditions : sequence of str, optional
        With `transform`: what identifies the transform of each file (its
        test condition, seed and name), for the cache. Without it, a
        transformed file is never cached.
    batch_size : int, optional
        At most this many utterances per forward pass. Defaults to
        :data:`DEFAULT_BATCH_SIZE`; 1 embeds the files one by one, in their
        order, without reading their durations first.

    Returns
    -------
    embeddings : (num_files, dimension) np.ndarray

    Raises
    ------
    AudioDecodingError
        When a file cannot be decoded, naming it.
    """
    paths = list(paths)
    embeddings = np.zeros((len(paths), model.dimension), dtype=np.float32)

    def segment_of(i):
        segment = None if segments is None else segments[i]
        return None if segment is None or np.isnan(segment[0]) else segment

    keys: list = [None] * len(paths)
    todo = list(range(len(paths)))
    if cache is not None and (transform is None or conditions is not None):
        todo = []
        for i, path in enumerate(paths):
            keys[i], found = cache.find(path, model.dimension, segment_of(i), None if transform is None else conditions[i])
            if found is not None:
                embeddings[i] = found
            else:
                todo.append(i)
    if not todo:
        return embeddings
    if isinstance(model, DeferredModel):
        model = model.get()
    model.eval()

    durations: dict = {}
    if batch_size > 1 and len(todo) > 1:
        todo = _by_duration(todo, paths, segment_of, durations)

    def waveforms():
        for i in tqdm(todo, desc=desc, unit="file", disable=not progress):
            if transform is None:
                yield i, open_audio(model, str(paths[i]), segment_of(i), duration=durations.get(i))
            else:
                yield i, transform(load_utterance(model, str(paths[i]), segment_of(i), duration=durations.get(i)), i)

    for i, embedding in iter_embeddings(model, waveforms(), window="whole", batch_size=batch_size):
        embeddings[i] = embedding
        if keys[i] is not None:
            cache.put(keys[i], embedding)
    return embeddings


def _by_duration(todo: list, paths: Sequence, segment_of: Callable, durations: dict) -> list:
    """`todo` sorted by utterance duration (files whose header cannot be read last); fills `durations` {i: file duration}

    The header is what :func:`open_audio` reads anyway: given its duration, it does not read it again.
    """
    from ..data.audio import audio_duration

    lengths = {}
    for i in todo:
        try:
            durations[i] = audio_duration(paths[i])
        except AudioDecodingError:  # decoding it raises, naming it, once the others are embedded
            lengths[i] = math.inf
            continue
        excerpt = audio_segment(segment_of(i), durations[i])
        lengths[i] = durations[i] if excerpt is None else excerpt.duration
    return sorted(todo, key=lambda i: (lengths[i], i))
