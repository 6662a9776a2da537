"""Tests of pyannote_embloss.losses: values against hand-written formulas"""

import math
import pickle

import numpy as np
import pytest
import torch
from pytorch_metric_learning.losses import ArcFaceLoss

from pyannote_embloss.losses import (
    LOSSES,
    AdditiveAngularMarginLoss,
    AdditiveMarginLoss,
    CenterLoss,
    CongenerousCosineLoss,
    ContrastiveLoss,
    SoftmaxLoss,
    SubCenterAdditiveAngularMarginLoss,
    TripletLoss,
    get_loss_class,
)

# ---------------------------------------------------------------- fixtures
# B = 6 chunks, D = 3, C = 3 speakers (2 chunks each)
X = np.array(
    [
        [1.0, 0.2, 0.0],
        [0.8, 0.5, 0.1],
        [0.6, 0.9, 0.0],
        [0.1, 1.0, 0.3],
        [0.9, 0.0, 0.5],
        [0.0, 0.3, 1.0],
    ]
)
X = X * np.array([[1.0], [2.0], [0.5], [3.0], [1.5], [0.7]])  # not normalised
Y = np.array([0, 0, 1, 1, 2, 2])
# class weights as columns, (D, C)
W = np.array(
    [
        [0.9, -0.3, 0.5],
        [0.1, 1.2, -0.4],
        [-0.2, 0.4, 0.8],
    ]
)
CENTERS = np.array(  # (C, D)
    [
        [1.0, 0.5, -0.2],
        [0.3, 1.0, 0.1],
        [0.2, -0.1, 1.0],
    ]
)
B, D = X.shape
C = W.shape[1]


def embeddings():
    return torch.tensor(X, dtype=torch.float64, requires_grad=True)


def labels():
    return torch.tensor(Y)


def sub_center_weights(K):
    """(D, C * K) sub-centers: column j * K + k is sub-center k of class j (W itself for K = 1)"""
    if K == 1:
        return W
    rng = np.random.default_rng(K)
    return (W[:, :, None] + 0.6 * rng.standard_normal((D, C, K))).reshape(D, C * K)


