"""RTTM and UEM files read once, into every file's speech turns and annotated regions

pyannote.database's ``RTTMLoader`` and ``UEMLoader`` read a whole RTTM or UEM
file with pandas, then build a pyannote.core ``Annotation`` or ``Timeline``
per file by walking the rows one by one (``DataFrame.iterrows``: tens of µs a
row) and keep them all in memory (a few kB of sorted containers per file).
Data preparation only needs numbers and labels: :class:`TurnTable` and
:class:`RegionTable` parse the file with the very same ``pandas.read_csv``
call (the same values, to the last bit), sort and group the rows with numpy,
and give each file's turns and regions as plain tuples, in the order
pyannote.core iterates them:

* regions (UEM): a ``Timeline`` keeps each non-empty segment once, sorted by
  (start, end);
* turns (RTTM): ``load_rttm`` keeps the "SPEAKER" rows, a turn's track being
  its row number; ``Annotation`` drops empty segments, and ``itertracks``
  sorts turns by (start, end), then by track name as a string;
* turns not covered by the file's annotated regions are cropped to them,
  as ``SegmentationProtocol``'s ``crop_annotation`` does (:meth:`TurnTable.cropped`).

A file holding what this module does not reproduce exactly (a missing speaker
label, rounded pyannote.core segments, ...) raises :class:`UnusualFile`, and
the caller reads the protocol file by file instead.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import pandas as pd

__all__ = ["RegionTable", "TurnTable", "UnusualFile", "covered"]

#: columns and dtypes of ``pyannote.database.util.load_rttm`` and ``load_uem`` (pyannote.database 6.1;
#: tests/test_prepared_data.py compares this module with the installed one)
RTTM_COLUMNS = ["type", "uri", "NA2", "start", "duration", "NA3", "NA4", "speaker", "NA5", "NA6"]
RTTM_DTYPES = {"uri": str, "start": float, "duration": float, "speaker": str}
UEM_COLUMNS = ["uri", "NA1", "start", "end"]
UEM_DTYPES = {"uri": str, "start": float, "end": float}


class UnusualFile(Exception):
    """The file holds something that only pyannote.database's own loaders reproduce exactly"""


def _segment_precision() -> float:
    """pyannote.core's threshold of empty segments (``Segment.__bool__``)"""
    from pyannote.core import segment

    if segment.AUTO_ROUND_TIME:
        raise UnusualFile("pyannote.core rounds segment boundaries (Segment.set_precision)")
    return segment.SEGMENT_PRECISION


def _read(path: Path, names: List[str], dtype: dict, **options) -> pd.DataFrame:
    data = pd.read_csv(path, names=names, dtype=dtype, sep=r"\s+", **options)
    index = data.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        raise UnusualFile(f"'{path}': pandas did not number its rows from 0 (a line with more fields?)")
    return data


class _Groups:
    """Where the rows of each uri of a list are, in rows sorted by uri

    Parameters
    ----------
    codes : (num_rows, ) int array
        Sorted uri codes of the rows (every code from 0 to len(names) - 1 appears).
    names : array of str
        Uri of each code.
    uris : list of str
        The uris of the list, in order (some may have no rows).
    """

    def __init__(self, codes: np.ndarray, names, uris: Sequence[str]):
        codes_range = np.arange(len(names))
        firsts, lasts = np.searchsorted(codes, codes_range), np.searchsorted(codes, codes_range, side="right")
        position = pd.Index(names, dtype=object).get_indexer(list(uris)) if len(names) else np.full(len(uris), -1)
        found = position >= 0
        self.first = np.where(found, firsts[position], 0)
        self.last = np.where(found, lasts[position], 0)

    def __getitem__(self, k: int) -> slice:
        """Rows of the `k`-th uri of the list"""
        return slice(int(self.first[k]), int(self.last[k]))


class RegionTable:
    """Annotated regions of the files of a list, read from a UEM file

    Parameters
    ----------
    path : Path
        UEM file.
    uris : list of str
        The files, in order.
    """

    def __init__(self, path: Path, uris: Sequence[str]):
        data = _read(path, UEM_COLUMNS, UEM_DTYPES)
        start, end = data["start"].to_numpy(dtype=np.float64), data["end"].to_numpy(dtype=np.float64)
        keep = data["uri"].notna().to_numpy() & ((end - start) > _segment_precision())
        codes, names = pd.factorize(data["uri"].to_numpy(dtype=object)[keep])
        del data
        start, end = start[keep], end[keep]
        order = np.lexsort((end, start, codes))  # stable: the first of equal segments is kept, as in a set
        codes, start, end = codes[order], start[order], end[order]
        first = np.ones(len(codes), dtype=bool)
        first[1:] = (codes[1:] != codes[:-1]) | (start[1:] != start[:-1]) | (end[1:] != end[:-1])
        self._groups = _Groups(codes[first], names, uris)
        self._start, self._end = start[first], end[first]

    def of(self, k: int) -> List[Tuple[float, float]]:
        """(start, end) of the annotated regions of the `k`-th file, as its ``Timeline`` iterates them"""
        rows = self._groups[k]
        return list(zip(self._start[rows].tolist(), self._end[rows].tolist()))


