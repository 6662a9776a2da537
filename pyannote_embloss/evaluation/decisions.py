"""Decisions at an operating point, from a saved calibration

A :class:`Decision` turns verification scores into calibrated log-likelihood
ratios and accept / reject decisions, at an operating point chosen either as
a target false-acceptance rate (the score threshold picked on the development
trials, kept by the calibration) or as a target prior (the Bayes threshold on
the log-likelihood ratio)::

    decide = Decision(results["calibration"], far=0.01)
    llr, same_speaker = decide(scores)

The calibration is the one ``pyannote-audio-emb evaluate`` fits on the
development trials (:class:`~pyannote_embloss.evaluation.calibration.Calibration`).
"""

from __future__ import annotations

from typing import Mapping, Optional, Union

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ConfigError, DataError
from .calibration import Calibration, bayes_threshold, far_key

__all__ = ["Decision", "DEFAULT_FAR"]

#: operating point when neither a FAR nor a prior is given
DEFAULT_FAR = 0.01


class Decision:
    """Scores → (log-likelihood ratio, same-speaker decision) at an operating point

    Parameters
    ----------
    calibration : Calibration or dict
        Calibration, or its saved form (:meth:`Calibration.to_dict`).
        None raises a :class:`DataError` saying how to get one.
    far : float, optional
        Target false-acceptance rate: accept scores at or above the threshold
        the calibration keeps for it. Defaults to 0.01 when `prior` is not given.
    prior : float, optional
        Target prior: accept log-likelihood ratios at or above the Bayes
        threshold ``log(c_fa (1 - prior) / (c_miss prior))``.
    c_miss, c_fa : float, optional
        Costs of a miss and of a false alarm, with `prior`. Default to 1.
    scoring : str, optional
        Scoring of the scores to decide on ("cosine", "asnorm", "plda", ...):
        refused when the calibration was fitted on another one.
    experiment : str, optional
        Name of the experiment, for error messages.

    Raises
    ------
    DataError
        When there is no calibration, or it is not a valid one.
    ConfigError
        When both `far` and `prior` are given, either is not in ]0, 1[, the
        calibration keeps no threshold for `far`, or it was fitted on another
        scoring.
    """

    def __init__(
        self,
        calibration: Union[Calibration, Mapping, None],
        far: Optional[float] = None,
        prior: Optional[float] = None,
        c_miss: float = 1.0,
        c_fa: float = 1.0,
        scoring: Optional[str] = None,
        experiment: Optional[str] = None,
    ):
        name = experiment or "EXP"
        if calibration is None:
            raise DataError(
                f"No score calibration{f' for experiment {experiment}' if experiment else ''}: "
                f"run `pyannote-audio-emb evaluate {name} --subset test`, which fits it on the development trials."
            )
        if not isinstance(calibration, Calibration):
            calibration = Calibration.from_dict(calibration)
        if scoring is not None and calibration.scoring is not None and scoring != calibration.scoring:
            raise ConfigError(
                f"The calibration was fitted on {calibration.scoring} scores, not {scoring}: "
                f"score with {calibration.scoring}."
            )
        if far is not None and prior is not None:
            raise ConfigError("Choose one operating point: a false-acceptance rate or a prior, not both.")
        for what, value in (("false-acceptance rate", far), ("prior", prior)):
            if value is not None and not 0.0 < float(value) < 1.0:
                raise ConfigError(f"The target {what} must be in ]0, 1[ (got {value}).")
        self.calibration = calibration
        if prior is not None:
            self.far, self.prior = None, float(prior)
            self.llr_threshold = bayes_threshold(self.prior, c_miss, c_fa)
            self.threshold = None
            self.operating_point = f"prior {self.prior:g}" + (
                f" (C_miss {c_miss:g}, C_fa {c_fa:g})" if (c_miss, c_fa) != (1.0, 1.0) else ""
            )
        else:
            self.far, self.prior = float(DEFAULT_FAR if far is None else far), None
            try:
                self.threshold = calibration.threshold(self.far)
            except KeyError as error:
                raise ConfigError(
                    f"{error.args[0]} Choose one of those FARs, or a prior; other FARs need a calibration "
                    "refitted with them (Calibration.fit(..., fars=...))."
                ) from None
            self.llr_threshold = None
            self.operating_point = f"FAR {far_key(self.far)}"

    def llr(self, scores: ArrayLike) -> np.ndarray:
        """Calibrated log-likelihood ratios of scores"""
        return self.calibration.llr(scores)

    def __call__(self, scores: ArrayLike):
        """(llr, decision) of scores

        Parameters
        ----------
        scores : float or (n_trials, ) array-like
            Scores of the calibrated scoring.

        Returns
        -------
        llr : float or (n_trials, ) np.ndarray of float
        decision : bool or (n_trials, ) np.ndarray of bool
            True: same speaker.
        """
        scores = np.asarray(scores, dtype=np.float64)
        llr = self.calibration.llr(scores)
        if self.threshold is not None:
            decision = scores >= self.threshold
        else:
            decision = llr >= self.llr_threshold
        if scores.ndim == 0:
            return float(llr), bool(decision)
        return llr, decision

    def __repr__(self) -> str:
        return f"Decision({self.operating_point}, llr = {self.calibration.slope:.4g} score + {self.calibration.offset:.4g})"
