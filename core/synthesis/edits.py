"""An analyst's building edits of an image window, as data (the QGIS dock's logic, without QGIS): random edits
drawn ahead of a synthesis so they can be seen and changed, and the polygons of what a series changed.

Buildings come as polygons with a feature-id column in the window grid's CRS; nothing here makes a pyproj object
(pyproj crashes in QgsTask threads inside QGIS), so frames carry no CRS and areas come from rasterio's PROJ.
"""

from __future__ import annotations

import geopandas
import numpy as np
from rasterio import features
from shapely.geometry import shape

from ..events.series import Series
from ..events.step import simulate_step
from ..io.labels import polygons_to_state
from ..io.rasters import RasterGrid
from ..io.vectors import areas_m2

CHANGE_COLUMNS = ("event_type", "step", "instance_id", "feature_id", "geometry", "area_m2")


def random_edits(
    buildings, grid: RasterGrid, remove: int | float, create: int, seed: int, id_field: str = "fid"
) -> tuple[list, list[tuple]]:
    """One random event step on the buildings of `grid` (core's `simulate_step` with `remove`, `create` and
    `seed`), as edits: the feature ids to remove, and copies (source feature id, centre (row, col), angle in
    degrees counter-clockwise, scale). Creations of drawn shapes have no source feature and are left out."""
    located = polygons_to_state(buildings, grid, id_field=id_field)
    step = simulate_step(located.state, np.random.default_rng(seed), remove=remove, create=create)
    removals = [located.feature_ids[event.instance_id] for event in step.events if event.kind == "remove"]
    copies = [
        (located.feature_ids[event.source_id], event.centre, event.angle, event.scale)
        for event in step.events
        if event.kind == "create" and event.source_id in located.feature_ids
    ]
    return removals, copies


def change_polygons(series: Series, grid: RasterGrid, feature_ids: dict) -> geopandas.GeoDataFrame:
    """Polygons of what changed between S_0 and S_T (columns `CHANGE_COLUMNS`): event type (removed/created),
    the step of the event, instance id, the removed building's feature id (-1 for creations) and area in m².
    Coordinates are in the grid's CRS; the frame has no CRS object (see the module note)."""
    first, last = series.frames[0], series.frames[-1]
    moved = last.instance != first.instance
    step_of = {
        (event.kind, event.instance_id): step
        for step, result in enumerate(series.steps, start=1)
        for event in result.events
    }
    rows = []
    for kind, event_kind, ids in (
        ("removed", "remove", first.instance),
        ("created", "create", last.instance),
    ):
        mask = (ids != 0) & moved
        for geometry, value in features.shapes(
            np.where(mask, ids, 0).astype(np.int32), mask=mask, transform=grid.transform, connectivity=8
        ):
            instance_id = int(value)
            rows.append(
                {
                    "event_type": kind,
                    "step": step_of.get((event_kind, instance_id), 0),
                    "instance_id": instance_id,
                    "feature_id": feature_ids.get(instance_id, -1) if kind == "removed" else -1,
                    "geometry": shape(geometry),
                }
            )
    columns = list(CHANGE_COLUMNS[:-1])
    frame = geopandas.GeoDataFrame(rows or None, columns=columns, geometry="geometry")
    if len(frame):
        frame = frame.dissolve(by=["event_type", "instance_id"], as_index=False, sort=False)[columns]
    frame["area_m2"] = areas_m2(frame.geometry, grid.crs_wkt)
    return frame
