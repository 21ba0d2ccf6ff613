from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.windows import Window

from core.errors import InputError
from core.io.rasters import (
    RasterGrid,
    raster_grid,
    raster_stretch_limits,
    read_mask,
    read_raster,
    reproject_to_grid,
    to_uint8,
    write_geotiff,
)

FIXTURE = Path(__file__).parent / "data" / "RGB.byte.tif"  # CC0 Landsat RGB, EPSG:32618, nodata 0


def test_geotiff_round_trip_keeps_pixels_crs_transform_and_nodata(tmp_path):
    data = read_raster(FIXTURE)
    assert data.array.shape == (718, 791, 3) and data.array.dtype == np.uint8
    assert data.grid.crs.to_epsg() == 32618
    assert data.grid.nodata == 0
    # the Landsat scene has a nodata collar: valid is False exactly where all bands are 0
    np.testing.assert_array_equal(data.valid, data.array.any(axis=-1))
    assert 0.2 < (~data.valid).mean() < 0.8

    out = tmp_path / "copy.tif"
    write_geotiff(out, data.array, data.grid, nodata=data.grid.nodata)
    again = read_raster(out)
    np.testing.assert_array_equal(again.array, data.array)
    assert again.grid.same_grid(data.grid)
    assert again.grid.nodata == 0
    with rasterio.open(out) as written:
        assert written.profile["compress"] == "deflate" and written.profile["tiled"]
    assert [p.name for p in tmp_path.iterdir()] == ["copy.tif"]  # no temporary files left


def test_window_read_matches_full_read_and_shifts_the_transform():
    full = read_raster(FIXTURE)
    window = Window(col_off=300, row_off=200, width=64, height=48)
    part = read_raster(FIXTURE, window=window)
    np.testing.assert_array_equal(part.array, full.array[200:248, 300:364])
    x, y = full.grid.transform * (300, 200)
    assert part.grid.transform.c == pytest.approx(x) and part.grid.transform.f == pytest.approx(y)
    assert part.grid == full.grid.window_grid(window)


def test_window_reaching_outside_the_raster_is_zero_and_not_valid():
    part = read_raster(FIXTURE, window=Window(col_off=760, row_off=-10, width=64, height=40))
    assert part.array.shape == (40, 64, 3)
    assert not part.valid[:10].any() and not part.valid[:, 31:].any()
    assert (part.array[:10] == 0).all()


def test_band_choice_repeats_a_band_and_rejects_missing_ones():
    data = read_raster(FIXTURE, bands=[2, 2, 2])
    np.testing.assert_array_equal(data.array[..., 0], data.array[..., 2])
    with pytest.raises(InputError, match="Band 4 does not exist"):
        read_raster(FIXTURE, bands=[1, 2, 4])


def test_png_has_no_crs_and_identity_transform(tmp_path):
    rgb = (np.arange(20 * 30 * 3) % 251).astype(np.uint8).reshape(20, 30, 3)
    Image.fromarray(rgb).save(tmp_path / "plain.png")
    data = read_raster(tmp_path / "plain.png")
    np.testing.assert_array_equal(data.array, rgb)
    assert data.grid.crs_wkt is None and data.grid.transform.is_identity
    assert data.valid.all()


def test_read_mask_returns_uint8_values(shared_data, tmp_path):
    mask_path = next((shared_data / "buildings" / "xbd_harvey" / "masks").glob("*.png"))
    mask, grid = read_mask(mask_path)
    assert mask.dtype == np.uint8 and mask.shape == grid.shape == (1024, 1024)
    assert set(np.unique(mask)) <= {0, 255} and mask.any()
    grid16 = raster_grid(FIXTURE)
    write_geotiff(tmp_path / "big.tif", np.full(grid16.shape, 300, np.uint16), grid16)
    write_geotiff(tmp_path / "bool.tif", mask > 0, grid16.window_grid(Window(0, 0, 1024, 1024)))
    np.testing.assert_array_equal(read_mask(tmp_path / "bool.tif")[0], (mask > 0).astype(np.uint8))
    with pytest.raises(InputError, match="not a mask"):
        read_mask(tmp_path / "big.tif")


