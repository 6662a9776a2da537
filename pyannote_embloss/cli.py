"""`pyannote-audio-emb`: prepare data, train, evaluate, compare and use speaker embeddings

    pyannote-audio-emb prepare speechocean762 [--root DIR] [--download] [--check-audio [--exclude-bad]]
    pyannote-audio-emb prepare voxceleb --root DIR [--trials FILE ...]
    pyannote-audio-emb prepare folders|kaldi|csv --root DIR_OR_FILE --name NAME [--split 80/10/10] [-o DIR]
    pyannote-audio-emb train experiments/aam [PROTOCOL] [--max-epochs N] [--resume] [--devices 2 --strategy ddp]
    pyannote-audio-emb evaluate experiments/aam [PROTOCOL] [--subset test] [--checkpoint C] [--condition noise:5 ...]
    pyannote-audio-emb verify experiments/aam A.wav B.wav [--far 0.01 | --prior P] [--scoring plda]
    pyannote-audio-emb score experiments/aam TRIALS -o OUTPUT.csv [--far 0.01 | --prior P] [--scoring plda]
    pyannote-audio-emb compare experiments/* [PROTOCOL] [--seeds 3] [--condition ...] [-o DIR]
    pyannote-audio-emb train experiments/new PROTOCOL --pretrained CKPT [--freeze-frontend] [--lr LR]
    pyannote-audio-emb apply experiments/aam (PROTOCOL --subset S | AUDIO_DIR) -o OUTPUT_DIR [--window sliding]
    pyannote-audio-emb export experiments/aam -o OUT.onnx
    pyannote-audio-emb diarize experiments/aam AUDIO --segmentation SEG [-o OUT.rttm] [--plda DIR]
    pyannote-audio-emb oracle-der experiments/aam [--reference R --audio A | --conversations N] [--plda DIR]
    pyannote-audio-emb train-segmentation -o OUTPUT.ckpt

One grammar (README, "Command line"): the experiment directory is the first
argument; `--checkpoint` chooses one of its checkpoints; the protocol is the
PROTOCOL argument or `--protocol`, declared in `--database`; what a command
writes is `--output` (`-o`). The spellings of the previous release (a
positional OUTPUT, `--onnx`, `--rttm`, `--json`, `--workers`) still work,
with a warning (:class:`DeprecatedSpellingWarning`); they go in the next.

The commands are thin: parsing (and the deprecated spellings) here, the
behaviour in the library function of the same name
(`pyannote_embloss.training.run.train`, `...evaluation.verification.evaluate`,
`...comparison.compare`, ...), which behaves the same from Python.
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import pyannote_embloss  # noqa: F401  (telemetry off before pyannote.audio is imported)
import typer

app = typer.Typer(
    name="pyannote-audio-emb",
    help="Speaker-embedding training with metric-learning losses, for pyannote.audio.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: help of the --checkpoint options
CHECKPOINT_HELP = (
    "Checkpoint file, or the name of one of the experiment's: best-epoch, average, main, last (checkpoints/NAME.ckpt). "
    "Defaults to the experiment's best."
)

ExperimentDir = typer.Argument(..., help="Experiment directory holding a config.yml.", show_default=False)
ExperimentOrCheckpointArg = typer.Argument(
    ..., metavar="EXPERIMENT_DIR|CHECKPOINT", help="Experiment directory holding a config.yml, or a checkpoint (.ckpt) "
    "written by `pyannote-audio-emb train`.", show_default=False,
)
ProtocolArg = typer.Argument(None, help="pyannote.database protocol. Defaults to the config's.", show_default=False)
ProtocolOpt = typer.Option(
    None, "--protocol", help="The PROTOCOL argument, as an option (give one of them).", show_default=False
)
CheckpointOpt = typer.Option(None, "--checkpoint", help=CHECKPOINT_HELP, show_default=False)
DatabaseOpt = typer.Option(
    None, "--database", help="database.yml to load. Defaults to those pyannote.database loads: "
    "~/.pyannote/database.yml, ./database.yml, $PYANNOTE_DATABASE_CONFIG."
)
ProgressOpt = typer.Option(True, "--progress/--no-progress", help="Show progress bars.")
CacheOpt = typer.Option(
    True, "--cache/--no-cache", help="Read and store whole-file embeddings in EXP/embeddings (safe to delete): what "
    "evaluate, verify, score or apply embedded before is not embedded again."
)
TrustOpt = typer.Option(
    False,
    "--trust-checkpoint",
    help="Unpickle anything the checkpoint holds (only for files you trust). By default, only weights and "
    "the classes pyannote.audio and pyannote-embloss save are loaded.",
)
ConditionOpt = typer.Option(
    None, "--condition", help="Test condition (repeatable): clean (always evaluated), duration:SECONDS (the middle "
    "of each trial file), noise:SNR, colored:SNR, babble:SNR, reverb, and combinations such as reverb+noise:SNR; "
    "noise from --noise-dir, impulse responses from --rir-dir (else simulated)."
)
NoiseDirOpt = typer.Option(None, help="Noise files for noise:SNR conditions (their test split is used).")
RirDirOpt = typer.Option(None, help="Impulse responses for reverb conditions (their test split; default: simulated).")
PldaOpt = typer.Option(
    None, "--plda", help="PLDA directory (xvec_transform.npz, plda.npz) fitted to the checkpoint's embeddings, as "
    "`evaluate` exports it to EXP/results/PROTOCOL.plda: cluster with VBx.", show_default=False,
)


def _output(help: str):
    """The --output (-o) option: what the command writes"""
    return typer.Option(None, "--output", "-o", help=help, show_default=False)


def _deprecated_option(name: str, current: str):
    """A spelling of the previous release, hidden from --help: still accepted, with a warning"""
    return typer.Option(None, name, hidden=True, help=f"Deprecated spelling of {current}.", show_default=False)


#: settings of the commands whose OUTPUT was positional: an extra argument is that OUTPUT (see _output_argument)
OUTPUT_ARGUMENT = {"allow_extra_args": True}


def _output_argument(ctx: typer.Context) -> Optional[Path]:
    """The positional OUTPUT of the previous release (left out of --help), None when not given"""
    from .errors import ConfigError

    if len(ctx.args) > 1:
        raise ConfigError(f"Unexpected extra arguments: {' '.join(ctx.args[1:])}.")
    return Path(ctx.args[0]) if ctx.args else None


class DeprecatedSpellingWarning(FutureWarning):
    """A command-line spelling of the previous release: still accepted (same meaning), removed in the next

    A FutureWarning, so that command-line users see it (Python shows
    DeprecationWarning to developers only).
    """


#: (deprecated spelling, current spelling) of each command; README.md, "Command line", lists them
DEPRECATED_SPELLINGS = {
    "prepare": {"--workers": "--num-workers"},
    "score": {"OUTPUT": "--output"},
    "apply": {"OUTPUT": "--output"},
    "train-segmentation": {"OUTPUT": "--output"},
    "export": {"--onnx": "--output"},
    "diarize": {"--rttm": "--output"},
    "oracle-der": {"--rttm": "--reference", "--json": "--output"},
}


def _spelled(option: str, value, deprecated: str, deprecated_value, missing: Optional[str] = None):
    """The value of `option`, or the one given with its `deprecated` spelling (with a warning)

    Refuses both (and neither, saying what is `missing`, when given): a
    ConfigError, one line, exit 2.
    """
    from .errors import ConfigError

    if deprecated_value is not None:
        spelling = f"the {deprecated} argument" if deprecated.isupper() else deprecated  # isupper: positional
        if value is not None:
            raise ConfigError(f"{option} and {spelling} (its deprecated spelling) both given: pass {option} only.")
        if deprecated.isupper():
            message = f"The {deprecated} argument is deprecated (removed in the next release): use {option} {deprecated}."
        else:
            message = f"{deprecated} is deprecated (removed in the next release): use {option}."
        warnings.warn(message, DeprecatedSpellingWarning, stacklevel=2)
        return deprecated_value
    if value is None and missing is not None:
        raise ConfigError(f"Missing option {option}{' / -o' if option == '--output' else ''}: {missing}.")
    return value


def _protocol(argument: Optional[str], option: Optional[str]) -> Optional[str]:
    """The protocol, given as the PROTOCOL argument or as --protocol (both: the same one)"""
    from .errors import ConfigError

    if argument is not None and option is not None and argument != option:
        raise ConfigError(f"Two protocols given, '{argument}' (PROTOCOL) and '{option}' (--protocol): pass one.")
    return argument if argument is not None else option


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line each ("Warning: ..."), as errors are: what to do, not where in the code"""
    typer.secho(f"Warning: {message}", fg=typer.colors.YELLOW, err=True)


