"""Write pyannote.database speaker verification protocols: subsets and trials in, files out

A corpus module (SpeechOcean762, VoxCeleb, ...) only reads its corpus and
decides the split and the trials; this module writes, for any corpus::

    <key>.lst      uris of a subset                    (one per line)
    <key>.rttm     one speech turn per utterance, labelled with its speaker
    <key>.uem      the utterance's turn is annotated (the whole file, or its segment)
    <key>.trial    "1|0 uri1 uri2" per line
    database.yml   "Databases:" audio template(s) + "Protocols:" entries
    audio/<uri>    links to the audio files, when no audio template is given

>>> writer = ProtocolWriter("data/mycorpus", database="MyCorpus", audio="/corpus/wav/{uri}.wav")
>>> writer.add_subset("train", train_utterances)
>>> writer.add_subset("test", test_utterances)
>>> writer.add_trials("test", make_trials(test_utterances, seed=0))
>>> writer.add_protocol("SpeakerVerification", "Default", train="train", test=("test", "test"))
>>> writer.write()   # -> data/mycorpus/database.yml

Several protocols may share subset and trial files (VoxCeleb's protocols all
train on the same files). Every file is written atomically, and only when its
content changed: writing the same protocols again changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml

from ...errors import DataError
from ..trials import Trial
from ...io import PathLike, atomic_write_text, write_if_changed

__all__ = [
    "Utterance",
    "Trial",
    "ProtocolWriter",
    "make_trials",
    "seconds",
    "escape_template",
    "write_if_changed",
    "with_durations",
    "screen_audio",
    "screen_files",
    "write_bad_list",
    "group_by_speaker",
]

SUBSETS = ("train", "development", "test")

#: folder of `output_dir` where utterances' audio files are linked (see ProtocolWriter's `audio`)
AUDIO_LINKS = "audio"

#: how far (seconds) a segment may end past the duration in its file's header (MP3 headers are approximate)
SEGMENT_TOLERANCE = 0.05



@dataclass(frozen=True)
class Utterance:
    """One utterance of a corpus: an audio file, or a segment of one, holding a single speaker

    Every reader makes them (a corpus' own, or an importer of the user's
    folders, manifest or Kaldi directory), and the writer writes them.

    Parameters
    ----------
    uri : str, optional
        Unique identifier, as the audio template's ``{uri}`` expects it
        (e.g. "SPEAKER0001/000010011"). No white space. Importers of the
        user's data read utterances without one: the protocol writer of
        :mod:`.own_data` gives it.
    speaker : str
        Speaker label.
    path : Path
        Absolute path to the audio file.
    duration : float, optional
        Duration in seconds of the audio file (from its header). Needed to
        write a subset of whole files.
    start, end : float, optional
        The utterance is the segment [start, end] of the file (seconds):
        a segment has an end; its start defaults to 0. Defaults to the
        whole file.
    source : str, optional
        Where it was read ("manifest.csv, line 12", a path), for error messages.
    subset : str, optional
        "train", "development" or "test", when the input says.
    key : str, optional
        The corpus' own id of the utterance (e.g. a Kaldi utterance id), as
        its trial list names it.
    """

    uri: Optional[str]
    speaker: str
    path: Path
    duration: Optional[float] = None
    start: Optional[float] = None
    end: Optional[float] = None
    source: str = ""
    subset: Optional[str] = None
    key: Optional[str] = None

    @property
    def is_segment(self) -> bool:
        return self.end is not None

    def turn(self) -> Tuple[float, float]:
        """(start, end) of the utterance's speech in its file, in seconds"""
        if self.is_segment:
            return float(self.start or 0.0), float(self.end)
        return 0.0, float(self.duration)


def seconds(duration: float) -> str:
    """Format a duration as seconds with 3 decimals, rounded down

    Rounding down keeps annotations within the audio file.
    """
    milliseconds = int(round(duration * 1e6)) // 1000
    return f"{milliseconds // 1000}.{milliseconds % 1000:03d}"


