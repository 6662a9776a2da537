"""Compare experiments (one loss each) on the same trials: seeds, normalisations, conditions, significance

    pyannote-audio-emb compare experiments/* [PROTOCOL] [--seeds N] [--condition noise:5 --condition reverb] [-o DIR]

(from Python: ``compare(["experiments/aam", "experiments/am"], ComparisonOptions(seeds=3))``, or
the options' attributes as keyword arguments) trains what is not trained yet, evaluates every experiment on the same
trials (raw cosine, mean normalisation, AS-norm, PLDA; and every test condition),
always adds the training-free ``baseline (no training)`` row, and writes

* ``comparison.md`` / ``comparison.csv``: EER (95 % bootstrap CI, or mean ±
  std over seeds) per scoring and condition, relative degradation from
  clean, minDCF, training time, and the EER difference to the best system
  with a paired-bootstrap 95 % interval (significant when it excludes 0);
* ``comparison.json``: every number of every run (schema
  ``pyannote-embloss/compare/1``, documented in docs/results-schema.md);
* ``comparison.det.png`` (clean), ``comparison.<condition>.det.png`` (one per
  condition) and, with noise conditions, ``comparison.snr.png`` (EER against
  SNR, a line per system).

Runs that are already trained and evaluated are not run again: an
interrupted ``compare`` resumes where it stopped (an interrupted training from its last.ckpt).
A run is trained again, from scratch, when its effective config
(:mod:`pyannote_embloss.training.run_config`: config.yml and the protocol) differs from
the one it was trained with, as recorded in its training.json or last.ckpt;
stderr says so, with what changed.

Seed runs live in ``EXP/seeds/<seed>/``, each with its config.yml (EXP's,
with its seed; rewritten when EXP's changes), so that ``evaluate
EXP/seeds/<seed>`` works like for any experiment.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from ..data.conditions import Condition
from ..errors import ConfigError, DataError, MissingFileError
from ..evaluation.metrics import paired_bootstrap_eer_difference
from ..evaluation.report import COMPARE_SCHEMA, EVALUATE_SCHEMA, plot_det_curves, plot_eer_vs_snr, write_json, write_table
from ..evaluation.verification import SUBSETS, evaluate
from ..experiment import CONFIG, Experiment
from ..io import atomic_write_text
from ..lock import OutputLock
from .run_config import changed_keys, config_hash, effective_config
from .run import train

__all__ = ["ComparisonOptions", "compare", "cached_results", "expand_experiments", "seed_experiments", "BASELINE"]

#: the training-free reference row every comparison has
BASELINE = "baseline (no training)"
BASELINE_CONFIG = {
    "description": "log-mel statistics, no training (pyannote_embloss.models.LogMelStatistics)",
    "architecture": {"name": "LogMelStatistics", "params": {}},
}


def expand_experiments(arguments: Sequence[str]) -> Tuple[List[Path], List[Tuple[Path, str]]]:
    """Experiment directories from command-line arguments (e.g. the expansion of ``experiments/*``)

    Returns
    -------
    directories : list of Path
        Arguments that are experiment directories (with a config.yml), or
        paths that do not exist (reported as such by :func:`compare`).
    skipped : list of (Path, reason)
        Other entries: files, and directories of experiments (compare those
        with ``compare DIR/*``: they may be for another protocol).
    """
    directories, skipped = [], []
    for argument in map(Path, arguments):
        if not argument.exists() or (argument / CONFIG).is_file():
            directories.append(argument)
        elif argument.is_dir() and any((d / CONFIG).is_file() for d in argument.iterdir() if d.is_dir()):
            skipped.append((argument, f"a directory of experiments; compare them with `compare {argument}/*`."))
        elif argument.is_dir():
            skipped.append((argument, f"no {CONFIG} in it."))
        else:
            skipped.append((argument, "not an experiment directory."))
    return directories, skipped


def seed_experiments(experiment: Experiment, seeds: int) -> List[Experiment]:
    """The runs of `experiment` for `seeds` seeds

    The first run is the experiment directory itself, with the config's
    seed (so that ``compare --seeds N`` reuses a single-seed comparison); the
    others run in `<experiment>/seeds/<seed>/`, with seeds config seed + 1,
    config seed + 2, ..., each with its own config.yml: the experiment's,
    with that seed (written when missing or different). A training-free
    experiment has a single run.
    """
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {seeds}).")
    if seeds == 1 or not experiment.trainable:
        return [experiment]
    config = yaml.safe_load((experiment.directory / CONFIG).read_text())
    runs = [experiment]
    for k in range(1, seeds):
        seed = experiment.config.seed + k
        directory = experiment.directory / "seeds" / str(seed)
        text = (
            f"# {experiment.name}'s config.yml (../../{CONFIG}) with seed {seed}: a run of `compare --seeds`,\n"
            f"# written again whenever that file changes.\n"
            + yaml.safe_dump({**config, "seed": seed}, sort_keys=False)
        )
        path = directory / CONFIG
        if not path.is_file() or path.read_text() != text:
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        runs.append(Experiment.load(directory))
    return runs


def _checkpoint_config_hash(path: Path) -> Optional[str]:
    """Hash of the effective config a checkpoint was trained with (None when it does not say)"""
    from ..models.checkpoint import load_checkpoint

    try:
        checkpoint = load_checkpoint(path)
    except (DataError, OSError, RuntimeError):  # resuming will report it
        return None
    return (checkpoint.get("callbacks") or {}).get("PreemptionCheckpoint", {}).get("config_hash")


def training_to_do(run: Experiment, protocol: str) -> Tuple[str, Optional[str]]:
    """What ``compare`` does with the training of `run` on `protocol`, and what to tell the user

    Returns
    -------
    action : {"reuse", "resume", "train", "retrain"}
        Reuse its training; resume it from last.ckpt; train it; train it again from scratch.
    message : str or None
        Why, for stderr, when the user should know.
    """
    if not run.trainable:
        return "reuse", None
    expected = effective_config(run.config, protocol)
    if run.is_trained():
        summary = run.read_training_summary()
        if "config_hash" not in summary:
            return "reuse", (
                f"{run.directory}: trained before runs recorded their config, so a change of its config.yml cannot "
                f"be told: reusing its training (delete {run.checkpoints} to train it again)."
            )
        if summary["config_hash"] == config_hash(expected):
            return "reuse", None
        changed = changed_keys(summary.get("config", {}), expected)
        return "retrain", (
            f"{run.directory}: its config changed since it was trained ({', '.join(changed) or 'config'}): "
            "training it again."
        )
    if run.last_checkpoint.is_file():
        recorded = _checkpoint_config_hash(run.last_checkpoint)
        if recorded is not None and recorded != config_hash(expected):
            return "retrain", (
                f"{run.directory}: its config changed since its interrupted training: training it from scratch."
            )
        return "resume", None
    return "train", None


def _baseline(output: Path, protocol: str) -> Experiment:
    directory = output / "baseline"
    directory.mkdir(parents=True, exist_ok=True)
    config = {"protocol": protocol, "seed": 0, **copy.deepcopy(BASELINE_CONFIG)}
    return Experiment(directory=directory, config=config)


def _results_path(experiment: Experiment, protocol: str, subset: str) -> Path:
    return experiment.results / f"{protocol}.{subset}.comparison.npz"


def cached_results(experiment: Experiment, protocol: str, subset: str = "test", key: Optional[str] = None) -> Optional[dict]:
    """The evaluation of `experiment` that `compare` cached, as :func:`evaluate` returned it

    Parameters
    ----------
    experiment : Experiment
        One run (see :func:`seed_experiments`).
    protocol : str
        Protocol it was evaluated on.
    subset : str, optional
        Defaults to "test".
    key : str, optional
        When given, the cache counts only if it was written under this key
        (test conditions and checkpoint time).

    Returns
    -------
    results : dict or None
        None when nothing is cached (or under another `key`).
    """
    cache = _results_path(experiment, protocol, subset)
    if not cache.is_file():
        return None
    saved = np.load(cache, allow_pickle=False)
    if key is not None and str(saved["key"]) != key:
        return None
    # (evaluations cached before results carried their schema have the same fields)
    results = {"schema": EVALUATE_SCHEMA, **json.loads(str(saved["results"]))}
    results["y_true"] = saved["y_true"]
    results["scores"] = {k[len("scores/"):]: saved[k] for k in saved.files if k.startswith("scores/")}
    results["condition_scores"] = {k[len("condition/"):]: saved[k] for k in saved.files if k.startswith("condition/")}
    return results


def _run(experiment: Experiment, protocol, database, subset, train_missing, progress, conditions, noise_dir,
         rir_dir) -> dict:
    """Train `experiment` if needed, evaluate it (or reuse its saved evaluation), return its results"""
    action, message = training_to_do(experiment, protocol)
    if message:
        print(message, file=sys.stderr, flush=True)
    if action != "reuse":
        # an interrupted training continues from its last.ckpt (exact from an epoch boundary)
        train(experiment, protocol=protocol, database=database, overwrite=action != "resume",
              resume=action == "resume", progress_bar=progress)
    names = [c.name for c in conditions if not c.is_clean]
    # "scorings": what a condition is scored with (PLDA too since 2026-12-07: older saved runs are redone)
    key = json.dumps({"conditions": names, "checkpoint_mtime": _mtime(experiment), "scorings": ["cosine", "plda"]})
    results = cached_results(experiment, protocol, subset, key=key)
    if results is not None:
        return results
    results = evaluate(
        experiment, protocol=protocol, subset=subset, database=database, progress=progress,
        conditions=conditions, noise_dir=noise_dir, rir_dir=rir_dir,
    )
    results.pop("cache", None)  # what this run read from the embedding cache: not a result
    if experiment.trainable:
        results["training"] = experiment.read_training_summary()
    from ..io import atomic_path

    arrays = {
        "key": np.array(key),
        "results": np.array(json.dumps({k: v for k, v in results.items() if k not in ("y_true", "scores", "condition_scores")}, default=float)),
        "y_true": results["y_true"],
        **{f"scores/{k}": v for k, v in results["scores"].items()},
        **{f"condition/{k}": v for k, v in results["condition_scores"].items()},
    }
    with atomic_path(_results_path(experiment, protocol, subset)) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return results


def _mtime(experiment: Experiment) -> Optional[int]:
    checkpoint = experiment.best_checkpoint
    return checkpoint.stat().st_mtime_ns if experiment.trainable and checkpoint.is_file() else None


def _metrics(results: dict, scoring: str = "cosine", condition: Optional[str] = None) -> dict:
    """Metrics of one scoring of one run's results, clean or under `condition`"""
    if condition is not None:
        results = results["conditions"][condition]
    return results if scoring == "cosine" else results["normalized"][scoring]


def _eer(results: dict, scoring: str = "cosine", condition: Optional[str] = None) -> float:
    return _metrics(results, scoring, condition)["eer"]


def _scores(results: dict, condition: Optional[str] = None) -> np.ndarray:
    """Cosine scores of the trials in one run's results, clean or under `condition`"""
    return results["scores"]["cosine"] if condition is None else results["condition_scores"][condition]


def summarise(name: str, experiment: Experiment, runs: Sequence[dict], conditions: Sequence[Condition]) -> dict:
    """Table row of one experiment from its runs (one per seed)"""
    row: dict = {"system": name, "task": experiment.config.task.name if experiment.trainable else "none"}
    scorings = ["cosine"] + [s for s in ("mean", "asnorm", "plda") if s in runs[0].get("normalized", {})]
    if len(runs) > 1:
        row["seeds"] = len(runs)
    for scoring in scorings:
        column = "eer" if scoring == "cosine" else f"eer_{scoring}"
        values = np.array([_eer(r, scoring) for r in runs])
        row[column] = float(values.mean())
        if len(runs) == 1:
            (results,) = runs
            ci = results["ci"]["eer"] if scoring == "cosine" else results["normalized"][scoring]["ci"]["eer"]
            row[f"{column}_ci"] = tuple(ci)
        else:
            row[f"{column}_std"] = float(values.std(ddof=1))
            row[f"{column}_values"] = [float(v) for v in values]
    row["min_dcf_0.01"] = float(np.mean([r["min_dcf_0.01"] for r in runs]))
    if len(runs) == 1:
        row["min_dcf_0.01_ci"] = tuple(runs[0]["ci"]["min_dcf_0.01"])
    for condition in conditions:
        if condition.is_clean:
            continue
        for scoring in ["cosine"] + sorted(runs[0]["conditions"][condition.name].get("normalized", {})):
            column = f"eer[{condition.name}]" if scoring == "cosine" else f"eer_{scoring}[{condition.name}]"
            values = np.array([_eer(r, scoring, condition.name) for r in runs])
            row[column] = float(values.mean())
            if len(runs) > 1:
                row[f"{column}_std"] = float(values.std(ddof=1))
            else:
                row[f"{column}_ci"] = tuple(_metrics(runs[0], scoring, condition.name)["ci"]["eer"])
        row[f"degradation[{condition.name}]"] = float(row[f"eer[{condition.name}]"] / row["eer"] - 1.0)
    training = [r.get("training") for r in runs if r.get("training")]
    row["training_time_s"] = float(np.mean([t["training_time_s"] for t in training])) if training else 0.0
    row["epochs"] = int(np.mean([t["epochs"] for t in training])) if training else 0
    row["loss_parameters"] = int(training[0]["loss_parameters"]) if training else 0
    return row


def significance(rows: List[dict], runs: Dict[str, List[dict]], n_resamples: int = 1000) -> None:
    """Add to each row its EER difference to the best system, with a paired 95 % interval

    The best system is the one with the lowest clean EER. Its gap to every
    other system is measured on clean trials (``eer_gap``, ``vs_best``) and,
    for each test condition, on the same trials under that condition
    (``eer_gap[<condition>]``, ``vs_best[<condition>]``). Differences are
    pooled over seeds (mean over seeds of each system's EER on the same
    resampled trials), see
    :func:`pyannote_embloss.evaluation.metrics.paired_bootstrap_eer_difference`.
    """
    best = min(rows, key=lambda row: row["eer"])
    best_runs = runs[best["system"]]
    y_true = best_runs[0]["y_true"]
    conditions = sorted(best_runs[0].get("condition_scores", {}))
    for row in rows:
        if row is best:
            row["vs_best"] = "best"
            for condition in conditions:
                row[f"vs_best[{condition}]"] = "best"
            continue
        for condition in [None] + conditions:
            difference, (low, high) = paired_bootstrap_eer_difference(
                y_true,
                [_scores(r, condition) for r in runs[row["system"]]],
                [_scores(r, condition) for r in best_runs],
                n_resamples=n_resamples,
            )
            suffix = "" if condition is None else f"[{condition}]"
            row[f"eer_gap{suffix}"] = difference
            row[f"eer_gap{suffix}_ci"] = (low, high)
            row[f"vs_best{suffix}"] = "significant" if low > 0 or high < 0 else "not significant"


def columns_of(rows: List[dict], seeds: int, conditions: Sequence[Condition]) -> List[str]:
    columns = ["system", "task"] + (["seeds"] if seeds > 1 else [])
    # (the table writer puts each "<column>_std" and "<column>_ci" beside its column)
    columns += [c for c in ("eer", "eer_mean", "eer_asnorm", "eer_plda") if any(c in row for row in rows)]
    noisy = [c.name for c in conditions if not c.is_clean]
    for name in noisy:
        columns += [f"eer[{name}]"] + [f"eer_plda[{name}]"] * any(f"eer_plda[{name}]" in row for row in rows)
        columns += [f"degradation[{name}]"]
    columns += ["eer_gap", "vs_best"]
    for name in noisy:
        columns += [f"eer_gap[{name}]", f"vs_best[{name}]"]
    columns += ["min_dcf_0.01", "training_time_s", "epochs", "loss_parameters"]
    return columns


@dataclass
class ComparisonOptions:
    """How to compare: the options of ``pyannote-audio-emb compare``

    Validated when built: an invalid value is a ConfigError, before anything runs.

    Attributes
    ----------
    output : str or Path
        Where to write the tables, JSON and plots. Defaults to results/comparison.
    protocol : str, optional
        Protocol. Defaults to each experiment's; they must all agree.
    database : str, optional
        database.yml to load. Defaults to those pyannote.database loads.
    subset : {"test", "development"}
        Trials subset. Defaults to "test".
    seeds : int
        Number of seeds per experiment. Defaults to 1.
    train_missing : bool
        Train experiments that are not trained yet. Defaults to True.
    progress : bool
        Show progress bars. Defaults to True.
    conditions : list of Condition
        Test conditions (clean is always included).
    noise_dir, rir_dir : str or Path, optional
        Noise files and impulse responses of the test conditions.
    n_resamples : int
        Bootstrap resamples of the confidence intervals and significance. Defaults to 1000.
    """

    output: Path = Path("results/comparison")
    protocol: Optional[str] = None
    database: Optional[str] = None
    subset: str = "test"
    seeds: int = 1
    train_missing: bool = True
    progress: bool = True
    conditions: List[Condition] = field(default_factory=list)
    noise_dir: Optional[str] = None
    rir_dir: Optional[str] = None
    n_resamples: int = 1000

    def __post_init__(self):
        self.output = Path(self.output)
        self.conditions = list(self.conditions or [])
        if self.subset not in SUBSETS:
            raise ConfigError(f"--subset must be one of {', '.join(SUBSETS)} (got {self.subset!r}).")
        if self.seeds < 1:
            raise ConfigError(f"--seeds must be at least 1 (got {self.seeds}).")


def compare(
    experiments: Sequence[Union[Experiment, Path, str]],
    options: Optional[ComparisonOptions] = None,
    **kwargs,
) -> Dict[str, Path]:
    """Compare experiments on the same trials

    Parameters
    ----------
    experiments : list of Experiment, or of str or Path
        Experiments, or their directories (each with a config.yml).
    options : ComparisonOptions, optional
        How to compare (defaults: :class:`ComparisonOptions`'s).
    **kwargs
        Instead of `options`: its attributes (e.g. ``output=``, ``seeds=``).

    Returns
    -------
    paths : dict
        Paths of the written files.
    """
    if isinstance(options, (str, os.PathLike)):  # compare(directories, output, ...) of the previous release
        warnings.warn(
            "compare(experiments, output, ...) is deprecated (removed in the next release): pass "
            "ComparisonOptions(output=...) or output= as a keyword.", DeprecationWarning, stacklevel=2,
        )
        options, kwargs = None, {**kwargs, "output": options}
    if options is None:
        options = ComparisonOptions(**kwargs)
    elif kwargs:
        raise TypeError(f"compare() takes options or keyword arguments, not both (got {sorted(kwargs)})")
    for experiment in experiments:
        if not isinstance(experiment, Experiment) and not Path(experiment).exists():
            raise MissingFileError(f"Experiment directory '{experiment}' does not exist.")
    experiments = [e if isinstance(e, Experiment) else Experiment.load(e) for e in experiments]
    output, protocol, subset, seeds = options.output, options.protocol, options.subset, options.seeds
    if not experiments:
        raise ConfigError("No experiment to compare: give at least one experiment directory.")
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise ConfigError(f"Experiment directory names must be unique, got {names}.")
    protocols = {e.protocol_name(protocol) for e in experiments if e.trainable or e.config.protocol}
    protocols = protocols or {experiments[0].protocol_name(protocol)}
    if len(protocols) > 1:
        raise ConfigError(
            f"Experiments default to different protocols ({sorted(protocols)}): pass one PROTOCOL "
            "so that they are compared on the same trials."
        )
    (protocol,) = protocols
    conditions = options.conditions or [Condition()]
    runs_of = {e.name: seed_experiments(e, seeds) for e in experiments}
    if not options.train_missing:
        untrained = [run.directory for runs in runs_of.values() for run in runs if not run.is_trained()]
        if untrained:
            raise MissingFileError(
                f"Experiment '{untrained[0]}' is not trained (no training.json / best.ckpt): "
                "run without --no-train, or train it first."
            )
        runs = [run for runs in runs_of.values() for run in runs]
        stale = [run.directory for run in runs if training_to_do(run, protocol)[0] != "reuse"]
        if stale:
            raise ConfigError(
                f"Experiment '{stale[0]}': its config changed since it was trained: run without --no-train to "
                "train it again."
            )
    if not any(not e.trainable for e in experiments):
        baseline = _baseline(output, protocol)
        experiments.append(baseline)
        runs_of[baseline.name] = [baseline]

    with OutputLock(output, "compare"):
        rows, runs, details = [], {}, {}
        for experiment in experiments:
            name = experiment.name if experiment.trainable else BASELINE
            results = [
                _run(run, protocol, options.database, subset, options.train_missing, options.progress, conditions,
                     options.noise_dir, options.rir_dir)
                for run in runs_of[experiment.name]
            ]
            runs[name] = results
            rows.append(summarise(name, experiment, results, conditions))
            details[name] = [
                {k: v for k, v in r.items() if k not in ("y_true", "scores", "condition_scores")} for r in results
            ]
        y_true = next(iter(runs.values()))[0]["y_true"]
        if any(len(r[0]["y_true"]) != len(y_true) or not np.array_equal(r[0]["y_true"], y_true) for r in runs.values()):
            raise DataError("The experiments were not evaluated on the same trials: evaluate them again.")
        significance(rows, runs, n_resamples=options.n_resamples)

        output.mkdir(parents=True, exist_ok=True)
        csv_path, md_path = write_table(
            rows, output / "comparison.csv", output / "comparison.md", columns=columns_of(rows, seeds, conditions)
        )
        paths = {"markdown": md_path, "csv": csv_path}
        paths["det_plot"] = plot_det_curves(
            {name: (y_true, _scores(r[0])) for name, r in runs.items()},
            output / "comparison.det.png",
            title=f"{protocol} ({subset}), clean, cosine",
        )
        for condition in conditions:
            if condition.is_clean:
                continue
            paths[f"det_plot[{condition.name}]"] = plot_det_curves(
                {name: (y_true, _scores(r[0], condition.name)) for name, r in runs.items()},
                output / f"comparison.{condition.name.replace(':', '_')}.det.png",
                title=f"{protocol} ({subset}), {condition.name}, cosine",
            )
        noisy = [c for c in conditions if c.noise is not None and c.duration is None]
        if noisy:
            paths["snr_plot"] = plot_eer_vs_snr(rows, conditions, output / "comparison.snr.png", title=f"{protocol} ({subset})")
        paths["json"] = write_json(
            output / "comparison.json",
            {
                "schema": COMPARE_SCHEMA,
                "protocol": protocol,
                "subset": subset,
                "seeds": seeds,
                "conditions": [c.name for c in conditions],
                "rows": rows,
                "runs": details,
            },
        )
    return paths
