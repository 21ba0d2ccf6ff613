"""Property tests of the change-event simulation over random masks (core.events)."""

import json

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from core.errors import InputError
from core.events.placement import Creation, transform_shape
from core.events.series import iterate_series, simulate_series, simulate_unlabeled_series
from core.events.state import LabelState
from core.events.step import simulate_step
from core.events.transitions import OEM_CLASSES, TransitionTable, default_oem_transitions

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_buildings(seed: int, size: int = 160, count: int = 12) -> np.ndarray:
    """A 0/255 mask of rotated rectangles and ellipses (they may touch and merge, like real footprints)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(count):
        centre = tuple(float(v) for v in rng.uniform(0, size, 2))
        axes = tuple(float(v) for v in rng.uniform(3, 18, 2))
        angle = float(rng.uniform(0, 180))
        if rng.random() < 0.5:
            box = cv2.boxPoints((centre, (2 * axes[0], 2 * axes[1]), angle))
            cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 255)
        else:
            cv2.ellipse(
                mask,
                (round(centre[0]), round(centre[1])),
                tuple(round(a) for a in axes),
                angle,
                0,
                360,
                255,
                -1,
            )
    return mask


def random_landcover(seed: int, size: int = 96) -> np.ndarray:
    """OpenEarthMap-like classes 1..8 in blobs: a smoothed random field quantised into classes."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((size, size)), 4)
    edges = np.quantile(field, np.linspace(0, 1, 9)[1:-1])
    return (np.digitize(field, edges) + 1).astype(np.uint8)


seeds = st.integers(0, 2**32 - 1)


@PROPERTY
@given(seed=seeds, remove=st.one_of(st.integers(0, 8), st.floats(0.0, 1.0)), fill=st.sampled_from([0, 3]))
def test_removed_instances_vanish_and_nothing_else_changes(seed, remove, fill):
    before = LabelState.from_mask(random_buildings(seed))
    result = simulate_step(before, np.random.default_rng(seed), remove=remove, min_area=20, fill_class=fill)
    removed_ids = {event.instance_id for event in result.events}
    assert all(event.kind == "remove" for event in result.events)
    large = [i for i, info in before.index.items() if info.area >= 20]
    expected = round(remove * len(large)) if isinstance(remove, float) else min(remove, len(large))
    assert len(removed_ids) == expected
    assert removed_ids <= set(large)
    after = result.state
    assert not np.isin(after.instance, list(removed_ids)).any()
    was_removed = np.isin(before.instance, list(removed_ids))
    np.testing.assert_array_equal(result.removed, was_removed)
    np.testing.assert_array_equal(after.instance[~was_removed], before.instance[~was_removed])
    np.testing.assert_array_equal(after.semantic[~was_removed], before.semantic[~was_removed])
    assert (after.semantic[was_removed] == fill).all()
    assert not result.created.any()


def test_chosen_ids_are_removed_and_unknown_ids_refused():
    before = LabelState.from_mask(random_buildings(7))
    chosen = before.ids[:2]
    result = simulate_step(before, np.random.default_rng(0), remove_ids=chosen)
    assert [event.instance_id for event in result.events] == chosen
    assert set(result.state.ids) == set(before.ids) - set(chosen)
    with pytest.raises(InputError, match="no such instance"):
        simulate_step(before, np.random.default_rng(0), remove_ids=[max(before.ids) + 1])


@PROPERTY
@given(seed=seeds, create=st.integers(1, 6), gap=st.integers(0, 4))
def test_created_objects_do_not_overlap_and_stay_inside(seed, create, gap):
    before = LabelState.from_mask(random_buildings(seed, count=8))
    result = simulate_step(
        before,
        np.random.default_rng(seed),
        remove=1,
        create=create,
        min_area=20,
        min_gap=gap,
        scale_range=(0.7, 1.4),
        angle_range=(0.0, 360.0),
    )
    creates = [event for event in result.events if event.kind == "create"]
    assert len(creates) + len(result.unplaced) == create
    after = result.state
    new_ids = [event.instance_id for event in creates]
    assert new_ids == list(range(before.next_id, before.next_id + len(creates)))
    assert not (result.created & before.foreground()).any()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1))
    for event in creates:
        own = after.instance == event.instance_id
        # the whole transformed shape was placed: nothing fell off the image
        source = before.instance == event.source_id
        rows, cols = ndimage.find_objects(source.astype(np.int32))[0]
        expected = transform_shape(source[rows, cols], event.angle, event.scale)
        assert own.sum() == expected.sum() == event.area
        halo = cv2.dilate(own.astype(np.uint8), kernel).astype(bool)
        others = (after.instance != 0) & ~own | before.foreground()
        assert not (halo & others).any(), "a created object is closer than min_gap to another object"
    np.testing.assert_array_equal(result.change, result.removed | result.created)
    if gap >= 1:  # written as a 0/255 mask, the result reads back into the same objects
        reread = LabelState.from_mask(after.semantic * 255)
        assert len(reread.index) == len(after.index)