def escape_template(path: Union[Path, str]) -> str:
    """Escape the braces of a path used in a pyannote.database "{uri}" template"""
    return str(path).replace("{", "{{").replace("}", "}}")


def make_trials(
    utterances: Sequence[Utterance], seed: Union[int, str], max_trials: Optional[int] = None
) -> List[Trial]:
    """Every target trial (up to a cap), and as many random non-target trials

    Parameters
    ----------
    utterances : sequence of Utterance
        Files of the subset.
    seed : int or str
        Seed for drawing non-target pairs (and target pairs beyond the cap).
    max_trials : int, optional
        At most this many trials (half of them target trials). Defaults to
        every target trial.

    Returns
    -------
    trials : list of (reference, uri1, uri2)
        reference is 1 (same speaker) or 0. uri1 < uri2, no pair twice,
        sorted by (uri1, uri2).

    Raises
    ------
    DataError
        When no speaker has two utterances, or there is a single speaker.

    See also
    --------
    pyannote_embloss.data.trials.draw_pairs
    """
    from ..trials import draw_pairs

    utterances = sorted(utterances, key=lambda u: u.uri)
    pairs = draw_pairs([u.speaker for u in utterances], seed=seed, max_trials=max_trials)
    trials = [Trial(reference, utterances[i].uri, utterances[j].uri) for reference, i, j in pairs]
    return sorted(trials, key=lambda trial: (trial[1], trial[2]))


def _check_turn(utterance: Utterance) -> None:
    """Refuse an utterance without duration, or a segment outside its file"""
    if not utterance.is_segment:
        if utterance.duration is None or not utterance.duration > 0:
            raise DataError(f"'{utterance.path}' (uri '{utterance.uri}') has no positive duration.")
        return
    start, end = utterance.turn()
    if not 0 <= start < end:
        raise DataError(f"Segment [{start}, {end}] of '{utterance.path}' (uri '{utterance.uri}') is empty or negative.")
    if utterance.duration is not None and end > utterance.duration + SEGMENT_TOLERANCE:
        raise DataError(
            f"Segment [{start:g}, {end:g}] of '{utterance.path}' (uri '{utterance.uri}') ends after the end of "
            f"its file ({utterance.duration:g} s)."
        )


#: labels pandas reads as missing values (``read_csv``'s default NA values), quoted or not
NA_LABELS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
     "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)


def rttm_label(speaker: str) -> str:
    """`speaker` as an RTTM field that pyannote.database reads back as it is

    pyannote.database splits RTTM lines on white space (``pandas.read_csv`` with a
    white-space separator), which honours double quotes: a label with white space or
    a quote is written quoted (quotes doubled), any other as it is.

    Raises
    ------
    DataError
        For a label pandas reads as missing ("NA", "None", "nan", ...) or one
        that holds a line break.
    """
    if speaker in NA_LABELS:
        raise DataError(
            f"Speaker label {speaker!r} is read as a missing value by pyannote.database (pandas): rename that "
            "speaker (its folder, or its label in the list)."
        )
    if "\n" in speaker or "\r" in speaker:
        raise DataError(f"Speaker label {speaker!r} holds a line break: rename that speaker.")
    if '"' in speaker or any(character.isspace() for character in speaker):
        return '"' + speaker.replace('"', '""') + '"'
    return speaker


def file_identity(path: PathLike) -> Tuple:
    """What identifies an audio file whatever the path it is reached by (symbolic links, hard links)"""
    try:
        status = os.stat(path)
    except OSError:
        return ("path", os.path.abspath(path))
    return ("inode", status.st_dev, status.st_ino)


