import json

import numpy as np
import pytest
import torch
from rasterio.windows import Window
from scipy import ndimage

from core.__main__ import main
from core.events.series import simulate_series
from core.events.state import LabelState
from core.io.rasters import raster_grid, read_mask, read_raster, write_geotiff
from core.synthesis.changen import _tile_noise, changen_synthesize
from core.synthesis.changen_gan import build_generator
from core.synthesis.compositing import KEEP_DILATION, KEEP_FEATHER, KEEP_REACH, keep_unchanged
from core.synthesis.synthesize import DEFAULT_GENERATOR, synthesize
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


def test_changen_reports_progress_per_tile_and_synthesize_per_step_within_it(shared_data):
    """Issue 16, item 20: the preview's progress sat still for the whole generator run."""
    generator = build_generator("cpu").eval()
    folder = shared_data / "buildings" / "xbd_harvey"
    name = "hurricane-harvey_00000006_pre_disaster.png"
    image = read_raster(folder / "images" / name, window=Window(0, 0, 140, 128)).array
    mask, _ = read_mask(folder / "masks" / name, window=Window(0, 0, 140, 128))
    state = LabelState.from_mask(mask)
    after = state.semantic.copy()
    after[:40, :40] = 1
    seen = []
    changen_synthesize(
        generator, image, state.semantic, after, seed=5, tile=96, overlap=16, progress=seen.append
    )
    assert seen == sorted(seen) and seen[-1] == 100.0
    assert len([value for value in seen if 0 < value < 100]) >= 3  # one per tile

    from core.synthesis.synthesize import synthesize_step

    step = simulate_series(state, 0, 2, remove=0, create=1).steps[0]
    seen.clear()
    synthesize_step(
        "changen",
        image,
        state,
        step,
        np.random.default_rng(0),
        generator,
        progress=seen.append,
        unchanged="keep",
    )
    assert seen and seen[-1] == 100.0


def test_synthesize_keeps_nodata_pixels_and_reports_progress(georeferenced_scene):
    image_path, footprints = georeferenced_scene
    from core.io.labels import load_state

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


@pytest.fixture(scope="module")
def harvey_edit(shared_data):
    """A real 300×260 xBD Harvey crop with its buildings; after the edit one building is gone and a square one
    stands on open ground."""
    folder = shared_data / "buildings" / "xbd_harvey"
    name = "hurricane-harvey_00000006_pre_disaster.png"
    window = Window(100, 400, 260, 300)
    image = read_raster(folder / "images" / name, window=window).array
    mask, _ = read_mask(folder / "masks" / name, window=window)
    state = LabelState.from_mask(mask)
    after = state.semantic.copy()
    biggest = np.bincount(state.instance.ravel())[1:].argmax() + 1
    after[state.instance == biggest] = 0
    open_ground = np.argwhere(ndimage.minimum_filter(state.semantic, 30) == 0)[0]  # a 30×30 empty square
    after[open_ground[0] - 10 : open_ground[0] + 10, open_ground[1] - 10 : open_ground[1] + 10] = 1
    return image, state.semantic, after


def _far_from(change: np.ndarray, distance: float) -> np.ndarray:
    return ndimage.distance_transform_edt(~change) >= distance


def test_keep_changes_only_the_grown_change_and_is_reproducible(harvey_edit):
    image, before, after = harvey_edit
    torch.manual_seed(2)
    generator = build_generator("cpu").eval()
    change = before != after
    kept = changen_synthesize(generator, image, before, after, seed=4, unchanged="keep")
    outside = _far_from(change, KEEP_DILATION + KEEP_FEATHER)
    np.testing.assert_array_equal(kept[outside], image[outside])
    assert (kept[change] != image[change]).any(axis=1).mean() > 0.9
    np.testing.assert_array_equal(
        kept, changen_synthesize(generator, image, before, after, seed=4, unchanged="keep")
    )
    regenerated = changen_synthesize(generator, image, before, after, seed=4, unchanged="regenerate")
    assert (regenerated[outside] != image[outside]).any(axis=1).mean() > 0.5


