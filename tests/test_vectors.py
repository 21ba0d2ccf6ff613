"""core.vectors: areas in square metres without pyproj, GeoPackages that QGIS 3.22's GDAL reads cleanly."""

import sqlite3

import geopandas
import pytest
import shapely
from rasterio.crs import CRS

from core.errors import InputError
from core.io.vectors import areas_m2, write_gpkg


def test_areas_in_square_metres_for_projected_and_geographic_crs():
    square = shapely.box(500000, 4100000, 500100, 4100050)  # 100 m × 50 m in UTM 15N
    # Ellipsoidal (issue 16, item 13): on the central meridian UTM shrinks lengths by its scale factor 0.9996.
    assert areas_m2([square], CRS.from_epsg(32615).to_wkt()) == [pytest.approx(5000 / 0.9996**2, rel=1e-5)]
    # About 0.001° × 0.001° at 37° N: 111 m × 89 m.
    degrees = shapely.box(-94.5, 37.0, -94.499, 37.001)
    (area,) = areas_m2([degrees], CRS.from_epsg(4326).to_wkt())
    assert area == pytest.approx(111_000 * 88_900 * 1e-6, rel=0.01)


def test_geopackage_is_version_1_2_with_its_crs(tmp_path):
    frame = geopandas.GeoDataFrame(
        {"id": [1, 2]}, geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 4)]
    )
    path = tmp_path / "changes.gpkg"
    write_gpkg(frame, path, CRS.from_epsg(32615).to_wkt(), layer="changes")
    with sqlite3.connect(path) as database:
        assert database.execute("PRAGMA user_version").fetchone() == (10200,)
    read = geopandas.read_file(path, layer="changes")
    assert read.crs.to_epsg() == 32615 and sorted(read.geometry.area) == [1.0, 2.0]
    assert [p.name for p in tmp_path.iterdir()] == ["changes.gpkg"]  # no temporary file left
    with pytest.raises(InputError, match="GeoPackage"):
        write_gpkg(frame, tmp_path / "changes.shp", None, layer="changes")
