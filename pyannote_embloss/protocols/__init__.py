"""Data protocols: corpora turned into pyannote.database protocols

>>> from pyannote_embloss.protocols import CORPORA, get_protocol
>>> CORPORA["speechocean762"].prepare()  # writes data/speechocean762/
>>> protocol = get_protocol("SpeechOcean762.SpeakerVerification.Default")
>>> for trial in protocol.test_trial(): ...

`CORPORA` maps a corpus name (as in ``pyannote-audio-emb prepare <corpus>``) to
its module, which provides ``prepare``, ``download``, ``find_corpus``,
``PROTOCOL``, ``DATABASE`` and ``PREPARE_COMMAND``.
"""

from __future__ import annotations

import inspect
import os
import string
import sys
from pathlib import Path
from typing import List, Optional

from pyannote.database import FileFinder
from pyannote.database.protocol.protocol import Preprocessors, Protocol
from pyannote.database.registry import Registry

from ..errors import ConfigError, CorpusNotFoundError, DataError, DownloadError, MissingFileError
from ..io import PathLike
from . import speechocean762, voxceleb
from .speechocean762 import download, find_corpus, prepare

DEFAULT_DATABASE_YML = speechocean762.REPO_ROOT / "database.yml"

CORPORA = {"speechocean762": speechocean762, "voxceleb": voxceleb}

__all__ = [
    "CORPORA",
    "CorpusNotFoundError",
    "DEFAULT_DATABASE_YML",
    "DownloadError",
    "MissingFileError",
    "download",
    "find_corpus",
    "get_protocol",
    "prepare",
    "prepare_corpus",
    "prepare_if_missing",
]


def _prepare_hint(database: Optional[str] = None) -> str:
    """How to generate the files of `database` (or of every known corpus)"""
    commands = [
        f"`{module.PREPARE_COMMAND}`"
        for module in CORPORA.values()
        if database is None or module.DATABASE == database
    ]
    if not commands:
        return ""
    return f" Generate them with {' or '.join(commands)} (see its --help)."


def _known_corpus_hint(database: str) -> str:
    """Where the protocols of `database` come from, when it is a known corpus"""
    for module in CORPORA.values():
        if module.DATABASE == database:
            return (
                f" {database} protocols are declared by '{DEFAULT_DATABASE_YML}' (or the database.yml "
                f"written by `{module.PREPARE_COMMAND}`); run that command first."
            )
    return ""


def database_ymls(database_yml: Optional[PathLike] = None) -> List[Path]:
    """pyannote.database configuration files to load

    Parameters
    ----------
    database_yml : str or Path, optional
        Configuration file. Defaults to the PYANNOTE_DATABASE_CONFIG
        environment variable (";"-separated paths) when set, else to the
        repository's database.yml.

    Returns
    -------
    paths : list of Path
    """
    if database_yml is not None:
        return [Path(database_yml).expanduser()]
    env = os.environ.get("PYANNOTE_DATABASE_CONFIG", "")
    paths = [Path(path).expanduser() for path in env.split(";") if path.strip()]
    return paths or [DEFAULT_DATABASE_YML]


def load_registry(paths: List[Path]) -> Registry:
    """A new pyannote.database registry with `paths` loaded

    Raises
    ------
    FileNotFoundError
        When a configuration file (or one it requires) is missing.
    """
    registry = Registry()
    for path in paths:
        if not path.is_file():
            hint = _prepare_hint() if path.resolve() == DEFAULT_DATABASE_YML.resolve() else ""
            raise MissingFileError(f"pyannote.database configuration file '{path}' does not exist.{hint}")
        try:
            registry.load_database(path)
        except FileNotFoundError as error:
            missing = error.filename or str(error)
            raise MissingFileError(
                f"Could not load '{path}': '{missing}' (which it requires) does not exist.{_prepare_hint()}"
            ) from error
    return registry


