"""Data protocols: corpora turned into pyannote.database protocols

>>> from pyannote_embloss.data.protocols import CORPORA, get_protocol
>>> CORPORA["speechocean762"].prepare()  # writes data/speechocean762/
>>> protocol = get_protocol("SpeechOcean762.SpeakerVerification.Default")
>>> for trial in protocol.test_trial(): ...

`CORPORA` maps a corpus name or format (as in ``pyannote-audio-emb prepare
<corpus>``) to its module, which provides ``prepare`` and ``PREPARE_COMMAND``,
and for known corpora ``find_corpus``, ``PROTOCOL`` and ``DATABASE``. Your
own data (``folders``, ``kaldi``, ``csv``) becomes ``NAME.SpeakerVerification.Default``
(:mod:`.own_data`).

Protocols are found where pyannote.database finds them:
``~/.pyannote/database.yml``, then ``./database.yml``, then the files of the
``PYANNOTE_DATABASE_CONFIG`` environment variable (";"-separated), later ones
overriding earlier ones; in a source checkout, the repository's
``database.yml`` comes first. ``prepare`` registers what it writes under
the current directory in ``./database.yml`` (see :func:`register`).
"""

from __future__ import annotations

import inspect
import os
import string
import sys
from pathlib import Path
from typing import List, Optional

import yaml
from pyannote.database.protocol.protocol import Preprocessors, Protocol
from pyannote.database.registry import Registry

from ...errors import ConfigError, CorpusNotFoundError, DataError, DownloadError, MissingFileError
from ...io import PathLike, atomic_write_text, check_writable_dir
from . import folders, kaldi, manifest, speechocean762, voxceleb
from .file_finder import ListingFileFinder
from .speechocean762 import download, find_corpus, prepare

#: the repository's database.yml (only in a source checkout)
DEFAULT_DATABASE_YML = speechocean762.REPO_ROOT / "database.yml"
#: pyannote.database's per-user configuration file
HOME_DATABASE_YML = Path("~/.pyannote/database.yml")

CORPORA = {"speechocean762": speechocean762, "voxceleb": voxceleb, "folders": folders, "kaldi": kaldi, "csv": manifest}

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
    "register",
]


def _prepare_hint(database: Optional[str] = None) -> str:
    """How to generate the files of `database` (or of every known corpus)"""
    commands = [
        f"`{module.PREPARE_COMMAND}`"
        for module in CORPORA.values()
        if (database is None and module.DATABASE) or (database is not None and module.DATABASE == database)
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
    """pyannote.database configuration files to load, in loading order (later ones override)

    Parameters
    ----------
    database_yml : str or Path, optional
        Configuration file. Defaults to those pyannote.database loads:
        ~/.pyannote/database.yml, ./database.yml, then the
        PYANNOTE_DATABASE_CONFIG environment variable (";"-separated paths),
        preceded, in a source checkout, by the repository's database.yml.

    Returns
    -------
    paths : list of Path
        Existing files, and those PYANNOTE_DATABASE_CONFIG names (whether they exist or not).
    """
    if database_yml is not None:
        return [Path(database_yml).expanduser()]
    env = os.environ.get("PYANNOTE_DATABASE_CONFIG", "")
    paths = [path for path in (HOME_DATABASE_YML.expanduser(), Path.cwd() / "database.yml") if path.is_file()]
    paths += [Path(path).expanduser() for path in env.split(";") if path.strip()]
    if DEFAULT_DATABASE_YML.is_file() and DEFAULT_DATABASE_YML.resolve() not in {p.resolve() for p in paths}:
        paths.insert(0, DEFAULT_DATABASE_YML)
    return paths


def _searched(paths: List[Path]) -> str:
    """Where protocols were looked for, for error messages"""
    if paths:
        return ", ".join(repr(str(path)) for path in paths)
    return (
        f"none of {HOME_DATABASE_YML}, ./database.yml ({Path.cwd() / 'database.yml'}) or $PYANNOTE_DATABASE_CONFIG "
        "exists"
    )


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
        pyannote.database configuration file. Defaults to those
        pyannote.database loads (see :func:`database_ymls`).
    preprocessors : dict, optional
        Protocol preprocessors, added to (or overriding) the default
        {"audio": ListingFileFinder(registry)}: pyannote.database's
        `FileFinder`, listing each folder once.

    Returns
    -------
    protocol : Protocol
        Protocol whose files have "audio" resolved by `ListingFileFinder`.

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
    not override each other's audio locations. The default `ListingFileFinder` uses
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
            f"Unknown protocol '{name}' (looked in {_searched(paths)}). "
            f"Known protocols: {', '.join(known) or 'none'}."
            + (_known_corpus_hint(database) or
               " Declare it in one of those files, pass --database FILE, or prepare it with "
               "`pyannote-audio-emb prepare folders|kaldi|csv --name NAME` from this directory.")
        )
    default_audio = preprocessors is None or "audio" not in preprocessors
    check_protocol_files(registry, name, audio=default_audio)
    all_preprocessors = {"audio": ListingFileFinder(registry=registry)}
    all_preprocessors.update(preprocessors or dict())
    return registry.get_protocol(name, preprocessors=all_preprocessors)