def _check_disjoint_files(
    subsets: Mapping[str, Sequence[Utterance]], protocol: str, identify: Callable[[PathLike], Tuple] = file_identity
) -> None:
    """Refuse a protocol whose subsets share audio: one file (or overlapping segments of it) in two subsets, or twice in one

    Files are identified by `identify`: by default :func:`file_identity` (a
    file reached through a symbolic link, or hard-linked in two folders, is the
    same file).
    """
    turns: Dict[Tuple, List[Tuple[str, Utterance]]] = {}
    for subset, utterances in subsets.items():
        for utterance in utterances:
            turns.setdefault(identify(utterance.path), []).append((subset, utterance))
    for shared in turns.values():
        if len(shared) < 2:
            continue
        for i, (subset1, u1) in enumerate(shared):
            for subset2, u2 in shared[i + 1 :]:
                (start1, end1), (start2, end2) = u1.turn(), u2.turn()
                if subset1 == subset2 and u1.uri == u2.uri:
                    continue  # the same subset key in two protocol subsets
                if (start1, end1) == (start2, end2) or (subset1 != subset2 and start1 < end2 and start2 < end1):
                    where = f"its {subset1} subset twice" if subset1 == subset2 else f"its {subset1} and {subset2} subsets"
                    raise DataError(
                        f"Protocol {protocol} would have the same audio in {where}: '{u1.path}' (uri '{u1.uri}') "
                        f"and '{u2.path}' (uri '{u2.uri}') are one file (a symbolic or hard link, or the same path"
                        f"{'' if (start1, end1) == (0.0, u1.duration) else ', overlapping segments'}). Remove the "
                        "duplicate from your data."
                    )


def _check_uri(uri: str) -> None:
    if not uri or any(character.isspace() for character in uri):
        raise DataError(
            f"uri {uri!r} is empty or contains white space, which pyannote.database lists cannot hold."
        )


