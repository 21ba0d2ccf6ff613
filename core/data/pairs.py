"""Pair folders, the contract between `generate-dataset` (writer) and `train-detector` (reader).

A pair is `<root>/<k:06d>/` with `PAIR_FILES`; the writer writes `meta.json` last, so a folder is a finished pair
exactly when its `meta.json` exists (`FINISHED_MARKER`): resumed runs skip it, readers take only such folders.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_path, write_text_atomic
from ..errors import InputError
from ..io.images import read_binary, read_rgb

PAIR_FILES = ("t1.png", "t2.png", "mask_t1.png", "mask_t2.png", "change.png", "meta.json")
FINISHED_MARKER = "meta.json"  # written last


def _save_png(path: Path, array: np.ndarray) -> None:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def write_pair(folder: Path, pair: dict, files: tuple[str, ...] = PAIR_FILES) -> None:
    """Images and masks first, `FINISHED_MARKER` last: its presence marks the pair finished."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        if name != FINISHED_MARKER:
            _save_png(folder / name, pair[name.removesuffix(".png")])
    write_text_atomic(folder / FINISHED_MARKER, json.dumps(pair["meta"], indent=1))


def pair_folder(out: Path, index: int) -> Path:
    return out / f"{index:06d}"


def is_finished(folder: Path) -> bool:
    return (folder / FINISHED_MARKER).is_file()


VALIDATION_SHARE = 20  # one generated pair in 20 is held out (stable hash of its folder name)


def find_pair_folders(roots: list[Path]) -> list[Path]:
    folders = []
    for root in roots:
        if not root.is_dir():
            raise InputError(
                f"Pair folder root {root} does not exist: run `python -m core generate-dataset` first."
            )
        found = sorted(path.parent for path in root.rglob(FINISHED_MARKER))
        if not found:
            raise InputError(f"No finished pairs ({', '.join(PAIR_FILES)} per folder) under {root}.")
        folders.extend(found)
    return folders


def is_validation_pair(folder: Path) -> bool:
    digest = hashlib.sha1(f"{folder.parent.name}/{folder.name}".encode()).digest()
    return digest[0] % VALIDATION_SHARE == 0


def read_pair_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """t1, t2, change and the t1 building mask (which changed pixels t1 shows)."""
    change = read_binary(folder / "change.png")
    mask_t1 = read_binary(folder / "mask_t1.png")
    return read_rgb(folder / "t1.png"), read_rgb(folder / "t2.png"), change, mask_t1
