"""Two-covariance PLDA: against a direct computation, in pyannote.audio's VBx format, in its pipeline

What is compared with what:

* :class:`TwoCovariance` (the model alone, no front end) on synthetic data drawn
  from a known two-covariance model (mean μ, between-speaker B, within-speaker W,
  4 dimensions): its log-likelihood ratio with the true parameters equals the
  direct formula log N([x₁; x₂]; [μ; μ], [[B+W, B], [B, B+W]]) − log N(x₁; μ, B+W)
  − log N(x₂; μ, B+W) computed with scipy, and the fitted model's parameters
  and log-likelihood ratios approach the true ones.
* :class:`PLDA` (front end + model): its scores equal the log-likelihood ratios
  computed from what pyannote.audio's own ``PLDA`` makes of the exported files
  (its projection and ``phi``), and pyannote.audio's ``VBxClustering`` and
  ``SpeakerDiarization`` run with them.
"""

import numpy as np
import pytest
from pyannote.audio.core.plda import PLDA as PyannotePLDA
from pyannote.audio.pipelines.clustering import VBxClustering
from pyannote.core import Annotation, SlidingWindow, SlidingWindowFeature
from scipy.stats import chi2, multivariate_normal

from pyannote_embloss.errors import ConfigError, DataError, MissingFileError
from pyannote_embloss.evaluation.metrics import detection_metrics
from pyannote_embloss.evaluation.plda import PLDA, PLDAScoring, TwoCovariance
from pyannote_embloss.evaluation.scoring import cosine_scores
from pyannote_embloss.evaluation.trials import Trials

from test_pipelines import segmentation  # noqa: F401  (the fixture: a small segmentation model trained offline)


def two_covariance_data(num_speakers, per_speaker, mean, between, within, seed=0):
    """(embeddings, labels) drawn from the two-covariance model"""
    rng = np.random.default_rng(seed)
    speakers = rng.multivariate_normal(mean, between, size=num_speakers)
    labels = np.repeat(np.arange(num_speakers), per_speaker)
    noise = rng.multivariate_normal(np.zeros(len(mean)), within, size=len(labels))
    return speakers[labels] + noise, labels


@pytest.fixture(scope="module")
def true_model():
    """μ, B, W of a 4-dimensional two-covariance model (full, correlated covariances)"""
    rng = np.random.default_rng(42)
    a, c = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    return rng.normal(size=4), a @ a.T + 0.5 * np.eye(4), 0.5 * c @ c.T + 0.2 * np.eye(4)


def direct_llr(x1, x2, mean, between, within):
    """The same-speaker LLR of a pair, from the joint Gaussian density (scipy)"""
    total = between + within
    joint = multivariate_normal(np.r_[mean, mean], np.block([[total, between], [between, total]]))
    single = multivariate_normal(mean, total)
    return joint.logpdf(np.r_[x1, x2]) - single.logpdf(x1) - single.logpdf(x2)


