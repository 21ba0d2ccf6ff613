"""Instances from rasters and polygons (core.instances), the `events` CLI and the demo step, on real data."""

import json

import geopandas
import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.affinity import rotate
from shapely.geometry import box

from core.__main__ import main
from core.errors import InputError
from core.events.state import LabelState
from core.io.labels import (
    instances_to_polygons,
    load_state,
    polygons_to_state,
    state_from_instances,
    state_from_labels,
)
from core.io.rasters import RasterGrid, read_mask

UTM_16N = rasterio.crs.CRS.from_epsg(32616).to_wkt()
HARVEY_MASKS = "buildings/xbd_harvey/masks"


def utm_grid(size=200, pixel=0.5) -> RasterGrid:
    return RasterGrid(UTM_16N, Affine(pixel, 0, 733000.0, 0, -pixel, 3725000.0), size, size)


def random_footprints(seed: int, grid: RasterGrid, count: int):
    """Non-overlapping rotated rectangles (>= 6 px a side) inside the grid, in map coordinates."""
    rng = np.random.default_rng(seed)
    pixel = grid.transform.a
    left, top = grid.transform.c, grid.transform.f
    polygons = []
    for _ in range(count * 20):
        if len(polygons) == count:
            break
        w, h = rng.uniform(6, 30, 2) * pixel
        x = left + rng.uniform(20, grid.width - 20) * pixel
        y = top - rng.uniform(20, grid.height - 20) * pixel
        candidate = rotate(box(x - w / 2, y - h / 2, x + w / 2, y + h / 2), float(rng.uniform(0, 90)))
        if all(candidate.distance(other) > 2 * pixel for other in polygons):
            polygons.append(candidate)
    return polygons


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 12),
    suffix=st.sampled_from([".gpkg", ".geojson", ".shp"]),
)
def test_polygons_round_trip_to_the_same_ids(tmp_path_factory, seed, count, suffix):
    grid = utm_grid()
    polygons = random_footprints(seed, grid, count)
    frame = geopandas.GeoDataFrame(
        {"name": [f"b{i}" for i in range(len(polygons))]}, geometry=polygons, crs=32616
    )
    path = tmp_path_factory.mktemp("polygons") / f"buildings{suffix}"
    frame.to_crs(4326).to_file(path)  # stored in another CRS: rasterising must reproject
    result = polygons_to_state(path, grid)
    assert result.missing == []
    # GeoPackage fids start at 1 and are used as ids; GeoJSON's and shapefiles' 0-based fids are shifted by one
    first_fid = 1 if suffix == ".gpkg" else 0
    assert result.feature_ids == {i + 1: i + first_fid for i in range(len(polygons))}
    back = instances_to_polygons(result.state.instance, grid, result.feature_ids)
    assert list(back["instance_id"]) == list(range(1, len(polygons) + 1))
    for row in back.itertuples():
        original = polygons[row.feature_id - first_fid]
        iou = row.geometry.intersection(original).area / row.geometry.union(original).area
        assert iou > 0.6, (row.instance_id, iou)
        assert result.instance_of(row.feature_id) == row.instance_id


def test_overlapping_polygons_keep_the_small_one_and_report_vanished_ones(tmp_path):
    grid = utm_grid(100)
    x, y = grid.transform.c, grid.transform.f
    big = box(x + 5, y - 45, x + 45, y - 5)
    small = box(x + 10, y - 15, x + 15, y - 10)
    tiny = box(x + 30.0, y - 30.0, x + 30.1, y - 29.9)  # far below a pixel
    frame = geopandas.GeoDataFrame({"id": [7, 8, 9]}, geometry=[small, big, tiny], crs=32616)
    result = polygons_to_state(frame, grid, id_field="id")
    assert set(result.state.ids) == {7, 8} and result.missing == [9]
    assert result.state.index[7].area == 100  # 5 m square at 0.5 m: 10 x 10 pixels, not painted over


