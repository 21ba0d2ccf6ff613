"""`python -m core synthesize IMAGE BUILDINGS`: events on the buildings, then the images (core.synthesis).

`python -m core synthesize IMAGE --task landcover --labels LANDCOVER.tif --source dubai_mbrsc`: class transitions
on a classified raster of the image's grid, drawn by the RS-DiT (`core.synthesis.landcover`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..events.classes import PROJECT_CLASSES, SOURCE_CLASSES, class_id, load_class_map
from ..events.series import simulate_series
from ..io.rasters import raster_grid, read_raster, to_uint8
from ..synthesis.methods import DEFAULT_MODELS, METHODS, UNCHANGED_MODES
from .options import add_device_argument, parse_amount


# ------------------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("image", help="pre-event image: GeoTIFF (any CRS, 8/16-bit) or PNG/JPEG")
    parser.add_argument(
        "buildings",
        nargs="?",
        help="--task buildings: building mask raster on the image's grid, or polygons (.gpkg/.geojson)",
    )
    parser.add_argument(
        "--task",
        choices=("buildings", "landcover"),
        default="buildings",
        help="buildings: remove/create buildings; landcover: class transitions of a land-cover map, always drawn "
        "by the RS-DiT (changen2; --method, --remove, --create do not apply)",
    )
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument(
        "--remove", default="0.3", help="instances removed per step: a count (3) or fraction (0.3)"
    )
    parser.add_argument(
        "--create", type=int, default=3, help="objects created per step (copies of instances)"
    )
    parser.add_argument("--steps", type=int, default=1, help="number of steps T (images t0..tT)")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed gives the same output"
    )
    parser.add_argument("--method", choices=METHODS, default="changen")
    parser.add_argument(
        "--unchanged",
        choices=UNCHANGED_MODES,
        default="keep",
        help="changen: keep the input outside the change (default) or regenerate the whole image (the paper's "
        "synthesis, more diverse training data); the baselines always keep it",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--model",
        default=None,
        help="model name or file for changen/changen2 (default: the shipped changen_gan_cpu / rsdit_cpu; changen2 "
        "also takes an official RSDiT .pt with --autoencoder)",
    )
    parser.add_argument(
        "--autoencoder",
        default=None,
        help="changen2 with an official RS-DiT file: Stable Diffusion's VAE (folder or file)",
    )
    parser.add_argument("--bands", type=int, nargs=3, metavar=("R", "G", "B"), help="band numbers (1-based)")
    parser.add_argument(
        "--min-area", type=int, default=64, help="smallest instance (pixels) to remove or copy"
    )
    parser.add_argument("--scale", type=float, nargs=2, default=(0.9, 1.1), metavar=("LOW", "HIGH"))
    parser.add_argument("--angle", type=float, nargs=2, default=(-15.0, 15.0), metavar=("LOW", "HIGH"))
    landcover = parser.add_argument_group("--task landcover")
    landcover.add_argument("--labels", help="classified raster on the image's grid (uint8 class values)")
    mapping = landcover.add_mutually_exclusive_group()
    mapping.add_argument(
        "--source",
        choices=sorted(SOURCE_CLASSES),
        help="the labels' class scheme (project: the values are project class ids already)",
    )
    mapping.add_argument("--class-map", help='JSON {"value": "project class"} for any other class scheme')
    landcover.add_argument(
        "--transitions", help="JSON transition table (default: Changen2's OpenEarthMap table)"
    )
    landcover.add_argument(
        "--transition",
        type=float,
        default=None,
        help="probability that a region changes class in a step (default 0.2, or 0 with --change-class/--change-at)",
    )
    landcover.add_argument(
        "--min-region", type=int, default=256, help="smallest region (pixels) a random transition changes"
    )
    landcover.add_argument(
        "--change-class",
        action="append",
        default=[],
        metavar="A:B",
        help="in step 1, every region of class A becomes class B (names or ids, e.g. tree:bareland; repeat)",
    )
    landcover.add_argument(
        "--change-at",
        action="append",
        default=[],
        metavar="X,Y:B",
        help="in step 1, the region under map coordinate X,Y (the image's CRS; column,row for plain images) "
        "becomes class B (repeat)",
    )


def run(args) -> int:
    if args.steps < 1:
        raise InputError(f"--steps must be at least 1 (one post-event image per step), got {args.steps}.")
    if args.task == "landcover":
        return run_landcover(args)
    if args.buildings is None:
        raise InputError(
            "synthesize needs BUILDINGS (a mask or polygons), or --task landcover with --labels."
        )
    return run_buildings(args)


def run_buildings(args) -> int:
    from ..guards import check_folder_outputs, signals_held
    from ..io.labels import load_state

    outputs = [f"{kind}_t{t}.tif" for t in range(args.steps + 1) for kind in ("image", "mask", "change")]
    check_folder_outputs([args.image, args.buildings, args.model], args.out, [*outputs, "events.json"])
    grid = raster_grid(args.image)
    image = read_raster(args.image, bands=args.bands)
    state, _, _ = load_state(args.buildings, grid=grid)
    with signals_held():  # torch, once the inputs are read
        from ..synthesis.synthesize import load_synthesis_generator, synthesize, write_result

    series = simulate_series(
        state,
        args.seed,
        args.steps,
        remove=parse_amount(args.remove),
        create=args.create,
        min_area=args.min_area,
        scale_range=tuple(args.scale),
        angle_range=tuple(args.angle),
    )
    generator = args.model
    if args.autoencoder:
        if args.method != "changen2":
            raise InputError("--autoencoder is for --method changen2 with an official RS-DiT file.")
        from ..device import pick_device

        generator = load_synthesis_generator(
            "changen2", args.model, pick_device(args.device), args.autoencoder
        )
    started = time.perf_counter()
    result = synthesize(
        image,
        state,
        series,
        method=args.method,
        device=args.device,
        rng=np.random.default_rng([args.seed, 1]),
        generator=generator,
        unchanged=args.unchanged,
    )
    written = write_result(result, grid, Path(args.out))
    events = [event for step in series.steps for event in step.events]
    removed = sum(event.kind == "remove" for event in events)
    created = sum(event.kind == "create" for event in events)
    mode = f" ({args.unchanged} unchanged)" if args.method in DEFAULT_MODELS else ""
    print(
        f"{args.method}{mode} on {result.log['device']}: {args.steps} step(s), {removed} removed, {created} created, "
        f"{time.perf_counter() - started:.1f} s; wrote {len(written)} files to {args.out}"
    )
    return 0


def parse_change_at(text: str, grid):
    """ "X,Y:B" (map coordinates in the image's CRS) -> ClassChange(the region at that pixel becomes B)."""
    import math

    from ..events.transitions import ClassChange

    where, separator, after = text.partition(":")
    try:
        x, y = (float(part) for part in where.split(","))
    except ValueError:
        raise InputError(f"--change-at takes X,Y:CLASS (e.g. 300010.5,2779990:water), got {text!r}") from None
    if not separator:
        raise InputError(f"--change-at takes X,Y:CLASS (e.g. 300010.5,2779990:water), got {text!r}")
    col, row = ~grid.transform * (x, y)
    if not (0 <= row < grid.height and 0 <= col < grid.width):
        left, bottom, right, top = grid.bounds
        raise InputError(
            f"--change-at {where} lies outside the image (it covers x {left:.6g}..{right:.6g}, y {bottom:.6g}.."
            f"{top:.6g}): give a point on the image, in its CRS"
        )
    return ClassChange(class_id(after), at=(math.floor(row), math.floor(col)))


def run_landcover(args) -> int:
    from ..device import pick_device
    from ..events.transitions import ClassChange, TransitionTable
    from ..guards import check_folder_outputs
    from ..io.labels import load_landcover
    from ..synthesis.landcover import (
        LandcoverParameters,
        landcover_outputs,
        synthesize_landcover,
        write_landcover_result,
    )
    from ..synthesis.synthesize import load_synthesis_generator

    if args.labels is None:
        raise InputError(
            "--task landcover needs --labels LANDCOVER.tif (a classified raster on the image's grid)."
        )
    if args.buildings is not None:
        raise InputError(
            f"--task landcover takes no BUILDINGS argument (got {args.buildings}); give --labels."
        )
    inputs = [args.image, args.labels, args.class_map, args.transitions, args.model]
    check_folder_outputs(inputs, args.out, landcover_outputs(args.steps))
    grid = raster_grid(args.image)
    image = read_raster(args.image, bands=args.bands)
    mapping = load_class_map(args.class_map) if args.class_map else args.source
    classes = load_landcover(args.labels, grid, mapping)
    changes = tuple(ClassChange.parse(text) for text in args.change_class)
    changes += tuple(parse_change_at(text, grid) for text in args.change_at)
    table = (
        TransitionTable.load(args.transitions).reindexed(PROJECT_CLASSES[1:]) if args.transitions else None
    )
    transition = args.transition if args.transition is not None else (0.0 if changes else 0.2)
    parameters = LandcoverParameters(
        steps=args.steps,
        transition=transition,
        min_region=args.min_region,
        class_changes=changes,
        table=table,
        seed=args.seed,
        unchanged=args.unchanged,
    )
    parameters.check()
    generator = load_synthesis_generator("changen2", args.model, pick_device(args.device), args.autoencoder)
    started = time.perf_counter()
    pixels = to_uint8(image.array, valid=image.valid)
    if pixels.shape[2] != 3:
        raise InputError(
            f"synthesis needs 3 bands, the image has {pixels.shape[2]}: choose three with --bands"
        )
    result = synthesize_landcover(generator, pixels, classes, parameters, valid=image.valid)
    written = write_landcover_result(result, grid, Path(args.out))
    changed = [int(change.sum()) for change in result.changes]
    regions = sum(len(step.events) for step in result.series.steps)
    print(
        f"landcover ({args.unchanged} unchanged) on {result.log['device']}: {args.steps} step(s), {regions} region(s) "
        f"changed class, {changed} px per step, {time.perf_counter() - started:.1f} s; wrote {len(written)} files "
        f"to {args.out}"
    )
    return 0
