"""torch.hub entry point of pyannote-embloss

>>> import torch
>>> model = torch.hub.load("/path/to/pyannote-embloss", "emb", source="local",
...                        checkpoint="experiments/aam/checkpoints/best.ckpt")
>>> embeddings = model({"audio": "/path/to/audio.wav"})

`pyannote_embloss` must be installed (``pip install -e .``) in the environment.
"""

dependencies = ["torch", "pyannote.audio"]


def emb(checkpoint, **kwargs):
    """Speaker embedding trained with pyannote-embloss: see :func:`pyannote_embloss.load`

    Parameters
    ----------
    checkpoint : str or Path
        Checkpoint (``.ckpt``) written by ``pyannote-audio-emb train``, or an
        experiment directory (its ``checkpoints/best.ckpt``).
    **kwargs
        window ("sliding" or "whole"), duration, step, device, batch_size, trust_checkpoint.
    """
    # importing pyannote_embloss first turns pyannote.audio telemetry off by default
    import pyannote_embloss

    return pyannote_embloss.load(checkpoint, **kwargs)
