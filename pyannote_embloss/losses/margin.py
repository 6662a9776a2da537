"""Additive (angular) margin losses: AAM-softmax (ArcFace) and AM-softmax (CosFace)"""

import math

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import ArcFaceLoss, CosFaceLoss

from .base import CastClassWeightsMixin, MarginLossMixin


def add_angle(cosine: torch.Tensor, angle: float, eps: float = 1e-4) -> torch.Tensor:
    """cos(θ + angle) from cos θ, with pyannote.audio 1.1's clamp

    Parameters
    ----------
    cosine : torch.Tensor
        Cosines cos θ, of any shape.
    angle : float
        Angle added to θ, in radians (negative: subtracted).
    eps : float, optional
        cos θ is clamped to [-1 + eps, 1 - eps] before ``arccos``. Defaults to 1e-4.

    Returns
    -------
    shifted : torch.Tensor
        :math:`\\cos\\theta + \\cos(\\tilde\\theta + a) - \\cos\\tilde\\theta`,
        :math:`\\tilde\\theta` the clamped angle: cos(θ + angle) whenever
        |cos θ| <= 1 - eps, and a finite gradient everywhere.
    """
    clamped = cosine.clamp(min=-1.0 + eps, max=1.0 - eps)
    return cosine + (torch.cos(torch.acos(clamped) + angle) - clamped)


class AdditiveAngularMarginLoss(MarginLossMixin, CastClassWeightsMixin, ArcFaceLoss):
    """Additive angular margin loss (AAM-softmax, ArcFace; Deng et al., 2019)

    With :math:`\\cos\\theta_j = \\hat{x} \\cdot \\hat{w}_j` (normalised
    embedding and class weight) and y the true class:

    .. math::

        \\ell = -\\frac{1}{B} \\sum_{i=1}^{B}
            \\log \\frac{e^{s \\cos(\\theta_{y_i} + m)}}
                        {e^{s \\cos(\\theta_{y_i} + m)}
                         + \\sum_{j \\neq y_i} e^{s \\cos\\theta_j}}

    where :math:`\\theta_y = \\arccos(\\mathrm{clamp}(\\cos\\theta_y,
    -1 + 10^{-4}, 1 - 10^{-4}))`, exactly as pyannote.audio 1.1 ``ArcLinear``.
    Precisely, the target logit is
    :math:`s\\,[\\cos\\theta_y + \\cos(\\tilde\\theta_y + m) - \\cos\\tilde\\theta_y]`
    with :math:`\\tilde\\theta_y` the clamped angle, which equals
    :math:`s \\cos(\\theta_y + m)` whenever
    :math:`|\\cos\\theta_y| \\leq 1 - 10^{-4}`.

    Reuses pytorch-metric-learning's ``ArcFaceLoss`` (class weights, masks,
    scaling, cross-entropy, ``MeanReducer``) but overrides its
    ``modify_cosine_of_target_classes`` hook, see Notes.

    Parameters
    ----------
    num_classes : int
        Number of classes (speakers) C.
    embedding_size : int
        Embedding dimension D.
    margin : float, optional
        Additive angular margin m, in **radians**. Defaults to 0.05 (paper).
        pml's ``ArcFaceLoss`` takes degrees: ``math.degrees(margin)`` is passed
        to it, and it stores the margin back in radians in ``self.margin``.
    scale : float, optional
        Scale s of the logits (dimensionless). Defaults to 10 (paper).

    Attributes
    ----------
    W : (embedding_size, num_classes) nn.Parameter
        Class weights w_j (one per column), initialised from a standard normal
        distribution (pml default; pyannote.audio 1.1 used Xavier-uniform on
        the transposed matrix -- directions are what matter after
        normalisation).
    margin : float
        Margin in radians.

    Notes
    -----
    Reduction: mean over the batch.

    Differences of pml's ``ArcFaceLoss.modify_cosine_of_target_classes`` with
    the 2020 definition, removed by the override:

    * pml clamps the target cosine to [-1, 1] (not [-1 + 1e-4, 1 - 1e-4]).
      The values differ when cos(theta_y) > 1 - 1e-4 (theta_y < 0.81 degree),
      and the gradient of ``acos`` is infinite at exactly +/-1;
    * pml replaces cos(theta_y + m) by cos(theta_y) - m sin(m) when
      theta_y > pi - m (cos(theta_y) < -cos(m), i.e. < -0.99875 for m = 0.05),
      to keep the logit monotonic; the 2020 code does not.

    On ordinary inputs (-cos(m) <= cos(theta_y) <= 1 - 1e-4) both give
    s * cos(theta_y + m).
    """

    #: clamp of the target cosine before arccos (pyannote.audio 1.1)
    eps: float = 1e-4

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.05,
        scale: float = 10.0,
    ):
        super().__init__(
            num_classes=num_classes,
            embedding_size=embedding_size,
            margin=math.degrees(margin),
            scale=scale,
            distance=CosineSimilarity(),
        )
        # pml's ArcFaceLoss.init_margin converted it back to radians
        self.margin = float(self.margin)
        self.embedding_size = embedding_size

    def modify_cosine_of_target_classes(
        self, cosine_of_target_classes: torch.Tensor
    ) -> torch.Tensor:
        """Target cosine with the angular margin (2020 clamp, see class docstring)"""
        return add_angle(cosine_of_target_classes, self.margin, eps=self.eps)


class AdditiveMarginLoss(MarginLossMixin, CastClassWeightsMixin, CosFaceLoss):
    """Additive margin loss (AM-softmax, CosFace; Wang et al., 2018)

    With :math:`\\cos\\theta_j = \\hat{x} \\cdot \\hat{w}_j` (normalised
    embedding and class weight) and y the true class:

    .. math::

        \\ell = -\\frac{1}{B} \\sum_{i=1}^{B}
            \\log \\frac{e^{s (\\cos\\theta_{y_i} - m)}}
                        {e^{s (\\cos\\theta_{y_i} - m)}
                         + \\sum_{j \\neq y_i} e^{s \\cos\\theta_j}}

    Not part of the 2020 comparison. pytorch-metric-learning's ``CosFaceLoss``
    implements it exactly (no clamp is needed) and is reused as is, apart from
    the non-destructive dtype/device handling of `W`.

    Parameters
    ----------
    num_classes : int
        Number of classes (speakers) C.
    embedding_size : int
        Embedding dimension D.
    margin : float, optional
        Additive cosine margin m (dimensionless, in cosine units).
        Defaults to 0.2.
    scale : float, optional
        Scale s of the logits (dimensionless). Defaults to 30.
        (m = 0.2, s = 30 are the usual AM-softmax settings for speaker
        verification, e.g. voxceleb_trainer; pml's own defaults, m = 0.35 and
        s = 64, come from face recognition.)

    Attributes
    ----------
    W : (embedding_size, num_classes) nn.Parameter
        Class weights w_j (one per column), standard normal initialisation.

    Notes
    -----
    Reduction: mean over the batch.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.2,
        scale: float = 30.0,
    ):
        super().__init__(
            num_classes=num_classes,
            embedding_size=embedding_size,
            margin=margin,
            scale=scale,
            distance=CosineSimilarity(),
        )
        self.embedding_size = embedding_size
