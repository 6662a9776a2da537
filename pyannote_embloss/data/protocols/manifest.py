"""A CSV, TSV or JSON-lines manifest as a pyannote.database speaker verification protocol

``pyannote-audio-emb prepare csv --root FILE --name NAME`` reads a list of
utterances, one per line, with a header row (CSV: commas, TSV: tabs, by the
file's extension; ``.jsonl`` and ``.json``: one JSON object per line)::

    path,speaker,start,end,duration,subset
    alice/001.wav,alice,,,3.2,          whole file; duration given: its header is not read
    meeting.wav,bob,12.5,15.0,,         a segment of a file
    carol/004.flac,carol,,,,test        subset given: train, development or test

- required: ``path`` (relative paths are relative to the manifest's folder)
  and ``speaker``;
- optional: ``start`` and ``end`` (a segment of the file, in seconds),
  ``duration`` (of the utterance: the whole file's, or with ``start`` and no
  ``end``, the segment's), ``subset`` (then on every line).

JSON lines take NeMo's keys too: ``audio_filepath``, ``label``, ``offset``,
``duration`` (``text`` is ignored). The split policy and the files written
are those of :mod:`pyannote_embloss.data.protocols.own_data`. Reading is one pass,
in time and memory linear in the number of lines.
"""

from __future__ import annotations

import csv
import difflib
import json
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from ...errors import DataError, MissingFileError
from ...io import PathLike
from .own_data import preparer
from .writer import SUBSETS, Utterance

PREPARE_COMMAND = "pyannote-audio-emb prepare csv"
DATABASE = None  # named by the user (--name)

COLUMNS = ("path", "speaker", "start", "end", "duration", "subset")
REQUIRED = ("path", "speaker")
#: NeMo manifest keys, and the columns they stand for (None: ignored)
NEMO_KEYS = {"audio_filepath": "path", "label": "speaker", "offset": "start", "duration": "duration", "text": None}


def _check_columns(columns, allowed: Dict[str, Optional[str]], source: str) -> None:
    """Refuse unknown columns (naming the closest known one) and missing required ones"""
    for column in columns:
        if column not in allowed:
            close = difflib.get_close_matches(str(column), list(allowed), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise DataError(
                f"{source}: unknown column '{column}'.{hint} Columns are {', '.join(c for c in allowed if c)}."
            )
    renamed = {allowed[column] for column in columns}
    missing = [c for c in REQUIRED if c not in renamed]
    if missing:
        raise DataError(f"{source}: missing required column(s) {', '.join(missing)} (the header must name them).")


def _rows(path: Path) -> Iterator[Tuple[Dict[str, str], str]]:
    """(row with the manifest's own columns renamed to COLUMNS, source) of each line"""
    if path.suffix.lower() in (".jsonl", ".json"):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                source = f"{path}, line {number}"
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{source}: not a JSON object ({error.msg}).") from None
                if not isinstance(item, dict):
                    raise DataError(f"{source}: not a JSON object.")
                keys = {**NEMO_KEYS, **{c: c for c in COLUMNS}}
                _check_columns(item, keys, source)
                yield {keys[k]: ("" if v is None else str(v)) for k, v in item.items() if keys[k]}, source
        return
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, encoding="utf-8", newline="") as f:
        first = f.readline()
        f.seek(0)
        if delimiter == "," and "\t" in first and "," not in first:
            warnings.warn(f"{path}: its header is tab-separated, not comma-separated: read as TSV.")
            delimiter = "\t"
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path} is empty: it needs a header row ({', '.join(COLUMNS)}).")
        header = [column.strip() for column in header]
        _check_columns(header, {c: c for c in COLUMNS}, f"{path}, line 1 (header)")
        for number, fields in enumerate(reader, start=2):
            if not fields or not any(field.strip() for field in fields):
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{path}, line {number}: {len(fields)} field(s) where the header has {len(header)} "
                    f"({', '.join(header)})."
                )
            yield dict(zip(header, (field.strip() for field in fields))), f"{path}, line {number}"


def _seconds(row: Dict[str, str], column: str, source: str) -> Optional[float]:
    value = row.get(column, "")
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{source}: {column} '{value}' is not a number of seconds.") from None
    if not number >= 0:
        raise DataError(f"{source}: {column} {value} is negative.")
    return number


def read_manifest(root: PathLike) -> Tuple[List[Utterance], None]:
    """Utterances of a CSV, TSV or JSON-lines manifest (and no trial list)

    Raises
    ------
    MissingFileError
        When the manifest does not exist.
    DataError
        On an unknown or missing column, a malformed line, a bad number or
        subset (naming the line).
    """
    path = Path(root).expanduser().absolute()
    if path.is_dir():
        raise MissingFileError(
            f"'{path}' (--root) is a directory: `prepare csv` takes the manifest file itself (CSV, TSV or JSON lines); "
            "for a folder per speaker, use `prepare folders --root DIR`."
        )
    if not path.is_file():
        raise MissingFileError(f"Manifest '{path}' (--root) does not exist.")
    folder = path.parent
    records = []
    for row, source in _rows(path):
        if not row.get("path"):
            raise DataError(f"{source}: no path.")
        if not row.get("speaker"):
            raise DataError(f"{source}: no speaker.")
        start, end, duration = (_seconds(row, c, source) for c in ("start", "end", "duration"))
        subset = row.get("subset") or None
        if subset is not None and subset not in SUBSETS:
            raise DataError(f"{source}: subset '{subset}' is not one of {', '.join(SUBSETS)}.")
        if start is not None and end is None and duration is not None and start > 0:
            end, duration = start + duration, None  # NeMo: offset and duration of the segment
        elif start is not None and end is None and duration is None and start > 0:
            raise DataError(f"{source}: a start ({start:g}) needs an end or a duration.")
        if end is not None:
            start, duration = start or 0.0, None  # the file's duration is read from its header
            if not end > start:
                raise DataError(f"{source}: segment [{start:g}, {end:g}] is empty or negative.")
        else:
            start = None
        audio = Path(row["path"]).expanduser()
        records.append(
            Utterance(None, row["speaker"], audio if audio.is_absolute() else folder / audio, duration, start, end,
                      source=source, subset=subset)
        )
    if not records:
        raise DataError(f"{path} lists no utterance.")
    return records, None


prepare = preparer(read_manifest, PREPARE_COMMAND, "FILE, a CSV, TSV or JSON-lines manifest")
