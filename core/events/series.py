"""Event series (Changen2's mask sequences): a Markov chain of steps from `S_0`, one seed per step, the event
log, and the unlabeled (S0) mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .placement import Creation
from .state import LabelState
from .step import StepResult, simulate_step
from .transitions import ClassChange, TransitionTable


# ---------------------------------------------------------------------------------------- series
@dataclass
class Series:
    """Frames S_0..S_T of a Markov chain of steps; `steps[t]` leads from `frames[t]` to `frames[t + 1]`."""

    frames: list[LabelState]
    steps: list[StepResult]
    seed: int | None = None
    settings: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return max(int(frame.semantic.max()) for frame in self.frames)

    def change_between(self, i: int, j: int) -> np.ndarray:
        """Pixels whose semantic class differs between frames i and j -> bool `(H, W)`."""
        return self.frames[i].semantic != self.frames[j].semantic

    def semantic_change(self, i: int, j: int, num_classes: int | None = None) -> np.ndarray:
        """From->to label between frames i and j: `from * (K + 1) + to` where changed, 0 where not -> int32.

        K = `num_classes` (default: the highest class in the series); decode with `divmod(code, K + 1)`.
        """
        base = (self.num_classes if num_classes is None else int(num_classes)) + 1
        before = self.frames[i].semantic.astype(np.int32)
        after = self.frames[j].semantic.astype(np.int32)
        return np.where(before != after, before * base + after, 0).astype(np.int32)

    def to_dict(self) -> dict:
        return series_log(self.frames[0], self.seed, self.settings, [step.to_dict() for step in self.steps])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def series_log(first: LabelState, seed: int | None, settings: dict, step_logs: list[dict]) -> dict:
    """The event log of a series (JSON-ready): seed, settings and each step's `StepResult.to_dict()`."""
    height, width = first.shape
    return {
        "seed": seed,
        "shape": [height, width],
        "settings": settings,
        "initial_instances": len(first.index),
        "steps": [dict(step=t + 1, **log) for t, log in enumerate(step_logs)],
    }


def iterate_series(
    state: LabelState,
    rng: np.random.Generator | int,
    steps: int,
    first_step: dict | None = None,
    **step_kwargs,
) -> Iterator[StepResult]:
    """The steps of a Markov chain from `state`, one at a time (for series too large to keep in memory).

    `rng` is a Generator or an int seed. Each step draws from its own Generator seeded with a number drawn from
    `rng` and stored in `StepResult.seed`, so any step replays alone:
    `simulate_step(frames[t], np.random.default_rng(steps[t].seed), **kwargs)`.
    `first_step` overrides keyword arguments of step 1 only (e.g. chosen `remove_ids` or `creations`).
    """
    if int(steps) < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(int(rng))
    current = state
    for t in range(int(steps)):
        step_seed = int(rng.integers(2**63))
        kwargs = {**step_kwargs, **(first_step or {})} if t == 0 else step_kwargs
        result = simulate_step(current, np.random.default_rng(step_seed), **kwargs)
        result.seed = step_seed
        current = result.state
        yield result


def series_settings(step_kwargs: dict, first_step: dict | None = None) -> dict:
    """Step keyword arguments as JSON-ready settings for the event log."""
    settings = {key: _jsonable(value) for key, value in step_kwargs.items()}
    if first_step:
        settings["first_step"] = {key: _jsonable(value) for key, value in first_step.items()}
    return settings


def simulate_series(
    state: LabelState,
    rng: np.random.Generator | int,
    steps: int,
    progress=None,
    first_step: dict | None = None,
    **step_kwargs,
) -> Series:
    """A Markov chain of `steps` steps from `state` with all its frames (see `iterate_series`)."""
    seed = None if isinstance(rng, np.random.Generator) else int(rng)
    frames = [state]
    results = []
    for result in iterate_series(state, rng, steps, first_step, **step_kwargs):
        frames.append(result.state)
        results.append(result)
        if progress is not None:
            progress(100.0 * len(results) / steps)
    return Series(frames, results, seed, series_settings(step_kwargs, first_step))


UNLABELED_STEP = {"create": 0}  # S0 mode: removal is the only event (no creation, no class transition)


def unlabeled_state(instance: np.ndarray) -> LabelState:
    """Changen2's unlabeled (S0) mode: objects without classes (e.g. from a segmenter) as one foreground class;
    condition = `frame.outlines()`, change label = removed objects (`series.change_between`)."""
    instance = np.asarray(instance)
    return LabelState((instance != 0).astype(np.uint8), instance)


def simulate_unlabeled_series(
    instance: np.ndarray, rng: np.random.Generator | int, steps: int, remove: int | float, min_area: int = 64
) -> Series:
    """A whole S0 series (`unlabeled_state`, `UNLABELED_STEP`)."""
    return simulate_series(
        unlabeled_state(instance), rng, steps, remove=remove, min_area=min_area, **UNLABELED_STEP
    )


def _jsonable(value):
    if isinstance(value, TransitionTable):
        return json.loads(value.to_json())
    if isinstance(value, Creation | ClassChange):
        return value.describe()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
