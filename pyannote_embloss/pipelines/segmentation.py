"""A small speaker segmentation model, trained offline on pyannote.audio's sample

pyannote's speaker diarization pipeline needs a segmentation model. The usual
one, ``pyannote/segmentation-3.0``, is downloaded from the Hugging Face hub;
when that is not possible (offline machines, tests), :func:`train_segmentation`
trains a small `PyanNet` with pyannote.audio's own `SpeakerDiarization` task
(powerset multi-class, as segmentation-3.0) on a pyannote.database protocol,
by default :func:`sample_protocol`: the 30 s ``sample.wav`` (2 speakers)
bundled with pyannote.audio, and its reference ``sample.rttm``.

Such a model has seen 30 s of audio: it is a demonstration model, good for
``sample.wav`` and little else. For real use, pass a real segmentation model
to :class:`pyannote_embloss.pipelines.SpeakerDiarization`, e.g. a local copy
of pyannote/segmentation-3.0 (``segmentation="/path/to/pytorch_model.bin"``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import yaml
from pyannote.audio.tasks import SpeakerDiarization as SegmentationTask

from ..errors import ConfigError
from ..io import PathLike, atomic_path, atomic_write_text

SAMPLE_PROTOCOL = "PyannoteSample.SpeakerDiarization.Sample"

#: a PyanNet smaller than pyannote.audio's default (trains in a minute on a CPU)
SMALL_PYANNET = {
    "sincnet": {"stride": 10},
    "lstm": {"hidden_size": 64, "num_layers": 2, "bidirectional": True},
    "linear": {"hidden_size": 64, "num_layers": 1},
}


def sample_directory() -> Path:
    """Directory of pyannote.audio's bundled sample.wav and sample.rttm"""
    import pyannote.audio.sample

    return Path(pyannote.audio.sample.__file__).parent


def sample_file() -> dict:
    """pyannote.audio's bundled sample, as a pyannote.database file

    Returns
    -------
    file : dict
        {"uri", "audio", "annotation", "annotated"}: 30 s, 2 speakers.
    """
    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm

    directory = sample_directory()
    annotation = load_rttm(directory / "sample.rttm")["sample"]
    from pyannote.audio.core.io import Audio

    duration = Audio().get_duration(directory / "sample.wav")
    return {
        "uri": "sample",
        "audio": str(directory / "sample.wav"),
        "annotation": annotation,
        "annotated": Timeline([Segment(0.0, duration)], uri="sample"),
    }


def sample_protocol(output_dir: PathLike) -> Path:
    """Write a pyannote.database protocol made of pyannote.audio's sample

    ``PyannoteSample.SpeakerDiarization.Sample``: sample.wav in the train and
    development subsets (there is no other annotated audio to validate on).

    Parameters
    ----------
    output_dir : str or Path
        Where to write ``database.yml``, ``sample.lst`` and ``sample.uem``
        (the annotation is pyannote.audio's own sample.rttm).

    Returns
    -------
    database_yml : Path
        Load it with ``pyannote_embloss.data.protocols.get_protocol(SAMPLE_PROTOCOL, database_yml=...)``.
    """
    output_dir = Path(output_dir).absolute()
    directory = sample_directory()
    file = sample_file()
    atomic_write_text(output_dir / "sample.lst", "sample\n")
    atomic_write_text(output_dir / "sample.uem", f"sample 1 0.000 {file['annotated'].extent().end:.3f}\n")
    subset = {
        "uri": str(output_dir / "sample.lst"),
        "annotation": str(directory / "sample.rttm"),
        "annotated": str(output_dir / "sample.uem"),
    }
    database, task, name = SAMPLE_PROTOCOL.split(".")
    config = {
        "Databases": {database: str(directory / "{uri}.wav")},
        "Protocols": {database: {task: {name: {"scope": "file", "train": subset, "development": subset}}}},
    }
    return atomic_write_text(output_dir / "database.yml", yaml.safe_dump(config, sort_keys=False))


