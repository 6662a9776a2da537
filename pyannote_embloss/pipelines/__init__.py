"""pyannote.audio pipelines with pyannote-embloss embeddings

- :class:`SpeakerDiarization`: pyannote.audio's speaker diarization pipeline
  with a pyannote-embloss checkpoint as embedding, agglomerative clustering,
  or VBx clustering with the PLDA ``evaluate`` exports, instantiated with
  default hyper-parameters.
- :func:`train_segmentation`: trains a small PyanNet segmentation model
  offline (by default on pyannote.audio's bundled sample), for machines that
  cannot download pyannote/segmentation-3.0.
- :func:`oracle_der`: diarization error rate of reference speech turns
  clustered with the embeddings (how good the embeddings are for diarization),
  by agglomerative clustering and, with a PLDA, by VBx.

Command line::

    pyannote-audio-emb oracle-der EXP [--reference R --audio A | --conversations N] [--plda DIR] [-o REPORT.json]
    pyannote-audio-emb train-segmentation -o OUTPUT.ckpt
    pyannote-audio-emb diarize EXP AUDIO --segmentation S [--plda DIR] [-o OUT.rttm]

(EXP: an experiment directory, `--checkpoint` choosing one of its
checkpoints, or a checkpoint file.)
"""

from .diarization import DEFAULT_CLUSTERING, DEFAULT_VBX_CLUSTERING, NoPLDA, SpeakerDiarization, load_vbx_plda
from .oracle import cluster_turns, cluster_turns_vbx, oracle_der, oracle_diarization
from .segmentation import SAMPLE_PROTOCOL, sample_file, sample_protocol, train_segmentation

__all__ = [
    "DEFAULT_CLUSTERING",
    "DEFAULT_VBX_CLUSTERING",
    "NoPLDA",
    "SAMPLE_PROTOCOL",
    "SpeakerDiarization",
    "cluster_turns",
    "cluster_turns_vbx",
    "load_vbx_plda",
    "oracle_der",
    "oracle_diarization",
    "sample_file",
    "sample_protocol",
    "train_segmentation",
]
