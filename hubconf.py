"""torch.hub entry point of pyannote-embloss

>>> import torch
>>> model = torch.hub.load("/path/to/pyannote-embloss", "emb", source="local",
...                        checkpoint="experiments/aam/checkpoints/best.ckpt")
>>> embeddings = model({"audio": "/path/to/audio.wav"})

`pyannote_embloss` must be installed (``pip install -e .``) in the environment.
"""

dependencies = ["torch", "pyannote.audio"]


def emb(checkpoint, window="sliding", duration=None, step=None, device=None, batch_size=32):
    """Speaker embedding trained with pyannote-embloss

    Parameters
    ----------
    checkpoint : str or Path
        Checkpoint (``.ckpt``) written by ``pyannote-audio-emb train``, or an
        experiment directory (its ``checkpoints/best.ckpt``).
    window : {"sliding", "whole"}, optional
        "sliding" (default): one embedding per window, as a SlidingWindowFeature;
        "whole": one embedding per file.
    duration, step : float, optional
        Sliding window duration and step, in seconds. Default to the
        checkpoint's training chunk duration, and a quarter of it.
    device : str or torch.device, optional
        Defaults to CPU.
    batch_size : int, optional
        Number of windows embedded at once. Defaults to 32.

    Returns
    -------
    model : pyannote_embloss.inference.SpeakerEmbedding
        ``model(file)`` embeds a whole file, ``model.crop(file, segment)`` an excerpt.
    """
    # importing pyannote_embloss first turns pyannote.audio telemetry off by default
    import pyannote_embloss

    return pyannote_embloss.load(
        checkpoint, window=window, duration=duration, step=step, device=device, batch_size=batch_size
    )
