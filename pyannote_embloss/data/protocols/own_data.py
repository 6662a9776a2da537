"""Your own speakers as a pyannote.database speaker verification protocol

The split policy and the writing shared by ``prepare folders``, ``prepare
kaldi`` and ``prepare csv``: each reads its format into :class:`Utterance`
objects (one utterance each: a file, or a segment of one, and its speaker),
and :func:`write_protocol` turns them into ``NAME.SpeakerVerification.Default``
through :class:`~pyannote_embloss.data.protocols.writer.ProtocolWriter`:

- uris: the path of the file relative to the parent of the folder that holds
  every file, without extension (``myspeakers/alice/001``), followed by
  ``@start-end`` for a segment: the same utterances give the same uris
  whatever the format they are listed in, and never a numeric uri;
- audio: each utterance's file is linked as ``<output>/audio/<uri>``, so
  that any path, name or format works;
- subsets: those the input gives (a ``subset`` column, or the speakers of
  the corpus' own test trials), else speaker-disjoint train / development /
  test subsets of 80 / 10 / 10 % of the speakers (`split`), drawn with
  `seed`. Development and test need at least 2 speakers each (for
  non-target trials) and train at least 1: with few speakers, they get 2
  each and train the rest; with fewer than 5 speakers, prepare refuses
  (give a `split` with 0 for the subsets you can do without);
- trials: the corpus' own test trials when given, else every target pair up
  to `max_trials` / 2, and as many non-target pairs, drawn with `seed`.
  Speakers with a single utterance have no target trial (a warning names
  them).

Nothing is written until every check has passed.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..audio import read_durations
from ...errors import ConfigError, DataError, MissingFileError
from ...io import PathLike, check_writable_dir
from ..trials import Trial
from .writer import (
    SEGMENT_TOLERANCE,
    SUBSETS,
    ProtocolWriter,
    file_identity,
    Utterance,
    group_by_speaker,
    make_trials,
    screen_files,
    seconds,
    write_bad_list,
)

__all__ = [
    "write_protocol", "preparer", "parse_split", "split_speakers", "default_output_dir", "check_name",
    "check_max_trials",
    "check_options",
]

TASK, PROTOCOL_NAME = "SpeakerVerification", "Default"
DEFAULT_SPLIT = (80, 10, 10)
DEFAULT_MAX_TRIALS = 20000
SEED = 0


def default_output_dir(name: str) -> Path:
    """Where `prepare` writes NAME's protocol by default: ./data/NAME"""
    return Path.cwd() / "data" / name


def check_name(name: Optional[str]) -> str:
    """The database name, checked: letters, digits, "_" or "-", starting with a letter"""
    if not name:
        raise ConfigError("Give the corpus a name with --name NAME (its protocol is NAME.SpeakerVerification.Default).")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise ConfigError(
            f"--name '{name}' is not a valid database name: use letters, digits, '_' or '-', starting with a letter "
            "(no dot: the protocol is NAME.SpeakerVerification.Default)."
        )
    return name


def parse_split(split) -> Tuple[int, int, int]:
    """(train, development, test) percentages from "80/10/10" (or a sequence of 3 numbers)

    Raises
    ------
    ConfigError
        When it is not three non-negative numbers adding up to 100.
    """
    if split is None:
        return DEFAULT_SPLIT
    parts = split.replace(",", "/").split("/") if isinstance(split, str) else list(split)
    try:
        shares = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        shares = ()
    if len(shares) != 3 or any(s < 0 for s in shares) or abs(sum(shares) - 100) > 1e-6 or shares[0] == 0:
        raise ConfigError(
            f"--split {split!r}: expected train/development/test percentages of the speakers adding up to 100, "
            "train above 0, e.g. 80/10/10 (or 90/0/10 without development subset)."
        )
    return shares  # type: ignore[return-value]