def test_label_and_instance_rasters():
    labels = np.zeros((40, 40), np.uint8)
    labels[2:10, 2:10] = 1
    labels[2:10, 20:30] = 1
    labels[20:30, 5:15] = 3
    state = state_from_labels(labels)
    assert len(state.index) == 3 and sorted(info.cls for info in state.index.values()) == [1, 1, 3]
    only_buildings = state_from_labels(labels, object_classes=[3])
    assert len(only_buildings.index) == 1 and (only_buildings.semantic == labels).all()
    instance = np.zeros((40, 40), np.int32)
    instance[2:10, 2:10] = 500
    instance[10:20, 2:10] = 501  # touching instances stay separate
    state = state_from_instances(instance)
    assert state.ids == [500, 501] and state.next_id == 502
    with pytest.raises(InputError, match="background"):
        state_from_instances(instance, semantic=np.zeros((40, 40), np.uint8))


def test_real_mask_instances_match_connected_components(shared_data):
    path = sorted((shared_data / HARVEY_MASKS).glob("*.png"))[0]
    state, grid, feature_ids = load_state(path)
    mask, _ = read_mask(path)
    assert feature_ids is None and grid.shape == mask.shape
    assert (state.foreground() == (mask > 0)).all()
    assert len(state.index) > 10
    assert sum(info.area for info in state.index.values()) == int((mask > 0).sum())


def test_real_polygons_rasterise_onto_the_real_image_grid(shared_data):
    folder = shared_data / "buildings" / "spacenet_atlanta"
    from core.io.rasters import raster_grid

    grid = raster_grid(folder / "sample_geotiff.tif")
    state, out_grid, feature_ids = load_state(folder / "geotiff_labels.geojson", grid=grid)
    reference, _ = read_mask(folder / "DERIVED_sample_geotiff_building_mask.tif")
    agreement = (state.foreground() == (reference > 0)).mean()
    assert agreement > 0.995
    assert len(feature_ids) == len(state.index) == 43


def test_cli_writes_masks_changes_and_log_on_the_image_grid(shared_data, tmp_path):
    folder = shared_data / "buildings" / "spacenet_atlanta"
    out = tmp_path / "run"
    args = ["events", str(folder / "geotiff_labels.geojson"), "--image", str(folder / "sample_geotiff.tif")]
    args += ["--remove", "0.2", "--create", "3", "--steps", "3", "--seed", "5", "-o", str(out)]
    assert main(args) == 0
    log = json.loads((out / "events.json").read_text())
    assert log["seed"] == 5 and len(log["steps"]) == 3 and "mask_t03.tif" in log["files"]
    with rasterio.open(folder / "sample_geotiff.tif") as image, rasterio.open(out / "mask_t03.tif") as mask:
        assert mask.crs == image.crs and mask.transform == image.transform and mask.shape == image.shape
    masks = [read_mask(out / f"mask_t{t:02d}.tif")[0] > 0 for t in range(4)]
    for t in range(3):
        change = read_mask(out / f"change_t{t:02d}_t{t + 1:02d}.tif")[0] > 0
        assert (change == (masks[t] ^ masks[t + 1])).all()
        assert change.sum() == log["steps"][t]["changed_pixels"] > 0
    total = read_mask(out / "change_t00_t03.tif")[0] > 0
    assert (total == (masks[0] ^ masks[3])).all()
    # same seed, same bytes
    again = tmp_path / "again"
    assert main(args[:-1] + [str(again)]) == 0
    # polygon inputs are addressed by feature id (0-based in GeoJSON): feature 4 is instance 5
    chosen = tmp_path / "chosen"
    assert main(args[:2] + ["--image", args[3], "--remove-ids", "4", "-o", str(chosen)]) == 0
    removed = json.loads((chosen / "events.json").read_text())["steps"][0]["events"]
    assert [(e["kind"], e["instance_id"]) for e in removed] == [("remove", 5)]
    for name in ("mask_t03.tif", "instances_t03.tif"):
        with rasterio.open(out / name) as a, rasterio.open(again / name) as b:
            assert a.read().tobytes() == b.read().tobytes()


