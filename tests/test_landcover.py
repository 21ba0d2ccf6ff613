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


# ------------------------------------------------------------------------------------------------ end to end
DUBAI_TILE = "tile3_image_part_002"  # MBRSC Dubai (CC0): buildings, land and road in the crop below
CROP = (slice(480, 544), slice(384, 448))


def _geotiff(path, array, transform, crs="EPSG:32640"):
    import rasterio

    array = array[..., None] if array.ndim == 2 else array
    profile = dict(driver="GTiff", width=array.shape[1], height=array.shape[0], count=array.shape[2])
    with rasterio.open(path, "w", dtype="uint8", crs=crs, transform=transform, **profile) as dataset:
        dataset.write(np.moveaxis(array, -1, 0))


@pytest.fixture
def dubai_crop(shared_data, tmp_path):
    """A 64² crop of a real Dubai image and its label map as GeoTIFFs placed in UTM 40N (the placement is made
    up: the tiles carry no georeferencing)."""
    from affine import Affine
    from PIL import Image

    folder = shared_data / "landcover" / "dubai_mbrsc"
    image = np.asarray(Image.open(folder / "images" / f"{DUBAI_TILE}.jpg").convert("RGB"))[CROP]
    labels = np.asarray(Image.open(folder / "labels" / f"{DUBAI_TILE}.png"))[CROP]
    transform = Affine(0.5, 0, 300_000, 0, -0.5, 2_780_000)
    _geotiff(tmp_path / "image.tif", image, transform)
    _geotiff(tmp_path / "labels.tif", labels, transform)
    return tmp_path / "image.tif", tmp_path / "labels.tif", image, labels, transform


def _read(path):
    import rasterio

    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.crs, dataset.transform


def test_synthesize_landcover_writes_a_georeferenced_series_with_class_maps_and_animation(
    dubai_crop, tmp_path
):
    import hashlib
    import xml.etree.ElementTree as ET

    from PIL import Image, ImageSequence

    from core.__main__ import main

    image_path, labels_path, image, labels, transform = dubai_crop
    digests = [hashlib.sha1(p.read_bytes()).hexdigest() for p in (image_path, labels_path)]
    out = tmp_path / "out"
    argv = ["synthesize", str(image_path), "--task", "landcover", "--labels", str(labels_path)]
    argv += ["--source", "dubai_mbrsc", "--steps", "2", "--change-class", "building:bareland", "-o", str(out)]
    assert main(argv + ["--device", "cpu"]) == 0
    assert [hashlib.sha1(p.read_bytes()).hexdigest() for p in (image_path, labels_path)] == digests

    from core.events.classes import to_project_classes

    classes = to_project_classes(labels, "dubai_mbrsc")
    for name in ("image_t0", "image_t2", "mask_t1", "change_t1", "fromto_t1", "fromto_t0_t2"):
        _, crs, written_transform = _read(out / f"{name}.tif")
        assert crs.to_epsg() == 32640 and written_transform == transform
    assert (_read(out / "image_t0.tif")[0] == np.moveaxis(image, -1, 0)).all()
    mask_t0, mask_t1 = _read(out / "mask_t0.tif")[0][0], _read(out / "mask_t1.tif")[0][0]
    assert (mask_t0 == classes).all()
    assert (mask_t1[classes == BUILDING] == BARELAND).all() and (
        mask_t1[classes != BUILDING] == mask_t0[classes != BUILDING]
    ).all()
    change = _read(out / "change_t1.tif")[0][0]
    assert (change == (classes == BUILDING)).all()
    assert set(np.unique(_read(out / "fromto_t1.tif")[0])) == {0, BUILDING * FROM_TO_BASE + BARELAND}
    legend = json.loads((out / "fromto_legend.json").read_text())
    assert legend["codes"][str(BUILDING * FROM_TO_BASE + BARELAND)] == {"from": "building", "to": "bareland"}
    # latent mixing keeps the input outside the (slightly grown) change; the building area is redrawn
    after = np.moveaxis(_read(out / "image_t1.tif")[0], 0, -1)
    grown = ndimage.binary_dilation(
        classes == BUILDING, np.ones((3, 3)), iterations=20
    )  # seam reach: 3 + 16 px
    assert (after[~grown] == image[~grown]).all() and (
        after[classes == BUILDING] != image[classes == BUILDING]
    ).any()
    import rasterio

    with rasterio.open(out / "mask_t0.tif") as dataset:
        assert dataset.colormap(1)[BUILDING][:3] == (222, 31, 7)
    palette = ET.parse(out / "mask_t0.qml").getroot().find(".//colorPalette")
    assert [entry.get("label") for entry in palette] == list(PROJECT_CLASSES)
    with Image.open(out / "animation.gif") as gif:
        assert sum(1 for _ in ImageSequence.Iterator(gif)) == 3  # one frame per date t0..t2
    log = json.loads((out / "events.json").read_text())
    assert log["series"]["settings"]["first_step"]["class_changes"][0] == {
        "to_cls": 1,
        "from_cls": 8,
        "at": None,
    }


