"""Speaker-verification evaluation: scoring, metrics and reports

Embedding extraction lives in :mod:`pyannote_embloss.evaluation.extraction`
(not imported here, so that metrics and reports do not need torch).
"""

from .metrics import (
    bootstrap_confidence_intervals,
    check_trials,
    detection_metrics,
    min_dcf_key,
)
from .report import make_row, plot_det_curves, write_json, write_table
from .scoring import cosine_scores, score_trials

__all__ = [
    "bootstrap_confidence_intervals",
    "check_trials",
    "cosine_scores",
    "detection_metrics",
    "make_row",
    "min_dcf_key",
    "plot_det_curves",
    "score_trials",
    "write_json",
    "write_table",
]
