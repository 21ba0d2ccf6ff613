"""Background jobs as QgsTasks, and a runner that keeps only the newest request of a kind.

A job is a plain function `job(progress, is_canceled) -> result` built on the main thread from copied data: it never
touches QgsProject, layers or widgets. `run()` stores any exception; `finished()` (main thread) hands the outcome to
the runner, which drops results of requests that a newer one replaced.
"""

import os
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt import sip

from ..core.errors import Canceled, InputError
from ..core.io.vectors import areas_m2, write_gpkg
from . import LOG_TAG


@dataclass
class TaskOutcome:
    """What a finished task produced: exactly one of `result`, `error`, or `canceled` is meaningful."""

    token: int
    result: Any = None
    error: BaseException | None = None
    details: str = ""
    canceled: bool = False


class CoreTask(QgsTask):
    def __init__(self, description: str, job: Callable, on_finished: Callable[["CoreTask", bool], None]):
        super().__init__(description, QgsTask.CanCancel)
        self.job = job
        self.on_finished = on_finished
        self.result = None
        self.error: BaseException | None = None
        self.details = ""

    def run(self) -> bool:
        try:
            self.result = self.job(self.setProgress, self.isCanceled)
        except Canceled:
            return False
        except Exception as error:  # noqa: BLE001 (an exception escaping run() takes QGIS down)
            self.error = error
            self.details = traceback.format_exc()
            return False
        return not self.isCanceled()

    def finished(self, ok: bool) -> None:  # noqa: FBT001 (QGIS's signature)
        self.on_finished(self, ok)


class LatestRequestRunner:
    """Runs one kind of job; a new request cancels the running one and makes its result stale.

    `on_outcome(outcome)` is called on the main thread for every request that is still the newest; for a stale one
    `discard(result)` is called instead so the job's files can be removed. When `owner` (the widget showing the
    outcome) has been deleted meanwhile (plugin unloaded), results are discarded too.
    """

    def __init__(
        self,
        on_outcome: Callable[[TaskOutcome], None],
        discard: Callable[[Any], None] | None = None,
        task_manager=None,
        owner=None,
    ):
        self.on_outcome = on_outcome
        self.discard = discard
        self.owner = owner
        self.task_manager = task_manager or QgsApplication.taskManager()
        self.latest_token = 0
        self.running: dict[int, CoreTask] = {}

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, description: str, job: Callable) -> CoreTask:
        """Start `job`; the returned task carries `token` and emits `progressChanged` for progress bars."""
        self.latest_token += 1
        token = self.latest_token
        for older in list(self.running.values()):
            older.cancel()
        task = CoreTask(description, job, lambda finished_task, ok: self._finished(token, finished_task, ok))
        task.token = token
        self.running[token] = task
        self.task_manager.addTask(task)
        return task

    def cancel(self) -> None:
        """Cancel the running request; its outcome arrives as canceled and leaves nothing behind."""
        for task in list(self.running.values()):
            task.cancel()

    def _finished(self, token: int, task: CoreTask, ok: bool) -> None:
        self.running.pop(token, None)
        stale = token != self.latest_token or (self.owner is not None and sip.isdeleted(self.owner))
        if stale and task.error is not None:  # nobody will show it
            QgsMessageLog.logMessage(f"{task.description()} failed:\n{task.details}", LOG_TAG, Qgis.Warning)
        if stale or not ok:
            if task.result is not None and self.discard is not None:
                self.discard(task.result)
            if stale:
                return
        outcome = TaskOutcome(
            token=token,
            result=task.result if ok else None,
            error=task.error,
            details=task.details,
            canceled=not ok and task.error is None,
        )
        self.on_outcome(outcome)


# ------------------------------------------------------------------------------------------------ synthesis
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


@dataclass
class SimulatedEdits:
    """The image window, its building state and the event series produced from the analyst's edits."""

    image: Any  # core.raster_io.RasterData of the window
    located: Any  # core.instances.PolygonInstances
    series: Any  # core.events.Series
    notes: list[str]


def _image_bands(path: str) -> list[int]:
    import rasterio

    with rasterio.open(path) as dataset:
        return [1, 2, 3] if dataset.count >= 3 else [1, 1, 1]


