"""Command line of pyannote_embloss.pipelines

    python -m pyannote_embloss.pipelines oracle-der CHECKPOINT [--rttm R --audio A | --conversations N] [--json OUT]
    python -m pyannote_embloss.pipelines train-segmentation OUTPUT.ckpt
    python -m pyannote_embloss.pipelines diarize CHECKPOINT AUDIO --segmentation S [--num-speakers N]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import pyannote_embloss  # noqa: F401  (telemetry off before pyannote.audio is imported)
import typer

from ..cli import _user_errors

app = typer.Typer(
    name="python -m pyannote_embloss.pipelines",
    help="pyannote.audio pipelines with pyannote-embloss embeddings.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CheckpointArg = typer.Argument(
    ..., help="Checkpoint (.ckpt) written by `pyannote-audio-emb train`, or an experiment directory.", show_default=False
)


@app.command("oracle-der")
@_user_errors
def oracle_der_command(
    checkpoint: Path = CheckpointArg,
    rttm: Optional[Path] = typer.Option(None, help="Reference RTTM. Defaults to pyannote.audio's sample.rttm."),
    audio: Optional[Path] = typer.Option(None, help="Audio file of the RTTM's (single) uri. Required with --rttm."),
    conversations: int = typer.Option(
        0, help="Instead, N synthetic 3-speaker conversations of SpeechOcean762 test speakers (see --database)."
    ),
    database: Optional[str] = typer.Option(
        None, "--database", help="database.yml of SpeechOcean762.SpeakerVerification.Default (with --conversations)."
    ),
    method: str = typer.Option("average", help="Agglomerative clustering linkage."),
    output: Optional[Path] = typer.Option(None, "--json", help="Also write the report to this JSON file."),
):
    """DER of reference speech turns clustered with the checkpoint's embeddings (oracle number of speakers)."""
    import tempfile

    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm

    from ..inference import load_model
    from ..io import atomic_write_text
    from .oracle import oracle_der
    from .segmentation import sample_file

    workdir = tempfile.TemporaryDirectory()
    if conversations > 0:
        if rttm is not None:
            raise ValueError("--conversations and --rttm are exclusive: choose one.")
        from ..protocols import get_protocol
        from .conversations import make_conversations

        protocol = get_protocol("SpeechOcean762.SpeakerVerification.Default", database_yml=database)
        utterances = [(f["annotation"].labels()[0], str(f["audio"])) for f in protocol.test()]
        files = make_conversations(utterances, workdir.name, num_conversations=conversations)
    elif rttm is None:
        if audio is not None:
            raise ValueError("--audio needs --rttm (the reference of that audio file).")
        files = [sample_file()]
    else:
        if audio is None:
            raise ValueError("--rttm needs --audio (the audio file the RTTM annotates).")
        annotations = load_rttm(rttm)
        if len(annotations) != 1:
            raise ValueError(f"{rttm} annotates {len(annotations)} uris: pass an RTTM of a single file.")
        (uri, annotation), = annotations.items()
        extent = annotation.get_timeline().extent()
        files = [{"uri": uri, "audio": str(audio), "annotation": annotation,
                  "annotated": Timeline([Segment(0.0, extent.end)], uri=uri)}]

    with workdir:
        report = oracle_der(load_model(checkpoint), files, method=method)
    report["checkpoint"] = str(checkpoint)
    for file in report["files"]:
        typer.echo(
            f"{file['uri']}: {file['num_turns']} oracle turns, {file['num_speakers']} speakers: "
            f"DER = {100 * file['der']:.1f} % (single cluster: {100 * file['baseline_der']:.1f} %)"
        )
    typer.echo(f"oracle DER = {100 * report['der']:.1f} % (single-cluster baseline: {100 * report['baseline_der']:.1f} %)")
    if output is not None:
        atomic_write_text(output, json.dumps(report, indent=2) + "\n")


@app.command("train-segmentation")
@_user_errors
def train_segmentation_command(
    output: Path = typer.Argument(..., help="Checkpoint to write (.ckpt).", show_default=False),
    max_epochs: int = typer.Option(10, help="Number of epochs."),
    batches_per_epoch: int = typer.Option(8, help="Batches per epoch."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
):
    """Train a small PyanNet segmentation model on pyannote.audio's sample (offline demonstration model)."""
    from .segmentation import train_segmentation

    checkpoint = train_segmentation(
        output, max_epochs=max_epochs, batches_per_epoch=batches_per_epoch, progress_bar=progress
    )
    typer.echo(f"Segmentation model written to {checkpoint}")


@app.command()
@_user_errors
def diarize(
    checkpoint: Path = CheckpointArg,
    audio: Path = typer.Argument(..., help="Audio file.", show_default=False),
    segmentation: Path = typer.Option(..., help="Segmentation checkpoint (e.g. pyannote/segmentation-3.0's pytorch_model.bin)."),
    num_speakers: Optional[int] = typer.Option(None, help="Number of speakers, when known."),
    output: Optional[Path] = typer.Option(None, "--rttm", help="Write the diarization to this RTTM file."),
):
    """Speaker diarization of AUDIO with pyannote's pipeline and the checkpoint's embeddings."""
    from ..io import atomic_path
    from .diarization import SpeakerDiarization

    if not audio.is_file():
        raise FileNotFoundError(f"Audio file '{audio}' does not exist.")
    pipeline = SpeakerDiarization(embedding=checkpoint, segmentation=segmentation)
    diarization = pipeline({"uri": audio.stem, "audio": str(audio)}, num_speakers=num_speakers).speaker_diarization
    if output is not None:
        with atomic_path(output) as tmp, open(tmp, "w") as f:
            diarization.write_rttm(f)
    typer.echo(diarization.to_rttm(), nl=False)


def main():  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
