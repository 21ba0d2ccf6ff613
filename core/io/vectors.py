"""Polygons from rasters and GeoPackage writing without pyproj.

pyproj (which geopandas uses for every CRS) segfaults in `proj_create` when called from QgsTask worker threads
inside QGIS, so frames here carry no CRS: the CRS travels as WKT, areas are measured with rasterio's PROJ, and
GeoPackages are written with pyogrio's raw writer.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import InputError


def areas_m2(geometries, crs_wkt: str | None) -> list[float]:
    """Areas in square metres; geographic coordinates are measured in their local UTM zone. Without a CRS the
    coordinates are taken as metres (pixels of a plain image)."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom
    from shapely import union_all
    from shapely.geometry import mapping, shape

    geometries = list(geometries)
    if not geometries:
        return []
    crs = CRS.from_wkt(crs_wkt) if crs_wkt else None
    if crs is not None:  # ellipsoidal, in any CRS (issue 16, item 13)
        from ..areas import ellipsoidal_areas

        return ellipsoidal_areas(geometries, crs_wkt)
    if crs is None or not crs.is_geographic:
        factor = crs.linear_units_factor[1] if crs is not None else 1.0
        return [round(geometry.area * factor**2, 2) for geometry in geometries]
    lon, lat = union_all(geometries).centroid.coords[0]
    utm = CRS.from_epsg((32600 if lat >= 0 else 32700) + int((lon + 180) // 6) + 1)
    return [round(shape(transform_geom(crs, utm, mapping(geometry))).area, 2) for geometry in geometries]


def mask_polygons(mask_path: str | os.PathLike, value: int = 1):
    """Polygons of the pixels equal to `value` in a mask raster, as a CRS-less GeoDataFrame with `id`, `area`
    (squared map units) and `area_m2`; returns (frame, crs_wkt). Reads the mask once (1 byte per pixel)."""
    import geopandas
    import rasterio
    from rasterio.features import shapes
    from shapely.geometry import shape

    with rasterio.open(mask_path) as dataset:
        mask = dataset.read(1)
        transform, crs_wkt = dataset.transform, dataset.crs.to_wkt() if dataset.crs else None
    geometries = [shape(geometry) for geometry, _ in shapes(mask, mask=mask == value, transform=transform)]
    frame = geopandas.GeoDataFrame({"id": np.arange(1, len(geometries) + 1)}, geometry=geometries)
    frame["area"] = frame.geometry.area
    frame["area_m2"] = areas_m2(frame.geometry, crs_wkt)
    return frame, crs_wkt


def write_gpkg(frame, path: str | os.PathLike, crs_wkt: str | None, layer: str) -> None:
    """Write a CRS-less frame as a GeoPackage layer with `crs_wkt`, atomically (temporary file, then rename)."""
    import pyogrio.raw
    import shapely

    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InputError(f"Polygons are written as a GeoPackage: give a .gpkg path, not {path.name}.")
    fields = [column for column in frame.columns if column != "geometry"]
    with atomic_path(path, suffix=".gpkg", create=False) as tmp:  # the GeoPackage driver creates the file
        pyogrio.raw.write(
            str(tmp),
            geometry=np.asarray(shapely.to_wkb(frame.geometry.to_numpy()), dtype=object),
            field_data=[frame[column].to_numpy() for column in fields],
            fields=fields,
            layer=layer,
            driver="GPKG",
            geometry_type="MultiPolygon",
            promote_to_multi=True,
            crs=crs_wkt,
            # GeoPackage 1.2: QGIS 3.22's GDAL 3.6 warns that the 1.4 files newer GDALs write are "partially
            # supported".
            dataset_options={"VERSION": "1.2"},
        )
