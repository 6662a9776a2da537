"""What training data preparation reads of a protocol file

A :class:`FileRecord` holds what ``prepare_data`` needs of one file: its
database, label scope, other metadata, audio path, annotated regions and
speech turns, in the order pyannote.core iterates them. It is read from a
pyannote.database ``ProtocolFile`` (:meth:`FileRecord.from_protocol_file`,
file by file) or from a protocol's lists read once
(:mod:`.protocol_lists`), and both give the same records.
"""

from __future__ import annotations

from typing import Any, Dict, List, NamedTuple, Tuple

__all__ = ["FileRecord", "RESERVED_KEYS"]

#: file keys that are not free metadata (as in pyannote.audio's ``Task.prepare_data``)
RESERVED_KEYS = {"uri", "database", "subset", "audio", "scope", "classes", "annotation", "annotated"}


class FileRecord(NamedTuple):
    """One file of a protocol subset, as data preparation reads it

    Attributes
    ----------
    database : str
        Database of the file.
    scope : str
        Scope of its speaker labels: "file", "database" or "global".
    metadata : dict
        Its other keys and values (pyannote.audio keeps those of type str or int).
    audio : str
        Path of its audio.
    regions : list of (start, end)
        Annotated regions, in the order of iteration of its "annotated" ``Timeline``.
    turns : list of (start, end, label)
        Speech turns, in the order of its "annotation"'s ``itertracks``.
    """

    database: str
    scope: str
    metadata: Dict[str, Any]
    audio: str
    regions: List[Tuple[float, float]]
    turns: List[Tuple[float, float, Any]]

    @classmethod
    def from_protocol_file(cls, file) -> "FileRecord":
        """Record of a pyannote.database ``ProtocolFile`` (loads its lazy keys)"""
        return cls(
            database=file["database"],
            scope=file["scope"],
            metadata={key: file[key] for key in set(file) - RESERVED_KEYS},
            audio=str(file["audio"]),
            regions=[(segment.start, segment.end) for segment in file["annotated"]],
            turns=[
                (segment.start, segment.end, label)
                for segment, _, label in file["annotation"].itertracks(yield_label=True)
            ],
        )
