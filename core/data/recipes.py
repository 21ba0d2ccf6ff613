"""How one synthetic pair of `generate-dataset` is made (`Settings`, `make_pair`): a crop, events, synthesis
and the realism tricks, or a STAR pair."""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import InputError
from ..events.placement import Creation
from ..events.state import LabelState
from ..events.step import simulate_step
from ..synthesis.methods import METHOD_INFO
from ..synthesis.synthesize import synthesize_step
from .augment import (
    appearance_changes,
    building_lean,
    degrade,
    follow_t2,
    jitter_colours,
    misregister,
    warp_mask,
)

# For --method mixed: which events a (non-STAR) pair gets, and how its image is made.
MIXED_KINDS = (("inpainting", 0.4), ("copy-paste", 0.15), ("both", 0.45))
CROP_TRIES = 10
PLACEMENT_GAP = 2  # events.simulate_step's default min_gap
NEIGHBOURHOOD = 40  # pixels (~20 m at 0.5 m): how far from existing buildings new ones are preferred


# The methods of a dataset: "mixed" first and RS-DiT not yet (`make_pair` draws no events for it); Processing
# passes the index.
DATASET_METHOD_LABELS = {
    "mixed": "Mixed (inpainting and copy-paste)",
    **{name: METHOD_INFO[name].label for name in ("changen", "copy-paste", "inpainting")},
}
DATASET_METHODS = tuple(DATASET_METHOD_LABELS)


@dataclass(frozen=True)
class Option:
    """How a `Settings` field is offered, the one description both `python -m core generate-dataset` and the
    Processing algorithm "Generate synthetic dataset" are built from: `label` (the help text), the range
    `low`..`high` of a number (of each number of a pair), `choices` (name -> label) of a text; the command-line
    flag is `--field-name` (for a switch that is on by default: `--no-field-name`, which turns it off) unless
    `flag` says otherwise, the Processing parameter `FIELD_NAME`; `advanced` puts it among Processing's advanced
    parameters. A field without an Option is offered by neither."""

    label: str
    low: float | None = None
    high: float | None = None
    choices: dict[str, str] | None = None
    flag: str | None = None
    advanced: bool = True


def _option(default, label: str, **description):
    return field(default=default, metadata={"option": Option(label, **description)})


@dataclass(frozen=True)
class Settings:
    method: str = _option("mixed", "Synthesis method", choices=DATASET_METHOD_LABELS, advanced=False)
    crop: int = _option(256, "Pair size (pixels)", low=32, advanced=False)
    seed: int = _option(0, "Random seed", low=0, advanced=False)
    star: float = _option(0.35, "Share of STAR pairs (another crop as t2)", low=0.0, high=1.0)
    jitter: bool = _option(True, "Independent colour jitter per date")
    misregistration: float = _option(2.0, "Largest t2 shift (pixels, 0 = none)", low=0.0)
    swap: bool = _option(True, "Swap t1 and t2 at random")
    ground_texture: float = _option(0.5, "Share of removals filled with ground texture", low=0.0, high=1.0)
    open_ground: bool = _option(True, "Paste created buildings on open ground only", flag="--anywhere")
    appearance: float = _option(
        0.5, "Share of pairs with unlabelled appearance change in t2", low=0.0, high=1.0
    )
    lean: float = _option(
        0.3, "Share of pairs whose kept roofs shift 0-3 px in t2 (parallax)", low=0.0, high=1.0
    )
    degrade: bool = _option(True, "Per-date blur/sharpening and noise")
    min_area: int = 48
    remove_range: tuple[float, float] = _option(
        (0.2, 0.8),
        "Share of a crop's buildings removed per removal pair, low and high (lower it for a sparse-change set)",
        low=0.0,
        high=1.0,
        flag="--remove",
    )
    create_max: int = _option(5, "Most objects created per creation pair (1 to this)", low=1)

    def __post_init__(self):
        for item, option in setting_options():
            value = getattr(self, item.name)
            if option.choices is not None and value not in option.choices:
                raise InputError(f"{option.label}: use one of {', '.join(option.choices)}, not {value!r}")
            numbers = list(value) if isinstance(value, tuple) else [value]
            low = -math.inf if option.low is None else option.low
            high = math.inf if option.high is None else option.high
            if option.choices is None and not (
                all(low <= x <= high for x in numbers) and numbers == sorted(numbers)
            ):
                bounds = f">= {low}" if option.high is None else f"between {low} and {high}"
                order = " (low <= high)" if len(numbers) > 1 else ""
                raise InputError(f"{option.label} must be {bounds}{order}, got {value}")


