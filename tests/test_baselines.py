import cv2
import numpy as np
import pytest
from PIL import Image

from core.events.placement import Creation
from core.events.state import LabelState
from core.events.step import simulate_step
from core.synthesis.compositing import feather
from core.synthesis.copy_paste import copy_paste
from core.synthesis.inpaint import inpaint, removal_holes


@pytest.fixture(scope="module")
def scene(shared_data):
    """A real 384² crop of an xBD Harvey pre-disaster tile with its building footprints."""
    folder = shared_data / "buildings" / "xbd_harvey"
    name = "hurricane-harvey_00000001_pre_disaster.png"
    image = np.asarray(Image.open(folder / "images" / name).convert("RGB"))[300:684, 300:684].copy()
    mask = np.asarray(Image.open(folder / "masks" / name))[300:684, 300:684]
    state = LabelState.from_mask(mask)
    assert len(state.index) >= 5
    return image, state


def _mid_sized(state):
    """A house-sized instance (not a merged block that has no free place to go)."""
    houses = [i for i, info in state.index.items() if 150 <= info.area <= 2000]
    return max(houses, key=lambda i: state.index[i].area)


def test_feather_is_zero_outside_and_one_deep_inside():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    alpha = feather(mask, 2.0)
    assert (alpha[~mask] == 0).all()
    assert alpha[10, 10] == 1.0 and 0 < alpha[5, 10] < 1


def test_copy_paste_puts_the_source_roof_into_the_created_footprint_only(scene):
    image, state = scene
    source = _mid_sized(state)
    step = simulate_step(state, np.random.default_rng(0), remove=2, creations=[Creation(source_id=source)])
    assert step.created.any() and step.removed.any()
    out = copy_paste(image, state, step, np.random.default_rng(1))
    changed = (out != image).any(axis=2)
    assert not changed[~step.created].any()  # removals keep their pixels; nothing outside the creation moves
    assert changed[step.created].mean() > 0.8
    # with angle 0 and scale 1, the core of the pasted roof is the source roof, pixel for pixel
    rows, cols = state.index[source].slices
    source_shape = state.instance[rows, cols] == source
    created = next(e for e in step.events if e.kind == "create")
    r0, c0, r1, c1 = created.bbox
    target = step.state.instance[r0:r1, c0:c1] == created.instance_id
    np.testing.assert_array_equal(target, source_shape)
    core = feather(target) == 1.0
    np.testing.assert_array_equal(out[r0:r1, c0:c1][core], image[rows, cols][core])


def test_copy_paste_follows_rotation_and_scale(scene):
    image, state = scene
    source = _mid_sized(state)
    creation = Creation(source_id=source, angle=90.0, scale=1.0)
    step = simulate_step(state, np.random.default_rng(3), creations=[creation])
    event = next(e for e in step.events if e.kind == "create")
    r0, c0, r1, c1 = event.bbox
    out = copy_paste(image, state, step, np.random.default_rng(0))
    rows, cols = state.index[source].slices
    rotated = np.rot90(image[rows, cols])  # counter-clockwise, as the event's angle
    target = step.state.instance[r0:r1, c0:c1] == event.instance_id
    assert abs(target.shape[0] - rotated.shape[0]) <= 1 and abs(target.shape[1] - rotated.shape[1]) <= 1
    rotated = cv2.resize(rotated, target.shape[::-1], interpolation=cv2.INTER_LINEAR)
    core = feather(target) == 1.0
    difference = np.abs(out[r0:r1, c0:c1][core].astype(int) - rotated[core].astype(int))
    assert np.median(difference) <= 3


def test_inpaint_changes_only_dilated_removed_footprints_and_keeps_other_buildings(scene):
    image, state = scene
    step = simulate_step(state, np.random.default_rng(5), remove=0.5, create=2)
    out = inpaint(image, state, step, np.random.default_rng(0))
    holes = removal_holes(state, step)
    changed = (out != image).any(axis=2)
    assert not changed[~holes].any()
    staying = state.foreground() & ~step.removed
    assert not changed[staying].any() and not changed[step.created].any()
    assert changed[step.removed].mean() > 0.9


def test_inpainted_removals_look_like_their_surroundings(scene):
    image, state = scene
    step = simulate_step(state, np.random.default_rng(7), remove=1.0)
    ring = removal_holes(state, step, dilation=8) & ~removal_holes(state, step)
    ring_colour = image[ring].astype(float).mean(axis=0)
    for ground_texture in (0.0, 1.0):
        out = inpaint(image, state, step, np.random.default_rng(0), ground_texture=ground_texture)
        before = np.abs(image[step.removed].astype(float).mean(axis=0) - ring_colour).sum()
        after = np.abs(out[step.removed].astype(float).mean(axis=0) - ring_colour).sum()
        assert after < 0.5 * before


def test_ground_texture_fill_adds_texture_and_is_reproducible(scene):
    image, state = scene
    step = simulate_step(state, np.random.default_rng(11), remove=1.0)
    smooth = inpaint(image, state, step, np.random.default_rng(0))
    textured = inpaint(image, state, step, np.random.default_rng(0), ground_texture=1.0)
    again = inpaint(image, state, step, np.random.default_rng(0), ground_texture=1.0)
    np.testing.assert_array_equal(textured, again)
    holes = removal_holes(state, step)
    assert not (textured != image).any(axis=2)[~holes].any()

    def roughness(picture):  # mean absolute Laplacian-like detail inside the removed footprints
        grey = picture.astype(float).mean(axis=2)
        detail = np.abs(
            4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
        )
        return detail[step.removed[1:-1, 1:-1]].mean()

    assert roughness(textured) > 1.1 * roughness(smooth)


def test_baselines_refuse_mismatched_images(scene):
    image, state = scene
    step = simulate_step(state, np.random.default_rng(0), remove=1)
    with pytest.raises(ValueError):
        inpaint(image[:100], state, step, np.random.default_rng(0))
    with pytest.raises(ValueError):
        copy_paste(image.astype(np.uint16), state, step, np.random.default_rng(0))
