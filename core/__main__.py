"""`python -m core COMMAND …`: one module per command, imported only when that command runs."""

import argparse
import importlib
import sys

from .errors import InputError
from .guards import run_interruptible

COMMANDS = {
    "events": ("cli.events", "simulate change events on building masks or polygons"),
    "evaluate": ("cli.evaluate", "zero-shot change detection scores on A/B/label pair folders"),
    "detect": ("cli.detect", "detect changes between two rasters (tiled, georeferenced mask and polygons)"),
    "train-detector": ("cli.train_detector", "train the ChangeStar change detector on synthetic pairs"),
    "synthesize": (
        "cli.synthesize",
        "synthesize post-event images from a pre-event image and building events",
    ),
    "generate-dataset": (
        "cli.generate_dataset",
        "synthetic change pairs from single-temporal image + mask folders",
    ),
    "train-generator": ("cli.train_generator", "train the Changen generator (resumable, torchrun-capable)"),
    "train-autoencoder": (
        "cli.train_autoencoder",
        "train the latent autoencoder of the diffusion generators",
    ),
    "train-denoiser": ("cli.train_denoiser", "train the RS-DiT denoiser in an autoencoder's latent space"),
    "demo": ("cli.demo", "run the main job on the shipped/shared sample"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        listing = "\n".join(f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items())
        print(f"usage: python -m core COMMAND [options]\n\ncommands:\n{listing}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    name = argv[0]
    module_name, description = COMMANDS[name]
    module = importlib.import_module(f".{module_name}", __package__)
    parser = argparse.ArgumentParser(prog=f"python -m core {name}", description=description)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return run_interruptible(lambda: int(module.run(args) or 0))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
