"""Shared speaker-embedding task: sampler, upstream fixes and validation"""

from __future__ import annotations

from functools import partial
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from pyannote.audio.core.task import (
    Problem,
    Resolution,
    Specifications,
    Subsets,
    Task,
    ValDataset,
)
from pyannote.audio.tasks.embedding.mixins import (
    SupervisedRepresentationLearningTaskMixin,
)
from pyannote.audio.utils.random import create_rng_for_worker
from pyannote.core import Segment
from pyannote.database import Protocol
from pyannote.database.protocol import SpeakerVerificationProtocol

from torch.utils.data import DataLoader
from torch_audiomentations.core.transforms_interface import BaseWaveformTransform
from torchmetrics import Metric

from ..audio import load_audio
from ..losses import get_loss_class
from .validation import TrialEqualErrorRate


class SpeakerEmbeddingTask(SupervisedRepresentationLearningTaskMixin, Task):
    """Speaker embedding trained with a metric-learning loss

    Each training batch holds `num_classes_per_batch` speakers ×
    `num_chunks_per_class` chunks of `duration` seconds; the loss (one of
    :data:`pyannote_embloss.losses.LOSSES`, chosen by subclasses through
    `loss_name`) is computed on the model's embeddings of those chunks and
    their speaker labels. Loss parameters (classifier weights, centers) are
    attached to the model as ``model.loss_func``, so that the model's optimizer
    trains them and checkpoints store them.

    Compared to pyannote.audio 4.0.7's `SupervisedRepresentationLearningTaskMixin`,
    this task

    * caches development trials as plain paths, not `ProtocolFile` objects
      (which hold unpicklable registry classes and break caching);
    * calls `Task.setup`, so that prepared data is available at validation, and
      builds its speaker index from that cache instead of re-reading the
      training protocol in every process;
    * embeds every development file once per epoch (whole file), then scores
      all development trials with cosine similarity and accumulates the
      equal error rate with `Metric.update` (no per-batch EER, which fails on
      one-class batches);
    * computes chunk sizes with `Audio.get_num_samples` everywhere, so that
      all chunks of a batch have the same number of samples;
    * trains without a development set (no validation is run then).

    Parameters
    ----------
    protocol : Protocol
        pyannote.database protocol (e.g. a SpeakerVerification protocol whose
        training files are annotated with speaker labels, global scope).
    duration : float, optional
        Chunk duration in seconds. Defaults to 2s.
    min_duration : float, optional
        Sample each batch's chunk duration uniformly between `min_duration`
        and `duration`. Defaults to `duration` (fixed-length chunks).
    num_classes_per_batch : int, optional
        Number of speakers per batch. Defaults to 32. Capped to the number of
        training speakers.
    num_chunks_per_class : int, optional
        Number of chunks per speaker in a batch. Defaults to the least the
        loss needs: 1 for classification losses, 2 for pair and triplet losses.
    batches_per_epoch : int, optional
        Number of training batches per epoch. Defaults to as many as needed to
        cover the training set once, on average.
    loss : dict, optional
        Keyword arguments of the loss (margin, scale, ...).
    cache : str, optional
        Path of the `prepare_data` cache. Defaults to a temporary file.
    num_workers : int, optional
        Number of data loading workers. Defaults to pyannote.audio's default
        (half the CPUs).
    pin_memory : bool, optional
        Pin memory in data loaders. Defaults to False.
    augmentation : BaseWaveformTransform, optional
        torch_audiomentations waveform transform applied to training batches.
    metric : optional
        Validation metric. Defaults to the equal error rate of development trials.
    """

    #: name of the loss in pyannote_embloss.losses.LOSSES (set by subclasses)
    loss_name: str = ""

    def __init__(
        self,
        protocol: Protocol,
        duration: float = 2.0,
        min_duration: Optional[float] = None,
        num_classes_per_batch: int = 32,
        num_chunks_per_class: Optional[int] = None,
        batches_per_epoch: Optional[int] = None,
        loss: Optional[Dict[str, Any]] = None,
        cache: Optional[str] = None,
        num_workers: Optional[int] = None,
        pin_memory: bool = False,
        augmentation: Optional[BaseWaveformTransform] = None,
        metric: Union[Metric, Sequence[Metric], Dict[str, Metric]] = None,
    ):
        self.loss_class = get_loss_class(self.loss_name)
        self.loss_params = dict(loss or {})

        min_chunks = self.loss_class.min_chunks_per_class
        if num_chunks_per_class is None:
            num_chunks_per_class = min_chunks
        if num_chunks_per_class < min_chunks:
            raise ValueError(
                f"The '{self.loss_name}' loss needs positive pairs in each batch: "
                f"set num_chunks_per_class to at least {min_chunks} "
                f"(got num_chunks_per_class={num_chunks_per_class})."
            )
        if num_classes_per_batch < 1 or num_chunks_per_class < 1:
            raise ValueError(
                "num_classes_per_batch and num_chunks_per_class must be positive "
                f"(got {num_classes_per_batch} and {num_chunks_per_class})."
            )

        # must be set before Task.__init__ (the mixin's properties recurse otherwise)
        self.num_chunks_per_class = num_chunks_per_class
        self.num_classes_per_batch = num_classes_per_batch
        self.batches_per_epoch = batches_per_epoch

        super().__init__(
            protocol,
            cache=cache,
            duration=duration,
            min_duration=min_duration,
            batch_size=self.batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            augmentation=augmentation,
            metric=metric,
        )

    # ------------------------------------------------------------------ data

    def prepare_validation(self, prepared_dict: Dict):
        """Cache development trials as plain strings (fix for unpicklable ProtocolFile)"""
        if not isinstance(self.protocol, SpeakerVerificationProtocol):
            return

        files: Dict[str, int] = {}
        paths: list = []
        trials: list = []
        for trial in self.protocol.development_trial():
            indices = []
            for key in ("file1", "file2"):
                file = trial[key]
                uri = str(file["uri"])
                if uri not in files:
                    files[uri] = len(paths)
                    paths.append(str(file["audio"]))
                indices.append(files[uri])
            trials.append((indices[0], indices[1], int(trial["reference"])))

        if not trials:
            return

        prepared_dict["validation-audio"] = np.array(paths, dtype=np.str_)
        prepared_dict["validation-trials"] = np.array(
            trials, dtype=[("file1", "i4"), ("file2", "i4"), ("reference", "i1")]
        )

    def setup(self, stage=None):
        """Load prepared data and index training speech turns per speaker"""
        Task.setup(self, stage)

        data = self.prepared_data
        labels = data["metadata-labels"]
        train = subset_file_ids(data, "train")
        segments = data["annotations-segments"]
        segments = segments[np.isin(segments["file_id"], train)]

        per_class: Dict[str, Dict[int, list]] = {}
        for file_id, start, end, label in zip(
            segments["file_id"],
            segments["start"],
            segments["end"],
            segments["global_label_idx"],
        ):
            if end <= start or label < 0:
                continue
            per_file = per_class.setdefault(str(labels[label]), {})
            per_file.setdefault(int(file_id), []).append(Segment(float(start), float(end)))

        if not per_class:
            raise ValueError(
                f"Protocol {self.protocol.name} has no labelled speech in its training subset: "
                "check that its train files have an 'annotation' (RTTM) with speaker labels."
            )

        audio_paths = data["audio-path"]
        self._train = {
            klass: [
                {
                    "audio": str(audio_paths[file_id]),
                    "duration": sum(s.duration for s in turns),
                    "speech_turns": turns,
                }
                for file_id, turns in files.items()
            ]
            for klass, files in per_class.items()
        }

        if self.num_classes_per_batch > len(self._train):
            self.num_classes_per_batch = len(self._train)
            self.batch_size = self.num_classes_per_batch * self.num_chunks_per_class

        self.specifications = Specifications(
            problem=Problem.REPRESENTATION,
            resolution=Resolution.CHUNK,
            duration=self.duration,
            min_duration=self.min_duration,
            classes=sorted(self._train),
        )

    @property
    def has_validation_trials(self) -> bool:
        return "validation-trials" in getattr(self, "prepared_data", {})

    def train__iter__(self):
        """Iterate over training chunks, one speaker after the other

        Yields
        ------
        sample : dict
            {"X": (channel, sample) torch.Tensor, "y": int speaker index}
        """
        rng = create_rng_for_worker(self.model)
        classes = list(self.specifications.classes)
        class_index = {klass: c for c, klass in enumerate(classes)}
        audio = self.model.audio

        num_samples_in_batch = 0
        batch_duration = rng.uniform(self.min_duration, self.duration)
        while True:
            rng.shuffle(classes)
            for klass in classes:
                files = self._train[klass]
                weights = [f["duration"] for f in files]
                for _ in range(self.num_chunks_per_class):
                    file, *_ = rng.choices(files, weights=weights, k=1)
                    turn, *_ = rng.choices(
                        file["speech_turns"],
                        weights=[s.duration for s in file["speech_turns"]],
                        k=1,
                    )
                    num_samples = audio.get_num_samples(batch_duration)
                    if turn.duration < batch_duration:
                        X = load_audio(audio, file["audio"], turn)
                        missing = max(0, num_samples - X.shape[1])
                        left = rng.randint(0, missing)
                        X = F.pad(X, (left, missing - left))[:, :num_samples]
                    else:
                        start = rng.uniform(turn.start, turn.end - batch_duration)
                        X = load_audio(
                            audio,
                            file["audio"],
                            Segment(start, start + batch_duration),
                            num_samples=num_samples,
                        )
                    yield {"X": X, "y": class_index[klass]}

                    num_samples_in_batch += 1
                    if num_samples_in_batch == self.batch_size:
                        batch_duration = rng.uniform(self.min_duration, self.duration)
                        num_samples_in_batch = 0

    def train__len__(self):
        if self.batches_per_epoch:
            return self.batches_per_epoch * self.batch_size
        return super().train__len__()

    # ------------------------------------------------------------ validation

    def default_metric(self):
        if not self.has_validation_trials:
            return []
        trials = self.prepared_data["validation-trials"]
        return {
            "EqualErrorRate": TrialEqualErrorRate(
                trials["file1"], trials["file2"], trials["reference"]
            )
        }

    def val__getitem__(self, idx):
        path = str(self.prepared_data["validation-audio"][idx])
        return {"X": load_audio(self.model.audio, path), "file": idx}

    def val__len__(self):
        if not self.has_validation_trials:
            return 0
        return len(self.prepared_data["validation-audio"])

    def val_dataloader(self) -> Optional[DataLoader]:
        if not self.has_validation_trials:
            # Lightning 2.6 rejects None: an empty list means "no validation"
            return []
        # whole files of different durations: one file per batch
        return DataLoader(
            ValDataset(self),
            batch_size=1,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=partial(self.collate_fn, stage="val"),
        )

    def validation_step(self, batch, batch_idx: int):
        with torch.no_grad():
            embeddings = self.model(batch["X"])
        self.model.validation_metric.update(embeddings, batch["file"])
        self.model.log_dict(
            self.model.validation_metric,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            logger=True,
            batch_size=1,
        )

    # ------------------------------------------------------------------ loss

    def setup_loss_func(self):
        """Attach the loss (and its trainable parameters) to the model"""
        if self.loss_class.uses_classifier:
            self.model.loss_func = self.loss_class(
                num_classes=len(self.specifications.classes),
                embedding_size=self.model.dimension,
                **self.loss_params,
            )
        else:
            self.model.loss_func = self.loss_class(**self.loss_params)
        self.model.loss_func.to(self.model.device)


def subset_file_ids(prepared_data: Dict, subset: str) -> np.ndarray:
    """Indices of the files of `prepared_data` that belong to `subset`"""
    return np.where(prepared_data["audio-metadata"]["subset"] == Subsets.index(subset))[0]
