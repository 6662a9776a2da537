"""pyannote.audio's training data preparation, in time linear in the number of files

`pyannote.audio.core.task.Task.prepare_data` (4.0.7) turns every label into
an index with ``label not in some_list`` and ``some_list.index(label)``: a
scan of every label seen so far, for every speech turn. Its time grows with
files × speakers, which is quadratic when both grow together (VoxCeleb2:
a million files of 5,994 speakers). :func:`prepare_protocol_data` builds the
very same ``prepared_data`` dictionary (same keys, same arrays, same dtypes:
tested against pyannote.audio's on a real protocol) with dictionary look-ups
instead, in time linear in the number of files and turns.

It reads each subset once when the protocol's subsets are plain lists
(:mod:`.protocol_lists`: a .lst, an .rttm and a .uem), and file by file
through pyannote.database otherwise; both give the same prepared data
(tested). ``benchmarks/prepare_scaling.py`` measures the ways side by side.
"""

from __future__ import annotations

import warnings
from array import array
from collections import defaultdict
from typing import Dict, Iterator, List

import numpy as np
from pyannote.audio.core.task import Scopes, Subsets, get_dtype

from ..errors import ConfigError, DataError
from ..data.protocols.file_record import FileRecord
from ..data.protocols.lists import SubsetLists
from ..data.protocols.rttm_uem import UnusualFile

__all__ = ["prepare_protocol_data", "subset_records"]


class _Index:
    """Values in order of first appearance, with their index in O(1)"""

    def __init__(self, values=()):
        self.values: List = list(values)
        self.position: Dict = {value: i for i, value in reversed(list(enumerate(self.values)))}

    def __call__(self, value) -> int:
        """Index of `value`, appended first when new"""
        position = self.position.get(value)
        if position is None:
            position = self.position[value] = len(self.values)
            self.values.append(value)
        return position


def subset_records(protocol, subset: str, read_lists: bool = True) -> Iterator[FileRecord]:
    """Records of the files of `protocol`'s `subset`, in order

    Parameters
    ----------
    protocol : Protocol
    subset : {"train", "development"}
    read_lists : bool, optional
        Read the subset's list files once when it is made of plain lists
        (:class:`~.protocol_lists.SubsetLists`). Defaults to True; False reads
        every file through pyannote.database.
    """
    lists = SubsetLists.of(protocol, subset) if read_lists else None
    if lists is not None:
        try:
            return lists.records(protocol)
        except UnusualFile:
            pass
    return map(FileRecord.from_protocol_file, getattr(protocol, subset)())


def _column(typecode: str, values=()) -> array:
    return array(typecode, values)


def _numpy(column: array) -> np.ndarray:
    return np.frombuffer(column, dtype=np.int64 if column.typecode == "q" else np.float64).copy()


def _structured(columns: Dict[str, array], dtype: list) -> np.ndarray:
    """Structured array of `dtype` from one column per field"""
    first = next(iter(columns.values()))
    structured = np.empty(len(first), dtype=dtype)
    for name, column in columns.items():
        structured[name] = np.frombuffer(column, dtype=np.int64 if column.typecode == "q" else np.float64)
    return structured


def _max(column: array) -> int:
    return int(np.frombuffer(column, dtype=np.int64).max())


