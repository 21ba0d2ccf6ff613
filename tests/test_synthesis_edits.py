"""An analyst's edits without QGIS: random edits as feature ids and copies, and the polygons of a series' change."""

import geopandas
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from core.events.placement import Creation
from core.events.series import simulate_series
from core.io.labels import polygons_to_state
from core.io.rasters import RasterGrid
from core.synthesis.edits import CHANGE_COLUMNS, change_polygons, random_edits

PIXEL = 0.5  # metres
GRID = RasterGrid(CRS.from_epsg(32615).to_wkt(), Affine(PIXEL, 0, 500000.0, 0, -PIXEL, 4100000.0), 128, 128)


def _buildings() -> geopandas.GeoDataFrame:
    """Six 10 m × 10 m squares (20 × 20 px) on the grid, feature ids 11..16."""
    left, top = GRID.transform.c, GRID.transform.f
    squares = [box(left + x, top - y - 10, left + x + 10, top - y) for y in (5, 35) for x in (5, 25, 45)]
    return geopandas.GeoDataFrame({"fid": list(range(11, 17))}, geometry=squares)


def test_random_edits_are_feature_ids_and_copies_replayed_by_the_seed():
    removals, copies = random_edits(_buildings(), GRID, remove=2, create=1, seed=4)
    assert len(removals) == 2 and set(removals) <= set(range(11, 17))
    assert len(copies) == 1
    source, centre, angle, scale = copies[0]
    assert source in range(11, 17) and len(centre) == 2 and scale > 0 and isinstance(angle, float)
    assert random_edits(_buildings(), GRID, remove=2, create=1, seed=4) == (removals, copies)
    assert random_edits(_buildings(), GRID, remove=0, create=0, seed=4) == ([], [])


def test_change_polygons_name_each_event_its_step_feature_and_area():
    located = polygons_to_state(_buildings(), GRID, id_field="fid")
    first = {
        "remove_ids": [located.instance_of(12)],
        "creations": [Creation(located.instance_of(11), (110, 40))],
    }
    series = simulate_series(located.state, 3, 2, first_step=first, remove=0, create=0)
    (third,) = simulate_series(series.frames[-1], 5, 1, remove_ids=[located.instance_of(16)]).steps
    series.frames.append(third.state)
    series.steps.append(third)

    frame = change_polygons(series, GRID, located.feature_ids)
    assert list(frame.columns) == list(CHANGE_COLUMNS) and frame.crs is None
    removed = frame[frame.event_type == "removed"].set_index("feature_id")
    assert sorted(removed.index) == [12, 16]
    assert removed.loc[12, "step"] == 1 and removed.loc[16, "step"] == 3
    assert removed.loc[12, "area_m2"] == pytest.approx(100.0, rel=0.02)
    (created,) = frame[frame.event_type == "created"].itertuples()
    assert created.step == 1 and created.feature_id == -1
    assert created.area_m2 == pytest.approx(100.0, rel=0.1)


def test_no_change_gives_an_empty_frame_with_the_columns():
    located = polygons_to_state(_buildings(), GRID, id_field="fid")
    frame = change_polygons(simulate_series(located.state, 0, 1), GRID, located.feature_ids)
    assert len(frame) == 0 and list(frame.columns) == list(CHANGE_COLUMNS)
