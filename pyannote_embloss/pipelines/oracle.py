"""How good are the embeddings for diarization? Oracle speech turns, clustered

Given reference speech turns (oracle segmentation, oracle number of
speakers), each turn is embedded whole with the plugin's model, turns are
clustered with pyannote.audio's agglomerative clustering (cosine distance)
and, given a PLDA fitted to the embedding (the one ``evaluate`` exports),
with pyannote.audio's VBx clustering too, and each resulting diarization is
scored with pyannote.metrics' `DiarizationErrorRate`. Segmentation errors
are thus out of the picture: the error left is speaker confusion caused by
the embeddings (and by overlapping speech, which a single label per turn
cannot always fix).

    pyannote-audio-emb oracle-der EXP                    # pyannote's sample.wav (EXP: or a checkpoint)
    pyannote-audio-emb oracle-der EXP --reference R.rttm --audio A
    pyannote-audio-emb oracle-der EXP --conversations 6 [--protocol P] [--database YML]
        # synthetic conversations of test speakers (default: SpeechOcean762's, in-domain)
    pyannote-audio-emb oracle-der EXP --plda EXP/results/PROTOCOL.plda [-o REPORT.json]
        # AHC and VBx side by side
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
from pyannote.audio.core.model import Model
from pyannote.audio.core.plda import PLDA
from pyannote.audio.pipelines.clustering import AgglomerativeClustering, VBxClustering
from pyannote.core import Annotation, SlidingWindow, SlidingWindowFeature
from pyannote.metrics.diarization import DiarizationErrorRate

from ..data.audio import load_audio
from ..inference.embedding import embed_waveform
from .diarization import DEFAULT_VBX_CLUSTERING


def cluster_turns(
    embeddings: np.ndarray,
    num_speakers: int,
    method: str = "average",
) -> np.ndarray:
    """Cluster turn embeddings into `num_speakers` with pyannote's agglomerative clustering

    Parameters
    ----------
    embeddings : (num_turns, dimension) np.ndarray
    num_speakers : int
        Number of clusters.
    method : str, optional
        Linkage method (see `pyannote.audio.pipelines.clustering.AgglomerativeClustering`).
        Defaults to "average".

    Returns
    -------
    clusters : (num_turns, ) np.ndarray
        Cluster index of each turn.
    """
    clustering = AgglomerativeClustering(metric="cosine")
    # with a given number of clusters, the threshold only sets where the
    # dendrogram search starts; every turn may be its own cluster
    clustering.instantiate({"method": method, "min_cluster_size": 1, "threshold": 0.5})
    num_speakers = max(1, min(num_speakers, len(embeddings)))
    return clustering.cluster(
        np.array(embeddings, dtype=np.float64),
        min_clusters=num_speakers,
        max_clusters=num_speakers,
        num_clusters=num_speakers,
    )


def cluster_turns_vbx(
    embeddings: np.ndarray,
    num_speakers: Optional[int],
    plda: PLDA,
    parameters: Optional[dict] = None,
) -> np.ndarray:
    """Cluster turn embeddings with pyannote's VBx clustering

    Each turn is a chunk of pyannote's pipeline with a single local speaker,
    always active: AHC initialises VBx on the PLDA-transformed embeddings.
    Given `num_speakers`, when VBx does not find that many clusters,
    pyannote re-clusters with k-means, as its pipeline does with a given
    number of speakers.

    Parameters
    ----------
    embeddings : (num_turns, dimension) np.ndarray
    num_speakers : int or None
        None: VBx decides the number of clusters.
    plda : pyannote.audio.core.plda.PLDA
        Fitted to the embedding space (:func:`~pyannote_embloss.pipelines.load_vbx_plda`).
    parameters : dict, optional
        VBx hyper-parameters ("threshold", "Fa", "Fb"). Defaults to
        :data:`~pyannote_embloss.pipelines.DEFAULT_VBX_CLUSTERING`.

    Returns
    -------
    clusters : (num_turns, ) np.ndarray
    """
    clustering = VBxClustering(plda, metric="cosine")
    clustering.instantiate(dict(parameters or DEFAULT_VBX_CLUSTERING))
    embeddings = np.array(embeddings, dtype=np.float64)
    if num_speakers is None:
        bounds = {"num_clusters": None, "min_clusters": 1, "max_clusters": len(embeddings)}
    else:
        num_speakers = max(1, min(num_speakers, len(embeddings)))
        bounds = {"num_clusters": num_speakers, "min_clusters": num_speakers, "max_clusters": num_speakers}
    active = SlidingWindowFeature(np.ones((len(embeddings), 1, 1)), SlidingWindow(start=0.0, duration=1.0, step=1.0))
    clusters, _, _ = clustering(embeddings[:, None, :], segmentations=active, **bounds)
    return clusters[:, 0]


def turn_embeddings(model: Model, file: dict) -> tuple[list, np.ndarray]:
    """Reference turns of `file` ((segment, track) pairs) and their embeddings (each turn whole)"""
    turns = list(file["annotation"].itertracks())
    model.eval()
    embeddings = [embed_waveform(model, load_audio(model.audio, str(file["audio"]), segment)) for segment, _ in turns]
    return turns, np.stack(embeddings) if embeddings else np.zeros((0, model.dimension))


def label_turns(file: dict, turns: list, clusters: np.ndarray) -> Annotation:
    """The turns of `file`, labelled "SPEAKER_00", "SPEAKER_01", ... by cluster"""
    hypothesis = Annotation(uri=file["uri"])
    for (segment, track), cluster in zip(turns, clusters):
        hypothesis[segment, track] = f"SPEAKER_{int(cluster):02d}"
    return hypothesis


def oracle_diarization(model: Model, file: dict, method: str = "average", plda: Optional[PLDA] = None) -> Annotation:
    """Diarization of `file` from its reference turns, labelled by clustering their embeddings

    Parameters
    ----------
    model : Model
        Embedding model.
    file : dict
        pyannote.database file with "uri", "audio" and "annotation" (reference).
    method : str, optional
        Linkage method of agglomerative clustering. Defaults to "average".
    plda : pyannote.audio.core.plda.PLDA, optional
        Cluster with VBx and this PLDA instead.

    Returns
    -------
    hypothesis : Annotation
        The reference turns, labelled "SPEAKER_00", "SPEAKER_01", ... by cluster.
    """
    turns, embeddings = turn_embeddings(model, file)
    if not turns:
        return Annotation(uri=file["uri"])
    num_speakers = len(file["annotation"].labels())
    if plda is None:
        clusters = cluster_turns(embeddings, num_speakers, method=method)
    else:
        clusters = cluster_turns_vbx(embeddings, num_speakers, plda)
    return label_turns(file, turns, clusters)


def oracle_der(
    model: Model,
    files: Optional[Iterable[dict]] = None,
    method: str = "average",
    collar: float = 0.0,
    skip_overlap: bool = False,
    plda: Optional[PLDA] = None,
) -> dict:
    """Diarization error rate of oracle turns clustered with the model's embeddings

    Parameters
    ----------
    model : Model
        Embedding model.
    files : iterable of dict, optional
        pyannote.database files with "uri", "audio", "annotation" and
        optionally "annotated". Defaults to pyannote.audio's bundled sample
        (sample.wav and sample.rttm: 30 s, 2 speakers).
    method : str, optional
        Linkage method. Defaults to "average".
    collar, skip_overlap : optional
        DiarizationErrorRate variant. Default to no collar, overlap scored.
    plda : pyannote.audio.core.plda.PLDA, optional
        Also cluster the same embeddings with VBx and this PLDA.

    Returns
    -------
    report : dict
        "der": DER of the turns clustered by AHC (over all files);
        "baseline_der": DER when all turns get the same label (one cluster);
        "confusion", "total": seconds of speaker confusion and of reference speech;
        "num_files", "num_turns", and "files": per-file DER and baseline DER.
        With `plda`, "vbx": {"der", "confusion"} of the turns clustered by
        VBx given the oracle number of speakers (k-means when VBx finds
        another number, as pyannote's pipeline), and "der_own" when VBx
        decides the number of speakers; each file has "der_vbx",
        "der_vbx_own" and "num_clusters_vbx_own".
    """
    from .segmentation import sample_file

    files = [sample_file()] if files is None else list(files)
    metric, baseline, vbx, vbx_own = (DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap) for _ in range(4))
    per_file, num_turns = [], 0
    for file in files:
        reference: Annotation = file["annotation"]
        uem = file.get("annotated")
        turns, embeddings = turn_embeddings(model, file)
        num_speakers = len(reference.labels())
        clusters = cluster_turns(embeddings, num_speakers, method=method) if turns else []
        num_turns += len(turns)
        report = {
            "uri": file["uri"],
            "num_speakers": num_speakers,
            "num_turns": len(turns),
            "der": float(metric(reference, label_turns(file, turns, clusters), uem=uem)),
            "baseline_der": float(baseline(reference, label_turns(file, turns, np.zeros(len(turns))), uem=uem)),
        }
        if plda is not None:
            clusters = cluster_turns_vbx(embeddings, num_speakers, plda) if turns else []
            report["der_vbx"] = float(vbx(reference, label_turns(file, turns, clusters), uem=uem))
            clusters = cluster_turns_vbx(embeddings, None, plda) if turns else []
            report["der_vbx_own"] = float(vbx_own(reference, label_turns(file, turns, clusters), uem=uem))
            report["num_clusters_vbx_own"] = len(set(clusters))
        per_file.append(report)
    report = {
        "der": float(abs(metric)),
        "baseline_der": float(abs(baseline)),
        "confusion": float(metric["confusion"]),
        "total": float(metric["total"]),
        "num_files": len(per_file),
        "num_turns": num_turns,
        "method": method,
        "files": per_file,
    }
    if plda is not None:
        report["vbx"] = {"der": float(abs(vbx)), "confusion": float(vbx["confusion"]), "der_own": float(abs(vbx_own))}
    return report


#: protocol whose test speakers make the synthetic conversations by default
CONVERSATIONS_PROTOCOL = "SpeechOcean762.SpeakerVerification.Default"


def oracle_der_report(
    experiment,
    reference=None,
    audio=None,
    conversations: int = 0,
    database=None,
    method: str = "average",
    output=None,
    plda=None,
    protocol: Optional[str] = None,
    checkpoint=None,
    trust_checkpoint: bool = False,
    rttm=None,
) -> dict:
    """:func:`oracle_der` of an experiment's embeddings on a reference, as ``pyannote-audio-emb oracle-der`` does

    Parameters
    ----------
    experiment : str, Path or Experiment
        Experiment (directory), or a checkpoint file.
    reference, audio : str or Path, optional
        Reference RTTM of a single file, and that file. Defaults to
        pyannote.audio's sample.
    conversations : int, optional
        Instead, that many synthetic 3-speaker conversations of the test
        speakers of `protocol`.
    database : str or Path, optional
        database.yml declaring `protocol`. Defaults to those pyannote.database loads.
    method : str, optional
        Linkage method.
    output : str or Path, optional
        Also write the report to this JSON file.
    plda : str or Path, optional
        PLDA directory fitted to the checkpoint's embeddings (exported by
        ``evaluate``): also report the DER of VBx clustering.
    protocol : str, optional
        With `conversations`: a speaker verification protocol. Defaults to
        :data:`CONVERSATIONS_PROTOCOL`.
    checkpoint : str or Path, optional
        With an experiment: the checkpoint to use (a file, or the name of one
        of the experiment's) instead of its best.
    trust_checkpoint : bool, optional
        Unpickle anything the checkpoint holds. Defaults to False.
    rttm : str or Path, optional
        Deprecated: `reference`.
    """
    import json
    import tempfile

    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm

    from ..errors import ConfigError, DataError, renamed_keyword
    from ..inference.loading import checkpoint_of, load_model
    from ..io import atomic_write_text
    from .diarization import load_vbx_plda
    from .segmentation import sample_file

    reference = renamed_keyword("rttm", rttm, "reference", reference)
    if protocol is not None and conversations <= 0:
        raise ConfigError("--protocol is for --conversations (the protocol whose test speakers talk).")
    workdir = tempfile.TemporaryDirectory()
    with workdir:
        if conversations > 0:
            if reference is not None:
                raise ConfigError("--conversations and --reference are exclusive: choose one.")
            from ..data.protocols import get_protocol
            from .conversations import make_conversations

            loaded = get_protocol(protocol or CONVERSATIONS_PROTOCOL, database_yml=database)
            utterances = [(f["annotation"].labels()[0], str(f["audio"])) for f in loaded.test()]
            files = make_conversations(utterances, workdir.name, num_conversations=conversations)
        elif reference is None:
            if audio is not None:
                raise ConfigError("--audio needs --reference (the RTTM of that audio file).")
            files = [sample_file()]
        else:
            if audio is None:
                raise ConfigError("--reference needs --audio (the audio file the RTTM annotates).")
            annotations = load_rttm(reference)
            if len(annotations) != 1:
                raise DataError(f"{reference} annotates {len(annotations)} uris: pass an RTTM of a single file.")
            ((uri, annotation),) = annotations.items()
            extent = annotation.get_timeline().extent()
            files = [{"uri": uri, "audio": str(audio), "annotation": annotation,
                      "annotated": Timeline([Segment(0.0, extent.end)], uri=uri)}]
        model = load_model(experiment, checkpoint, trust=trust_checkpoint)
        vbx_plda = None if plda is None else load_vbx_plda(plda, model.dimension)
        report = oracle_der(model, files, method=method, plda=vbx_plda)
    report["checkpoint"] = str(experiment if checkpoint is None else checkpoint_of(experiment, checkpoint))
    if plda is not None:
        report["plda"] = str(plda)
    if output is not None:
        atomic_write_text(output, json.dumps(report, indent=2) + "\n")
    return report