def simulate_edits(request: SynthesisRequest) -> SimulatedEdits:
    """Step 1 applies the analyst's removals and placements (plus the random counts, unless those were already
    drawn as edits); later steps are random."""
    import numpy as np

    from ..core.events.placement import Creation
    from ..core.events.series import Series
    from ..core.events.step import simulate_step
    from ..core.io.labels import polygons_to_state
    from ..core.io.rasters import read_raster

    image = read_raster(request.image_path, bands=_image_bands(request.image_path), window=request.window)
    located = polygons_to_state(request.buildings, image.grid, id_field="fid")
    notes = []
    remove_ids = []
    for fid in request.remove_fids:
        instance_id = located.instance_of(fid)
        if instance_id is None:
            notes.append(f"building {fid} is outside the synthesized window and was not removed")
        else:
            remove_ids.append(instance_id)
    creations = []
    for placement in request.placements:
        source_id = located.instance_of(placement.source_fid) if placement.source_fid is not None else None
        if source_id is not None:
            creations.append(Creation(source_id, placement.centre, placement.angle, placement.scale))
        else:
            creations.append(
                Creation(
                    shape=np.asarray(placement.vertices, dtype=np.float64),
                    centre=placement.centre,
                    angle=placement.angle,
                    scale=placement.scale,
                )
            )
    from .method_scope import limit_to_scope

    planned_removals = len(remove_ids) + request.random_remove * request.steps
    planned_creations = len(creations) + request.random_create * request.steps
    removes, creates, scope_notes = limit_to_scope(request.method, planned_removals, planned_creations)
    notes += (
        scope_notes  # the events keep only what the method does, so counts, masks and polygons are honest
    )
    remove_ids, creations = (remove_ids if removes else []), (creations if creates else [])
    rng = np.random.default_rng(request.seed)
    frames, results = [located.state], []
    for step in range(request.steps):
        step_seed = int(rng.integers(2**63))
        explicit = {"remove_ids": remove_ids, "creations": creations} if step == 0 else {}
        random = step > 0 or request.random_in_first_step
        result = simulate_step(
            frames[-1],
            np.random.default_rng(step_seed),
            remove=request.random_remove if random and removes else 0,
            create=request.random_create if random and creates else 0,
            **explicit,
        )
        result.seed = step_seed
        frames.append(result.state)
        results.append(result)
        notes += [f"step {step + 1}: a creation was not placed: {item.reason}" for item in result.unplaced]
    settings = {
        "remove_feature_ids": list(request.remove_fids),
        "random_remove": request.random_remove,
        "random_create": request.random_create,
        "placements": len(request.placements),
    }
    return SimulatedEdits(image, located, Series(frames, results, request.seed, settings), notes)


def change_polygons(series, grid, feature_ids: dict):
    """Polygons of what changed between S_0 and S_T: event type (removed/created), step, feature id, area (m²).

    Coordinates are in the grid's CRS. No pyproj object is made (geopandas CRSs): pyproj crashes in QgsTask threads
    inside QGIS, so the frame has no CRS and areas come from rasterio's PROJ."""
    import geopandas
    import numpy as np
    from rasterio import features
    from shapely.geometry import shape

    rows = []
    first, last = series.frames[0], series.frames[-1]
    removed = (first.instance != 0) & (last.instance != first.instance)
    created = (last.instance != 0) & (last.instance != first.instance)
    step_of = {}
    for step, result in enumerate(series.steps, start=1):
        for event in result.events:
            step_of[(event.kind, event.instance_id)] = step
    for kind, mask, ids in (("removed", removed, first.instance), ("created", created, last.instance)):
        for geometry, value in features.shapes(
            np.where(mask, ids, 0).astype(np.int32), mask=mask, transform=grid.transform, connectivity=8
        ):
            instance_id = int(value)
            event_kind = "remove" if kind == "removed" else "create"
            rows.append(
                {
                    "event_type": kind,
                    "step": step_of.get((event_kind, instance_id), 0),
                    "instance_id": instance_id,
                    "feature_id": feature_ids.get(instance_id, -1) if kind == "removed" else -1,
                    "geometry": shape(geometry),
                }
            )
    columns = ["event_type", "step", "instance_id", "feature_id", "geometry"]
    frame = geopandas.GeoDataFrame(rows or None, columns=columns, geometry="geometry")
    if len(frame):
        frame = frame.dissolve(by=["event_type", "instance_id"], as_index=False, sort=False)[columns]
    frame["area_m2"] = areas_m2(frame.geometry, grid.crs_wkt)
    return frame


def random_edits(request: SynthesisRequest):
    """Random removals and copies for the window (core's event simulation with the request's counts and seed),
    returned as feature ids to remove and (source fid, centre (row, col), angle, scale) copies."""
    import numpy as np

    from ..core.events.step import simulate_step
    from ..core.io.labels import polygons_to_state
    from ..core.io.rasters import raster_grid

    grid = raster_grid(request.image_path).window_grid(request.window)
    located = polygons_to_state(request.buildings, grid, id_field="fid")
    step = simulate_step(
        located.state,
        np.random.default_rng(request.seed),
        remove=request.random_remove,
        create=request.random_create,
    )
    removals = [located.feature_ids[e.instance_id] for e in step.events if e.kind == "remove"]
    creations = [
        (located.feature_ids[e.source_id], e.centre, e.angle, e.scale)
        for e in step.events
        if e.kind == "create" and e.source_id in located.feature_ids
    ]
    return removals, creations