@PROPERTY
@given(
    height=st.integers(12, 60),
    width=st.integers(12, 60),
    angle=st.floats(0.0, 360.0),
    scale=st.floats(0.5, 2.5),
    ellipse=st.booleans(),
)
def test_area_scales_with_the_square_of_scale(height, width, angle, scale, ellipse):
    shape = np.zeros((height, width), np.uint8)
    if ellipse:
        cv2.ellipse(shape, (((width - 1) / 2, (height - 1) / 2), (width, height), 0.0), 1, -1)
    else:
        shape[:] = 1
    shape = shape.astype(bool)
    out = transform_shape(shape, angle, scale)
    perimeter = 2 * (height + width)
    assert abs(out.sum() - scale**2 * shape.sum()) <= 0.5 * scale * perimeter + 4


def test_a_copy_without_rotation_or_scaling_is_exact():
    before = LabelState.from_mask(random_buildings(3, size=200, count=6))
    source = before.ids[0]
    result = simulate_step(before, np.random.default_rng(1), creations=[Creation(source)])
    (event,) = result.events
    rows, cols = before.index[source].slices
    r0, c0, r1, c1 = event.bbox
    np.testing.assert_array_equal(
        result.state.instance[r0:r1, c0:c1] == event.instance_id, before.instance[rows, cols] == source
    )


@PROPERTY
@given(seed=seeds)
def test_a_logged_creation_replays_to_the_same_pixels(seed):
    before = LabelState.from_mask(random_buildings(seed, count=8))
    result = simulate_step(before, np.random.default_rng(seed), create=3, min_area=20)
    for event in result.events:
        again = Creation(event.source_id, centre=event.centre, angle=event.angle, scale=event.scale)
        replay = simulate_step(before, np.random.default_rng(0), creations=[again])
        assert not replay.unplaced
        np.testing.assert_array_equal(replay.created, result.state.instance == event.instance_id)


def test_explicit_creation_lands_at_its_centre_or_says_why_not():
    mask = np.zeros((100, 100), np.uint8)
    mask[10:30, 10:30] = 255
    before = LabelState.from_mask(mask)
    polygon = [(0.0, 0.0), (0.0, 20.0), (10.0, 20.0), (10.0, 0.0)]
    creations = [
        Creation(1, centre=(70, 70), angle=90, scale=0.5, cls=2),
        Creation(polygon, centre=(50, 20)),
        Creation(np.ones((8, 8), bool), centre=(20, 20)),
        Creation(np.ones((8, 8), bool), centre=(98, 98)),
    ]
    result = simulate_step(before, np.random.default_rng(0), creations=creations)
    created = [event for event in result.events if event.kind == "create"]
    assert [event.instance_id for event in created] == [2, 3]
    assert np.allclose(created[0].centre, (70, 70), atol=0.5)
    assert created[0].cls == 2 and result.state.semantic[70, 70] == 2
    assert np.allclose(created[1].centre, (50, 20), atol=0.5)
    assert 10 * 20 * 0.8 <= created[1].area <= 11 * 21
    reasons = [item.reason for item in result.unplaced]
    assert "overlaps" in reasons[0] and "outside the image" in reasons[1]


def test_unplaceable_objects_are_reported():
    mask = np.zeros((64, 64), np.uint8)
    mask[2:62, 2:62] = 255
    before = LabelState.from_mask(mask)
    result = simulate_step(before, np.random.default_rng(0), create=2, min_area=10)
    assert len(result.unplaced) == 2 and not result.created.any()
    assert "no free place" in result.unplaced[0].reason or "does not fit" in result.unplaced[0].reason


def test_crowded_images_still_find_the_last_free_place():
    """Random tries rarely hit a single free slot; the exhaustive fallback must find it."""
    mask = np.full((200, 200), 255, np.uint8)
    mask[150:170, 20:40] = 0  # a 20x20 hole: room for a 10x10 object with a 2 px gap (and some slack)
    mask[0:5, 0:5] = 0
    before = state = LabelState.from_mask(mask)
    shape = np.ones((10, 10), bool)
    result = simulate_step(state, np.random.default_rng(0), creations=[Creation(shape)], min_gap=2)
    assert not result.unplaced
    rows, cols = np.nonzero(result.created)
    assert rows.min() >= 152 and rows.max() <= 167 and cols.min() >= 22 and cols.max() <= 37
    assert not (result.created & before.foreground()).any()


