"""The held-out split of the shared data that every trainer respects: one image in `HOLDOUT_EVERY`, chosen by a
stable hash of its path below the data root (e.g. `landcover/dubai_mbrsc/images/tile1_image_part_001.jpg`)."""

from __future__ import annotations

import hashlib

HOLDOUT_EVERY = 10
SPLITS = ("train", "held-out")
LANDCOVER_SOURCES = ("dubai_mbrsc", "loveda", "potsdam")  # RGB land-cover sets (Vaihingen is near-infrared)


def stable_bucket(name: str, buckets: int) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % buckets


def is_held_out(relative: str) -> bool:
    """True for the images the autoencoder and the denoiser never train on."""
    return stable_bucket(relative, HOLDOUT_EVERY) == 0