def setting_options() -> list[tuple[Field, Option]]:
    """The offered `Settings` fields with their `Option`, in field order."""
    return [(item, item.metadata["option"]) for item in fields(Settings) if "option" in item.metadata]


@lru_cache(maxsize=64)
def _load(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(image_path).convert("RGB"))
    mask = np.asarray(Image.open(mask_path).convert("L")) > 0
    if image.shape[:2] != mask.shape:
        raise InputError(f"{image_path} and {mask_path} differ in size ({image.shape[:2]} vs {mask.shape})")
    return image, mask


def _random_crop(sources, rng, crop: int, want_buildings: bool, min_area: int):
    """A random crop (random rot90 and flip) of a random source; prefers crops with buildings when asked."""
    for attempt in range(CROP_TRIES):
        index = int(rng.integers(len(sources)))
        image, mask = _load(*sources[index])
        height, width = mask.shape
        if height < crop or width < crop:
            raise InputError(f"{sources[index][0]} ({width}×{height}) is smaller than --crop {crop}")
        r0, c0 = int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))
        image_crop, mask_crop = image[r0 : r0 + crop, c0 : c0 + crop], mask[r0 : r0 + crop, c0 : c0 + crop]
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        image_crop, mask_crop = np.rot90(image_crop, turns), np.rot90(mask_crop, turns)
        if flip:
            image_crop, mask_crop = image_crop[:, ::-1], mask_crop[:, ::-1]
        enough = mask_crop.sum() >= min_area
        if not want_buildings or enough or attempt == CROP_TRIES - 1:
            origin = {"source": sources[index][0].name, "row": r0, "col": c0, "rot90": turns, "flip": flip}
            return np.ascontiguousarray(image_crop), np.ascontiguousarray(mask_crop), origin
    raise AssertionError("unreachable")


