"""Training data preparation reads plain protocol lists once, and prepares the very data of the file-by-file way"""

import numpy as np
import pytest
from pyannote.audio.core.task import Task

from helpers import PROTOCOL

from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.tasks import get_task_class
from pyannote_embloss.tasks.prepared_data import prepare_protocol_data
from pyannote_embloss.data.protocols.lists import SubsetLists
from pyannote_embloss.data.protocols.rttm_uem import TurnTable, UnusualFile

#: speech turns of a diarization-like protocol, over files 0-3 (train) and 4-5 (development): several
#: speakers per file, overlaps, two turns on one segment (rows 9 and 10: tracks sorted as strings, "10" < "9"),
#: a turn across two contiguous regions (kept), turns out of the annotated regions (cropped, two into two),
#: an empty turn and a line that is not a turn; file 3 has no UEM line, file 2 no turn
RTTM = """\
SPEAKER {0} 1 0.50 1.20 <NA> <NA> alice <NA> <NA>
SPEAKER {0} 1 1.00 1.50 <NA> <NA> bob <NA> <NA>
SPEAKER {1} 1 0.00 0.80 <NA> <NA> carol <NA> <NA>
SPEAKER {0} 1 2.50 1.00 <NA> <NA> alice <NA> <NA>
SPKR-INFO {0} 1 <NA> <NA> <NA> unknown alice <NA> <NA>
SPEAKER {1} 1 0.90 2.10 <NA> <NA> alice <NA> <NA>
SPEAKER {3} 1 0.20 0.00 <NA> <NA> dave <NA> <NA>
SPEAKER {3} 1 0.30 2.70 <NA> <NA> dave <NA> <NA>
SPEAKER {1} 1 3.20 1.30 <NA> <NA> bob <NA> <NA>
SPEAKER {4} 1 2.00 0.50 <NA> <NA> erin <NA> <NA>
SPEAKER {4} 1 2.00 0.50 <NA> <NA> carol <NA> <NA>
SPEAKER {0} 1 3.60 0.60 <NA> <NA> bob <NA> <NA>
SPEAKER {0} 1 3.70 0.40 <NA> <NA> carol <NA> <NA>
SPEAKER {4} 1 0.10 1.40 <NA> <NA> frank <NA> <NA>
SPEAKER {4} 1 1.60 1.50 <NA> <NA> alice <NA> <NA>
SPEAKER {5} 1 0.00 2.00 <NA> <NA> frank <NA> <NA>
SPEAKER {5} 1 1.50 2.00 <NA> <NA> grace <NA> <NA>
"""

#: annotated regions: several per file, contiguous ones, a duplicate, a nested one, an empty one, one
#: shorter than a chunk; turns of file 0 run past them (cropped); file 1's are within one region each or
#: across the contiguous [0, 2] and [2, 3.1]
UEM = """\
{0} NA 0.00 1.80
{0} NA 2.40 4.00
{0} NA 0.00 1.80
{1} NA 2.00 3.10
{1} NA 0.00 2.00
{1} NA 3.10 4.50
{1} NA 1.00 1.20
{2} NA 0.00 3.00
{2} NA 1.00 1.00
{4} NA 0.00 3.20
{5} NA 0.00 1.00
{5} NA 1.20 3.50
"""


@pytest.fixture(scope="module")
def diarization_yml(corpus_root, tmp_path_factory):
    """Diarization.SpeakerDiarization.{Global,Database,File}: the turns above on real SpeechOcean762 files"""
    directory = tmp_path_factory.mktemp("diarization")
    uris = [f"{path.parent.name}/{path.stem}" for path in sorted((corpus_root / "WAVE").glob("*/*.*"))[:6]]
    (directory / "diarization.rttm").write_text(RTTM.format(*uris))
    (directory / "diarization.uem").write_text(UEM.format(*uris))
    (directory / "train.lst").write_text("\n".join([uris[2], uris[0], uris[3], uris[1]]) + "\n")
    (directory / "development.lst").write_text("\n".join(uris[4:]) + "\n")
    subsets = "\n".join(
        f"        {subset}: {{uri: {subset}.lst, annotation: diarization.rttm, annotated: diarization.uem}}"
        for subset in ("train", "development")
    )
    protocols = "\n".join(f"      {scope.title()}:\n        scope: {scope}\n{subsets}"
                          for scope in ("global", "database", "file"))
    (directory / "database.yml").write_text(
        f"Databases:\n  Diarization: {corpus_root / 'WAVE'}/{{uri}}.*\n"
        f"Protocols:\n  Diarization:\n    SpeakerDiarization:\n{protocols}\n"
    )
    return directory / "database.yml"


