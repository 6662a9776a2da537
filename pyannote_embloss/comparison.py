"""Compare experiments (one loss each) on the same test trials

    pyannote-audio-emb compare experiments/* [PROTOCOL] [--seeds N]

trains what is not trained yet, evaluates every experiment on the same trials,
and writes a Markdown and a CSV table (EER and minDCF with 95 % bootstrap
confidence intervals, training time, epochs, loss parameters) and one PNG with
all DET curves overlaid.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .evaluation.report import plot_det_curves, write_json, write_table
from .evaluation.verification import evaluate
from .experiment import Experiment
from .training import train

COLUMNS = [
    "system",
    "task",
    "eer",
    "min_dcf_0.01",
    "training_time_s",
    "epochs",
    "loss_parameters",
]
SEED_COLUMNS = [
    "system",
    "task",
    "seeds",
    "eer_mean",
    "eer_std",
    "min_dcf_0.01_mean",
    "min_dcf_0.01_std",
    "training_time_s",
    "epochs",
    "loss_parameters",
]


def seed_experiments(experiment: Experiment, seeds: int) -> List[Experiment]:
    """The runs of `experiment` for `seeds` seeds

    One seed runs in the experiment directory itself, with the config's seed.
    Several seeds run in `<experiment>/seeds/<seed>/`, with seeds config seed,
    config seed + 1, ...

    Parameters
    ----------
    experiment : Experiment
    seeds : int
        Number of seeds (at least 1).
    """
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1 (got {seeds}).")
    if seeds == 1:
        return [experiment]
    runs = []
    for k in range(seeds):
        config = copy.deepcopy(experiment.config)
        config["seed"] = experiment.config["seed"] + k
        directory = experiment.directory / "seeds" / str(config["seed"])
        directory.mkdir(parents=True, exist_ok=True)
        runs.append(Experiment(directory=directory, config=config))
    return runs


def run(
    experiment: Experiment,
    protocol: Optional[str],
    database: Optional[str],
    subset: str,
    train_missing: bool,
    progress: bool,
) -> dict:
    """Train `experiment` if needed, evaluate it, and return its metrics"""
    if not experiment.is_trained():
        if not train_missing:
            raise FileNotFoundError(
                f"Experiment '{experiment.directory}' is not trained (no {experiment.training_summary.name}): "
                "run without --no-train, or train it first."
            )
        train(experiment, protocol=protocol, database=database, overwrite=True, progress_bar=progress)
    summary = experiment.read_training_summary()
    results = evaluate(experiment, protocol=protocol, subset=subset, database=database, progress=progress)
    results["training"] = summary
    return results


def summarise(name: str, task: str, runs: Sequence[dict]) -> dict:
    """Table row of one experiment from its runs (one per seed)"""
    training = [r["training"] for r in runs]
    row = {"system": name, "task": task}
    if len(runs) == 1:
        (results,) = runs
        row["eer"] = results["eer"]
        row["eer_ci"] = tuple(results["ci"]["eer"])
        row["min_dcf_0.01"] = results["min_dcf_0.01"]
        row["min_dcf_0.01_ci"] = tuple(results["ci"]["min_dcf_0.01"])
    else:
        row["seeds"] = len(runs)
        for key in ("eer", "min_dcf_0.01"):
            values = np.array([r[key] for r in runs])
            row[f"{key}_mean"] = float(values.mean())
            row[f"{key}_std"] = float(values.std(ddof=1))
            row[f"{key}_values"] = [float(v) for v in values]
    row["training_time_s"] = float(np.mean([t["training_time_s"] for t in training]))
    row["epochs"] = int(np.mean([t["epochs"] for t in training]))
    row["loss_parameters"] = int(training[0]["loss_parameters"])
    return row


def compare(
    directories: Sequence[Path],
    output: Path,
    protocol: Optional[str] = None,
    database: Optional[str] = None,
    subset: str = "test",
    seeds: int = 1,
    train_missing: bool = True,
    progress: bool = True,
) -> Dict[str, Path]:
    """Compare experiments on the same trials

    Parameters
    ----------
    directories : list of Path
        Experiment directories (each with a config.yml).
    output : Path
        Where to write comparison.md, comparison.csv, comparison.json and
        comparison.det.png.
    protocol : str, optional
        Protocol. Defaults to each experiment's; they must all agree.
    database : str, optional
        database.yml to load.
    subset : str, optional
        Trials subset. Defaults to "test".
    seeds : int, optional
        Number of seeds per experiment. Defaults to 1.
    train_missing : bool, optional
        Train experiments that are not trained yet. Defaults to True.

    Returns
    -------
    paths : dict
        Paths of the written files.
    """
    experiments = [Experiment.load(d) for d in directories]
    if not experiments:
        raise ValueError("No experiment to compare: give at least one experiment directory.")
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise ValueError(f"Experiment directory names must be unique, got {names}.")
    protocols = {e.protocol_name(protocol) for e in experiments}
    if len(protocols) > 1:
        raise ValueError(
            f"Experiments default to different protocols ({sorted(protocols)}): pass one PROTOCOL "
            "so that they are compared on the same trials."
        )
    (protocol,) = protocols

    rows, curves, details = [], {}, {}
    for experiment in experiments:
        runs = [
            run(e, protocol, database, subset, train_missing, progress)
            for e in seed_experiments(experiment, seeds)
        ]
        rows.append(summarise(experiment.name, experiment.config["task"]["name"], runs))
        curves[experiment.name] = (runs[0]["y_true"], runs[0]["scores"])
        details[experiment.name] = [
            {k: v for k, v in r.items() if k not in ("y_true", "scores")} for r in runs
        ]

    output = Path(output)
    csv_path, md_path = write_table(
        rows,
        output / "comparison.csv",
        output / "comparison.md",
        columns=SEED_COLUMNS if seeds > 1 else COLUMNS,
    )
    det = plot_det_curves(curves, output / "comparison.det.png", title=f"{protocol} ({subset})")
    json_path = write_json(
        output / "comparison.json",
        {"protocol": protocol, "subset": subset, "seeds": seeds, "rows": rows, "runs": details},
    )
    return {"markdown": md_path, "csv": csv_path, "json": json_path, "det_plot": det}
