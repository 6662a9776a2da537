"""Protocol subsets that are plain lists, read once instead of file by file

A pyannote.database custom protocol, declared in a database.yml, makes each
file of a subset a ``ProtocolFile`` whose "annotation" and "annotated" come
from loaders that parse the subset's whole RTTM and UEM files with pandas and
build a pyannote.core object per file, at every iteration of the subset
(and ``Task.__init__`` iterates it once more, in ``check_protocol``). At
VoxCeleb2 scale that is most of the time and memory of data preparation.

When a subset's entries are plain files, a ``.lst`` of uris, an ``.rttm`` of
speech turns and a ``.uem`` of annotated regions (what ``pyannote-audio-emb
prepare`` writes), :class:`SubsetLists` reads them once
(:mod:`.rttm_uem`) and gives the same :class:`~.file_record.FileRecord` as
the protocol's files. Anything else (templates, other entries or loaders,
other preprocessors, meta-protocols, protocols defined in Python) is read
file by file, as before.

The entries are those the protocol's own ``{subset}_iter`` method was built
with (pyannote.database binds the database.yml entries to it): the files it
would read, whichever registry loaded it.
"""

from __future__ import annotations

import copy
import functools
import inspect
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from pyannote.database import custom
from pyannote.database.loader import load_lst
from pyannote.database.protocol.segmentation import SegmentationProtocol, crop_annotated, crop_annotation

from .file_record import FileRecord
from .rttm_uem import RegionTable, TurnTable, covered

__all__ = ["SubsetLists", "training_check_view"]

#: entries of a plain subset, and the suffix of their file
PLAIN_ENTRIES = {"uri": ".lst", "annotation": ".rttm", "annotated": ".uem"}
#: entries that do not reach a subset's files (pyannote.database's ``gather_loaders`` skips them)
IGNORED_ENTRIES = {"trial"}
#: the loaders :mod:`.rttm_uem` reproduces, by suffix
LOADERS = {".rttm": "pyannote.database.loader:RTTMLoader", ".uem": "pyannote.database.loader:UEMLoader"}
#: metadata pyannote.database gives the files of a custom protocol
METADATA = {"scope", "classes"}


def _is_template(value: str) -> bool:
    return any(name is not None for _, name, _, _ in string.Formatter().parse(value))


def _plain_preprocessors(protocol) -> bool:
    """Whether `protocol` only has the preprocessors pyannote.database and pyannote.audio give it

    The audio path (any "audio" preprocessor), and the crops that
    ``SegmentationProtocol`` wraps "annotated" and "annotation" in.
    """
    if not isinstance(protocol, SegmentationProtocol):
        return False
    preprocessors = protocol.preprocessors
    if set(preprocessors) - {"audio", "annotated", "annotation"}:
        return False
    for key, function in (("annotated", crop_annotated), ("annotation", crop_annotation)):
        preprocessor = preprocessors.get(key)
        if not (
            isinstance(preprocessor, functools.partial)
            and preprocessor.func is function
            and not preprocessor.args
            and preprocessor.keywords == {"existing_preprocessor": None}
        ):
            return False
    return True


@dataclass(frozen=True)
class SubsetLists:
    """The plain list files of a protocol subset

    Attributes
    ----------
    database, subset : str
        Database and subset the files belong to.
    uri, annotation, annotated : Path
        Its .lst, .rttm and .uem files.
    metadata : dict
        What pyannote.database adds to each file ("scope", "classes").
    """

    database: str
    subset: str
    uri: Path
    annotation: Path
    annotated: Path
    metadata: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, protocol, subset: str) -> Optional["SubsetLists"]:
        """The list files of `protocol`'s `subset`, or None when it is not made of plain lists"""
        method = f"{subset}_iter"
        if method in vars(protocol) or not _plain_preprocessors(protocol):
            return None
        definition = inspect.getattr_static(type(protocol), method, None)
        if not (isinstance(definition, functools.partialmethod) and definition.func is custom.subset_iter):
            return None
        if definition.args or any(custom.LOADERS.get(suffix) is None or custom.LOADERS[suffix].value != loader
                                  for suffix, loader in LOADERS.items()):
            return None
        keywords = dict(definition.keywords)
        entries, database_yml = keywords.pop("entries"), keywords.pop("database_yml")
        database, subset = keywords.pop("database"), keywords.pop("subset")
        metadata = {key: value for key, value in keywords.items() if key not in ("task", "protocol")}
        if set(metadata) - METADATA or set(entries) - set(PLAIN_ENTRIES) - IGNORED_ENTRIES:
            return None
        paths = {}
        for key, suffix in PLAIN_ENTRIES.items():
            value = entries.get(key)
            if not isinstance(value, str) or _is_template(value) or Path(value).suffix != suffix:
                return None
            try:
                paths[key] = custom.resolve_path(Path(value), database_yml)
            except FileNotFoundError:  # reading file by file reports it
                return None
        return cls(database, subset, paths["uri"], paths["annotation"], paths["annotated"], metadata)

    def file(self, uri: str) -> dict:
        """The precomputed keys pyannote.database gives the file `uri`"""
        return {"uri": uri, "database": self.database, "subset": self.subset, **self.metadata}

    def uris(self) -> List[str]:
        return load_lst(self.uri)

    def first_uri(self) -> List[str]:
        """The first uri of the list (none when it is empty), without reading the rest"""
        with open(self.uri) as lines:
            line = lines.readline()
        return [line.strip()] if line else []

    def records(self, protocol) -> Iterator[FileRecord]:
        """Records of the subset's files, in order, as ``FileRecord.from_protocol_file`` gives them

        Parameters
        ----------
        protocol : Protocol
            The protocol, for its preprocessors (the audio path).

        Raises
        ------
        UnusualFile
            Before the first record, when the RTTM or UEM file holds what
            only pyannote.database's loaders reproduce.
        """
        uris = self.uris()
        regions, turns = RegionTable(self.annotated, uris), TurnTable(self.annotation, uris)
        return self._records(protocol, uris, regions, turns)

    def _records(self, protocol, uris: List[str], regions: RegionTable, turns: TurnTable) -> Iterator[FileRecord]:
        scope = self.metadata.get("scope")
        for k, uri in enumerate(uris):
            file_regions, file_turns = regions.of(k), turns.of(k)
            if not covered(file_turns, file_regions):
                file_turns = turns.cropped(k, file_regions)
            audio = str(protocol.preprocess(self.file(uri))["audio"])
            yield FileRecord(self.database, scope, {}, audio, file_regions, file_turns)


def training_check_view(protocol, train: SubsetLists):
    """`protocol` as pyannote.audio's ``check_protocol`` needs to see it, without reading its training lists

    ``Task.__init__`` checks a protocol by looking at its first training file
    (audio, "annotated", scope, classes) and at its first development file or
    trial; iterating the training subset of a custom protocol parses its whole
    RTTM and UEM files first. The view is a shallow copy of `protocol` (same
    preprocessors, same development subset) whose training subset is its
    first file without "annotation" nor "annotated" entries, which the check
    does not read (the "annotated" preprocessor of ``SegmentationProtocol``
    answers for it).
    """
    view = copy.copy(protocol)
    view.train_iter = lambda: iter([train.file(uri) for uri in train.first_uri()])
    return view
