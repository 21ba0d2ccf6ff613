import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from core.io.tiling import TileGrid, pad_to_multiple


@settings(max_examples=150, deadline=None)
@given(
    height=st.integers(1, 600),
    width=st.integers(1, 600),
    tile=st.integers(8, 300),
    overlap_fraction=st.floats(0, 0.49),
)
def test_owned_regions_cover_every_pixel_exactly_once(height, width, tile, overlap_fraction):
    overlap = min(int(tile * overlap_fraction), (tile - 1) // 2)
    assume((height / (tile - 2 * overlap)) * (width / (tile - 2 * overlap)) < 5000)  # keep each example fast
    grid = TileGrid(height, width, tile, overlap)
    coverage = np.zeros((height, width), dtype=np.int32)
    for tile_ in grid:
        read, owned = tile_.read, tile_.owned
        assert read.row_off >= 0 and read.row_off + read.height <= height
        assert read.col_off >= 0 and read.col_off + read.width <= width
        assert read.height == min(tile, height) and read.width == min(tile, width)
        rows, cols = tile_.crop
        assert rows.start >= 0 and rows.stop <= read.height and cols.start >= 0 and cols.stop <= read.width
        coverage[
            owned.row_off : owned.row_off + owned.height, owned.col_off : owned.col_off + owned.width
        ] += 1
    assert (coverage == 1).all()
    assert len(grid) == len(list(grid))


@settings(max_examples=60, deadline=None)
@given(height=st.integers(40, 400), width=st.integers(40, 400), overlap=st.integers(0, 15))
def test_owned_region_keeps_overlap_context_away_from_the_border(height, width, overlap):
    grid = TileGrid(height, width, 64, overlap)
    for tile in grid:
        rows, cols = tile.crop
        if tile.owned.row_off > 0:
            assert rows.start >= overlap
        if tile.owned.row_off + tile.owned.height < height:
            assert tile.read.height - rows.stop >= overlap
        if tile.owned.col_off > 0:
            assert cols.start >= overlap
        if tile.owned.col_off + tile.owned.width < width:
            assert tile.read.width - cols.stop >= overlap


def test_centre_crop_stitching_of_a_context_dependent_filter_has_no_seams():
    rng = np.random.default_rng(0)
    image = rng.random((203, 157)).astype(np.float32)

    def box_blur(array):  # 5×5 mean: needs 2 px context on each side
        padded = np.pad(array, 2, mode="edge")
        return (
            sum(padded[i : i + array.shape[0], j : j + array.shape[1]] for i in range(5) for j in range(5))
            / 25
        )

    expected = box_blur(image)
    stitched = np.full_like(image, np.nan)
    for tile in TileGrid(*image.shape, tile=48, overlap=4):
        r, c = tile.read, tile.owned
        block = box_blur(image[r.row_off : r.row_off + r.height, r.col_off : r.col_off + r.width])
        stitched[c.row_off : c.row_off + c.height, c.col_off : c.col_off + c.width] = block[tile.crop]
    np.testing.assert_allclose(stitched, expected, atol=1e-6)


def test_invalid_tile_sizes_are_refused_with_the_fix():
    with pytest.raises(InputError, match="larger tile or a smaller overlap"):
        TileGrid(100, 100, tile=32, overlap=16)
    with pytest.raises(InputError, match="larger tile or a smaller overlap"):
        TileGrid(100, 100, tile=32, overlap=-1)
    with pytest.raises(InputError, match="100×0 pixels: give a raster"):
        TileGrid(0, 100, tile=32, overlap=4)


def test_an_unknown_device_or_precision_is_an_input_error_with_the_choices():
    from core.device import pick_device, use_bf16

    with pytest.raises(InputError, match="use auto, cpu, cuda"):
        pick_device("tpu")
    with pytest.raises(InputError, match="use auto, fp32, bf16"):
        use_bf16("fp16", pick_device("cpu"))


@pytest.mark.parametrize("shape", [(33, 70, 3), (64, 64), (1, 5), (31, 1, 3)])
def test_pad_to_multiple_pads_to_32_and_keeps_original_pixels(shape):
    array = np.arange(np.prod(shape), dtype=np.int32).reshape(shape)
    padded, (height, width) = pad_to_multiple(array, 32)
    assert padded.shape[0] % 32 == 0 and padded.shape[1] % 32 == 0
    assert padded.shape[2:] == array.shape[2:]
    assert (height, width) == array.shape[:2]
    np.testing.assert_array_equal(padded[:height, :width], array)
