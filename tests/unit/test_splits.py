"""Splits: deterministic, stratified by class, train never empty."""
from collections import Counter

import pytest

from synthfarm.addon.core.dataset.splits import assign_splits, split_sizes


def test_sizes_keep_a_training_frame():
    assert split_sizes(1, 0.2) == {"train": 1, "val": 0, "test": 0}
    assert split_sizes(1, 1.0) == {"train": 1, "val": 0, "test": 0}
    assert split_sizes(2, 0.5) == {"train": 1, "val": 1, "test": 0}
    assert split_sizes(10, 0.2, 0.1) == {"train": 7, "val": 2, "test": 1}
    assert split_sizes(0, 0.2) == {"train": 0, "val": 0, "test": 0}
    with pytest.raises(ValueError, match="add up to at most 1"):
        split_sizes(10, 0.7, 0.5)


def test_deterministic_and_independent_of_listing_order():
    frames = {f"{i:010d}-0000-cam": {"a"} if i % 3 else {"b"} for i in range(50)}
    first = assign_splits(frames, 0.2, 0.1)
    again = assign_splits(dict(reversed(list(frames.items()))), 0.2, 0.1)
    assert first == again
    assert Counter(first.values()) == {"train": 35, "val": 10, "test": 5}


def test_stratified_by_class():
    # a rare class in 5 of 100 frames: a 20 % val split gets one of them, train keeps most
    frames = {f"f{i:03d}": ({"rare", "common"} if i < 5 else {"common"}) for i in range(100)}
    splits = assign_splits(frames, 0.2)
    rare = Counter(splits[f"f{i:03d}"] for i in range(5))
    assert rare == {"train": 4, "val": 1}
    # two classes with opposite frequencies both get their share in val
    frames = {f"g{i:03d}": ({"x"} if i < 30 else {"y"}) for i in range(100)}
    splits = assign_splits(frames, 0.2)
    per_class = Counter((next(iter(frames[s])), split) for s, split in splits.items())
    assert per_class[("x", "val")] == 6 and per_class[("y", "val")] == 14
