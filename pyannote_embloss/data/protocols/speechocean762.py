"""SpeechOcean762 as a pyannote.database speaker verification protocol

speechocean762 (OpenSLR resource 101) is read English by 250 Mandarin-speaking
speakers, officially split by speaker into `train/` and `test/` Kaldi lists.
:func:`prepare` turns it into ``SpeechOcean762.SpeakerVerification.Default``:

- train: the official train speakers (125 in the full corpus).
- development, test: the official test speakers, sorted then shuffled with a
  fixed seed and cut into two disjoint groups (25 and 100 speakers by default;
  see `num_development_speakers`).
- development and test trials: every target pair of utterances (unordered,
  same speaker) and as many distinct non-target pairs (different speakers),
  drawn with a fixed seed, sorted by uris.

Every file covers one speech turn: RTTM annotation and UEM annotated region
both span the whole file, whose duration is read from the audio header.

URIs are the audio paths relative to ``WAVE/`` without extension, e.g.
``SPEAKER0001/000010011``: never numeric, so pandas (which pyannote.database
uses to read trial files) keeps them as strings with their leading zeros.
Labels are "SPEAKER" + the corpus speaker id (``SPEAKER0001``).

Files written (by :class:`~pyannote_embloss.data.protocols.writer.ProtocolWriter`) to
`output_dir` (default: ``data/speechocean762`` in the repository, git-ignored)::

    database.yml                   self-contained, absolute paths
    {train,development,test}.lst   uris
    {train,development,test}.rttm  one speech turn per file
    {train,development,test}.uem   whole file
    {development,test}.trial       "1|0 uri1 uri2"
    WAVE -> <corpus>/WAVE          symlink used by the repository's database.yml

The repository's ``database.yml`` declares the same protocol with paths
relative to itself, so that ``registry.load_database("database.yml")`` works
once the default `output_dir` is prepared (and does not fail before).
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path, PurePosixPath
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

from ...errors import ConfigError, CorpusNotFoundError, DataError, MissingFileError, OutputExistsError
from ...io import PathLike
from .download import download_archive
from .kaldi import read_kaldi_map
from .writer import ProtocolWriter, Utterance, escape_template, make_trials, screen_audio, with_durations

PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"
DATABASE, TASK, NAME = PROTOCOL.split(".")
ENV_VAR = "PYANNOTE_EMBLOSS_SPEECHOCEAN762"
OPENSLR_PAGE = "https://www.openslr.org/101/"
OPENSLR_URL = "https://www.openslr.org/resources/101/speechocean762.tar.gz"
PREPARE_COMMAND = "pyannote-audio-emb prepare speechocean762"

# repository root: the directory holding setup.py and database.yml
REPO_ROOT = Path(__file__).resolve().parents[3]
# default corpus location, relative to the repository root or the working directory
SHARED_CORPUS = Path("..", "shared", "data", "speechocean762")

REQUIRED = ("train/wav.scp", "test/wav.scp")  # what makes a directory a corpus root
LAYOUT = REQUIRED + ("WAVE/",)  # what a downloaded archive must contain
AUDIO_DIR = "WAVE"
SUBSETS = ("train", "development", "test")
TRIAL_SUBSETS = ("development", "test")
NUM_DEVELOPMENT_SPEAKERS = 25
SEED = 762


def default_output_dir() -> Path:
    """Default `prepare` output directory: data/speechocean762 in the repository of a source checkout
    (its database.yml refers to it), else under the current directory"""
    base = REPO_ROOT if (REPO_ROOT / "database.yml").is_file() else Path.cwd()
    return base / "data" / "speechocean762"


def how_to_get() -> str:
    """Instructions to get the corpus, for error messages"""
    return (
        f"Get speechocean762 (OpenSLR resource 101, {OPENSLR_PAGE}) with one of:\n"
        f" - `{PREPARE_COMMAND} --download` (downloads {OPENSLR_URL}, about 500 MB)\n"
        f" - `{PREPARE_COMMAND} --root DIR` where DIR holds train/, test/ and WAVE/\n"
        f" - setting the {ENV_VAR} environment variable to DIR"
    )


def _missing(path: Path) -> Optional[str]:
    """Why `path` is not a corpus root (None when it is one)"""
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a directory"
    missing = [required for required in REQUIRED if not (path / required).is_file()]
    if missing:
        return f"has no {' nor '.join(missing)}"
    return None


def is_corpus_root(path: PathLike) -> bool:
    """Whether `path` has train/wav.scp and test/wav.scp"""
    return _missing(Path(path).expanduser()) is None


def _default_candidates() -> List[Tuple[Path, str]]:
    """Default corpus locations, with a description of where they come from"""
    candidates = [
        (REPO_ROOT / SHARED_CORPUS, "default, relative to the repository"),
        (Path.cwd() / SHARED_CORPUS, "default, relative to the working directory"),
        (default_output_dir() / "corpus", f"where `{PREPARE_COMMAND} --download` puts it"),
    ]
    unique, seen = [], set()
    for path, origin in candidates:
        key = os.path.normpath(path.absolute())
        if key not in seen:
            seen.add(key)
            unique.append((Path(key), origin))
    return unique


def find_corpus(root: Optional[PathLike] = None) -> Path:
    """Locate the speechocean762 corpus

    A directory is a corpus root when it has train/wav.scp and test/wav.scp.

    Parameters
    ----------
    root : str or Path, optional
        Corpus root. When given, it must be valid: there is no fallback.
        Otherwise, look at (in this order) the directory named by the
        PYANNOTE_EMBLOSS_SPEECHOCEAN762 environment variable,
        ../shared/data/speechocean762 relative to the repository root then to
        the working directory, and data/speechocean762/corpus in the
        repository (where ``prepare --download`` puts it).

    Returns
    -------
    root : Path
        Absolute path to the corpus root.

    Raises
    ------
    CorpusNotFoundError
        When `root` is not a corpus root, or when none of the places looked at
        is. The message lists them and says how to get the corpus.
    """
    if root is not None:
        path = Path(root).expanduser()
        reason = _missing(path)
        if reason is None:
            return path.resolve()
        message = f"'{path}' (given as speechocean762 corpus root) {reason}."
        nested = path / "speechocean762"
        if _missing(nested) is None:
            message += f" Did you mean '{nested}'?"
        raise CorpusNotFoundError(f"{message}\n{how_to_get()}")

    candidates = _default_candidates()
    searched = []
    env = os.environ.get(ENV_VAR)
    if env:
        candidates.insert(0, (Path(env).expanduser(), f"${ENV_VAR}"))
    else:
        searched.append(f" - ${ENV_VAR}: not set")

    for path, origin in candidates:
        reason = _missing(path)
        if reason is None:
            return path.resolve()
        searched.append(f" - {path} ({origin}): {reason}")
        if env and origin == f"${ENV_VAR}":
            warnings.warn(f"Ignoring {ENV_VAR}='{env}': it {reason}.")

    raise CorpusNotFoundError(
        "Could not find the speechocean762 corpus. Looked at:\n"
        + "\n".join(searched)
        + "\n"
        + how_to_get()
    )


def download(
    destination: PathLike,
    url: str = OPENSLR_URL,
    *,
    md5: Optional[str] = None,
    timeout: float = 60,
) -> Path:
    """Download and unpack speechocean762

    Parameters
    ----------
    destination : str or Path
        Corpus root to create: the archive's top-level folder (whatever its
        name) is unpacked as `destination`. Must not exist or be empty, unless
        it already holds the corpus (then nothing is downloaded).
    url : str, optional
        Archive URL. Defaults to OpenSLR resource 101 (OpenSLR mirrors work too).
    md5 : str, optional
        Expected md5 hex digest of the archive.
    timeout : float, optional
        Network timeout in seconds. Defaults to 60.

    Returns
    -------
    root : Path
        Absolute path to the corpus root (train/, test/, WAVE/).

    Raises
    ------
    DownloadError
        When the download is interrupted, the archive is corrupt, its md5 is
        not `md5`, or it lacks train/wav.scp, test/wav.scp or WAVE/. Nothing
        is left behind.
    FileExistsError
        When `destination` exists, is not empty and is not the corpus.
    """
    destination = Path(destination).expanduser()
    if _missing(destination) is None and (destination / AUDIO_DIR).is_dir():
        return destination.resolve()
    return download_archive(url, destination, required=LAYOUT, md5=md5, timeout=timeout)


# ---------------------------------------------------------------------------
# reading the corpus


def _uri(relative: str, wav_scp: Path, utt: str) -> Tuple[str, str]:
    """Split a wav.scp path ("WAVE/SPEAKER0001/x.flac") into uri and extension"""
    path = PurePosixPath(relative)
    if path.is_absolute() or len(path.parts) < 2 or path.parts[0] != AUDIO_DIR or ".." in path.parts:
        raise DataError(
            f"{wav_scp}: '{utt}' points to '{relative}'; expected a path relative to the "
            f"corpus root, under {AUDIO_DIR}/ (e.g. {AUDIO_DIR}/SPEAKER0001/000010011.WAV)."
        )
    if not path.suffix:
        raise DataError(f"{wav_scp}: '{relative}' (utterance '{utt}') has no file extension.")
    uri = str(PurePosixPath(*path.parts[1:]).with_suffix(""))
    if any(character.isspace() for character in uri):
        raise DataError(f"{wav_scp}: '{relative}' contains white space, which pyannote.database lists cannot hold.")
    return uri, path.suffix


def read_split(root: Path, split: str) -> Tuple[List[Utterance], Set[str]]:
    """Read the utterances of one official split ("train" or "test")

    Parameters
    ----------
    root : Path
        Corpus root.
    split : str
        "train" or "test".

    Returns
    -------
    utterances : list of Utterance
        Sorted by uri.
    extensions : set of str
        Audio file extensions found in wav.scp (".flac", ".WAV", ...).
    """
    wav_scp = root / split / "wav.scp"
    utt2spk_path = root / split / "utt2spk"
    wav, utt2spk = read_kaldi_map(wav_scp), read_kaldi_map(utt2spk_path)
    utterances, extensions = [], set()
    for utt, relative in wav.items():
        if utt not in utt2spk:
            raise DataError(f"Utterance '{utt}' of {wav_scp} has no speaker in {utt2spk_path}.")
        uri, extension = _uri(relative, wav_scp, utt)
        extensions.add(extension)
        utterances.append(Utterance(uri=uri, speaker=f"SPEAKER{utt2spk[utt]}", path=root / relative))
    if not utterances:
        raise DataError(f"{wav_scp} lists no utterance.")
    return sorted(utterances, key=lambda u: u.uri), extensions


def read_corpus(root: Path) -> Tuple[List[Utterance], List[Utterance], str]:
    """Read and check the official train and test splits

    Parameters
    ----------
    root : Path
        Corpus root.

    Returns
    -------
    train, test : list of Utterance
        Utterances of each split, sorted by uri.
    extension : str
        The audio file extension shared by all files (".flac", ".WAV", ...).

    Raises
    ------
    ValueError
        When the corpus mixes audio extensions, a uri or speaker is in both
        splits.
    FileNotFoundError
        When audio files listed in wav.scp are missing.
    """
    train, train_extensions = read_split(root, "train")
    test, test_extensions = read_split(root, "test")
    extensions = train_extensions | test_extensions
    if len(extensions) > 1:
        raise DataError(
            f"{root}: train/wav.scp and test/wav.scp mix audio file extensions "
            f"({', '.join(sorted(extensions))}); the protocol needs a single "
            f"'{AUDIO_DIR}/{{uri}}<extension>' template. Convert the files to one format "
            "and update wav.scp."
        )
    both = {u.uri for u in train} & {u.uri for u in test}
    if both:
        raise DataError(f"{root}: {len(both)} files are in both train and test (e.g. '{min(both)}').")
    shared = {u.speaker for u in train} & {u.speaker for u in test}
    if shared:
        raise DataError(
            f"{root}: speakers {', '.join(sorted(shared)[:5])} are in both train/utt2spk and "
            "test/utt2spk; the official split is by speaker."
        )
    missing = [u.path for u in train + test if not u.path.is_file()]
    if missing:
        raise MissingFileError(
            f"{len(missing)} audio files listed in {root}/{{train,test}}/wav.scp are missing, e.g. "
            + ", ".join(f"'{path}'" for path in missing[:3])
            + ". The corpus is incomplete: download it again."
        )
    return train, test, extensions.pop()


# ---------------------------------------------------------------------------
# building the protocol


def split_speakers(
    speakers: Iterable[str], num_development: int, seed: Union[int, str] = SEED
) -> Tuple[List[str], List[str]]:
    """Split speakers into development and test groups, deterministically

    Parameters
    ----------
    speakers : iterable of str
        Speakers to split (sorted first, so their order does not matter).
    num_development : int
        Number of development speakers; the others are test speakers.
    seed : int or str, optional
        Shuffling seed.

    Returns
    -------
    development, test : list of str
        Sorted speakers of each group.
    """
    speakers = sorted(set(speakers))
    if not 2 <= num_development <= len(speakers) - 2:
        raise DataError(
            f"Cannot split {len(speakers)} test speakers into {num_development} development "
            "speakers and the rest for test: each group needs at least 2 speakers "
            "(for non-target trials). Pass another `num_development_speakers`."
        )
    shuffled = list(speakers)
    random.Random(f"{seed}:split").shuffle(shuffled)
    return sorted(shuffled[:num_development]), sorted(shuffled[num_development:])


def make_subsets(
    train: List[Utterance], test: List[Utterance], num_development_speakers: int, seed: Union[int, str]
) -> Dict[str, List[Utterance]]:
    """Protocol subsets from the official splits

    Returns
    -------
    subsets : dict
        {"train": ..., "development": ..., "test": ...}, utterances sorted by uri.
    """
    development_speakers, _ = split_speakers({u.speaker for u in test}, num_development_speakers, seed)
    development_speakers = set(development_speakers)
    return {
        "train": train,
        "development": [u for u in test if u.speaker in development_speakers],
        "test": [u for u in test if u.speaker not in development_speakers],
    }


def _link_audio(link: Path, target: Path) -> None:
    """Make `link` a symbolic link to `target` (atomically), if possible"""
    if link.is_symlink():
        if os.readlink(link) == str(target):
            return
    elif link.exists():
        raise OutputExistsError(
            f"'{link}' exists and is not a symbolic link: prepare links it to the corpus audio "
            f"'{target}'. Remove it, or choose another output directory."
        )
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        temporary.unlink(missing_ok=True)
        os.symlink(target, temporary, target_is_directory=True)
        os.replace(temporary, link)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        warnings.warn(
            f"Could not link '{link}' to '{target}' ({error}): the repository's database.yml "
            f"will not find the audio; use '{link.parent / 'database.yml'}' instead."
        )


def _locate(
    root: Optional[PathLike], output_dir: Path, download_: bool, url: str, md5: Optional[str]
) -> Path:
    """Find the corpus, else download it if asked to"""
    try:
        return find_corpus(root)
    except CorpusNotFoundError:
        previous = output_dir / "corpus"
        if root is None and is_corpus_root(previous):
            return previous.resolve()
        if not download_:
            raise
    destination = Path(root).expanduser() if root is not None else output_dir / "corpus"
    return download(destination, url, md5=md5)


def prepare(
    root: Optional[PathLike] = None,
    output_dir: Optional[PathLike] = None,
    download: bool = False,
    *,
    url: str = OPENSLR_URL,
    md5: Optional[str] = None,
    num_development_speakers: int = NUM_DEVELOPMENT_SPEAKERS,
    seed: int = SEED,
    progress: bool = False,
    check_audio: bool = False,
    exclude_bad: bool = False,
    num_workers: Optional[int] = None,
) -> Path:
    """Write the SpeechOcean762.SpeakerVerification.Default protocol files

    Idempotent: running it again with the same corpus and arguments gives
    byte-identical files (and does not rewrite them).

    Parameters
    ----------
    root : str or Path, optional
        Corpus root. Defaults to :func:`find_corpus` lookup (then
        `output_dir`/corpus).
    output_dir : str or Path, optional
        Where to write the protocol files. Defaults to data/speechocean762 in
        the repository, which the repository's database.yml refers to.
    download : bool, optional
        Download the corpus (into `root` when given, else `output_dir`/corpus)
        when it is not found. Defaults to False.
    url, md5 : str, optional
        Archive to download, and its expected md5. See :func:`download`.
    num_development_speakers : int, optional
        Number of official test speakers that make the development subset; the
        others make the test subset. Defaults to 25 (out of 125). Lower it for
        smaller corpora (each group needs at least 2 speakers).
    seed : int, optional
        Seed of the development/test split and of the non-target trials.
    progress : bool, optional
        Show progress bars (durations, audio check). Defaults to False.
    check_audio : bool, optional
        Decode every file first, and write nothing while some fail (see
        :func:`~pyannote_embloss.data.protocols.writer.screen_audio`). Defaults to False.
    exclude_bad : bool, optional
        With `check_audio`, leave the files that fail out instead.
    num_workers : int, optional
        Parallel readers.

    Returns
    -------
    database_yml : Path
        Generated `output_dir`/database.yml, registering the protocol.

    Raises
    ------
    CorpusNotFoundError
        When the corpus is not found (and `download` is False).
    """
    output_dir = Path(output_dir).expanduser() if output_dir is not None else default_output_dir()
    output_dir = output_dir.absolute()
    corpus = _locate(root, output_dir, download, url, md5)
    train, test, extension = read_corpus(corpus)
    if check_audio:
        kept = {u.path for u in screen_audio(train + test, output_dir, exclude_bad, num_workers, progress)}
        train, test = [u for u in train if u.path in kept], [u for u in test if u.path in kept]
    elif exclude_bad:
        raise ConfigError("--exclude-bad needs --check-audio (which finds the bad files).")
    train = with_durations(train, num_workers=num_workers, progress=progress)
    test = with_durations(test, num_workers=num_workers, progress=progress)
    subsets = make_subsets(train, test, num_development_speakers, seed)

    writer = ProtocolWriter(
        output_dir,
        DATABASE,
        f"{escape_template(corpus / AUDIO_DIR)}/{{uri}}{extension}",
        header=f"Generated by `{PREPARE_COMMAND}` from the corpus in\n{corpus}\nDo not edit: run the command again instead.",
    )
    for subset, utterances in subsets.items():
        writer.add_subset(subset, utterances)
        if subset in TRIAL_SUBSETS:
            writer.add_trials(subset, make_trials(utterances, seed=f"{seed}:{subset}:trials"))
    writer.add_protocol(TASK, NAME, **{s: (s, s if s in TRIAL_SUBSETS else None) for s in SUBSETS})
    output_dir.mkdir(parents=True, exist_ok=True)
    _link_audio(output_dir / AUDIO_DIR, corpus / AUDIO_DIR)
    return writer.write()
