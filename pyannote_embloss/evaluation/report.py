"""Result files: JSON, CSV and Markdown tables, DET curves

Every file is written atomically (see :mod:`pyannote_embloss.io`): a failure
while writing leaves no partial file behind and any previous file untouched.

Tables are built from rows such as the one returned by :func:`make_row`::

    {"system": "aam", "eer": 0.0452, "eer_ci": (0.039, 0.051),
     "min_dcf_0.01": 0.312, "min_dcf_0.01_ci": (0.28, 0.35), "num_target": 980, ...}

where a ``"<column>_ci"`` key holds the (low, high) confidence interval of
``"<column>"``. The CSV file is meant for machines (raw values, full precision,
intervals as separate ``<column>_low`` / ``<column>_high`` columns); the Markdown
file for humans (EER in %, intervals in brackets: ``4.52 [3.90, 5.10]``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..io import PathLike, atomic_path, atomic_write_text
from .metrics import check_trials, equal_error_rate

__all__ = [
    "COMPARE_SCHEMA",
    "EVALUATE_SCHEMA",
    "write_json",
    "make_row",
    "write_table",
    "plot_det_curves",
    "plot_eer_vs_snr",
]

#: "schema" of the results JSON `evaluate` writes (docs/results-schema.md documents every field)
EVALUATE_SCHEMA = "pyannote-embloss/evaluate/1"
#: "schema" of the comparison.json `compare` writes (docs/results-schema.md)
COMPARE_SCHEMA = "pyannote-embloss/compare/1"

CI_SUFFIX = "_ci"
STD_SUFFIX = "_std"


# --- JSON ----------------------------------------------------------------------


def _to_jsonable(obj):
    """Recursively convert numpy types, tuples and paths to JSON-compatible types

    Non-finite floats become None (JSON has no NaN nor Infinity). Objects of
    unknown types are left untouched (json will then raise a TypeError).
    """
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {_to_jsonable_key(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _to_jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def _to_jsonable_key(key):
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, os.PathLike):
        key = os.fspath(key)
    return key


def write_json(path: PathLike, results: Mapping, indent: int = 2) -> Path:
    """Write results to a JSON file, atomically

    Parameters
    ----------
    path : str or Path
        Destination file.
    results : dict
        Results. numpy scalars and arrays, tuples and paths are converted;
        non-finite floats (e.g. an infinite threshold) are written as null.
    indent : int, optional
        Indentation. Defaults to 2.

    Returns
    -------
    path : Path
        Destination file.

    Raises
    ------
    TypeError
        When `results` contains a non-serialisable object (no file is written).
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(_to_jsonable(results), f, indent=indent, allow_nan=False)
            f.write("\n")
    return Path(path)


# --- tables --------------------------------------------------------------------


def make_row(system: str, metrics: Mapping, intervals: Mapping | None = None) -> dict:
    """Table row of one system

    Parameters
    ----------
    system : str
        System name.
    metrics : dict
        Output of :func:`~pyannote_embloss.evaluation.metrics.detection_metrics`
        (or any flat dict of scalars).
    intervals : dict, optional
        Output of :func:`~pyannote_embloss.evaluation.metrics.bootstrap_confidence_intervals`:
        metric name -> (low, high).

    Returns
    -------
    row : dict
        {"system": system, **metrics} plus "<metric>_ci": (low, high) for each
        interval.
    """
    row = {"system": system}
    row.update(metrics)
    for key, (low, high) in (intervals or {}).items():
        row[key + CI_SUFFIX] = (low, high)
    return row


def _default_columns(rows: Sequence[Mapping]) -> list[str]:
    columns = []
    for row in rows:
        for key in row:
            if key in columns:
                continue
            if key.endswith((CI_SUFFIX, STD_SUFFIX)) and key.rsplit("_", 1)[0] in row:
                continue
            columns.append(key)
    return columns


def _is_rate(column: str) -> bool:
    """Whether a column is an error rate (or a relative change), shown as a percentage in Markdown"""
    return column.startswith(("eer", "degradation")) and "threshold" not in column