def test_synthesize_landcover_asks_for_the_mapping_of_unknown_values(dubai_crop, tmp_path, capsys):
    from core.__main__ import main

    image_path, labels_path, *_ = dubai_crop
    argv = [
        "synthesize",
        str(image_path),
        "--task",
        "landcover",
        "--labels",
        str(labels_path),
        "-o",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    message = capsys.readouterr().err
    assert "class values [0, 1, 2, 3]" in message and "--class-map" in message and "dubai_mbrsc" in message
    partial = tmp_path / "map.json"
    partial.write_text(json.dumps({"0": "unlabeled", "1": "building"}))
    assert main(argv + ["--class-map", str(partial)]) == 2
    assert "class values [2, 3]" in capsys.readouterr().err
    assert not (tmp_path / "o" / "image_t0.tif").exists()


def test_synthesize_landcover_refuses_labels_off_the_image_grid(dubai_crop, tmp_path, capsys):
    from affine import Affine

    from core.__main__ import main

    image_path, _, _, labels, transform = dubai_crop
    shifted = tmp_path / "shifted.tif"
    _geotiff(shifted, labels, transform * Affine.translation(3, 0))
    argv = [
        "synthesize",
        str(image_path),
        "--task",
        "landcover",
        "--labels",
        str(shifted),
        "--source",
        "dubai_mbrsc",
    ]
    assert main(argv + ["-o", str(tmp_path / "o")]) == 2
    message = capsys.readouterr().err
    assert "not on the image's grid" in message and "Align Rasters" in message


def test_generate_dataset_landcover_writes_training_pairs_and_resumes(shared_data, tmp_path, capsys):
    from core.__main__ import main
    from core.data.sampling import is_held_out

    out = tmp_path / "pairs"
    argv = [
        "generate-dataset",
        "--task",
        "landcover",
        "--maps",
        "dubai_mbrsc",
        "--pairs",
        "2",
        "--crop",
        "64",
    ]
    argv += ["--min-region", "64", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    for folder in sorted(out.glob("0*")):
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["source"] == "dubai_mbrsc" and not is_held_out(meta["map"])
        from PIL import Image

        s1, s2 = (np.asarray(Image.open(folder / f"{n}.png")) for n in ("S_t1", "S_t2"))
        change = np.asarray(Image.open(folder / "change.png")) > 0
        fromto = np.asarray(Image.open(folder / "fromto.png"))
        assert (change == (s1 != s2)).all() and (
            fromto[change] == s1[change] * FROM_TO_BASE + s2[change]
        ).all()
    capsys.readouterr()
    assert main(argv) == 0
    assert "0 land-cover pairs written, 2 already finished" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*.png")} == first


def test_change_at_takes_map_coordinates_of_the_image():
    from affine import Affine

    from core.cli.synthesize import parse_change_at
    from core.io.rasters import RasterGrid

    grid = RasterGrid("EPSG:32640", Affine(0.5, 0, 300_000, 0, -0.5, 2_780_000), 64, 64)
    change = parse_change_at("300010.2,2779990.9:water", grid)
    assert change == ClassChange(WATER, at=(18, 20))
    with pytest.raises(InputError, match="outside the image"):
        parse_change_at("299990,2779990:water", grid)
    with pytest.raises(InputError, match="X,Y:CLASS"):
        parse_change_at("300010:water", grid)


def test_per_class_rates_of_a_json_table_decide_which_regions_change(tmp_path):
    path = tmp_path / "rates.json"
    allowed = {"tree": ["bareland"], "water": ["bareland"], "bareland": ["water"]}
    rates = {"tree": 1.0, "water": 0.0}  # bareland: the step's probability
    path.write_text(json.dumps({"classes": list(PROJECT_CLASSES[1:]), "allowed": allowed, "rates": rates}))
    table = TransitionTable.load(path)
    assert json.loads(table.to_json())["rates"] == rates
    before = _state(_map())
    result = simulate_step(before, np.random.default_rng(0), transitions=table)  # transition=0: rates only
    assert (result.state.semantic[before.semantic == TREE] == BARELAND).all()
    assert (result.state.semantic[before.semantic == WATER] == WATER).all()
    assert (result.state.semantic[before.semantic == BARELAND] == BARELAND).all()
    everything = simulate_step(before, np.random.default_rng(0), transition=1.0, transitions=table)
    assert (everything.state.semantic[before.semantic == BARELAND] == WATER).all()
    assert (everything.state.semantic[before.semantic == WATER] == WATER).all()
    reindexed = table.reindexed(PROJECT_CLASSES[1:])
    assert reindexed.rate(TREE, 0.5) == 1.0 and reindexed.rate(BARELAND, 0.5) == 0.5