def split_speakers(
    speakers: Sequence[str], split: Tuple[float, float, float], seed, subsets: Sequence[str] = SUBSETS
) -> Dict[str, str]:
    """Assign each speaker to a subset, at random (seeded), by the `split` percentages

    Parameters
    ----------
    speakers : sequence of str
    split : (train, development, test) percentages
    seed : int or str
    subsets : sequence of str, optional
        The subsets to fill, in the order of `split`.

    Returns
    -------
    subset : dict
        {speaker: subset}

    Raises
    ------
    DataError
        When there are too few speakers: every subset with a positive share
        needs 2 speakers (train: 1).
    """
    speakers = sorted(set(speakers))
    shuffled = list(speakers)
    random.Random(f"{seed}:split").shuffle(shuffled)
    minimum = {"train": 1, "development": 2, "test": 2}
    counts = {}
    for subset, share in zip(subsets[1:], split[1:]):
        counts[subset] = 0 if share == 0 else max(minimum[subset], round(len(speakers) * share / 100))
    counts[subsets[0]] = len(speakers) - sum(counts.values())
    if counts[subsets[0]] < minimum[subsets[0]]:
        needed = minimum[subsets[0]] + sum(minimum[s] for s, share in zip(subsets[1:], split[1:]) if share)
        raise DataError(
            f"Cannot split {len(speakers)} speakers into {' / '.join(subsets)} subsets "
            f"({' / '.join(f'{s:g}' for s in split)} %): that needs at least {needed} speakers (2 for development "
            "and for test, to draw non-target trials, 1 for train). Add speakers, or choose a --split with 0 "
            "for a subset you can do without (e.g. --split 90/0/10)."
        )
    assignment, position = {}, 0
    for subset in list(subsets[1:]) + [subsets[0]]:
        for speaker in shuffled[position : position + counts[subset]]:
            assignment[speaker] = subset
        position += counts[subset]
    return assignment


def _uris(records: Sequence[Utterance]) -> List[str]:
    """The uri of each record: its file's path relative to the parent of their common folder, and its segment"""
    files = sorted({str(r.path) for r in records})
    common = Path(os.path.commonpath([os.path.dirname(f) for f in files]))
    base = common.parent
    uri_of = {}
    for f in files:
        relative = Path(os.path.relpath(f, base)).with_suffix("").as_posix()
        uri_of[f] = re.sub(r"\s+", "_", relative)
    return [
        uri_of[str(r.path)] + (f"@{seconds(r.start or 0.0)}-{seconds(r.end)}" if r.is_segment else "")
        for r in records
    ]


def _check_files(records: Sequence[Utterance]) -> None:
    missing = sorted({str(r.path): r.source for r in records if not r.path.is_file()}.items())
    if missing:
        listed = "\n".join(f" - {path} ({source})" for path, source in missing[:5])
        raise MissingFileError(
            f"{len(missing)} listed audio file(s) do not exist:\n{listed}"
            + (f"\n   ... and {len(missing) - 5} more" if len(missing) > 5 else "")
            + "\nFix their paths (relative paths are relative to the list's folder), or remove them from the list."
        )


def _utterances(
    records: Sequence[Utterance], num_workers: Optional[int], progress: bool, decoded: Optional[Dict[str, float]] = None
) -> List[Tuple[Utterance, Utterance]]:
    """Utterances as utterances, with uris and durations; duplicates and segments past the end refused

    `decoded` gives the durations that decode (``--check-audio``): they override
    the input's and the headers'.
    """
    uris = _uris(records)
    first: Dict[str, Utterance] = {}
    for record, uri in zip(records, uris):
        if uri in first:
            raise DataError(
                f"Duplicate utterance '{uri}': {first[uri].source} and {record.source} (two files or lines give the "
                "same utterance, e.g. a.wav and a.flac side by side). Remove or rename one of them."
            )
        first[uri] = record
    # durations: what decodes, else the input's, else read from the headers
    decoded = decoded or {}
    to_read = sorted({str(r.path) for r in records if r.duration is None and str(r.path) not in decoded})
    durations = dict(zip(to_read, read_durations(to_read, num_workers=num_workers, progress=progress))) if to_read else {}
    pairs = []
    for record, uri in zip(records, uris):
        duration = decoded.get(str(record.path), record.duration)
        duration = duration if duration is not None else durations[str(record.path)]
        start, end = record.start, record.end
        if record.is_segment:
            start = start or 0.0
            if end > duration + SEGMENT_TOLERANCE:
                raise DataError(
                    f"{record.source}: segment [{start:g}, {end:g}] ends after the end of '{record.path}' "
                    f"({duration:g} s). Fix its times."
                )
            end = min(end, duration)
        pairs.append((record, replace(record, uri=uri, duration=duration, start=start, end=end)))
    return pairs