#: Markdown headers of columns, by name
_LABELS = {
    "system": "System",
    "eer": "EER (%)",
    "eer_mean": "EER mean-norm (%)",
    "eer_asnorm": "EER AS-norm (%)",
    "eer_plda": "EER PLDA (%)",
    "eer_gap": "gap to best (EER points) [95 % CI]",
    "vs_best": "vs best",
    "eer_pyannote": "EER pyannote.metrics (%)",
    "eer_threshold": "EER threshold",
    "num_target": "# target",
    "num_nontarget": "# non-target",
}
#: Markdown headers of parametrised columns: (prefix, suffix, header format)
_PATTERNS = (
    ("eer[", "]", "EER {} (%)"),
    ("eer_plda[", "]", "EER PLDA, {} (%)"),
    ("eer_gap[", "]", "gap to best, {} [95 % CI]"),
    ("vs_best[", "]", "vs best, {}"),
    ("degradation[", "]", "Δ {} (%)"),
    ("min_dcf_threshold_", "", "minDCF threshold (P_tar={})"),
    ("min_dcf_", "", "minDCF (P_tar={})"),
)


def _label(column: str) -> str:
    """Human-readable Markdown header of a column"""
    if column in _LABELS:
        return _LABELS[column]
    for prefix, suffix, header in _PATTERNS:
        if column.startswith(prefix) and column.endswith(suffix):
            return header.format(column[len(prefix) : len(column) - len(suffix)])
    return column


def _format_number(value, column: str) -> str:
    """Human-readable value of a Markdown cell"""
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value).replace("|", "\\|")
    if isinstance(value, int):
        return str(value)
    if _is_rate(column):
        return f"{100 * value:.2f}"
    if column.startswith("min_dcf_") and "threshold" not in column:
        return f"{value:.4f}"
    return f"{value:.4g}"


def _markdown_cell(row: Mapping, column: str) -> str:
    cell = _format_number(row.get(column), column)
    if row.get(column + STD_SUFFIX) is not None:
        cell = f"{cell} ± {_format_number(row[column + STD_SUFFIX], column)}"
    if column.startswith("degradation") and row.get(column) is not None:
        cell = f"{100 * row[column]:+.1f}"
    interval = row.get(column + CI_SUFFIX)
    if interval is not None:
        low, high = (_format_number(v, column) for v in interval)
        cell = f"{cell} [{low}, {high}]"
    return cell


