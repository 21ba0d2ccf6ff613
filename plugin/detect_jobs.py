"""The Detect tab's background job: core's tiled change detector on a real t1/t2 pair (see `tasks` for how jobs
run)."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .results import StagedFolder


@dataclass
class DetectRequest:
    t1_path: str
    t2_path: str
    model: str
    threshold: float | None  # None: the model's calibrated threshold
    device: str
    folder: str  # the results folder (`results.results_folder`): each run writes a new folder inside
    name: str  # the run's folder name, before its date and time
    window: Any = None  # rasterio Window of t1, or None for the whole overlap


@dataclass
class DetectResult:
    folder: str
    probability_path: str
    polygons_path: str
    polygon_count: int
    changed_area_m2: float
    seconds: float
    device: str
    threshold: float
    notes: list[str]


def detect_job(request: DetectRequest) -> Callable:
    """A job running core's tiled detector on the pair (t1 cropped to `window` first when one is given); outputs
    go into a new folder in the results folder, which appears only when the run is complete."""

    def job(progress, is_canceled) -> DetectResult:
        from ..core.detection.inference import detect_change
        from ..core.io.rasters import read_raster, write_geotiff

        with StagedFolder(request.folder, request.name) as staged:
            t1_path = request.t1_path
            if request.window is not None:
                crop = read_raster(t1_path, window=request.window)
                t1_path = os.path.join(staged.path, "t1_view.tif")
                write_geotiff(t1_path, crop.array, crop.grid, nodata=crop.grid.nodata)
            kwargs = {"model": request.model} if request.model else {}
            result = detect_change(
                t1_path,
                request.t2_path,
                os.path.join(staged.path, "change_mask.tif"),
                probability_path=os.path.join(staged.path, "change_probability.tif"),
                vector_path=os.path.join(staged.path, "change_polygons.gpkg"),
                threshold=request.threshold,
                device=request.device,
                progress=lambda value: progress(0.95 * value),
                is_canceled=is_canceled,
                **kwargs,
            )
            if request.window is not None:
                os.remove(t1_path)  # only the detector's input
            progress(100.0)
        folder = staged.final
        return DetectResult(
            folder=folder,
            probability_path=os.path.join(folder, "change_probability.tif"),
            polygons_path=os.path.join(folder, "change_polygons.gpkg"),
            polygon_count=result.polygons,
            changed_area_m2=result.changed_area_m2,
            seconds=result.seconds,
            device=result.device,
            threshold=result.threshold,
            notes=list(result.notes),
        )

    return job
