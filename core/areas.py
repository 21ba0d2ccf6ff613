"""Areas in square metres on the WGS 84 ellipsoid (what QGIS's measure tool calls "ellipsoidal"), for any CRS:
coordinates go to longitude/latitude through GDAL (rasterio; safe in QgsTask threads, unlike pyproj's
`proj_create`) and the area is measured geodesically (pyproj's `Geod`, which needs no PROJ database)."""

from __future__ import annotations

import os

import numpy as np

GEOGRAPHIC = "EPSG:4326"
BLOCK = 256  # pixels: the mask area is summed block by block, each block weighted by its own pixel area


def _geod():
    from pyproj import Geod

    return Geod(ellps="WGS84")


def ellipsoidal_areas(geometries, crs_wkt: str) -> list[float]:
    """Shapely geometries in `crs_wkt` → their ellipsoidal areas in m², rounded to cm²."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    crs, geod = CRS.from_wkt(crs_wkt), _geod()
    areas = []
    for geometry in geometries:
        lonlat = shape(transform_geom(crs, GEOGRAPHIC, mapping(geometry)))
        areas.append(round(abs(geod.geometry_area_perimeter(lonlat)[0]), 2))
    return areas


def mask_area_m2(mask_path: str | os.PathLike, value: int = 1) -> float | None:
    """Ellipsoidal area (m²) of the pixels equal to `value`; None for a raster without a CRS."""
    import rasterio
    from rasterio.warp import transform
    from rasterio.windows import Window

    with rasterio.open(mask_path) as dataset:
        if dataset.crs is None:
            return None
        geod, total = _geod(), 0.0
        for row in range(0, dataset.height, BLOCK):
            for col in range(0, dataset.width, BLOCK):
                window = Window(col, row, min(BLOCK, dataset.width - col), min(BLOCK, dataset.height - row))
                count = int(np.count_nonzero(dataset.read(1, window=window) == value))
                if not count:
                    continue
                t = dataset.window_transform(window)
                w, h = int(window.width), int(window.height)
                corners = [t * (0, 0), t * (w, 0), t * (w, h), t * (0, h)]
                lon, lat = transform(dataset.crs, GEOGRAPHIC, *zip(*corners, strict=True))
                block_area = abs(geod.polygon_area_perimeter(lon, lat)[0])
                total += block_area * count / (w * h)
    return total