def _user_errors(function):
    """Report the errors a user can fix (bad config, data, audio, ...) as one clear line, exit code 2

    Any other exception is a bug: it keeps its traceback.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        import warnings

        from .errors import EmblossError, TrainingInterrupted

        shown, warnings.showwarning = warnings.showwarning, _show_warning
        try:
            return function(*args, **kwargs)
        except TrainingInterrupted as e:
            typer.secho(str(e), fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(code=3)
        except EmblossError as e:
            typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2)
        finally:
            warnings.showwarning = shown

    return wrapper


def _conditions(conditions: Optional[List[str]]):
    from .data.conditions import parse_conditions

    return parse_conditions(conditions or [])


@app.command()
@_user_errors
def prepare(
    corpus: str = typer.Argument(
        ..., help="speechocean762 or voxceleb; or the format of your own data: folders, kaldi or csv."
    ),
    root: Optional[Path] = typer.Option(
        None, help="Corpus root; for your own data: the folder of speaker folders (folders), the data directory "
        "(kaldi), or the manifest file (csv: CSV, TSV or JSON lines)."
    ),
    name: Optional[str] = typer.Option(None, help="Your own data: the database name (protocol NAME.SpeakerVerification.Default)."),
    output: Optional[Path] = _output(
        "Where to write the protocol files. Defaults to ./data/<corpus or NAME> (data/<corpus> in a source checkout)."
    ),
    split: Optional[str] = typer.Option(
        None, help="Your own data: train/development/test percentages of the speakers, when the input does not say (default 80/10/10)."
    ),
    seed: Optional[int] = typer.Option(None, help="Your own data: seed of the split and of the trials (default 0)."),
    max_trials: Optional[int] = typer.Option(
        None, "--max-trials", help="Your own data: at most this many development and test trials drawn (default 20000)."
    ),
    download: bool = typer.Option(False, "--download", help="Download the corpus when it is not found (speechocean762)."),
    trials: Optional[List[Path]] = typer.Option(
        None, "--trials", help="VoxCeleb trial list(s) (veri_test2.txt, list_test_all2.txt, ...) not in --root."
    ),
    check_audio: bool = typer.Option(
        False, "--check-audio", help="Decode every file once; write no protocol while some fail (they are listed)."
    ),
    exclude_bad: bool = typer.Option(
        False, "--exclude-bad", help="With --check-audio: leave the files that fail out (listed in bad_files.txt)."
    ),
    num_workers: Optional[int] = typer.Option(
        None, "--num-workers", help="Parallel readers of audio headers (and decoders with --check-audio)."
    ),
    workers: Optional[int] = _deprecated_option("--workers", "--num-workers"),
    force: bool = typer.Option(
        False, "--force", help="Your own data: write NAME even when it hides a known corpus or another database.yml's protocols."
    ),
    progress: bool = ProgressOpt,
):
    """Turn a corpus, or your own speakers, into pyannote.database speaker verification protocols."""
    num_workers = _spelled("--num-workers", num_workers, "--workers", workers)
    from .data.protocols import load_registry, prepare_corpus, register, unregistered_hint

    database_yml = prepare_corpus(
        corpus,
        root=root,
        name=name,
        output_dir=output,
        split=split,
        seed=seed,
        max_trials=max_trials,
        download=download,
        trials=trials,
        check_audio=check_audio,
        exclude_bad=exclude_bad,
        num_workers=num_workers,
        progress=progress,
        register_in_cwd=False,
        force=force,
    )
    registered = register(database_yml)
    typer.echo(f"Protocol(s) {', '.join(sorted(load_registry([database_yml])))} written; declared by {database_yml}")
    if registered is not None:
        typer.echo(f"Registered in {registered}: train, evaluate and pyannote.database find them from this directory.")
    elif (hint := unregistered_hint(database_yml)) is not None:
        typer.echo(hint)


@app.command()
@_user_errors
def train(
    experiment_dir: Path = ExperimentDir,
    protocol: Optional[str] = ProtocolArg,
    protocol_option: Optional[str] = ProtocolOpt,
    database: Optional[str] = DatabaseOpt,
    max_epochs: Optional[int] = typer.Option(None, help="Override trainer.max_epochs."),
    batches_per_epoch: Optional[int] = typer.Option(None, help="Override task.params.batches_per_epoch."),
    num_workers: Optional[int] = typer.Option(None, help="Data loading workers."),
    seed: Optional[int] = typer.Option(None, help="Override the config's seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete existing checkpoints and logs; train from scratch."),
    resume: bool = typer.Option(False, "--resume", help="Resume from checkpoints/last.ckpt."),
    checkpoint_every_n_steps: Optional[int] = typer.Option(
        None, "--checkpoint-every-n-steps", help="Also write last.ckpt every N training steps (long epochs)."
    ),
    pretrained: Optional[Path] = typer.Option(
        None, help="Fine-tune: start from this checkpoint's embedding network (new loss for the new speakers)."
    ),
    freeze_frontend: bool = typer.Option(False, "--freeze-frontend", help="Do not train the front-end."),
    lr: Optional[float] = typer.Option(None, help="Override the optimizer's learning rate."),
    accelerator: Optional[str] = typer.Option(None, help="Override trainer.accelerator (cpu, gpu, auto)."),
    devices: Optional[str] = typer.Option(None, help="Override trainer.devices (e.g. 8, or 0,1)."),
    num_nodes: Optional[int] = typer.Option(None, help="Override trainer.num_nodes."),
    strategy: Optional[str] = typer.Option(None, help="Override trainer.strategy (e.g. ddp)."),
    precision: Optional[str] = typer.Option(None, help="Override trainer.precision (e.g. 16-mixed, bf16-mixed)."),
    trust_checkpoint: bool = TrustOpt,
    progress: bool = ProgressOpt,
):
    """Train the experiment's task and model; keep the best checkpoint.

    A new EXPERIMENT_DIR, given with a PROTOCOL, starts from the default recipe (experiments/aam's config.yml).
    """
    protocol = _protocol(protocol, protocol_option)
    from .experiment import Experiment
    from .training.run import TrainingOptions
    from .training.run import train as train_experiment

    options = TrainingOptions(
        protocol=protocol,
        database=database,
        max_epochs=max_epochs,
        batches_per_epoch=batches_per_epoch,
        num_workers=num_workers,
        overwrite=overwrite,
        resume=resume,
        progress_bar=progress,
        seed=seed,
        pretrained=pretrained,
        freeze_frontend=freeze_frontend,
        lr=lr,
        checkpoint_every_n_steps=checkpoint_every_n_steps,
        trust_checkpoint=trust_checkpoint,
        trainer_overrides=dict(
            accelerator=accelerator, devices=_devices(devices), num_nodes=num_nodes, strategy=strategy, precision=precision
        ),
    )
    summary = train_experiment(Experiment.load_or_create(experiment_dir, protocol), options)
    if summary:  # empty on ranks other than 0
        typer.echo(json.dumps(summary, indent=2))


def _devices(devices: Optional[str]):
    if devices is None:
        return None
    if devices.isdigit():
        return int(devices)
    if devices == "auto":
        return devices
    return [int(d) for d in devices.split(",") if d]


#: names of the scorings in printed summaries
SCORING_LABELS = {"cosine": "cosine", "mean": "mean-normalised", "asnorm": "AS-norm", "plda": "PLDA"}


def _format_results(results: dict) -> str:
    ci = results["ci"]
    lines = [
        f"{results['protocol']} {results['subset']}: {results['num_trials']} trials, {results['num_files']} files",
        f"EER          = {100 * results['eer']:.2f} %  (95 % CI {100 * ci['eer'][0]:.2f}–{100 * ci['eer'][1]:.2f})  cosine",
    ]
    for name, metrics in results.get("normalized", {}).items():
        low, high = metrics["ci"]["eer"]
        label = SCORING_LABELS.get(name, name)
        lines.append(f"EER          = {100 * metrics['eer']:.2f} %  (95 % CI {100 * low:.2f}–{100 * high:.2f})  {label}")
    lines += [
        f"minDCF(0.01) = {results['min_dcf_0.01']:.3f}  (95 % CI {ci['min_dcf_0.01'][0]:.3f}–{ci['min_dcf_0.01'][1]:.3f})",
        f"minDCF(0.05) = {results['min_dcf_0.05']:.3f}",
    ]
    lines += _format_calibration(results)
    for condition, metrics in results.get("conditions", {}).items():
        lines.append(f"EER          = {100 * metrics['eer']:.2f} %  condition {condition} (cosine)")
    lines.append(f"results: {results['json']}\nDET plot: {results['det_plot']}")
    if results.get("plda", {}).get("directory"):
        lines.append(f"PLDA (for VBx): {results['plda']['directory']}")
    return "\n".join(lines)


def _format_calibration(results: dict) -> List[str]:
    """Calibrated figures of each scoring, one line each, and the test FAR/FRR of the development thresholds"""
    if not results.get("calibration"):
        return [f"calibration: none. {results['calibration_note']}"] if results.get("calibration_note") else []
    lines = [f"calibrated on {results['calibration_trials']['num_trials']} development trials:"]
    scorings = {"cosine": results, **results.get("normalized", {})}
    for name, metrics in scorings.items():
        lines.append(
            f"  {SCORING_LABELS.get(name, name):<15} Cllr = {metrics['cllr']:.3f} (min {metrics['min_cllr']:.3f})  "
            f"actDCF(0.01) = {metrics['act_dcf_0.01']:.3f} (min {metrics['min_dcf_0.01']:.3f})"
        )
    for far, point in results["far"].items():
        lines.append(
            f"  threshold for FAR {100 * float(far):g} % = {point['threshold']:.4f} (cosine): "
            f"test FAR {100 * point['far']:.2f} %, FRR {100 * point['frr']:.2f} %"
        )
    return lines


@app.command()
@_user_errors
def evaluate(
    experiment_dir: Path = ExperimentDir,
    protocol: Optional[str] = ProtocolArg,
    protocol_option: Optional[str] = ProtocolOpt,
    subset: str = typer.Option("test", help="Trials subset: test or development."),
    database: Optional[str] = DatabaseOpt,
    checkpoint: Optional[Path] = CheckpointOpt,
    norm: bool = typer.Option(
        True, "--norm/--no-norm", help="Also report mean-normalised, AS-norm and PLDA scores (and export the PLDA for VBx)."
    ),
    cohort_size: Optional[int] = typer.Option(None, help="AS-norm cohort: number of training speakers (default: all)."),
    cohort_files: int = typer.Option(4, help="AS-norm cohort: training files embedded per speaker."),
    top_n: int = typer.Option(100, help="AS-norm: highest cohort scores kept per side."),
    training_files: Optional[int] = typer.Option(
        None, help="PLDA and cohort: at most this many training utterances embedded per speaker (default: all)."
    ),
    training_speakers: Optional[int] = typer.Option(
        None, help="PLDA and cohort: at most this many training speakers, drawn at random with a fixed seed (default: all)."
    ),
    training_budget: int = typer.Option(
        50_000, help="PLDA and cohort, without --training-files: above this many training utterances, as many per "
        "speaker as fit in it (at least 2)."
    ),
    condition: Optional[List[str]] = ConditionOpt,
    noise_dir: Optional[Path] = NoiseDirOpt,
    rir_dir: Optional[Path] = RirDirOpt,
    trust_checkpoint: bool = TrustOpt,
    cache: bool = CacheOpt,
    device: str = typer.Option("cpu", help="Torch device to embed on: cpu, cuda, cuda:1, mps..."),
    # apply's help, word for word (one meaning per option name): files of exactly equal length share a forward pass
    batch_size: int = typer.Option(32, help="Windows (or pieces of files) embedded at once."),
    progress: bool = ProgressOpt,
):
    """Embed each trial file whole, score (cosine, normalised, PLDA), report EER and minDCF; calibrate on development trials."""
    protocol = _protocol(protocol, protocol_option)
    from .evaluation.verification import EvaluationOptions
    from .evaluation.verification import evaluate as evaluate_experiment
    from .experiment import Experiment

    options = EvaluationOptions(
        protocol=protocol,
        subset=subset,
        database=database,
        checkpoint=checkpoint,
        progress=progress,
        normalize=norm,
        cohort_files_per_speaker=cohort_files,
        cohort_size=cohort_size,
        top_n=top_n,
        training_files_per_speaker=training_files,
        training_speakers=training_speakers,
        training_budget=training_budget,
        conditions=_conditions(condition),
        noise_dir=noise_dir,
        rir_dir=rir_dir,
        trust_checkpoint=trust_checkpoint,
        cache=cache,
        device=device,
        batch_size=batch_size,
    )
    results = evaluate_experiment(Experiment.load(experiment_dir), options)
    typer.echo(_format_results(results))
    if "cache" in results:
        c = results["cache"]
        typer.echo(
            f"embeddings: {c['hits']} read from the cache, {c['misses']} computed"
            + (f" ({c['damaged']} damaged entries replaced)" if c["damaged"] else "")
            + f"; {c['directory']} holds {c['bytes'] / 1e6:.1f} MB (bound {c['max_bytes'] / 1e9:.1f} GB)"
        )


FarOpt = typer.Option(
    None, "--far", help="Operating point: target false-acceptance rate, 0.01 (the default) or 0.001, whose "
    "thresholds evaluate picked on the development trials.", show_default=False,
)
PriorOpt = typer.Option(
    None, "--prior", help="Operating point instead: target prior (Bayes threshold on the calibrated LLR).",
    show_default=False,
)
ScoringOpt = typer.Option("cosine", "--scoring", help="cosine, or plda (the PLDA evaluate fitted and exported).")
EvaluatedProtocolOpt = typer.Option(
    None, "--protocol", help="Protocol of the evaluation whose calibration to use. Defaults to the config's.",
    show_default=False,
)


@app.command()
@_user_errors
def verify(
    experiment_dir: Path = ExperimentDir,
    audio1: Path = typer.Argument(..., help="Audio file.", show_default=False),
    audio2: Path = typer.Argument(..., help="Audio file.", show_default=False),
    far: Optional[float] = FarOpt,
    prior: Optional[float] = PriorOpt,
    scoring: str = ScoringOpt,
    protocol: Optional[str] = EvaluatedProtocolOpt,
    database: Optional[str] = DatabaseOpt,
    checkpoint: Optional[Path] = CheckpointOpt,
    trust_checkpoint: bool = TrustOpt,
):
    """Same speaker? Score, calibrated LLR and decision of two audio files (needs `evaluate` first)."""
    from .evaluation.verify import verify as verify_files

    verdict = verify_files(
        experiment_dir, audio1, audio2, far=far, prior=prior, scoring=scoring, protocol=protocol,
        database=database, checkpoint=checkpoint, trust_checkpoint=trust_checkpoint,
    )
    typer.echo(
        f"score = {verdict.score:.4f} ({scoring})  llr = {verdict.llr:.3f}  "
        f"decision: {'same speaker' if verdict.same_speaker else 'different speakers'}"
    )


@app.command(context_settings=OUTPUT_ARGUMENT)
@_user_errors
def score(
    ctx: typer.Context,
    experiment_dir: Path = ExperimentDir,
    trials: Path = typer.Argument(
        ..., help="Trial list, one trial a line: '[1|0] pathA pathB' (paths relative to its folder).", show_default=False
    ),
    output: Optional[Path] = _output("CSV to write: path1,path2,score,llr,decision."),
    far: Optional[float] = FarOpt,
    prior: Optional[float] = PriorOpt,
    scoring: str = ScoringOpt,
    protocol: Optional[str] = EvaluatedProtocolOpt,
    database: Optional[str] = DatabaseOpt,
    checkpoint: Optional[Path] = CheckpointOpt,
    trust_checkpoint: bool = TrustOpt,
    progress: bool = ProgressOpt,
):
    """Score a trial list: score, calibrated LLR and decision (1 = same speaker) of each trial, in a CSV."""
    output = _spelled("--output", output, "OUTPUT", _output_argument(ctx), missing="the CSV file to write")
    from .evaluation.verify import score_trial_list

    summary = score_trial_list(
        experiment_dir, trials, output, far=far, prior=prior, scoring=scoring, protocol=protocol,
        progress=progress, database=database, checkpoint=checkpoint, trust_checkpoint=trust_checkpoint,
    )
    message = (
        f"{summary['num_trials']} trials ({summary['num_files']} files) scored at {summary['operating_point']}: "
        f"{summary['num_same']} decided same speaker; {summary['csv']}"
    )
    if summary.get("far") is not None and summary.get("frr") is not None:
        message += f"\nwith the list's labels: FAR {100 * summary['far']:.2f} %, FRR {100 * summary['frr']:.2f} %"
    typer.echo(message)


@app.command()
@_user_errors
def compare(
    arguments: List[str] = typer.Argument(
        ...,
        metavar="EXPERIMENT_DIR... [PROTOCOL]",
        help="Experiment directories (one loss each), optionally followed by a protocol "
        "(defaults to the experiments', which must agree).",
        show_default=False,
    ),
    subset: str = typer.Option("test", help="Trials subset: test or development."),
    seeds: int = typer.Option(1, help="Seeds per experiment: report mean and spread over them."),
    train: bool = typer.Option(True, "--train/--no-train", help="Train experiments that are not trained yet."),
    output: Path = typer.Option(
        Path("results/comparison"), "--output", "-o", help="Directory to write the tables and plots to."
    ),
    condition: Optional[List[str]] = ConditionOpt,
    noise_dir: Optional[Path] = NoiseDirOpt,
    rir_dir: Optional[Path] = RirDirOpt,
    protocol_option: Optional[str] = ProtocolOpt,
    database: Optional[str] = DatabaseOpt,
    progress: bool = ProgressOpt,
):
    """Train (when needed) and evaluate experiments on the same trials: tables, DET curves, significance."""
    from .training.comparison import ComparisonOptions
    from .training.comparison import compare as compare_experiments
    from .training.comparison import expand_experiments

    protocol = None
    if len(arguments) > 1 and not Path(arguments[-1]).exists():
        *arguments, protocol = arguments
    protocol = _protocol(protocol, protocol_option)
    directories, skipped = expand_experiments(arguments)
    for directory, reason in skipped:
        typer.secho(f"Skipping '{directory}': {reason}", fg=typer.colors.YELLOW, err=True)
    options = ComparisonOptions(
        output=output,
        protocol=protocol,
        database=database,
        subset=subset,
        seeds=seeds,
        train_missing=train,
        progress=progress,
        conditions=_conditions(condition),
        noise_dir=noise_dir,
        rir_dir=rir_dir,
    )
    paths = compare_experiments(directories, options)
    typer.echo(Path(paths["markdown"]).read_text())
    for key, path in paths.items():
        typer.echo(f"{key}: {path}")


@app.command(context_settings=OUTPUT_ARGUMENT)
@_user_errors
def apply(
    ctx: typer.Context,
    experiment_dir: Path = ExperimentDir,
    source: Optional[str] = typer.Argument(
        None, metavar="PROTOCOL|AUDIO_DIR", help="pyannote.database protocol (with --subset), or a directory of audio "
        "files.", show_default=False,
    ),
    output: Optional[Path] = _output("Output directory: one .npy per file, index.csv."),
    protocol_option: Optional[str] = ProtocolOpt,
    subset: str = typer.Option("test", help="Protocol subset: train, development or test."),
    database: Optional[str] = DatabaseOpt,
    checkpoint: Optional[Path] = CheckpointOpt,
    window: str = typer.Option("whole", help="whole: one embedding per file; sliding: one per window."),
    duration: Optional[float] = typer.Option(None, help="Sliding window duration (s). Defaults to the training chunks'."),
    step: Optional[float] = typer.Option(None, help="Sliding window step (s). Defaults to a quarter of --duration."),
    batch_size: int = typer.Option(32, help="Windows (or pieces of files) embedded at once."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute files already embedded (default: skip them)."),
    skip_errors: bool = typer.Option(
        False, "--skip-errors", help="Embed the other files when some fail to decode; list those in failed.csv."
    ),
    trust_checkpoint: bool = TrustOpt,
    cache: bool = CacheOpt,
    progress: bool = ProgressOpt,
):
    """Embed every file of a protocol subset or of a directory; save .npy files and an index (resumable)."""
    from .errors import ConfigError, MissingFileError

    if source is not None and protocol_option is not None:
        raise ConfigError(
            f"Two sources given, '{source}' (PROTOCOL|AUDIO_DIR) and --protocol '{protocol_option}': pass one."
        )
    source = source if source is not None else protocol_option
    if source is None:
        raise ConfigError("Missing argument PROTOCOL|AUDIO_DIR (or option --protocol): what to embed.")
    output = _spelled("--output", output, "OUTPUT", _output_argument(ctx), missing="the directory to write the embeddings to")
    from .inference.apply import apply as apply_model
    from .inference.cache import CACHE_DIR, EmbeddingCache
    from .inference.apply import protocol_files
    from .data.audio import audio_directory_files
    from .inference.embedding import Window
    from .experiment import Experiment
    from .inference.loading import load_model

    experiment = Experiment.load(experiment_dir)
    window = Window(window, duration=duration, step=step)
    if not Path(source).is_dir() and (source.count(".") != 2 or "/" in source or Path(source).exists()):
        raise MissingFileError(
            f"'{source}' is neither a directory of audio files nor a protocol name (Database.Task.Protocol): "
            + ("it is a file; give the directory holding it." if Path(source).exists() else "no such directory.")
        )
    files = audio_directory_files(source) if Path(source).is_dir() else protocol_files(source, subset=subset, database=database)
    checkpoint = experiment.checkpoint(checkpoint)
    model = load_model(experiment, checkpoint, trust=trust_checkpoint)
    summary = apply_model(
        model,
        files,
        output,
        window=window,
        batch_size=batch_size,
        overwrite=overwrite,
        progress=progress,
        checkpoint=checkpoint,
        skip_errors=skip_errors,
        cache=EmbeddingCache.for_model(experiment.directory / CACHE_DIR, model, checkpoint) if cache else None,
    )
    message = (
        f"{summary['computed']} files embedded, {summary['cached']} read from the embedding cache, "
        f"{summary['skipped']} already done (skipped); index: {summary['index']}"
    )
    if summary.get("failed"):
        message += f"\n{summary['failed']} file(s) failed to decode: listed in {summary['failed_csv']}"
    typer.echo(message)


@app.command()
@_user_errors
def export(
    experiment_dir: Path = ExperimentDir,
    output: Optional[Path] = _output("ONNX file to write."),
    onnx: Optional[Path] = _deprecated_option("--onnx", "--output"),
    checkpoint: Optional[Path] = CheckpointOpt,
    trust_checkpoint: bool = TrustOpt,
):
    """Export the embedding network (no loss) to ONNX: waveforms (batch, 1, samples) -> embeddings."""
    output = _spelled("--output", output, "--onnx", onnx, missing="the ONNX file to write")
    from .experiment import Experiment
    from .inference.export import INPUT_NAME, OUTPUT_NAME, export_onnx
    from .inference.loading import load_model

    model = load_model(Experiment.load(experiment_dir), checkpoint, trust=trust_checkpoint)
    path = export_onnx(model, output)
    typer.echo(
        f"{path}: {INPUT_NAME} (batch, 1, samples) float32 at {model.audio.sample_rate} Hz "
        f"-> {OUTPUT_NAME} (batch, {model.dimension})"
    )


@app.command()
@_user_errors
def diarize(
    experiment: Path = ExperimentOrCheckpointArg,
    audio: Path = typer.Argument(..., help="Audio file.", show_default=False),
    segmentation: Path = typer.Option(..., help="Segmentation checkpoint (e.g. pyannote/segmentation-3.0's pytorch_model.bin)."),
    num_speakers: Optional[int] = typer.Option(None, help="Number of speakers, when known."),
    output: Optional[Path] = _output("RTTM file to write the diarization to (it is printed in any case)."),
    rttm: Optional[Path] = _deprecated_option("--rttm", "--output"),
    plda: Optional[Path] = PldaOpt,
    checkpoint: Optional[Path] = CheckpointOpt,
    trust_checkpoint: bool = TrustOpt,
):
    """Speaker diarization of AUDIO with pyannote's pipeline and the experiment's embeddings (AHC, or VBx with --plda)."""
    output = _spelled("--output", output, "--rttm", rttm)
    from .pipelines.diarization import diarize as diarize_file

    diarization = diarize_file(
        experiment, audio, segmentation, num_speakers=num_speakers, output=output, plda=plda,
        checkpoint=checkpoint, trust_checkpoint=trust_checkpoint,
    )
    typer.echo(diarization.to_rttm(), nl=False)


@app.command("oracle-der")
@_user_errors
def oracle_der(
    experiment: Path = ExperimentOrCheckpointArg,
    reference: Optional[Path] = typer.Option(
        None, "--reference", help="Reference RTTM (of a single file). Defaults to pyannote.audio's sample.rttm.",
        show_default=False,
    ),
    rttm: Optional[Path] = _deprecated_option("--rttm", "--reference"),
    audio: Optional[Path] = typer.Option(None, help="Audio file of the reference's (single) uri. Required with --reference."),
    conversations: int = typer.Option(
        0, help="Instead, N synthetic 3-speaker conversations of the test speakers of --protocol."
    ),
    protocol: Optional[str] = typer.Option(
        None, "--protocol", help="With --conversations: the protocol whose test speakers talk. "
        "Defaults to SpeechOcean762.SpeakerVerification.Default.", show_default=False,
    ),
    database: Optional[str] = DatabaseOpt,
    method: str = typer.Option("average", help="Agglomerative clustering linkage."),
    output: Optional[Path] = _output("JSON file to write the report to (it is printed in any case)."),
    json_output: Optional[Path] = _deprecated_option("--json", "--output"),
    plda: Optional[Path] = PldaOpt,
    checkpoint: Optional[Path] = CheckpointOpt,
    trust_checkpoint: bool = TrustOpt,
):
    """DER of reference speech turns clustered with the experiment's embeddings (oracle number of speakers)."""
    reference = _spelled("--reference", reference, "--rttm", rttm)
    output = _spelled("--output", output, "--json", json_output)
    from .pipelines.oracle import oracle_der_report

    report = oracle_der_report(
        experiment, reference=reference, audio=audio, conversations=conversations, protocol=protocol,
        database=database, method=method, output=output, plda=plda, checkpoint=checkpoint,
        trust_checkpoint=trust_checkpoint,
    )
    for file in report["files"]:
        vbx = ""
        if "der_vbx" in file:
            vbx = (
                f", VBx: {100 * file['der_vbx']:.1f} % (with its own {file['num_clusters_vbx_own']} "
                f"speakers: {100 * file['der_vbx_own']:.1f} %)"
            )
        typer.echo(
            f"{file['uri']}: {file['num_turns']} oracle turns, {file['num_speakers']} speakers: "
            f"DER = {100 * file['der']:.1f} %{vbx} (single cluster: {100 * file['baseline_der']:.1f} %)"
        )
    vbx = ""
    if "vbx" in report:
        vbx = (
            f" with AHC, {100 * report['vbx']['der']:.1f} % with VBx "
            f"({100 * report['vbx']['der_own']:.1f} % with VBx's own number of speakers)"
        )
    typer.echo(
        f"oracle DER = {100 * report['der']:.1f} %{vbx} (single-cluster baseline: {100 * report['baseline_der']:.1f} %)"
    )


@app.command("train-segmentation", context_settings=OUTPUT_ARGUMENT)
@_user_errors
def train_segmentation(
    ctx: typer.Context,
    output: Optional[Path] = _output("Checkpoint to write (.ckpt)."),
    max_epochs: int = typer.Option(10, help="Number of epochs."),
    batches_per_epoch: int = typer.Option(8, help="Batches per epoch."),
    progress: bool = ProgressOpt,
):
    """Train a small PyanNet segmentation model on pyannote.audio's sample (offline demonstration model)."""
    output = _spelled("--output", output, "OUTPUT", _output_argument(ctx), missing="the checkpoint (.ckpt) to write")
    from .pipelines.segmentation import train_segmentation as train_model

    checkpoint = train_model(output, max_epochs=max_epochs, batches_per_epoch=batches_per_epoch, progress_bar=progress)
    typer.echo(f"Segmentation model written to {checkpoint}")


def main():  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
