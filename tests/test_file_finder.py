"""ListingFileFinder: pyannote.database's FileFinder answers, each folder listed once"""

import shutil
from pathlib import Path

import pytest
from pyannote.database import FileFinder
from pyannote.database.registry import Registry

from pyannote_embloss.data.protocols import DEFAULT_DATABASE_YML, get_protocol
from pyannote_embloss.data.protocols.file_finder import ListingFileFinder

PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"


def test_same_paths_as_file_finder_on_speechocean762(speechocean762_yml):
    # the repository's database.yml: audio found by a wildcard, "WAVE/{uri}.*"
    repository_yml = speechocean762_yml.parents[2] / "database.yml"
    shutil.copy(DEFAULT_DATABASE_YML, repository_yml)
    protocol = get_protocol(PROTOCOL, database_yml=repository_yml)
    registry = protocol.preprocessors["audio"].registry
    listing, reference = ListingFileFinder(registry=registry), FileFinder(registry=registry)
    files = [file for subset in (protocol.train, protocol.development, protocol.test) for file in subset()]
    assert len(files) == 2500
    assert isinstance(protocol.preprocessors["audio"], ListingFileFinder)
    assert [listing(f) for f in files] == [reference(f) for f in files]
    # each folder listed once: one listing per speaker folder answered all 2,500
    folders = {Path(reference(f)).parent for f in files}
    assert set(listing._listings) == folders and len(folders) < len(files) / 5


def _registry(tmp_path: Path, templates) -> Registry:
    yml = tmp_path / "database.yml"
    lines = ["Databases:", "  Mini:"] + [f"    - {t}" for t in templates]
    yml.write_text("\n".join(lines) + "\n")
    registry = Registry()
    registry.load_database(yml)
    return registry


def _errors(finder, file) -> str:
    with pytest.raises(FileNotFoundError) as error:
        finder(file)
    return str(error.value)


def test_same_answers_and_errors_on_a_miniature_tree(tmp_path, corpus_root):
    flac = next(corpus_root.rglob("*.flac"))
    (tmp_path / "a" / "spk1").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    shutil.copy(flac, tmp_path / "a" / "spk1" / "one.flac")         # uri with a folder
    shutil.copy(flac, tmp_path / "a" / "two.flac")
    shutil.copy(flac, tmp_path / "a" / "two.wav")                   # ambiguous: two matches
    shutil.copy(flac, tmp_path / "b" / "three.wav")                 # found by the second template
    shutil.copy(flac, tmp_path / "a" / "Four.flac")                 # case matters, as in glob
    registry = _registry(tmp_path, [f"{tmp_path}/a/{{uri}}.*", f"{tmp_path}/b/{{uri}}.wav"])
    listing, reference = ListingFileFinder(registry=registry), FileFinder(registry=registry)

    def file(uri):
        return {"uri": uri, "database": "Mini"}

    assert listing(file("spk1/one")) == reference(file("spk1/one")) == tmp_path / "a" / "spk1" / "one.flac"
    assert listing(file("three")) == reference(file("three")) == tmp_path / "b" / "three.wav"
    for uri in ("two", "missing", "four"):
        assert _errors(listing, file(uri)) == _errors(reference, file(uri))
    assert "more than one" in _errors(listing, file("two"))

    # a file added after the folder was listed is still found (the listing is only a shortcut)
    registry = _registry(tmp_path, [f"{tmp_path}/a/{{uri}}.*"])
    listing = ListingFileFinder(registry=registry)
    assert listing(file("Four")) == tmp_path / "a" / "Four.flac"
    shutil.copy(flac, tmp_path / "a" / "five.flac")
    assert listing(file("five")) == tmp_path / "a" / "five.flac"
