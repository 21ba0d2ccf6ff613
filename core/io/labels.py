"""Instances from what users have: a building mask, a label raster, an instance raster or building polygons.

Polygons (GeoPackage, GeoJSON, shapefile; any CRS) are reprojected and rasterised onto an image's grid; each
polygon keeps its feature id (the id QGIS shows), so a map click on a feature finds its instance and back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import Canceled, InputError
from ..events.classes import PROJECT_CLASSES, SOURCE_CLASSES, to_project_classes
from ..events.state import EIGHT_CONNECTED, LabelState
from .rasters import RasterGrid, read_mask

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp")


def state_from_labels(labels: np.ndarray, object_classes=None) -> LabelState:
    """A label raster (0 background, classes 1..K) -> instances = 8-connected regions of each object class
    (default: every non-zero class), numbered in class order."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(f"a label raster must be (H, W), got shape {labels.shape}")
    classes = (
        [int(c) for c in np.unique(labels) if c != 0] if object_classes is None else list(object_classes)
    )
    instance = np.zeros(labels.shape, dtype=np.int32)
    next_id = 1
    for cls in classes:
        regions, count = ndimage.label(labels == cls, structure=EIGHT_CONNECTED, output=np.int32)
        inside = regions > 0
        instance[inside] = regions[inside] + (next_id - 1)
        next_id += count
    return LabelState(labels.astype(np.uint8), instance)


def state_from_instances(
    instance: np.ndarray, semantic: np.ndarray | None = None, cls: int = 1
) -> LabelState:
    """An instance raster (0 none) with its semantic map, or with class `cls` for every instance."""
    instance = np.asarray(instance)
    if semantic is None:
        semantic = (instance != 0).astype(np.uint8) * np.uint8(cls)
    elif ((np.asarray(semantic) == 0) & (instance != 0)).any():
        raise InputError(
            "the semantic map is background (0) under some instances: give every instance a class"
        )
    return LabelState(semantic, instance)


# ---------------------------------------------------------------------------------------------- land cover
def load_landcover(
    path: str | os.PathLike, grid: RasterGrid, mapping: dict[int, str] | str | None
) -> np.ndarray:
    """A classified raster on `grid` (the image's) -> `(H, W)` uint8 project class ids.

    `mapping`: a source name of `SOURCE_CLASSES` ("dubai_mbrsc", "loveda", …, "project" for rasters that hold
    project ids already) or {raster value: project class name}. Without one, or with values it does not cover,
    the message names the raster's values and asks for the mapping."""
    values, label_grid = read_mask(path)
    if not label_grid.same_grid(grid):
        raise InputError(
            f"the land-cover raster {path} ({_describe_grid(label_grid)}) is not on the image's grid "
            f"({_describe_grid(grid)}): its pixels must be the image's pixels. Resample it onto the image with "
            "nearest neighbour (QGIS: Raster ▸ Align Rasters; GDAL: gdalwarp -r near -te … -ts …) or pass the "
            "matching image."
        )
    found = np.unique(values).tolist()
    sources = ", ".join(SOURCE_CLASSES)
    if mapping is None:
        raise InputError(
            f"the land-cover raster {path} holds class values {found}: say which class each value is, with a "
            f"known source ({sources}) or a mapping of each value to a project class "
            f'({", ".join(PROJECT_CLASSES)}), e.g. {{"{found[-1]}": "building"}} (command line: --source or '
            "--class-map JSON)."
        )
    if isinstance(mapping, str) and mapping not in SOURCE_CLASSES:
        raise InputError(f"unknown land-cover source {mapping!r}: use one of {sources}, or a class mapping")
    return to_project_classes(values, mapping, f"the land-cover raster {path}")


def _describe_grid(grid: RasterGrid) -> str:
    crs = grid.crs
    where = "no CRS" if crs is None else (crs.to_string() if crs.to_epsg() else "a custom CRS")
    return (
        f"{grid.width}×{grid.height} px, {where}, origin ({grid.transform.c:.6g}, {grid.transform.f:.6g}), "
        f"pixel {grid.transform.a:.6g}"
    )


