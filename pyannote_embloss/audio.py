"""Audio loading with errors that name the file"""

from __future__ import annotations

from typing import Optional

import torch
from pyannote.audio.core.io import Audio
from pyannote.core import Segment


class AudioDecodingError(RuntimeError):
    """An audio file could not be read or decoded"""


def load_audio(
    audio: Audio,
    path: str,
    segment: Optional[Segment] = None,
    num_samples: Optional[int] = None,
) -> torch.Tensor:
    """Load a whole file, or an excerpt, as a (channel, sample) tensor

    Parameters
    ----------
    audio : pyannote.audio.core.io.Audio
        Audio reader (sets sample rate and downmixing).
    path : str
        Path to the audio file.
    segment : Segment, optional
        Excerpt to load. Defaults to the whole file.
    num_samples : int, optional
        Exact number of samples expected for `segment`; the excerpt is
        zero-padded or truncated to that size (avoids off-by-one chunk sizes).

    Returns
    -------
    waveform : (channel, sample) torch.Tensor

    Raises
    ------
    AudioDecodingError
        When the file is missing or cannot be decoded, naming the file.
    """
    try:
        if segment is None:
            waveform, _ = audio({"audio": path})
        else:
            waveform, _ = audio.crop({"audio": path}, segment, mode="pad")
    except Exception as e:
        raise AudioDecodingError(
            f"Could not decode audio file '{path}' ({type(e).__name__}: {e}). "
            "Check that the file exists and is a valid audio file (FFmpeg must be able to read it), "
            "or remove it from the protocol."
        ) from e

    if waveform.shape[-1] == 0:
        raise AudioDecodingError(f"Audio file '{path}' is empty (0 samples).")

    if num_samples is not None and waveform.shape[1] != num_samples:
        if waveform.shape[1] > num_samples:
            waveform = waveform[:, :num_samples]
        else:
            waveform = torch.nn.functional.pad(
                waveform, (0, num_samples - waveform.shape[1])
            )
    return waveform
