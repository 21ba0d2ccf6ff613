"""`python -m core generate-dataset`: synthetic change pairs, sharded (`--shard i/n`, torchrun) and resumable.

`--task buildings` (default): building pairs from image + mask folders (`--source`). `--task landcover`: semantic
change pairs (t1, t2, S_t1, S_t2, change, from→to) from the land-cover maps of the shared data, training split
only by default (`core.data.landcover`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..data.dataset import DATASET_METHODS, find_sources, generate
from ..data.recipes import Settings
from ..data.split import LANDCOVER_SOURCES, SPLITS
from ..errors import InputError
from ..synthesis.synthesize import DEFAULT_GENERATOR
from .options import add_device_argument


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


def add_arguments(parser) -> None:
    parser.add_argument(
        "--task",
        choices=("buildings", "landcover"),
        default="buildings",
        help="buildings: building change pairs from --source folders; landcover: semantic change pairs from "
        "real land-cover maps (RS-DiT)",
    )
    parser.add_argument(
        "--source", action="append", help="buildings: folder with images/ and masks/ (repeat)"
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
    parser.add_argument(
        "--model",
        default=None,
        help=f"generator for --method changen (default {DEFAULT_GENERATOR}) or the RS-DiT of --task landcover "
        "(default rsdit_cpu)",
    )
    add_device_argument(parser)
    landcover = parser.add_argument_group("--task landcover")
    landcover.add_argument("--data", help="data root holding landcover/<set>/ (default: the shared data)")
    landcover.add_argument(
        "--maps",
        action="append",
        choices=LANDCOVER_SOURCES,
        help=f"land-cover sets to draw from (repeat; default all: {', '.join(LANDCOVER_SOURCES)})",
    )
    landcover.add_argument(
        "--split", choices=SPLITS, default="train", help="train: never a map the RS-DiT held out"
    )
    landcover.add_argument(
        "--transition",
        type=float,
        nargs=2,
        default=(0.2, 0.5),
        metavar=("LOW", "HIGH"),
        help="range of the per-pair probability that a region changes class",
    )
    landcover.add_argument(
        "--min-region", type=int, default=256, help="smallest region (pixels) that changes class"
    )
    landcover.add_argument(
        "--unchanged",
        choices=("keep", "regenerate"),
        default="keep",
        help="keep t1 outside the change, or regenerate the whole t2 (ChangeAnywhere's varied unchanged area)",
    )


def run(args) -> int:
    if args.pairs < 1 or args.crop < 32:
        raise InputError("--pairs must be >= 1 and --crop >= 32")
    if args.task == "landcover":
        return run_landcover(args)
    if not args.source:
        raise InputError(
            "--task buildings needs --source FOLDER (images/ and masks/); repeat for more folders"
        )
    return run_buildings(args)


def run_buildings(args) -> int:
    from ..guards import check_folders_apart

    check_folders_apart(args.source, args.out)
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
        from ..device import describe_device, pick_device
        from ..synthesis.changen_gan import load_generator

        device = pick_device(args.device)
        generator = load_generator(args.model or DEFAULT_GENERATOR, device)
        print(f"generator {args.model or DEFAULT_GENERATOR} on {describe_device(device)}")
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


def run_landcover(args) -> int:
    from ..data.landcover import LandcoverSettings, find_landcover_maps, generate_landcover
    from ..device import pick_device
    from ..guards import check_folders_apart
    from ..paths import shared_data_dir
    from ..synthesis.synthesize import load_synthesis_generator

    root = Path(args.data) if args.data else shared_data_dir()
    sources = tuple(dict.fromkeys(args.maps or LANDCOVER_SOURCES))
    check_folders_apart([root / "landcover" / source for source in sources], args.out)
    low, high = args.transition
    if not 0.0 <= low <= high <= 1.0 or args.min_region < 0:
        raise InputError(
            "--transition takes LOW HIGH probabilities with 0 <= LOW <= HIGH <= 1; --min-region >= 0"
        )
    settings = LandcoverSettings(
        crop=args.crop,
        seed=args.seed,
        transition=(low, high),
        min_region=args.min_region,
        unchanged=args.unchanged,
        split=args.split,
    )
    maps = find_landcover_maps(root, sources, args.split)
    generator = load_synthesis_generator("changen2", args.model, pick_device(args.device))
    counts = generate_landcover(
        maps, settings, args.pairs, Path(args.out), generator, parse_shard(args.shard or launcher_shard())
    )
    print(
        f"{counts['written']} land-cover pairs written, {counts['skipped']} already finished, from {len(maps)} "
        f"{args.split} maps, in {args.out}"
    )
    return 0