@PROPERTY
@given(seed=seeds, split=st.integers(40, 120))
def test_random_placements_stay_inside_the_allowed_area(seed, split):
    before = LabelState.from_mask(random_buildings(seed, count=6))
    allowed = np.zeros(before.shape, bool)
    allowed[:, :split] = True
    result = simulate_step(before, np.random.default_rng(seed), create=4, min_area=20, allowed=allowed)
    assert not (result.created & ~allowed).any()
    assert len([e for e in result.events if e.kind == "create"]) + len(result.unplaced) == 4
    nowhere = simulate_step(
        before, np.random.default_rng(seed), create=1, min_area=20, allowed=np.zeros_like(allowed)
    )
    assert not nowhere.created.any() and "allowed area" in nowhere.unplaced[0].reason


def test_the_exhaustive_search_respects_the_allowed_area():
    state = LabelState.from_mask(np.zeros((120, 120), np.uint8))
    allowed = np.zeros((120, 120), bool)
    allowed[100:112, 7:19] = True  # exactly one 10x10 placement with a pixel of slack on each side
    creation = Creation(np.ones((10, 10), bool))
    result = simulate_step(
        state, np.random.default_rng(0), creations=[creation], allowed=allowed, max_tries=0
    )
    rows, cols = np.nonzero(result.created)
    assert (
        not result.unplaced
        and rows.min() >= 100
        and rows.max() <= 111
        and cols.min() >= 7
        and cols.max() <= 18
    )


@PROPERTY
@given(seed=seeds, steps=st.integers(1, 4))
def test_change_masks_are_the_xor_of_foregrounds(seed, steps):
    state = LabelState.from_mask(random_buildings(seed))
    series = simulate_series(state, seed, steps, remove=0.3, create=2, min_area=20, angle_range=(0.0, 360.0))
    assert len(series.frames) == steps + 1
    for t, step in enumerate(series.steps):
        xor = series.frames[t].foreground() ^ series.frames[t + 1].foreground()
        np.testing.assert_array_equal(step.change, xor)
    for i in range(steps + 1):
        for j in range(steps + 1):
            xor = series.frames[i].foreground() ^ series.frames[j].foreground()
            np.testing.assert_array_equal(series.change_between(i, j), xor)
            code = series.semantic_change(i, j)
            from_cls, to_cls = np.divmod(code, series.num_classes + 1)
            np.testing.assert_array_equal(code != 0, xor)
            np.testing.assert_array_equal(from_cls[xor], series.frames[i].semantic[xor])
            np.testing.assert_array_equal(to_cls[xor], series.frames[j].semantic[xor])


@PROPERTY
@given(seed=seeds, probability=st.floats(0.05, 1.0))
def test_transitions_follow_the_table_region_by_region(seed, probability):
    table = default_oem_transitions()
    labels = random_landcover(seed)
    before = LabelState(labels, np.zeros(labels.shape, np.int32))
    result = simulate_step(before, np.random.default_rng(seed), transition=probability, transitions=table)
    after = result.state.semantic
    changed = after != labels
    np.testing.assert_array_equal(changed, result.transitioned)
    pairs = set(zip(labels[changed].tolist(), after[changed].tolist(), strict=True))
    assert all(table.allows(a, b) for a, b in pairs), pairs
    for event in result.events:
        assert event.kind == "transition" and table.allows(event.from_cls, event.cls)
    # each switched region switched whole: no region of the old map is split between old and new classes
    for cls in range(1, 9):
        regions, count = ndimage.label(labels == cls, structure=ndimage.generate_binary_structure(2, 1))
        switched = np.bincount(regions[changed], minlength=count + 1)[1:]
        sizes = np.bincount(regions.ravel(), minlength=count + 1)[1:]
        assert ((switched == 0) | (switched == sizes)).all()


def test_probability_one_switches_every_region_and_zero_none():
    labels = random_landcover(5)
    before = LabelState(labels, np.zeros(labels.shape, np.int32))
    table = default_oem_transitions()
    everything = simulate_step(before, np.random.default_rng(0), transition=1.0, transitions=table)
    assert everything.change.all()
    nothing = simulate_step(before, np.random.default_rng(0), transition=0.0, transitions=table)
    assert not nothing.change.any()


def test_transition_table_round_trips_through_json(tmp_path):
    table = default_oem_transitions()
    assert table.names == OEM_CLASSES
    road, water, building = 4, 6, 8
    assert {b for b in range(9) if table.allows(road, b)} == {1, 3, 5, water}
    assert not table.allows(water, building)
    assert {b for b in range(9) if table.allows(building, b)} == {3, 5, water}  # Changen2's published row
    path = tmp_path / "table.json"
    path.write_text(table.to_json())
    np.testing.assert_allclose(TransitionTable.load(path).matrix, table.matrix)
    path.write_text(json.dumps({"classes": ["a", "b"], "allowed": {"a": ["c"]}}))
    with pytest.raises(InputError, match="unknown target class"):
        TransitionTable.load(path)


