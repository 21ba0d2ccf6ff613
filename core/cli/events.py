"""`python -m core events MASK_OR_POLYGONS [--image IMG] --remove N --create N --steps T --seed S -o DIR`.

Writes, in DIR: `mask_tNN.tif` (classes; a building mask as 0/255) and `instances_tNN.tif` (int32 ids) for every
frame, `change_tNN_tMM.tif` (0/255) for each step and from the first to the last frame, `events.json` (the event
log with seeds and the written files) and `series.png` (a preview strip). Rasters are on the image's grid when
`--image` is given (or on the mask's own grid).
"""

from __future__ import annotations

from pathlib import Path

from ..events.series import UNLABELED_STEP, iterate_series, series_settings, unlabeled_state
from ..events.transitions import TransitionTable, default_oem_transitions
from ..io.labels import load_state
from ..io.rasters import raster_grid
from ..io.series import SeriesWriter, instance_ids
from .options import parse_amount


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


def run(args) -> int:
    from ..guards import check_folder_patterns

    written = [
        "mask_t*.tif",
        "instances_t*.tif",
        "outlines_t*.tif",
        "*change_t*.tif",
        "series.png",
        "events.json",
    ]
    check_folder_patterns([args.input, args.image, args.transition_table], args.out, written)
    grid = raster_grid(args.image) if args.image else None
    state, grid, feature_ids = load_state(
        args.input, grid=grid, kind=args.kind, resolution=args.resolution, id_field=args.id_field
    )
    if args.unlabeled:
        state = unlabeled_state(state.instance)
    kwargs = {
        "remove": parse_amount(args.remove),
        "create": args.create,
        "min_area": args.min_area,
        "scale_range": tuple(args.scale),
        "angle_range": tuple(args.angle),
        "min_gap": args.min_gap,
        "fill_class": args.fill_class,
    }
    if args.unlabeled:
        kwargs.update(UNLABELED_STEP)
    if args.transition > 0 and not args.unlabeled:
        table = TransitionTable.load(args.transition_table) if args.transition_table else None
        kwargs.update(transition=args.transition, transitions=table or default_oem_transitions())
    first_step = {"remove_ids": instance_ids(args.remove_ids, feature_ids)} if args.remove_ids else None
    binary = int(state.semantic.max()) <= 1 and "transitions" not in kwargs and args.fill_class <= 1
    writer = SeriesWriter(Path(args.out), state, grid, binary, outlines=args.unlabeled)
    counts = {"remove": 0, "create": 0, "unplaced": 0}
    for step in iterate_series(state, args.seed, args.steps, first_step=first_step, **kwargs):
        writer.add(step)
        for event in step.events:
            counts[event.kind] = counts.get(event.kind, 0) + 1
        counts["unplaced"] += len(step.unplaced)
    written = writer.finish(args.seed, series_settings(kwargs, first_step), feature_ids)
    print(
        f"{len(state.index)} instances, {args.steps} steps (seed {args.seed}): {counts['remove']} removed, "
        f"{counts['create']} created"
        + (f", {counts['transition']} regions changed class" if counts.get("transition") else "")
        + (f", {counts['unplaced']} could not be placed" if counts["unplaced"] else "")
    )
    print(f"wrote {len(written['files'])} files to {args.out} (event log: {written['log']})")
    return 0
