"""`python -m core generate-dataset`: synthetic change pairs from single-temporal image + building-mask folders.

Each pair `k` is drawn from its own random generator seeded by (seed, k), so any shard of any run reproduces the
same pair; a pair is finished when its `meta.json` (written last) exists, which makes runs resumable and lets
shards (`--shard i/n` takes the pairs with k % n == i) run on any number of processes or machines.

Output: `OUT/<k:06d>/{t1,t2}.png` (RGB), `mask_t1.png`, `mask_t2.png` (building 255), `change.png` (change
255), `meta.json`; `OUT/dataset.json` holds the settings.

Realism tricks (on by default; `../shared/notes/findings.md`): independent colour/brightness jitter, blur/noise
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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from .atomic import atomic_path, write_text_atomic
from .errors import Canceled, InputError
from .events import Creation, LabelState, simulate_step
from .synthesize import DEFAULT_GENERATOR, synthesize_step

DATASET_METHODS = ("changen", "copy-paste", "inpainting", "mixed")
PAIR_FILES = ("t1.png", "t2.png", "mask_t1.png", "mask_t2.png", "change.png", "meta.json")
# For --method mixed: which events a (non-STAR) pair gets, and how its image is made.
MIXED_KINDS = (("inpainting", 0.4), ("copy-paste", 0.15), ("both", 0.45))
CROP_TRIES = 10
PLACEMENT_GAP = 2  # events.simulate_step's default min_gap
NEIGHBOURHOOD = 40  # pixels (~20 m at 0.5 m): how far from existing buildings new ones are preferred


@dataclass(frozen=True)
class Settings:
    method: str
    crop: int
    seed: int
    star: float = 0.35
    jitter: bool = True
    misregistration: float = 2.0
    swap: bool = True
    ground_texture: float = 0.5
    open_ground: bool = True
    appearance: float = 0.5
    lean: float = 0.3
    degrade: bool = True
    min_area: int = 48
    remove_range: tuple[float, float] = (0.2, 0.8)  # share of a crop's buildings removed in a removal pair
    create_max: int = 5  # objects created in a creation pair: 1..create_max


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


def jitter_colours(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, gamma, per-channel gain and saturation drawn at random (one date's look)."""
    rgb = image.astype(np.float32) / 255.0
    rgb = rgb * rng.uniform(0.9, 1.1, size=3).astype(np.float32) * np.float32(rng.uniform(0.75, 1.25))
    mean = rgb.mean()
    rgb = (rgb - mean) * np.float32(rng.uniform(0.75, 1.25)) + mean
    grey = rgb.mean(axis=2, keepdims=True)
    rgb = grey + (rgb - grey) * np.float32(rng.uniform(0.7, 1.3))
    rgb = np.clip(rgb, 0.0, 1.0) ** np.float32(rng.uniform(0.8, 1.25))
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def misregister(image: np.ndarray, rng: np.random.Generator, pixels: float) -> tuple[np.ndarray, np.ndarray]:
    """Shift by a random sub-pixel offset of up to `pixels` in each direction (mirrored border); returns the
    image and the 2×3 matrix, so that what t2 shows (created buildings) can be moved with it."""
    dy, dx = rng.uniform(-pixels, pixels, size=2)
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    height, width = image.shape[:2]
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    ), matrix


