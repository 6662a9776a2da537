"""Trial lists in VoxCeleb format, to score with ``pyannote-audio-emb score``

One trial per line, fields separated by white space: ``1 pathA pathB`` (same
speaker), ``0 pathA pathB`` (different speakers) or ``pathA pathB`` (unknown).
Relative paths are relative to the folder of the trial list; blank lines are
skipped. Each audio file is listed once in :attr:`TrialList.files`, however
many trials use it::

    trials = TrialList.read("trials.txt")     # DataError naming the line of a malformed one
    trials.check_audio()                      # MissingFileError naming a missing file and its line
    trials.files, trials.index1, trials.index2
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from ..data.trials import Trial
from ..errors import DataError, MissingFileError
from ..io import PathLike

__all__ = ["TrialList"]

#: the format, for error messages
FORMAT = "'[1|0] pathA pathB' (label 1: same speaker, 0: different speakers, or no label)"


@dataclass
class TrialList:
    """Pairs of audio files to score, as read from a trial list

    Parameters
    ----------
    path : Path
        The trial list.
    trials : list of Trial
        Each trial (:class:`pyannote_embloss.data.trials.Trial`): its label
        (1, 0, or None: no label) and its two paths, as written in the list.
    lines : list of int
        Line number of each trial in the list.
    files : list of Path
        The audio files the trials use, each once (relative paths resolved
        against the list's folder), in order of first use.
    index1, index2 : (num_trials, ) np.ndarray of int
        Rows of `files` of each trial.
    """

    path: Path
    trials: List[Trial]
    lines: List[int]
    files: List[Path]
    index1: np.ndarray
    index2: np.ndarray

    def __len__(self) -> int:
        return len(self.trials)

    @property
    def pairs(self) -> List[tuple]:
        """The two paths of each trial, as written in the list"""
        return [(trial.first, trial.second) for trial in self.trials]

    @property
    def labels(self) -> List[Optional[int]]:
        """1, 0, or None (no label) for each trial"""
        return [trial.reference for trial in self.trials]

    @classmethod
    def read(cls, path: PathLike) -> "TrialList":
        """Read a trial list

        Raises
        ------
        MissingFileError
            When the list does not exist.
        DataError
            When a line is malformed (naming the list and the line number),
            or there is no trial.
        """
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"Trial list '{path}' does not exist.")
        trials, lines, rows, files = [], [], {}, []
        index = ([], [])
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) == 3 and fields[0] in ("0", "1"):
                    label, fields = int(fields[0]), fields[1:]
                elif len(fields) == 2 and fields[0] not in ("0", "1"):  # "1 a.wav" is a label and one path
                    label = None
                else:
                    raise DataError(f"{path}, line {number}: expected {FORMAT}, got {line.strip()!r}.")
                for side, field in enumerate(fields):
                    audio = Path(field).expanduser()
                    audio = audio if audio.is_absolute() else path.parent / audio
                    if audio not in rows:
                        rows[audio] = len(files)
                        files.append(audio)
                    index[side].append(rows[audio])
                trials.append(Trial(label, *fields))
                lines.append(number)
        if not trials:
            raise DataError(f"{path} has no trial: expected lines {FORMAT}.")
        return cls(path, trials, lines, files, np.array(index[0]), np.array(index[1]))

    def check_audio(self) -> None:
        """Refuse a trial whose audio file does not exist, naming it

        Raises
        ------
        MissingFileError
            Naming the file, the trial list and the line of its first use.
        """
        for row, audio in enumerate(self.files):
            if not audio.is_file():
                first = int(np.flatnonzero((self.index1 == row) | (self.index2 == row))[0])
                raise MissingFileError(
                    f"{self.path}, line {self.lines[first]}: audio file '{audio}' does not exist."
                )
