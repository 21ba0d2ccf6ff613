"""Land-cover change: transitions of connected regions (minimum size, explicit A→B), the class-map reader, and the
`synthesize --task landcover` / `generate-dataset --task landcover` jobs end to end on real CC0 Dubai maps."""

import json

import numpy as np
import pytest
from scipy import ndimage

from core.errors import InputError
from core.events.classes import PROJECT_CLASSES
from core.events.state import FOUR_CONNECTED, LabelState
from core.events.step import simulate_step
from core.events.transitions import ClassChange, TransitionTable, default_oem_transitions
from core.synthesis.landcover import FROM_TO_BASE, LandcoverParameters, simulate_landcover

TREE, BARELAND, WATER, BUILDING = (
    PROJECT_CLASSES.index(n) for n in ("tree", "bareland", "water", "building")
)


def _map() -> np.ndarray:
    """Bareland with a large tree block, a small tree block, and a second large tree block touching the first
    only diagonally (so it is another 4-connected region)."""
    classes = np.full((64, 64), BARELAND, np.uint8)
    classes[4:24, 4:24] = TREE  # 400 px
    classes[24:44, 24:44] = TREE  # 400 px, diagonal neighbour
    classes[50:55, 50:55] = TREE  # 25 px
    classes[40:60, 2:20] = WATER
    return classes


def _state(classes):
    return LabelState(classes, np.zeros(classes.shape, np.int32))


def test_transitions_skip_regions_below_the_minimum_size():
    before = _state(_map())
    result = simulate_step(
        before,
        np.random.default_rng(0),
        transition=1.0,
        transitions=default_oem_transitions(),
        min_region=100,
    )
    assert not result.change[50:55, 50:55].any()  # the 25-px tree block is too small
    assert result.change[4:24, 4:24].all() and result.change[24:44, 24:44].all()
    small = simulate_step(
        before, np.random.default_rng(0), transition=1.0, transitions=default_oem_transitions()
    )
    assert small.change[50:55, 50:55].all()  # without a minimum it switches too


def test_transitions_switch_whole_connected_regions_to_one_allowed_class():
    before = _state(_map())
    table = default_oem_transitions()
    for seed in range(5):
        result = simulate_step(before, np.random.default_rng(seed), transition=0.5, transitions=table)
        assert all(table.allows(event.from_cls, event.cls) for event in result.events)
        # every region changed whole or not at all, to a single class
        for cls in np.unique(before.semantic):
            labels, count = ndimage.label(before.semantic == cls, structure=FOUR_CONNECTED)
            for index in range(1, count + 1):
                region = labels == index
                assert result.change[region].all() or not result.change[region].any()
                assert np.unique(result.state.semantic[region]).size == 1


def test_an_explicit_change_turns_every_region_of_a_class_into_another():
    before = _state(_map())
    result = simulate_step(
        before, np.random.default_rng(0), class_changes=[ClassChange(BUILDING, from_cls=TREE)]
    )
    assert (result.state.semantic[before.semantic == TREE] == BUILDING).all()
    assert (result.state.semantic[before.semantic != TREE] == before.semantic[before.semantic != TREE]).all()
    assert sorted(e.area for e in result.events) == [25, 400, 400]  # three regions, each its own event


def test_an_explicit_change_at_a_pixel_turns_only_that_connected_region():
    before = _state(_map())
    result = simulate_step(
        before,
        np.random.default_rng(0),
        class_changes=[ClassChange(BARELAND, at=(10, 10))],
        transition=1.0,
        transitions=default_oem_transitions(),
        min_region=10_000,  # no random region is that large: only the pick changes
    )
    assert (result.state.semantic[4:24, 4:24] == BARELAND).all()
    assert (result.state.semantic[24:44, 24:44] == TREE).all()  # touches only diagonally: another region
    assert result.change.sum() == 400
    with pytest.raises(InputError, match="not 6"):
        simulate_step(
            before, np.random.default_rng(0), class_changes=[ClassChange(BARELAND, WATER, at=(10, 10))]
        )
    with pytest.raises(InputError, match="outside"):
        simulate_step(before, np.random.default_rng(0), class_changes=[ClassChange(BARELAND, at=(99, 0))])


def test_explicit_pixels_take_no_random_transition_in_the_same_step():
    before = _state(_map())
    for seed in range(4):
        result = simulate_step(
            before,
            np.random.default_rng(seed),
            class_changes=[ClassChange(WATER, from_cls=TREE)],
            transition=1.0,
            transitions=default_oem_transitions(),
        )
        assert (result.state.semantic[before.semantic == TREE] == WATER).all()


def test_a_json_table_naming_some_classes_in_any_order_applies_to_project_ids(tmp_path):
    path = tmp_path / "table.json"
    path.write_text(json.dumps({"classes": ["water", "tree", "bareland"], "allowed": {"tree": ["bareland"]}}))
    table = TransitionTable.load(path).reindexed(PROJECT_CLASSES[1:])
    assert table.matrix[TREE, BARELAND] == 1.0 and table.matrix.sum() == 1.0
    series = simulate_landcover(
        _map(), LandcoverParameters(steps=1, transition=1.0, min_region=0, table=table)
    )
    after = series.frames[1].semantic
    assert (after[_map() == TREE] == BARELAND).all() and (after[_map() == WATER] == WATER).all()
    path.write_text(json.dumps({"classes": ["forest"], "allowed": {}}))
    with pytest.raises(InputError, match="forest"):
        TransitionTable.load(path).reindexed(PROJECT_CLASSES[1:])


def test_chained_steps_give_a_series_and_from_to_codes_decode():
    series = simulate_landcover(_map(), LandcoverParameters(steps=3, transition=0.5, min_region=0, seed=3))
    assert len(series.frames) == 4 and len(series.steps) == 3
    for t, step in enumerate(series.steps):
        assert (step.change == (series.frames[t].semantic != series.frames[t + 1].semantic)).all()
    code = series.semantic_change(0, 3, FROM_TO_BASE - 1)
    changed = series.change_between(0, 3)
    before, after = np.divmod(code[changed], FROM_TO_BASE)
    assert (before == series.frames[0].semantic[changed]).all() and (
        after == series.frames[3].semantic[changed]
    ).all()
    assert (code[~changed] == 0).all()
    again = simulate_landcover(_map(), LandcoverParameters(steps=3, transition=0.5, min_region=0, seed=3))
    assert all((a.semantic == b.semantic).all() for a, b in zip(series.frames, again.frames, strict=True))
