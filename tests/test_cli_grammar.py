"""One command-line grammar: --output (-o), --checkpoint, --database and --protocol alike in every command

The spellings of the previous release (a positional OUTPUT, --onnx, --rttm,
--json, --workers) still work, with the same meaning and a one-line warning.
These tests run the commands in-process with the library function each
calls replaced by a recorder that stops there: they show what reaches the
library, in seconds.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

from pyannote_embloss.cli import DEPRECATED_SPELLINGS, DeprecatedSpellingWarning, app
from pyannote_embloss.errors import ConfigError, MissingFileError

runner = CliRunner()

#: commands that write something the user names: --output (-o)
WRITES = {"prepare", "score", "compare", "apply", "export", "diarize", "oracle-der", "train-segmentation"}
#: commands that read a checkpoint of an experiment: --checkpoint (and --trust-checkpoint)
READS_CHECKPOINT = {"evaluate", "verify", "score", "apply", "export", "diarize", "oracle-der"}
#: commands that read a protocol (or an evaluation on one): --protocol and --database
READS_PROTOCOL = {"train", "evaluate", "verify", "score", "compare", "apply", "oracle-der"}
#: commands whose PROTOCOL is also a positional argument (--protocol is its alias)
PROTOCOL_ARGUMENT = {"train", "evaluate", "compare", "apply"}
#: commands whose first argument is the experiment (directory; diarize and oracle-der: or a checkpoint)
EXPERIMENT_FIRST = {"train", "evaluate", "verify", "score", "compare", "apply", "export", "diarize", "oracle-der"}

#: option names whose help differs between commands, and the one thing they mean everywhere
SAME_MEANING = {
    "--output": "what the command writes (a file or directory, as its help says)",
    "-o": "--output",
    "--protocol": "the protocol the command works on: evaluated, scored with its calibration, or drawn conversations from",
    "--subset": "the subset of the protocol the command reads",
    "--seed": "the seed of the command's random draws",
    "--num-workers": "parallel workers (data loading, or reading audio)",
    "--overwrite": "replace what an earlier run of the command wrote",
    "--max-epochs": "training epochs",
    "--batches-per-epoch": "training batches per epoch",
}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def commands() -> dict:
    group = typer.main.get_command(app)
    return {name: group.get_command(None, name) for name in group.list_commands(None)}


def visible_options(command) -> dict:
    """{option name (each spelling): its help} of the options --help shows"""
    return {
        name: param.help
        for param in command.params
        if isinstance(param, TyperOption) and not param.hidden
        for name in [*param.opts, *param.secondary_opts]
    }


def test_every_command_is_classified():
    assert set(commands()) == {"prepare", "train", "evaluate", "verify", "score", "compare", "apply", "export",
                               "diarize", "oracle-der", "train-segmentation"}


@pytest.mark.parametrize("name", sorted(commands()))
def test_help_lists_output_checkpoint_and_database_where_they_apply(name):
    command = commands()[name]
    options = visible_options(command)
    assert ("--output" in options and "-o" in options) == (name in WRITES), name
    assert ("--checkpoint" in options and "--trust-checkpoint" in options) == (name in READS_CHECKPOINT), name
    assert ("--database" in options and "--protocol" in options) == (name in READS_PROTOCOL), name
    arguments = [p for p in command.params if isinstance(p, TyperArgument)]
    if name in EXPERIMENT_FIRST:
        assert arguments[0].name in ("experiment_dir", "experiment", "arguments"), name
    takes_protocol = any(p.name == "protocol" or "PROTOCOL" in (p.metavar or "") for p in arguments)
    assert takes_protocol == (name in PROTOCOL_ARGUMENT), name
    # what --help prints
    result = invoke(name, "--help")
    assert result.exit_code == 0
    for option, applies in (("--output", WRITES), ("--checkpoint", READS_CHECKPOINT), ("--database", READS_PROTOCOL)):
        assert bool(re.search(f"{option}(?![-\\w])", result.output)) == (name in applies), (name, option)
    for deprecated in DEPRECATED_SPELLINGS.get(name, {}):
        if deprecated.startswith("-"):
            assert deprecated not in result.output, (name, deprecated)  # hidden from --help


def test_no_option_name_means_two_things():
    helps = {}
    for name, command in commands().items():
        for option, help in visible_options(command).items():
            helps.setdefault(option, {})[name] = help
    for option, by_command in helps.items():
        if len(set(by_command.values())) > 1:
            assert option in SAME_MEANING, f"{option} has several meanings: {by_command}"
    for option in SAME_MEANING:
        assert len(helps[option]) > 1, f"{option} is in one command only: leave it out of SAME_MEANING"
    # shared options are the same object: the same help word for word
    for option in ("--database", "--checkpoint", "--trust-checkpoint", "--progress", "--plda", "--condition"):
        assert len(set(helps[option].values())) == 1, (option, helps[option])


def test_deprecated_spellings_are_hidden_aliases_and_current_nowhere():
    current = set()
    for command in commands().values():
        current |= set(visible_options(command))
    for name, command in commands().items():
        hidden = {opt: p for p in command.params if isinstance(p, TyperOption) and p.hidden for opt in p.opts}
        declared = {old: new for old, new in DEPRECATED_SPELLINGS.get(name, {}).items() if old.startswith("-")}
        assert set(hidden) == set(declared), name
        for old, new in declared.items():
            assert hidden[old].help == f"Deprecated spelling of {new}.", (name, old)
            assert new in visible_options(command), (name, new)
            assert old not in current, f"{old} is deprecated in {name} but current elsewhere"
        if "OUTPUT" in DEPRECATED_SPELLINGS.get(name, {}):
            assert command.context_settings.get("allow_extra_args"), name  # the positional OUTPUT, left out of --help


# --- the old spellings: same meaning, one warning line ----------------------------------------


class Stop(ConfigError):
    pass


@pytest.fixture
def record(monkeypatch):
    """record("module.function"): replace it by a recorder that stops the command there; returns the calls"""
    calls = []

    def replace(target):
        def recorder(*args, **kwargs):
            calls.append((tuple(_plain(a) for a in args), {k: _plain(v) for k, v in kwargs.items()}))
            raise Stop("stopped by the test")

        monkeypatch.setattr(target, recorder)
        return calls

    return replace


def _plain(value):
    """Comparable form of an argument: an Experiment as its directory, a model as its class"""
    import torch

    if isinstance(value, torch.nn.Module):
        return type(value).__name__
    return str(value.directory) if hasattr(value, "directory") and hasattr(value, "config") else value


BASELINE = "protocol: SpeechOcean762.SpeakerVerification.Default\nseed: 0\narchitecture:\n  name: LogMelStatistics\n"


@pytest.fixture
def paths(tmp_path):
    """A training-free experiment, a directory with an audio file, a trial list; names of outputs"""
    experiment = tmp_path / "exp"
    experiment.mkdir()
    (experiment / "config.yml").write_text(BASELINE)
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.wav").write_bytes(b"")
    return {"EXP": experiment, "AUDIO": audio, "WAV": audio / "a.wav", "OUT": tmp_path / "out", "IN": tmp_path / "in"}


#: (library function the command calls, deprecated spelling, its arguments, the current ones);
#: EXP, AUDIO, WAV, IN, OUT: paths of the `paths` fixture
OLD_AND_NEW = [
    ("pyannote_embloss.data.protocols.prepare_corpus", "--workers",
     ["prepare", "voxceleb", "--workers", "3"], ["prepare", "voxceleb", "--num-workers", "3"]),
    ("pyannote_embloss.evaluation.verify.score_trial_list", "OUTPUT",
     ["score", "EXP", "IN", "OUT"], ["score", "EXP", "IN", "-o", "OUT"]),
    ("pyannote_embloss.inference.apply.apply", "OUTPUT",
     ["apply", "EXP", "AUDIO", "OUT"], ["apply", "EXP", "AUDIO", "--output", "OUT"]),
    ("pyannote_embloss.pipelines.segmentation.train_segmentation", "OUTPUT",
     ["train-segmentation", "OUT"], ["train-segmentation", "-o", "OUT"]),
    ("pyannote_embloss.inference.export.export_onnx", "--onnx",
     ["export", "EXP", "--onnx", "OUT"], ["export", "EXP", "-o", "OUT"]),
    ("pyannote_embloss.pipelines.diarization.diarize", "--rttm",
     ["diarize", "EXP", "WAV", "--segmentation", "IN", "--rttm", "OUT"],
     ["diarize", "EXP", "WAV", "--segmentation", "IN", "--output", "OUT"]),
    ("pyannote_embloss.pipelines.oracle.oracle_der_report", "--rttm",
     ["oracle-der", "EXP", "--rttm", "IN", "--audio", "WAV"], ["oracle-der", "EXP", "--reference", "IN", "--audio", "WAV"]),
    ("pyannote_embloss.pipelines.oracle.oracle_der_report", "--json",
     ["oracle-der", "EXP", "--json", "OUT"], ["oracle-der", "EXP", "-o", "OUT"]),
]


def _arguments(arguments, paths):
    return [str(paths.get(a, a)) for a in arguments]


@pytest.mark.parametrize(
    "target, spelling, old, new", OLD_AND_NEW, ids=[f"{old[0]} {spelling}" for _, spelling, old, _ in OLD_AND_NEW]
)
def test_old_spelling_is_accepted_with_the_same_meaning_and_a_warning(target, spelling, old, new, paths, record):
    calls = record(target)
    current = invoke(*_arguments(new, paths))
    assert current.exit_code == 2 and "stopped by the test" in current.output, current.output
    assert "deprecated" not in current.output
    deprecated = invoke(*_arguments(old, paths))
    assert deprecated.exit_code == 2 and "stopped by the test" in deprecated.output, deprecated.output
    assert len(calls) == 2 and calls[0] == calls[1]  # the library gets the same call
    (warning,) = [line for line in deprecated.output.splitlines() if line.startswith("Warning:")]
    assert "deprecated (removed in the next release)" in warning, warning
    current = DEPRECATED_SPELLINGS[old[0]][spelling]
    if spelling == "OUTPUT":
        assert "The OUTPUT argument is deprecated" in warning and f"use {current} OUTPUT" in warning
    else:
        assert f"{spelling} is deprecated" in warning and f"use {current}." in warning


def test_deprecated_spelling_warning_is_shown_to_command_line_users(tmp_path):
    # a FutureWarning: Python's default filters show it (DeprecationWarning only in __main__), one line
    assert issubclass(DeprecatedSpellingWarning, FutureWarning)
    script = Path(sys.executable).with_name("pyannote-audio-emb")  # the installed entry point, as users run it
    command = [script] if script.is_file() else [sys.executable, "-m", "pyannote_embloss.cli"]
    result = subprocess.run(
        [*command, "export", tmp_path / "missing", "--onnx", tmp_path / "out.onnx"], capture_output=True, text=True,
        env={**os.environ, "PYANNOTE_METRICS_ENABLED": "0", "PYTHONWARNINGS": ""},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Warning: --onnx is deprecated (removed in the next release): use --output.",
        f"Error: Experiment directory '{tmp_path / 'missing'}' does not exist.",
    ]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["score", "EXP", "IN", "OUT", "-o", "OUT"], "--output and the OUTPUT argument (its deprecated spelling) both given"),
        (["score", "EXP", "IN"], "Missing option --output / -o"),
        (["apply", "EXP", "AUDIO"], "Missing option --output / -o"),
        (["train-segmentation"], "Missing option --output / -o"),
        (["export", "EXP"], "Missing option --output / -o"),
        (["export", "EXP", "--onnx", "OUT", "-o", "OUT"], "--output and --onnx (its deprecated spelling) both given"),
        (["oracle-der", "EXP", "--rttm", "IN", "--reference", "IN"], "--reference and --rttm"),
        (["prepare", "voxceleb", "--workers", "2", "--num-workers", "2"], "--num-workers and --workers"),
        (["score", "EXP", "IN", "OUT", "MORE"], "Unexpected extra arguments: MORE"),
        (["evaluate", "EXP", "A.B.C", "--protocol", "D.E.F"], "Two protocols given, 'A.B.C' (PROTOCOL) and 'D.E.F'"),
        (["apply", "EXP", "--output", "OUT"], "Missing argument PROTOCOL|AUDIO_DIR (or option --protocol)"),
    ],
)
def test_both_or_neither_spelling_is_one_error_line(arguments, message, paths):
    result = invoke(*_arguments(arguments, paths))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


# --- --protocol works everywhere: an alias of the PROTOCOL argument ----------------------------


PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"


@pytest.mark.parametrize(
    "target, positional, option",
    [
        ("pyannote_embloss.training.run.train", ["train", "EXP", PROTOCOL], ["train", "EXP", "--protocol", PROTOCOL]),
        ("pyannote_embloss.evaluation.verification.evaluate",
         ["evaluate", "EXP", PROTOCOL], ["evaluate", "EXP", "--protocol", PROTOCOL]),
        ("pyannote_embloss.training.comparison.compare",
         ["compare", "EXP", PROTOCOL, "-o", "OUT"], ["compare", "EXP", "--protocol", PROTOCOL, "-o", "OUT"]),
        ("pyannote_embloss.inference.apply.protocol_files",
         ["apply", "EXP", PROTOCOL, "-o", "OUT"], ["apply", "EXP", "--protocol", PROTOCOL, "-o", "OUT"]),
    ],
    ids=["train", "evaluate", "compare", "apply"],
)
def test_protocol_option_is_the_protocol_argument(target, positional, option, paths, record):
    calls = record(target)
    for arguments in (positional, option):
        result = invoke(*_arguments(arguments, paths))
        assert result.exit_code == 2 and "stopped by the test" in result.output, result.output
        assert "Warning" not in result.output
    assert len(calls) == 2 and calls[0] == calls[1]
    assert PROTOCOL in repr(calls[0])


def test_verify_and_score_pass_checkpoint_and_database_to_the_library(paths, record):
    calls = record("pyannote_embloss.evaluation.verify.verify")
    result = invoke("verify", paths["EXP"], paths["WAV"], paths["WAV"], "--checkpoint", "last", "--database", "db.yml",
                    "--trust-checkpoint")
    assert result.exit_code == 2 and "stopped by the test" in result.output, result.output
    (_, kwargs), = calls
    assert kwargs["checkpoint"] == Path("last") and kwargs["database"] == "db.yml" and kwargs["trust_checkpoint"]
    calls = record("pyannote_embloss.evaluation.verify.score_trial_list")
    result = invoke("score", paths["EXP"], paths["IN"], "-o", paths["OUT"], "--checkpoint", "last")
    assert result.exit_code == 2 and "stopped by the test" in result.output, result.output
    assert calls[-1][1]["checkpoint"] == Path("last")


def test_verify_refuses_a_checkpoint_other_than_the_calibrated_one(paths):
    # training-free: its calibration has no checkpoint; one given is refused before any embedding
    from pyannote_embloss.evaluation.verify import verify

    results = paths["EXP"] / "results"
    results.mkdir()
    calibration = '{"slope": 1.0, "offset": 0.0, "thresholds": {"0.01": 0.5}, "scoring": "cosine"}'
    (results / f"{PROTOCOL}.test.json").write_text(f'{{"checkpoint": null, "calibration": {calibration}}}')
    other = paths["EXP"] / "other.ckpt"
    other.write_bytes(b"")
    with pytest.raises(ConfigError, match="fitted with checkpoint None, not .*other.ckpt"):
        verify(paths["EXP"], paths["WAV"], paths["WAV"], checkpoint=other)


def test_verify_names_an_unknown_protocol_of_the_database(paths, tmp_path):
    database = tmp_path / "database.yml"
    database.write_text("Protocols: {}\n")
    result = invoke("verify", paths["EXP"], paths["WAV"], paths["WAV"], "--protocol", "No.Such.Protocol",
                    "--database", database)
    assert result.exit_code == 2
    assert "Unknown protocol 'No.Such.Protocol'" in result.output and str(database) in result.output


# --- the library: (experiment, options) alike, trust_checkpoint everywhere ----------------------


def test_compare_takes_options_or_their_keyword_arguments(tmp_path):
    from pyannote_embloss.training.comparison import ComparisonOptions, compare

    missing = tmp_path / "missing"
    with pytest.raises(MissingFileError, match="does not exist"):
        compare([missing], ComparisonOptions(output=tmp_path / "out", seeds=2))
    with pytest.raises(MissingFileError, match="does not exist"):
        compare([missing], output=tmp_path / "out", seeds=2)
    with pytest.raises(TypeError, match="options or keyword arguments"):
        compare([missing], ComparisonOptions(), seeds=2)
    with pytest.raises(ConfigError, match="--seeds must be at least 1"):
        ComparisonOptions(seeds=0)
    with pytest.raises(ConfigError, match="--subset must be one of"):
        ComparisonOptions(subset="train")
    assert ComparisonOptions(output=str(tmp_path)).output == tmp_path
    # the positional output of the previous release
    with pytest.warns(DeprecationWarning, match="ComparisonOptions"), pytest.raises(MissingFileError):
        compare([missing], tmp_path / "out")


def test_library_deprecated_keywords_still_work_with_a_deprecation_warning(paths):
    from pyannote_embloss.evaluation.verify import score_trial_list, verify
    from pyannote_embloss.pipelines.diarization import diarize
    from pyannote_embloss.pipelines.oracle import oracle_der_report

    missing = paths["OUT"] / "missing.wav"
    with pytest.warns(DeprecationWarning, match="trust_checkpoint"), pytest.raises(MissingFileError):
        verify(paths["EXP"], missing, missing, trust=True)
    with pytest.warns(DeprecationWarning, match="trust_checkpoint"), pytest.raises(MissingFileError):
        score_trial_list(paths["EXP"], paths["IN"], paths["OUT"], trust=True)
    with pytest.warns(DeprecationWarning, match="output="), pytest.raises(MissingFileError):
        diarize(paths["EXP"], missing, "seg.ckpt", rttm=paths["OUT"])
    with pytest.warns(DeprecationWarning, match="reference="), pytest.raises(ConfigError, match="--reference"):
        oracle_der_report(paths["EXP"], rttm=paths["IN"], conversations=1)
    # both spellings at once: refused, naming the new one (every renamed keyword goes through errors.renamed_keyword)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="pass trust_checkpoint only"):
        verify(paths["EXP"], missing, missing, trust=True, trust_checkpoint=True)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="pass output only"):
        diarize(paths["EXP"], missing, "seg.ckpt", rttm=paths["OUT"], output=paths["OUT"])
    import pyannote_embloss

    with pytest.warns(DeprecationWarning, match="trust_checkpoint"), pytest.raises(MissingFileError):
        pyannote_embloss.load(paths["OUT"] / "missing.ckpt", trust=True)