def test_cli_unlabeled_mode_writes_outlines_and_only_removes(shared_data, tmp_path):
    mask = sorted((shared_data / HARVEY_MASKS).glob("*.png"))[1]
    assert (
        main(
            [
                "events",
                str(mask),
                "--unlabeled",
                "--remove",
                "4",
                "--create",
                "5",
                "--steps",
                "2",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    log = json.loads((tmp_path / "events.json").read_text())
    kinds = {event["kind"] for step in log["steps"] for event in step["events"]}
    assert kinds == {"remove"}
    outlines = read_mask(tmp_path / "outlines_t00.tif")[0] > 0
    building = read_mask(tmp_path / "mask_t00.tif")[0] > 0
    assert outlines.any() and not (outlines & ~building).any()


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["events", str(tmp_path / "missing.tif"), "-o", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    frame = geopandas.GeoDataFrame(geometry=[box(0, 0, 10, 10)], crs=32616)
    frame.to_file(tmp_path / "b.gpkg")
    assert main(["events", str(tmp_path / "b.gpkg"), "-o", str(tmp_path / "o")]) == 2
    assert "--image" in capsys.readouterr().err


def test_demo_step_writes_the_events_series(shared_data, tmp_path):
    from core.cli.demo import DEMO_STEPS, events_step

    assert events_step in DEMO_STEPS
    written = events_step(tmp_path)
    log = json.loads((tmp_path / "events" / "events.json").read_text())
    assert len(log["steps"]) == 5 and str(tmp_path / "events" / "series.png") in written
    assert (tmp_path / "events" / "series.png").stat().st_size > 1000
    frames = [read_mask(tmp_path / "events" / f"mask_t{t:02d}.tif")[0] for t in (0, 5)]
    original = LabelState.from_mask(read_mask(log["input"])[0])
    assert (frames[0] > 0).sum() == original.foreground().sum() and (frames[0] != frames[1]).any()


def test_cli_land_cover_transitions_follow_a_table_file(tmp_path):
    from core.events.transitions import TransitionTable
    from core.io.rasters import write_geotiff

    rng = np.random.default_rng(3)
    labels = np.repeat(np.repeat(rng.integers(1, 4, (8, 8)), 8, axis=0), 8, axis=1).astype(np.uint8)
    write_geotiff(tmp_path / "labels.tif", labels, utm_grid(64))
    table = {"classes": ["bare", "grass", "built"], "allowed": {"grass": ["bare"], "bare": ["built"]}}
    (tmp_path / "table.json").write_text(json.dumps(table))
    args = ["events", str(tmp_path / "labels.tif"), "--transition", "0.7", "--transition-table"]
    args += [str(tmp_path / "table.json"), "--steps", "2", "--seed", "1", "-o", str(tmp_path / "out")]
    assert main(args) == 0
    after = read_mask(tmp_path / "out" / "mask_t02.tif")[0]
    code = rasterio.open(tmp_path / "out" / "semantic_change_t00_t02.tif").read(1)
    base = json.loads((tmp_path / "out" / "events.json").read_text())["semantic_change_base"]
    from_cls, to_cls = np.divmod(code, base)
    changed = code != 0
    assert changed.any() and (changed == (after != labels)).all()
    pairs = set(zip(from_cls[changed].tolist(), to_cls[changed].tolist(), strict=True))
    assert pairs <= {
        (2, 1),
        (1, 3),
        (2, 3),
    }  # grass->bare, bare->built, and grass->bare->built over two steps
    assert TransitionTable.load(tmp_path / "table.json").allows(2, 1)


def test_cli_reads_an_instance_raster(tmp_path):
    from core.io.rasters import write_geotiff

    instance = np.zeros((64, 64), np.int32)
    instance[4:20, 4:20] = 1000
    instance[30:50, 30:40] = 2000
    write_geotiff(tmp_path / "ids.tif", instance, utm_grid(64))
    assert main(["events", str(tmp_path / "ids.tif"), "--remove-ids", "2000", "-o", str(tmp_path / "o")]) == 0
    after = rasterio.open(tmp_path / "o" / "instances_t01.tif").read(1)
    assert set(np.unique(after)) == {0, 1000}
