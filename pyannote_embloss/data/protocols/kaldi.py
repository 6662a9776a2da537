"""A Kaldi data directory as a pyannote.database speaker verification protocol

``pyannote-audio-emb prepare kaldi --root DATA_DIR --name NAME`` reads the
format of Kaldi, WeSpeaker and ESPnet::

    wav.scp     <recording> <path>       required; paths relative to the directory
                                          they are run from, else to DATA_DIR
    utt2spk     <utterance> <speaker>    required
    segments    <utterance> <recording> <start> <end>
                                          optional: utterances are then segments of
                                          the recordings (seconds)
    trials      <utterance1> <utterance2> target|nontarget   (Kaldi), or
                1|0 <utterance1> <utterance2>                 (VoxCeleb)
                                          optional: the test trials; their speakers
                                          make the test subset

Without ``segments``, recordings are utterances. A ``wav.scp`` entry that is
a command (``sox ... |``) or an archive offset (``x.ark:12``) is refused,
never executed: convert the audio to files first. The split policy and the
files written are those of :mod:`pyannote_embloss.data.protocols.own_data`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ...errors import DataError, MissingFileError
from ...io import PathLike
from ..trials import Trial
from .own_data import preparer
from .writer import Utterance

PREPARE_COMMAND = "pyannote-audio-emb prepare kaldi"
DATABASE = None  # named by the user (--name)

#: (fields, line number) of each key of a Kaldi list
Lines = Dict[str, Tuple[List[str], int]]


def read_kaldi_lines(path: Path, num_fields: int) -> Lines:
    """Read a Kaldi list of "key field ..." lines

    Parameters
    ----------
    path : Path
        List file.
    num_fields : int
        Number of fields after the key; the last one takes the rest of the
        line (e.g. a path with spaces).

    Returns
    -------
    lines : dict
        {key: (fields, line number)}

    Raises
    ------
    MissingFileError
        When the file is missing.
    DataError
        When a line has too few fields or a key is repeated (naming the line).
    """
    if not path.is_file():
        raise MissingFileError(f"Missing Kaldi list '{path}'.")
    lines: Lines = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.split(maxsplit=num_fields)
            if len(fields) != num_fields + 1:
                raise DataError(
                    f"{path}, line {number}: expected {num_fields + 1} fields, got {line.strip()!r}."
                )
            key, values = fields[0], [value.strip() for value in fields[1:]]
            if key in lines:
                raise DataError(
                    f"{path}, line {number}: '{key}' is listed twice (first on line {lines[key][1]}): "
                    "utterance and recording ids must be unique."
                )
            lines[key] = (values, number)
    return lines


def read_kaldi_map(path: Path) -> Dict[str, str]:
    """Read a Kaldi "key value" list (wav.scp, utt2spk, ...): {key: rest of the line}"""
    return {key: fields[0] for key, (fields, _) in read_kaldi_lines(path, 1).items()}


def _audio_path(value: str, data_dir: Path, source: str) -> Path:
    """The audio file of a wav.scp entry; commands and archive offsets are refused"""
    if value.endswith("|") or value.startswith("|") or " |" in value:
        raise DataError(
            f"{source}: '{value}' is a shell command, which prepare never runs. Convert the audio to files "
            "first (e.g. with sox or ffmpeg) and list their paths in wav.scp."
        )
    if ".ark:" in value:
        raise DataError(f"{source}: '{value}' points into a Kaldi archive: list audio files instead.")
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    return path.absolute() if path.exists() else (data_dir / path).absolute()


def _time(value: str, source: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{source}: '{value}' is not a time in seconds.") from None


def read_trials(path: Path) -> List[Tuple[Trial, str]]:
    """Trials in Kaldi ("utt1 utt2 target|nontarget") or VoxCeleb ("1|0 utt1 utt2") style

    Returns
    -------
    trials : list of (Trial of utterance ids, source)
        Source: the file and line, for error messages.
    """
    trials = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            source = f"{path}, line {number}"
            if len(fields) == 3 and fields[2] in ("target", "nontarget"):
                trials.append((Trial(int(fields[2] == "target"), fields[0], fields[1]), source))
            elif len(fields) == 3 and fields[0] in ("0", "1"):
                trials.append((Trial(int(fields[0]), fields[1], fields[2]), source))
            else:
                raise DataError(
                    f"{source}: expected 'utt1 utt2 target|nontarget' or '1|0 utt1 utt2', got {line.strip()!r}."
                )
    if not trials:
        raise DataError(f"{path} lists no trial.")
    return trials


def read_kaldi(root: PathLike) -> Tuple[List[Utterance], Optional[list]]:
    """Utterances (and test trials) of a Kaldi data directory

    Raises
    ------
    MissingFileError
        When `root` has no wav.scp or utt2spk.
    DataError
        On a malformed line, a repeated id, an utterance without speaker or
        audio, a command in wav.scp, or a segment of an unknown recording.
    """
    data_dir = Path(root).expanduser().absolute()
    if not data_dir.is_dir():
        raise MissingFileError(f"'{data_dir}' (--root) is not a directory: give a Kaldi data directory.")
    wav_scp, utt2spk_path, segments_path = data_dir / "wav.scp", data_dir / "utt2spk", data_dir / "segments"
    wav = read_kaldi_lines(wav_scp, 1)
    utt2spk = read_kaldi_lines(utt2spk_path, 1)
    recordings = {
        key: _audio_path(fields[0], data_dir, f"{wav_scp}, line {number}") for key, (fields, number) in wav.items()
    }
    records = []
    if segments_path.is_file():
        segments = read_kaldi_lines(segments_path, 3)
        for utt, ((recording, start, end), number) in segments.items():
            source = f"{segments_path}, line {number}"
            if recording not in recordings:
                raise DataError(f"{source}: recording '{recording}' is not in {wav_scp}.")
            if utt not in utt2spk:
                raise DataError(f"{source}: utterance '{utt}' has no speaker in {utt2spk_path}.")
            start, end = _time(start, source), _time(end, source)
            if not 0 <= start < end:
                raise DataError(f"{source}: segment [{start:g}, {end:g}] is empty or negative.")
            records.append(Utterance(None, utt2spk[utt][0][0], recordings[recording], start=start, end=end, source=source, key=utt))
        listed = segments
    else:
        for utt, path in recordings.items():
            if utt not in utt2spk:
                raise DataError(f"{wav_scp}, line {wav[utt][1]}: utterance '{utt}' has no speaker in {utt2spk_path}.")
            records.append(Utterance(None, utt2spk[utt][0][0], path, source=f"{wav_scp}, line {wav[utt][1]}", key=utt))
        listed = wav
    orphans = [utt for utt in utt2spk if utt not in listed]
    if orphans:
        where = segments_path if segments_path.is_file() else wav_scp
        raise DataError(
            f"{utt2spk_path}, line {utt2spk[orphans[0]][1]}: utterance '{orphans[0]}' is not in {where}"
            + (f" ({len(orphans)} such utterances)." if len(orphans) > 1 else ".")
        )
    trials_path = data_dir / "trials"
    trials = read_trials(trials_path) if trials_path.is_file() else None
    return records, trials


prepare = preparer(read_kaldi, PREPARE_COMMAND, "DATA_DIR, a Kaldi data directory (wav.scp, utt2spk)")
