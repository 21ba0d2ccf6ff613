"""Land-cover change for the dock and Processing: a request copied from widgets or parameters, core's
`synthesize_landcover` on it, and the dock's preview/export jobs (see `tasks` for how jobs run)."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core.errors import Canceled, InputError
from .generators import cached_generator
from .results import StagedFolder, scratch_folder
from .synthesis_jobs import image_bands


@dataclass
class LandcoverRequest:
    """Everything a land-cover job needs. `mapping`: a source name of core's `SOURCE_CLASSES` or a
    {raster value: project class} dict; `class_changes`: core `ClassChange`s ((row, col) on the image's grid)."""

    image_path: str
    labels_path: str
    mapping: Any
    class_changes: tuple = ()
    steps: int = 1
    seed: int = 0
    transition: float = 0.0
    min_region: int = 256
    transitions_path: str | None = None
    device: str = "auto"
    inputs_hint: str = ""  # appended to input errors: where the analyst makes the fix


def run_landcover(request: LandcoverRequest, progress=None, is_canceled=None):
    """core's land-cover synthesis on the request -> (`LandcoverResult`, the image's `RasterGrid`). Inputs are
    checked (classes, grid, parameters) before the generator loads."""
    from ..core.device import pick_device
    from ..core.events.classes import PROJECT_CLASSES
    from ..core.events.transitions import TransitionTable
    from ..core.io.labels import load_landcover
    from ..core.io.rasters import raster_grid, read_raster, to_uint8
    from ..core.synthesis.landcover import LandcoverParameters, synthesize_landcover

    try:
        grid = raster_grid(request.image_path)
        classes = load_landcover(request.labels_path, grid, request.mapping)
        table = None
        if request.transitions_path:
            table = TransitionTable.load(request.transitions_path).reindexed(PROJECT_CLASSES[1:])
        parameters = LandcoverParameters(
            steps=request.steps,
            transition=request.transition,
            min_region=request.min_region,
            class_changes=tuple(request.class_changes),
            table=table,
            seed=request.seed,
        )
        parameters.check()
        image = read_raster(request.image_path, bands=image_bands(request.image_path))
        pixels = to_uint8(image.array, valid=image.valid)
    except InputError as error:
        raise InputError(f"{error} {request.inputs_hint}".strip()) from None
    device = pick_device(request.device)
    generator = cached_generator("changen2", None, device, fallback="")  # land cover has no other method
    result = synthesize_landcover(
        generator, pixels, classes, parameters, valid=image.valid, progress=progress, is_canceled=is_canceled
    )
    result.log["source"] = {"image": request.image_path, "labels": request.labels_path, "seed": request.seed}
    return result, grid


@dataclass
class LandcoverOutput:
    """A written land-cover result (core's `landcover_outputs` in `folder`) and what it changed."""

    folder: str
    steps: int
    regions: int  # regions that changed class over the series
    changed_pixels: list[int]  # per step
    device: str
    seconds: float

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    @property
    def post_image(self) -> str:
        return self.path(f"image_t{self.steps}.tif")

    @property
    def from_to(self) -> str:
        """The from→to map of the whole series (fromto_t1, or fromto_t0_tT for T > 1)."""
        return self.path(f"fromto_t0_t{self.steps}.tif" if self.steps > 1 else "fromto_t1.tif")


def write_landcover(request: LandcoverRequest, folder: str, progress, is_canceled) -> LandcoverOutput:
    """`run_landcover`, then core's files into `folder` (each written atomically)."""
    from ..core.synthesis.landcover import write_landcover_result

    started = time.perf_counter()
    result, grid = run_landcover(request, lambda value: progress(0.95 * value), is_canceled)
    if is_canceled():
        raise Canceled()
    write_landcover_result(result, grid, Path(folder))
    progress(100.0)
    return LandcoverOutput(
        folder=folder,
        steps=len(result.changes),
        regions=sum(len(step.events) for step in result.series.steps),
        changed_pixels=[int(change.sum()) for change in result.changes],
        device=result.log["device"],
        seconds=time.perf_counter() - started,
    )


def landcover_preview_job(request: LandcoverRequest) -> Callable:
    """A job writing the whole result into a fresh temporary folder (removed on cancel or failure)."""

    def job(progress, is_canceled) -> LandcoverOutput:
        with scratch_folder("changen-landcover-") as folder:
            return write_landcover(request, folder, progress, is_canceled)

    return job


def landcover_export_job(request: LandcoverRequest, parent: str, source_name: str) -> Callable:
    """A job writing the georeferenced pair or series (core's `write_landcover_result`, with the GIF for T > 1)
    into a new folder inside `parent` (`results.StagedFolder`: complete or not at all)."""

    def job(progress, is_canceled) -> LandcoverOutput:
        with StagedFolder(parent, f"changen_landcover_{source_name}") as staged:
            output = write_landcover(request, staged.path, progress, is_canceled)
            if is_canceled():
                raise Canceled()
        return replace(output, folder=staged.final)

    return job
