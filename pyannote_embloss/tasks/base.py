"""Shared speaker-embedding task: sampler, upstream fixes and validation"""

from __future__ import annotations

import os
import random
import warnings
import zlib
from functools import partial
from pathlib import Path
from tempfile import mkstemp
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from pyannote.audio.core.task import (
    Problem,
    Resolution,
    Scopes,
    Specifications,
    Subsets,
    Task,
    ValDataset,
)
from pyannote.audio.tasks.embedding.mixins import (
    SupervisedRepresentationLearningTaskMixin,
)
from pyannote.core import Segment
from pyannote.database import Protocol

from torch.utils.data import DataLoader, default_collate
from torchmetrics import Metric

from ..data.audio import AudioDecodingError, load_audio
from ..data.augmentation import Augmentation, chunk_with_speed, speed_classes
from ..inference.embedding import iter_embeddings, load_utterance
from ..errors import ConfigError, DataError
from ..evaluation.trials import MAX_TURN_TRIALS, MIN_TURN_DURATION, Trials
from ..losses import get_loss_class
from ..models.base import full_precision
from .prepared_data import prepare_protocol_data
from ..data.protocols.lists import SubsetLists, training_check_view
from .validation import TrialEqualErrorRate

#: prefix of the development trials in pyannote.audio's prepared data
VALIDATION = "validation"


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
    * trains without a development set (no validation is run then);
    * prepares the training data in time linear in the number of files
      (:mod:`.prepared_data`; upstream's label look-ups scan lists), reading
      the RTTM and UEM files of a protocol made of plain lists once
      (:mod:`.protocol_lists`; upstream parses them file by file with pandas,
      once more when it checks the protocol).

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
        Number of speakers per batch. Defaults to 32. More than the training
        classes (speakers, times speeds) is a ConfigError, raised by `setup`.
    num_chunks_per_class : int, optional
        Number of chunks per speaker in a batch. Defaults to the least the
        loss needs: 1 for classification losses, 2 for pair and triplet losses.
    batches_per_epoch : int, optional
        Number of training batches per epoch. Defaults to as many as needed to
        cover the training set once, on average.
    **loss_params
        Hyper-parameters of the loss (margin, scale, ...): those of the loss
        class, with its defaults (see :data:`pyannote_embloss.losses.LOSSES`).
    cache : str, optional
        Path of the `prepare_data` cache. Defaults to a temporary file.
    num_workers : int, optional
        Number of data loading workers. Defaults to pyannote.audio's default
        (half the CPUs).
    pin_memory : bool, optional
        Pin memory in data loaders. Defaults to False.
    augmentation : dict, optional
        Augmentation of training chunks: the `augmentation:` section of
        config.yml, validated by :func:`pyannote_embloss.config.check_augmentation`
        (speed perturbation, babble, noise, reverberation). Defaults to none.
    max_bad_files : float, optional
        Training files that fail to decode are skipped (and reported in
        `training.json`), until they are more than this share of the training
        files: then training stops with an error listing them. Defaults to 0.001.
    trial_min_duration : float, optional
        For protocols without development trials (speaker diarization
        protocols), development trials are drawn between the speech turns of
        the development subset that last at least this long, in seconds
        (:meth:`~pyannote_embloss.evaluation.trials.Trials.from_turns`). Defaults to 1 s.
    max_trials : int, optional
        At most this many development trials drawn from speech turns.
        Defaults to 20,000.
    metric : optional
        Validation metric. Defaults to the equal error rate of development trials.
    """

    #: name of the loss in pyannote_embloss.losses.LOSSES (set by subclasses)
    loss_name: str = ""
    #: read the protocol's subsets once when they are plain lists (:mod:`.protocol_lists`), not file by file
    read_protocol_lists: bool = True

    def __init__(
        self,
        protocol: Protocol,
        duration: float = 2.0,
        min_duration: Optional[float] = None,
        num_classes_per_batch: int = 32,
        num_chunks_per_class: Optional[int] = None,
        batches_per_epoch: Optional[int] = None,
        cache: Optional[str] = None,
        num_workers: Optional[int] = None,
        pin_memory: bool = False,
        augmentation: Optional[dict] = None,
        max_bad_files: float = 0.001,
        trial_min_duration: float = MIN_TURN_DURATION,
        max_trials: int = MAX_TURN_TRIALS,
        metric: Union[Metric, Sequence[Metric], Dict[str, Metric]] = None,
        **loss_params,
    ):
        self.trial_min_duration = trial_min_duration
        self.max_trials = max_trials
        self.augmentation_config = augmentation
        self.augmentation_ = None
        self.max_bad_files = max_bad_files
        self.bad_files: Dict[str, str] = {}
        self.loss_class = get_loss_class(self.loss_name)
        # checked by pyannote_embloss.config (TaskConfig.parse), the one validator of task.params
        self.loss_params = dict(loss_params)
        if num_chunks_per_class is None:
            num_chunks_per_class = self.loss_class.min_chunks_per_class

        # must be set before Task.__init__ (the mixin's properties recurse otherwise)
        self.num_chunks_per_class = num_chunks_per_class
        self.num_classes_per_batch = num_classes_per_batch
        self.batches_per_epoch = batches_per_epoch

        # pyannote.audio's check_protocol reads the training lists whole, for their first file: spare it that
        train_lists = SubsetLists.of(protocol, "train") if self.read_protocol_lists else None
        super().__init__(
            protocol if train_lists is None else training_check_view(protocol, train_lists),
            cache=cache,
            duration=duration,
            min_duration=min_duration,
            batch_size=self.batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            metric=metric,
        )
        self.protocol = protocol

    # ------------------------------------------------------------------ data

    def prepare_data(self):
        """pyannote.audio's data preparation, in linear time (see :mod:`.prepared_data`)"""
        if self.cache:
            if self.cache.exists() and self.cache.stat().st_size > 0:
                return
            self.cache.parent.mkdir(parents=True, exist_ok=True)
        else:
            self.cache = Path(mkstemp()[1])
        prepared_data = prepare_protocol_data(self, read_lists=self.read_protocol_lists)
        if self.has_validation:
            self.prepare_validation(prepared_data)
        self.post_prepare_data(prepared_data)
        with open(self.cache, "wb") as cache_file:
            np.savez_compressed(cache_file, **prepared_data)

    def prepare_validation(self, prepared_dict: Dict):
        """Cache development trials as plain arrays (fix for unpicklable ProtocolFile)

        Trials are the protocol's development trial list or, without one (a
        speaker diarization protocol), drawn between the development subset's
        speech turns.
        """
        try:
            trials = Trials.from_protocol(
                self.protocol, "development", min_duration=self.trial_min_duration, max_trials=self.max_trials
            )
        except DataError as error:  # no development trials: train without validation
            warnings.warn(
                f"No development trials ({error}): training runs without validation, and best.ckpt is the last epoch."
            )
            return
        prepared_dict.update(trials.to_arrays(VALIDATION))

    def setup(self, stage=None):
        """Load prepared data and index training speech turns per speaker"""
        Task.setup(self, stage)

        data = self.prepared_data
        train = subset_file_ids(data, "train")
        segments = data["annotations-segments"]
        segments = segments[np.isin(segments["file_id"], train)]
        classes = training_classes(data, segments)

        per_class: Dict[str, Dict[int, list]] = {}
        for file_id, start, end, klass in zip(segments["file_id"], segments["start"], segments["end"], classes):
            if end <= start or klass is None:
                continue
            per_file = per_class.setdefault(klass, {})
            per_file.setdefault(int(file_id), []).append(Segment(float(start), float(end)))

        if not per_class:
            raise DataError(
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

        self.speakers = sorted(self._train)
        self.speeds = [1.0] if self.augmentation_config is None else list(self.augmentation_config["speed"])
        classes = speed_classes(self.speakers, self.speeds)
        if self.num_classes_per_batch > len(classes):
            speeds = f" x {len(self.speeds)} speeds" if len(self.speeds) > 1 else ""
            raise ConfigError(
                f"task.params.num_classes_per_batch is {self.num_classes_per_batch}, more than the {len(classes)} "
                f"training classes of {self.protocol.name} ({len(self.speakers)} speakers{speeds}): set it to "
                f"{len(classes)} or less."
            )

        self.specifications = Specifications(
            problem=Problem.REPRESENTATION,
            resolution=Resolution.CHUNK,
            duration=self.duration,
            min_duration=self.min_duration,
            classes=classes,
        )

    @property
    def has_validation_trials(self) -> bool:
        return f"{VALIDATION}-trials" in getattr(self, "prepared_data", {})

    def _load_chunk(self, file: dict, turn: Segment, duration: float, num_samples: int, rng) -> torch.Tensor:
        """A random chunk of `num_samples` samples (`duration` seconds) of `turn`"""
        audio = self.model.audio
        if turn.duration < duration:
            X = load_audio(audio, file["audio"], turn)
            missing = max(0, num_samples - X.shape[1])
            left = rng.randint(0, missing)
            return F.pad(X, (left, missing - left))[:, :num_samples]
        start = rng.uniform(turn.start, turn.end - duration)
        return load_audio(audio, file["audio"], Segment(start, start + duration), num_samples=num_samples)

    def _draw_chunk(self, speaker: str, speed: float, duration: float, rng, bad: Dict[str, str]) -> torch.Tensor:
        """A chunk of `speaker` at `speed`, skipping files that fail to decode"""
        sample_rate = self.model.audio.sample_rate
        num_samples = self.model.audio.get_num_samples(duration)
        while True:
            files = [f for f in self._train[speaker] if f["audio"] not in bad] or self._train[speaker]
            file, *_ = rng.choices(files, weights=[f["duration"] for f in files], k=1)
            turn, *_ = rng.choices(file["speech_turns"], weights=[s.duration for s in file["speech_turns"]], k=1)
            try:
                return chunk_with_speed(
                    lambda n: self._load_chunk(file, turn, n / sample_rate, n, rng), num_samples, speed, sample_rate
                )
            except AudioDecodingError as error:
                if file["audio"] in bad:  # every file of the speaker is bad
                    raise
                bad[file["audio"]] = str(error)
                warnings.warn(f"Skipping a training file that fails to decode: {error}")

    def train__iter__(self):
        """Iterate over training chunks, batch after batch

        Each batch holds `num_classes_per_batch` classes (a speaker at a
        speed, with speed perturbation) × `num_chunks_per_class` chunks,
        then goes through the augmentation as a whole (babble mixes chunks
        of the batch). Every random draw uses one generator per data loader,
        process and worker (:func:`sampler_rng`), so that a run is
        reproducible and resumes exactly from an epoch boundary.

        Yields
        ------
        sample : dict
            {"X": (channel, sample) torch.Tensor, "y": int class index,
             "skipped": "|"-separated files newly found undecodable ("" mostly)}
        """
        rng = sampler_rng(self.model)
        classes = [(speaker, speed) for speed in self.speeds for speaker in self.speakers]
        class_index = {klass: c for c, klass in enumerate(classes)}
        speaker_index = {speaker: s for s, speaker in enumerate(self.speakers)}
        bad: Dict[str, str] = {}
        reported = 0
        order, position = list(classes), len(classes)  # pyannote.audio's order: shuffled in place, read from the front
        while True:
            duration = rng.uniform(self.min_duration, self.duration)
            chunks, labels, speakers = [], [], []
            for _ in range(self.num_classes_per_batch):
                if position == len(order):
                    rng.shuffle(order)
                    position = 0
                speaker, speed = order[position]
                position += 1
                for _ in range(self.num_chunks_per_class):
                    chunks.append(self._draw_chunk(speaker, speed, duration, rng, bad))
                    labels.append(class_index[(speaker, speed)])
                    speakers.append(speaker_index[speaker])
            X = torch.stack(chunks)
            if self.augmentation_ is not None:
                X = self.augmentation_(X, speakers, rng)
            skipped = "|".join(list(bad)[reported:])
            reported = len(bad)
            for b, (x, y) in enumerate(zip(X, labels)):
                yield {"X": x, "y": y, "skipped": skipped if b == 0 else ""}

    def collate_fn(self, batch, stage="train"):
        """Stack samples (augmentation already happened, per batch, in `train__iter__`)"""
        return default_collate(batch)

    def train__len__(self):
        if self.batches_per_epoch:
            return self.batches_per_epoch * self.batch_size
        return super().train__len__()

    # ------------------------------------------------------------ validation

    def default_metric(self):
        if not self.has_validation_trials:
            return []
        return {"EqualErrorRate": TrialEqualErrorRate(Trials.from_arrays(self.prepared_data, VALIDATION))}

    def val__getitem__(self, idx):
        path = str(self.prepared_data[f"{VALIDATION}-audio"][idx])
        segments = self.prepared_data.get(f"{VALIDATION}-segments")
        segment = None if segments is None or np.isnan(segments[idx][0]) else tuple(segments[idx])
        return {"X": load_utterance(self.model, path, segment), "file": idx}

    def val__len__(self):
        if not self.has_validation_trials:
            return 0
        return len(self.prepared_data[f"{VALIDATION}-audio"])

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
        # the very function `evaluate` embeds trial files with (whole files)
        waveforms = zip(batch["file"].tolist(), batch["X"])
        for file, embedding in iter_embeddings(self.model, waveforms, window="whole"):
            self.model.validation_metric.update(torch.from_numpy(embedding)[None], torch.tensor([file]))
        self.model.log_dict(
            self.model.validation_metric,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            logger=True,
            batch_size=1,
        )

    # ------------------------------------------------------------------ training

    def training_step(self, batch, batch_idx: int):
        """Loss of a batch; stops on a non-finite loss and on too many undecodable files"""
        for skipped in batch.get("skipped", []):
            for path in filter(None, skipped.split("|")):
                self.bad_files.setdefault(path, "")
        if self.bad_files:
            num_files = sum(len(files) for files in self._train.values())
            if len(self.bad_files) > self.max_bad_files * num_files:
                listed = "\n".join(f" - {path}" for path in sorted(self.bad_files)[:20])
                raise DataError(
                    f"{len(self.bad_files)} of the {num_files} training files fail to decode, more than "
                    f"max_bad_files = {self.max_bad_files:g} of them:\n{listed}\nFix or exclude them "
                    "(`pyannote-audio-emb prepare ... --check-audio --exclude-bad`), or raise task.params.max_bad_files."
                )
        X, y = batch["X"], batch["y"]
        embeddings = self.model(X)
        with full_precision(embeddings):  # under mixed precision, the loss' cosines and exponentials in float32
            loss = self.model.loss_func(embeddings.float(), y)
        if not torch.isfinite(loss):
            from ..errors import TrainingDivergedError

            trainer = self.model.trainer
            lrs = [group["lr"] for optimizer in trainer.optimizers for group in optimizer.param_groups]
            raise TrainingDivergedError(
                f"Training diverged at step {trainer.global_step} (epoch {trainer.current_epoch}): the loss is "
                f"{loss.item()} (learning rate {', '.join(f'{lr:.3g}' for lr in lrs)}). checkpoints/last.ckpt is "
                "from before; lower the learning rate (or add a warm-up) and train again, or resume."
            )
        self.model.log("loss/train", loss, on_step=True, on_epoch=True, prog_bar=False, logger=True, batch_size=len(y))
        return {"loss": loss}

    # ------------------------------------------------------------------ loss

    def setup_loss_func(self):
        """Attach the loss (and its trainable parameters) to the model, build the augmentation"""
        if self.augmentation_config is not None and self.augmentation_config["transforms"] and self.augmentation_ is None:
            # here (main process, model attached), not in each data loading worker
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
            self.augmentation_ = Augmentation(self.augmentation_config, self.model.audio.sample_rate, seed=seed)
        if self.loss_class.uses_classifier:
            self.model.loss_func = self.loss_class(
                num_classes=len(self.specifications.classes),
                embedding_size=self.model.dimension,
                **self.loss_params,
            )
        else:
            self.model.loss_func = self.loss_class(**self.loss_params)
        self.model.loss_func.to(self.model.device)


def sampler_rng(model) -> random.Random:
    """The training sampler's random generator, for this process, data-loading worker and point of the run

    pyannote.audio's `create_rng_for_worker` (seeded by the global seed, the
    worker, the process ranks and the epoch), with the epoch that Lightning
    itself gives samplers (its loop's count of processed epochs): when a run
    is resumed from a checkpoint saved at the end of an epoch, Lightning's
    `current_epoch` is still that finished epoch's while the data loader
    already serves the next one. A resumed run thus draws the very chunks (and
    augmentations) of the uninterrupted one, and a run draws the chunks that
    pyannote.audio's seeding gives. A run resumed from the middle of an epoch
    also seeds with the global step, so that it draws new chunks for the rest
    of the epoch instead of repeating its beginning.
    """
    worker = torch.utils.data.get_worker_info()
    seed = (
        os.environ.get("PL_GLOBAL_SEED", "unset"),
        None if worker is None else worker.id,
        model.local_rank,
        model.global_rank,
    )
    trainer = model._trainer  # None when the task is used outside of a Trainer
    if trainer is None:
        return random.Random(zlib.adler32(str(seed + (0,)).encode()))
    epoch = trainer.fit_loop.epoch_progress.current.processed
    batches = trainer.fit_loop.epoch_loop.batch_progress
    resumed_mid_epoch = batches.current.ready > 0 and not batches.is_last_batch
    seed = seed + ((epoch, trainer.global_step) if resumed_mid_epoch else (epoch,))
    return random.Random(zlib.adler32(str(seed).encode()))


def training_classes(prepared_data: Dict, segments: np.ndarray) -> list:
    """The class (speaker) of each training speech turn, by the scope of its file

    With ``scope: global`` a label names the same speaker in every file; with
    ``scope: database`` within a database; with ``scope: file`` only within
    its file, so that each (file, label) is a class of its own. None for
    unlabelled turns.
    """
    metadata = prepared_data["audio-metadata"]
    values = prepared_data["metadata-values"]
    databases = (values.item() if isinstance(values, np.ndarray) else values)["database"]
    scopes = metadata["scope"][segments["file_id"]]
    global_labels = prepared_data["metadata-labels"]
    classes = []
    for segment, scope in zip(segments, scopes):
        if Scopes[scope] == "global":
            label = segment["global_label_idx"]
            classes.append(None if label < 0 else str(global_labels[label]))
        elif Scopes[scope] == "database":
            database = databases[metadata["database"][segment["file_id"]]]
            label = segment["database_label_idx"]
            labels = prepared_data[f"metadata-{database}-labels"]
            classes.append(None if label < 0 else f"{database}/{labels[label]}")
        else:
            classes.append(f"{prepared_data['audio-path'][segment['file_id']]}#{segment['file_label_idx']}")
    return classes


def subset_file_ids(prepared_data: Dict, subset: str) -> np.ndarray:
    """Indices of the files of `prepared_data` that belong to `subset`"""
    return np.where(prepared_data["audio-metadata"]["subset"] == Subsets.index(subset))[0]