def test_keep_compositing_is_the_same_for_any_tiling_and_removes_a_colour_cast(harvey_edit):
    """A stand-in generator output: new content inside the change, the input outside, all with a colour cast.
    Harmonising tile by tile (several tiles over the 300×260 raster) gives exactly the one-tile result, and the
    cast is corrected away inside the change (beyond its 3-px rim)."""
    image, before, after = harvey_edit
    change = (before > 0) | (after > 0)  # every building replaced: changes across many tile borders
    content = image[::-1]
    cast = np.array([24, -20, 16])
    ramp = np.linspace(0.5, 1.5, image.shape[1])[None, :, None]  # the cast varies across the image
    noise = np.random.default_rng(0).integers(-8, 9, image.shape)
    stand_in = np.where(change[..., None], content, image) + cast * ramp + noise
    stand_in = np.clip(np.round(stand_in), 0, 255).astype(np.uint8)
    whole = keep_unchanged(image, stand_in, change, tile=1024)
    for tile in (4 * KEEP_REACH, 128):
        np.testing.assert_array_equal(keep_unchanged(image, stand_in, change, tile=tile), whole)
    inside = _far_from(~change, 3)  # the change without its rim
    assert np.abs(whole[inside].astype(int) - image[inside]).mean() > 10
    residual_cast = whole[inside].astype(float).mean(axis=0) - content[inside].astype(float).mean(axis=0)
    assert (np.abs(residual_cast) < 0.25 * np.abs(cast)).all(), residual_cast


def test_keep_with_generator_tiles_is_the_composite_of_the_stitched_generator_output(harvey_edit):
    """The trained generator over 3×3 tiles: keep mode is exactly the tiling-independent compositing of the
    stitched output (tiles far from the change are skipped without effect), so tiles differ from one tile only
    by the generator's own tiling, a small fraction of what the edit changes."""
    image, before, after = harvey_edit
    from core.synthesis.changen_gan import load_generator

    generator = load_generator(DEFAULT_GENERATOR, "cpu")
    change = before != after

    def run(mode, tile):
        return changen_synthesize(
            generator, image, before, after, seed=9, tile=tile, overlap=32, unchanged=mode
        )

    tiled = run("keep", 128)
    np.testing.assert_array_equal(tiled, keep_unchanged(image, run("regenerate", 128), change))
    one_tile = run("keep", 512)
    outside = _far_from(change, KEEP_DILATION + KEEP_FEATHER)
    np.testing.assert_array_equal(tiled[outside], one_tile[outside])
    edit = np.abs(one_tile[change].astype(int) - image[change]).mean()
    assert np.abs(tiled[change].astype(int) - one_tile[change]).mean() < 0.25 * edit


def test_cli_unchanged_flag_reaches_the_generator(georeferenced_scene, random_generator_file, tmp_path):
    image_path, footprints = georeferenced_scene
    common = ("--model", str(random_generator_file), "--remove", "2", "--create", "1")
    kept_log = _run(image_path, footprints, tmp_path / "keep", *common)
    regenerated_log = _run(image_path, footprints, tmp_path / "regen", *common, "--unchanged", "regenerate")
    assert kept_log["unchanged"] == "keep" and regenerated_log["unchanged"] == "regenerate"
    source = read_raster(image_path).array
    change = read_mask(tmp_path / "keep" / "change_t1.tif")[0] > 0
    outside = _far_from(change, KEEP_DILATION + KEEP_FEATHER)
    kept = read_raster(tmp_path / "keep" / "image_t1.tif").array
    regenerated = read_raster(tmp_path / "regen" / "image_t1.tif").array
    np.testing.assert_array_equal(kept[outside], source[outside])
    assert (regenerated[outside] != source[outside]).any(axis=1).mean() > 0.5