class ProtocolWriter:
    """Files of pyannote.database speaker verification protocols, and their database.yml

    Parameters
    ----------
    output_dir : str or Path
        Where to write the files. Created when missing.
    database : str
        Database name (first part of the protocol names, e.g. "VoxCeleb").
    audio : str or list of str, optional
        pyannote.database audio template(s), e.g. "/corpus/wav/{uri}.wav".
        Braces of literal paths must be escaped (:func:`escape_template`).
        Defaults to linking the audio of each utterance as
        `output_dir`/audio/<uri> (a symbolic link to its file), with the
        template `output_dir`/audio/{uri}: any path works then, whatever its
        folder, name or format, and segments of a file each get a uri.
    header : str, optional
        Comment written at the top of database.yml (without "#").
    relative_to : str or Path, optional
        Write the paths of the lists in database.yml relative to this
        directory (as it will be written in the yml). Defaults to absolute paths.
    identify : callable, optional
        identify(path) -> key of an audio file: no protocol has one file in
        two of its subsets, or twice in one. Defaults to its absolute path;
        :func:`file_identity` sees through symbolic and hard links (the
        importers of your own data use it).
    """

    def __init__(
        self,
        output_dir: PathLike,
        database: str,
        audio: Union[str, Sequence[str], None] = None,
        header: str = "",
        relative_to: Optional[PathLike] = None,
        identify: Optional[Callable[[PathLike], Tuple]] = None,
    ):
        self.output_dir = Path(output_dir).expanduser().absolute()
        if "{" in str(self.output_dir) or "}" in str(self.output_dir):
            raise DataError(
                f"Output directory '{self.output_dir}' contains braces, which pyannote.database reads as placeholders."
            )
        self.database = database
        self.link_audio = audio is None
        if audio is None:
            audio = f"{escape_template(self.output_dir / AUDIO_LINKS)}/{{uri}}"
        self.audio = audio if isinstance(audio, str) else list(audio)
        self.header = header
        self.relative_to = relative_to
        self.identify = identify or (lambda path: ("path", os.path.abspath(path)))
        self._files: Dict[str, str] = {}
        self._subsets: Dict[str, List[Utterance]] = {}
        self._trials: Dict[str, List[Trial]] = {}
        self._protocols: Dict[str, Dict[str, dict]] = {}

    # -- content ----------------------------------------------------------------------

    def add_subset(self, key: str, utterances: Sequence[Utterance]) -> None:
        """Add the files `key`.lst, `key`.rttm and `key`.uem

        Parameters
        ----------
        key : str
            File name stem, e.g. "train" or "vox2-dev".
        utterances : sequence of Utterance
            With their duration. Written sorted by uri.

        Raises
        ------
        DataError
            When a uri is repeated or invalid, or a duration is missing.
        """
        utterances = sorted(utterances, key=lambda u: u.uri)
        if not utterances:
            raise DataError(f"Subset '{key}' of {self.database} has no file.")
        previous = None
        for utterance in utterances:
            _check_uri(utterance.uri)
            if utterance.uri == previous:
                raise DataError(f"uri '{utterance.uri}' is listed twice in subset '{key}' of {self.database}.")
            _check_turn(utterance)
            previous = utterance.uri
        turns = [utterance.turn() for utterance in utterances]
        self._subsets[key] = utterances
        self._files[f"{key}.lst"] = "".join(f"{u.uri}\n" for u in utterances)
        self._files[f"{key}.rttm"] = "".join(
            f"SPEAKER {u.uri} 1 {seconds(start)} {seconds(end - start)} <NA> <NA> {rttm_label(u.speaker)} <NA> <NA>\n"
            for u, (start, end) in zip(utterances, turns)
        )
        self._files[f"{key}.uem"] = "".join(
            f"{u.uri} 1 {seconds(start)} {seconds(end)}\n" for u, (start, end) in zip(utterances, turns)
        )

    def add_trials(self, key: str, trials: Sequence[Trial]) -> None:
        """Add the file `key`.trial

        Parameters
        ----------
        key : str
            File name stem.
        trials : sequence of (reference, uri1, uri2)
            In the order to write them.
        """
        if not trials:
            raise DataError(f"Trial list '{key}' of {self.database} is empty.")
        self._trials[key] = list(trials)
        self._files[f"{key}.trial"] = "".join(f"{int(r)} {u1} {u2}\n" for r, u1, u2 in trials)

    def add_protocol(
        self,
        task: str,
        name: str,
        disjoint_speakers: bool = True,
        **subsets: Union[str, Tuple[str, Optional[str]]],
    ) -> None:
        """Declare protocol `database`.`task`.`name` from subsets and trials added before

        Parameters
        ----------
        task : str
            e.g. "SpeakerVerification".
        name : str
            e.g. "Default".
        disjoint_speakers : bool, optional
            Refuse a protocol whose train subset shares a speaker with its
            trials (the usual verification setting). Defaults to True; set it
            to False for protocols that train on the trial speakers' other
            files on purpose (fine-tuning to known speakers).
        **subsets
            train="key", development=("key", "trial key"), test=("key", "trial key"):
            the subset files of each protocol subset and, for development and
            test, its trial file (or None).

        Raises
        ------
        DataError
            When a key was not added, a trial refers to a file not in its
            subset, or the train subset shares a speaker with a trial list.
        """
        entries: dict = {"scope": "global"}
        speakers_in_trials = set()
        for subset, value in subsets.items():
            if subset not in SUBSETS:
                raise DataError(f"Unknown protocol subset '{subset}': use {', '.join(SUBSETS)}.")
            key, trial_key = (value, None) if isinstance(value, str) else value
            if key not in self._subsets:
                raise DataError(f"Protocol {name}: subset files '{key}' were not added.")
            entries[subset] = {
                "uri": self._path(f"{key}.lst"),
                "annotation": self._path(f"{key}.rttm"),
                "annotated": self._path(f"{key}.uem"),
            }
            if trial_key is not None:
                if trial_key not in self._trials:
                    raise DataError(f"Protocol {name}: trial list '{trial_key}' was not added.")
                files = {u.uri: u.speaker for u in self._subsets[key]}
                outside = [uri for _, u1, u2 in self._trials[trial_key] for uri in (u1, u2) if uri not in files]
                if outside:
                    raise DataError(
                        f"Protocol {self.database}.{task}.{name}: {len(set(outside))} file(s) of trial list "
                        f"'{trial_key}' are not in its {subset} subset '{key}', e.g. {sorted(set(outside))[:3]}."
                    )
                speakers_in_trials |= {files[uri] for _, u1, u2 in self._trials[trial_key] for uri in (u1, u2)}
                entries[subset]["trial"] = self._path(f"{trial_key}.trial")
        if disjoint_speakers and "train" in subsets:
            train_key = subsets["train"] if isinstance(subsets["train"], str) else subsets["train"][0]
            shared = {u.speaker for u in self._subsets[train_key]} & speakers_in_trials
            if shared:
                raise DataError(
                    f"Protocol {self.database}.{task}.{name} would train on {len(shared)} speaker(s) of its own "
                    f"trials (e.g. {', '.join(sorted(shared)[:3])}): its results would be meaningless. "
                    "Train on speakers that no trial uses."
                )
        _check_disjoint_files(
            {subset: self._subsets[value if isinstance(value, str) else value[0]] for subset, value in subsets.items()},
            f"{self.database}.{task}.{name}",
            self.identify,
        )
        self._protocols.setdefault(task, {})[name] = entries

    def _path(self, filename: str) -> str:
        path = self.output_dir / filename
        if self.relative_to is not None:
            return os.path.relpath(path, self.relative_to)
        return str(path)

    # -- output -----------------------------------------------------------------------

    def database_yml(self) -> str:
        """Content of database.yml"""
        config = {
            "Databases": {self.database: self.audio},
            "Protocols": {self.database: self._protocols},
        }
        header = "".join(f"# {line}\n" if line else "#\n" for line in self.header.splitlines())
        return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)

    def write(self, name: str = "database.yml") -> Path:
        """Write every file (atomically, only those that changed), database.yml last

        Returns
        -------
        database_yml : Path
        """
        if not self._protocols:
            raise DataError(f"No protocol was declared for {self.database}: nothing to write.")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.link_audio:
            self._link_audio()
        for filename, text in self._files.items():
            write_if_changed(self.output_dir / filename, text)
        yml = self.output_dir / name
        write_if_changed(yml, self.database_yml())
        return yml

    def _link_audio(self) -> None:
        """Link each utterance's file as `output_dir`/audio/<uri> (links that already point there are kept)"""
        root = self.output_dir / AUDIO_LINKS
        targets: Dict[str, str] = {}
        for utterances in self._subsets.values():
            for u in utterances:
                target = str(Path(u.path).absolute())
                if targets.setdefault(u.uri, target) != target:
                    raise DataError(f"uri '{u.uri}' stands for two files: '{targets[u.uri]}' and '{target}'.")
        made = set()
        for uri, target in targets.items():
            link = root / uri
            if link.parent not in made:
                link.parent.mkdir(parents=True, exist_ok=True)
                made.add(link.parent)
            try:
                if os.readlink(link) == target:
                    continue
            except OSError:  # missing (or not a link: replaced below)
                pass
            temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
            temporary.unlink(missing_ok=True)
            os.symlink(target, temporary)
            os.replace(temporary, link)

    @property
    def protocols(self) -> List[str]:
        """Names of the declared protocols"""
        return [f"{self.database}.{task}.{name}" for task, names in self._protocols.items() for name in names]

    def trials(self, key: str) -> List[Trial]:
        """Trials added under `key`"""
        return self._trials[key]

    def subset(self, key: str) -> List[Utterance]:
        """Utterances added under `key`, sorted by uri"""
        return self._subsets[key]


