"""`python -m core generate-dataset`: synthetic change pairs, sharded (`--shard i/n`, torchrun) and resumable.

`--task buildings` (default): building pairs from image + mask folders (`--source`). `--task landcover`: semantic
change pairs (t1, t2, S_t1, S_t2, change, from→to) from the land-cover maps of the shared data, training split
only by default (`core.data.landcover`)."""

from __future__ import annotations

import os
from pathlib import Path

from ..data.dataset import find_sources, generate
from ..data.recipes import Settings, setting_options
from ..data.sampling import LANDCOVER_TRAINING_SETS, SPLITS
from ..errors import InputError
from ..synthesis.synthesize import DEFAULT_GENERATOR, DEFAULT_MODELS, load_synthesis_generator
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


def _flag(item, option) -> str:
    if option.flag is not None:
        return option.flag
    return ("--no-" if item.default is True else "--") + item.name.replace("_", "-")


def add_settings_arguments(parser) -> None:
    """One option per offered `Settings` field (`core.data.recipes.Option`), its default from the field."""
    for item, option in setting_options():
        flag = _flag(item, option)
        if isinstance(item.default, bool):
            parser.add_argument(flag, dest=item.name, action="store_false", help=f"turn off: {option.label}")
            continue
        kind = type(item.default[0] if isinstance(item.default, tuple) else item.default)
        extra = {"choices": list(option.choices)} if option.choices else {"type": kind}
        if isinstance(item.default, tuple):
            extra.update(nargs=len(item.default), metavar=("LOW", "HIGH")[: len(item.default)])
        parser.add_argument(
            flag, dest=item.name, default=item.default, help=f"{option.label} (default: %(default)s)", **extra
        )


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
    parser.add_argument("--pairs", type=int, required=True, help="total number of pairs (over all shards)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--shard",
        help="i/n: write pairs k with k %% n == i (default: RANK/WORLD_SIZE under torchrun, else 0/1)",
    )
    add_settings_arguments(parser)
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
        choices=LANDCOVER_TRAINING_SETS,
        help=f"land-cover sets to draw from (repeat; default all: {', '.join(LANDCOVER_TRAINING_SETS)})",
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
    if args.pairs < 1:
        raise InputError("--pairs must be >= 1")
    values = {item.name: getattr(args, item.name) for item, _ in setting_options()}
    settings = Settings(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})
    generator, device = None, "cpu"
    if args.method in DEFAULT_MODELS:
        from ..device import describe_device, pick_device

        device = pick_device(args.device)
        generator = load_synthesis_generator(args.method, args.model, device)
        print(f"generator {args.model or DEFAULT_MODELS[args.method]} on {describe_device(device)}")
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
    sources = tuple(dict.fromkeys(args.maps or LANDCOVER_TRAINING_SETS))
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