def write_protocol(
    records: Sequence[Utterance],
    name: str,
    output_dir: Optional[PathLike] = None,
    split=None,
    seed=SEED,
    max_trials: Optional[int] = DEFAULT_MAX_TRIALS,
    trials: Optional[Sequence[Tuple[Trial, str]]] = None,
    header: str = "",
    check_audio: bool = False,
    exclude_bad: bool = False,
    num_workers: Optional[int] = None,
    progress: bool = False,
) -> Path:
    """Write NAME.SpeakerVerification.Default from the utterances of a corpus

    Parameters
    ----------
    records : sequence of Utterance
    name : str
        Database name.
    output_dir : str or Path, optional
        Defaults to ./data/NAME.
    split : str or (train, development, test), optional
        Percentages of the speakers in each subset, when the input does not
        say which subset a file belongs to. Defaults to 80/10/10.
    seed : int, optional
        Seed of the split and of the trials.
    max_trials : int, optional
        At most this many development (and test) trials drawn, half of them
        target trials. Defaults to 20,000.
    trials : list of (reference, key1, key2, source), optional
        The corpus' own test trials, by the records' keys.
    header : str, optional
        Comment at the top of database.yml.
    check_audio, exclude_bad, num_workers, progress :
        As for the other corpora (``prepare --check-audio``).

    Returns
    -------
    database_yml : Path
    """
    name, shares, max_trials, output_dir = check_options(name, split, max_trials, output_dir)
    if not records:
        raise DataError(f"No utterance to prepare for {name}.")
    if exclude_bad and not check_audio:
        raise ConfigError("--exclude-bad needs --check-audio (which finds the bad files).")
    _check_files(records)
    decoded, failures = None, {}
    if check_audio:  # before any header is read: a file whose header is unreadable is a bad file too
        files = sorted({str(r.path) for r in records})
        decoded, failures = screen_files(files, output_dir, exclude_bad, num_workers, progress)
        records = [r for r in records if str(r.path) in decoded]
    pairs = _utterances(records, num_workers, progress, decoded)

    subset_of, test_trials = _subsets(pairs, shares, seed, trials)
    subsets: Dict[str, List[Utterance]] = {s: [] for s in SUBSETS}
    for record, utterance in pairs:
        subsets[subset_of(record)].append(utterance)

    writer = ProtocolWriter(output_dir, name, header=header, identify=file_identity)
    declared = {}
    for subset in SUBSETS:
        utterances = subsets[subset]
        if not utterances:
            continue
        writer.add_subset(subset, utterances)
        if subset == "train":
            declared[subset] = subset
            continue
        if subset == "test" and test_trials is not None:
            subset_trials = test_trials
        else:
            _warn_single_utterance_speakers(utterances, subset)
            subset_trials = make_trials(utterances, seed=f"{seed}:{subset}:trials", max_trials=max_trials)
        writer.add_trials(subset, subset_trials)
        declared[subset] = (subset, subset)
    writer.add_protocol(TASK, PROTOCOL_NAME, **declared)
    yml = writer.write()
    if check_audio:
        write_bad_list(output_dir, failures)
    # a subset of an earlier run that this one has not (e.g. development, then --split 90/0/10)
    for subset in SUBSETS:
        if subset not in declared:
            for suffix in (".lst", ".rttm", ".uem", ".trial"):
                (output_dir / f"{subset}{suffix}").unlink(missing_ok=True)
    return yml


def check_options(name, split, max_trials, output_dir) -> Tuple[str, Tuple[float, float, float], Optional[int], Path]:
    """The options of :func:`write_protocol`, checked before any file is read: name, split, max_trials, output_dir

    Raises
    ------
    ConfigError
        Naming the option at fault.
    """
    name = check_name(name)
    shares = parse_split(split)
    max_trials = check_max_trials(max_trials)
    default = default_output_dir(name)
    output_dir = Path(output_dir).expanduser().absolute() if output_dir is not None else default
    check_writable_dir(output_dir, "--output" if output_dir != default else "Output directory")
    return name, shares, max_trials, output_dir


