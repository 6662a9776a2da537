"""Shared test fixtures

The speechocean762 corpus is always available to the tests (CI included): a
missing corpus is a test failure, not a skip.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")  # no pyannote.audio telemetry from tests

from pyannote_embloss.protocols.speechocean762 import CorpusNotFoundError, find_corpus, prepare  # noqa: E402


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """Root of the speechocean762 corpus (see `find_corpus` for where it is looked for)"""
    try:
        return find_corpus()
    except CorpusNotFoundError as error:
        pytest.fail(f"The tests need the speechocean762 corpus.\n{error}", pytrace=False)


@pytest.fixture(scope="session")
def speechocean762_yml(corpus_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """database.yml of SpeechOcean762.SpeakerVerification.Default, prepared once per session

    Files are written to <tmp>/data/speechocean762/, mirroring the repository
    layout (so a copy of the repository's database.yml put in <tmp> works too).
    Load it with ``get_protocol(PROTOCOL, database_yml=speechocean762_yml)``.
    """
    repository = tmp_path_factory.mktemp("repository")
    return prepare(root=corpus_root, output_dir=repository / "data" / "speechocean762")