def assert_same_prepared_data(ours: dict, theirs: dict):
    assert list(ours) == list(theirs)
    for key in theirs:
        if isinstance(theirs[key], np.ndarray):
            assert ours[key].dtype == theirs[key].dtype, key
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        else:
            assert ours[key] == theirs[key], key


def task_on(protocol, read_lists=True):
    Klass = get_task_class("aam")
    if not read_lists:
        Klass = type("FileByFile", (Klass,), {"read_protocol_lists": False})
    return Klass(protocol, duration=1.0, num_classes_per_batch=4, num_workers=0)


def test_speaker_verification_lists_are_read_once_into_the_same_data(speechocean762_yml):
    protocol = get_protocol(PROTOCOL, database_yml=speechocean762_yml)
    assert SubsetLists.of(protocol, "train") is not None and SubsetLists.of(protocol, "development") is not None
    task = task_on(protocol)
    assert task.protocol is protocol and task.has_validation
    prepared = prepare_protocol_data(task)
    assert len(prepared["audio-path"]) == 1250 + 250
    assert_same_prepared_data(prepared, prepare_protocol_data(task, read_lists=False))


@pytest.mark.parametrize("scope", ["global", "database", "file"])
def test_diarization_lists_are_read_once_into_the_same_data(diarization_yml, scope, tmp_path):
    protocol = get_protocol(f"Diarization.SpeakerDiarization.{scope.title()}", database_yml=diarization_yml)
    assert SubsetLists.of(protocol, "train") is not None and SubsetLists.of(protocol, "development") is not None
    task = task_on(protocol)
    # the protocol's check, without reading its training lists, concludes as with them
    file_by_file = task_on(protocol, read_lists=False)
    assert (task.has_validation, task.has_scope, task.has_classes) == (
        file_by_file.has_validation, file_by_file.has_scope, file_by_file.has_classes) == (True, True, False)

    prepared = prepare_protocol_data(task)
    assert_same_prepared_data(prepared, prepare_protocol_data(task, read_lists=False))
    # what the turns above exercise: cropped turns, regions shorter than a chunk left out, empty files
    segments, regions = prepared["annotations-segments"], prepared["annotations-regions"]
    assert len(prepared["audio-path"]) == 6 and len(segments) == 17 and len(regions) == 9
    assert segments["end"][segments["file_id"] == 1].max() == pytest.approx(4.0)  # cropped to its regions
    assert (segments["file_id"] == 5).sum() == 3  # one turn cropped into two
    assert prepared["audio-annotated"].tolist() == pytest.approx([3.0, 3.4, 0.0, 4.5, 3.2, 3.3])
    uris = (diarization_yml.parent / "development.lst").read_text().split()
    turns = TurnTable(diarization_yml.parent / "diarization.rttm", uris).of(0)
    assert [label for _, _, label in turns] == ["frank", "alice", "carol", "erin"]

    # and the same cache as pyannote.audio's own prepare_data, development trials included
    task.cache = tmp_path / "plugin.npz"
    task.prepare_data()
    task.cache = tmp_path / "pyannote.npz"
    Task.prepare_data(task)
    ours, theirs = (dict(np.load(tmp_path / name, allow_pickle=True)) for name in ("plugin.npz", "pyannote.npz"))
    assert sorted(ours) == sorted(theirs) and ("validation-trials" in ours) == (scope != "file")  # labels of one file
    for key in theirs:
        if theirs[key].dtype == object:
            assert ours[key].item() == theirs[key].item(), key
        else:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


def test_other_protocols_are_read_file_by_file(diarization_yml, tmp_path):
    # an extra entry (a .map of domains) becomes metadata: the subset is not plain lists
    directory = diarization_yml.parent
    uris = (directory / "train.lst").read_text().split() + (directory / "development.lst").read_text().split()
    domains = "".join(f"{uri} {'studio' if k % 2 else 'phone'}\n" for k, uri in enumerate(uris))
    (directory / "domain.map").write_text(domains)
    text = diarization_yml.read_text().replace("diarization.uem}", "diarization.uem, domain: domain.map}")
    (directory / "domain.yml").write_text(text)  # beside database.yml, which the other tests read
    protocol = get_protocol("Diarization.SpeakerDiarization.Global", database_yml=directory / "domain.yml")
    assert SubsetLists.of(protocol, "train") is None
    prepared = prepare_protocol_data(task_on(protocol))
    assert prepared["metadata-values"]["domain"] == ["phone", "studio"]
    assert_same_prepared_data(prepared, prepare_protocol_data(task_on(protocol, read_lists=False)))

    # a turn without a speaker label ("NA" is missing to pandas) is left to pyannote.database
    rttm = tmp_path / "unlabelled.rttm"
    rttm.write_text(f"SPEAKER {uris[0]} 1 0.00 1.00 <NA> <NA> NA <NA> <NA>\n")
    with pytest.raises(UnusualFile):
        TurnTable(rttm, uris)
