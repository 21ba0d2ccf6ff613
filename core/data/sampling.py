"""Drawing training examples: the stable held-out split and sources drawn evenly."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np

Item = TypeVar("Item")

HOLDOUT_EVERY = 10  # one image in ten (by `stable_bucket` of its path below the data root) is held out
SPLITS = ("train", "held-out")
LANDCOVER_TRAINING_SETS = (
    "dubai_mbrsc",
    "loveda",
    "potsdam",
)  # RGB land-cover sets (Vaihingen is near-infrared)


def stable_bucket(name: str, buckets: int) -> int:
    """The bucket (0..buckets-1) of a name by its SHA-1: the same on every machine and run (a held-out split)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % buckets


def is_held_out(relative: str) -> bool:
    """True for the images the autoencoder and the denoiser never train on (`relative`: the path below the data
    root, e.g. `landcover/dubai_mbrsc/images/tile1_image_part_001.jpg`)."""
    return stable_bucket(relative, HOLDOUT_EVERY) == 0


class BySource(Generic[Item]):
    """Items grouped by `key` (their source): `draw` picks a group evenly, then an item of it, so every source is
    drawn equally often whatever its size."""

    def __init__(self, items: Sequence[Item], key: Callable[[Item], str]):
        groups: dict[str, list[Item]] = {}
        for item in items:
            groups.setdefault(key(item), []).append(item)
        self.groups = [groups[name] for name in sorted(groups)]

    def draw(self, rng: np.random.Generator) -> Item:
        group = self.groups[int(rng.integers(len(self.groups)))]
        return group[int(rng.integers(len(group)))]
