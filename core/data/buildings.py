"""Single-temporal building tiles (RGB image + building mask), for the generator and for STAR pairs.

Sources: every RGB image + 0/255 building-mask pair under `<shared data>/buildings/*/images|masks` (xBD Harvey,
IdaBD, xBD Joplin: twelve 1024² tiles). SpaceNet Atlanta is left out on purpose: it is single-band panchromatic,
and grey tiles replicated to RGB would teach the discriminator that grey images are real and the generator to
drop colour; the generator must produce colour imagery.

The bottom `HOLDOUT_ROWS` rows of every tile are never used for training; evaluation crops and sample grids come
from there. Training crops get scale jitter (a 128–256 px window resized to the crop size, i.e. 0.5×–1×), the
eight flips/rotations/transpositions, and change events from `core.events.simulate_step`.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..events.placement import Creation
from ..events.state import LabelState
from ..events.step import simulate_step
from ..io.images import read_binary, read_rgb
from ..paths import shared_data_dir
from .augment import dihedral

HOLDOUT_ROWS = 128
MIN_BUILDING_AREA = 64  # pixels at 1×: instances used as removal candidates and creation shapes
GENERATOR_EXCLUDED = {"spacenet_atlanta": "single-band panchromatic (the generator makes RGB)"}


@dataclass
class BuildingTile:
    name: str
    source: str
    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8, 1 = building

    @property
    def training_rows(self) -> int:
        return self.image.shape[0] - HOLDOUT_ROWS


@dataclass
class ChangeSample:
    """One training/evaluation example: the pre-event crop and a simulated post-event mask."""

    image: np.ndarray  # (H, W, 3) uint8
    semantic_t: np.ndarray  # (H, W) uint8
    semantic_t1: np.ndarray  # (H, W) uint8
    change: np.ndarray  # (H, W) bool
    removed: np.ndarray  # (H, W) bool
    created: np.ndarray  # (H, W) bool


def find_building_pairs(root: str | Path | None = None, exclude=()) -> list[tuple[str, Path, Path]]:
    """(source, image path, mask path) for every tile with a same-named mask under `buildings/`, except the
    sources named in `exclude`."""
    root = Path(root) if root is not None else shared_data_dir() / "buildings"
    pairs = []
    for source_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in exclude):
        for image_path in sorted((source_dir / "images").glob("*.png")):
            mask_path = source_dir / "masks" / image_path.name
            if mask_path.is_file():
                pairs.append((source_dir.name, image_path, mask_path))
    if not pairs:
        raise InputError(
            f"No image + building-mask pairs under {root}: expected <source>/images/*.png with the same names "
            "in <source>/masks/. Set CHANGEN_DATA to the shared data folder."
        )
    return pairs


def load_building_tiles(root: str | Path | None = None, exclude=()) -> list[BuildingTile]:
    """Every tile of `find_building_pairs` as RGB image + 0/1 mask."""
    tiles = []
    for source, image_path, mask_path in find_building_pairs(root, exclude):
        image, mask = read_rgb(image_path), read_binary(mask_path)
        if image.shape[:2] != mask.shape:
            raise InputError(
                f"Mismatched tile {image_path} / {mask_path}: the mask must have the image's size."
            )
        tiles.append(BuildingTile(image_path.stem, source, image, mask))
    return tiles


def generator_tiles(root: str | Path | None = None, window: int = 256) -> list[BuildingTile]:
    """The generator's colour tiles (`GENERATOR_EXCLUDED` left out) tall enough for training windows of `window` px (crop / scale)
    above the `HOLDOUT_ROWS` hold-out rows."""
    tiles = [
        tile
        for tile in load_building_tiles(root, exclude=GENERATOR_EXCLUDED)
        if tile.image.shape[0] > HOLDOUT_ROWS + window
    ]
    if not tiles:
        raise InputError(
            f"No building tile is taller than {HOLDOUT_ROWS + window} px: the generator needs larger tiles."
        )
    return tiles


def building_shape_bank(tiles: list[BuildingTile]) -> list[np.ndarray]:
    """Binary footprints (cropped to their boxes) of every training-area building: shapes to create."""
    shapes = []
    for tile in tiles:
        state = LabelState.from_mask(tile.mask[: tile.training_rows])
        for instance_id, info in state.index.items():
            if info.area >= MIN_BUILDING_AREA:
                rows, cols = info.slices
                shapes.append(state.instance[rows, cols] == instance_id)
    return shapes


def random_training_crop(
    tiles: list[BuildingTile], rng: np.random.Generator, crop: int, scale_range=(0.5, 1.0)
) -> tuple[np.ndarray, np.ndarray, float]:
    """(image, mask, scale): a window of crop/scale pixels from a tile's training rows, resized to crop²."""
    tile = tiles[rng.integers(len(tiles))]
    scale = float(rng.uniform(*scale_range))
    window = min(int(round(crop / scale)), tile.training_rows, tile.image.shape[1])
    row = int(rng.integers(0, tile.training_rows - window + 1))
    col = int(rng.integers(0, tile.image.shape[1] - window + 1))
    image = tile.image[row : row + window, col : col + window]
    mask = tile.mask[row : row + window, col : col + window]
    if window != crop:
        image = cv2.resize(image, (crop, crop), interpolation=cv2.INTER_AREA)
        mask = (cv2.resize(mask.astype(np.float32), (crop, crop), interpolation=cv2.INTER_AREA) > 0.5).astype(
            np.uint8
        )
    code = int(rng.integers(8))
    return dihedral(image, code), dihedral(mask, code), crop / window


def held_out_crops(tiles: list[BuildingTile], crop: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, image, mask) for every crop² window at 1× in the held-out bottom rows (never trained on)."""
    crops = []
    for tile in tiles:
        height, width = tile.mask.shape
        for top in range(tile.training_rows, height - crop + 1, crop):
            for left in range(0, width - crop + 1, crop):
                window = (slice(top, top + crop), slice(left, left + crop))
                crops.append((f"{tile.name}@{top},{left}", tile.image[window], tile.mask[window]))
    return crops


def simulate_change(
    image: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    shape_bank: list[np.ndarray],
    mode: str | None = None,
    scale: float = 1.0,
) -> ChangeSample:
    """Remove and/or create buildings (mode "remove", "create", "both"; random when None).

    Removal takes 20–60% of the buildings; creation places 1–4 footprints, copied from the crop itself or from
    the training shape bank (so building-free crops get new buildings too), rotated and scaled to the crop.
    """
    mode = mode or ("remove", "create", "both")[rng.integers(3)]
    state = LabelState.from_mask(mask)
    min_area = max(8, int(MIN_BUILDING_AREA * scale * scale))
    remove = float(rng.uniform(0.2, 0.6)) if mode in ("remove", "both") else 0
    creations = []
    if mode in ("create", "both") and shape_bank:
        for _ in range(int(rng.integers(1, 5))):
            shape = shape_bank[rng.integers(len(shape_bank))]
            creations.append(
                Creation(
                    shape=shape, angle=float(rng.uniform(-30, 30)), scale=scale * float(rng.uniform(0.8, 1.2))
                )
            )
    result = simulate_step(state, rng, remove=remove, creations=creations, min_area=min_area)
    if mode in ("remove", "both") and not result.removed.any() and state.ids:
        # Every building was below min_area: remove the largest one so the sample still has a removal.
        largest = max(state.index, key=lambda i: state.index[i].area)
        result = simulate_step(state, rng, remove_ids=[largest], creations=creations, min_area=min_area)
    return ChangeSample(
        image,
        state.semantic,
        result.state.semantic,
        result.change,
        result.removed,
        result.created,
    )