def with_durations(
    utterances: Sequence[Utterance],
    cache: Optional[PathLike] = None,
    num_workers: Optional[int] = None,
    progress: bool = True,
) -> List[Utterance]:
    """The same utterances, with their duration read from the audio headers

    See :func:`pyannote_embloss.data.audio.read_durations` (parallel reads, resumable cache).
    """
    from ..audio import read_durations

    durations = read_durations([u.path for u in utterances], num_workers=num_workers, cache=cache, progress=progress)
    return [replace(u, duration=duration) for u, duration in zip(utterances, durations)]


def screen_files(
    paths: Sequence[PathLike],
    output_dir: PathLike,
    exclude_bad: bool = False,
    num_workers: Optional[int] = None,
    progress: bool = True,
) -> Tuple[Dict[str, float], Dict[str, str]]:
    """Decode every file once (``prepare --check-audio``): refuse, or leave out, those that fail

    Parameters
    ----------
    paths : sequence of str or Path
    output_dir : str or Path
        Where `bad_files.txt` is written with `exclude_bad`.
    exclude_bad : bool, optional
        Leave the bad files out (listed in `output_dir`/bad_files.txt)
        instead of raising. Defaults to False.

    Returns
    -------
    durations : dict
        {path: seconds that decode} of the files that decode (see
        :func:`pyannote_embloss.data.audio.check_audio`: unreadable headers, damaged
        bodies and bodies shorter than their header fail).
    failures : dict
        {path: why} of the others (empty without `exclude_bad`): write them
        with :func:`write_bad_list` once the protocol is written.

    Raises
    ------
    AudioDecodingError
        Without `exclude_bad`, when some files fail: all are listed, and no
        protocol file is written.
    """
    from ..audio import check_audio
    from ...errors import AudioDecodingError

    failures, durations = check_audio(paths, num_workers=num_workers, progress=progress)
    bad_list = Path(output_dir) / "bad_files.txt"  # where --exclude-bad lists them
    if failures and not exclude_bad:
        listed = "\n".join(f" - {error}" for _, error in sorted(failures.items())[:20])
        more = f"\n   ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise AudioDecodingError(
            f"{len(failures)} of {len(failures) + len(durations)} audio files fail to decode; no protocol was "
            f"written:\n{listed}{more}\nFix or remove them, or pass --exclude-bad to leave them out (they are then "
            f"listed in {bad_list})."
        )
    return durations, failures


