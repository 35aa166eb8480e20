"""Train/val/test splits shared by every export that has splits (COCO, YOLO, VOC).

Deterministic: the same frames with the same labels give the same splits on every run and machine (no
random state; frames are ordered by a hash of their name). Stratified by class where possible (iterative
stratification, as Sechidis et al. describe it): frames are placed rarest class first, each into the
split that still wants most of that class, so a class seen in five frames has one in a 20 % validation
split, not zero or five.
Train is never empty when there is a frame: a one-frame dataset is all train.
"""
from __future__ import annotations

import hashlib
from collections import Counter

SPLITS = ("train", "val", "test")


def split_sizes(count: int, val_fraction: float, test_fraction: float = 0.0) -> dict[str, int]:
    """Frames per split: val and test rounded, never taking the last training frame."""
    if not 0 <= val_fraction <= 1 or not 0 <= test_fraction <= 1 or val_fraction + test_fraction > 1:
        raise ValueError(f"val_fraction {val_fraction} and test_fraction {test_fraction} must be in [0, 1] "
                         "and add up to at most 1")
    val, test = round(count * val_fraction), round(count * test_fraction)
    while count and val + test >= count:  # train keeps at least one frame
        if test >= val and test:
            test -= 1
        else:
            val -= 1
    return {"train": count - val - test, "val": val, "test": test}


def _order(stem: str) -> bytes:
    return hashlib.sha256(stem.encode()).digest()


def assign_splits(frames: dict[str, set[str]], val_fraction: float, test_fraction: float = 0.0) -> dict[str, str]:
    """{frame stem: split} for frames given as {stem: the classes it holds}."""
    sizes = split_sizes(len(frames), val_fraction, test_fraction)
    frequency = Counter(c for classes in frames.values() for c in classes)
    share = {s: sizes[s] / len(frames) for s in SPLITS} if frames else {}
    wanted = {s: {c: n * share[s] for c, n in frequency.items()} for s in SPLITS}
    placed = {s: Counter() for s in SPLITS}
    left = dict(sizes)
    out = {}
    # frames of the rarest classes first (those a split can miss), then by hash: no dependence on listing order
    rarest = {stem: min(classes, key=lambda c: (frequency[c], c)) if classes else None
              for stem, classes in frames.items()}
    for stem in sorted(frames, key=lambda st: (frequency[rarest[st]] if rarest[st] else len(frames) + 1,
                                               _order(st))):
        label = rarest[stem]
        # the split that still wants most of this frame's rarest class, then the one with most room
        split = max((s for s in SPLITS if left[s] > 0),
                    key=lambda s, c=label: (wanted[s][c] - placed[s][c] if c else 0.0, left[s]))
        out[stem] = split
        left[split] -= 1
        placed[split].update(frames[stem])
    return out
