"""Training curves: loss, learning rate, margin and development EER against steps, in one PNG

``train`` writes ``training.png`` beside ``training.json`` from Lightning's
CSV logs (``logs/version_*/metrics.csv``; resumed runs add a version, and
all are drawn), so that a user sees at a glance whether the schedule did
what they meant.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ..io import PathLike, atomic_path

__all__ = ["read_metrics", "plot_training"]

#: (panel title, metric columns drawn in it)
PANELS = (
    ("training loss", ("loss/train_step",)),
    ("learning rate", ("lr-",)),
    ("margin", ("margin",)),
    ("development EER (%)", ("EqualErrorRate",)),
)


def read_metrics(paths: Sequence[PathLike]) -> Dict[str, List[Tuple[int, float]]]:
    """(step, value) series of every logged metric, from Lightning CSV files

    Raises
    ------
    FileNotFoundError
        When no file exists.
    """
    paths = [Path(p) for p in paths if Path(p).is_file()]
    if not paths:
        raise FileNotFoundError("no metrics.csv to plot")
    series: Dict[str, Dict[int, float]] = {}
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                step = row.get("step")
                if not step:
                    continue
                for key, value in row.items():
                    if key in ("step", "epoch") or value in ("", None):
                        continue
                    try:
                        series.setdefault(key, {})[int(float(step))] = float(value)
                    except ValueError:
                        continue
    return {key: sorted(values.items()) for key, values in series.items()}


def plot_training(paths: Sequence[PathLike], output: PathLike, dpi: int = 120) -> Path:
    """Plot the training curves logged in `paths` (Lightning metrics.csv files) to a PNG

    Returns
    -------
    output : Path
    """
    from matplotlib.figure import Figure

    series = read_metrics(paths)
    fig = Figure(figsize=(10, 6.5))
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, (title, prefixes) in zip(axes, PANELS):
        drawn = False
        for key, values in sorted(series.items()):
            if not any(key.startswith(prefix) for prefix in prefixes):
                continue
            steps, ys = zip(*values)
            if title.startswith("development"):
                ys = [100 * y for y in ys]
                ax.plot(steps, ys, "o-", label=key)
                best = min(range(len(ys)), key=lambda i: ys[i] if not math.isnan(ys[i]) else math.inf)
                ax.annotate(f"{ys[best]:.2f}", (steps[best], ys[best]), textcoords="offset points", xytext=(0, 6))
            else:
                ax.plot(steps, ys, label=key, lw=1)
            drawn = True
        ax.set_title(title)
        ax.grid(True, alpha=0.4)
        if drawn and title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        if not drawn:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")
    for ax in axes[2:]:
        ax.set_xlabel("training step")
    fig.tight_layout()
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(output)
