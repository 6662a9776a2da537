"""Speaker verification evaluation of a model, or of an experiment, on protocol trials

Every trial utterance (a file, or a segment of one) is embedded once (:func:`pyannote_embloss.inference.embedding.embed_files`),
trials are scored (:meth:`Trials.score`) by cosine similarity, raw and, with
the protocol's training speakers, mean-normalised, AS-normalised and by PLDA,
and each scoring gets its EER, minDCF and bootstrap confidence intervals.

When the test trials are evaluated, each scoring is also calibrated on the
development trials (:class:`~pyannote_embloss.evaluation.calibration.Calibration`):
the results then give, on the test trials, Cllr and min Cllr, the actual DCF
beside minDCF, and the FAR and FRR of the thresholds picked on the development
trials for a FAR of 1 % and 0.1 %. The calibration is saved in the results
(key "calibration", and "calibration" of each normalised scoring), where
``pyannote-audio-emb verify`` and ``score`` read it
(:mod:`pyannote_embloss.evaluation.saved`).
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

import numpy as np

from ..data.augmentation import NoiseSource
from ..data.conditions import Condition, TestConditions, check_disjoint
from ..inference.cache import CACHE_DIR, EmbeddingCache, model_digest
from ..inference.embedding import DEFAULT_BATCH_SIZE, DeferredModel, check_device, embed_files
from ..config import POSITIVE_INTEGER
from ..errors import ConfigError, DataError
from ..lock import OutputLock
from ..experiment import Experiment
from ..data.protocols import get_protocol
from .calibration import Calibration, calibration_metrics
from .metrics import bootstrap_confidence_intervals, detection_metrics
from .normalization import Cohort, normalizations
from .plda import PLDA, PLDAScoring
from .report import EVALUATE_SCHEMA, plot_det_curves, write_json
from .trials import MAX_TURN_TRIALS, MIN_TURN_DURATION, Trials, speech_turns

if TYPE_CHECKING:  # not imported at run time: an evaluation whose embeddings are all cached loads no model
    from pyannote.audio.core.model import Model

__all__ = [
    "EvaluationOptions",
    "TrainingEmbeddings",
    "calibrate",
    "evaluate",
    "evaluate_conditions",
    "evaluate_model",
    "plda_directory",
    "scorings",
    "training_cohort",
]

#: default number of training files per cohort speaker
COHORT_FILES_PER_SPEAKER = 4
#: default number of highest cohort scores kept by AS-norm
TOP_N = 100


def training_files(
    protocol, files_per_speaker: Optional[int] = None, max_speakers: Optional[int] = None, budget: Optional[int] = None
) -> tuple[list, list, list]:
    """(audio paths, speakers, segments) of single-speaker training utterances, sorted by uri

    A file with a single speaker is used whole (segment None); a file with
    several (a conversation) gives its single-speaker speech turns of at
    least :data:`~pyannote_embloss.evaluation.trials.MIN_TURN_DURATION`.

    Parameters
    ----------
    protocol : pyannote.database protocol
    files_per_speaker : int, optional
        Keep the first utterances (by uri, then time) of each speaker only. Defaults to all.
    max_speakers : int, optional
        Keep that many speakers at most, drawn at random (seeded, the same every time). Defaults to all.
    budget : int, optional
        Without `files_per_speaker`, when there are more utterances than this, keep the first
        ``max(2, budget // number of speakers)`` of each speaker. Defaults to no budget.
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
    if max_speakers is not None and len(per_speaker) > max_speakers:
        kept = set(random.Random(f"{SAMPLE_SEED}:speakers").sample(sorted(per_speaker), max_speakers))
        per_speaker = {speaker: files for speaker, files in per_speaker.items() if speaker in kept}
    if files_per_speaker is None and budget is not None and sum(map(len, per_speaker.values())) > budget:
        files_per_speaker = max(2, budget // max(1, len(per_speaker)))
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


@dataclass
class TrainingEmbeddings:
    """Embeddings of every single-speaker training utterance of a protocol, each embedded once

    What the scorings fitted on training speakers share: the AS-norm cohort
    takes the first files of each speaker (the very files
    :func:`training_cohort` embeds), the PLDA all of them.

    Parameters
    ----------
    embeddings : (num_utterances, dimension) np.ndarray
    speakers : list of str
        Speaker of each utterance, grouped by speaker, in the order of
        :func:`training_files`.
    """

    embeddings: np.ndarray
    speakers: list

    @classmethod
    def of(
        cls,
        model: Model,
        protocol,
        progress: bool = True,
        cache=None,
        files_per_speaker: Optional[int] = None,
        max_speakers: Optional[int] = None,
        budget: Optional[int] = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> "TrainingEmbeddings":
        """Embed the training utterances of `protocol` (:func:`training_files`; `cache`, `batch_size` as in `embed_files`)"""
        paths, speakers, segments = training_files(protocol, files_per_speaker, max_speakers, budget)
        embeddings = embed_files(
            model, paths, progress=progress, desc="Embedding training files", segments=segments, cache=cache,
            batch_size=batch_size,
        )
        return cls(embeddings=embeddings, speakers=list(speakers))

    def first(self, files_per_speaker: Optional[int]) -> np.ndarray:
        """Rows of the first `files_per_speaker` utterances of each speaker (all when None)"""
        rows, seen = [], {}
        for row, speaker in enumerate(self.speakers):
            seen[speaker] = seen.get(speaker, 0) + 1
            if files_per_speaker is None or seen[speaker] <= files_per_speaker:
                rows.append(row)
        return np.array(rows, dtype=np.int64)

    def cohort(self, files_per_speaker: Optional[int] = COHORT_FILES_PER_SPEAKER, size: Optional[int] = None) -> Cohort:
        """The cohort :func:`training_cohort` builds, from these embeddings"""
        rows = self.first(files_per_speaker)
        return Cohort.from_embeddings(self.embeddings[rows], [self.speakers[i] for i in rows], size=size)

    def plda(self) -> PLDA:
        """PLDA (and its LDA front end) fitted on every utterance

        Raises
        ------
        DataError
            When it cannot be fitted (e.g. a single utterance per speaker).
        """
        return PLDA.fit(self.embeddings, self.speakers)


def scorings(cohort: Optional[Cohort] = None, plda: Optional[PLDA] = None, top_n: int = TOP_N) -> dict:
    """The scorings reported side by side: {name: normalisation or None (raw cosine)}

    "cosine", and with a cohort "mean" and "asnorm"
    (:func:`~pyannote_embloss.evaluation.normalization.normalizations`), and
    with a PLDA "plda".
    """
    named = normalizations(cohort, top_n=top_n)
    if plda is not None:
        named[PLDAScoring.name] = PLDAScoring(plda)
    return named


def plda_directory(experiment: Experiment, protocol_name: str) -> Path:
    """Where an experiment's evaluation exports its PLDA: ``results/<protocol>.plda/``"""
    return experiment.results / f"{protocol_name}.plda"


def evaluate_model(
    model: Model,
    trials: Trials,
    cohort: Optional[Cohort] = None,
    top_n: int = TOP_N,
    progress: bool = True,
    n_resamples: int = 1000,
    embeddings: Optional[np.ndarray] = None,
    plda: Optional[PLDA] = None,
    development: Optional[Trials] = None,
    cache=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict:
    """Embed trial files whole, score trials, compute EER and minDCF, and calibrate on development trials

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
    plda : PLDA, optional
        When given, PLDA scores are evaluated too.
    development : Trials, optional
        Other trials (the development ones) to calibrate each scoring on
        (see :func:`calibrate`).
    cache : EmbeddingCache, optional
        Embeddings already computed (:mod:`pyannote_embloss.inference.cache`).
    batch_size : int, optional
        Utterances per forward pass (:func:`~pyannote_embloss.inference.embedding.embed_files`).

    Returns
    -------
    results : dict
        Metrics of the raw cosine scores (:func:`detection_metrics`, key
        "ci" for their 95 % bootstrap intervals), and under "normalized" the
        same for each other scoring ("mean", "asnorm", "plda"). With
        `development`, each scoring's metrics also have those of
        :func:`~pyannote_embloss.evaluation.calibration.calibration_metrics`
        ("cllr", "min_cllr", "act_dcf_{p}", "far", "calibration"), and
        "calibration_trials" describes the development trials. "scores" maps
        each scoring to its (num_trials, ) scores and "y_true" holds the trial
        labels (numpy arrays, not written to JSON).
    """
    if embeddings is None:
        embeddings = embed_files(
            model, trials.paths, progress=progress, segments=trials.segments, cache=cache, batch_size=batch_size
        )
    named = scorings(cohort, plda, top_n=top_n)
    results: dict = {"normalized": {}, "scores": {}}
    for name, normalization in named.items():
        scores = trials.score(embeddings, normalization)
        metrics = detection_metrics(trials.reference, scores)
        metrics["ci"] = bootstrap_confidence_intervals(trials.reference, scores, n_resamples=n_resamples)
        results["scores"][name] = scores
        if normalization is None:
            results.update(metrics)
        else:
            results["normalized"][name] = metrics
    if development is not None:
        calibrate(
            model, development, named, results, trials.reference, progress=progress, cache=cache, batch_size=batch_size
        )
    if cohort is not None:
        results["cohort"] = {"speakers": len(cohort), "top_n": min(top_n, len(cohort))}
    results["num_files"] = trials.num_files
    results["num_trials"] = len(trials)
    results["y_true"] = trials.reference
    return results


def calibrate(
    model: Model, development: Trials, named: dict, results: dict, y_true: np.ndarray, progress: bool = True, cache=None,
    batch_size: int = DEFAULT_BATCH_SIZE,
):
    """Fit each scoring's calibration on the development trials, report it on the evaluated trials

    Adds :func:`~pyannote_embloss.evaluation.calibration.calibration_metrics`
    to the metrics of each scoring in `results` (the top level for "cosine",
    ``results["normalized"][name]`` for the others), and "calibration_trials".

    Parameters
    ----------
    model : Model
    development : Trials
        Calibration trials, embedded here.
    named : dict
        The scorings (:func:`scorings`), fitted on training data only.
    results : dict
        Results of the evaluated trials, with their "scores" of each scoring.
    y_true : np.ndarray
        Labels of the evaluated trials.
    """
    embeddings = embed_files(
        model, development.paths, progress=progress, desc="Embedding development trials", segments=development.segments,
        cache=cache, batch_size=batch_size,
    )
    for name, normalization in named.items():
        calibration = Calibration.fit(development.score(embeddings, normalization), development.reference, scoring=name)
        metrics = results if normalization is None else results["normalized"][name]
        metrics.update(calibration_metrics(calibration, results["scores"][name], y_true))
    results["calibration_trials"] = {
        "subset": "development",
        "num_trials": len(development),
        "num_files": development.num_files,
    }


def evaluate_conditions(
    model: Model,
    trials: Trials,
    conditions: TestConditions,
    progress: bool = True,
    n_resamples: int = 1000,
    cache=None,
    plda: Optional[PLDA] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict:
    """Raw cosine (and PLDA) metrics of the trials in each corrupted test condition

    The PLDA is the one fitted on the clean training sample: a condition
    corrupts the test files only, as a new channel would.

    Returns
    -------
    results : dict
        {condition name: metrics (with "ci", and "scores" as a numpy array)},
        clean excluded. With `plda`, each condition's metrics also hold
        "normalized": {"plda": metrics (with "ci", and "scores")}.
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
            cache=cache,
            conditions=[conditions.identity(condition, name) for name in names],
            batch_size=batch_size,
        )
        metrics = {}
        for name, scoring in scorings(plda=plda).items():
            scores = trials.score(embeddings, scoring)
            scored = detection_metrics(trials.reference, scores)
            scored["ci"] = bootstrap_confidence_intervals(trials.reference, scores, n_resamples=n_resamples)
            scored["scores"] = scores
            if scoring is None:
                metrics.update(scored)
            else:
                metrics.setdefault("normalized", {})[name] = scored
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
    augmentation = experiment.config.augmentation
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
    task = experiment.config.task
    params = {} if task is None else task.params  # none for training-free experiments
    return Trials.from_protocol(
        protocol,
        subset,
        min_duration=params.get("trial_min_duration", MIN_TURN_DURATION),
        max_trials=params.get("max_trials", MAX_TURN_TRIALS),
    )


#: default of EvaluationOptions.training_budget: at most this many training utterances embedded for the
#: PLDA and the cohort (docs/results.md, "Evaluation cost": fewer per speaker costs PLDA accuracy on a
#: corpus of 125 speakers, so small corpora are embedded whole)
TRAINING_BUDGET = 50_000
#: seed of the draw of training speakers (EvaluationOptions.training_speakers)
SAMPLE_SEED = 0

#: the `evaluate` command's names of the options whose attribute is named otherwise (for error messages)
CLI_OPTIONS = {
    "cohort_files_per_speaker": "--cohort-files",
    "training_files_per_speaker": "--training-files",
}

#: trial subsets `evaluate` scores
SUBSETS = ("test", "development")


@dataclass
class EvaluationOptions:
    """How to evaluate: the options of ``pyannote-audio-emb evaluate``

    Validated when built: an invalid value is a ConfigError, before anything runs.

    Attributes
    ----------
    protocol : str, optional
        Defaults to the config's protocol.
    subset : {"test", "development"}
    database : str, optional
        database.yml to load.
    checkpoint : str, optional
        Defaults to the experiment's best checkpoint.
    progress : bool
        Show progress bars. Defaults to True.
    normalize : bool
        Also report mean-normalised, AS-normalised and PLDA scores, with the
        protocol's training speakers (all their utterances embedded once: the
        AS-norm cohort takes `cohort_files_per_speaker` of each, the PLDA all).
        Defaults to True.
    cohort_files_per_speaker, cohort_size, top_n : int, optional
        See :func:`training_cohort` and :class:`AdaptiveSNorm`.
    training_files_per_speaker, training_speakers, training_budget : int, optional
        The training sample embedded for the PLDA and the cohort: at most
        `training_files_per_speaker` utterances per speaker (the first by uri)
        of at most `training_speakers` speakers (seeded draw; default all).
        Without a number per speaker, a corpus with more than
        `training_budget` training utterances (default
        :data:`TRAINING_BUDGET`) gets as many per speaker as the budget
        allows (at least 2): all of SpeechOcean762's 1,250, 8 of each of
        VoxCeleb2's 5,994 speakers. The cost then follows the number of
        training speakers, not their utterances.
    conditions : list of Condition
        Corrupted test conditions (see :mod:`pyannote_embloss.data.conditions`),
        scored with raw cosine; clean is always evaluated.
    noise_dir, rir_dir : str or Path, optional
        Noise files and impulse responses of the test conditions.
    trust_checkpoint : bool
        Unpickle anything the checkpoint holds. Defaults to False.
    cache : bool
        Read and store embeddings in the experiment's cache (``EXP/embeddings``,
        :mod:`pyannote_embloss.inference.cache`). Defaults to True.
    device : str
        Torch device the model embeds on: "cpu" (default), "cuda", "cuda:1",
        "mps"... Checked to be available when the options are built.
    batch_size : int
        At most this many utterances per forward pass; only utterances of
        exactly the same number of samples share one (never padded: the
        scores are those of one-by-one extraction to 1e-5). Defaults to
        :data:`~pyannote_embloss.inference.embedding.DEFAULT_BATCH_SIZE`; 1
        embeds them one by one.
    """

    protocol: Optional[str] = None
    subset: str = "test"
    database: Optional[str] = None
    checkpoint: Optional[str] = None
    progress: bool = True
    normalize: bool = True
    cohort_files_per_speaker: Optional[int] = COHORT_FILES_PER_SPEAKER
    cohort_size: Optional[int] = None
    top_n: int = TOP_N
    training_files_per_speaker: Optional[int] = None
    training_speakers: Optional[int] = None
    training_budget: Optional[int] = TRAINING_BUDGET
    conditions: List[Condition] = field(default_factory=list)
    noise_dir: Optional[str] = None
    rir_dir: Optional[str] = None
    trust_checkpoint: bool = False
    cache: bool = True
    device: str = "cpu"
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self):
        if self.subset not in SUBSETS:
            raise ConfigError(f"--subset must be one of {', '.join(SUBSETS)} (got {self.subset!r}).")
        self.conditions = list(self.conditions or [])
        for option in ("cohort_files_per_speaker", "cohort_size", "top_n", "training_files_per_speaker",
                       "training_speakers", "training_budget", "batch_size"):
            value = getattr(self, option)
            if value is not None:
                POSITIVE_INTEGER.check(value, CLI_OPTIONS.get(option, "--" + option.replace("_", "-")))
        check_device(self.device)


def evaluate(experiment: Experiment, options: Optional[EvaluationOptions] = None, **kwargs) -> dict:
    """Evaluate an experiment's best checkpoint on `protocol`'s `subset` trials

    Writes `results/<protocol>.<subset>.json` and `results/<protocol>.<subset>.det.png`
    (one DET curve per scoring), and with test conditions
    `results/<protocol>.<subset>.conditions.det.png` (one curve per condition).
    With normalisation, the PLDA fitted on the training speakers is exported
    to `results/<protocol>.plda/` (``xvec_transform.npz``, ``plda.npz``: the
    files pyannote.audio's VBx clustering reads).

    Parameters
    ----------
    experiment : Experiment
    options : EvaluationOptions, optional
        How to evaluate (defaults: :class:`EvaluationOptions`'s).
    **kwargs
        Instead of `options`: its attributes (e.g. ``protocol=``, ``subset=``).

    Returns
    -------
    results : dict
        As written to JSON (schema :data:`~pyannote_embloss.evaluation.report.EVALUATE_SCHEMA`,
        every field documented in docs/results-schema.md; with the paths of
        the written files), plus the trial labels and scores as numpy arrays
        ("y_true", "scores", "condition_scores"). Besides
        the metrics of :func:`evaluate_model`, with `subset` "test":

        - "calibration": the cosine scores' calibration fitted on the
          development trials (``Calibration.to_dict()``: "slope", "offset",
          "prior", "thresholds" {"0.01": score, "0.001": score}, "scoring",
          "num_target", "num_nontarget"), each normalised scoring's under
          ``["normalized"][name]["calibration"]``; None, with a
          "calibration_note" saying why, when the protocol has no
          development trials (or for the development subset);
        - "cllr", "min_cllr", "act_dcf_0.01", "act_dcf_0.05" and "far"
          {"0.01": {"threshold", "far", "frr"}, "0.001": {...}} of the test
          trials, for each scoring likewise;
        - "calibration_trials": {"subset", "num_trials", "num_files"}.

        With normalisation, "plda": {"directory", "lda_dimension",
        "num_speakers", "num_utterances"} (or {"note"} when no PLDA could be
        fitted).
    """
    if options is None:
        options = EvaluationOptions(**kwargs)
    elif kwargs:
        raise TypeError(f"evaluate() takes options or keyword arguments, not both (got {sorted(kwargs)})")
    with OutputLock(experiment.results, "evaluate"):
        return _evaluate(experiment, options)


def _evaluate(experiment: Experiment, options: EvaluationOptions) -> dict:
    protocol, subset, progress = options.protocol, options.subset, options.progress
    protocol_name = experiment.protocol_name(protocol)
    checkpoint = experiment.checkpoint(options.checkpoint)
    model, cache = _model_and_cache(experiment, checkpoint, options)
    loaded = get_protocol(protocol_name, database_yml=options.database)
    trials = experiment_trials(experiment, loaded, subset)
    corruptions = test_conditions(
        experiment, loaded, options.conditions, noise_dir=options.noise_dir, rir_dir=options.rir_dir
    )
    cohort, plda, plda_report = None, None, None
    if options.normalize:
        training = TrainingEmbeddings.of(
            model, loaded, progress=progress, cache=cache,
            files_per_speaker=options.training_files_per_speaker, max_speakers=options.training_speakers,
            budget=options.training_budget, batch_size=options.batch_size,
        )
        cohort = training.cohort(options.cohort_files_per_speaker, size=options.cohort_size)
        plda, plda_report = _fit_plda(training, plda_directory(experiment, protocol_name))
    development, calibration_note = _calibration_trials(experiment, loaded, subset)
    results = {"schema": EVALUATE_SCHEMA, **evaluate_model(
        model, trials, cohort=cohort, top_n=options.top_n, progress=progress, plda=plda, development=development,
        cache=cache, batch_size=options.batch_size,
    )}
    if calibration_note is not None:
        results["calibration"], results["calibration_note"] = None, calibration_note
    if plda_report is not None:
        results["plda"] = plda_report
    if options.normalize:
        results["training_sample"] = {
            "files_per_speaker": options.training_files_per_speaker,
            "max_speakers": options.training_speakers,
            "budget": options.training_budget,
            "num_speakers": len(set(training.speakers)),
            "num_files": len(training.speakers),
        }
    y_true, scores = results.pop("y_true"), results.pop("scores")
    condition_scores = {}
    if corruptions is not None:
        results["conditions"] = evaluate_conditions(
            model, trials, corruptions, progress=progress, cache=cache, plda=plda, batch_size=options.batch_size
        )
        condition_scores = {name: metrics.pop("scores") for name, metrics in results["conditions"].items()}
        for metrics in results["conditions"].values():  # the PLDA's scores: not in the JSON
            for scored in metrics.get("normalized", {}).values():
                scored.pop("scores")
    results.update(
        experiment=experiment.name,
        protocol=protocol_name,
        subset=subset,
        checkpoint=None if checkpoint is None else str(checkpoint),
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
    experiment.remember_config_checked()
    results["y_true"], results["scores"], results["condition_scores"] = y_true, scores, condition_scores
    if cache is not None:  # not in the JSON: a second evaluation writes the very same file
        cache.bound()
        results["cache"] = cache.summary()
    return results


def _model_and_cache(experiment: Experiment, checkpoint, options: EvaluationOptions) -> tuple:
    """(model, cache): the model is a :class:`DeferredModel` when the cache knows the checkpoint

    It is then loaded only if some embedding is missing: an evaluation whose
    embeddings are all cached loads no model.
    """
    directory = experiment.directory / CACHE_DIR
    cache, dimension = None, None
    if options.cache and checkpoint is not None:
        cache, dimension = EmbeddingCache.for_checkpoint(directory, checkpoint, device=options.device) or (None, None)

    def load():
        from ..inference.loading import load_model

        model = load_model(experiment, checkpoint, trust=options.trust_checkpoint, device=options.device)
        if cache is not None and model_digest(checkpoint) != cache.model:  # its embeddings: under another key
            raise DataError(
                f"The checkpoint '{checkpoint}' changed while it was evaluated (a training writing it?): "
                "evaluate it again once it is written."
            )
        return model

    if cache is not None:
        return DeferredModel(load, dimension), cache
    model = load()
    return model, (EmbeddingCache.for_model(directory, model, checkpoint) if options.cache else None)


def _fit_plda(training: TrainingEmbeddings, directory) -> tuple[Optional[PLDA], dict]:
    """PLDA fitted on the training embeddings and exported to `directory`, and its report

    A PLDA that cannot be fitted is left out with a warning (and a "note" in the report).
    """
    try:
        plda = training.plda()
    except DataError as error:
        note = f"No PLDA scoring: {error}"
        warnings.warn(note)
        return None, {"note": note}
    plda.export(directory)
    return plda, {
        "directory": str(directory),
        "lda_dimension": plda.lda_dimension,
        "num_speakers": len(set(training.speakers)),
        "num_utterances": len(training.speakers),
    }


def _calibration_trials(experiment: Experiment, protocol, subset: str) -> tuple[Optional[Trials], Optional[str]]:
    """(development trials, None) to calibrate the test scores on, or (None, why there are none)"""
    if subset != "test":
        return None, (
            f"Scores are calibrated on the development trials when the test trials are evaluated, "
            f"not the {subset} ones."
        )
    try:
        return experiment_trials(experiment, protocol, "development"), None
    except DataError as error:
        note = (
            f"No score calibration: it is fitted on the development trials, and there are none to use ({error}) "
            "`pyannote-audio-emb verify` and `score` need a protocol with development trials."
        )
        warnings.warn(note)
        return None, note