class FixedBudgetSegmentation(SegmentationTask):
    """pyannote.audio's SpeakerDiarization (segmentation) task, with a fixed number of batches per epoch

    pyannote's epoch covers the training audio once (a single batch for a
    30 s file): `batches_per_epoch` makes the budget independent of it.

    Parameters
    ----------
    protocol : SpeakerDiarizationProtocol
    batches_per_epoch : int, optional
        Defaults to 8.
    **kwargs
        pyannote.audio.tasks.SpeakerDiarization keyword arguments.
    """

    def __init__(self, protocol, batches_per_epoch: int = 8, **kwargs):
        super().__init__(protocol, **kwargs)
        self.batches_per_epoch = batches_per_epoch

    def train__len__(self):
        return self.batches_per_epoch * self.batch_size


def train_segmentation(
    checkpoint: PathLike,
    protocol: Optional[str] = None,
    database: Optional[PathLike] = None,
    duration: float = 5.0,
    max_speakers_per_chunk: int = 2,
    max_speakers_per_frame: int = 2,
    architecture: Optional[dict] = None,
    batch_size: int = 16,
    batches_per_epoch: int = 8,
    max_epochs: int = 10,
    lr: float = 3e-3,
    seed: int = 0,
    num_workers: int = 0,
    progress_bar: bool = False,
) -> Path:
    """Train a PyanNet speaker segmentation model (powerset) and save it

    Parameters
    ----------
    checkpoint : str or Path
        Where to write the checkpoint (``.ckpt``), atomically. Load it with
        ``pyannote.audio.Model.from_pretrained(checkpoint)``.
    protocol : str, optional
        pyannote.database SpeakerDiarization protocol. Defaults to
        :data:`SAMPLE_PROTOCOL`, written next to `checkpoint` by :func:`sample_protocol`.
    database : str or Path, optional
        database.yml declaring `protocol` (see ``pyannote_embloss.data.protocols.get_protocol``).
    duration : float, optional
        Training chunk duration, in seconds. Defaults to 5.
    max_speakers_per_chunk, max_speakers_per_frame : int, optional
        Powerset classes. Default to 2 and 2.
    architecture : dict, optional
        PyanNet keyword arguments. Defaults to :data:`SMALL_PYANNET`.
    batch_size, batches_per_epoch, max_epochs : int, optional
        Training budget. Default to 16 chunks, 8 batches, 10 epochs.
    lr : float, optional
        Adam learning rate. Defaults to 3e-3.
    seed : int, optional
    num_workers : int, optional
        Data loading workers. Defaults to 0.
    progress_bar : bool, optional

    Returns
    -------
    checkpoint : Path
    """
    from lightning import Trainer, seed_everything
    from pyannote.audio.models.segmentation import PyanNet

    from ..config import OptimizerConfig
    from ..data.protocols import get_protocol
    from ..training.run import configure_optimizer

    checkpoint = Path(checkpoint)
    if protocol is None:
        if database is not None:
            raise ConfigError("`database` was given without `protocol`: pass both, or neither for pyannote's sample.")
        protocol = SAMPLE_PROTOCOL
        database = sample_protocol(checkpoint.parent / f"{checkpoint.stem}.protocol")

    seed_everything(seed, workers=True, verbose=False)
    with tempfile.TemporaryDirectory() as cache:
        task = FixedBudgetSegmentation(
            get_protocol(protocol, database_yml=database),
            batches_per_epoch=batches_per_epoch,
            cache=str(Path(cache) / "prepared.npz"),
            duration=duration,
            max_speakers_per_chunk=max_speakers_per_chunk,
            max_speakers_per_frame=max_speakers_per_frame,
            batch_size=batch_size,
            num_workers=num_workers,
        )
        model = PyanNet(task=task, **(architecture or SMALL_PYANNET))
        configure_optimizer(model, OptimizerConfig("Adam", {"lr": lr}))
        trainer = Trainer(
            max_epochs=max_epochs,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=progress_bar,
            enable_model_summary=False,
            default_root_dir=checkpoint.parent,
        )
        trainer.fit(model)
    with atomic_path(checkpoint) as tmp:
        trainer.save_checkpoint(tmp)
    return checkpoint
