"""Land-cover change on a real class map (Changen2 §3.3 class transitions; ChangeAnywhere's semantic change):
`S_t+1 = F(S_t)` by transitions of connected regions, then `I_t+1 = G(S_t+1, I_t)` by the RS-DiT conditioned on
the one-hot project classes, with latent mixing so the unchanged area stays the input's.

The API a caller (CLI, QGIS dock, Processing) uses: `LandcoverParameters` → `synthesize_landcover(generator,
image, classes, parameters, progress, is_canceled)` → `LandcoverResult` → `write_landcover_result(result, grid,
out)`. Classes are project class ids (`core.events.classes`; read a classified raster with
`core.io.labels.load_landcover`).

From→to encoding: `code = from * 9 + to` on pixels whose class changed, 0 elsewhere (9 = number of project
classes, so `divmod(code, 9)` gives (from, to); a change never has from == to, so no change code is 0).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..atomic import write_text_atomic
from ..device import describe_device
from ..errors import Canceled, InputError
from ..events.classes import PROJECT_CLASSES, PROJECT_COLOURS
from ..events.series import Series, simulate_series
from ..events.state import LabelState
from ..events.transitions import ClassChange, TransitionTable, default_oem_transitions
from ..io.images import write_gif_atomic
from ..io.rasters import RasterGrid, write_geotiff
from ..io.styles import write_paletted_qml
from .compositing import check_unchanged_mode
from .diffusion.change_sampler import (
    LatentDiffusionGenerator,
    check_class_condition,
    synthesize_change,
    unchanged_options,
)
from .synthesize import SynthesisResult, write_result

FROM_TO_BASE = len(PROJECT_CLASSES)
CLASS_COLORMAP = {index: colour for index, colour in enumerate(PROJECT_COLOURS)}
GIF_SIDE = 384  # pixels of each panel's long side in the animation


@dataclass
class LandcoverParameters:
    """What changes. `class_changes` (an analyst's picks: a region at a pixel, or every region of a class, becomes
    a class) apply in step 1; every step then switches each connected region of at least `min_region` pixels with
    probability `transition` to a class drawn from `table` (default: Changen2's OpenEarthMap table). `unchanged`:
    "keep" the input outside the change, or "regenerate" the whole image (training pairs)."""

    steps: int = 1
    transition: float = 0.2
    min_region: int = 256
    class_changes: tuple[ClassChange, ...] = ()
    table: TransitionTable | None = None
    seed: int = 0
    unchanged: str = "keep"

    def check(self) -> None:
        if int(self.steps) < 1:
            raise InputError(f"steps must be at least 1 (one post-event image per step), got {self.steps}")
        if not 0.0 <= self.transition <= 1.0:
            raise InputError(
                f"transition is a probability per region and step in [0, 1], got {self.transition}"
            )
        if self.min_region < 0:
            raise InputError(f"min_region is a size in pixels (>= 0), got {self.min_region}")
        check_unchanged_mode(self.unchanged)
        if self.table is not None and len(self.table.matrix) != len(PROJECT_CLASSES):
            raise InputError(
                "the transition table must be over the project classes: pass it through "
                "TransitionTable.reindexed(PROJECT_CLASSES[1:])"
            )
        for change in self.class_changes:
            if not 0 <= change.to_cls < len(PROJECT_CLASSES):
                raise InputError(
                    f"class change {change.describe()}: the target must be a project class id 0..8"
                )


@dataclass
class LandcoverResult(SynthesisResult):
    """`images[t]` t = 0..T, `masks[t]` the project class map of each date, `changes[t - 1]` the pixels whose
    class changed from t - 1 to t (uint8 1/0), `series` the simulated class maps and events, `log` as JSON."""

    series: Series

    def from_to(self, i: int, j: int) -> np.ndarray:
        """From→to code between dates i and j (`from * 9 + to` where the class changed, 0 elsewhere) -> uint8."""
        return self.series.semantic_change(i, j, FROM_TO_BASE - 1).astype(np.uint8)


def simulate_landcover(classes: np.ndarray, parameters: LandcoverParameters) -> Series:
    """The class maps S_0..S_T from `classes` (H, W) project ids."""
    parameters.check()
    classes = np.asarray(classes)
    if classes.ndim != 2 or (classes.size and int(classes.max()) >= len(PROJECT_CLASSES)):
        raise InputError(
            "the class map must be (H, W) project class ids 0..8 (map a source with load_landcover)"
        )
    table = parameters.table or default_oem_transitions()
    state = LabelState(classes.astype(np.uint8), np.zeros(classes.shape, np.int32))
    first = {"class_changes": tuple(parameters.class_changes)} if parameters.class_changes else None
    return simulate_series(
        state,
        parameters.seed,
        parameters.steps,
        first_step=first,
        transition=parameters.transition,
        transitions=table,
        min_region=parameters.min_region,
    )


def synthesize_landcover(
    generator: LatentDiffusionGenerator,
    image: np.ndarray,
    classes: np.ndarray,
    parameters: LandcoverParameters,
    valid: np.ndarray | None = None,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> LandcoverResult:
    """Images t0..tT for `image` (H, W, 3) uint8 whose classes (H, W project ids) change as `parameters` say.
    Pixels outside `valid` (nodata) keep the input's values in every date. Same parameters → same result."""
    check_class_condition(generator)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(
            f"land-cover synthesis needs an 8-bit RGB image (H, W, 3); got {image.shape} {image.dtype}"
        )
    if np.shape(classes) != image.shape[:2]:
        raise InputError(
            f"the class map ({np.shape(classes)[1]}×{np.shape(classes)[0]}) and the image "
            f"({image.shape[1]}×{image.shape[0]}) must have the same size: read the map onto the image's grid"
        )
    series = simulate_landcover(classes, parameters)
    options = unchanged_options(parameters.unchanged)
    seeds = np.random.default_rng([parameters.seed, 1])
    images, timings = [image], []
    total = len(series.steps)
    for t, step in enumerate(series.steps):
        if is_canceled is not None and is_canceled():
            raise Canceled()
        started = time.perf_counter()

        def step_progress(percent: float, t=t) -> None:
            if progress is not None:
                progress((t + percent / 100.0) * 100.0 / total)

        following = synthesize_change(
            generator,
            images[-1],
            step.state.semantic,
            step.change,
            int(seeds.integers(2**31)),
            **options,
            progress=step_progress,
            is_canceled=is_canceled,
        )
        if valid is not None:
            following[~valid] = image[~valid]
        images.append(following)
        timings.append(round(time.perf_counter() - started, 3))
        step_progress(100.0)
    log = {
        "task": "landcover",
        "method": "changen2",
        "model": generator.name,
        "unchanged": parameters.unchanged,
        "device": describe_device(generator.device),
        "seconds_per_step": timings,
        "classes": list(PROJECT_CLASSES),
        "from_to": f"from * {FROM_TO_BASE} + to where the class changed, 0 elsewhere",
        "series": series.to_dict(),
    }
    masks = [frame.semantic.copy() for frame in series.frames]
    changes = [step.change.astype(np.uint8) for step in series.steps]
    return LandcoverResult(images, masks, changes, log, series)


# ------------------------------------------------------------------------------------------------ outputs
def landcover_outputs(steps: int) -> list[str]:
    """The file names `write_landcover_result` writes for `steps` steps."""
    names = [f"{kind}_t{t}.tif" for t in range(steps + 1) for kind in ("image", "mask")]
    names += [f"mask_t{t}.qml" for t in range(steps + 1)]
    names += [
        name
        for t in range(1, steps + 1)
        for name in (f"change_t{t}.tif", f"fromto_t{t}.tif", f"fromto_t{t}.qml")
    ]
    if steps > 1:
        names += [f"fromto_t0_t{steps}.tif", f"fromto_t0_t{steps}.qml", "animation.gif"]
    return names + ["fromto_legend.json", "events.json"]


def from_to_legend() -> dict:
    """Every from→to code with its class names (JSON-ready)."""
    codes = {}
    for before, before_name in enumerate(PROJECT_CLASSES):
        for after, after_name in enumerate(PROJECT_CLASSES):
            if before != after:
                codes[str(before * FROM_TO_BASE + after)] = {"from": before_name, "to": after_name}
    return {
        "encoding": f"code = from * {FROM_TO_BASE} + to on pixels whose class changed; 0 = no change",
        "classes": {str(index): name for index, name in enumerate(PROJECT_CLASSES)},
        "codes": codes,
    }


def write_landcover_result(result: LandcoverResult, grid: RasterGrid, out: Path) -> list[Path]:
    """GeoTIFFs on `grid` (the input's CRS and transform): `image_t{t}`, `mask_t{t}` (project class ids with a
    colour table and a QGIS style `.qml` naming the classes), `change_t{t}` (1 = changed since t - 1),
    `fromto_t{t}` (from→to code of step t; for T > 1 also `fromto_t0_tT`), `fromto_legend.json`, `events.json`
    and, for T > 1, `animation.gif` (each date's image beside its class map)."""
    out = Path(out)
    written = write_result(result, grid, out, colormap=CLASS_COLORMAP)
    class_entries = [
        (index, colour, name)
        for index, (colour, name) in enumerate(zip(PROJECT_COLOURS, PROJECT_CLASSES, strict=True))
    ]
    for t in range(len(result.images)):
        write_paletted_qml(out / f"mask_t{t}.qml", class_entries)
        written.append(out / f"mask_t{t}.qml")
    steps = len(result.changes)
    pairs = [(t - 1, t, f"fromto_t{t}") for t in range(1, steps + 1)]
    if steps > 1:
        pairs.append((0, steps, f"fromto_t0_t{steps}"))
    legend = from_to_legend()
    for i, j, name in pairs:
        code = result.from_to(i, j)
        write_geotiff(out / f"{name}.tif", code, grid)
        present = [int(value) for value in np.unique(code) if value]
        write_paletted_qml(
            out / f"{name}.qml",
            [(value, PROJECT_COLOURS[value % FROM_TO_BASE], _code_label(value)) for value in present],
        )
        written += [out / f"{name}.tif", out / f"{name}.qml"]
    write_text_atomic(out / "fromto_legend.json", json.dumps(legend, indent=1))
    written.append(out / "fromto_legend.json")
    if steps > 1:
        write_gif_atomic(out / "animation.gif", animation_frames(result))
        written.append(out / "animation.gif")
    return written


def _code_label(code: int) -> str:
    before, after = divmod(code, FROM_TO_BASE)
    return f"{PROJECT_CLASSES[before]} → {PROJECT_CLASSES[after]}"


def colour_classes(classes: np.ndarray) -> np.ndarray:
    """(H, W) project ids -> (H, W, 3) uint8 in the class colours."""
    return np.asarray(PROJECT_COLOURS, np.uint8)[classes]


def animation_frames(result: SynthesisResult) -> list[np.ndarray]:
    """One frame per date: the image beside its class map, `GIF_SIDE` px on the long side, labelled t=…"""
    frames = []
    height, width = result.images[0].shape[:2]
    scale = GIF_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    for t, (image, classes) in enumerate(zip(result.images, result.masks, strict=True)):
        left = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        right = cv2.resize(colour_classes(classes), size, interpolation=cv2.INTER_NEAREST)
        frame = np.concatenate([left, np.full((size[1], 4, 3), 255, np.uint8), right], axis=1)
        cv2.rectangle(frame, (0, 0), (52, 24), (30, 30, 30), -1)
        cv2.putText(frame, f"t={t}", (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        frames.append(frame)
    return frames
