"""Change detection on rasters: seam-free tiled stitching, T1's grid, alignment, nodata, 16-bit, polygons."""

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform, reproject

from core.detection.blocks import ChangeStarOutput
from core.detection.changestar import ChangeStar, ChangeStarConfig, build_changestar
from core.detection.inference import MASK_NODATA, detect_change, predict_array, write_change_polygons
from core.detection.loading import LoadedDetector
from core.errors import Canceled, InputError

UTM = CRS.from_epsg(32615)


class PixelDifference(ChangeStar):
    """A stand-in detector whose output at a pixel depends only on that pixel: any seam or offset in the
    stitching shows up as a difference from the untiled result."""

    def __init__(self):
        super().__init__(ChangeStarConfig(encoder="efficientnet_lite0", fpn_channels=8, decoder_channels=8))

    def forward(self, pair):
        difference = (pair[:, :3] - pair[:, 3:]).abs().mean(dim=1, keepdim=True)
        return ChangeStarOutput(change_logit=(difference - 40.0) / 5.0)


def _write(path, array, transform=None, crs=UTM, nodata=None):
    height, width, count = array.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": array.dtype.name}
    if crs is not None:
        profile.update(crs=crs, transform=transform or Affine(0.5, 0, 400000, 0, -0.5, 4100000))
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.moveaxis(array, -1, 0))


def _scene(height=700, width=900, seed=0):
    rng = np.random.default_rng(seed)
    t1 = rng.integers(60, 160, size=(height, width, 3), dtype=np.uint8)
    t2 = t1.copy()
    t2[100:180, 200:300] = 250  # a new bright building: 80 × 100 px
    t2[500:520, 600:640] = 0  # a demolished one: 20 × 40 px
    return t1, t2


def test_tiled_stitching_equals_untiled_prediction_and_keeps_t1_grid(tmp_path):
    t1, t2 = _scene()
    _write(tmp_path / "t1.tif", t1)
    _write(tmp_path / "t2.tif", t2)
    model = PixelDifference()
    result = detect_change(
        tmp_path / "t1.tif",
        tmp_path / "t2.tif",
        tmp_path / "change.tif",
        probability_path=tmp_path / "p.tif",
        model=model,
        threshold=0.5,
        tile=256,
        overlap=32,
        precision="fp32",
    )
    expected = predict_array(model, t1, t2, torch.device("cpu"), tile=2048)
    with rasterio.open(tmp_path / "p.tif") as probabilities, rasterio.open(tmp_path / "change.tif") as mask:
        assert np.allclose(probabilities.read(1), expected, atol=1e-6)
        assert mask.crs == UTM and mask.transform == Affine(0.5, 0, 400000, 0, -0.5, 4100000)
        assert mask.dtypes[0] == "uint8" and mask.nodata == MASK_NODATA
        changed = mask.read(1)
    assert result.tiles > 9 and result.skipped_tiles == 0 and not result.t2_resampled
    assert changed.sum() == 80 * 100 + 20 * 40 == result.changed_pixels
    assert result.changed_area == pytest.approx(result.changed_pixels * 0.25)


def test_nodata_tiles_are_skipped_and_marked(tmp_path):
    t1, t2 = _scene(600, 600)
    t1[:, 300:] = 0
    _write(tmp_path / "t1.tif", t1, nodata=0)
    _write(tmp_path / "t2.tif", t2)
    calls = []
    result = detect_change(
        tmp_path / "t1.tif",
        tmp_path / "t2.tif",
        tmp_path / "change.tif",
        model=PixelDifference(),
        tile=200,
        overlap=20,
        progress=calls.append,
    )
    with rasterio.open(tmp_path / "change.tif") as mask:
        values = mask.read(1)
    assert np.all(values[:, 310:] == MASK_NODATA)
    assert set(np.unique(values[:, :290])) <= {0, 1}
    assert result.skipped_tiles >= 3
    assert calls[-1] == 100.0 and calls == sorted(calls)


