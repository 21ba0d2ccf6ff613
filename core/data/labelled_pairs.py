"""Real labelled change pairs for evaluation: A/ B/ label/ folders (LEVIR-CD, DSIFN) or xBD images/ masks/."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..io.images import read_rgb

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
XBD_DAMAGED_FROM = 2


@dataclass
class LabelledPair:
    name: str
    t1: np.ndarray  # (H, W, 3) uint8
    t2: np.ndarray
    change: np.ndarray  # (H, W) bool


def _images_by_stem(folder: Path) -> dict[str, Path]:
    return {path.stem: path for path in sorted(folder.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES}


def _ab_label_pairs(root: Path) -> Iterator[LabelledPair]:
    first, second, labels = (_images_by_stem(root / sub) for sub in ("A", "B", "label"))
    names = sorted(set(first) & set(second) & set(labels))
    if not names:
        raise InputError(f"{root} has no pairs: A/, B/ and label/ need images with the same names.")
    for name in names:
        t1, t2 = read_rgb(first[name]), read_rgb(second[name])
        label = np.asarray(Image.open(labels[name]))
        if label.ndim == 3:
            label = label[..., 0]
        if t1.shape != t2.shape or t1.shape[:2] != label.shape:
            raise InputError(
                f"Pair {name} in {root}: A, B and label differ in size ({t1.shape}, {t2.shape}, {label.shape})."
            )
        yield LabelledPair(name, t1, t2, label > 0)


def _xbd_pairs(root: Path, pre_dir: Path | None) -> Iterator[LabelledPair]:
    pre_dir = pre_dir or root.parent.parent / "buildings"
    pre_images = {path.name: path for path in pre_dir.glob("*/images/*_pre_disaster.png")}
    posts = sorted((root / "images").glob("*_post_disaster.png"))
    for post in posts:
        pre_name = post.name.replace("_post_disaster", "_pre_disaster")
        if pre_name not in pre_images:
            raise InputError(f"No pre-disaster image {pre_name} under {pre_dir}/*/images: pass --pre-dir.")
        damage = np.asarray(Image.open(root / "masks" / post.name))
        yield LabelledPair(
            post.stem, read_rgb(pre_images[pre_name]), read_rgb(post), damage >= XBD_DAMAGED_FROM
        )


def labelled_pairs(
    root: str | os.PathLike, pre_dir: str | os.PathLike | None = None
) -> Iterator[LabelledPair]:
    root = Path(root)
    if (root / "A").is_dir() and (root / "B").is_dir() and (root / "label").is_dir():
        return _ab_label_pairs(root)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return _xbd_pairs(root, Path(pre_dir) if pre_dir else None)
    raise InputError(
        f"{root} is not a pair folder: expected A/, B/ and label/ sub-folders (or xBD images/ + masks/)."
    )