def warp_mask(mask: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """A boolean mask moved by the same sub-pixel warp as its image (area-weighted, cut at one half)."""
    height, width = mask.shape
    moved = cv2.warpAffine(
        mask.astype(np.float32),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )
    return moved >= 0.5


def follow_t2(change: np.ndarray, mask_t1: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The change label after t2 moved by `matrix`: removed buildings stay where t1 shows them, created ones
    move with t2. Without this the label sits up to a few pixels off what t2 shows and the detector learns to
    paint a halo around every new building."""
    return (change & mask_t1) | warp_mask(change & ~mask_t1, matrix)


def soft_blob(shape, rng, radius_range) -> np.ndarray:
    """A random soft-edged ellipse (opacity 0–1) -> float32."""
    height, width = shape
    blob = np.zeros(shape, np.uint8)
    centre = (int(rng.integers(width)), int(rng.integers(height)))
    axes = tuple(int(v) for v in rng.uniform(*radius_range, size=2))
    cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, thickness=-1)
    return cv2.GaussianBlur(blob.astype(np.float32) / 255.0, (0, 0), float(rng.uniform(2.0, 6.0)))


def appearance_changes(image, kept_buildings, change, rng, count) -> np.ndarray:
    """Unlabelled appearance change, the negatives a detector must learn to ignore: soft patches of ground
    recoloured (season, soil, vegetation), cast shadows, and re-coloured roofs of buildings that stay; all kept
    at least 4 px away from the labelled change."""
    height, width = change.shape
    allowed = ~cv2.dilate(change.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    rgb = image.astype(np.float32)
    roofs = None
    for _ in range(count):
        kind = ("ground", "shadow", "roof")[int(rng.choice(3, p=(0.5, 0.25, 0.25)))]
        if kind == "roof":
            if roofs is None:
                roofs, _ = ndimage.label(kept_buildings & allowed, structure=np.ones((3, 3), bool))
            if roofs.max() == 0:
                continue
            region = roofs == int(rng.integers(1, roofs.max() + 1))
            opacity = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 0.7) * region
            target = rgb * rng.uniform(0.6, 1.4, size=3).astype(np.float32) + np.float32(rng.uniform(-25, 25))
        else:
            side = min(height, width)
            opacity = soft_blob((height, width), rng, (0.04 * side, 0.25 * side)) * allowed
            if kind == "shadow":
                target = rgb * np.float32(rng.uniform(0.45, 0.8))
            else:  # the colour of another part of the scene, keeping this patch's texture
                row, col = int(rng.integers(height - 15)), int(rng.integers(width - 15))
                palette = rgb[row : row + 16, col : col + 16].reshape(-1, 3).mean(axis=0)
                core = opacity > 0.5
                target = rgb - rgb[core].mean(axis=0) + palette if core.any() else rgb
        opacity = opacity[..., None] * np.float32(rng.uniform(0.5, 1.0))
        rgb = rgb * (1.0 - opacity) + target * opacity
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def building_lean(image, kept_buildings, change, rng, max_shift: float = 3.0) -> np.ndarray:
    """Unlabelled off-nadir lean: the roofs of buildings that stay move by one random sub-pixel offset of up to
    `max_shift` px (parallax from another view angle); uncovered ground is inpainted. The labelled change and
    its 4-px surroundings keep their pixels."""
    if not kept_buildings.any():
        return image
    dy, dx = rng.uniform(-max_shift, max_shift, size=2)
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    height, width = kept_buildings.shape
    moved = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    roofs = cv2.warpAffine(kept_buildings.astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR)
    uncovered = (kept_buildings & (roofs < 0.5)).astype(np.uint8)
    out = cv2.inpaint(image, uncovered, 3, cv2.INPAINT_TELEA) if uncovered.any() else image.copy()
    alpha = roofs[..., None]
    out = np.clip(np.rint(out * (1.0 - alpha) + moved * alpha), 0, 255).astype(np.uint8)
    protected = cv2.dilate(change.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    out[protected] = image[protected]
    return out


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One date's sensor look: sometimes a slight blur (or sharpening) and sensor noise."""
    out = image.astype(np.float32)
    roll = rng.random()
    if roll < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.4, 1.2)))
    elif roll < 0.4:
        out = out + (out - cv2.GaussianBlur(out, (0, 0), 1.0)) * np.float32(rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        out = out + rng.normal(0.0, rng.uniform(1.0, 4.0), size=out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


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


def _save_png(path: Path, array: np.ndarray) -> None:
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _save_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=1))