def open_ground(image: np.ndarray, buildings: np.ndarray) -> np.ndarray:
    """Pixels where a pasted building looks plausible: bare ground, pavement or lawn, but not trees (green and
    textured or dark green), shadow or water (dark), and not on or right beside a building -> bool."""
    rgb = image.astype(np.float32)
    total = rgb.sum(axis=2) + 1.0
    excess_green = (2 * rgb[..., 1] - rgb[..., 0] - rgb[..., 2]) / total
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    texture = np.sqrt(np.maximum(cv2.blur(luma * luma, (7, 7)) - cv2.blur(luma, (7, 7)) ** 2, 0.0))
    trees = (excess_green > 0.04) & ((texture > 10.0) | (luma < 70))
    near_building = cv2.dilate(buildings.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    return ~trees & (luma > 50) & ~near_building


def _ground_creations(image, state: LabelState, rng, count, min_area, angle_range, scale_range):
    """Creation requests centred on open ground, far enough from buildings and the image border for the copied
    shape (fewer than `count` when the crop has too little open ground)."""
    height, width = state.shape

    def whole(info):  # instances cut by the crop border have partial, odd shapes
        r0, c0, r1, c1 = info.bbox
        return r0 > 0 and c0 > 0 and r1 < height and c1 < width

    sources = [i for i, info in state.index.items() if info.area >= min_area]
    sources = [i for i in sources if whole(state.index[i])] or sources
    if not sources or count <= 0:
        return []
    ground = open_ground(image, state.foreground())
    occupied = state.foreground()
    creations = []
    for _ in range(count):
        clearance = ndimage.distance_transform_edt(np.pad(~occupied, 1, constant_values=False))[1:-1, 1:-1]
        source = sources[int(rng.integers(len(sources)))]
        r0, c0, r1, c1 = state.index[source].bbox
        scale = float(rng.uniform(*scale_range))
        radius = 0.5 * np.hypot(r1 - r0, c1 - c0) * scale + PLACEMENT_GAP + 1
        free = clearance > radius  # the padding makes the image border count as an obstacle too
        size = int(2 * radius) | 1
        on_ground = free & (cv2.blur(ground.astype(np.float32), (size, size)) > 0.5)
        # new buildings go up in built-up areas: prefer open ground within a plot or two of a building
        candidates = np.flatnonzero((on_ground & (clearance < radius + NEIGHBOURHOOD)).ravel())
        if candidates.size == 0:
            candidates = np.flatnonzero(on_ground.ravel())
        if candidates.size == 0:  # no open ground for it here: a building in a forest or a pond looks fake
            continue
        row, col = divmod(int(candidates[rng.integers(candidates.size)]), ground.shape[1])
        creations.append(
            Creation(source_id=source, centre=(row, col), angle=float(rng.uniform(*angle_range)), scale=scale)
        )
        occupied = occupied.copy()
        cv2.circle(occupied.view(np.uint8), (col, row), int(np.ceil(radius)), 1, thickness=-1)
    return creations


def make_pair(sources, settings: Settings, index: int, generator=None, device="cpu") -> dict:
    """Pair `index`: arrays t1, t2, mask_t1, mask_t2, change (bool masks) and its metadata."""
    rng = np.random.default_rng([settings.seed, index])
    star = rng.random() < settings.star
    method = settings.method
    image, mask, origin = _random_crop(sources, rng, settings.crop, not star, settings.min_area)
    meta = {"index": index, "t1": origin}
    if star:
        image_2, mask_2, origin_2 = _random_crop(sources, rng, settings.crop, False, settings.min_area)
        meta.update(kind="star", t2=origin_2)
        change = mask != mask_2
    else:
        kind = method
        if method == "mixed":
            names, weights = zip(*MIXED_KINDS, strict=True)
            kind = names[int(rng.choice(len(names), p=np.array(weights) / sum(weights)))]
        state = LabelState.from_mask(mask)
        removes = kind in ("inpainting", "both", "changen")
        creates = kind in ("copy-paste", "both", "changen")
        remove = float(rng.uniform(*settings.remove_range)) if removes else 0
        count = int(rng.integers(1, settings.create_max + 1)) if creates else 0
        angle_range, scale_range = (-20.0, 20.0), (0.8, 1.2)
        creations = []  # on open ground; anywhere free only when a creation-only pair would have no change
        if count and settings.open_ground:
            creations = _ground_creations(
                image, state, rng, count, settings.min_area, angle_range, scale_range
            )
        step = simulate_step(
            state,
            rng,
            remove=remove,
            create=count if not settings.open_ground or (kind == "copy-paste" and not creations) else 0,
            creations=creations,
            min_area=settings.min_area,
            angle_range=angle_range,
            scale_range=scale_range,
        )
        image_2 = image
        if kind in ("inpainting", "both"):
            image_2 = synthesize_step(
                "inpainting", image_2, state, step, rng, ground_texture=settings.ground_texture
            )
        if kind in ("copy-paste", "both"):
            image_2 = synthesize_step("copy-paste", image_2, state, step, rng)
        if kind == "changen":
            image_2 = synthesize_step("changen", image, state, step, rng, generator=generator, device=device)
        mask_2 = step.state.foreground()
        change = step.change
        meta.update(
            kind=kind,
            removed=sum(event.kind == "remove" for event in step.events),
            created=sum(event.kind == "create" for event in step.events),
        )
    t1, t2 = image, image_2
    if settings.appearance > 0 and rng.random() < settings.appearance:
        meta["appearance_changes"] = int(rng.integers(1, 4))
        t2 = appearance_changes(t2, mask & mask_2, change, rng, meta["appearance_changes"])
    if settings.lean > 0 and rng.random() < settings.lean:
        meta["lean"] = True
        t2 = building_lean(t2, mask & mask_2, change, rng)
    if settings.degrade:
        t1, t2 = degrade(t1, rng), degrade(t2, rng)
    if settings.jitter:
        t1, t2 = jitter_colours(t1, rng), jitter_colours(t2, rng)
    if settings.misregistration > 0:
        t2, matrix = misregister(t2, rng, settings.misregistration)
        change, mask_2 = follow_t2(change, mask, matrix), warp_mask(mask_2, matrix)
    swapped = settings.swap and bool(rng.integers(2))
    if swapped:
        t1, t2, mask, mask_2 = t2, t1, mask_2, mask
    meta.update(swapped=swapped, change_fraction=round(float(change.mean()), 5))
    return {"t1": t1, "t2": t2, "mask_t1": mask, "mask_t2": mask_2, "change": change, "meta": meta}