_GENERATORS: dict[tuple[str, str], Any] = {}
_GENERATOR_LOCK = threading.Lock()


def _generator(request: SynthesisRequest, device):
    if request.method == "changen2":  # the Settings model file is the GAN's; RS-DiT uses its shipped file
        return cached_generator(None, device, "changen2")
    return cached_generator(request.model, device) if request.method == "changen" else None


def cached_generator(model: str | None, device, method: str = "changen"):
    """The method's generator, loaded once per (method, model, device) and kept: loading dominates a preview."""
    from ..core.synthesis.synthesize import DEFAULT_MODELS, load_synthesis_generator

    name = model or DEFAULT_MODELS[method]
    with _GENERATOR_LOCK:
        key = (method, name, str(device))
        if key not in _GENERATORS:
            try:
                _GENERATORS[key] = load_synthesis_generator(method, name, device)
            except InputError as error:
                raise InputError(
                    f"{error} Meanwhile choose the Copy-Paste or Inpainting method in the dock, or pick a generator "
                    "file in Changen → Settings…."
                ) from error
        return _GENERATORS[key]


def generator_is_cached(model: str, device_choice: str) -> bool:
    from ..core.device import pick_device
    from ..core.synthesis.synthesize import DEFAULT_GENERATOR

    try:
        device = pick_device(device_choice)
    except InputError:
        return False
    with _GENERATOR_LOCK:
        return ("changen", model or DEFAULT_GENERATOR, str(device)) in _GENERATORS


def warm_up_job(model: str, device_choice: str) -> Callable:
    """A job loading the generator into the cache ahead of the first preview; returns the device description."""

    def job(progress, is_canceled) -> str:
        from ..core.device import describe_device, pick_device

        device = pick_device(device_choice)
        cached_generator(model, device)
        return describe_device(device)

    return job


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
        generator=_generator(request, device),
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

        started = time.perf_counter()
        folder = tempfile.mkdtemp(prefix="changen-preview-")
        try:
            edits, result = _run_synthesis(request, progress, is_canceled)
            if is_canceled():
                raise Canceled()
            grid = edits.image.grid
            post_path = os.path.join(folder, "post_preview.tif")
            write_geotiff(post_path, result.images[-1], grid, nodata=grid.nodata)
            polygons = change_polygons(edits.series, grid, edits.located.feature_ids)
            removed, created = _event_counts(edits.series)
            progress(100.0)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
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
class ExportResult:
    folder: str
    images: list[str]  # image_t0 … image_tT
    masks: list[str]  # mask_t0 … mask_tT
    changes: list[str]  # change_t1 … change_tT
    polygons_path: str
    polygon_count: int


def export_job(request: SynthesisRequest, parent: str, source_name: str) -> Callable:
    """A job writing a full synthetic pair into a temporary folder inside `parent`, renamed into place at the end:
    t0…tT images, masks and change masks (core's GeoTIFFs on the source grid), change polygons (GeoPackage) and
    events.json. A canceled or failed export leaves nothing behind."""

    def job(progress, is_canceled) -> ExportResult:
        from ..core.synthesis.synthesize import write_result

        if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
            raise InputError(f"Cannot write into '{parent}': choose an existing folder you can write to.")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        final = os.path.join(parent, f"changen_{_safe_name(source_name)}_{stamp}")
        staging = tempfile.mkdtemp(prefix=".changen-export-", dir=parent)
        try:
            edits, result = _run_synthesis(request, progress, is_canceled)
            grid = edits.image.grid
            result.log["source"] = {
                "image": request.image_path,
                "window": [int(request.window.col_off), int(request.window.row_off)]
                + [int(request.window.width), int(request.window.height)],
                "seed": request.seed,
            }
            result.log["notes"] = edits.notes
            write_result(result, grid, Path(staging))
            if is_canceled():
                raise Canceled()
            polygons = change_polygons(edits.series, grid, edits.located.feature_ids)
            polygons_path = os.path.join(staging, "change_polygons.gpkg")
            write_gpkg(polygons, polygons_path, grid.crs_wkt, layer="change_polygons")
            progress(99.0)
            if is_canceled():
                raise Canceled()
            os.chmod(staging, 0o755)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
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


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "image"


# ------------------------------------------------------------------------------------------------ detection
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
