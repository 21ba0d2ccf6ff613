"""`python -m core generate-dataset`: synthetic change pairs, sharded (`--shard i/n`, torchrun) and resumable."""

from __future__ import annotations

import os
from pathlib import Path

from ..data.dataset import find_sources, generate
from ..data.recipes import Settings, setting_options
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
        "--source", action="append", required=True, help="folder with images/ and masks/ (repeat)"
    )
    parser.add_argument("--pairs", type=int, required=True, help="total number of pairs (over all shards)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--shard",
        help="i/n: write pairs k with k %% n == i (default: RANK/WORLD_SIZE under torchrun, else 0/1)",
    )
    add_settings_arguments(parser)
    parser.add_argument("--model", default=DEFAULT_GENERATOR, help="generator for --method changen")
    add_device_argument(parser)


def run(args) -> int:
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
