"""Speaker-verification evaluation: trials, scoring, normalisation, metrics and reports

Embedding extraction is :mod:`pyannote_embloss.inference.embedding`; evaluating a model
or an experiment is :mod:`pyannote_embloss.evaluation.verification` (not
imported here, so that metrics and reports do not need torch).
"""

from .metrics import (
    bootstrap_confidence_intervals,
    check_trials,
    detection_metrics,
    equal_error_rate,
    min_dcf_key,
)
from .normalization import AdaptiveSNorm, Cohort, MeanNormalization
from .report import make_row, plot_det_curves, write_json, write_table
from .scoring import cosine_scores
from .trials import Trials, score_trials

__all__ = [
    "AdaptiveSNorm",
    "Cohort",
    "MeanNormalization",
    "Trials",
    "equal_error_rate",
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
