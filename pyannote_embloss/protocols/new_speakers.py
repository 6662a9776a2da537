"""SpeechOcean762.SpeakerVerification.NewSpeakers: fine-tune on speakers never seen

The test speakers of ``SpeechOcean762.SpeakerVerification.Default`` (100
official test speakers, never used for training nor model selection there)
are split by utterance:

- train: the first `num_train_utterances` (6) utterances of each speaker,
  sorted by uri, to fine-tune a pretrained model on these new speakers;
- test: their other utterances (4 each), with every target trial and as
  many non-target trials (as in the Default protocol).

There is no development subset: fine-tuning keeps the last epoch.

    from pyannote_embloss.protocols.new_speakers import PROTOCOL, prepare_new_speakers
    database_yml = prepare_new_speakers()  # data/speechocean762-new-speakers/database.yml
    pyannote-audio-emb train experiments/finetune SpeechOcean762.SpeakerVerification.NewSpeakers \
        --database data/speechocean762-new-speakers/database.yml --pretrained experiments/aam/checkpoints/best.ckpt
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import yaml

from .speechocean762 import (
    AUDIO_DIR,
    REPO_ROOT,
    DATABASE,
    NUM_DEVELOPMENT_SPEAKERS,
    SEED,
    TASK,
    PathLike,
    Utterance,
    _escape,
    _lst,
    _rttm,
    _trial,
    _uem,
    _write,
    audio_duration,
    find_corpus,
    make_subsets,
    make_trials,
    read_corpus,
    seconds,
)

NAME = "NewSpeakers"
PROTOCOL = f"{DATABASE}.{TASK}.{NAME}"
NUM_TRAIN_UTTERANCES = 6


def split_utterances(utterances: List[Utterance], num_train: int) -> Dict[str, List[Utterance]]:
    """Split each speaker's utterances (sorted by uri) into train and test

    Parameters
    ----------
    utterances : list of Utterance
    num_train : int
        Number of training utterances per speaker; the others are for test.

    Returns
    -------
    subsets : dict
        {"train": [...], "test": [...]}, sorted by uri.

    Raises
    ------
    ValueError
        When a speaker has fewer than `num_train` + 2 utterances (a test
        target trial needs two).
    """
    by_speaker: Dict[str, List[Utterance]] = {}
    for utterance in sorted(utterances, key=lambda u: u.uri):
        by_speaker.setdefault(utterance.speaker, []).append(utterance)
    too_few = sorted(s for s, u in by_speaker.items() if len(u) < num_train + 2)
    if too_few:
        raise ValueError(
            f"Speakers {', '.join(too_few[:5])} have fewer than {num_train + 2} utterances: "
            f"lower num_train_utterances (got {num_train})."
        )
    return {
        "train": sorted((u for us in by_speaker.values() for u in us[:num_train]), key=lambda u: u.uri),
        "test": sorted((u for us in by_speaker.values() for u in us[num_train:]), key=lambda u: u.uri),
    }


def prepare_new_speakers(
    root: Optional[PathLike] = None,
    output_dir: Optional[PathLike] = None,
    num_train_utterances: int = NUM_TRAIN_UTTERANCES,
    num_development_speakers: int = NUM_DEVELOPMENT_SPEAKERS,
    seed: int = SEED,
    max_speakers: Optional[int] = None,
) -> Path:
    """Write the SpeechOcean762.SpeakerVerification.NewSpeakers protocol files

    Parameters
    ----------
    root : str or Path, optional
        Corpus root. Defaults to `find_corpus` lookup.
    output_dir : str or Path, optional
        Where to write database.yml, {train,test}.{lst,rttm,uem} and test.trial.
        Defaults to data/speechocean762-new-speakers in the repository (git-ignored).
    num_train_utterances : int, optional
        Training utterances per speaker. Defaults to 6 (of 10).
    num_development_speakers, seed : int, optional
        Those of the Default protocol, whose test speakers are used (see
        `pyannote_embloss.protocols.speechocean762.prepare`).
    max_speakers : int, optional
        Only use the first `max_speakers` new speakers (sorted), e.g. for a
        quicker experiment. Defaults to all (100).

    Returns
    -------
    database_yml : Path
        Load the protocol with ``get_protocol(PROTOCOL, database_yml=...)``.
    """
    corpus = find_corpus(root)
    train, test, extension = read_corpus(corpus)
    new_speakers = make_subsets(train, test, num_development_speakers, seed)["test"]
    if max_speakers is not None:
        kept = set(sorted({u.speaker for u in new_speakers})[:max_speakers])
        new_speakers = [u for u in new_speakers if u.speaker in kept]
    subsets = split_utterances(new_speakers, num_train_utterances)
    durations = {u.uri: seconds(audio_duration(u.path)) for u in new_speakers}

    output_dir = Path(output_dir or REPO_ROOT / "data" / "speechocean762-new-speakers").expanduser().absolute()
    output_dir.mkdir(parents=True, exist_ok=True)
    entries: dict = {"scope": "global"}
    for subset, utterances in subsets.items():
        _write(output_dir / f"{subset}.lst", _lst(utterances))
        _write(output_dir / f"{subset}.rttm", _rttm(utterances, durations))
        _write(output_dir / f"{subset}.uem", _uem(utterances, durations))
        entries[subset] = {
            "uri": f"{output_dir}/{subset}.lst",
            "annotation": f"{output_dir}/{subset}.rttm",
            "annotated": f"{output_dir}/{subset}.uem",
        }
    trials = make_trials(subsets["test"], seed=f"{seed}:{NAME}:trials")
    _write(output_dir / "test.trial", _trial(trials))
    entries["test"]["trial"] = f"{output_dir}/test.trial"

    config = {
        "Databases": {DATABASE: f"{_escape(corpus / AUDIO_DIR)}/{{uri}}{extension}"},
        "Protocols": {DATABASE: {TASK: {NAME: entries}}},
    }
    header = (
        "# Generated by pyannote_embloss.protocols.new_speakers.prepare_new_speakers from the corpus in\n"
        f"# {corpus}\n"
    )
    yml = output_dir / "database.yml"
    _write(yml, header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False))
    return yml


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(prepare_new_speakers(output_dir=sys.argv[1]) if len(sys.argv) > 1 else prepare_new_speakers())
