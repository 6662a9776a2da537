"""pyannote.audio's speaker diarization pipeline, with a pyannote-embloss embedding

>>> from pyannote_embloss.pipelines import SpeakerDiarization
>>> pipeline = SpeakerDiarization(
...     embedding="experiments/aam/checkpoints/best.ckpt",
...     segmentation="/path/to/segmentation-3.0/pytorch_model.bin",
... )
>>> output = pipeline("audio.wav")          # or pipeline("audio.wav", num_speakers=2)
>>> for turn, _, speaker in output.speaker_diarization.itertracks(yield_label=True): ...

With the PLDA that ``pyannote-audio-emb evaluate`` fits on the training
speakers and exports (``EXP/results/<protocol>.plda/``), it clusters with
pyannote.audio's VBx instead:

>>> pipeline = SpeakerDiarization(embedding=..., segmentation=..., plda="experiments/aam/results/P.plda")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
from pyannote.audio.core.model import Model
from pyannote.audio.core.plda import PLDA
from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization as PyannoteSpeakerDiarization
from pyannote.audio.pipelines.utils import PipelineModel, get_model

from ..errors import ConfigError, DataError, MissingFileError, renamed_keyword
from ..evaluation.plda import PLDA as FittedPLDA
from ..inference.loading import load_model

#: clustering algorithms that need no PLDA (pyannote.audio.pipelines.clustering.Clustering)
CLUSTERINGS = ("AgglomerativeClustering", "KMeansClustering", "OracleClustering")

#: agglomerative clustering hyper-parameters used by default: average linkage
#: of cosine distances, cut at `threshold` (a cosine distance, in [0, 2]). 0.5 lies
#: between the median cosine distance of same-speaker turns (0.14) and of
#: different-speaker turns (1.07), measured with experiments/aam's checkpoint on
#: SpeechOcean762 conversations; tune it for other models and data.
DEFAULT_CLUSTERING = {"method": "average", "min_cluster_size": 12, "threshold": 0.5}

#: VBx clustering hyper-parameters used by default: pyannote.audio 4's
#: defaults (tuned for its own embedding; tune them for yours)
DEFAULT_VBX_CLUSTERING = {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}


class NoPLDA(PLDA):
    """What `SpeakerDiarization` passes as pyannote's mandatory `plda` argument without a PLDA

    pyannote.audio's pipeline always loads a PLDA (by default from the Hugging
    Face hub), but only VBx clustering uses it, and it must be fitted to the
    embedding space. Without one (clustering other than VBx), this
    placeholder holds no parameters and refuses to be used.
    """

    def __init__(self):
        self.lda_dimension = 0

    def __call__(self, embeddings: np.ndarray):
        raise RuntimeError(
            "No PLDA: use AgglomerativeClustering, or VBxClustering with the PLDA `pyannote-audio-emb evaluate` "
            "exports (SpeakerDiarization(..., plda=DIR))."
        )


def _embedding_model(embedding: Union[PipelineModel, os.PathLike]) -> Model:
    """Embedding Model from a Model, a checkpoint, an experiment directory or a get_model dict"""
    if isinstance(embedding, (str, os.PathLike)):
        return load_model(Path(embedding))
    return get_model(embedding)


def load_vbx_plda(directory: Union[str, os.PathLike], dimension: int) -> PLDA:
    """pyannote.audio's PLDA from a directory of ``xvec_transform.npz`` and ``plda.npz``, for `dimension`-d embeddings

    Raises
    ------
    MissingFileError
        When a file is missing.
    DataError
        When the files are not a PLDA, or one of embeddings of another dimension.
    """
    fitted = FittedPLDA.load(directory)
    if fitted.dimension != dimension:
        raise DataError(
            f"The PLDA in '{directory}' takes {fitted.dimension}-dimensional embeddings, not the "
            f"{dimension}-dimensional ones of this model: use the PLDA exported by evaluating this model."
        )
    return PLDA.from_pretrained(str(directory))


class SpeakerDiarization(PyannoteSpeakerDiarization):
    """pyannote.audio speaker diarization with a pyannote-embloss embedding

    The pipeline of pyannote.audio 4 (`pyannote.audio.pipelines.SpeakerDiarization`):
    local speaker segmentation on sliding windows, one embedding per (window,
    local speaker) pooled over that speaker's frames (SincTDNN accepts the
    frame weights), clustering of the embeddings, then reconstruction. The
    differences are

    * `embedding` is a checkpoint trained with ``pyannote-audio-emb train``
      (or an experiment directory, or a Model);
    * clustering is agglomerative (cosine) by default: VBx clustering, the
      default of pyannote.audio, needs a PLDA fitted to the embedding space
      (`plda`: the directory ``pyannote-audio-emb evaluate`` exports); none
      is downloaded;
    * nothing defaults to a model of the Hugging Face hub: `segmentation` is
      required;
    * it is instantiated with default hyper-parameters
      (:data:`DEFAULT_CLUSTERING`, :data:`DEFAULT_VBX_CLUSTERING`), so that it runs out of the box. Tune them
      for your data with ``pipeline.instantiate(...)`` or pyannote.pipeline's
      `Optimizer`, e.g. ``pipeline.instantiate({"segmentation": {"min_duration_off": 0.0},
      "clustering": {"method": "average", "min_cluster_size": 12, "threshold": 0.4}})``.

    Parameters
    ----------
    embedding : str, Path, Model or dict
        pyannote-embloss checkpoint (``.ckpt``) or experiment directory, or
        anything `pyannote.audio.pipelines.utils.get_model` accepts.
    segmentation : Model, str, Path or dict
        Speaker segmentation model, as `get_model` accepts it: a Model
        instance, the path of a local checkpoint (e.g. a downloaded copy of
        pyannote/segmentation-3.0's ``pytorch_model.bin``, or a ``.ckpt``), or
        ``{"checkpoint": ..., "map_location": ...}``. Without network access,
        :func:`pyannote_embloss.pipelines.train_segmentation` trains a small
        (demonstration) one offline.
    clustering : {"AgglomerativeClustering", "KMeansClustering", "OracleClustering", "VBxClustering"}, optional
        Defaults to "VBxClustering" with `plda`, else "AgglomerativeClustering".
        KMeans needs `num_speakers`, VBx `plda`.
    plda : str or Path, optional
        Directory of ``xvec_transform.npz`` and ``plda.npz`` fitted to the
        embedding (``EXP/results/<protocol>.plda/``, written by
        ``pyannote-audio-emb evaluate``), for VBx clustering.
    segmentation_step : float, optional
        Step of the segmentation sliding window, as a ratio of its duration.
        Defaults to 0.1.
    embedding_exclude_overlap : bool, optional
        Exclude overlapped speech from embeddings. Defaults to False.
    embedding_batch_size, segmentation_batch_size : int, optional
        Defaults to 32.
    der_variant : dict, optional
        Variant of the diarization error rate to optimize ("collar", "skip_overlap").
    legacy : bool, optional
        Return the diarization Annotation only (instead of pyannote's `DiarizeOutput`).
        Defaults to False.

    Usage
    -----
    >>> pipeline = SpeakerDiarization(embedding="best.ckpt", segmentation="segmentation.ckpt")
    >>> output = pipeline({"uri": "sample", "audio": "sample.wav"})
    >>> output.speaker_diarization   # pyannote.core.Annotation
    """

    def __init__(
        self,
        embedding: Union[PipelineModel, os.PathLike],
        segmentation: Union[PipelineModel, os.PathLike],
        clustering: Optional[str] = None,
        segmentation_step: float = 0.1,
        embedding_exclude_overlap: bool = False,
        embedding_batch_size: int = 32,
        segmentation_batch_size: int = 32,
        der_variant: Optional[dict] = None,
        legacy: bool = False,
        plda: Optional[Union[str, os.PathLike]] = None,
    ):
        if clustering is None:
            clustering = "AgglomerativeClustering" if plda is None else "VBxClustering"
        if clustering == "VBxClustering" and plda is None:
            raise ConfigError(
                "VBxClustering needs a PLDA fitted to the embedding space: pass plda=DIR (--plda DIR), the "
                "directory `pyannote-audio-emb evaluate` exports to EXP/results/<protocol>.plda/."
            )
        if clustering not in CLUSTERINGS + ("VBxClustering",):
            raise ConfigError(
                f"Unsupported clustering '{clustering}': use one of {', '.join(CLUSTERINGS)}, or VBxClustering with a PLDA."
            )
        if plda is not None and clustering != "VBxClustering":
            raise ConfigError(f"A PLDA is for VBxClustering only, not {clustering}.")
        if isinstance(segmentation, os.PathLike):
            segmentation = str(segmentation)
        if isinstance(segmentation, str) and Path(segmentation).suffix in (".ckpt", ".bin", ".pt") and not Path(
            segmentation
        ).expanduser().exists():
            raise MissingFileError(
                f"No segmentation checkpoint '{segmentation}': pass a local checkpoint (e.g. a copy of "
                "pyannote/segmentation-3.0's pytorch_model.bin), a Model, or train a small one with "
                "pyannote_embloss.pipelines.train_segmentation."
            )

        embedding = _embedding_model(embedding)
        super().__init__(
            legacy=legacy,
            segmentation=segmentation,
            segmentation_step=segmentation_step,
            embedding=embedding,
            embedding_exclude_overlap=embedding_exclude_overlap,
            plda=NoPLDA() if plda is None else load_vbx_plda(plda, embedding.dimension),
            clustering=clustering,
            embedding_batch_size=embedding_batch_size,
            segmentation_batch_size=segmentation_batch_size,
            der_variant=der_variant,
        )
        self.instantiate(self.default_parameters())

    def default_parameters(self) -> dict:
        """Hyper-parameters the pipeline is instantiated with"""
        segmentation = {"min_duration_off": 0.0}
        if not self._segmentation.model.specifications.powerset:
            segmentation["threshold"] = 0.5
        clustering = {"AgglomerativeClustering": DEFAULT_CLUSTERING, "VBxClustering": DEFAULT_VBX_CLUSTERING}
        clustering = dict(clustering.get(self.klustering, {}))
        return {"segmentation": segmentation, "clustering": clustering}


def diarize(
    experiment,
    audio,
    segmentation,
    num_speakers: Optional[int] = None,
    output=None,
    plda=None,
    checkpoint=None,
    trust_checkpoint: bool = False,
    rttm=None,
):
    """Speaker diarization of one audio file, as ``pyannote-audio-emb diarize`` does

    Parameters
    ----------
    experiment : str, Path or Experiment
        Experiment (directory), or an embedding checkpoint file.
    audio : str or Path
        Audio file.
    segmentation : str or Path
        Segmentation checkpoint.
    num_speakers : int, optional
    output : str or Path, optional
        Also write the diarization to this RTTM file (atomically).
    plda : str or Path, optional
        PLDA directory fitted to the embedding: cluster with VBx (else
        agglomerative clustering).
    checkpoint : str or Path, optional
        With an experiment: the checkpoint to use (a file, or the name of one
        of the experiment's, see :meth:`Experiment.checkpoint`) instead of its best.
    trust_checkpoint : bool, optional
        Unpickle anything the checkpoint holds (see :func:`load_model`). Defaults to False.
    rttm : str or Path, optional
        Deprecated: `output`.

    Returns
    -------
    diarization : pyannote.core.Annotation
    """

    from ..io import atomic_path

    output = renamed_keyword("rttm", rttm, "output", output)
    audio = Path(audio)
    if not audio.is_file():
        raise MissingFileError(f"Audio file '{audio}' does not exist.")
    embedding = load_model(experiment, checkpoint, trust=trust_checkpoint)
    pipeline = SpeakerDiarization(embedding=embedding, segmentation=segmentation, plda=plda)
    diarization = pipeline({"uri": audio.stem, "audio": str(audio)}, num_speakers=num_speakers).speaker_diarization
    if output is not None:
        with atomic_path(output) as tmp, open(tmp, "w") as f:
            diarization.write_rttm(f)
    return diarization
