"""The Detect tab's background job: core's tiled change detector on a real t1/t2 pair (see `tasks` for how jobs
run)."""

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class DetectRequest:
    t1_path: str
    t2_path: str
    model: str
    threshold: float | None  # None: the model's calibrated threshold
    device: str
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
    go into a fresh temporary folder that is removed on cancel or failure."""

    def job(progress, is_canceled) -> DetectResult:
        from ..core.detection.inference import detect_change
        from ..core.io.rasters import read_raster, write_geotiff

        folder = tempfile.mkdtemp(prefix="changen-detect-")
        try:
            t1_path = request.t1_path
            if request.window is not None:
                crop = read_raster(t1_path, window=request.window)
                t1_path = os.path.join(folder, "t1_view.tif")
                write_geotiff(t1_path, crop.array, crop.grid, nodata=crop.grid.nodata)
            probability_path = os.path.join(folder, "change_probability.tif")
            change_path = os.path.join(folder, "change_mask.tif")
            polygons_path = os.path.join(folder, "change_polygons.gpkg")
            kwargs = {"model": request.model} if request.model else {}
            result = detect_change(
                t1_path,
                request.t2_path,
                change_path,
                probability_path=probability_path,
                vector_path=polygons_path,
                threshold=request.threshold,
                device=request.device,
                progress=lambda value: progress(0.95 * value),
                is_canceled=is_canceled,
                **kwargs,
            )
            progress(100.0)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return DetectResult(
            folder=folder,
            probability_path=probability_path,
            polygons_path=polygons_path,
            polygon_count=result.polygons,
            changed_area_m2=result.changed_area_m2,
            seconds=result.seconds,
            device=result.device,
            threshold=result.threshold,
            notes=list(result.notes),
        )

    return job