def test_tiles_are_read_one_ahead_in_a_reader_thread_and_t2_only_where_t1_has_data(tmp_path, monkeypatch):
    import threading

    import core.detection.inference as inference

    t1, t2 = _scene(600, 600)
    t1[:, 300:] = 0
    _write(tmp_path / "t1.tif", t1, nodata=0)
    _write(tmp_path / "t2.tif", t2)
    events, second_read = [], threading.Event()
    read_t2, predict_tile = inference._Aligned.read_t2, inference.predict_tile

    def spy_read_t2(self, window):
        events.append(("read_t2", int(window.col_off), threading.current_thread().name))
        if len(events) > 1:
            second_read.set()
        return read_t2(self, window)

    def spy_predict(*args, **kwargs):
        events.append(("predict", None, threading.current_thread().name))
        assert second_read.wait(
            10
        )  # the next tile is being read while the model runs: a serial loop waits here
        return predict_tile(*args, **kwargs)

    monkeypatch.setattr(inference._Aligned, "read_t2", spy_read_t2)
    monkeypatch.setattr(inference, "predict_tile", spy_predict)
    result = detect_change(
        tmp_path / "t1.tif", tmp_path / "t2.tif", tmp_path / "change.tif", model=PixelDifference(), tile=200,
        overlap=20,
    )  # fmt: skip
    reads = [event for event in events if event[0] == "read_t2"]
    predictions = [event for event in events if event[0] == "predict"]
    assert {name for _, _, name in reads} == {"changen-tile-reader_0"}
    assert {name for _, _, name in predictions} == {threading.current_thread().name}
    assert len(reads) == len(predictions) == result.tiles - result.skipped_tiles  # no T2 read without T1 data
    assert max(column for _, column, _ in reads) < 300


def test_a_failed_tile_read_is_raised_and_leaves_no_output(tmp_path, monkeypatch):
    import core.detection.inference as inference

    t1, t2 = _scene(300, 300)
    _write(tmp_path / "t1.tif", t1)
    _write(tmp_path / "t2.tif", t2)

    def broken(self, window):
        raise InputError("T2 block unreadable")

    monkeypatch.setattr(inference._Aligned, "read_t2", broken)
    with pytest.raises(InputError, match="T2 block unreadable"):
        detect_change(
            tmp_path / "t1.tif", tmp_path / "t2.tif", tmp_path / "c.tif", model=PixelDifference(), tile=128,
            overlap=16,
        )  # fmt: skip
    assert list(tmp_path.glob("c.tif*")) == [] and not list(tmp_path.glob(".c.tif*"))


def test_t2_on_another_crs_is_resampled_onto_t1_grid(tmp_path):
    t1, t2 = _scene(400, 400)
    _write(tmp_path / "t1.tif", t1)
    _write(tmp_path / "t2.tif", t2)
    # The same T2 stored in geographic coordinates: detection must bring it back onto T1's UTM grid.
    with rasterio.open(tmp_path / "t2.tif") as source:
        transform, width, height = calculate_default_transform(
            source.crs, "EPSG:4326", source.width, source.height, *source.bounds
        )
        array = np.zeros((3, height, width), np.uint8)
        for band in range(3):
            reproject(
                source.read(band + 1),
                array[band],
                src_transform=source.transform,
                src_crs=source.crs,
                dst_transform=transform,
                dst_crs="EPSG:4326",
            )
    _write(tmp_path / "t2_wgs84.tif", np.moveaxis(array, 0, -1), transform=transform, crs=CRS.from_epsg(4326))
    result = detect_change(
        tmp_path / "t1.tif",
        tmp_path / "t2_wgs84.tif",
        tmp_path / "change.tif",
        model=PixelDifference(),
        tile=256,
    )
    assert result.t2_resampled and "resampled" in result.notes[0]
    with rasterio.open(tmp_path / "change.tif") as mask:
        assert mask.crs == UTM and mask.shape == (400, 400)
        values = mask.read(1)
    inside = values[110:170, 210:290]
    assert np.mean(inside == 1) > 0.95  # the new building is found where it is on T1's grid


def test_disjoint_rasters_are_refused(tmp_path):
    t1, t2 = _scene(64, 64)
    _write(tmp_path / "t1.tif", t1)
    _write(tmp_path / "t2.tif", t2, transform=Affine(0.5, 0, 500000, 0, -0.5, 4100000))
    with pytest.raises(InputError, match="does not overlap"):
        detect_change(tmp_path / "t1.tif", tmp_path / "t2.tif", tmp_path / "c.tif", model=PixelDifference())
    assert not (tmp_path / "c.tif").exists()


