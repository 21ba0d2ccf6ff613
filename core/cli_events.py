"""`python -m core events MASK_OR_POLYGONS [--image IMG] --remove N --create N --steps T --seed S -o DIR`.

Writes, in DIR: `mask_tNN.tif` (classes; a building mask as 0/255) and `instances_tNN.tif` (int32 ids) for every
frame, `change_tNN_tMM.tif` (0/255) for each step and from the first to the last frame, `events.json` (the event
log with seeds and the written files) and `series.png` (a preview strip). Rasters are on the image's grid when
`--image` is given (or on the mask's own grid).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .events import Series, TransitionTable, default_oem_transitions, simulate_series
from .instances import load_state
from .raster_io import RasterGrid, raster_grid, write_geotiff

REMOVED_COLOUR = (230, 40, 40)  # RGB
CREATED_COLOUR = (40, 200, 60)
TRANSITION_COLOUR = (240, 180, 30)
LEGEND_HEIGHT = 24


def add_arguments(parser) -> None:
    parser.add_argument(
        "input", help="building mask / label / instance raster, or polygons (.gpkg/.geojson/.shp)"
    )
    parser.add_argument("--image", help="image whose grid the outputs (and rasterised polygons) use")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument(
        "--remove", default="0", help="instances removed a step: a count (3) or a fraction (0.3)"
    )
    parser.add_argument(
        "--remove-ids",
        type=int,
        nargs="+",
        default=(),
        metavar="ID",
        help="instances (feature ids for polygons) removed in the first step",
    )
    parser.add_argument("--create", type=int, default=0, help="objects created a step (copies of instances)")
    parser.add_argument("--steps", type=int, default=1, help="number of steps T (frames S_0..S_T)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same masks")
    parser.add_argument(
        "--min-area", type=int, default=64, help="smallest instance (pixels) to remove or copy"
    )
    parser.add_argument("--min-gap", type=int, default=2, help="pixels kept free around created objects")
    parser.add_argument("--scale", type=float, nargs=2, default=(0.8, 1.2), metavar=("LOW", "HIGH"))
    parser.add_argument("--angle", type=float, nargs=2, default=(0.0, 360.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--fill-class", type=int, default=0, help="class given to removed pixels")
    parser.add_argument(
        "--transition", type=float, default=0.0, help="probability a land-cover region changes"
    )
    parser.add_argument(
        "--transition-table", help="JSON transition table (default: OpenEarthMap's 8 classes)"
    )
    parser.add_argument("--kind", choices=("auto", "mask", "labels", "instances"), default="auto")
    parser.add_argument(
        "--resolution", type=float, help="pixel size for polygons without --image (map units)"
    )
    parser.add_argument("--id-field", help="integer attribute to use as polygon id (default: the feature id)")
    parser.add_argument(
        "--unlabeled", action="store_true", help="Changen2 S0 mode: removal only, writes object outlines"
    )


def parse_amount(text: str) -> int | float:
    """ "3" -> 3 instances, "0.3" -> 30 %."""
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise InputError(f"--remove takes a count (3) or a fraction (0.3), got {text!r}") from None


def run(args) -> int:
    grid = raster_grid(args.image) if args.image else None
    state, grid, feature_ids = load_state(
        args.input, grid=grid, kind=args.kind, resolution=args.resolution, id_field=args.id_field
    )
    kwargs = {
        "remove": parse_amount(args.remove),
        "create": 0 if args.unlabeled else args.create,
        "min_area": args.min_area,
        "scale_range": tuple(args.scale),
        "angle_range": tuple(args.angle),
        "min_gap": args.min_gap,
        "fill_class": args.fill_class,
    }
    if args.transition > 0 and not args.unlabeled:
        table = (
            TransitionTable.load(args.transition_table)
            if args.transition_table
            else default_oem_transitions()
        )
        kwargs.update(transition=args.transition, transitions=table)
    first_step = {"remove_ids": instance_ids(args.remove_ids, feature_ids)} if args.remove_ids else None
    series = simulate_series(state, args.seed, args.steps, first_step=first_step, **kwargs)
    written = write_series(series, Path(args.out), grid, outlines=args.unlabeled, feature_ids=feature_ids)
    log = written["log"]
    removed = sum(e.kind == "remove" for s in series.steps for e in s.events)
    created = sum(e.kind == "create" for s in series.steps for e in s.events)
    unplaced = sum(len(s.unplaced) for s in series.steps)
    print(
        f"{len(state.index)} instances, {args.steps} steps (seed {args.seed}): {removed} removed, {created} created"
        + (f", {unplaced} could not be placed" if unplaced else "")
    )
    print(f"wrote {len(written['files'])} files to {args.out} (event log: {log})")
    return 0


def instance_ids(ids, feature_ids: dict | None) -> tuple[int, ...]:
    """Ids given by a user -> instance ids: polygon inputs are addressed by their feature ids."""
    if not feature_ids:
        return tuple(int(i) for i in ids)
    instance_of = {fid: iid for iid, fid in feature_ids.items()}
    unknown = [i for i in ids if i not in instance_of]
    if unknown:
        raise InputError(
            f"no polygon with feature id {unknown} on the grid (outside the image or too small?)"
        )
    return tuple(instance_of[i] for i in ids)


def write_series(
    series: Series,
    out: Path,
    grid: RasterGrid | None,
    outlines: bool = False,
    feature_ids: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """Write every frame, the step and overall change masks, the event log and a preview strip into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    height, width = series.frames[0].shape
    if grid is None:
        from affine import Affine

        grid = RasterGrid(None, Affine.identity(), width, height)
    binary = series.num_classes <= 1
    files = []

    def save(name, array, dtype):
        write_geotiff(out / name, array, grid, dtype=dtype)
        files.append(name)

    last = len(series.frames) - 1
    for t, frame in enumerate(series.frames):
        save(f"mask_t{t:02d}.tif", frame.semantic * np.uint8(255) if binary else frame.semantic, np.uint8)
        save(f"instances_t{t:02d}.tif", frame.instance, np.int32)
        if outlines:
            save(f"outlines_t{t:02d}.tif", frame.outlines().astype(np.uint8) * 255, np.uint8)
    for t, step in enumerate(series.steps):
        save(f"change_t{t:02d}_t{t + 1:02d}.tif", step.change.astype(np.uint8) * 255, np.uint8)
    if last > 1:
        save(f"change_t00_t{last:02d}.tif", series.change_between(0, last).astype(np.uint8) * 255, np.uint8)
    if last >= 1 and not binary:
        save(f"semantic_change_t00_t{last:02d}.tif", series.semantic_change(0, last), np.int32)
    write_png(out / "series.png", render_strip(series))
    files.append("series.png")
    log = series.to_dict()
    log["files"] = files
    if feature_ids:
        log["feature_ids"] = {str(k): v for k, v in feature_ids.items()}
    log.update(extra or {})
    write_text(out / "events.json", json.dumps(log, indent=1))
    files.append("events.json")
    return {"files": files, "log": str(out / "events.json")}


