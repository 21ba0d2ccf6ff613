"""`python -m core synthesize IMAGE BUILDINGS`: events on the buildings, then the images (core.synthesis)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..events.series import simulate_series
from ..io.rasters import raster_grid, read_raster
from ..synthesis.compositing import UNCHANGED_MODES
from ..synthesis.synthesize import DEFAULT_MODELS, METHODS, load_synthesis_generator, synthesize, write_result
from .options import add_device_argument, parse_amount


# ------------------------------------------------------------------------------------------------ command line
def add_arguments(parser) -> None:
    parser.add_argument("image", help="pre-event image: GeoTIFF (any CRS, 8/16-bit) or PNG/JPEG")
    parser.add_argument(
        "buildings", help="building mask raster on the image's grid, or polygons (.gpkg/.geojson)"
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


def run(args) -> int:
    from ..guards import check_folder_outputs
    from ..io.labels import load_state

    if args.steps < 1:
        raise InputError(f"--steps must be at least 1 (one post-event image per step), got {args.steps}.")
    outputs = [f"{kind}_t{t}.tif" for t in range(args.steps + 1) for kind in ("image", "mask", "change")]
    check_folder_outputs([args.image, args.buildings, args.model], args.out, [*outputs, "events.json"])
    grid = raster_grid(args.image)
    image = read_raster(args.image, bands=args.bands)
    state, _, _ = load_state(args.buildings, grid=grid)
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
