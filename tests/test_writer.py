"""The generic pyannote.database protocol writer: files in, a loadable protocol out"""

from pathlib import Path

import pytest

from pyannote_embloss.errors import DataError
from pyannote_embloss.data.protocols import get_protocol
from pyannote_embloss.data.protocols.writer import ProtocolWriter, Utterance, escape_template, make_trials


@pytest.fixture(scope="module")
def utterances(corpus_root):
    """12 real files of 4 speakers, with durations"""
    files = sorted((corpus_root / "WAVE").glob("*/*.flac"))
    by_speaker = {}
    for path in files:
        by_speaker.setdefault(path.parent.name, []).append(path)
    chosen = [(speaker, paths[:3]) for speaker, paths in sorted(by_speaker.items())[:4]]
    return [
        Utterance(f"{speaker}/{path.stem}", speaker, path, 2.5)
        for speaker, paths in chosen for path in paths
    ]


def writer_for(directory: Path, corpus_root: Path) -> ProtocolWriter:
    return ProtocolWriter(directory, "Mini", f"{escape_template(corpus_root / 'WAVE')}/{{uri}}.flac", header="test")


def test_written_protocol_loads_with_pyannote_database(utterances, corpus_root, tmp_path):
    train, test = utterances[:6], utterances[6:]
    writer = writer_for(tmp_path, corpus_root)
    writer.add_subset("train", train)
    writer.add_subset("test", test)
    trials = make_trials(test, seed=0)
    writer.add_trials("test", trials)
    writer.add_protocol("SpeakerVerification", "Tiny", train="train", test=("test", "test"))
    yml = writer.write()
    protocol = get_protocol("Mini.SpeakerVerification.Tiny", database_yml=yml)
    files = list(protocol.train())
    assert [f["uri"] for f in files] == sorted(u.uri for u in train)
    assert all(Path(f["audio"]).is_file() for f in files)
    assert files[0]["annotation"].labels() == [train[0].speaker]
    assert files[0]["annotated"].extent().duration == pytest.approx(2.5)
    assert len(list(protocol.test_trial())) == len(trials) == 12  # 2 speakers x 3 target pairs, as many non-target
    # idempotent: writing again changes nothing
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    writer.write()
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes


def test_inconsistent_protocols_are_refused(utterances, corpus_root, tmp_path):
    writer = writer_for(tmp_path, corpus_root)
    writer.add_subset("train", utterances[:6])
    writer.add_subset("test", utterances[6:])
    # a trial list using a file that is not in its subset
    writer.add_trials("outside", [(1, utterances[0].uri, utterances[1].uri)])
    with pytest.raises(DataError, match="not in its test subset"):
        writer.add_protocol("SpeakerVerification", "Bad", train="train", test=("test", "outside"))
    # training on a speaker of the trials
    writer.add_subset("all", utterances)
    writer.add_trials("all", make_trials(utterances, seed=0))
    with pytest.raises(DataError, match="would train on 2 speaker"):
        writer.add_protocol("SpeakerVerification", "Leak", train="train", test=("all", "all"))
    # ... unless it is the point of the protocol (fine-tuning on known speakers): with their other files
    with pytest.raises(DataError, match="same audio in its train and test subsets"):
        writer.add_protocol("SpeakerVerification", "Known", disjoint_speakers=False, train="train", test=("all", "all"))
    known = [u for u in utterances if u.uri.endswith(tuple(p.uri.split("/")[1] for p in utterances[::3]))]
    writer.add_subset("known-train", [u for u in utterances if u not in known])
    writer.add_subset("known-test", known)
    writer.add_trials("known-test", [(0, known[0].uri, known[1].uri)])
    writer.add_protocol(
        "SpeakerVerification", "Known", disjoint_speakers=False, train="known-train", test=("known-test", "known-test")
    )
    assert writer.protocols == ["Mini.SpeakerVerification.Known"]
    with pytest.raises(DataError, match="listed twice"):
        writer.add_subset("twice", [utterances[0], utterances[0]])
    with pytest.raises(DataError, match="white space"):
        writer.add_subset("space", [Utterance("a b", "s", Path("x"), 1.0)])
    with pytest.raises(DataError, match="no positive duration"):
        writer.add_subset("nodur", [Utterance("a", "s", Path("x"))])
