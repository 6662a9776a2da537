"""Trials drawn from labelled items: every target pair up to a cap, as many non-target pairs"""

from collections import Counter

import pytest

from pyannote_embloss.errors import DataError
from pyannote_embloss.data.trials import draw_pairs


def test_every_target_pair_and_as_many_non_target_pairs():
    labels = [s for s in "AABBBCCCC"]
    pairs = draw_pairs(labels, seed=0)
    targets = {(i, j) for r, i, j in pairs if r}
    assert targets == {(i, j) for i in range(9) for j in range(i + 1, 9) if labels[i] == labels[j]}
    assert Counter(r for r, _, _ in pairs) == {1: 10, 0: 10}
    assert all(labels[i] != labels[j] for r, i, j in pairs if not r)
    assert len({(i, j) for _, i, j in pairs}) == len(pairs) and all(i < j for _, i, j in pairs)
    assert draw_pairs(labels, seed=0) == pairs and draw_pairs(labels, seed=1) != pairs


def test_cap_groups_and_balance():
    labels = [i % 20 for i in range(400)]  # 20 speakers x 20 items: 3,800 target pairs
    pairs = draw_pairs(labels, seed=0, max_trials=1000)
    assert Counter(r for r, _, _ in pairs) == {1: 500, 0: 500}
    assert all((labels[i] == labels[j]) == bool(r) for r, i, j in pairs)
    # groups (e.g. files): pairs never cross them
    groups = [i // 10 for i in range(40)]
    labels = [(i // 5) % 2 for i in range(40)]
    pairs = draw_pairs(labels, seed=0, groups=groups)
    assert all(groups[i] == groups[j] for _, i, j in pairs)
    # more target than non-target pairs: targets drawn down to stay balanced
    pairs = draw_pairs(["A"] * 10 + ["B"], seed=0)
    assert Counter(r for r, _, _ in pairs) == {1: 10, 0: 10}


def test_no_pair_to_draw():
    with pytest.raises(DataError, match="none of the 3 speakers has two utterances"):
        draw_pairs(["A", "B", "C"], seed=0)
    with pytest.raises(DataError, match="non-target"):
        draw_pairs(["A", "A"], seed=0)
    with pytest.raises(DataError, match="a single speaker in each file"):
        draw_pairs(["A", "A", "B", "B"], seed=0, groups=[0, 0, 1, 1])
