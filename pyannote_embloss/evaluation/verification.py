"""Speaker verification evaluation of a model, or of an experiment, on protocol trials

Every trial utterance (a file, or a segment of one) is embedded once (:func:`pyannote_embloss.embedding.embed_files`),
trials are scored by cosine similarity (:meth:`Trials.score`), raw and, with a
cohort of training speakers, mean-normalised and AS-normalised, and each
scoring gets its EER, minDCF and bootstrap confidence intervals.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from pyannote.audio.core.model import Model

from ..augmentation import NoiseSource
from ..conditions import Condition, TestConditions, check_disjoint
from ..embedding import embed_files
from ..errors import DataError
from ..lock import OutputLock
from ..experiment import Experiment
from ..protocols import get_protocol
from .metrics import bootstrap_confidence_intervals, detection_metrics
from .normalization import Cohort, normalizations
from .report import plot_det_curves, write_json
from .trials import MAX_TURN_TRIALS, MIN_TURN_DURATION, Trials, speech_turns

__all__ = ["training_cohort", "evaluate_model", "evaluate_conditions", "evaluate"]

#: default number of training files per cohort speaker
COHORT_FILES_PER_SPEAKER = 4
#: default number of highest cohort scores kept by AS-norm
TOP_N = 100


def training_files(protocol, files_per_speaker: Optional[int] = None) -> tuple[list, list, list]:
    """(audio paths, speakers, segments) of single-speaker training utterances, sorted by uri

    A file with a single speaker is used whole (segment None); a file with
    several (a conversation) gives its single-speaker speech turns of at
    least :data:`~pyannote_embloss.evaluation.trials.MIN_TURN_DURATION`.

    Parameters
    ----------
    protocol : pyannote.database protocol
    files_per_speaker : int, optional
        Keep the first utterances (by uri, then time) of each speaker only. Defaults to all.
    """
    per_speaker: Dict[str, list] = {}
    for file in protocol.train():
        labels = file["annotation"].labels()
        uri = str(file["uri"])
        scoped = (lambda label: str(label)) if file["scope"] == "global" else (lambda label: f"{uri}/{label}")
        if len(labels) == 1:
            per_speaker.setdefault(scoped(labels[0]), []).append((uri, 0.0, str(file["audio"]), None))
            continue
        for segment, label in speech_turns(file, MIN_TURN_DURATION):
            per_speaker.setdefault(scoped(label), []).append(
                (uri, segment.start, str(file["audio"]), (segment.start, segment.end))
            )
    paths, speakers, segments = [], [], []
    for speaker, files in sorted(per_speaker.items()):
        for _, _, path, segment in sorted(files, key=lambda f: f[:2])[:files_per_speaker]:
            paths.append(path)
            speakers.append(speaker)
            segments.append(segment)
    if len(per_speaker) < 2:
        raise DataError(
            f"Protocol {protocol.name} has {len(per_speaker)} training speaker(s) with single-speaker speech: "
            "score normalisation needs a cohort of at least 2. Evaluate with --no-norm."
        )
    return paths, speakers, segments


def training_cohort(
    model: Model,
    protocol,
    files_per_speaker: Optional[int] = COHORT_FILES_PER_SPEAKER,
    size: Optional[int] = None,
    progress: bool = True,
) -> Cohort:
    """Score normalisation cohort from `protocol`'s training speakers

    Parameters
    ----------
    model : Model
    protocol : pyannote.database protocol
    files_per_speaker : int, optional
        Training files embedded per speaker (the first ones by uri).
        Defaults to 4; None for all.
    size : int, optional
        Number of cohort speakers. Defaults to all training speakers.
    """
    paths, speakers, segments = training_files(protocol, files_per_speaker)
    embeddings = embed_files(model, paths, progress=progress, desc="Embedding cohort", segments=segments)
    return Cohort.from_embeddings(embeddings, speakers, size=size)


def evaluate_model(
    model: Model,
    trials: Trials,
    cohort: Optional[Cohort] = None,
    top_n: int = TOP_N,
    progress: bool = True,
    n_resamples: int = 1000,
    embeddings: Optional[np.ndarray] = None,
) -> dict:
    """Embed trial files whole, score trials, compute EER and minDCF

    Parameters
    ----------
    model : Model
    trials : Trials
    cohort : Cohort, optional
        When given, mean-normalised and AS-normalised scores are evaluated too.
    top_n : int, optional
        AS-norm's number of highest cohort scores.
    embeddings : (num_files, dimension) np.ndarray, optional
        Embeddings of `trials.paths`, when already computed.

    Returns
    -------
    results : dict
        Metrics of the raw cosine scores (:func:`detection_metrics`, key
        "ci" for their 95 % bootstrap intervals), and under "normalized" the
        same for each normalisation ("mean", "asnorm"). "scores" maps each
        scoring to its (num_trials, ) scores and "y_true" holds the trial
        labels (numpy arrays, not written to JSON).
    """
    if embeddings is None:
        embeddings = embed_files(model, trials.paths, progress=progress, segments=trials.segments)
    results: dict = {"normalized": {}, "scores": {}}
    for name, normalization in normalizations(cohort, top_n=top_n).items():
        scores = trials.score(embeddings, normalization)
        metrics = detection_metrics(trials.reference, scores)
        metrics["ci"] = bootstrap_confidence_intervals(trials.reference, scores, n_resamples=n_resamples)
        results["scores"][name] = scores
        if normalization is None:
            results.update(metrics)
        else:
            results["normalized"][name] = metrics
    if cohort is not None:
        results["cohort"] = {"speakers": len(cohort), "top_n": min(top_n, len(cohort))}
    results["num_files"] = trials.num_files
    results["num_trials"] = len(trials)
    results["y_true"] = trials.reference
    return results


def evaluate_conditions(
    model: Model,
    trials: Trials,
    conditions: TestConditions,
    progress: bool = True,
    n_resamples: int = 1000,
) -> dict:
    """Raw cosine metrics of the trials in each corrupted test condition

    Returns
    -------
    results : dict
        {condition name: metrics (with "ci", and "scores" as a numpy array)},
        clean excluded.
    """
    results, names = {}, trials.names
    for condition in conditions.conditions:
        if condition.is_clean:
            continue
        embeddings = embed_files(
            model,
            trials.paths,
            progress=progress,
            desc=f"Embedding ({condition.name})",
            transform=lambda waveform, i: conditions.corrupt(waveform, condition, names[i]),
            segments=trials.segments,
        )
        scores = trials.score(embeddings)
        metrics = detection_metrics(trials.reference, scores)
        metrics["ci"] = bootstrap_confidence_intervals(trials.reference, scores, n_resamples=n_resamples)
        metrics["scores"] = scores
        results[condition.name] = metrics
    return results


def test_conditions(experiment: Experiment, protocol, conditions, noise_dir=None, rir_dir=None) -> Optional[TestConditions]:
    """Test conditions for `experiment` on `protocol`, apart from its training noises

    Babble comes from the protocol's training speakers; noise files must
    not be among those the experiment's augmentation uses.
    """
    if not conditions or all(c.is_clean for c in conditions):
        return None
    babble = []
    if any(c.noise == "babble" for c in conditions):
        babble, _, _ = training_files(protocol, files_per_speaker=2)
    test = TestConditions(conditions, noise_dir=noise_dir, rir_dir=rir_dir, babble_files=babble)
    augmentation = experiment.config.get("augmentation")
    if test.noise_files and augmentation:
        for transform in augmentation["transforms"]:
            if transform["name"] == "noise":
                source = NoiseSource(transform["directory"], subset=transform["subset"])
                check_disjoint(source.paths, test.noise_files)
    return test


def experiment_trials(experiment: Experiment, protocol, subset: str) -> Trials:
    """The trials of `subset`, as the experiment's validation draws them when the protocol has no trial list

    Speech-turn trials (speaker diarization protocols) follow the task's
    `trial_min_duration` and `max_trials`, so that ``evaluate --subset
    development`` scores the very trials that picked the best checkpoint.
    """
    params = (experiment.config.get("task") or {}).get("params") or {}  # training-free models have no task
    return Trials.from_protocol(
        protocol,
        subset,
        min_duration=params.get("trial_min_duration", MIN_TURN_DURATION),
        max_trials=params.get("max_trials", MAX_TURN_TRIALS),
    )


def evaluate(
    experiment: Experiment,
    protocol: Optional[str] = None,
    subset: str = "test",
    database: Optional[str] = None,
    checkpoint: Optional[str] = None,
    progress: bool = True,
    normalize: bool = True,
    cohort_files_per_speaker: Optional[int] = COHORT_FILES_PER_SPEAKER,
    cohort_size: Optional[int] = None,
    top_n: int = TOP_N,
    conditions: Optional[Sequence[Condition]] = None,
    noise_dir=None,
    rir_dir=None,
    trust_checkpoint: bool = False,
) -> dict:
    """Evaluate an experiment's best checkpoint on `protocol`'s `subset` trials

    Writes `results/<protocol>.<subset>.json` and `results/<protocol>.<subset>.det.png`
    (one DET curve per scoring), and with test conditions
    `results/<protocol>.<subset>.conditions.det.png` (one curve per condition).

    Parameters
    ----------
    experiment : Experiment
    protocol : str, optional
        Defaults to the config's protocol.
    subset : {"test", "development"}, optional
    database : str, optional
        database.yml to load.
    checkpoint : str, optional
        Defaults to the experiment's best checkpoint.
    normalize : bool, optional
        Also report mean-normalised and AS-normalised scores, with a cohort of
        the protocol's training speakers. Defaults to True.
    cohort_files_per_speaker, cohort_size, top_n : int, optional
        See :func:`training_cohort` and :class:`AdaptiveSNorm`.
    conditions : list of Condition, optional
        Corrupted test conditions (see :mod:`pyannote_embloss.conditions`),
        scored with raw cosine; clean is always evaluated.
    noise_dir, rir_dir : str or Path, optional
        Noise files and impulse responses of the test conditions.
    trust_checkpoint : bool, optional
        Unpickle anything the checkpoint holds. Defaults to False.

    Returns
    -------
    results : dict
        As written to JSON (with the paths of the written files), plus the
        trial labels and scores as numpy arrays ("y_true", "scores").
    """
    with OutputLock(experiment.results, "evaluate"):
        return _evaluate(
            experiment, protocol, subset, database, checkpoint, progress, normalize, cohort_files_per_speaker,
            cohort_size, top_n, conditions, noise_dir, rir_dir, trust_checkpoint,
        )


def _evaluate(
    experiment, protocol, subset, database, checkpoint, progress, normalize, cohort_files_per_speaker,
    cohort_size, top_n, conditions, noise_dir, rir_dir, trust_checkpoint,
) -> dict:
    protocol_name = experiment.protocol_name(protocol)
    checkpoint = experiment.checkpoint(checkpoint)
    model = experiment.load_model(checkpoint, trust=trust_checkpoint)
    loaded = get_protocol(protocol_name, database_yml=database)
    trials = experiment_trials(experiment, loaded, subset)
    corruptions = test_conditions(experiment, loaded, conditions, noise_dir=noise_dir, rir_dir=rir_dir)
    cohort = None
    if normalize:
        cohort = training_cohort(model, loaded, cohort_files_per_speaker, size=cohort_size, progress=progress)
    results = evaluate_model(model, trials, cohort=cohort, top_n=top_n, progress=progress)
    y_true, scores = results.pop("y_true"), results.pop("scores")
    condition_scores = {}
    if corruptions is not None:
        results["conditions"] = evaluate_conditions(model, trials, corruptions, progress=progress)
        condition_scores = {name: metrics.pop("scores") for name, metrics in results["conditions"].items()}
    results.update(
        experiment=experiment.name,
        protocol=protocol_name,
        subset=subset,
        checkpoint=str(checkpoint),
    )
    stem = f"{protocol_name}.{subset}"
    results["det_plot"] = str(
        plot_det_curves(
            {f"{experiment.name} ({name})": (y_true, s) for name, s in scores.items()},
            experiment.results / f"{stem}.det.png",
            title=f"{protocol_name} ({subset})",
        )
    )
    if condition_scores:
        results["conditions_det_plot"] = str(
            plot_det_curves(
                {"clean": (y_true, scores["cosine"]), **{n: (y_true, s) for n, s in condition_scores.items()}},
                experiment.results / f"{stem}.conditions.det.png",
                title=f"{experiment.name}: {protocol_name} ({subset}), cosine",
            )
        )
    results["json"] = str(experiment.results / f"{stem}.json")
    write_json(results["json"], results)
    results["y_true"], results["scores"], results["condition_scores"] = y_true, scores, condition_scores
    return results