def render_strip(series: Series, panel: int = 256, gap: int = 4) -> np.ndarray:
    """Frames side by side `(h, w, 3)` RGB uint8: objects white, the step's removals red, creations green,
    transitions amber; each panel `panel` px wide and labelled t=0..T."""
    panels = []
    for t, frame in enumerate(series.frames):
        rgb = np.zeros((*frame.shape, 3), dtype=np.uint8)
        rgb[frame.semantic != 0] = (235, 235, 235)
        if t > 0:
            step = series.steps[t - 1]
            rgb[step.transitioned] = TRANSITION_COLOUR
            rgb[step.removed] = REMOVED_COLOUR
            rgb[step.created] = CREATED_COLOUR
        scale = panel / max(frame.shape)
        size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        cv2.rectangle(small, (0, 0), (44, 26), (40, 40, 40), -1)
        cv2.putText(small, f"t={t}", (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(small)
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    strip = np.full((height + LEGEND_HEIGHT, width, 3), 128, dtype=np.uint8)
    col = 0
    for small in panels:
        strip[: small.shape[0], col : col + small.shape[1]] = small
        col += small.shape[1] + gap
    x = 8
    for text, colour in (("objects", (235, 235, 235)), ("removed", REMOVED_COLOUR), ("created", CREATED_COLOUR),
                         ("class transition", TRANSITION_COLOUR)):  # fmt: skip
        cv2.rectangle(strip, (x, height + 6), (x + 12, height + 18), colour, -1)
        cv2.putText(
            strip,
            text,
            (x + 18, height + 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        x += 40 + 9 * len(text)
    return strip


def write_png(path: Path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    write_bytes(path, encoded.tobytes())


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Atomic: a temporary file in the same folder, then `os.replace`."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
