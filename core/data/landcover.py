"""Semantic change pairs from real land-cover maps (`generate-dataset --task landcover`; SECOND-style samples).

Each pair `k` is drawn from its own generator seeded by (seed, k): a source (drawn evenly), one of its maps, a
crop, random class transitions of its connected regions (Changen2's table, `core.synthesis.landcover`), and t2 by
the RS-DiT with latent mixing. Resumable and sharded like the building task (`generate_pairs`).

Maps: `ROOT/landcover/<source>/images/NAME.{jpg,png}` with `labels/NAME.png`, mapped to the project classes by
the source's written mapping. The split is the trainers' (`core.data.sampling`, a stable hash of
`landcover/<source>/images/NAME`): `split="train"` never touches a map the RS-DiT held out.

Output per pair: `t1.png`, `t2.png` (RGB), `S_t1.png`, `S_t2.png` (project class ids), `change.png` (255 =
changed), `fromto.png` (`from * 9 + to` on changed pixels, 0 elsewhere), `meta.json` last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..events.classes import to_project_classes
from ..io.images import read_rgb
from ..synthesis.landcover import LandcoverParameters, simulate_landcover, synthesize_landcover
from .dataset import generate_pairs
from .pairs import pair_folder, write_pair
from .sampling import LANDCOVER_TRAINING_SETS, SPLITS, is_held_out

LANDCOVER_PAIR_FILES = ("t1.png", "t2.png", "S_t1.png", "S_t2.png", "change.png", "fromto.png", "meta.json")
CROP_TRIES = 8


@dataclass(frozen=True)
class LandcoverMap:
    source: str
    name: str  # path below the data root, the split's key
    image: Path
    labels: Path


@dataclass(frozen=True)
class LandcoverSettings:
    crop: int = 256
    seed: int = 0
    transition: tuple[float, float] = (0.2, 0.5)  # per-pair probability range that a region changes
    min_region: int = 256
    min_change: int = 256  # pixels: a crop with less change is redrawn (up to CROP_TRIES times)
    unchanged: str = "keep"
    split: str = "train"


def find_landcover_maps(
    root: Path, sources=LANDCOVER_TRAINING_SETS, split: str = "train"
) -> list[LandcoverMap]:
    """The maps of `sources` under `root` in `split` ("train" or "held-out"), sorted for reproducibility."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    maps = []
    for source in sources:
        folder = root / "landcover" / source
        if not (folder / "images").is_dir() or not (folder / "labels").is_dir():
            raise InputError(f"{folder} must hold images/ and labels/ (land-cover maps of the same names)")
        for image in sorted(p for p in (folder / "images").iterdir() if p.suffix in (".jpg", ".png")):
            labels = folder / "labels" / f"{image.stem}.png"
            name = str(image.relative_to(root))
            if labels.is_file() and is_held_out(name) == (split == "held-out"):
                maps.append(LandcoverMap(source, name, image, labels))
    if not maps:
        raise InputError(f"no {split} land-cover maps of {', '.join(sources)} under {root / 'landcover'}")
    return maps


def read_landcover_map(item: LandcoverMap) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 image and (H, W) project class ids."""
    with Image.open(item.labels) as labels:
        values = np.asarray(labels.convert("L"))
    return read_rgb(item.image), to_project_classes(values, item.source, str(item.labels))


def make_landcover_pair(maps: list[LandcoverMap], settings: LandcoverSettings, index: int, generator) -> dict:
    """Pair `index`: the same settings and index give the same pair on any shard."""
    rng = np.random.default_rng([settings.seed, index])
    sources = sorted({item.source for item in maps})
    source = sources[rng.integers(len(sources))]
    choices = [item for item in maps if item.source == source]
    item = choices[rng.integers(len(choices))]
    image, classes = read_landcover_map(item)
    height, width = classes.shape
    if min(height, width) < settings.crop:
        raise InputError(
            f"{item.image} ({width}×{height}) is smaller than the crop {settings.crop}: lower --crop"
        )
    for _ in range(CROP_TRIES):
        top, left = (
            int(rng.integers(height - settings.crop + 1)),
            int(rng.integers(width - settings.crop + 1)),
        )
        crop = (slice(top, top + settings.crop), slice(left, left + settings.crop))
        parameters = LandcoverParameters(
            steps=1,
            transition=float(rng.uniform(*settings.transition)),
            min_region=settings.min_region,
            seed=int(rng.integers(2**31)),
            unchanged=settings.unchanged,
        )
        if simulate_landcover(classes[crop], parameters).steps[0].change.sum() >= settings.min_change:
            break
    result = synthesize_landcover(generator, image[crop], classes[crop], parameters)  # replays that series
    return {
        "t1": result.images[0],
        "t2": result.images[1],
        "S_t1": result.masks[0],
        "S_t2": result.masks[1],
        "change": result.changes[0].astype(bool),
        "fromto": result.from_to(0, 1),
        "meta": {
            "index": index,
            "map": item.name,
            "source": item.source,
            "crop": [top, left, settings.crop, settings.crop],
            "changed_pixels": int(result.changes[0].sum()),
            **result.log,
        },
    }


def generate_landcover(
    maps: list[LandcoverMap],
    settings: LandcoverSettings,
    pairs: int,
    out: Path,
    generator,
    shard: tuple[int, int] = (0, 1),
    show_progress: bool = True,
    progress=None,
    is_canceled=None,
) -> dict:
    """Write this shard's unfinished land-cover pairs; returns counts of written and skipped pairs (resumable)."""
    description = {
        "task": "landcover",
        "settings": asdict(settings),
        "pairs": pairs,
        "maps": [item.name for item in maps],
        "files": list(LANDCOVER_PAIR_FILES),
    }
    return generate_pairs(
        out,
        description,
        pairs,
        lambda index: write_pair(
            pair_folder(out, index),
            make_landcover_pair(maps, settings, index, generator),
            LANDCOVER_PAIR_FILES,
        ),
        shard,
        show_progress,
        progress,
        is_canceled,
    )
