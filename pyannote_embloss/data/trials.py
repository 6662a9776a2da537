"""Verification trials: the one :class:`Trial` type, and where trials are drawn

Every trial list is a list of :class:`Trial`: those a protocol writer draws
(:func:`pyannote_embloss.data.protocols.writer.make_trials`), a corpus' own
(VoxCeleb1's, a Kaldi directory's ``trials``), and the user's lists that
``score`` reads (:class:`pyannote_embloss.evaluation.trial_list.TrialList`).

Trials drawn from labelled items: target pairs, and as many non-target pairs.
The one place where trials are made up: protocol writers draw them over the
files of a subset (:func:`pyannote_embloss.data.protocols.writer.make_trials`),
and :meth:`pyannote_embloss.evaluation.trials.Trials.from_turns` over the
speech turns of a diarization protocol.

>>> draw_pairs(labels=["A", "A", "B", "B"], seed=0)   # (reference, i, j), i < j
[(1, 0, 1), (1, 2, 3), (0, 1, 3), (0, 1, 2)]           # 1: same label; non-targets drawn with the seed
"""

from __future__ import annotations

import itertools
import random
from math import comb
from typing import Dict, Hashable, List, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import DataError

__all__ = ["Trial", "draw_pairs", "Pair"]


class Trial(NamedTuple):
    """One verification trial: two utterances and whether they share a speaker

    Attributes
    ----------
    reference : int or None
        1 (same speaker), 0 (different speakers) or None (unknown).
    first, second : str
        The two utterances: uris in a protocol, keys in a corpus' own list,
        audio paths in a list to score.
    """

    reference: Optional[int]
    first: str
    second: str

#: (reference, i, j): reference is 1 when items i and j share their label, 0 otherwise; i < j
Pair = Tuple[int, int, int]


def _target_pairs(by_label: Dict[Hashable, List[int]], num: Optional[int], rng: random.Random) -> List[Tuple[int, int]]:
    """Every same-label pair, or `num` of them drawn at random (without listing them all)"""
    total = sum(comb(len(items), 2) for items in by_label.values())
    if num is None or num >= total:
        return [pair for items in by_label.values() for pair in itertools.combinations(items, 2)]
    groups = [items for items in by_label.values() if len(items) > 1]
    weights = [comb(len(items), 2) for items in groups]
    chosen = set()
    while len(chosen) < num:
        items = rng.choices(groups, weights=weights)[0]
        i, j = sorted(rng.sample(items, 2))
        chosen.add((i, j))
    return sorted(chosen)


def draw_pairs(
    labels: Sequence[Hashable],
    seed: Union[int, str],
    groups: Optional[Sequence[Hashable]] = None,
    max_trials: Optional[int] = None,
) -> List[Pair]:
    """Target pairs (same label), and as many random non-target pairs

    Parameters
    ----------
    labels : sequence
        Label (speaker) of each item.
    seed : int or str
        Seed of the random draws.
    groups : sequence, optional
        Group of each item (e.g. its file, for labels that are only meaningful
        within a file): pairs never cross groups. Defaults to a single group.
    max_trials : int, optional
        At most this many trials: every target pair while there are at most
        `max_trials` // 2 of them, else that many drawn at random. Defaults to
        no limit.

    Returns
    -------
    pairs : list of (reference, i, j)
        Target pairs first, in the order of the items, then non-target pairs
        in the order they were drawn. No pair twice; i < j.

    Raises
    ------
    DataError
        When there is no target pair (every label has a single item) or no
        non-target pair (a single label per group).

    Notes
    -----
    When fewer non-target pairs exist than target pairs, targets are drawn
    down to that number, so that the trials stay balanced.
    """
    num_items = len(labels)
    groups = [None] * num_items if groups is None else list(groups)
    by_label: Dict[Hashable, List[int]] = {}
    by_group: Dict[Hashable, List[int]] = {}
    for i, (label, group) in enumerate(zip(labels, groups)):
        by_label.setdefault((group, label), []).append(i)
        by_group.setdefault(group, []).append(i)
    num_targets = sum(comb(len(items), 2) for items in by_label.values())
    num_non_targets = sum(comb(len(items), 2) for items in by_group.values()) - num_targets
    if num_targets == 0:
        raise DataError(
            f"Cannot make target trials: none of the {len(by_label)} speakers has two utterances"
            + (" in a file." if len(by_group) > 1 else ".")
        )
    if num_non_targets == 0:
        raise DataError(
            f"Cannot draw non-target trials among {len(by_label)} speaker(s)"
            + (" (a single speaker in each file)" if len(by_group) > 1 else "")
            + ": use more speakers."
        )

    rng = random.Random(seed)
    wanted = min(num_targets, num_non_targets)
    if max_trials is not None:
        wanted = min(wanted, max(1, max_trials // 2))
    targets = _target_pairs(by_label, None if wanted == num_targets else wanted, rng)

    non_targets = set()
    if wanted == num_non_targets:  # all of them
        for items in by_group.values():
            non_targets.update(
                (i, j) for i, j in itertools.combinations(items, 2) if labels[i] != labels[j]
            )
        ordered = sorted(non_targets)
    else:
        ordered = []
        mixed = [items for items in by_group.values() if len({labels[i] for i in items}) > 1]
        weights = [comb(len(items), 2) for items in mixed]
        single = len(mixed) == 1
        while len(non_targets) < wanted:
            items = mixed[0] if single else rng.choices(mixed, weights=weights)[0]
            i, j = sorted(rng.sample(items, 2))
            if labels[i] != labels[j] and (i, j) not in non_targets:
                non_targets.add((i, j))
                ordered.append((i, j))
    return [(1, i, j) for i, j in targets] + [(0, i, j) for i, j in ordered]