def _protocol_config(registry: Registry, name: str) -> Optional[tuple]:
    """(database.yml, entries) of the last loaded file that defines protocol `name`"""
    database, task, protocol = name.split(".")
    found = None
    for yml, config in registry.configs.items():
        tasks = {str(k): v for k, v in (config.get("Protocols") or dict()).items()}.get(database) or dict()
        protocols = {str(k): v for k, v in (tasks.get(task) or dict()).items()}
        if protocol in protocols:
            found = (Path(yml), protocols[protocol])
    return found


def _is_template(value: str) -> bool:
    return any(field is not None for _, field, _, _ in string.Formatter().parse(value))


def check_protocol_files(registry: Registry, name: str, audio: bool = True) -> None:
    """Check that the files protocol `name` refers to exist

    Parameters
    ----------
    registry : Registry
        Registry where `name` is loaded.
    name : str
        Protocol name.
    audio : bool, optional
        Also check that the protocol's database has a "Databases:" entry
        whose directory exists. Defaults to True.

    Raises
    ------
    FileNotFoundError
        Naming the missing files and how to generate them.
    ValueError
        When the database has no "Databases:" entry.
    """
    database = name.split(".")[0]
    found = _protocol_config(registry, name)
    if found is None:  # e.g. meta-protocol: let pyannote.database deal with it
        return
    yml, entries = found
    missing = []
    for subset, subset_entries in entries.items():
        if not isinstance(subset_entries, dict):
            continue
        for key, value in subset_entries.items():
            if not isinstance(value, str) or _is_template(value):
                continue
            path = Path(value).expanduser()
            if not (path.is_file() or (yml.parent / path).is_file()):
                missing.append(f" - {subset}.{key}: {path if path.is_absolute() else yml.parent / path}")
    if missing:
        more = f"\n   ... and {len(missing) - 4} more" if len(missing) > 5 else ""
        raise MissingFileError(
            f"Protocol '{name}' (from '{yml}') refers to missing files:\n"
            + "\n".join(missing if len(missing) <= 5 else missing[:4])
            + more
            + "\n"
            + _prepare_hint(database).strip()
        )

    if not audio:
        return
    templates = registry.sources.get(database)
    if not templates:
        raise DataError(
            f"No 'Databases: {database}: ...' entry in '{yml}' (nor in the files it requires): "
            f"pyannote.database cannot tell where the audio files of '{name}' are."
        )
    directories = [Path(template.split("{")[0].split("*")[0]) for template in templates]
    directories = [d if str(d).endswith(os.sep) else d.parent for d in directories]
    if not any(directory.is_dir() for directory in directories):
        raise MissingFileError(
            f"Audio directory of '{database}' does not exist: "
            + ", ".join(f"'{directory}'" for directory in directories)
            + f" (from '{yml}')."
            + _prepare_hint(database)
        )


