"""Sub-center additive angular margin loss with the inter-top-k penalty (WeSpeaker's)"""

import math

import torch
from pytorch_metric_learning.distances import CosineSimilarity
from pytorch_metric_learning.losses import SubCenterArcFaceLoss
from pytorch_metric_learning.utils import common_functions as c_f
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from .base import CastClassWeightsMixin, MarginLossMixin, element_losses
from .margin import AdditiveAngularMarginLoss, add_angle


class SubCenterAdditiveAngularMarginLoss(MarginLossMixin, CastClassWeightsMixin, SubCenterArcFaceLoss):
    """Sub-center AAM-softmax (Deng et al., 2020) with the inter-top-k penalty (Zhao et al., 2022)

    Each class j has K sub-centers :math:`w_{j,1} \\dots w_{j,K}`; its cosine
    is the closest one's, :math:`\\cos\\theta_j = \\max_k \\hat{x} \\cdot
    \\hat{w}_{j,k}` (noisy or multi-modal speakers get several centers). The
    target logit gets the additive angular margin of
    :class:`~pyannote_embloss.losses.AdditiveAngularMarginLoss` (same clamp),
    and the k non-target classes closest to the embedding get their angle
    *reduced* by m' (inter-top-k: the hardest impostors weigh more):

    .. math::

        \\ell = -\\frac{1}{B} \\sum_{i=1}^{B}
            \\log \\frac{e^{s \\cos(\\theta_{y_i} + m)}}
                        {e^{s \\cos(\\theta_{y_i} + m)}
                         + \\sum_{j \\in T_i} e^{s \\cos(\\theta_j - m')}
                         + \\sum_{j \\notin T_i \\cup \\{y_i\\}} e^{s \\cos\\theta_j}}

    with :math:`T_i` the `inter_topk` non-target classes of highest cosine.
    As WeSpeaker's ``ArcMarginProduct_intertopk_subcenter``, m' follows the
    margin schedule: it is :math:`m'_0 \\, m_t / m` when ``margin_scheduler``
    sets the margin to :math:`m_t` (0 while the margin is 0). With
    ``sub_centers=1`` and ``inter_topk=0`` this is exactly the ``aam`` loss.

    Reuses pytorch-metric-learning's ``SubCenterArcFaceLoss`` (class weights of
    C × K columns, laid out class by class; ``get_outliers`` to find the
    samples far from their dominant sub-center) with the margin and clamp of
    :class:`~pyannote_embloss.losses.AdditiveAngularMarginLoss`.

    Parameters
    ----------
    num_classes, embedding_size : int
        Number of classes (speakers) C, and embedding dimension D.
    margin : float, optional
        Additive angular margin m, in **radians**. Defaults to 0.2 (WeSpeaker).
    scale : float, optional
        Scale s of the logits. Defaults to 32 (WeSpeaker).
    sub_centers : int, optional
        Number K of sub-centers per class. Defaults to 3 (WeSpeaker).
    inter_topk : int, optional
        Number k of hardest non-target classes penalised; 0 disables the
        penalty. Defaults to 5 (WeSpeaker).
    inter_topk_margin : float, optional
        Their angular margin m', in radians. Defaults to 0.06 (WeSpeaker).

    Attributes
    ----------
    W : (embedding_size, num_classes * sub_centers) nn.Parameter
        Sub-centers: column ``j * K + k`` is sub-center k of class j.
    margin : float
        Margin in radians (what ``margin_scheduler`` sets).

    Notes
    -----
    Reduction: mean over the batch. The top-k classes are chosen on the
    sub-center-pooled cosines, without gradient through the choice.
    """

    #: clamp of the cosines before arccos (pyannote.audio 1.1)
    eps: float = AdditiveAngularMarginLoss.eps
    modify_cosine_of_target_classes = AdditiveAngularMarginLoss.modify_cosine_of_target_classes

    def __init__(
        self,
        num_classes: int,
        embedding_size: int,
        margin: float = 0.2,
        scale: float = 32.0,
        sub_centers: int = 3,
        inter_topk: int = 5,
        inter_topk_margin: float = 0.06,
    ):
        if int(sub_centers) < 1 or int(inter_topk) < 0:
            raise ValueError(f"sub_centers must be >= 1 and inter_topk >= 0 (got {sub_centers} and {inter_topk}).")
        super().__init__(
            num_classes=num_classes,
            embedding_size=embedding_size,
            margin=math.degrees(margin),  # pml takes degrees, see AdditiveAngularMarginLoss
            scale=scale,
            sub_centers=int(sub_centers),
            distance=CosineSimilarity(),
        )
        self.margin = float(margin)  # exactly (pml stored it back from degrees)
        #: the configured margin, which the inter-top-k margin is relative to
        self.full_margin = self.margin
        self.embedding_size = embedding_size
        self.inter_topk = int(inter_topk)
        self.inter_topk_margin = float(inter_topk_margin)

    def get_cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(batch_size, num_classes) cosines, each class' the max over its sub-centers"""
        cosine = super().get_cosine(embeddings)  # (B, C * K), CastClassWeightsMixin's
        return cosine.view(-1, self.num_classes, self.sub_centers).max(dim=2).values

    def current_inter_topk_margin(self) -> float:
        """m' scaled like the (scheduled) margin: m'_0 × margin / configured margin"""
        if self.full_margin <= 0:
            return self.inter_topk_margin
        return self.inter_topk_margin * self.margin / self.full_margin

    def unscaled_logits(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(batch_size, num_classes) cosines with the target margin and the inter-top-k penalty"""
        cosine = self.get_cosine(embeddings)
        target = self.get_target_mask(embeddings, labels)
        logits = cosine + target * (self.modify_cosine_of_target_classes(cosine) - cosine)
        k = min(self.inter_topk, self.num_classes - 1)
        penalty = self.current_inter_topk_margin()
        if k > 0 and penalty != 0:
            _, hardest = (cosine.detach() - 3.0 * target).topk(k, dim=1)  # never the target
            top = torch.zeros_like(cosine).scatter_(1, hardest, 1.0)
            logits = logits + top * (add_angle(cosine, -penalty, eps=self.eps) - cosine)
        return logits

    def compute_loss(self, embeddings, labels, indices_tuple, ref_emb, ref_labels):
        """pml hook: ``LargeMarginSoftmaxLoss.compute_loss`` with the inter-top-k penalty"""
        c_f.labels_required(labels)
        c_f.ref_not_supported(embeddings, labels, ref_emb, ref_labels)
        labels = labels.long()
        miner_weights = lmu.convert_to_weights(indices_tuple, labels, dtype=embeddings.dtype)
        logits = self.scale_logits(self.unscaled_logits(embeddings, labels), embeddings)
        loss_dict = element_losses(self.cross_entropy(logits, labels) * miner_weights, embeddings)
        self.add_weight_regularization_to_loss_dict(loss_dict, self.W.t())
        return loss_dict
