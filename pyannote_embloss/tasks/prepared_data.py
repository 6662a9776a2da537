"""pyannote.audio's training data preparation, in time linear in the number of files

`pyannote.audio.core.task.Task.prepare_data` (4.0.7) turns every label into
an index with ``label not in some_list`` and ``some_list.index(label)``: a
scan of every label seen so far, for every speech turn. Its time grows with
files × speakers, which is quadratic when both grow together (VoxCeleb2:
a million files of 5,994 speakers). :func:`prepare_protocol_data` builds the
very same ``prepared_data`` dictionary (same keys, same arrays, same dtypes:
tested against pyannote.audio's on a real protocol) with dictionary look-ups
instead, in time linear in the number of files and turns
(``benchmarks/prepare_scaling.py`` measures both).
"""

from __future__ import annotations

import itertools
import warnings
from collections import defaultdict
from typing import Dict, List

import numpy as np
from pyannote.audio.core.task import Scopes, Subsets, get_dtype

__all__ = ["prepare_protocol_data"]

#: file keys that are not free metadata (as in pyannote.audio)
_RESERVED = {"uri", "database", "subset", "audio", "scope", "classes", "annotation", "annotated"}


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


def prepare_protocol_data(task) -> dict:
    """``prepared_data`` of `task`'s protocol, as pyannote.audio's ``Task.prepare_data`` builds it

    Parameters
    ----------
    task : pyannote.audio.core.task.Task
        Task with its protocol, chunk `duration` and `has_validation`.

    Returns
    -------
    prepared_data : dict
        Before ``prepare_validation`` and ``post_prepare_data``.
    """
    metadata_values: Dict[str, _Index] = defaultdict(_Index)
    metadata_values["subset"] = _Index(Subsets)
    metadata_values["scope"] = _Index(Scopes)
    audios, metadata = [], []
    annotated_duration, annotated_regions, audio_regions_ids = [], [], []
    annotations, audio_segments_ids = [], []
    database_labels: Dict[str, _Index] = {}
    global_labels = _Index()

    files = zip(itertools.repeat("train"), task.protocol.train())
    if task.has_validation:
        files = itertools.chain(files, zip(itertools.repeat("development"), task.protocol.development()))

    regions_id = segments_id = 0
    for file_id, (subset, file) in enumerate(files):
        metadatum = {
            "database": metadata_values["database"](file["database"]),
            "subset": Subsets.index(subset),
            "scope": Scopes.index(file["scope"]),
        }
        for key in set(file) - _RESERVED:
            value = file[key]
            if isinstance(value, str):
                metadatum[key] = metadata_values[key](value)
            elif isinstance(value, int):
                metadata_values[key](value)
                metadatum[key] = value
            else:
                warnings.warn(
                    f"Ignoring '{key}' metadata because of its type ({type(value)}). "
                    "Only str and int are supported for now.",
                    category=UserWarning,
                )
        metadata.append(metadatum)
        audios.append(str(file["audio"]))

        first_region, duration = regions_id, 0.0
        for segment in file["annotated"]:
            if segment.duration < task.duration:
                continue
            annotated_regions.append((file_id, segment.duration, segment.start))
            duration += segment.duration
            regions_id += 1
        annotated_duration.append(duration)
        audio_regions_ids.append((first_region, regions_id))

        first_segment, scope, file_labels = segments_id, Scopes.index(file["scope"]), _Index()
        for segment, _, label in file["annotation"].itertracks(yield_label=True):
            database_idx = global_idx = -1
            if scope > 0:
                database_idx = database_labels.setdefault(file["database"], _Index())(label)
            if scope > 1:
                global_idx = global_labels(label)
            annotations.append((file_id, segment.start, segment.end, file_labels(label), database_idx, global_idx))
            segments_id += 1
        audio_segments_ids.append((first_segment, segments_id))

    keys = list(metadata_values)
    metadata = [tuple(m.get(key, -1) for key in keys) for m in metadata]
    metadata_dtype = [(key, get_dtype(max(m[i] for m in metadata))) for i, key in enumerate(keys)]
    region_dtype = [("file_id", get_dtype(max(r[0] for r in annotated_regions))), ("duration", "f"), ("start", "f")]
    segment_dtype = [
        ("file_id", get_dtype(max(a[0] for a in annotations))),
        ("start", "f"),
        ("end", "f"),
        ("file_label_idx", get_dtype(max(a[3] for a in annotations))),
        ("database_label_idx", get_dtype(max(a[4] for a in annotations))),
        ("global_label_idx", get_dtype(max(a[5] for a in annotations))),
    ]
    prepared_data = {
        "protocol": task.protocol.name,
        "audio-path": np.array(audios, dtype=np.str_),
        "audio-metadata": np.array(metadata, dtype=metadata_dtype),
        "audio-annotated": np.array(annotated_duration),
        "annotations-regions": np.array(annotated_regions, dtype=region_dtype),
        "audio-regions-ids": np.array(audio_regions_ids, dtype=[("start", "i"), ("end", "i")]),
        "annotations-segments": np.array(annotations, dtype=segment_dtype),
        "audio-segments-ids": np.array(audio_segments_ids, dtype=[("start", "i"), ("end", "i")]),
        "metadata-values": defaultdict(list, {key: index.values for key, index in metadata_values.items()}),
    }
    for database, labels in database_labels.items():
        prepared_data[f"metadata-{database}-labels"] = np.array(labels.values, dtype=np.str_)
    prepared_data["metadata-labels"] = np.array(global_labels.values, dtype=np.str_)
    return prepared_data