def test_sixteen_bit_and_plain_png_inputs(tmp_path):
    t1, t2 = _scene(256, 320)
    _write(tmp_path / "t1.tif", (t1.astype(np.uint16) * 40 + 1000), crs=None)
    _write(tmp_path / "t2.tif", (t2.astype(np.uint16) * 40 + 1000), crs=None)
    result = detect_change(
        tmp_path / "t1.tif", tmp_path / "t2.tif", tmp_path / "c.tif", model=PixelDifference()
    )
    assert result.changed_pixels > 0
    from PIL import Image

    Image.fromarray(t1).save(tmp_path / "a.png")
    Image.fromarray(t2[:100]).save(tmp_path / "b.png")
    with pytest.raises(InputError, match="different sizes"):
        detect_change(tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c2.tif", model=PixelDifference())
    with pytest.raises(InputError, match="three bands"):
        detect_change(
            tmp_path / "a.png", tmp_path / "a.png", tmp_path / "c2.tif", model=PixelDifference(), bands="1,2"
        )


def test_cancel_leaves_no_output(tmp_path):
    t1, t2 = _scene(300, 300)
    _write(tmp_path / "t1.tif", t1)
    _write(tmp_path / "t2.tif", t2)
    with pytest.raises(Canceled):
        detect_change(
            tmp_path / "t1.tif",
            tmp_path / "t2.tif",
            tmp_path / "c.tif",
            model=PixelDifference(),
            tile=128,
            overlap=16,
            is_canceled=lambda: True,
        )
    assert list(tmp_path.glob("c.tif*")) == [] and not list(tmp_path.glob(".c.tif*"))


def test_a_loaded_detector_brings_its_threshold(tmp_path):
    t1, t2 = _scene(64, 64)
    _write(tmp_path / "t1.tif", t1)
    _write(tmp_path / "t2.tif", t2)
    loaded = LoadedDetector(model=PixelDifference(), config={"threshold": 0.93})
    result = detect_change(tmp_path / "t1.tif", tmp_path / "t2.tif", tmp_path / "c.tif", model=loaded)
    assert result.threshold == 0.93


def test_polygons_carry_their_area(tmp_path):
    mask = np.zeros((50, 60, 1), np.uint8)
    mask[10:20, 10:30] = 1  # 200 px
    mask[30:35, 40:44] = 1  # 20 px
    mask[40:45, 0:5] = MASK_NODATA
    _write(tmp_path / "mask.tif", mask, transform=Affine(2.0, 0, 400000, 0, -2.0, 4100000))
    written = write_change_polygons(tmp_path / "mask.tif", tmp_path / "changes.gpkg")
    frame = gpd.read_file(tmp_path / "changes.gpkg", layer="changes")
    assert len(written) == 2 == len(frame)
    assert sorted(frame["area"]) == [80.0, 800.0]  # 2 m pixels: 4 m² each
    # Ellipsoidal m² (issue 16, item 13): 100 km west of the central meridian UTM's scale factor is 0.99972.
    assert sorted(frame["area_m2"]) == [pytest.approx(80.04, abs=0.01), pytest.approx(800.44, abs=0.01)]
    assert frame.crs == UTM
    with pytest.raises(InputError, match="GeoPackage"):
        write_change_polygons(tmp_path / "mask.tif", tmp_path / "changes.shp")


def test_real_georeferenced_pair_with_a_real_detector(tmp_path, shared_data):
    folder = shared_data / "georef" / "levir_dev"
    model = build_changestar("efficientnet_lite0", imagenet=True)
    result = detect_change(
        folder / "test_2_0000_0000_A.tif",
        folder / "test_2_0000_0000_B.tif",
        tmp_path / "change.tif",
        vector_path=tmp_path / "changes.gpkg",
        model=model,
        threshold=0.5,
    )
    with (
        rasterio.open(folder / "test_2_0000_0000_A.tif") as t1,
        rasterio.open(tmp_path / "change.tif") as mask,
    ):
        assert mask.crs == t1.crs and mask.transform == t1.transform and mask.shape == t1.shape
        assert set(np.unique(mask.read(1))) <= {0, 1}
    frame = gpd.read_file(tmp_path / "changes.gpkg")
    assert len(frame) == result.polygons
    if len(frame):
        assert (frame["area_m2"] > 0).all()  # EPSG:4326 input: areas in m² through a UTM projection


def test_cpu_inference_keeps_freed_memory_on_glibc():
    import sys

    from core.device import keep_freed_memory

    kept = keep_freed_memory()
    assert kept is keep_freed_memory()  # idempotent
    assert kept == sys.platform.startswith("linux")
