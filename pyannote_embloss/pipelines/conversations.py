"""Synthetic conversations: utterances of a few speakers, concatenated

A speaker-verification corpus has one speaker per file; diarization needs
several per file. :func:`make_conversations` concatenates utterances of
`num_speakers` speakers (taking turns, separated by short silences) into
conversations with a reference RTTM, for :func:`pyannote_embloss.pipelines.oracle_der`
in the domain the embeddings were trained on (e.g. SpeechOcean762 test
speakers, never seen in training).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from pyannote.audio.core.io import Audio
from pyannote.core import Annotation, Segment, Timeline

from ..data.audio import load_audio
from ..errors import DataError
from ..io import PathLike, atomic_path, atomic_write_text


def make_conversations(
    utterances: Sequence[Tuple[str, str]],
    output_dir: PathLike,
    num_conversations: int = 4,
    num_speakers: int = 3,
    turns_per_speaker: int = 3,
    silence: float = 0.3,
    seed: int = 0,
    sample_rate: int = 16000,
) -> List[dict]:
    """Write conversations made of utterances of different speakers

    Parameters
    ----------
    utterances : sequence of (speaker, audio path)
        Single-speaker utterances to draw from.
    output_dir : str or Path
        Where to write ``conversationN.wav`` and ``conversationN.rttm``.
    num_conversations : int, optional
        Defaults to 4.
    num_speakers : int, optional
        Speakers per conversation (drawn without replacement). Defaults to 3.
    turns_per_speaker : int, optional
        Utterances per speaker and conversation. Defaults to 3.
    silence : float, optional
        Silence between turns, in seconds. Defaults to 0.3.
    seed : int, optional
    sample_rate : int, optional
        Defaults to 16 kHz.

    Returns
    -------
    files : list of dict
        pyannote.database files: {"uri", "audio", "annotation", "annotated"}.
        Turns are shuffled, so that a speaker may speak twice in a row.

    Raises
    ------
    ValueError
        When there are not enough speakers or utterances per speaker.
    """
    from scipy.io import wavfile

    by_speaker: Dict[str, List[str]] = {}
    for speaker, path in utterances:
        by_speaker.setdefault(speaker, []).append(str(path))
    eligible = sorted(s for s, paths in by_speaker.items() if len(paths) >= turns_per_speaker)
    if len(eligible) < num_speakers:
        raise DataError(
            f"Cannot make {num_speakers}-speaker conversations: only {len(eligible)} speakers have "
            f"at least {turns_per_speaker} utterances."
        )

    rng = random.Random(seed)
    audio = Audio(sample_rate=sample_rate, mono="downmix")
    gap = torch.zeros(1, round(silence * sample_rate))
    output_dir = Path(output_dir)
    files = []
    for c in range(num_conversations):
        uri = f"conversation{c}"
        speakers = rng.sample(eligible, num_speakers)
        turns = [(s, p) for s in speakers for p in rng.sample(by_speaker[s], turns_per_speaker)]
        rng.shuffle(turns)

        pieces, annotation, t = [], Annotation(uri=uri), 0.0
        for speaker, path in turns:
            waveform = load_audio(audio, path)
            duration = waveform.shape[-1] / sample_rate
            annotation[Segment(t, t + duration)] = speaker
            pieces.extend([waveform, gap])
            t += duration + silence
        waveform = torch.cat(pieces, dim=1)[0].numpy()

        wav = output_dir / f"{uri}.wav"
        with atomic_path(wav) as tmp:
            wavfile.write(tmp, sample_rate, (np.clip(waveform, -1, 1) * 32767).astype(np.int16))
        atomic_write_text(output_dir / f"{uri}.rttm", annotation.to_rttm())
        files.append(
            {
                "uri": uri,
                "audio": str(wav),
                "annotation": annotation,
                "annotated": Timeline([Segment(0.0, waveform.shape[-1] / sample_rate)], uri=uri),
            }
        )
    return files
