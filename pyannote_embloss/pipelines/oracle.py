"""How good are the embeddings for diarization? Oracle speech turns, clustered

Given reference speech turns (oracle segmentation, oracle number of
speakers), each turn is embedded whole with the plugin's model, turns are
clustered with pyannote.audio's agglomerative clustering (cosine distance),
and the resulting diarization is scored with pyannote.metrics'
`DiarizationErrorRate`. Segmentation errors are thus out of the picture: the
error left is speaker confusion caused by the embeddings (and by overlapping
speech, which a single label per turn cannot always fix).

    pyannote-audio-emb oracle-der CHECKPOINT             # pyannote's sample.wav
    pyannote-audio-emb oracle-der CHECKPOINT --rttm R --audio A
    pyannote-audio-emb oracle-der CHECKPOINT --conversations 6 [--database YML]
        # synthetic conversations of SpeechOcean762 test speakers (in-domain)
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np
from pyannote.audio.core.model import Model
from pyannote.audio.pipelines.clustering import AgglomerativeClustering
from pyannote.core import Annotation
from pyannote.metrics.diarization import DiarizationErrorRate

from ..audio import load_audio
from ..embedding import embed_waveform


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


def oracle_diarization(model: Model, file: dict, method: str = "average") -> Annotation:
    """Diarization of `file` from its reference turns, labelled by clustering their embeddings

    Parameters
    ----------
    model : Model
        Embedding model.
    file : dict
        pyannote.database file with "uri", "audio" and "annotation" (reference).
    method : str, optional
        Linkage method. Defaults to "average".

    Returns
    -------
    hypothesis : Annotation
        The reference turns, labelled "SPEAKER_00", "SPEAKER_01", ... by cluster.
    """
    reference: Annotation = file["annotation"]
    turns = list(reference.itertracks())
    hypothesis = Annotation(uri=file["uri"])
    if not turns:
        return hypothesis
    model.eval()
    embeddings = np.stack(
        [embed_waveform(model, load_audio(model.audio, str(file["audio"]), segment)) for segment, _ in turns]
    )
    clusters = cluster_turns(embeddings, len(reference.labels()), method=method)
    for (segment, track), cluster in zip(turns, clusters):
        hypothesis[segment, track] = f"SPEAKER_{int(cluster):02d}"
    return hypothesis


def oracle_der(
    model: Model,
    files: Optional[Iterable[dict]] = None,
    method: str = "average",
    collar: float = 0.0,
    skip_overlap: bool = False,
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

    Returns
    -------
    report : dict
        "der": DER of the clustered turns (over all files);
        "baseline_der": DER when all turns get the same label (one cluster);
        "confusion", "total": seconds of speaker confusion and of reference speech;
        "num_files", "num_turns", and "files": per-file DER and baseline DER.
    """
    from .segmentation import sample_file

    files = [sample_file()] if files is None else list(files)
    model.eval()
    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    baseline = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    per_file, num_turns = [], 0
    for file in files:
        reference: Annotation = file["annotation"]
        uem = file.get("annotated")
        hypothesis = oracle_diarization(model, file, method=method)
        single = hypothesis.rename_labels(mapping={label: "SPEAKER_00" for label in hypothesis.labels()})
        num_turns += len(hypothesis)
        per_file.append(
            {
                "uri": file["uri"],
                "num_speakers": len(reference.labels()),
                "num_turns": len(hypothesis),
                "der": float(metric(reference, hypothesis, uem=uem)),
                "baseline_der": float(baseline(reference, single, uem=uem)),
            }
        )
    return {
        "der": float(abs(metric)),
        "baseline_der": float(abs(baseline)),
        "confusion": float(metric["confusion"]),
        "total": float(metric["total"]),
        "num_files": len(per_file),
        "num_turns": num_turns,
        "method": method,
        "files": per_file,
    }


def oracle_der_report(
    checkpoint,
    rttm=None,
    audio=None,
    conversations: int = 0,
    database=None,
    method: str = "average",
    output=None,
) -> dict:
    """:func:`oracle_der` of a checkpoint on a reference, as ``pyannote-audio-emb oracle-der`` does

    Parameters
    ----------
    checkpoint : str or Path
        Checkpoint or experiment directory.
    rttm, audio : str or Path, optional
        Reference RTTM of a single file, and that file. Defaults to
        pyannote.audio's sample.
    conversations : int, optional
        Instead, that many synthetic 3-speaker conversations of
        SpeechOcean762 test speakers (`database`: its database.yml).
    method : str, optional
        Linkage method.
    output : str or Path, optional
        Also write the report to this JSON file.
    """
    import json
    import tempfile

    from pyannote.core import Segment, Timeline
    from pyannote.database.util import load_rttm

    from ..errors import ConfigError, DataError
    from ..inference import load_model
    from ..io import atomic_write_text
    from .segmentation import sample_file

    workdir = tempfile.TemporaryDirectory()
    with workdir:
        if conversations > 0:
            if rttm is not None:
                raise ConfigError("--conversations and --rttm are exclusive: choose one.")
            from ..protocols import get_protocol
            from .conversations import make_conversations

            protocol = get_protocol("SpeechOcean762.SpeakerVerification.Default", database_yml=database)
            utterances = [(f["annotation"].labels()[0], str(f["audio"])) for f in protocol.test()]
            files = make_conversations(utterances, workdir.name, num_conversations=conversations)
        elif rttm is None:
            if audio is not None:
                raise ConfigError("--audio needs --rttm (the reference of that audio file).")
            files = [sample_file()]
        else:
            if audio is None:
                raise ConfigError("--rttm needs --audio (the audio file the RTTM annotates).")
            annotations = load_rttm(rttm)
            if len(annotations) != 1:
                raise DataError(f"{rttm} annotates {len(annotations)} uris: pass an RTTM of a single file.")
            ((uri, annotation),) = annotations.items()
            extent = annotation.get_timeline().extent()
            files = [{"uri": uri, "audio": str(audio), "annotation": annotation,
                      "annotated": Timeline([Segment(0.0, extent.end)], uri=uri)}]
        report = oracle_der(load_model(checkpoint), files, method=method)
    report["checkpoint"] = str(checkpoint)
    if output is not None:
        atomic_write_text(output, json.dumps(report, indent=2) + "\n")
    return report