def write_bad_list(output_dir: PathLike, failures: Mapping[str, str]) -> None:
    """`output_dir`/bad_files.txt: the files ``--exclude-bad`` left out, and why (removed when there is none)"""
    bad_list = Path(output_dir) / "bad_files.txt"
    if failures:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(bad_list, "".join(f"{path}\t{error}\n" for path, error in sorted(failures.items())))
    else:
        bad_list.unlink(missing_ok=True)


def screen_audio(
    utterances: Sequence[Utterance],
    output_dir: PathLike,
    exclude_bad: bool = False,
    num_workers: Optional[int] = None,
    progress: bool = True,
) -> List[Utterance]:
    """The utterances whose file decodes (:func:`screen_files`), with the duration that decodes

    A segment that ends after what its file decodes fails with its file.
    """
    durations, failures = screen_files([u.path for u in utterances], output_dir, exclude_bad, num_workers, progress)
    write_bad_list(output_dir, failures)
    kept = []
    for utterance in utterances:
        duration = durations.get(str(utterance.path))
        if duration is None:
            continue
        if utterance.is_segment and utterance.end > duration + SEGMENT_TOLERANCE:
            if not exclude_bad:
                from ...errors import AudioDecodingError

                raise AudioDecodingError(
                    f"Segment [{utterance.start:g}, {utterance.end:g}] of '{utterance.path}' ends after the "
                    f"{duration:.2f} s that decode: no protocol was written. Fix the file or its times, or pass "
                    "--exclude-bad to leave it out."
                )
            continue
        kept.append(replace(utterance, duration=duration))
    return kept


def group_by_speaker(utterances: Sequence[Utterance]) -> Mapping[str, List[Utterance]]:
    """Utterances of each speaker, sorted by uri"""
    by_speaker: Dict[str, List[Utterance]] = {}
    for utterance in sorted(utterances, key=lambda u: u.uri):
        by_speaker.setdefault(utterance.speaker, []).append(utterance)
    return by_speaker