# ---------------------------------------------------------------------------------------------- polygons
@dataclass
class PolygonInstances:
    """Polygons rasterised on a grid: the state, instance id -> feature id, and features with no pixel."""

    state: LabelState
    grid: RasterGrid
    feature_ids: dict[int, int | str]
    missing: list[int | str] = field(default_factory=list)

    def instance_of(self, feature_id) -> int | None:
        for instance_id, fid in self.feature_ids.items():
            if fid == feature_id:
                return instance_id
        return None


def read_polygons(path: str | os.PathLike, layer: str | None = None):
    """A polygon layer as a GeoDataFrame indexed by feature id (GeoPackage fid; 0-based for shapefile/GeoJSON)."""
    import geopandas

    path = Path(path)
    if not path.exists():
        raise InputError(f"polygon file not found: {path}")
    try:
        frame = geopandas.read_file(path, layer=layer, engine="pyogrio", fid_as_index=True)
    except Exception as error:  # pyogrio raises its own DataSourceError/DataLayerError types
        raise InputError(f"cannot read polygons from {path}: {error}") from error
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    kinds = set(frame.geometry.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise InputError(f"{path} holds {sorted(kinds)} geometries: building footprints must be polygons")
    return frame


def grid_for_polygons(frame, resolution: float) -> RasterGrid:
    """A north-up grid covering the polygons at `resolution` map units per pixel (for use without an image)."""
    from rasterio.transform import from_origin

    if frame.crs is not None and frame.crs.is_geographic:
        raise InputError(
            "polygons in degrees need an image grid (--image) or a projected CRS to use --resolution"
        )
    if not resolution > 0:
        raise InputError(f"resolution must be > 0 map units per pixel, got {resolution}")
    west, south, east, north = frame.total_bounds
    width = max(1, math.ceil((east - west) / resolution))
    height = max(1, math.ceil((north - south) / resolution))
    crs_wkt = frame.crs.to_wkt() if frame.crs is not None else None
    return RasterGrid(crs_wkt, from_origin(west, north, resolution, resolution), width, height)


def polygons_to_state(
    polygons, grid: RasterGrid, id_field: str | None = None, class_field: str | None = None, cls: int = 1
) -> PolygonInstances:
    """Rasterise polygons (a path or a GeoDataFrame) onto `grid`, one instance per feature.

    Instance id = the feature id (or the integer `id_field`) when all are >= 1, else feature id + 1 (0 is
    background). Smaller polygons are drawn last, so an overlapping small building is not swallowed by a big
    one. `class_field` (integer attribute) sets each polygon's class, else `cls`.
    """
    from rasterio import features

    frame = polygons if not isinstance(polygons, str | os.PathLike) else read_polygons(polygons)
    if frame.crs is not None and grid.crs is not None:
        frame = frame.to_crs(grid.crs)
    elif frame.crs is not None and grid.crs is None:
        raise InputError(
            "the polygons have a CRS but the image has none: use a georeferenced image (GeoTIFF)"
        )
    feature_ids = list(frame[id_field]) if id_field else list(frame.index)
    if not all(isinstance(fid, int | np.integer) for fid in feature_ids):
        raise InputError(f"feature ids must be integers; {id_field or 'the index'} holds other values")
    if len(set(feature_ids)) != len(feature_ids):
        raise InputError(f"feature ids in {id_field or 'the index'} are not unique")
    offset = 0 if all(int(fid) >= 1 for fid in feature_ids) else 1 - min(int(fid) for fid in feature_ids)
    instance_ids = [int(fid) + offset for fid in feature_ids]
    if instance_ids and max(instance_ids) >= 2**31:
        raise InputError("feature ids are too large for an int32 instance raster: use --id-field")
    classes = [int(c) for c in frame[class_field]] if class_field else [int(cls)] * len(frame)
    if any(not 1 <= c <= 255 for c in classes):
        raise InputError("polygon classes must be integers in 1..255")
    order = np.argsort(-frame.geometry.area.to_numpy(), kind="stable")
    geometries = frame.geometry.to_numpy()
    instance = np.zeros(grid.shape, dtype=np.int32)
    semantic = np.zeros(grid.shape, dtype=np.uint8)
    if len(frame):
        features.rasterize(
            ((geometries[i], instance_ids[i]) for i in order),
            out=instance,
            transform=grid.transform,
        )
        class_of = np.zeros(max(instance_ids) + 1, dtype=np.uint8)
        class_of[instance_ids] = classes
        semantic = class_of[instance]
    present = set(np.unique(instance).tolist()) - {0}
    mapping = {
        iid: fid.item() if isinstance(fid, np.generic) else fid
        for iid, fid in zip(instance_ids, feature_ids, strict=False)
    }
    missing = [fid for iid, fid in mapping.items() if iid not in present]
    feature_of = {iid: fid for iid, fid in mapping.items() if iid in present}
    return PolygonInstances(LabelState(semantic, instance), grid, feature_of, missing)


def instances_to_polygons(
    instance: np.ndarray,
    grid: RasterGrid,
    feature_ids: dict | None = None,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
):
    """Vectorise an instance raster on `grid`: one (multi)polygon per instance id, with its feature id (a grid
    without `crs_wkt` gives a CRS-less frame). `progress` (0–100) follows the instances vectorised."""
    import geopandas
    from rasterio import features
    from shapely.geometry import shape
    from shapely.ops import unary_union

    total = max(int(np.unique(instance).size) - 1, 1) if progress is not None else 1
    parts: dict[int, list] = {}
    for count, (geometry, value) in enumerate(
        features.shapes(instance, mask=instance != 0, transform=grid.transform, connectivity=8)
    ):
        parts.setdefault(int(value), []).append(shape(geometry))
        if count % 2000 == 0:
            if is_canceled is not None and is_canceled():
                raise Canceled()
            if progress is not None:
                progress(100.0 * min(len(parts) / total, 1.0))
    ids = sorted(parts)
    feature_ids = feature_ids or {}
    return geopandas.GeoDataFrame(
        {"instance_id": ids, "feature_id": [feature_ids.get(i, i) for i in ids]},
        geometry=[unary_union(parts[i]) for i in ids],
        crs=grid.crs,
    )


# ---------------------------------------------------------------------------------------------- any input
def load_state(
    path: str | os.PathLike,
    grid: RasterGrid | None = None,
    kind: str = "auto",
    resolution: float | None = None,
    id_field: str | None = None,
) -> tuple[LabelState, RasterGrid, dict[int, int | str] | None]:
    """Read a building mask, label raster, instance raster or polygon file -> (state, grid, feature ids).

    kind: "auto" (polygons by suffix; a raster with values {0, v} is a mask, int32/uint16 an instance raster,
    else a label raster), "mask", "labels", "instances". Polygons use `grid` (the image's) or `resolution`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file not found: {path}; check the path")
    if path.suffix.lower() in VECTOR_SUFFIXES:
        frame = read_polygons(path)
        if grid is None:
            if resolution is None:
                raise InputError("polygons need a grid: pass --image IMG (or --resolution in map units)")
            grid = grid_for_polygons(frame, resolution)
        result = polygons_to_state(frame, grid, id_field=id_field)
        return result.state, grid, result.feature_ids
    if kind in ("auto", "instances"):
        from .rasters import open_raster, read_raster

        with open_raster(path) as dataset:
            stored = dataset.dtypes[0]
        if kind == "instances" or stored in ("int32", "uint32", "uint16", "int16"):
            data = read_raster(path, bands=[1])
            state = state_from_instances(data.array[..., 0].astype(np.int64))
            return state, _checked_grid(data.grid, grid, path), None
    values, own_grid = read_mask(path)
    own_grid = _checked_grid(own_grid, grid, path)
    if kind == "mask" or (kind == "auto" and np.unique(values).size <= 2):
        return LabelState.from_mask(values), own_grid, None
    if kind not in ("auto", "labels"):
        raise InputError(f"unknown input kind {kind!r}: use auto, mask, labels or instances")
    return state_from_labels(values), own_grid, None


def _checked_grid(own: RasterGrid, image: RasterGrid | None, path) -> RasterGrid:
    """The mask's grid, or the image's when the mask has none; their sizes must agree."""
    if image is None:
        return own
    if own.shape != image.shape:
        raise InputError(
            f"{path} is {own.width}x{own.height} px but the image is {image.width}x{image.height}: "
            "the mask must be on the image's grid"
        )
    if own.crs_wkt and image.crs_wkt and not own.same_grid(image):
        raise InputError(f"{path} is not on the image's grid (CRS or transform differ): align it first")
    return own if own.crs_wkt else image
