"""The Synthesize tab's background jobs: the analyst's edits become core's event series, synthesized into a
preview of the window or a full exported pair (see `tasks` for how jobs run)."""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import Canceled
from .generators import cached_generator
from .results import StagedFolder, scratch_folder


@dataclass(frozen=True)
class PlacementSpec:
    """A creation in the window's pixel frame: a copy of building `source_fid` or of `vertices` ((N, 2) rows/cols),
    centred at `centre` (row, col), rotated `angle` degrees counter-clockwise on screen, scaled by `scale`."""

    source_fid: int | None
    vertices: tuple | None
    centre: tuple[float, float]
    angle: float
    scale: float


@dataclass
class SynthesisRequest:
    """Everything a synthesis job needs, copied from layers and widgets on the main thread."""

    image_path: str
    window: Any  # rasterio Window of the image
    # GeoDataFrame: column `fid` (QGIS feature id) + geometry, in the image's CRS (no CRS object)
    buildings: Any
    remove_fids: list[int]
    placements: list[PlacementSpec]
    random_remove: int
    random_create: int
    seed: int
    steps: int
    method: str
    device: str
    model: str
    random_in_first_step: bool = True  # False when the random events of step 1 were already drawn as edits
    unchanged: str = "keep"  # Changen: "keep" the image outside the change, or "regenerate" it all

    def random_edits(self) -> tuple[list, list[tuple]]:
        """Step 1's random events in the window as edits (`core.synthesis.edits.random_edits`)."""
        from ..core.io.rasters import raster_grid
        from ..core.synthesis.edits import random_edits

        grid = raster_grid(self.image_path).window_grid(self.window)
        return random_edits(self.buildings, grid, self.random_remove, self.random_create, self.seed)


@dataclass
class SimulatedEdits:
    """The image window, its building state and the event series produced from the analyst's edits."""

    image: Any  # core.io.rasters.RasterData of the window
    located: Any  # core.io.labels.PolygonInstances
    series: Any  # core.events.series.Series
    notes: list[str]


def image_bands(path: str) -> list[int]:
    import rasterio

    with rasterio.open(path) as dataset:
        return [1, 2, 3] if dataset.count >= 3 else [1, 1, 1]


def _creations(request: SynthesisRequest, located) -> list:
    import numpy as np

    from ..core.events.placement import Creation

    creations = []
    for placement in request.placements:
        source_id = located.instance_of(placement.source_fid) if placement.source_fid is not None else None
        if source_id is not None:
            creations.append(Creation(source_id, placement.centre, placement.angle, placement.scale))
        else:
            shape = np.asarray(placement.vertices, dtype=np.float64)
            creations.append(
                Creation(shape=shape, centre=placement.centre, angle=placement.angle, scale=placement.scale)
            )
    return creations


def simulate_edits(request: SynthesisRequest) -> SimulatedEdits:
    """Step 1 applies the analyst's removals and placements (plus the random counts, unless those were already
    drawn as edits); later steps are random (core's `iterate_series`, one seed per step)."""
    from ..core.events.series import Series, iterate_series
    from ..core.io.labels import polygons_to_state
    from ..core.io.rasters import read_raster
    from ..core.synthesis.methods import limit_to_method

    image = read_raster(request.image_path, bands=image_bands(request.image_path), window=request.window)
    located = polygons_to_state(request.buildings, image.grid, id_field="fid")
    notes, remove_ids = [], []
    for fid in request.remove_fids:
        instance_id = located.instance_of(fid)
        if instance_id is None:
            notes.append(f"building {fid} is outside the synthesized window and was not removed")
        else:
            remove_ids.append(instance_id)
    creations = _creations(request, located)
    planned_removals = len(remove_ids) + request.random_remove * request.steps
    planned_creations = len(creations) + request.random_create * request.steps
    removes, creates, scope_notes = limit_to_method(request.method, planned_removals, planned_creations)
    notes += scope_notes
    every_step = {
        "remove": request.random_remove if removes else 0,
        "create": request.random_create if creates else 0,
    }
    first_step = {"remove_ids": remove_ids if removes else [], "creations": creations if creates else []}
    if not request.random_in_first_step:
        first_step.update(remove=0, create=0)
    results = list(iterate_series(located.state, request.seed, request.steps, first_step, **every_step))
    for step, result in enumerate(results, start=1):
        notes += [f"step {step}: a creation was not placed: {item.reason}" for item in result.unplaced]
    settings = {
        "remove_feature_ids": list(request.remove_fids),
        "random_remove": request.random_remove,
        "random_create": request.random_create,
        "placements": len(request.placements),
    }
    frames = [located.state] + [result.state for result in results]
    return SimulatedEdits(image, located, Series(frames, results, request.seed, settings), notes)


def _run_synthesis(request: SynthesisRequest, progress, is_canceled):
    import numpy as np

    from ..core.device import pick_device
    from ..core.synthesis.synthesize import synthesize

    edits = simulate_edits(request)
    progress(10.0)
    device = pick_device(request.device)
    result = synthesize(
        edits.image,
        edits.located.state,
        edits.series,
        method=request.method,
        device=device,
        rng=np.random.default_rng([request.seed, 1]),
        progress=lambda value: progress(10.0 + 0.8 * value),
        is_canceled=is_canceled,
        generator=cached_generator(request.method, request.model, device),
        unchanged=request.unchanged,
    )
    return edits, result