def pairs(labels, per_speaker, num_pairs=1000):
    """Indices of `num_pairs` pairs, the first half same-speaker, the second different-speaker"""
    first = np.arange(num_pairs) * per_speaker
    second = first + 1
    second[num_pairs // 2 :] += 5 * per_speaker
    assert np.all(labels[first[: num_pairs // 2]] == labels[second[: num_pairs // 2]])
    assert np.all(labels[first[num_pairs // 2 :]] != labels[second[num_pairs // 2 :]])
    return first, second


# --- the two-covariance model -----------------------------------------------------------


def test_llr_with_the_true_parameters_equals_the_direct_formula(true_model):
    mean, between, within = true_model
    x, labels = two_covariance_data(50, 4, mean, between, within)
    first, second = pairs(labels, 4, num_pairs=40)
    model = TwoCovariance(mean, between, within)
    expected = [direct_llr(x[i], x[j], mean, between, within) for i, j in zip(first, second)]
    np.testing.assert_allclose(model.log_likelihood_ratio(x[first], x[second]), expected, rtol=1e-9, atol=1e-9)
    # the diagonalising transform: tr W trᵀ = I, tr B trᵀ = diag(psi), psi decreasing
    np.testing.assert_allclose(model.transform @ within @ model.transform.T, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(model.transform @ between @ model.transform.T, np.diag(model.psi), atol=1e-10)
    assert np.all(np.diff(model.psi) <= 0)


def test_fitted_model_approaches_the_true_one(true_model):
    mean, between, within = true_model
    x, labels = two_covariance_data(2000, 10, mean, between, within, seed=1)
    model = TwoCovariance.fit(x, labels)
    # relative Frobenius errors: over 10 draws of 2000 speakers x 10, at most 0.08 (B) and 0.03 (W)
    assert np.linalg.norm(model.between - between) / np.linalg.norm(between) < 0.15
    assert np.linalg.norm(model.within - within) / np.linalg.norm(within) < 0.05
    # the mean of 2000 speakers is off by N(0, B / 2000): its Mahalanobis distance is χ²(4)
    deviation = model.mean - mean
    assert deviation @ np.linalg.solve(between / 2000, deviation) < chi2.ppf(0.9999, 4)
    # log-likelihood ratios of 500 same- and 500 different-speaker pairs, fitted vs direct
    # formula on the true parameters: over 10 draws the mean absolute difference was
    # 0.6-1.1 % of the standard deviation of the true LLRs
    first, second = pairs(labels, 10)
    truth = np.array([direct_llr(x[i], x[j], mean, between, within) for i, j in zip(first, second)])
    fitted = model.log_likelihood_ratio(x[first], x[second])
    assert np.mean(np.abs(fitted - truth)) < 0.03 * np.std(truth)
    assert np.corrcoef(fitted, truth)[0, 1] > 0.999


def test_em_increases_the_likelihood_up_to_the_closed_form_maximum(true_model):
    mean, between, within = true_model
    x, labels = two_covariance_data(300, 5, mean, between, within, seed=2)
    likelihoods = [TwoCovariance.fit(x, labels, num_iterations=n).log_likelihood(x, labels) for n in range(8)]
    assert np.all(np.diff(likelihoods) > -1e-6)
    assert likelihoods[-1] > likelihoods[0] + 1.0
    # with the same number of embeddings per speaker, the maximum-likelihood estimate has a
    # closed form: W = within-speaker scatter / (S (n − 1)), B = covariance of the speaker means − W / n
    means = x.reshape(300, 5, 4).mean(axis=1)
    scatter = sum((g - g.mean(0)).T @ (g - g.mean(0)) for g in x.reshape(300, 5, 4))
    w_ml = scatter / (300 * 4)
    b_ml = np.cov(means.T, bias=True) - w_ml / 5
    model = TwoCovariance.fit(x, labels, num_iterations=100)
    np.testing.assert_allclose(model.within, w_ml, atol=1e-6)
    np.testing.assert_allclose(model.between, b_ml, atol=1e-6)
    np.testing.assert_allclose(model.mean, means.mean(axis=0), atol=1e-8)


# --- front end, scores and pyannote.audio's files -----------------------------------------


@pytest.fixture(scope="module")
def anisotropic():
    """Generator of 32-d embeddings: speakers around a common direction, within-speaker noise
    strong in a few rotated directions (where cosine similarity is fooled and PLDA is not)"""
    rng = np.random.default_rng(7)
    dimension = 32
    center = 3.0 * np.ones(dimension) / np.sqrt(dimension)
    rotation, _ = np.linalg.qr(rng.normal(size=(dimension, dimension)))
    within = rotation @ np.diag(np.geomspace(0.5, 0.01, dimension)) @ rotation.T

    def draw(num_speakers, per_speaker, seed):
        return two_covariance_data(num_speakers, per_speaker, center, 0.25 * np.eye(dimension), within, seed=seed)

    return draw


@pytest.fixture(scope="module")
def fitted(anisotropic):
    embeddings, labels = anisotropic(200, 10, seed=0)
    return PLDA.fit(embeddings, labels, lda_dimension=16)


def test_exported_files_give_the_same_llr_in_pyannote(fitted, anisotropic, tmp_path):
    fitted.export(tmp_path)
    with np.load(tmp_path / "xvec_transform.npz") as transform, np.load(tmp_path / "plda.npz") as plda:
        assert {k: transform[k].shape for k in transform} == {"mean1": (32,), "mean2": (16,), "lda": (32, 16)}
        assert {k: plda[k].shape for k in plda} == {"mu": (16,), "tr": (16, 16), "psi": (16,)}
    theirs = PyannotePLDA.from_pretrained(str(tmp_path))
    x, _ = anisotropic(20, 2, seed=1)
    # pyannote.audio rebuilds W and B from tr and psi, diagonalises again: same space, up to signs
    np.testing.assert_allclose(theirs.phi, fitted.psi, rtol=1e-8)
    np.testing.assert_allclose(np.abs(theirs(x)), np.abs(fitted.project(x)), atol=1e-8)
    fea, phi = theirs(x), theirs.phi
    a, b = 1.0 + phi, phi
    u, v = fea[:20], fea[20:]
    expected = np.sum(
        -0.5 * np.log(a * a - b * b) + np.log(a)
        - 0.5 * ((a * (u * u + v * v) - 2 * b * u * v) / (a * a - b * b) - (u * u + v * v) / a),
        axis=1,
    )
    np.testing.assert_allclose(fitted.score(x[:20], x[20:]), expected, rtol=1e-8, atol=1e-8)
    # and back
    again = PLDA.load(tmp_path)
    np.testing.assert_allclose(again.score(x[:20], x[20:]), fitted.score(x[:20], x[20:]), atol=1e-8)


def test_plda_scores_verification_trials_better_than_cosine(fitted, anisotropic):
    x, labels = anisotropic(200, 4, seed=2)  # new speakers
    rng = np.random.default_rng(3)
    index1 = rng.integers(0, len(x), 4000)
    index2 = rng.integers(0, len(x), 4000)
    index2[:2000] = index1[:2000] // 4 * 4 + (index1[:2000] + 1) % 4  # same speaker
    trials = Trials([str(i) for i in range(len(x))], [""] * len(x), index1, index2, labels[index1] == labels[index2])
    scores = trials.score(x, PLDAScoring(fitted))
    np.testing.assert_allclose(scores, fitted.score(x[index1], x[index2]), atol=1e-10)
    plda_eer = detection_metrics(trials.reference, scores)["eer"]
    cosine_eer = detection_metrics(trials.reference, cosine_scores(x, index1, index2))["eer"]
    # measured: 0.35 % against 4.3 %
    assert plda_eer < 0.5 * cosine_eer


def test_fit_refuses_what_it_cannot_fit(anisotropic, tmp_path):
    x, labels = anisotropic(10, 3, seed=4)
    with pytest.raises(ConfigError, match=r"lda_dimension must be in \[1, 9\]"):
        PLDA.fit(x, labels, lda_dimension=10)
    assert PLDA.fit(x, labels).lda_dimension == 9  # min(128, 32, 10 - 1)
    with pytest.raises(DataError, match="at least 2 speakers"):
        PLDA.fit(x, np.zeros(len(x)))
    with pytest.raises(DataError, match="every speaker has one"):
        PLDA.fit(x, np.arange(len(x)))
    with pytest.raises(DataError, match="32-dimensional"):
        PLDA.fit(x, labels).score(x[:2, :16], x[:2, :16])
    with pytest.raises(MissingFileError, match="plda.npz|xvec_transform.npz"):
        PLDA.load(tmp_path)


# --- pyannote.audio's VBx ------------------------------------------------------------------


def conversation(draw_speakers, within_noise, num_chunks=60, seed=0):
    """Embeddings and segmentations of a 3-speaker conversation, as the pipeline gives VBx

    Each chunk has two local speakers, each alone for half of its 10 frames, and
    an inactive third (NaN embedding). Returns (embeddings, segmentations, truth).
    """
    rng = np.random.default_rng(seed)
    speakers = draw_speakers(rng)
    truth = np.stack([np.arange(num_chunks) % 3, (np.arange(num_chunks) + 1) % 3], axis=1)
    embeddings = np.full((num_chunks, 3, speakers.shape[1]), np.nan)
    embeddings[:, :2] = speakers[truth] + within_noise(rng, truth.shape)
    activity = np.zeros((num_chunks, 10, 3))
    activity[:, :5, 0] = activity[:, 5:, 1] = 1.0
    return embeddings, SlidingWindowFeature(activity, SlidingWindow(start=0.0, duration=1.0, step=1.0)), truth


def test_vbx_clustering_finds_the_speakers_with_the_exported_plda(anisotropic, tmp_path):
    embeddings, labels = anisotropic(200, 10, seed=0)
    PLDA.fit(embeddings, labels, lda_dimension=16).export(tmp_path / "plda")
    PLDA.fit(embeddings, np.random.default_rng(0).permutation(labels), lda_dimension=16).export(tmp_path / "shuffled")

    def draw_speakers(rng):
        x, _ = anisotropic(3, 1, seed=int(rng.integers(1 << 30)))
        return x  # 3 new speakers (one draw each: a speaker point plus noise)

    def within_noise(rng, shape):
        x, _ = anisotropic(1, int(np.prod(shape)), seed=int(rng.integers(1 << 30)))
        return (x - x.mean(axis=0)).reshape(*shape, -1)

    def clusters(directory, chunks):
        clustering = VBxClustering(PyannotePLDA.from_pretrained(str(directory)))
        # AHC threshold 0.01: every embedding starts as its own cluster, so that VBx does all the merging
        clustering.instantiate({"threshold": 0.01, "Fa": 0.07, "Fb": 0.8})
        embeddings, segmentations, truth = chunks
        hard, _, centroids = clustering(embeddings, segmentations=segmentations, min_clusters=1, max_clusters=100)
        return set(zip(truth.ravel().tolist(), hard[:, :2].ravel().tolist())), len(centroids)

    for seed in range(3):
        chunks = conversation(draw_speakers, within_noise, seed=seed)
        found, num_clusters = clusters(tmp_path / "plda", chunks)
        assert num_clusters == 3 and len(found) == 3, found  # one cluster per speaker, no confusion
    # a PLDA fitted on shuffled speaker labels has no speaker information: VBx merges nothing
    _, num_clusters = clusters(tmp_path / "shuffled", chunks)
    assert num_clusters > 10


def test_speaker_diarization_pipeline_runs_vbx_with_a_plugin_model(segmentation, speechocean762_yml, tmp_path):  # noqa: F811
    import torch
    from pyannote.audio.pipelines import SpeakerDiarization as PyannoteSpeakerDiarization

    from pyannote_embloss.inference.embedding import embed_files
    from pyannote_embloss.models import SincTDNN
    from pyannote_embloss.pipelines import sample_file
    from pyannote_embloss.data.protocols import get_protocol

    from helpers import PROTOCOL

    torch.manual_seed(0)
    model = SincTDNN(stride=10, dimension=32).eval()  # untrained: this checks the plumbing, not the DER
    # PLDA fitted on 3 SpeechOcean762 training files of each of 40 speakers
    per_speaker = {}
    for file in get_protocol(PROTOCOL, database_yml=speechocean762_yml).train():
        (speaker,) = file["annotation"].labels()
        per_speaker.setdefault(speaker, []).append(str(file["audio"]))
    speakers = sorted(per_speaker)[:40]
    paths = [path for speaker in speakers for path in sorted(per_speaker[speaker])[:3]]
    labels = [speaker for speaker in speakers for _ in sorted(per_speaker[speaker])[:3]]
    plda = PLDA.fit(embed_files(model, paths, progress=False), labels)
    assert plda.lda_dimension == 32
    plda.export(tmp_path / "plda")

    pipeline = PyannoteSpeakerDiarization(
        segmentation=str(segmentation),
        embedding=model,
        plda={"checkpoint": str(tmp_path / "plda")},
        clustering="VBxClustering",
        segmentation_step=0.25,
        embedding_batch_size=16,
        segmentation_batch_size=16,
    )
    pipeline.instantiate(pipeline.default_parameters())
    assert type(pipeline.clustering).__name__ == "VBxClustering"
    np.testing.assert_allclose(pipeline.clustering.plda.phi, plda.psi, rtol=1e-8)

    artifacts = {}

    def hook(step, artifact, **kwargs):
        if step in ("segmentation", "embeddings") and getattr(artifact, "ndim", 3) == 3 and artifact is not None:
            artifacts[step] = artifact

    sample = sample_file()
    output = pipeline({"uri": "sample", "audio": sample["audio"]}, hook=hook)
    # VBx clustered (not the early exits for silence or a single embedding)
    kept, _, _ = pipeline.clustering.filter_embeddings(artifacts["embeddings"], segmentations=artifacts["segmentation"])
    assert len(kept) >= 2
    diarization = output.speaker_diarization
    assert isinstance(diarization, Annotation) and len(diarization.labels()) >= 1
    assert diarization.get_timeline().support().duration() > 15.0  # sample.wav has ~ 24 s of speech
    assert output.speaker_embeddings.shape == (len(diarization.labels()), 32)
