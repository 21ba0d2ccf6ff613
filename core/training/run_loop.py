"""The run loop every trainer plugs into: steps until the step target, the time budget or a SIGTERM/SIGINT; a log
row of the mean losses every few steps; a checkpoint (with the trainer's evaluation) every few minutes and when the
run stops, so that the same command resumes it."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cadence:
    steps: int  # the step target of the whole run (resumed runs included)
    checkpoint_minutes: float
    log_every: int
    minutes: float = 0.0  # this session's time budget (0 = none)

    @classmethod
    def from_args(cls, args) -> Cadence:
        """From the trainers' shared flags (`--steps`, `--checkpoint-minutes`, `--log-every`, `--minutes`)."""
        return cls(args.steps, args.checkpoint_minutes, args.log_every, getattr(args, "minutes", 0.0))


def add_run_arguments(parser, steps: int, log_every: int, minutes: bool = True) -> None:
    """The flags `Cadence.from_args` reads (`--minutes` where the trainer offers a time budget)."""
    parser.add_argument(
        "--steps",
        type=int,
        default=steps,
        help="stop after this many steps in total (a resumed run continues)",
    )
    if minutes:
        parser.add_argument(
            "--minutes", type=float, default=0.0, help="stop after this many minutes (0 = no limit)"
        )
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--log-every", type=int, default=log_every, help="steps between log rows")


class StopSignals:
    """While training, SIGTERM and SIGINT (Ctrl-C) are noted (`requested`) instead of interrupting a step; the
    previous handlers come back on exit."""

    requested = False

    def __enter__(self) -> StopSignals:
        self.requested = False
        self._previous = {
            signum: signal.signal(signum, self._note) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        return self

    def _note(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def append_jsonl(path: Path, row: dict) -> None:
    """One JSON row appended to a run's log (`log.jsonl`, `eval.jsonl`)."""
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def run_loop(
    train_step: Callable[[], dict[str, float]],
    current_step: Callable[[], int],
    cadence: Cadence,
    checkpoint: Callable[[], None],
    log: Callable[[dict], None],
    *,
    speed: Callable[[int, float], dict] = lambda steps, seconds: {},
    after_step: Callable[[int], dict | None] = lambda step: None,
    agree: Callable[[bool], bool] = lambda stop: stop,
    lead: bool = True,
    digits: int = 5,
) -> bool:
    """Run `train_step()` (one optimisation step, returning its losses) until `current_step()` reaches
    `cadence.steps`, the time budget is spent or a signal asks to stop; True when a signal stopped the run.

    The lead process (`lead`; the others only step) logs `{"step", mean losses, **speed(steps, seconds)}` every
    `cadence.log_every` steps and at the stop, merges in what `after_step(step)` returns (e.g. sample metrics),
    and calls `checkpoint()` every `cadence.checkpoint_minutes` and at the stop. `agree(stop)` lets distributed
    processes agree on stopping (every process calls it after every step)."""
    with StopSignals() as signals:
        started = last_checkpoint = window_start = time.monotonic()
        sums: dict[str, float] = {}
        count = 0
        while current_step() < cadence.steps:
            for key, value in train_step().items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            step, now = current_step(), time.monotonic()
            out_of_time = cadence.minutes > 0 and now - started >= cadence.minutes * 60
            stop = agree(signals.requested or step >= cadence.steps or out_of_time)
            if lead:
                row = None
                if step % cadence.log_every == 0 or stop:
                    row = {"step": step, **{k: round(v / count, digits) for k, v in sums.items()}}
                    row.update(speed(count, now - window_start))
                    sums, count, window_start = {}, 0, now
                extra = after_step(step)
                if extra:
                    row = {**(row or {"step": step}), **extra}
                if row:
                    log(row)
                if stop or time.monotonic() - last_checkpoint >= cadence.checkpoint_minutes * 60:
                    checkpoint()
                    last_checkpoint = time.monotonic()
            if stop:
                break
    return signals.requested