def make(cls, **kwargs):
    """Classifier loss in float64 with W (sub-centers, and centers) set to the fixtures"""
    loss = cls(num_classes=C, embedding_size=D, **kwargs).double()
    with torch.no_grad():
        loss.W.copy_(torch.tensor(sub_center_weights(loss.W.shape[1] // C)))
        if hasattr(loss, "centers"):
            loss.centers.copy_(torch.tensor(CENTERS))
    return loss


# ----------------------------------------------------- independent formulas


def unit(a, axis):
    return a / np.linalg.norm(a, axis=axis, keepdims=True)


def cross_entropy(logits, y):
    """mean_i -log softmax(logits_i)[y_i], written out"""
    total = 0.0
    for i in range(len(y)):
        row = logits[i]
        total += -(row[y[i]] - math.log(sum(math.exp(v) for v in row)))
    return total / len(y)


def cosines():
    """(B, C) cos(x_i, w_j)"""
    return unit(X, 1) @ unit(W, 0)


def cosine_distance(a, b):
    return 1.0 - float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def valid_triplets():
    return [
        (a, p, n)
        for a in range(B)
        for p in range(B)
        for n in range(B)
        if a != p and Y[a] == Y[p] and Y[n] != Y[a]
    ]


def triplet_term(a, p, n, margin):
    return max(0.0, cosine_distance(X[a], X[p]) - cosine_distance(X[a], X[n]) + margin)


# ------------------------------------------------------------------ registry


def test_each_task_trains_the_loss_of_its_name():
    import pyannote_embloss.tasks
    from pyannote_embloss.tasks import TASKS, SpeakerEmbeddingTask

    assert list(TASKS) == list(LOSSES)
    for name, task in TASKS.items():
        assert get_loss_class(name) is LOSSES[name]
        assert get_loss_class(task.loss_name) is LOSSES[name], name
        # derived from the loss: its class name without "Loss", importable (and picklable) from pyannote_embloss.tasks
        assert issubclass(task, SpeakerEmbeddingTask) and task.__name__ + "Loss" == LOSSES[name].__name__
        assert getattr(pyannote_embloss.tasks, task.__name__) is task
        assert pickle.loads(pickle.dumps(task)) is task
    assert TASKS["aam"].__name__ == "AdditiveAngularMargin"


def test_unknown_loss():
    with pytest.raises(ValueError) as error:
        get_loss_class("nope")
    message = str(error.value)
    assert "nope" in message
    for name in LOSSES:
        assert name in message


@pytest.mark.parametrize(
    "name, uses_classifier, min_chunks, has_margin",
    [
        ("softmax", True, 1, False),
        ("center", True, 1, False),
        ("coco", True, 1, False),
        ("aam", True, 1, True),
        ("am", True, 1, True),
        ("subcenter_aam", True, 1, True),
        ("contrastive", False, 2, False),
        ("triplet", False, 2, False),
    ],
)
def test_class_attributes(name, uses_classifier, min_chunks, has_margin):
    cls = get_loss_class(name)
    assert cls.uses_classifier is uses_classifier
    assert cls.min_chunks_per_class == min_chunks
    assert cls.has_margin is has_margin
    # the margin that margin_scheduler sets is the loss' own
    if has_margin:
        loss = cls(num_classes=3, embedding_size=3, margin=0.1)
        assert loss.margin == pytest.approx(0.1)


def test_losses_with_margin():
    from pyannote_embloss.losses import losses_with_margin

    assert losses_with_margin() == ["aam", "am", "subcenter_aam"]


# -------------------------------------------------------- classifier values


def test_softmax_value():
    expected = cross_entropy(X @ W, Y)
    value = make(SoftmaxLoss)(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("loss_weight", [1.0, 0.3])
def test_center_value(loss_weight):
    center = 0.0
    for i in range(B):
        center += (1.0 - (1.0 - cosine_distance(X[i], CENTERS[Y[i]]))) ** 2
    expected = cross_entropy(X @ W, Y) + loss_weight * center / (2 * B)
    kwargs = {} if loss_weight == 1.0 else {"loss_weight": loss_weight}
    value = make(CenterLoss, **kwargs)(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


def test_center_default_weight():
    assert CenterLoss(num_classes=3, embedding_size=3).loss_weight == 1.0


@pytest.mark.parametrize("alpha", [None, 2.0])
def test_coco_value(alpha):
    expected = cross_entropy((6.25 if alpha is None else alpha) * cosines(), Y)
    kwargs = {} if alpha is None else {"alpha": alpha}
    value = make(CongenerousCosineLoss, **kwargs)(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


def aam_expected(margin, scale):
    cos = cosines()
    logits = scale * cos.copy()
    for i in range(B):
        assert -1 + 1e-4 < cos[i, Y[i]] < 1 - 1e-4  # ordinary inputs: no clamp
        logits[i, Y[i]] = scale * math.cos(math.acos(cos[i, Y[i]]) + margin)
    return cross_entropy(logits, Y)


@pytest.mark.parametrize("margin, scale", [(None, None), (0.3, 4.0)])
def test_aam_value(margin, scale):
    kwargs = {} if margin is None else {"margin": margin, "scale": scale}
    expected = aam_expected(0.05 if margin is None else margin, 10.0 if scale is None else scale)
    value = make(AdditiveAngularMarginLoss, **kwargs)(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


def test_aam_margin_is_in_radians(monkeypatch):
    # the margin handed over to pml's ArcFaceLoss (which expects degrees)
    seen = []
    original = ArcFaceLoss.init_margin

    def spy(self):
        seen.append(self.margin)
        original(self)

    monkeypatch.setattr(ArcFaceLoss, "init_margin", spy)
    loss = AdditiveAngularMarginLoss(num_classes=3, embedding_size=3)
    assert seen == [pytest.approx(math.degrees(0.05))]
    assert seen[0] == pytest.approx(2.8647889756541161)
    # ... and stored back in radians
    assert loss.margin == pytest.approx(0.05, rel=1e-12)
    assert loss.scale == 10.0


def test_aam_matches_pml_in_degrees_not_radians():
    ours = make(AdditiveAngularMarginLoss)(embeddings(), labels()).item()

    def pml(margin):
        loss = ArcFaceLoss(num_classes=C, embedding_size=D, margin=margin, scale=10.0).double()
        with torch.no_grad():
            loss.W.copy_(torch.tensor(W))
        return loss(embeddings(), labels()).item()

    assert ours == pytest.approx(pml(math.degrees(0.05)), rel=1e-10)
    assert ours != pytest.approx(pml(0.05), rel=1e-3)  # 0.05 degree would be wrong


def test_aam_clamp_of_target_cosine():
    # embedding 0 exactly aligned with its class weight: cos = 1 -> clamped
    x = X.copy()
    x[0] = 2.0 * W[:, Y[0]]
    cos = unit(x, 1) @ unit(W, 0)
    margin, scale, eps = 0.05, 10.0, 1e-4
    logits = scale * cos.copy()
    for i in range(B):
        c = cos[i, Y[i]]
        clamped = min(max(c, -1 + eps), 1 - eps)
        # pyannote.audio 1.1: cos + (cos(acos(clamped) + m) - clamped)
        logits[i, Y[i]] = scale * (c + math.cos(math.acos(clamped) + margin) - clamped)
    expected = cross_entropy(logits, Y)
    assert cos[0, Y[0]] == pytest.approx(1.0)
    e = torch.tensor(x, requires_grad=True)
    loss = make(AdditiveAngularMarginLoss)
    value = loss(e, labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)
    value.backward()
    assert torch.isfinite(e.grad).all()
    assert torch.isfinite(loss.W.grad).all()


@pytest.mark.parametrize("margin, scale", [(None, None), (0.1, 10.0)])
def test_am_value(margin, scale):
    m = 0.2 if margin is None else margin
    s = 30.0 if scale is None else scale
    logits = s * cosines()
    for i in range(B):
        logits[i, Y[i]] -= s * m
    expected = cross_entropy(logits, Y)
    kwargs = {} if margin is None else {"margin": margin, "scale": scale}
    value = make(AdditiveMarginLoss, **kwargs)(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


def sub_center_expected(K, margin, scale, topk=0, topk_margin=0.0):
    """Sub-center AAM with the inter-top-k penalty, written out"""
    cos = (unit(X, 1) @ unit(sub_center_weights(K), 0)).reshape(B, C, K).max(axis=2)
    logits = scale * cos.copy()
    for i in range(B):
        logits[i, Y[i]] = scale * math.cos(math.acos(cos[i, Y[i]]) + margin)
        impostors = sorted((j for j in range(C) if j != Y[i]), key=lambda j: -cos[i, j])
        for j in impostors[:topk]:
            logits[i, j] = scale * math.cos(math.acos(cos[i, j]) - topk_margin)
    return cross_entropy(logits, Y)


@pytest.mark.parametrize("margin, scale", [(0.05, 10.0), (0.3, 4.0)])
def test_subcenter_with_one_center_and_no_penalty_is_aam(margin, scale):
    aam = make(AdditiveAngularMarginLoss, margin=margin, scale=scale)
    ours = make(SubCenterAdditiveAngularMarginLoss, margin=margin, scale=scale, sub_centers=1, inter_topk=0)
    assert ours(embeddings(), labels()).item() == pytest.approx(aam(embeddings(), labels()).item(), abs=1e-6)
    # float32, random weights: the same weights give the same loss
    torch.manual_seed(0)
    aam32 = AdditiveAngularMarginLoss(num_classes=7, embedding_size=5, margin=margin, scale=scale)
    ours32 = SubCenterAdditiveAngularMarginLoss(7, 5, margin=margin, scale=scale, sub_centers=1, inter_topk=0)
    ours32.load_state_dict(aam32.state_dict())
    x, y = torch.randn(11, 5), torch.randint(0, 7, (11,))
    assert ours32(x, y).item() == pytest.approx(aam32(x, y).item(), abs=1e-6)


def test_subcenter_target_cosine_is_the_max_over_sub_centers():
    loss = make(SubCenterAdditiveAngularMarginLoss, sub_centers=3, inter_topk=0)
    assert loss.W.shape == (D, 3 * C) and loss.num_classes == C
    pooled = (unit(X, 1) @ unit(sub_center_weights(3), 0)).reshape(B, C, 3).max(axis=2)
    np.testing.assert_allclose(loss.get_cosine(embeddings()).detach().numpy(), pooled, atol=1e-12)
    # not the first sub-center's nor the mean's, for these weights
    assert not np.allclose(pooled, unit(X, 1) @ unit(sub_center_weights(3)[:, ::3], 0))
    value = loss(embeddings(), labels()).item()
    assert value == pytest.approx(sub_center_expected(3, 0.2, 32.0), rel=1e-10)


@pytest.mark.parametrize("topk", [1, 5])  # 5 > C - 1: every impostor
def test_inter_topk_penalty_raises_the_loss_by_its_amount(topk):
    without = make(SubCenterAdditiveAngularMarginLoss, sub_centers=2, inter_topk=0)(embeddings(), labels()).item()
    value = make(SubCenterAdditiveAngularMarginLoss, sub_centers=2, inter_topk=topk)(embeddings(), labels()).item()
    expected = sub_center_expected(2, 0.2, 32.0, topk=topk, topk_margin=0.06)
    assert value == pytest.approx(expected, rel=1e-10)
    assert value - without == pytest.approx(expected - sub_center_expected(2, 0.2, 32.0), rel=1e-8)
    assert value > without


def test_inter_topk_margin_follows_the_scheduled_margin():
    loss = make(SubCenterAdditiveAngularMarginLoss, sub_centers=2, inter_topk=1, inter_topk_margin=0.06)
    loss.margin = 0.1  # as margin_scheduler does, half-way to 0.2: m' is halved too (WeSpeaker)
    expected = sub_center_expected(2, 0.1, 32.0, topk=1, topk_margin=0.03)
    assert loss(embeddings(), labels()).item() == pytest.approx(expected, rel=1e-10)
    loss.margin = 0.0
    assert loss(embeddings(), labels()).item() == pytest.approx(sub_center_expected(2, 0.0, 32.0), rel=1e-10)


def test_subcenter_defaults_are_wespeakers():
    loss = SubCenterAdditiveAngularMarginLoss(num_classes=5, embedding_size=4)
    assert loss.W.shape == (4, 15) and loss.sub_centers == 3
    assert loss.margin == pytest.approx(0.2) and loss.scale == 32.0
    assert loss.inter_topk == 5 and loss.inter_topk_margin == 0.06
    with pytest.raises(ValueError, match="sub_centers"):
        SubCenterAdditiveAngularMarginLoss(num_classes=5, embedding_size=4, sub_centers=0)


# ------------------------------------------------------------- pair values


@pytest.mark.parametrize("margin", [None, 0.7])
def test_contrastive_value(margin):
    m = 0.4 if margin is None else margin
    total, pairs = 0.0, 0
    for i in range(B):
        for j in range(i + 1, B):
            d = cosine_distance(X[i], X[j])
            g = 1.0 if Y[i] != Y[j] else 0.0
            total += (1 - g) * d**2 + g * max(0.0, m - d) ** 2
            pairs += 1
    assert pairs == 15
    expected = total / 2 / pairs
    loss = ContrastiveLoss() if margin is None else ContrastiveLoss(margin=margin)
    assert loss(embeddings(), labels()).item() == pytest.approx(expected, rel=1e-10)


def test_triplet_all_value():
    triplets = valid_triplets()
    assert len(triplets) == 6 * 1 * 4
    terms = [triplet_term(a, p, n, 0.4) for a, p, n in triplets]
    assert min(terms) == 0.0 < max(terms)  # zero terms count in the mean
    expected = sum(terms) / len(terms)
    assert TripletLoss()(embeddings(), labels()).item() == pytest.approx(expected, rel=1e-10)


def test_triplet_hard_value():
    terms = []
    for a in range(B):
        positives = [p for p in range(B) if p != a and Y[p] == Y[a]]
        negatives = [n for n in range(B) if Y[n] != Y[a]]
        p = max(positives, key=lambda p: cosine_distance(X[a], X[p]))
        n = min(negatives, key=lambda n: cosine_distance(X[a], X[n]))
        terms.append(triplet_term(a, p, n, 0.4))
    expected = sum(terms) / len(terms)
    value = TripletLoss(sampling="hard")(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


def test_triplet_semi_hard_value():
    selected = []
    for a, p, n in valid_triplets():
        gap = cosine_distance(X[a], X[n]) - cosine_distance(X[a], X[p])
        if 0.0 < gap <= 0.4:
            selected.append((a, p, n))
    assert 0 < len(selected) < len(valid_triplets())
    expected = sum(triplet_term(a, p, n, 0.4) for a, p, n in selected) / len(selected)
    value = TripletLoss(sampling="semi-hard")(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


def test_triplet_samplings_differ():
    values = {
        s: TripletLoss(sampling=s)(embeddings(), labels()).item()
        for s in ("all", "hard", "semi-hard")
    }
    assert len({round(v, 6) for v in values.values()}) == 3
    assert values["hard"] > values["all"]


def test_triplet_custom_margin():
    triplets = valid_triplets()
    expected = sum(triplet_term(a, p, n, 0.1) for a, p, n in triplets) / len(triplets)
    value = TripletLoss(margin=0.1)(embeddings(), labels())
    assert value.item() == pytest.approx(expected, rel=1e-10)


def test_triplet_unknown_sampling():
    with pytest.raises(ValueError, match="bogus"):
        TripletLoss(sampling="bogus")


@pytest.mark.parametrize("loss", [TripletLoss(), TripletLoss(sampling="hard"), ContrastiveLoss()])
def test_pair_losses_without_pairs(loss):
    # a single chunk: no pair, no triplet -> zero loss, still differentiable
    e = embeddings()[:1]
    value = loss(e, labels()[:1])
    assert value.item() == 0.0
    value.backward()


# ---------------------------------------------------------------- gradients


def all_losses():
    for name, cls in LOSSES.items():
        if cls.uses_classifier:
            yield name, make(cls)
        else:
            yield name, cls()
    yield "triplet-hard", TripletLoss(sampling="hard")
    yield "triplet-semi-hard", TripletLoss(sampling="semi-hard")


@pytest.mark.parametrize("name, loss", list(all_losses()))
def test_gradients_reach_embeddings_and_parameters(name, loss):
    e = embeddings()
    loss(e, labels()).backward()
    assert e.grad is not None and e.grad.abs().sum() > 0
    for parameter_name, parameter in loss.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert parameter.grad.abs().sum() > 0, parameter_name


def test_center_loss_gradients_reach_centers_and_W():
    loss = make(CenterLoss)
    loss(embeddings(), labels()).backward()
    assert loss.W.grad.abs().sum() > 0
    assert loss.centers.grad.abs().sum() > 0
    # only the centers of classes present in the batch move
    loss = make(CenterLoss)
    loss(embeddings()[:2], labels()[:2]).backward()
    assert loss.centers.grad[0].abs().sum() > 0
    assert loss.centers.grad[1:].abs().sum() == 0


# ------------------------------------------------------------ dtype / device


@pytest.mark.parametrize("name", ["softmax", "center", "coco", "aam", "am", "subcenter_aam"])
def test_classifier_params_are_not_cast_in_place(name):
    loss = get_loss_class(name)(num_classes=C, embedding_size=D)  # float32
    e = embeddings()  # float64
    value = loss(e, torch.tensor(Y, dtype=torch.int32))
    assert value.dtype == torch.float64
    value.backward()
    for parameter in loss.parameters():
        assert parameter.dtype == torch.float32
        assert parameter.grad.dtype == torch.float32


@pytest.mark.parametrize("name", ["softmax", "center", "coco", "aam", "am"])
def test_classifier_weight_shapes(name):
    loss = get_loss_class(name)(num_classes=5, embedding_size=4)
    assert isinstance(loss.W, torch.nn.Parameter)
    assert loss.W.shape == (4, 5)
    assert loss.num_classes == 5 and loss.embedding_size == 4
    if name == "center":
        assert loss.centers.shape == (5, 4)


# ----------------------------------------------------- pickling / state_dict


@pytest.mark.parametrize(
    "name, keys",
    [
        ("softmax", {"W"}),
        ("center", {"W", "centers"}),
        ("coco", {"W"}),
        ("aam", {"W"}),
        ("am", {"W"}),
        ("subcenter_aam", {"W"}),
        ("contrastive", set()),
        ("triplet", set()),
    ],
)
def test_state_dict_and_pickle(name, keys):
    cls = get_loss_class(name)
    loss = make(cls) if cls.uses_classifier else cls()
    assert set(loss.state_dict()) == keys

    expected = loss(embeddings(), labels()).item()
    clone = pickle.loads(pickle.dumps(loss))
    assert clone(embeddings(), labels()).item() == pytest.approx(expected, rel=1e-12)

    if keys:
        fresh = cls(num_classes=C, embedding_size=D).double()
        fresh.load_state_dict(loss.state_dict())
        assert fresh(embeddings(), labels()).item() == pytest.approx(expected, rel=1e-12)

    # as a submodule of a model: parameters are saved as `loss_func.*`
    model = torch.nn.Module()
    model.loss_func = loss
    assert set(model.state_dict()) == {f"loss_func.{k}" for k in keys}


def test_inference_checkpoints_drop_the_sub_centers():
    from pyannote_embloss.models.checkpoint import drop_loss_parameters

    model = torch.nn.Module()
    model.embedding = torch.nn.Linear(3, 3)
    model.loss_func = SubCenterAdditiveAngularMarginLoss(num_classes=4, embedding_size=3)
    state_dict = model.state_dict()
    assert drop_loss_parameters(state_dict) == ["loss_func.W"]  # the (3, 4 x 3) sub-centers
    assert set(state_dict) == {"embedding.weight", "embedding.bias"}