def check_max_trials(max_trials: Optional[int]) -> Optional[int]:
    """`max_trials`, checked: None (every target trial) or at least 2 (a target and a non-target trial)"""
    if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 2):
        raise ConfigError(
            f"--max-trials {max_trials!r}: give at least 2 (half target, half non-target trials; default "
            f"{DEFAULT_MAX_TRIALS})."
        )
    return max_trials


def _subsets(pairs, shares, seed, trials):
    """How each record's subset is decided, and the test trials (by uri) when the corpus gives them"""
    records = [r for r, _ in pairs]
    given = {r.subset for r in records}
    if given != {None}:
        missing = next((r for r in records if r.subset is None), None)
        if missing is not None:
            raise DataError(f"{missing.source}: no subset, while other lines have one: give every line a subset.")
        if trials is not None:
            raise DataError("Give either subsets or test trials, not both.")
        return (lambda record: record.subset), None

    speakers = sorted({r.speaker for r in records})
    if trials is None:
        assignment = split_speakers(speakers, shares, seed)
        return (lambda record: assignment[record.speaker]), None

    uri_of = {r.key: u.uri for r, u in pairs if r.key is not None}
    speaker_of = {u.uri: u.speaker for _, u in pairs}
    test_trials: List[Trial] = []
    for (reference, key1, key2), source in trials:
        for key in (key1, key2):
            if key not in uri_of:
                raise DataError(f"{source}: utterance '{key}' is not in the corpus.")
        test_trials.append(Trial(reference, uri_of[key1], uri_of[key2]))
    test_speakers = {speaker_of[uri] for _, u1, u2 in test_trials for uri in (u1, u2)}
    others = [s for s in speakers if s not in test_speakers]
    if not others:
        raise DataError("Every speaker of the corpus is in its test trials: there is no speaker left to train on.")
    train_share, development_share, _ = shares
    assignment = split_speakers(others, (train_share, development_share, 0), seed)

    def subset_of(record):
        return "test" if record.speaker in test_speakers else assignment[record.speaker]

    return subset_of, test_trials


def _warn_single_utterance_speakers(utterances: Sequence[Utterance], subset: str) -> None:
    single = sorted(s for s, group in group_by_speaker(utterances).items() if len(group) == 1)
    if single:
        warnings.warn(
            f"{len(single)} {subset} speaker(s) have a single utterance, hence no target trial: "
            f"{', '.join(single[:5])}{' ...' if len(single) > 5 else ''}."
        )


def preparer(read: Callable, command: str, root_help: str) -> Callable:
    """The ``prepare`` function of a format whose reader is `read`

    Parameters
    ----------
    read : callable
        read(root) -> (records, trials or None): the format's reader.
    command : str
        Its command, e.g. "pyannote-audio-emb prepare folders".
    root_help : str
        What --root is, for the error when it is missing.
    """

    def prepare(
        root: Optional[PathLike] = None,
        name: Optional[str] = None,
        output_dir: Optional[PathLike] = None,
        split=None,
        seed: int = SEED,
        max_trials: Optional[int] = DEFAULT_MAX_TRIALS,
        check_audio: bool = False,
        exclude_bad: bool = False,
        num_workers: Optional[int] = None,
        progress: bool = False,
    ) -> Path:
        """Write NAME.SpeakerVerification.Default (see :func:`write_protocol` for the parameters)

        Returns
        -------
        database_yml : Path
        """
        if root is None:
            raise MissingFileError(f"`{command}` needs --root {root_help}.")
        check_options(name, split, max_trials, output_dir)  # before reading a file
        records, trials = read(root)
        return write_protocol(
            records,
            name,
            output_dir,
            split=split,
            seed=seed,
            max_trials=max_trials,
            trials=trials,
            header=f"Generated by `{command}` from\n{Path(root).expanduser().absolute()}\n"
            "Do not edit: run the command again instead.",
            check_audio=check_audio,
            exclude_bad=exclude_bad,
            num_workers=num_workers,
            progress=progress,
        )

    return prepare