def check_shadowing(name: str, output_dir: Optional[PathLike] = None) -> None:
    """Refuse a database name that would hide a known corpus, or protocols another database.yml declares

    Raises
    ------
    ConfigError
        Naming the corpus or the file that declares the name (``--force``
        writes it all the same).
    """
    known = {module.DATABASE for module in CORPORA.values() if module.DATABASE}
    if name in known:
        raise ConfigError(
            f"--name {name} is the name of a corpus this plugin knows: your protocol would hide "
            f"{name}'s own. Choose another name, or pass --force."
        )
    try:
        registry = load_registry(database_ymls())
    except (MissingFileError, DataError):
        return
    from .own_data import default_output_dir

    target = (Path(output_dir).expanduser().absolute() if output_dir is not None else default_output_dir(name))
    for yml, config in registry.configs.items():
        if name in (config.get("Protocols") or {}) and Path(yml).resolve() != (target / "database.yml").resolve():
            raise ConfigError(
                f"--name {name}: protocols {name}.* are already declared by '{yml}', which yours would hide. "
                "Choose another name, or pass --force."
            )


def prepare_corpus(corpus: str, trials=None, register_in_cwd: bool = True, force: bool = False, **options) -> Path:
    """``pyannote-audio-emb prepare CORPUS``: write a corpus' protocols, and register them

    Parameters
    ----------
    corpus : str
        A key of :data:`CORPORA`: a known corpus, or the format of your own
        data (folders, kaldi, csv).
    trials : list of Path, optional
        Trial lists given explicitly (VoxCeleb only).
    register_in_cwd : bool, optional
        Register the written protocols in ./database.yml (:func:`register`).
        Defaults to True.
    **options
        root, output_dir, download, check_audio, exclude_bad, num_workers,
        progress, and for your own data name, split, seed, max_trials: see
        the module's ``prepare``.

    Returns
    -------
    database_yml : Path
    """
    if corpus not in CORPORA:
        raise ConfigError(f"Unknown corpus '{corpus}'. Known corpora and formats: {', '.join(CORPORA)}.")
    module = CORPORA[corpus]
    parameters = inspect.signature(module.prepare).parameters
    if trials:
        if "trials" not in parameters:
            raise ConfigError(f"--trials is not an option of `prepare {corpus}` (its trials are generated).")
        options["trials"] = trials
    if options.get("download") and "download" not in parameters:
        raise ConfigError(f"`prepare {corpus}` cannot download the corpus: get it yourself and pass --root.")
    for option in ("name", "split", "max_trials"):
        if options.get(option) is not None and option not in parameters:
            raise ConfigError(f"--{option.replace('_', '-')} is an option of `prepare folders|kaldi|csv`, not of `prepare {corpus}`.")
    options = {k: v for k, v in options.items() if k in parameters and v is not None}
    if "name" in parameters and options.get("name") and not force:
        check_shadowing(options["name"], options.get("output_dir"))
    if register_in_cwd or "name" in parameters:
        check_writable_dir(Path.cwd(), "The working directory (where ./database.yml registers the protocol)")
    yml = module.prepare(**options)
    if register_in_cwd:
        register(yml)
    return yml


def _list_files(registry: Registry, name: str) -> set:
    """Resolved paths of the lists a protocol is made of"""
    found = _protocol_config(registry, name)
    if found is None:
        return set()
    yml, entries = found
    paths = set()
    for subset_entries in entries.values():
        if isinstance(subset_entries, dict):
            for value in subset_entries.values():
                if isinstance(value, str) and not _is_template(value):
                    path = Path(value).expanduser()
                    paths.add((path if path.is_absolute() else yml.parent / path).resolve())
    return paths


def _found_from_here(declared: Registry) -> bool:
    """Whether every protocol of `declared` is found from the current directory, with the same files"""
    try:
        current = load_registry(database_ymls())
    except (MissingFileError, DataError):
        return False
    return all(name in current and _list_files(current, name) == _list_files(declared, name) for name in declared)