@PROPERTY
@given(seed=seeds)
def test_the_same_seed_gives_byte_identical_series(seed):
    state = LabelState.from_mask(random_buildings(seed))
    kwargs = dict(remove=0.4, create=3, min_area=20, scale_range=(0.8, 1.2), angle_range=(0.0, 360.0))
    first = simulate_series(state, seed, 3, **kwargs)
    second = simulate_series(state, np.random.default_rng(seed), 3, **kwargs)
    for a, b in zip(first.frames, second.frames, strict=True):
        assert a.semantic.tobytes() == b.semantic.tobytes() and a.instance.tobytes() == b.instance.tobytes()
    assert [s.to_dict() for s in first.steps] == [s.to_dict() for s in second.steps]
    # any step replays alone from its logged seed
    replay = simulate_step(first.frames[1], np.random.default_rng(first.steps[1].seed), **kwargs)
    assert replay.state.instance.tobytes() == first.frames[2].instance.tobytes()


def test_iterating_a_series_step_by_step_gives_the_same_frames():
    state = LabelState.from_mask(random_buildings(8))
    kwargs = dict(remove=0.3, create=2, min_area=20)
    series = simulate_series(state, 9, 3, first_step={"remove_ids": state.ids[:1]}, **kwargs)
    steps = list(iterate_series(state, 9, 3, first_step={"remove_ids": state.ids[:1]}, **kwargs))
    assert series.steps[0].events[0].instance_id == state.ids[0]
    for frame, step in zip(series.frames[1:], steps, strict=True):
        assert frame.instance.tobytes() == step.state.instance.tobytes()
    assert series.settings["first_step"] == {"remove_ids": state.ids[:1]}


def test_different_seeds_give_different_series():
    state = LabelState.from_mask(random_buildings(11))
    kwargs = dict(remove=0.5, create=3, min_area=20, angle_range=(0.0, 360.0))
    a = simulate_series(state, 1, 2, **kwargs)
    b = simulate_series(state, 2, 2, **kwargs)
    assert a.frames[-1].instance.tobytes() != b.frames[-1].instance.tobytes()


def test_ids_are_never_reused_across_a_series():
    state = LabelState.from_mask(random_buildings(4))
    series = simulate_series(state, 0, 6, remove=0.5, create=3, min_area=20)
    created = [e.instance_id for s in series.steps for e in s.events if e.kind == "create"]
    assert len(created) == len(set(created)) and min(created) > max(state.ids)


def test_event_log_is_json_with_seeds_and_geometry():
    state = LabelState.from_mask(random_buildings(9))
    series = simulate_series(state, 42, 2, remove=2, create=2, min_area=20, angle_range=(10.0, 20.0))
    log = json.loads(series.to_json())
    assert log["seed"] == 42 and len(log["steps"]) == 2
    assert [step["seed"] for step in log["steps"]] == [s.seed for s in series.steps]
    creates = [e for step in log["steps"] for e in step["events"] if e["kind"] == "create"]
    assert creates and all(10.0 <= e["angle"] <= 20.0 and len(e["bbox"]) == 4 for e in creates)


def test_unlabeled_mode_only_removes_and_conditions_on_outlines():
    instance = LabelState.from_mask(random_buildings(6)).instance
    series = simulate_unlabeled_series(instance, 0, 3, remove=2, min_area=20)
    for step in series.steps:
        assert {event.kind for event in step.events} <= {"remove"}
        np.testing.assert_array_equal(step.change, step.removed)
    outlines = series.frames[0].outlines()
    assert outlines.any() and not (outlines & (instance == 0)).any()
    interior = ndimage.binary_erosion(instance != 0, structure=np.ones((3, 3)))
    assert not (
        outlines & interior & (ndimage.maximum_filter(instance, 3) == ndimage.minimum_filter(instance, 3))
    ).any()


def test_bad_parameters_raise_input_errors():
    state = LabelState.from_mask(random_buildings(1))
    with pytest.raises(InputError):
        simulate_step(state, np.random.default_rng(0), remove=1.5)
    with pytest.raises(InputError):
        simulate_step(state, np.random.default_rng(0), scale_range=(0.0, 1.0))
    with pytest.raises(InputError):
        simulate_step(state, 3)
    with pytest.raises(InputError):
        simulate_step(state, np.random.default_rng(0), transition=0.5)
    with pytest.raises(InputError):
        LabelState(np.zeros((4, 4)), np.zeros((5, 4)))
    with pytest.raises(InputError, match="background"):
        Creation(1, cls=0)
