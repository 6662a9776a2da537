"""Embeddings computed once: a cache in the experiment directory (``EXP/embeddings/``)

``evaluate`` embeds the test and development trial files, the training files
of the AS-norm cohort and of the PLDA, and each test condition's corrupted
files. With the same model, the same audio gives the same embedding: a second
``evaluate`` (another scoring, another condition, ``compare`` evaluating again)
reads them back and embeds only what is missing. ``verify``, ``score`` and
``apply`` (whole files) read and fill the same entries.

An entry's key is a digest of

* the **model**: the checkpoint file's content (SHA-256), or, for a
  training-free model, its class and hyper-parameters;
* the **extraction**: how a whole utterance becomes one embedding (the model's
  sample rate, the piece duration of long files, this module's format version,
  and the device type when it is not the CPU: a GPU's kernels, e.g. cuDNN's
  TF32 convolutions, may give embeddings farther from the CPU's than rounding). Not
  the batch size: batching embeds the same samples, never padded, and changes
  an embedding by float rounding only (below 1e-5, tests/test_embedding.py),
  so entries are shared whatever ``--batch-size`` computed them;
* the **audio**: the file's real path, size and modification time (a file
  replaced or edited gets new entries), and the segment (start, end), or the
  whole file;
* the **condition**: None for clean audio, else the test condition's name, its
  seed, its noise sources and the utterance's name (which seeds its
  corruption).

Entries are ``<key>.npy``-like files of a few hundred bytes: a magic word,
the dimension, the float32 values and a BLAKE2b checksum of all that, written
atomically (a temporary file renamed). A damaged or truncated entry is
detected by its checksum, removed, and computed again: never read as numbers.
The folder's size is bounded (``max_bytes``, oldest entries removed first)
and reported; deleting the folder is always safe.

A model loaded from a checkpoint also leaves its *card* there
(``models/<checkpoint digest>.json``: sample rate and embedding dimension), so
that :meth:`EmbeddingCache.for_checkpoint` opens the same cache without loading
the model: ``evaluate`` loads it only when an embedding is missing
(:class:`~pyannote_embloss.inference.embedding.DeferredModel`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import warnings
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..io import write_if_changed

__all__ = ["EmbeddingCache", "CACHE_DIR", "DEFAULT_MAX_BYTES", "model_digest"]

#: folder of the experiment directory holding the cache
CACHE_DIR = "embeddings"
#: bound of the cache's size: 2 GB (5 million 256-d embeddings: VoxCeleb2's 1.1 million files, 4 times over)
DEFAULT_MAX_BYTES = 2 * 1024**3
#: bump when the way an utterance is embedded changes: every entry is computed again
FORMAT_VERSION = 1
_MAGIC = b"EMBLOSS1"
_HEADER = struct.Struct("<8sI")  # magic, dimension
_CHECKSUM_SIZE = 16

#: sub-folder of the cards: {model digest}.json holds the model's sample rate and embedding dimension
_CARDS = "models"

_DIGESTS: dict = {}


def _extraction(sample_rate: int, device=None) -> dict:
    """What decides an embedding besides the model and the audio (see the module docstring)"""
    from .embedding import MAX_PIECE_DURATION

    extraction = {"sample_rate": sample_rate, "mono": "downmix", "piece": MAX_PIECE_DURATION}
    kind = None if device is None else str(getattr(device, "type", device)).split(":")[0]
    if kind not in (None, "cpu"):  # CPU keys unchanged: existing caches stay valid
        extraction["device"] = kind
    return extraction


def model_digest(checkpoint: Optional[os.PathLike], model=None) -> str:
    """SHA-256 of a checkpoint file's content (memoised by path, size and mtime); of the class and hparams without one"""
    if checkpoint is None:
        hparams = dict(getattr(model, "hparams", {}) or {})
        text = json.dumps([type(model).__module__, type(model).__qualname__, hparams], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()
    status = os.stat(checkpoint)
    memo = (os.path.realpath(checkpoint), status.st_size, status.st_mtime_ns)
    if memo not in _DIGESTS:
        digest = hashlib.sha256()
        with open(checkpoint, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


class EmbeddingCache:
    """Embeddings of one model, stored in `directory`

    Parameters
    ----------
    directory : str or Path
        The cache folder (``EXP/embeddings``); created when needed.
    model : str
        :func:`model_digest` of the model.
    extraction : dict
        What else decides an embedding (sample rate, piece duration...).
    max_bytes : int, optional
        Bound of the folder's size (:meth:`bound`). Defaults to :data:`DEFAULT_MAX_BYTES`.
    """

    def __init__(self, directory, model: str, extraction: dict, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = Path(directory)
        self.model = model
        self.max_bytes = max_bytes
        self._prefix = json.dumps(
            {"version": FORMAT_VERSION, "model": model, "extraction": extraction}, sort_keys=True
        )
        self.hits = self.misses = self.damaged = 0
        self.unwritable = False

    def __eq__(self, other) -> bool:
        """The same folder, model, extraction and bound"""
        if not isinstance(other, EmbeddingCache):
            return NotImplemented
        return (self.directory, self._prefix, self.max_bytes) == (other.directory, other._prefix, other.max_bytes)

    __hash__ = None

    @classmethod
    def for_model(cls, directory, model, checkpoint: Optional[os.PathLike], max_bytes: int = DEFAULT_MAX_BYTES):
        """The cache of `model` (loaded from `checkpoint`, or training-free) in `directory`

        With a checkpoint, the model's card (sample rate, dimension) is stored too, so that
        :meth:`for_checkpoint` finds this cache again without loading the model.
        """
        digest = model_digest(checkpoint, model)
        device = getattr(model, "device", None)
        cache = cls(directory, digest, _extraction(model.audio.sample_rate, device), max_bytes=max_bytes)
        if checkpoint is not None:
            cache._write_card(digest, {"sample_rate": int(model.audio.sample_rate), "dimension": int(model.dimension)})
        return cache

    @classmethod
    def for_checkpoint(
        cls, directory, checkpoint: os.PathLike, device=None, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> Optional[Tuple["EmbeddingCache", int]]:
        """(cache, embedding dimension) of the model `checkpoint` holds, without loading it

        None when the checkpoint cannot be read or this folder has no card of it yet (no model
        loaded from it has used this cache): then load the model and use :meth:`for_model`.
        """
        try:
            digest = model_digest(checkpoint)
            card = json.loads((Path(directory) / _CARDS / f"{digest}.json").read_text())
            sample_rate, dimension = int(card["sample_rate"]), int(card["dimension"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(directory, digest, _extraction(sample_rate, device), max_bytes=max_bytes), dimension

    def _write_card(self, digest: str, card: dict) -> None:
        """Store a model's card atomically, unless it is there already (a cache that cannot be written just has none)"""
        path = self.directory / _CARDS / f"{digest}.json"
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_if_changed(path, json.dumps(card))

    # -- keys ----------------------------------------------------------------------------------------------

    def key(self, path, segment: Optional[Tuple[float, float]] = None, condition: Optional[str] = None) -> str:
        """Hex digest of an utterance's entry: model, extraction, the file as it is now, segment, condition"""
        status = os.stat(path)
        region = None if segment is None else [round(float(segment[0]), 6), round(float(segment[1]), 6)]
        text = json.dumps(
            [self._prefix, os.path.realpath(path), status.st_size, status.st_mtime_ns, region, condition]
        )
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.emb"

    def find(
        self, path, dimension: int, segment: Optional[Tuple[float, float]] = None, condition: Optional[str] = None
    ) -> Tuple[Optional[str], Optional[np.ndarray]]:
        """(key, embedding) of an utterance: embedding None when not cached (or of another dimension), key None
        when the file cannot be read (decoding it will say why)"""
        try:
            key = self.key(path, segment, condition)
        except OSError:
            return None, None
        found = self.get(key)
        return key, (found if found is not None and found.shape == (dimension,) else None)

    # -- entries -------------------------------------------------------------------------------------------

    def get(self, key: str) -> Optional[np.ndarray]:
        """The embedding of `key`, or None when missing or damaged (a damaged entry is removed)"""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        body, checksum = data[:-_CHECKSUM_SIZE], data[-_CHECKSUM_SIZE:]
        valid = len(data) > _HEADER.size + _CHECKSUM_SIZE and hashlib.blake2b(body, digest_size=_CHECKSUM_SIZE).digest() == checksum
        if valid:
            magic, dimension = _HEADER.unpack_from(body)
            valid = magic == _MAGIC and len(body) == _HEADER.size + 4 * dimension
        if not valid:
            self.damaged += 1
            self.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return np.frombuffer(body, dtype="<f4", offset=_HEADER.size).copy()

    def put(self, key: str, embedding: np.ndarray) -> None:
        """Store `embedding` under `key`, atomically

        A cache that cannot be written (a full disk, a read-only folder) is
        not an error: the run goes on without storing, after one warning.
        """
        if self.unwritable:
            return
        values = np.ascontiguousarray(embedding, dtype="<f4").ravel()
        body = _HEADER.pack(_MAGIC, values.size) + values.tobytes()
        data = body + hashlib.blake2b(body, digest_size=_CHECKSUM_SIZE).digest()
        path = self._path(key)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as error:
            self.unwritable = True
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            warnings.warn(
                f"The embedding cache '{self.directory}' cannot be written ({error.strerror or error}): this run "
                "goes on without storing its embeddings. Free some space, or pass --no-cache.",
                stacklevel=2,
            )

    # -- size ----------------------------------------------------------------------------------------------

    def _entries(self):
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.glob("*/*.emb")]

    def size(self) -> int:
        """Bytes the cache folder holds"""
        return sum(p.stat().st_size for p in self._entries())

    def bound(self) -> int:
        """Remove the oldest entries (by modification time) until the folder holds at most `max_bytes`; bytes removed"""
        entries = [(p.stat().st_mtime_ns, p.stat().st_size, p) for p in self._entries()]
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries):
            if total - removed <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            removed += size
        return removed

    def summary(self) -> dict:
        """What this run read and wrote, and the folder's size (for the results JSON)"""
        return {
            "directory": str(self.directory),
            "hits": self.hits,
            "misses": self.misses,
            "damaged": self.damaged,
            "bytes": self.size(),
            "max_bytes": self.max_bytes,
        }