class PreparedData:
    """pyannote.audio's ``prepared_data``, built file after file

    Numbers are kept in typed columns (8 bytes a number), not in tuples of
    Python objects, so that a million files fit in a few hundred MB.

    Parameters
    ----------
    min_region_duration : float
        Annotated regions shorter than this (the task's chunk duration) are left out.
    """

    def __init__(self, min_region_duration: float):
        self.min_region_duration = min_region_duration
        self.metadata_values: Dict[str, _Index] = defaultdict(_Index)
        self.metadata_values["subset"] = _Index(Subsets)
        self.metadata_values["scope"] = _Index(Scopes)
        self.audios: List[str] = []
        self.metadata: Dict[str, array] = {}  # a column per key, -1 for files without it
        self.annotated_duration = _column("d")
        self.regions = {"file_id": _column("q"), "duration": _column("d"), "start": _column("d")}
        self.regions_ids = {"start": _column("q"), "end": _column("q")}
        self.segments = {
            name: _column("d" if name in ("start", "end") else "q")
            for name in ("file_id", "start", "end", "file_label_idx", "database_label_idx", "global_label_idx")
        }
        self.segments_ids = {"start": _column("q"), "end": _column("q")}
        self.database_labels: Dict[str, _Index] = {}
        self.global_labels = _Index()
        self.num_train_regions = 0  # training regions at least as long as a chunk
        self.longest_train_region = 0.0

    def add(self, subset: str, record: FileRecord) -> None:
        """Add the file of `record`, from `subset`"""
        file_id = len(self.audios)
        metadatum = {
            "database": self.metadata_values["database"](record.database),
            "subset": Subsets.index(subset),
            "scope": Scopes.index(record.scope),
        }
        for key, value in record.metadata.items():
            if isinstance(value, str):
                metadatum[key] = self.metadata_values[key](value)
            elif isinstance(value, int):
                self.metadata_values[key](value)
                metadatum[key] = value
            else:
                warnings.warn(
                    f"Ignoring '{key}' metadata because of its type ({type(value)}). "
                    "Only str and int are supported for now.",
                    category=UserWarning,
                )
        for key in metadatum.keys() - self.metadata.keys():
            self.metadata[key] = _column("q", [-1]) * file_id
        for key, column in self.metadata.items():
            column.append(metadatum.get(key, -1))
        self.audios.append(record.audio)

        regions, duration = self.regions, 0.0
        self.regions_ids["start"].append(len(regions["file_id"]))
        for start, end in record.regions:
            if subset == "train":
                self.longest_train_region = max(self.longest_train_region, end - start)
                self.num_train_regions += end - start >= self.min_region_duration
            if end - start < self.min_region_duration:
                continue
            regions["file_id"].append(file_id)
            regions["duration"].append(end - start)
            regions["start"].append(start)
            duration += end - start
        self.annotated_duration.append(duration)
        self.regions_ids["end"].append(len(regions["file_id"]))

        segments, scope, file_labels = self.segments, metadatum["scope"], _Index()
        self.segments_ids["start"].append(len(segments["file_id"]))
        for start, end, label in record.turns:
            database_idx = global_idx = -1
            if scope > 0:
                database_idx = self.database_labels.setdefault(record.database, _Index())(label)
            if scope > 1:
                global_idx = self.global_labels(label)
            segments["file_id"].append(file_id)
            segments["start"].append(start)
            segments["end"].append(end)
            segments["file_label_idx"].append(file_labels(label))
            segments["database_label_idx"].append(database_idx)
            segments["global_label_idx"].append(global_idx)
        self.segments_ids["end"].append(len(segments["file_id"]))

    def arrays(self, protocol_name: str) -> dict:
        """The ``prepared_data`` dictionary (before validation and ``post_prepare_data``)

        Raises
        ------
        ConfigError
            When no training file has an annotated region (UEM) as long as a
            chunk (task.params.duration).
        DataError
            When there is no training file, or no speech turn.
        """
        if not self.num_train_regions:
            if not self.longest_train_region:
                raise DataError(f"{protocol_name} has no training file with an annotated region (UEM).")
            raise ConfigError(
                f"task.params.duration is {self.min_region_duration:g} s, longer than every training file of "
                f"{protocol_name} (the longest annotated region lasts {self.longest_train_region:g} s): set it to "
                f"{self.longest_train_region:g} or less."
            )
        if not self.segments["file_id"]:
            raise DataError(f"The files of {protocol_name} have no speech turn (RTTM).")
        keys = list(self.metadata_values)
        metadata_dtype = [(key, get_dtype(_max(self.metadata[key]))) for key in keys]
        region_dtype = [("file_id", get_dtype(_max(self.regions["file_id"]))), ("duration", "f"), ("start", "f")]
        segment_dtype = [
            (name, "f" if name in ("start", "end") else get_dtype(_max(column)))
            for name, column in self.segments.items()
        ]
        ids = [("start", "i"), ("end", "i")]
        prepared_data = {
            "protocol": protocol_name,
            "audio-path": np.array(self.audios, dtype=np.str_),
            "audio-metadata": _structured({key: self.metadata[key] for key in keys}, metadata_dtype),
            "audio-annotated": _numpy(self.annotated_duration),
            "annotations-regions": _structured(self.regions, region_dtype),
            "audio-regions-ids": _structured(self.regions_ids, ids),
            "annotations-segments": _structured(self.segments, segment_dtype),
            "audio-segments-ids": _structured(self.segments_ids, ids),
            "metadata-values": defaultdict(list, {key: index.values for key, index in self.metadata_values.items()}),
        }
        for database, labels in self.database_labels.items():
            prepared_data[f"metadata-{database}-labels"] = np.array(labels.values, dtype=np.str_)
        prepared_data["metadata-labels"] = np.array(self.global_labels.values, dtype=np.str_)
        return prepared_data


def prepare_protocol_data(task, read_lists: bool = True) -> dict:
    """``prepared_data`` of `task`'s protocol, as pyannote.audio's ``Task.prepare_data`` builds it

    Parameters
    ----------
    task : pyannote.audio.core.task.Task
        Task with its protocol, chunk `duration` and `has_validation`.
    read_lists : bool, optional
        Read subsets made of plain lists once (see :func:`subset_records`).
        Defaults to True.

    Returns
    -------
    prepared_data : dict
        Before ``prepare_validation`` and ``post_prepare_data``.
    """
    subsets = ["train"] + (["development"] if task.has_validation else [])
    prepared = PreparedData(task.duration)
    for subset in subsets:
        for record in subset_records(task.protocol, subset, read_lists=read_lists):
            prepared.add(subset, record)
    return prepared.arrays(task.protocol.name)
