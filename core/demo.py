"""`python -m core demo -o OUT`: run each part of the project on real shared data and say what was written.

`DEMO_STEPS` is a list of small functions `step(out: Path) -> list[str]` (written paths); each part adds its own.
"""

from __future__ import annotations

from pathlib import Path

from .paths import shared_data_dir

DEMO_MASK = "buildings/xbd_harvey/masks/hurricane-harvey_00000001_pre_disaster.png"
DEMO_SEED = 3


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--out", default="demo_out", help="output folder")


def events_step(out: Path) -> list[str]:
    """A 5-step change-event series on a real xBD Harvey building mask."""
    from .cli_events import write_series
    from .events import simulate_series
    from .instances import load_state

    mask = shared_data_dir() / DEMO_MASK
    state, grid, _ = load_state(mask)
    series = simulate_series(
        state, DEMO_SEED, steps=5, remove=3, create=3, scale_range=(0.8, 1.2), angle_range=(0.0, 360.0)
    )
    target = out / "events"
    written = write_series(series, target, grid, extra={"input": str(mask)})
    return [str(target / name) for name in written["files"]]


DEMO_STEPS = [events_step]


def run(args) -> int:
    out = Path(args.out)
    for step in DEMO_STEPS:
        print(f"== {step.__name__}: {(step.__doc__ or '').strip()}")
        for path in step(out):
            print(f"  wrote {path}")
    return 0