def _render_markdown(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    lines = [
        "| " + " | ".join(_label(c) for c in columns) + " |",
        "|" + "|".join(":---" if c == "system" else "---:" for c in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_markdown_cell(row, c) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return repr(value)  # full precision, "inf" for infinite thresholds
    return str(value)


def _render_csv(rows: Sequence[Mapping], columns: Sequence[str]) -> str:
    header = []
    for column in columns:
        header.append(column)
        if any(column + STD_SUFFIX in row for row in rows):
            header.append(column + STD_SUFFIX)
        if any(column + CI_SUFFIX in row for row in rows):
            header.extend([f"{column}_low", f"{column}_high"])

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        values = []
        for column in columns:
            values.append(_csv_value(row.get(column)))
            if column + STD_SUFFIX in header:
                values.append(_csv_value(row.get(column + STD_SUFFIX)))
            if f"{column}_low" in header:
                low, high = row.get(column + CI_SUFFIX) or (None, None)
                values.extend([_csv_value(low), _csv_value(high)])
        writer.writerow(values)
    return buffer.getvalue()


def write_table(
    rows: Sequence[Mapping],
    csv_path: PathLike,
    md_path: PathLike,
    columns: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Write per-system results as CSV and Markdown tables, atomically

    Parameters
    ----------
    rows : list of dict
        One row per system, e.g. from :func:`make_row`. A "<column>_ci" key
        holds the (low, high) confidence interval of "<column>".
    csv_path : str or Path
        CSV destination: raw values, one "<column>_low" and "<column>_high"
        column after each column that has an interval in some row.
    md_path : str or Path
        Markdown destination: error rates in %, minDCF with 4 decimals,
        intervals in brackets, e.g. "4.52 [3.90, 5.10]".
    columns : sequence of str, optional
        Columns, in order. Defaults to every key of `rows` (in order of first
        appearance) except "<column>_ci" keys.

    Returns
    -------
    csv_path, md_path : Path
        Destination files.

    Raises
    ------
    ValueError
        When there is no row or no column.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("there is no row to write.")
    columns = list(columns) if columns is not None else _default_columns(rows)
    if not columns:
        raise ValueError("there is no column to write.")

    # render both before writing either
    csv_text = _render_csv(rows, columns)
    md_text = _render_markdown(rows, columns)
    return atomic_write_text(csv_path, csv_text), atomic_write_text(md_path, md_text)


# --- DET curves ----------------------------------------------------------------

_DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9)


def _probit(rate: np.ndarray) -> np.ndarray:
    """Normal deviate of error rates (0 and 1 are clipped far outside the axes)"""
    from scipy.stats import norm

    return norm.ppf(np.clip(rate, 1e-12, 1.0 - 1e-12))


def plot_det_curves(
    curves: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: PathLike,
    title: str | None = None,
    limits: tuple[float, float] = (0.001, 0.5),
    dpi: int = 150,
) -> Path:
    """Plot the DET curves of several systems in one PNG file, atomically

    Axes are normal deviates of the false alarm and miss rates (the usual NIST
    DET plot); each curve is marked at its EER, which is also in the legend.

    Parameters
    ----------
    curves : dict
        Maps each system name to its (y_true, scores) trials.
    path : str or Path
        Destination PNG file.
    title : str, optional
        Plot title.
    limits : (float, float), optional
        Range of error rates shown on both axes. Defaults to (0.001, 0.5).
    dpi : int, optional
        Resolution. Defaults to 150.

    Returns
    -------
    path : Path
        Destination file.

    Raises
    ------
    ValueError
        When there is no curve, on invalid trials, or invalid limits.
    """
    from matplotlib.figure import Figure
    from pyannote.metrics.binary_classification import det_curve

    if not curves:
        raise ValueError("there is no DET curve to plot.")
    low, high = limits
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"limits must satisfy 0 < low < high < 1 (got {limits}).")

    # validate everything before drawing
    checked = {}
    for name, (y_true, scores) in curves.items():
        try:
            checked[name] = check_trials(y_true, scores)
        except ValueError as e:
            raise ValueError(f"invalid trials for system '{name}': {e}") from e

    fig = Figure(figsize=(6, 6))
    ax = fig.add_subplot()
    for name, (y_true, scores) in checked.items():
        fpr, fnr, _, _ = det_curve(y_true, scores, distances=False)
        eer, _ = equal_error_rate(fpr, fnr)
        (line,) = ax.plot(_probit(fpr), _probit(fnr), label=f"{name} (EER = {100 * eer:.2f} %)")
        ax.plot(_probit(eer), _probit(eer), "o", color=line.get_color())

    ticks = [t for t in _DET_TICKS if low <= t <= high]
    ax.plot(_probit(np.array(limits)), _probit(np.array(limits)), ":", color="gray", lw=0.8)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(_probit(np.array(ticks)))
        axis.set_ticklabels([f"{100 * t:g}" for t in ticks])
    ax.set_xlim(_probit(low), _probit(high))
    ax.set_ylim(_probit(low), _probit(high))
    ax.set_xlabel("False alarm rate (%)")
    ax.set_ylabel("Miss rate (%)")
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.5)
    ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def plot_eer_vs_snr(rows: Sequence[Mapping], conditions, path: PathLike, title: str | None = None, dpi: int = 150) -> Path:
    """EER against SNR, one line per system and kind of noise (clean drawn at the right), in one PNG

    Parameters
    ----------
    rows : list of dict
        Comparison rows, with "eer" (clean) and "eer[<condition>]" values.
    conditions : list of Condition
        Those with a noise and an SNR, on whole files (no ``duration:``), are drawn.
    path : str or Path
        Destination PNG file.
    """
    from matplotlib.figure import Figure

    conditions = [c for c in conditions if c.noise is not None and c.duration is None]
    kinds = sorted({(c.reverb, c.noise) for c in conditions})
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    snrs = sorted({c.snr for c in conditions})
    clean_x = (max(snrs) + 5.0) if snrs else 0.0
    styles = ["-", "--", ":", "-."]
    for r, row in enumerate(rows):
        color = f"C{r % 10}"
        for k, (reverb, noise) in enumerate(kinds):
            points = sorted(
                (c.snr, row[f"eer[{c.name}]"]) for c in conditions
                if c.noise == noise and c.reverb == reverb and f"eer[{c.name}]" in row
            )
            xs = [x for x, _ in points] + [clean_x]
            ys = [100 * y for _, y in points] + [100 * row["eer"]]
            label = row["system"] if len(kinds) == 1 else f"{row['system']} ({'reverb+' if reverb else ''}{noise})"
            ax.plot(xs, ys, styles[k % len(styles)], marker="o", color=color, label=label)
    ax.set_xticks(snrs + [clean_x])
    ax.set_xticklabels([f"{s:g}" for s in snrs] + ["clean"])
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("EER (%)")
    ax.grid(True, alpha=0.5)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)