def test_clear_errors_for_missing_and_unsupported_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_raster(tmp_path / "nothing.tif")
    (tmp_path / "table.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="Unsupported raster format"):
        read_raster(tmp_path / "table.csv")
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match="Could not read"):
        read_raster(tmp_path / "broken.tif")


def test_reproject_onto_another_crs_and_back_keeps_the_image(tmp_path):
    source = read_raster(FIXTURE)
    # a grid in geographic coordinates covering the same area
    with rasterio.open(FIXTURE) as dataset:
        from rasterio.warp import calculate_default_transform

        transform, width, height = calculate_default_transform(
            dataset.crs, "EPSG:4326", dataset.width, dataset.height, *dataset.bounds
        )
    geographic = RasterGrid(rasterio.crs.CRS.from_epsg(4326).to_wkt(), transform, width, height, 0.0)
    warped = reproject_to_grid(FIXTURE, geographic, resampling="nearest")
    write_geotiff(tmp_path / "wgs84.tif", warped.array, geographic, nodata=0)
    back = reproject_to_grid(tmp_path / "wgs84.tif", source.grid, resampling="nearest")
    inner = source.valid & back.valid
    assert inner.mean() > 0.3
    difference = np.abs(back.array.astype(int) - source.array.astype(int))[inner]
    assert np.median(difference) == 0 and difference.mean() < 8
    # valid tracks the source coverage
    assert not back.valid[~source.valid].mean() > 0.05


def test_reproject_onto_a_tile_grid_equals_reading_that_window():
    full = raster_grid(FIXTURE)
    window = Window(100, 150, 96, 64)
    aligned = reproject_to_grid(FIXTURE, full.window_grid(window), resampling="nearest")
    np.testing.assert_array_equal(aligned.array, read_raster(FIXTURE, window=window).array)


def test_non_overlapping_grids_are_refused_with_a_fix():
    grid = raster_grid(FIXTURE)
    far_away = RasterGrid(grid.crs_wkt, grid.transform * grid.transform.translation(5000, 0), 100, 100, None)
    with pytest.raises(InputError, match="does not overlap"):
        reproject_to_grid(FIXTURE, far_away)


def test_plain_images_of_different_size_cannot_be_aligned(tmp_path):
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "a.png")
    target = RasterGrid(None, raster_grid(tmp_path / "a.png").transform, 12, 10, None)
    with pytest.raises(InputError, match="different size"):
        reproject_to_grid(tmp_path / "a.png", target)
    with pytest.raises(InputError, match="one has a CRS"):
        reproject_to_grid(FIXTURE, target)


def test_to_uint8_stretches_16_bit_per_band_and_consistently_by_limits(tmp_path):
    rng = np.random.default_rng(1)
    array = np.stack(
        [rng.integers(1000, 3000, (50, 60)), rng.integers(0, 65535, (50, 60)), np.full((50, 60), 7)], axis=-1
    ).astype(np.uint16)
    stretched = to_uint8(array)
    assert stretched.dtype == np.uint8
    for band in range(2):
        low, high = np.percentile(array[..., band], [2, 98])
        assert (stretched[..., band][array[..., band] <= low] == 0).all()
        assert (stretched[..., band][array[..., band] >= high] == 255).all()
    assert len(np.unique(stretched[..., 2])) == 1  # a constant band does not divide by zero
    grid = raster_grid(FIXTURE).window_grid(Window(0, 0, 60, 50))
    write_geotiff(tmp_path / "u16.tif", array, grid)
    limits = raster_stretch_limits(tmp_path / "u16.tif")
    np.testing.assert_array_equal(to_uint8(array[:10], limits), stretched[:10])
    uint8 = np.zeros((2, 2, 3), np.uint8)
    assert to_uint8(uint8) is uint8


def test_same_grid_tolerates_rounding_only():
    grid = raster_grid(FIXTURE)
    nudged = RasterGrid(grid.crs_wkt, grid.transform * grid.transform.translation(1e-9, 0), *grid.shape[::-1])
    shifted = RasterGrid(grid.crs_wkt, grid.transform * grid.transform.translation(0.5, 0), *grid.shape[::-1])
    assert grid.same_grid(nudged) and not grid.same_grid(shifted)
    other_crs = RasterGrid(rasterio.crs.CRS.from_epsg(32617).to_wkt(), grid.transform, *grid.shape[::-1])
    assert not grid.same_grid(other_crs)
