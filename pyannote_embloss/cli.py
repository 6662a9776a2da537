"""`pyannote-audio-emb`: prepare data, train, evaluate speaker embeddings

    pyannote-audio-emb prepare speechocean762 [--root DIR] [--download]
    pyannote-audio-emb train experiments/aam [PROTOCOL] [--max-epochs N]
    pyannote-audio-emb evaluate experiments/aam [PROTOCOL] [--subset test]
    pyannote-audio-emb train experiments/new PROTOCOL --pretrained CKPT [--freeze-frontend] [--lr LR]
    pyannote-audio-emb apply experiments/aam (PROTOCOL --subset S | AUDIO_DIR) OUTPUT [--window sliding]
    pyannote-audio-emb export experiments/aam --onnx OUT.onnx
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import pyannote_embloss  # noqa: F401  (telemetry off before pyannote.audio is imported)
import typer

app = typer.Typer(
    name="pyannote-audio-emb",
    help="Speaker-embedding training with metric-learning losses, for pyannote.audio.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ExperimentDir = typer.Argument(..., help="Experiment directory holding a config.yml.", show_default=False)
ProtocolArg = typer.Argument(None, help="pyannote.database protocol. Defaults to the config's.", show_default=False)
DatabaseOpt = typer.Option(
    None, "--database", help="database.yml to load. Defaults to $PYANNOTE_DATABASE_CONFIG, then the repository's."
)


def _user_errors(function):
    """Report expected errors (bad config, missing data, ...) as one clear line, exit code 2"""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from .audio import AudioDecodingError
        from .experiment import ConfigError
        from .protocols import DownloadError

        try:
            return function(*args, **kwargs)
        except (
            ConfigError,
            AudioDecodingError,
            DownloadError,
            FileNotFoundError,
            FileExistsError,
            ValueError,
        ) as e:
            typer.secho(f"Error: {e}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=2)

    return wrapper


def _prepare_default_data(protocols, database: Optional[str]) -> None:
    """Generate the default corpus' protocol files if missing (fresh clone), from the local corpus"""
    from .protocols import prepare_if_missing

    for name in sorted(set(protocols)):
        prepare_if_missing(name, database)


@app.command()
@_user_errors
def prepare(
    corpus: str = typer.Argument(..., help="Corpus name, e.g. speechocean762."),
    root: Optional[Path] = typer.Option(None, help="Corpus root directory (else env variable, then ../shared/data)."),
    output: Optional[Path] = typer.Option(None, help="Where to write the protocol files. Defaults to data/<corpus> in the repository."),
    download: bool = typer.Option(False, "--download", help="Download the corpus when it is not found."),
):
    """Turn a corpus into a pyannote.database speaker verification protocol."""
    from .protocols import CORPORA

    if corpus not in CORPORA:
        raise ValueError(f"Unknown corpus '{corpus}'. Known corpora: {', '.join(CORPORA)}.")
    database_yml = CORPORA[corpus].prepare(root=root, output_dir=output, download=download)
    typer.echo(f"Protocol files written; registered by {database_yml}")