def write_pair(folder: Path, pair: dict) -> None:
    """Images and masks first, `meta.json` last: its presence marks the pair finished."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("t1", "t2", "mask_t1", "mask_t2", "change"):
        _save_png(folder / f"{name}.png", pair[name])
    _save_json(folder / "meta.json", pair["meta"])


def pair_folder(out: Path, index: int) -> Path:
    return out / f"{index:06d}"


def parse_shard(text: str) -> tuple[int, int]:
    try:
        shard, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard takes i/n (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= shard < count:
        raise InputError(f"--shard {text}: need 0 <= i < n")
    return shard, count


def launcher_shard() -> str:
    """This process's shard from a launcher's environment (torchrun sets RANK and WORLD_SIZE)."""
    return f"{os.environ.get('RANK', '0')}/{os.environ.get('WORLD_SIZE', '1')}"


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
    out.mkdir(parents=True, exist_ok=True)
    description = {"settings": settings.__dict__, "pairs": pairs, "sources": [str(s[0]) for s in sources]}
    if not (out / "dataset.json").exists():
        _save_json(out / "dataset.json", description)
    mine = range(shard[0], pairs, shard[1])
    todo = [index for index in mine if not (pair_folder(out, index) / "meta.json").exists()]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="pairs", disable=not show_progress)
    for done, index in enumerate(todo):
        if is_canceled is not None and is_canceled():
            bar.close()
            raise Canceled(
                f"stopped after {done} of {len(todo)} pairs; run again with the same settings to resume"
            )
        write_pair(pair_folder(out, index), make_pair(sources, settings, index, generator, device))
        bar.update(1)
        if progress is not None:
            progress(100.0 * (done + 1) / len(todo))
    bar.close()
    return {"written": len(todo), "skipped": len(mine) - len(todo)}


def add_arguments(parser) -> None:
    parser.add_argument(
        "--source", action="append", required=True, help="folder with images/ and masks/ (repeat)"
    )
    parser.add_argument("--method", choices=DATASET_METHODS, default="mixed")
    parser.add_argument("--pairs", type=int, required=True, help="total number of pairs (over all shards)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--shard",
        help="i/n: write pairs k with k %% n == i (default: RANK/WORLD_SIZE under torchrun, else 0/1)",
    )
    parser.add_argument("--crop", type=int, default=256, help="pair size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--star", type=float, default=0.35, help="share of STAR pairs (another crop as t2)")
    parser.add_argument("--no-jitter", action="store_true", help="no independent colour jitter per date")
    parser.add_argument(
        "--appearance", type=float, default=0.5, help="share of pairs with unlabelled appearance change in t2"
    )
    parser.add_argument(
        "--lean",
        type=float,
        default=0.3,
        help="share of pairs whose kept roofs shift 0-3 px in t2 (parallax)",
    )
    parser.add_argument("--no-degrade", action="store_true", help="no per-date blur/sharpening and noise")
    parser.add_argument(
        "--misregistration", type=float, default=2.0, help="max t2 shift in pixels (0 = none)"
    )
    parser.add_argument("--no-swap", action="store_true", help="never swap t1 and t2")
    parser.add_argument(
        "--ground-texture", type=float, default=0.5, help="share of removals filled with texture"
    )
    parser.add_argument(
        "--remove",
        type=float,
        nargs=2,
        default=(0.2, 0.8),
        metavar=("LOW", "HIGH"),
        help="share of a crop's buildings removed per removal pair (lower it for a sparse-change set)",
    )
    parser.add_argument(
        "--create-max", type=int, default=5, help="at most this many objects created per pair"
    )
    parser.add_argument(
        "--anywhere", action="store_true", help="paste objects anywhere free, not on open ground"
    )
    parser.add_argument("--model", default=DEFAULT_GENERATOR, help="generator for --method changen")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


def run(args) -> int:
    if args.pairs < 1 or args.crop < 32:
        raise InputError("--pairs must be >= 1 and --crop >= 32")
    if not 0.0 <= args.remove[0] <= args.remove[1] <= 1.0 or args.create_max < 1:
        raise InputError(
            "--remove takes LOW HIGH shares with 0 <= LOW <= HIGH <= 1; --create-max must be >= 1"
        )
    if not all(0.0 <= share <= 1.0 for share in (args.star, args.ground_texture, args.appearance, args.lean)):
        raise InputError("--star, --ground-texture, --appearance and --lean are shares between 0 and 1")
    settings = Settings(
        method=args.method,
        crop=args.crop,
        seed=args.seed,
        star=args.star,
        jitter=not args.no_jitter,
        appearance=args.appearance,
        lean=args.lean,
        degrade=not args.no_degrade,
        misregistration=args.misregistration,
        swap=not args.no_swap,
        ground_texture=args.ground_texture,
        open_ground=not args.anywhere,
        remove_range=tuple(args.remove),
        create_max=args.create_max,
    )
    generator, device = None, "cpu"
    if args.method == "changen":
        from .changen_gan import load_generator
        from .device import describe_device, pick_device

        device = pick_device(args.device)
        generator = load_generator(args.model, device)
        print(f"generator {args.model} on {describe_device(device)}")
    counts = generate(
        find_sources(args.source),
        settings,
        args.pairs,
        Path(args.out),
        parse_shard(args.shard or launcher_shard()),
        generator,
        device,
    )
    print(f"{counts['written']} pairs written, {counts['skipped']} already finished, in {args.out}")
    return 0