def register(database_yml: PathLike) -> Optional[Path]:
    """Make the protocols of a written database.yml found from the current directory

    Adds `database_yml` to the ``Requirements:`` of ./database.yml (created
    when missing), which pyannote.database, pyannote.audio and this plugin
    load from this directory, unless

    every protocol it declares is already found there, with the same files
    (e.g. the repository's own database.yml declares SpeechOcean762). A file
    under the current directory is required by its relative path, any other
    by its absolute path, except a known corpus' (its copy elsewhere would
    override the corpus for everything run from here: :func:`unregistered_hint`
    says how to use it).

    Returns
    -------
    path : Path or None
        ./database.yml when it was changed.
    """
    database_yml = Path(database_yml).absolute()
    cwd_yml = Path.cwd() / "database.yml"
    if cwd_yml.absolute() == database_yml:
        return None
    declared = load_registry([database_yml])
    known = {module.DATABASE for module in CORPORA.values() if module.DATABASE}
    if not database_yml.is_relative_to(Path.cwd()) and {name.split(".")[0] for name in declared} & known:
        return None
    if _found_from_here(declared):
        return None
    relative = os.path.relpath(database_yml, Path.cwd()) if database_yml.is_relative_to(Path.cwd()) else str(database_yml)
    if not cwd_yml.is_file():
        text = (
            "# pyannote.database configuration (see pyannote.database's README): protocols declared by the files\n"
            "# below are found from this directory. `pyannote-audio-emb prepare` adds what it writes here.\n"
            f"Requirements:\n  - {relative}\n"
        )
    else:
        text = cwd_yml.read_text()
        config = yaml.safe_load(text) or {}
        requirements = config.get("Requirements") or []
        requirements = [requirements] if isinstance(requirements, str) else list(requirements)
        if any((cwd_yml.parent / r).resolve() == database_yml.resolve() for r in requirements):
            return None
        lines = text.splitlines(keepends=True)
        lines = ["Requirements:\n" if line.rstrip() == "Requirements: []" else line for line in lines]  # pruned empty
        block = [n for n, line in enumerate(lines) if line.rstrip() == "Requirements:"]
        if "Requirements" not in config:
            text = text + ("" if text.endswith("\n") or not text else "\n") + f"Requirements:\n  - {relative}\n"
        elif block:
            lines.insert(block[0] + 1, f"  - {relative}\n")
            text = "".join(lines)
        else:
            config["Requirements"] = requirements + [relative]
            text = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    atomic_write_text(cwd_yml, text)
    return cwd_yml


def unregistered_hint(database_yml: PathLike) -> Optional[str]:
    """How to use the protocols of `database_yml` when they are not found from the current directory (else None)"""
    if _found_from_here(load_registry([Path(database_yml)])):
        return None
    path = Path(database_yml).absolute()
    return (
        f"Not registered in ./database.yml (a known corpus outside this directory). To use it from here, add\n"
        f"Requirements:\n  - {path}\nto ./database.yml, or pass --database {path} (or set PYANNOTE_DATABASE_CONFIG)."
    )


def prepare_if_missing(name: str, database_yml: Optional[PathLike] = None) -> bool:
    """Generate the files of a known corpus' protocol when they are missing

    Only when the protocol is the repository's own (its database.yml
    declares it) or is declared nowhere, and only when the corpus is on this
    machine (:func:`find_corpus`: nothing is downloaded), so that
    ``pyannote-audio-emb train experiments/aam`` works on a fresh clone
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
    database = name.split(".")[0]
    module = next((m for m in CORPORA.values() if m.DATABASE and m.DATABASE == database), None)
    if module is None:
        return False
    if database_yml is not None and Path(database_yml).expanduser().resolve() != DEFAULT_DATABASE_YML.resolve():
        return False
    try:
        registry = load_registry(database_ymls(database_yml))
    except (MissingFileError, DataError):
        return False
    found = _protocol_config(registry, name)
    if found is not None:
        if found[0].resolve() != DEFAULT_DATABASE_YML.resolve():
            return False
        try:
            check_protocol_files(registry, name)
            return False
        except (MissingFileError, DataError):
            pass
    try:
        root = module.find_corpus()
    except CorpusNotFoundError:  # get_protocol will say how to get the corpus
        return False
    print(f"{name}: protocol files are missing; generating them from '{root}' "
          f"(as `{module.PREPARE_COMMAND}` does).", file=sys.stderr, flush=True)
    register(module.prepare(root=root))
    return True
