"""Speaker verification evaluation of a trained experiment on protocol trials"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from pyannote.audio.core.model import Model

from ..experiment import Experiment
from ..protocols import get_protocol
from .extraction import embed_files
from .metrics import bootstrap_confidence_intervals, detection_metrics
from .report import plot_det_curves, write_json
from .scoring import score_trials

SUBSETS = ("development", "test")


def load_trials(protocol, subset: str = "test"):
    """Trials of a protocol subset, as plain (uri1, uri2, reference) and uri → audio path

    Parameters
    ----------
    protocol : pyannote.database SpeakerVerificationProtocol
    subset : {"development", "test"}

    Returns
    -------
    trials : list of (str, str, int)
    audio : dict
        Audio path of each uri.
    """
    if subset not in SUBSETS:
        raise ValueError(f"Unknown subset '{subset}': choose one of {', '.join(SUBSETS)}.")
    trial_method = getattr(protocol, f"{subset}_trial", None)
    if trial_method is None:
        raise ValueError(f"Protocol {protocol.name} is not a speaker verification protocol (no trials).")
    trials, audio = [], {}
    for trial in trial_method():
        uris = []
        for key in ("file1", "file2"):
            uri = str(trial[key]["uri"])
            audio.setdefault(uri, str(trial[key]["audio"]))
            uris.append(uri)
        trials.append((uris[0], uris[1], int(trial["reference"])))
    if not trials:
        raise ValueError(f"Protocol {protocol.name} has no {subset} trials.")
    return trials, audio


def evaluate_model(
    model: Model,
    trials,
    audio: dict,
    progress: bool = True,
    n_resamples: int = 1000,
) -> dict:
    """Embed trial files whole, score trials by cosine, compute EER and minDCF

    Returns
    -------
    results : dict
        Metrics of :func:`detection_metrics`, their 95 % bootstrap confidence
        intervals (key "ci"), and the trial scores ("y_true", "scores" as
        numpy arrays, not written to JSON).
    """
    uris = sorted(audio)
    matrix = embed_files(model, [audio[uri] for uri in uris], progress=progress)
    embeddings = dict(zip(uris, matrix))
    y_true, scores = score_trials(embeddings, trials)
    results = detection_metrics(y_true, scores)
    results["ci"] = bootstrap_confidence_intervals(y_true, scores, n_resamples=n_resamples)
    results["num_files"] = len(uris)
    results["y_true"], results["scores"] = np.asarray(y_true), np.asarray(scores)
    return results


def evaluate(
    experiment: Experiment,
    protocol: Optional[str] = None,
    subset: str = "test",
    database: Optional[str] = None,
    checkpoint: Optional[str] = None,
    progress: bool = True,
) -> dict:
    """Evaluate an experiment's best checkpoint on `protocol`'s `subset` trials

    Writes `results/<protocol>.<subset>.json` and `results/<protocol>.<subset>.det.png`.

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

    Returns
    -------
    results : dict
        As written to JSON (with the paths of the written files), plus the
        trial labels and scores as numpy arrays ("y_true", "scores").
    """
    protocol_name = experiment.protocol_name(protocol)
    checkpoint = Path(checkpoint or experiment.best_checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"No checkpoint '{checkpoint}': train first with `pyannote-audio-emb train {experiment.directory}`."
        )
    model = Model.from_pretrained(checkpoint, map_location="cpu")
    trials, audio = load_trials(get_protocol(protocol_name, database_yml=database), subset)
    results = evaluate_model(model, trials, audio, progress=progress)
    y_true, scores = results.pop("y_true"), results.pop("scores")
    results.update(
        experiment=experiment.name,
        protocol=protocol_name,
        subset=subset,
        checkpoint=str(checkpoint),
        num_trials=len(trials),
    )
    stem = f"{protocol_name}.{subset}"
    results["det_plot"] = str(
        plot_det_curves(
            {experiment.name: (y_true, scores)},
            experiment.results / f"{stem}.det.png",
            title=f"{protocol_name} ({subset})",
        )
    )
    results["json"] = str(experiment.results / f"{stem}.json")
    write_json(results["json"], results)
    results["y_true"], results["scores"] = y_true, scores
    return results
