"""Drawing training examples: the stable held-out split and sources drawn evenly."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np

Item = TypeVar("Item")


def stable_bucket(name: str, buckets: int) -> int:
    """The bucket (0..buckets-1) of a name by its SHA-1: the same on every machine and run (a held-out split)."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % buckets


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