def get_protocol(
    name: str,
    database_yml: Optional[PathLike] = None,
    preprocessors: Optional[Preprocessors] = None,
) -> Protocol:
    """Load a pyannote.database protocol, with clear errors

    Parameters
    ----------
    name : str
        Protocol name, e.g. "SpeechOcean762.SpeakerVerification.Default".
    database_yml : str or Path, optional
        pyannote.database configuration file. Defaults to the
        PYANNOTE_DATABASE_CONFIG environment variable when set, else to the
        repository's database.yml.
    preprocessors : dict, optional
        Protocol preprocessors, added to (or overriding) the default
        {"audio": FileFinder(registry)}.

    Returns
    -------
    protocol : Protocol
        Protocol whose files have "audio" resolved by `FileFinder`.

    Raises
    ------
    FileNotFoundError
        When the configuration file, or a file the protocol needs, is missing
        (the message says how to generate it).
    ValueError
        When the protocol is unknown (the message lists the known ones).

    Notes
    -----
    The configuration is loaded into a new `pyannote.database.registry.Registry`
    (not the global one), so that protocols loaded from different files do
    not override each other's audio locations. The default `FileFinder` uses
    that registry.

    With the repository's own database.yml, the protocol files of a known
    corpus are generated first when they are missing and the corpus is on
    this machine (see :func:`prepare_if_missing`): on a fresh clone,
    training works without a separate ``prepare`` step, from Python as from
    the command line.
    """
    prepare_if_missing(name, database_yml)
    paths = database_ymls(database_yml)
    registry = load_registry(paths)
    known = sorted(registry)
    if name not in known:
        database = name.split(".")[0]
        raise DataError(
            f"Unknown protocol '{name}' in {', '.join(repr(str(path)) for path in paths)}. "
            f"Known protocols: {', '.join(known) or 'none'}."
            + _known_corpus_hint(database)
        )
    default_audio = preprocessors is None or "audio" not in preprocessors
    check_protocol_files(registry, name, audio=default_audio)
    all_preprocessors = {"audio": FileFinder(registry=registry)}
    all_preprocessors.update(preprocessors or dict())
    return registry.get_protocol(name, preprocessors=all_preprocessors)


def prepare_corpus(corpus: str, trials=None, **options) -> Path:
    """``pyannote-audio-emb prepare CORPUS``: write a known corpus' protocols

    Parameters
    ----------
    corpus : str
        A key of :data:`CORPORA`.
    trials : list of Path, optional
        Trial lists given explicitly (VoxCeleb only).
    **options
        root, output_dir, download, check_audio, exclude_bad, num_workers,
        progress: see the corpus module's ``prepare``.

    Returns
    -------
    database_yml : Path
    """
    if corpus not in CORPORA:
        raise ConfigError(f"Unknown corpus '{corpus}'. Known corpora: {', '.join(CORPORA)}.")
    module = CORPORA[corpus]
    if trials:
        if "trials" not in inspect.signature(module.prepare).parameters:
            raise ConfigError(f"--trials is not an option of `prepare {corpus}` (its trials are generated).")
        options["trials"] = trials
    if options.get("download") and "download" not in inspect.signature(module.prepare).parameters:
        raise ConfigError(f"`prepare {corpus}` cannot download the corpus: get it yourself and pass --root.")
    options = {k: v for k, v in options.items() if k in inspect.signature(module.prepare).parameters}
    return module.prepare(**options)


def prepare_if_missing(name: str, database_yml: Optional[PathLike] = None) -> bool:
    """Generate the files of a known corpus' protocol when they are missing

    Only for the repository's own database.yml (the default), and only when
    the corpus is on this machine (:func:`find_corpus`: nothing is downloaded),
    so that ``pyannote-audio-emb train experiments/aam`` works on a fresh clone
    without a separate ``prepare`` step. In every other case nothing happens,
    and :func:`get_protocol` reports what is missing and how to get it.

    Parameters
    ----------
    name : str
        Protocol name, e.g. "SpeechOcean762.SpeakerVerification.Default".
    database_yml : str or Path, optional
        As in :func:`get_protocol`.

    Returns
    -------
    prepared : bool
        Whether the files were generated.
    """
    paths = database_ymls(database_yml)
    if [path.resolve() for path in paths] != [DEFAULT_DATABASE_YML.resolve()]:
        return False
    database = name.split(".")[0]
    module = next((m for m in CORPORA.values() if m.DATABASE == database), None)
    if module is None:
        return False
    try:
        check_protocol_files(load_registry(paths), name)
        return False
    except (MissingFileError, DataError):
        pass
    try:
        root = module.find_corpus()
    except CorpusNotFoundError:  # get_protocol will say how to get the corpus
        return False
    print(f"{name}: protocol files are missing; generating them from '{root}' "
          f"(as `{module.PREPARE_COMMAND}` does).", file=sys.stderr, flush=True)
    module.prepare(root=root)
    return True