class TurnTable:
    """Speech turns of the files of a list, read from an RTTM file

    Parameters
    ----------
    path : Path
        RTTM file.
    uris : list of str
        The files, in order.

    Raises
    ------
    UnusualFile
        When a speech turn has no speaker label (pandas reads "NA", "None",
        "nan", ... as missing).
    """

    def __init__(self, path: Path, uris: Sequence[str]):
        data = _read(path, RTTM_COLUMNS, RTTM_DTYPES, keep_default_na=True)
        start = data["start"].to_numpy(dtype=np.float64)
        end = start + data["duration"].to_numpy(dtype=np.float64)
        keep = (
            (data["type"].to_numpy(dtype=object) == "SPEAKER")
            & data["uri"].notna().to_numpy()
            & ((end - start) > _segment_precision())
        )
        if data["speaker"].isna().to_numpy()[keep].any():
            raise UnusualFile(f"'{path}': a speech turn has no speaker label")
        codes, names = pd.factorize(data["uri"].to_numpy(dtype=object)[keep])
        labels, self._speakers = pd.factorize(data["speaker"].to_numpy(dtype=object)[keep])
        del data
        rows = np.flatnonzero(keep)
        start, end = start[keep], end[keep]
        order = self._tracks_as_strings(np.lexsort((rows, end, start, codes)), codes, start, end, rows)
        self._groups = _Groups(codes[order], names, uris)
        self._start, self._end, self._labels, self._rows = start[order], end[order], labels[order], rows[order]

    @staticmethod
    def _tracks_as_strings(order: np.ndarray, codes, start, end, rows) -> np.ndarray:
        """`order` with the turns of a same segment sorted by track name as a string ("10" < "9")"""
        same = (np.diff(codes[order]) == 0) & (np.diff(start[order]) == 0) & (np.diff(end[order]) == 0)
        if not same.any():
            return order
        order = order.copy()
        runs = np.flatnonzero(np.diff(np.concatenate([[0], same.astype(np.int8), [0]])))
        for first, last in zip(runs[::2], runs[1::2] + 1):
            order[first:last] = sorted(order[first:last], key=lambda turn: str(rows[turn]))
        return order

    def _turns(self, rows: slice) -> list:
        labels = [self._speakers[label] for label in self._labels[rows].tolist()]
        return list(zip(self._start[rows].tolist(), self._end[rows].tolist(), labels))

    def of(self, k: int) -> List[Tuple[float, float, str]]:
        """(start, end, label) of the turns of the `k`-th file, as its ``Annotation.itertracks`` gives them"""
        return self._turns(self._groups[k])

    def cropped(self, k: int, regions: Sequence[Tuple[float, float]]) -> List[Tuple[float, float, str]]:
        """Turns of the `k`-th file cropped to its `regions` with pyannote.core, as pyannote.database does

        The annotation is built as ``load_rttm`` builds it (rows in file
        order, the row number as track), then goes through
        ``crop_annotation``: tracks of turns cropped into the same segment
        may be renamed, which changes their order.
        """
        from pyannote.core import Annotation, Segment, Timeline
        from pyannote.database.protocol.segmentation import crop_annotation

        rows = self._groups[k]
        annotation = Annotation()
        for row, (start, end, label) in sorted(zip(self._rows[rows].tolist(), self._turns(rows))):
            annotation[Segment(start, end), row] = label
        annotated = Timeline([Segment(start, end) for start, end in regions])
        annotation = crop_annotation({"annotation": annotation, "annotated": annotated})
        return [(segment.start, segment.end, label) for segment, _, label in annotation.itertracks(yield_label=True)]


def covered(turns: Sequence[Tuple[float, float, str]], regions: Sequence[Tuple[float, float]]) -> bool:
    """Whether ``crop_annotation`` keeps `turns` as they are, for sure

    True when there are no regions (an empty "annotated" crops nothing) or
    when each turn lies within one region (then ``Timeline.covers`` holds).
    False otherwise, when cropping may change the turns.
    """
    if not regions or not turns:
        return True
    starts, reach, latest = [], [], -np.inf  # reach: latest end of the regions so far
    for start, end in regions:
        latest = max(latest, end)
        starts.append(start)
        reach.append(latest)
    for start, end, _ in turns:
        last = bisect_right(starts, start) - 1
        if last < 0 or reach[last] < end:
            return False
    return True
