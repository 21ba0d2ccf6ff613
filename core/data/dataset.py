"""Synthetic change datasets (`python -m core generate-dataset`): change pairs from single-temporal image + building-mask folders.

Each pair `k` is drawn from its own random generator seeded by (seed, k), so any shard of any run reproduces the
same pair; a pair is finished when its `meta.json` (written last) exists, which makes runs resumable and lets
shards (`--shard i/n` takes the pairs with k % n == i) run on any number of processes or machines.

Output: `OUT/<k:06d>/{t1,t2}.png` (RGB), `mask_t1.png`, `mask_t2.png` (building 255), `change.png` (change
255), `meta.json`; `OUT/dataset.json` holds the settings.

Realism tricks (on by default): independent colour/brightness jitter, blur/noise
per date, unlabelled appearance change in t2 (recoloured ground, shadows, re-coloured kept roofs, roofs leaning
0–3 px as seen from another angle: the negatives that raise a detector's precision), 0–2 px misregistration of
t2 (created buildings' labels and `mask_t2` move with it; removed ones stay on t1), random t1/t2 swap, a share of
STAR pairs (t2 = another crop, change = XOR of the masks), half of the inpainted removals filled with ground
texture, and objects pasted onto open ground (not on vegetation, shadow or water, away from buildings).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from ..atomic import write_text_atomic
from ..errors import Canceled, InputError
from .pairs import is_finished, pair_folder, write_pair
from .recipes import Settings, make_pair


def find_sources(folders: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(image, mask) pairs: `DIR/images/NAME.png` with `DIR/masks/NAME.png`, sorted for reproducibility."""
    pairs = []
    for folder in folders:
        folder = Path(folder)
        images = folder / "images"
        if not images.is_dir() or not (folder / "masks").is_dir():
            raise InputError(f"{folder} must contain images/ and masks/ folders with matching PNG names")
        for image in sorted(images.glob("*.png")):
            mask = folder / "masks" / image.name
            if not mask.is_file():
                raise InputError(f"{image} has no mask {mask}: every image needs a mask of the same name")
            pairs.append((image, mask))
    if not pairs:
        raise InputError(f"no images/*.png found in {', '.join(map(str, folders))}")
    return pairs


def generate(
    sources: list[tuple[Path, Path]],
    settings: Settings,
    pairs: int,
    out: Path,
    shard: tuple[int, int] = (0, 1),
    generator=None,
    device="cpu",
    show_progress: bool = True,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> dict:
    """Write this shard's unfinished pairs; returns counts of written and skipped pairs. A cancel stops between
    pairs (raising `Canceled`); running again with the same settings resumes."""
    description = {"settings": settings.__dict__, "pairs": pairs, "sources": [str(s[0]) for s in sources]}
    return generate_pairs(
        out,
        description,
        pairs,
        lambda index: write_pair(
            pair_folder(out, index), make_pair(sources, settings, index, generator, device)
        ),
        shard,
        show_progress,
        progress,
        is_canceled,
    )


def generate_pairs(
    out: Path,
    description: dict,
    pairs: int,
    write_one: Callable[[int], None],
    shard: tuple[int, int] = (0, 1),
    show_progress: bool = True,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> dict:
    """The resumable, sharded loop of every dataset task: `write_one(k)` writes pair k (its marker last) for this
    shard's pairs whose folder is not finished; `description` goes to `dataset.json` on the first run."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "dataset.json").exists():
        write_text_atomic(out / "dataset.json", json.dumps(description, indent=1))
    mine = range(shard[0], pairs, shard[1])
    todo = [index for index in mine if not is_finished(pair_folder(out, index))]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="pairs", disable=not show_progress)
    for done, index in enumerate(todo):
        if is_canceled is not None and is_canceled():
            bar.close()
            raise Canceled(
                f"stopped after {done} of {len(todo)} pairs; run again with the same settings to resume"
            )
        write_one(index)
        bar.update(1)
        if progress is not None:
            progress(100.0 * (done + 1) / len(todo))
    bar.close()
    return {"written": len(todo), "skipped": len(mine) - len(todo)}
