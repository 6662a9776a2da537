"""Inference: trained models in use

* :mod:`.loading`: the one model-loading module (checkpoints, experiments, pyannote.audio models);
* :mod:`.embedding`: the one extraction path (whole files, windows, long audio, batches);
* :mod:`.cache`: the embedding cache shared by every command that embeds;
* :mod:`.pretrained`: :func:`~.pretrained.load`, the callable speaker embedding of the quick usage;
* :mod:`.apply`: embeddings of a protocol's files or a folder, to .npy files;
* :mod:`.export`: ONNX export.
"""


def __getattr__(name):
    if name in ("load", "SpeakerEmbedding"):
        from . import pretrained

        return getattr(pretrained, name)
    raise AttributeError(name)
