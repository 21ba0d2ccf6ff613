import json

import numpy as np
import pytest
import torch
from rasterio.windows import Window

from core.__main__ import main
from core.changen_gan import build_generator
from core.events import LabelState, simulate_series
from core.raster_io import raster_grid, read_mask, read_raster, write_geotiff
from core.synthesize import _tile_noise, changen_synthesize, synthesize
from core.weights import save_weights


@pytest.fixture(scope="module")
def georeferenced_scene(shared_data, tmp_path_factory):
    """A 320×288 window of a real Joplin chip (EPSG:32615) with nodata 0 set, and Microsoft footprints."""
    folder = tmp_path_factory.mktemp("scene")
    source = shared_data / "georef" / "joplin" / "chips" / "pre" / "0_pre.tif"
    window = Window(col_off=300, row_off=400, width=288, height=320)
    data = read_raster(source, window=window)
    image_path = folder / "pre.tif"
    write_geotiff(image_path, data.array, data.grid, nodata=0)
    return image_path, shared_data / "georef" / "joplin" / "footprints_2020.geojson"


@pytest.fixture(scope="module")
def random_generator_file(tmp_path_factory):
    """A randomly initialised CPU generator saved like a shipped model (until trained weights exist)."""
    torch.manual_seed(0)
    generator = build_generator("cpu")
    path = tmp_path_factory.mktemp("model") / "random_generator.safetensors"
    save_weights(
        path, generator.state_dict(), {"model": "changen_generator", "architecture": generator.config}
    )
    return path


def _run(image, buildings, out, *options):
    assert main(["synthesize", str(image), str(buildings), "-o", str(out), *options]) == 0
    return json.loads((out / "events.json").read_text())


def test_inpainting_cli_keeps_the_grid_and_changes_only_removed_footprints(georeferenced_scene, tmp_path):
    image_path, footprints = georeferenced_scene
    log = _run(
        image_path,
        footprints,
        tmp_path / "a",
        "--method",
        "inpainting",
        "--steps",
        "2",
        "--remove",
        "0.5",
        "--create",
        "0",
    )
    assert log["method"] == "inpainting" and log["device"].startswith("CPU")
    grid = raster_grid(image_path)
    for name in ("image_t0", "image_t1", "image_t2", "mask_t0", "mask_t2", "change_t1", "change_t2"):
        written = raster_grid(tmp_path / "a" / f"{name}.tif")
        assert written.same_grid(grid), name
    assert raster_grid(tmp_path / "a" / "image_t2.tif").nodata == 0
    before = read_raster(tmp_path / "a" / "image_t0.tif").array
    after = read_raster(tmp_path / "a" / "image_t1.tif").array
    np.testing.assert_array_equal(before, read_raster(image_path).array)
    change, _ = read_mask(tmp_path / "a" / "change_t1.tif")
    mask_0, _ = read_mask(tmp_path / "a" / "mask_t0.tif")
    mask_1, _ = read_mask(tmp_path / "a" / "mask_t1.tif")
    assert change.any() and set(np.unique(change)) == {0, 1}
    np.testing.assert_array_equal(change.astype(bool), (mask_0 > 0) & (mask_1 == 0))
    changed = (after != before).any(axis=2)
    near_removal = np.zeros_like(changed)
    ys, xs = np.nonzero(change)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            near_removal[
                np.clip(ys + dy, 0, change.shape[0] - 1), np.clip(xs + dx, 0, change.shape[1] - 1)
            ] = True
    assert not changed[~near_removal].any()
    assert changed[change.astype(bool)].mean() > 0.9


def test_same_seed_same_output_other_seed_other_output(georeferenced_scene, tmp_path):
    image_path, footprints = georeferenced_scene
    options = ("--method", "copy-paste", "--create", "4", "--remove", "2")
    _run(image_path, footprints, tmp_path / "a", *options, "--seed", "3")
    _run(image_path, footprints, tmp_path / "b", *options, "--seed", "3")
    _run(image_path, footprints, tmp_path / "c", *options, "--seed", "4")
    first, second, third = (read_raster(tmp_path / run / "image_t1.tif").array for run in "abc")
    np.testing.assert_array_equal(first, second)
    assert (first != third).any()


def test_changen_cli_with_a_random_generator(georeferenced_scene, random_generator_file, tmp_path):
    image_path, footprints = georeferenced_scene
    log = _run(
        image_path, footprints, tmp_path / "g", "--method", "changen", "--model", str(random_generator_file)
    )
    assert log["method"] == "changen" and log["device"].startswith("CPU")
    result = read_raster(tmp_path / "g" / "image_t1.tif")
    assert result.grid.same_grid(raster_grid(image_path))
    assert result.array.dtype == np.uint8 and result.array.std() > 0


def test_tile_noise_agrees_where_windows_overlap():
    whole = _tile_noise(7, 4, 10, 20, 100, 90)
    part = _tile_noise(7, 4, 50, 45, 40, 50)
    np.testing.assert_array_equal(part, whole[:, 40:80, 25:75])
    assert not np.array_equal(_tile_noise(8, 4, 50, 45, 40, 50), part)


def test_changen_synthesize_tiles_any_size_reproducibly(shared_data):
    torch.manual_seed(1)
    generator = build_generator("cpu").eval()
    folder = shared_data / "buildings" / "xbd_harvey"
    name = "hurricane-harvey_00000006_pre_disaster.png"
    image = read_raster(folder / "images" / name, window=Window(0, 0, 140, 128)).array
    mask, _ = read_mask(folder / "masks" / name, window=Window(0, 0, 140, 128))
    state = LabelState.from_mask(mask)
    semantic_t1 = state.semantic.copy()
    semantic_t1[:40, :40] = 1
    tiled = changen_synthesize(generator, image, state.semantic, semantic_t1, seed=5, tile=96, overlap=16)
    again = changen_synthesize(generator, image, state.semantic, semantic_t1, seed=5, tile=96, overlap=16)
    assert tiled.shape == image.shape and tiled.dtype == np.uint8
    np.testing.assert_array_equal(tiled, again)
    other_seed = changen_synthesize(
        generator, image, state.semantic, semantic_t1, seed=6, tile=96, overlap=16
    )
    assert not np.array_equal(tiled, other_seed)


def test_synthesize_keeps_nodata_pixels_and_reports_progress(georeferenced_scene):
    image_path, footprints = georeferenced_scene
    from core.instances import load_state

    image = read_raster(image_path)
    image.valid[:20] = False
    state, _, _ = load_state(footprints, grid=image.grid)
    series = simulate_series(state, 0, 2, remove=0.5, create=2)
    seen = []
    result = synthesize(image, state, series, method="inpainting", device="cpu", progress=seen.append)
    assert len(result.images) == 3 and len(result.changes) == 2 and len(result.masks) == 3
    assert seen[-1] == 100.0
    for picture in result.images[1:]:
        np.testing.assert_array_equal(picture[:20], image.array[:20])