def _event_counts(series) -> tuple[int, int]:
    events = [event for step in series.steps for event in step.events]
    return sum(e.kind == "remove" for e in events), sum(e.kind == "create" for e in events)


@dataclass
class PreviewResult:
    folder: str
    post_path: str
    polygons: Any  # GeoDataFrame: event_type, step, instance_id, feature_id, area_m2 (no CRS object)
    crs_wkt: str
    notes: list[str]
    method: str
    device: str
    removed: int
    created: int
    seconds: float


def preview_job(request: SynthesisRequest) -> Callable:
    """A job writing the last synthesized image of the window into a fresh temporary folder."""

    def job(progress, is_canceled) -> PreviewResult:
        from ..core.io.rasters import write_geotiff
        from ..core.synthesis.edits import change_polygons

        started = time.perf_counter()
        with scratch_folder("changen-preview-") as folder:
            edits, result = _run_synthesis(request, progress, is_canceled)
            if is_canceled():
                raise Canceled()
            grid = edits.image.grid
            post_path = os.path.join(folder, "post_preview.tif")
            write_geotiff(post_path, result.images[-1], grid, nodata=grid.nodata)
            polygons = change_polygons(edits.series, grid, edits.located.feature_ids)
            removed, created = _event_counts(edits.series)
            progress(100.0)
        return PreviewResult(
            folder,
            post_path,
            polygons,
            grid.crs_wkt or "",
            edits.notes,
            request.method,
            result.log["device"],
            removed,
            created,
            time.perf_counter() - started,
        )

    return job


@dataclass
class MaskPolygons:
    folder: str
    path: str  # GeoPackage, layer "buildings", field instance_id
    count: int


def vectorise_mask_job(mask_path: str) -> Callable:
    """A job turning a building mask (or label/instance) raster into building polygons in a GeoPackage inside a
    fresh temporary folder (removed on cancel or failure): large masks take minutes, never on the main thread."""

    def job(progress, is_canceled) -> MaskPolygons:
        from dataclasses import replace

        from ..core.io.labels import instances_to_polygons, load_state
        from ..core.io.vectors import write_gpkg

        with scratch_folder("changen-mask-") as folder:
            state, grid, _ = load_state(mask_path)
            progress(10.0)
            frame = instances_to_polygons(
                state.instance,
                replace(grid, crs_wkt=None),  # no pyproj CRS in a task (see DEVELOPING.md)
                progress=lambda value: progress(10.0 + 0.8 * value),
                is_canceled=is_canceled,
            )
            if is_canceled():
                raise Canceled()
            path = os.path.join(folder, "buildings.gpkg")
            write_gpkg(frame[["instance_id", "geometry"]], path, grid.crs_wkt, layer="buildings")
            progress(100.0)
        return MaskPolygons(folder, path, len(frame))

    return job


@dataclass
class ExportResult:
    folder: str
    images: list[str]  # image_t0 … image_tT
    masks: list[str]  # mask_t0 … mask_tT
    changes: list[str]  # change_t1 … change_tT
    polygons_path: str
    polygon_count: int


def export_job(request: SynthesisRequest, parent: str, source_name: str) -> Callable:
    """A job writing a full synthetic pair into `parent` (`results.StagedFolder`: complete or not at all): t0…tT
    images, masks and change masks (core's GeoTIFFs on the source grid), change polygons (GeoPackage) and
    events.json."""

    def job(progress, is_canceled) -> ExportResult:
        from ..core.io.vectors import write_gpkg
        from ..core.synthesis.edits import change_polygons
        from ..core.synthesis.synthesize import write_result

        with StagedFolder(parent, f"changen_{source_name}") as staged:
            edits, result = _run_synthesis(request, progress, is_canceled)
            grid = edits.image.grid
            result.log["source"] = {
                "image": request.image_path,
                "window": [int(request.window.col_off), int(request.window.row_off)]
                + [int(request.window.width), int(request.window.height)],
                "seed": request.seed,
            }
            result.log["notes"] = edits.notes
            write_result(result, grid, Path(staged.path))
            if is_canceled():
                raise Canceled()
            polygons = change_polygons(edits.series, grid, edits.located.feature_ids)
            write_gpkg(
                polygons,
                os.path.join(staged.path, "change_polygons.gpkg"),
                grid.crs_wkt,
                layer="change_polygons",
            )
            progress(99.0)
            if is_canceled():
                raise Canceled()
        final = staged.final
        steps = range(len(result.images))
        return ExportResult(
            folder=final,
            images=[os.path.join(final, f"image_t{t}.tif") for t in steps],
            masks=[os.path.join(final, f"mask_t{t}.tif") for t in steps],
            changes=[os.path.join(final, f"change_t{t}.tif") for t in steps if t > 0],
            polygons_path=os.path.join(final, "change_polygons.gpkg"),
            polygon_count=len(polygons),
        )

    return job