@app.command()
@_user_errors
def train(
    experiment_dir: Path = ExperimentDir,
    protocol: Optional[str] = ProtocolArg,
    database: Optional[str] = DatabaseOpt,
    max_epochs: Optional[int] = typer.Option(None, help="Override trainer.max_epochs."),
    batches_per_epoch: Optional[int] = typer.Option(None, help="Override task.params.batches_per_epoch."),
    num_workers: Optional[int] = typer.Option(None, help="Data loading workers."),
    seed: Optional[int] = typer.Option(None, help="Override the config's seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete existing checkpoints and train from scratch."),
    resume: bool = typer.Option(False, "--resume", help="Resume from checkpoints/last.ckpt."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    pretrained: Optional[Path] = typer.Option(
        None, help="Fine-tune: start from this checkpoint's embedding network (new loss for the new speakers)."
    ),
    freeze_frontend: bool = typer.Option(False, "--freeze-frontend", help="Do not train the SincNet front-end."),
    lr: Optional[float] = typer.Option(None, help="Override the optimizer's learning rate."),
):
    """Train the experiment's task and model; keep the best checkpoint."""
    import json

    from .experiment import Experiment
    from .training import train as train_experiment

    experiment = Experiment.load(experiment_dir)
    _prepare_default_data([experiment.protocol_name(protocol)], database)
    summary = train_experiment(
        experiment,
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
    )
    typer.echo(json.dumps(summary, indent=2))


@app.command()
@_user_errors
def evaluate(
    experiment_dir: Path = ExperimentDir,
    protocol: Optional[str] = ProtocolArg,
    subset: str = typer.Option("test", help="Trials subset: test or development."),
    database: Optional[str] = DatabaseOpt,
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint. Defaults to the experiment's best."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
):
    """Embed each trial file whole, score by cosine, report EER and minDCF."""
    from .evaluation.verification import evaluate as evaluate_experiment
    from .experiment import Experiment

    experiment = Experiment.load(experiment_dir)
    _prepare_default_data([experiment.protocol_name(protocol)], database)
    results = evaluate_experiment(
        experiment,
        protocol=protocol,
        subset=subset,
        database=database,
        checkpoint=checkpoint,
        progress=progress,
    )
    ci = results["ci"]
    typer.echo(
        f"{results['protocol']} {subset}: {results['num_trials']} trials, {results['num_files']} files\n"
        f"EER          = {100 * results['eer']:.2f} %  "
        f"(95 % CI {100 * ci['eer'][0]:.2f}–{100 * ci['eer'][1]:.2f})\n"
        f"minDCF(0.01) = {results['min_dcf_0.01']:.3f}  "
        f"(95 % CI {ci['min_dcf_0.01'][0]:.3f}–{ci['min_dcf_0.01'][1]:.3f})\n"
        f"minDCF(0.05) = {results['min_dcf_0.05']:.3f}\n"
        f"results: {results['json']}\nDET plot: {results['det_plot']}"
    )


@app.command()
@_user_errors
def compare(
    arguments: list[str] = typer.Argument(
        ...,
        metavar="EXPERIMENT_DIR... [PROTOCOL]",
        help="Experiment directories (one loss each), optionally followed by a protocol "
        "(defaults to the experiments', which must agree).",
        show_default=False,
    ),
    subset: str = typer.Option("test", help="Trials subset: test or development."),
    seeds: int = typer.Option(1, help="Seeds per experiment: report mean and spread over them."),
    train: bool = typer.Option(True, "--train/--no-train", help="Train experiments that are not trained yet."),
    output: Path = typer.Option(Path("results/comparison"), help="Where to write the tables and the DET plot."),
    database: Optional[str] = DatabaseOpt,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
):
    """Evaluate (and train) experiments on the same trials: tables and overlaid DET curves."""
    from .comparison import compare as compare_experiments
    from .experiment import Experiment

    protocol = None
    if len(arguments) > 1 and not Path(arguments[-1]).exists():
        *arguments, protocol = arguments
    # `compare experiments/*` expands to every entry: keep directories with a config.yml
    directories = [
        Path(a) for a in arguments if not Path(a).is_dir() or (Path(a) / "config.yml").is_file()
    ]
    _prepare_default_data(
        [Experiment.load(d).protocol_name(protocol) for d in directories if (d / "config.yml").is_file()], database
    )
    paths = compare_experiments(
        directories,
        output=output,
        protocol=protocol,
        database=database,
        subset=subset,
        seeds=seeds,
        train_missing=train,
        progress=progress,
    )
    typer.echo(Path(paths["markdown"]).read_text())
    for key, path in paths.items():
        typer.echo(f"{key}: {path}")


@app.command()
@_user_errors
def apply(
    experiment_dir: Path = ExperimentDir,
    source: str = typer.Argument(
        ..., metavar="PROTOCOL|AUDIO_DIR", help="pyannote.database protocol (with --subset), or a directory of audio files.",
        show_default=False,
    ),
    output: Path = typer.Argument(..., help="Output directory: one .npy per file, index.csv.", show_default=False),
    subset: str = typer.Option("test", help="Protocol subset: train, development or test."),
    database: Optional[str] = DatabaseOpt,
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint. Defaults to the experiment's best."),
    window: str = typer.Option("whole", help="whole: one embedding per file; sliding: one per window."),
    duration: Optional[float] = typer.Option(None, help="Sliding window duration (s). Defaults to the training chunks'."),
    step: Optional[float] = typer.Option(None, help="Sliding window step (s). Defaults to a quarter of --duration."),
    batch_size: int = typer.Option(32, help="Windows (or equal-length files) embedded at once."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute files already embedded (default: skip them)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
):
    """Embed every file of a protocol subset or of a directory; save .npy files and an index (resumable)."""
    from .apply import apply as apply_model
    from .apply import audio_directory_files, protocol_files
    from .experiment import Experiment
    from .inference import load_model

    experiment = Experiment.load(experiment_dir)
    checkpoint = Path(checkpoint or experiment.best_checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"No checkpoint '{checkpoint}': train first with `pyannote-audio-emb train {experiment.directory}`."
        )
    if Path(source).is_dir():
        files = audio_directory_files(source)
    else:
        files = protocol_files(source, subset=subset, database=database)
    summary = apply_model(
        load_model(checkpoint),
        files,
        output,
        window=window,
        duration=duration,
        step=step,
        batch_size=batch_size,
        overwrite=overwrite,
        progress=progress,
        checkpoint=checkpoint,
    )
    typer.echo(
        f"{summary['computed']} files embedded, {summary['skipped']} already done (skipped); index: {summary['index']}"
    )


@app.command()
@_user_errors
def export(
    experiment_dir: Path = ExperimentDir,
    onnx: Path = typer.Option(..., "--onnx", help="ONNX file to write.", show_default=False),
    checkpoint: Optional[Path] = typer.Option(None, help="Checkpoint. Defaults to the experiment's best."),
):
    """Export the embedding network (no loss) to ONNX: waveforms (batch, 1, samples) -> embeddings."""
    from .experiment import Experiment
    from .export import INPUT_NAME, OUTPUT_NAME, export_onnx
    from .inference import load_model

    experiment = Experiment.load(experiment_dir)
    checkpoint = Path(checkpoint or experiment.best_checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"No checkpoint '{checkpoint}': train first with `pyannote-audio-emb train {experiment.directory}`."
        )
    model = load_model(checkpoint)
    path = export_onnx(model, onnx)
    typer.echo(
        f"{path}: {INPUT_NAME} (batch, 1, samples) float32 at {model.audio.sample_rate} Hz "
        f"-> {OUTPUT_NAME} (batch, {model.dimension})"
    )


def main():  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
