"""Land-cover change in QGIS: the "Synthesize land-cover change" Processing algorithm and the dock's Land cover
tab, on a real 64² crop of a CC0 Dubai MBRSC image and its label map (the `dubai_crop` fixture of the core tests)."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from dock_fixtures import wait_until
from qgis.core import QgsProcessingException, QgsProject, QgsRasterLayer
from qgis_process_runner import run_algorithm
from test_landcover import dubai_crop  # noqa: F401 (a fixture)
from test_processing import RecordingFeedback, provider, qgis_process_with_plugin  # noqa: F401 (fixtures)

from core.events.classes import CLASS_SCHEMES, PROJECT_CLASSES
from core.synthesis.landcover import FROM_TO_BASE, landcover_outputs

BUILDING, BARELAND = PROJECT_CLASSES.index("building"), PROJECT_CLASSES.index("bareland")


def _read(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.crs, dataset.transform


def _parameters(dubai_crop, out, **extra):  # noqa: F811 (the fixture's value)
    image_path, labels_path, *_ = dubai_crop
    return {
        "INPUT": str(image_path),
        "LANDCOVER": str(labels_path),
        "SOURCE": CLASS_SCHEMES.index("dubai_mbrsc"),
        "CHANGE_CLASS": "building:bareland",
        "TRANSITION": 0.0,
        "STEPS": 1,
        "SEED": 3,
        "DEVICE": 1,  # cpu
        "OUTPUT": str(out),
    } | extra


# ------------------------------------------------------------------------------------------------ Processing
def test_landcover_through_processing_run(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing

    image_path, labels_path, image, labels, transform = dubai_crop
    before = [path.read_bytes() for path in (image_path, labels_path)]
    feedback = RecordingFeedback()
    out = tmp_path / "out"
    results = processing.run("changen:landcover", _parameters(dubai_crop, out), feedback=feedback)
    assert [path.read_bytes() for path in (image_path, labels_path)] == before  # nothing written over inputs
    assert sorted(p.name for p in out.iterdir()) == sorted(landcover_outputs(1))
    assert feedback.progress_values[-1] == 100
    assert results["REGIONS"] >= 1 and Path(results["EVENT_LOG"]).is_file()
    post, crs, post_transform = _read(results["POST_IMAGE"])
    assert crs.to_epsg() == 32640 and post_transform == transform and post.shape == (3, 64, 64)
    from_to = _read(results["FROM_TO"])[0][0]
    is_building = labels == 1  # Dubai's building value
    assert (from_to[is_building] == BUILDING * FROM_TO_BASE + BARELAND).all() and not from_to[
        ~is_building
    ].any()
    assert (np.moveaxis(post, 0, -1)[is_building] != image[is_building]).any()


def test_landcover_results_load_as_named_styled_layers(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing
    from qgis.core import QgsPalettedRasterRenderer

    project = QgsProject.instance()
    before = set(project.mapLayers())
    processing.runAndLoadResults("changen:landcover", _parameters(dubai_crop, tmp_path / "out", STEPS=2))
    loaded = [layer for key, layer in project.mapLayers().items() if key not in before]
    try:
        by_file = {Path(layer.source()).name: layer for layer in loaded}
        assert sorted(by_file) == [
            "fromto_t0_t2.tif",
            "image_t2.tif",
            "mask_t0.tif",
            "mask_t1.tif",
            "mask_t2.tif",
        ]
        assert all(isinstance(layer, QgsRasterLayer) for layer in loaded)
        assert by_file["image_t2.tif"].name().startswith("Changen land-cover post-event (")
        assert by_file["fromto_t0_t2.tif"].name().startswith("Changen from→to (")
        classes = by_file["mask_t0.tif"].renderer()
        assert isinstance(classes, QgsPalettedRasterRenderer)  # core's .qml
        assert [item.label for item in classes.classes()] == list(PROJECT_CLASSES)
        assert (tmp_path / "out" / "animation.gif").is_file()
    finally:
        project.removeMapLayers([layer.id() for layer in loaded])


def test_landcover_cancel_writes_nothing(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing

    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException, match="canceled"):
        processing.run(
            "changen:landcover", _parameters(dubai_crop, out), feedback=RecordingFeedback(cancel_after=0)
        )
    assert not out.exists() or not any(out.iterdir())


def test_landcover_unknown_class_values_ask_for_the_mapping(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing

    partial = tmp_path / "map.json"
    partial.write_text(json.dumps({"0": "unlabeled", "1": "building"}))
    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException, match=r"class values \[2, 3\].*class mapping JSON"):
        processing.run("changen:landcover", _parameters(dubai_crop, out, CLASS_MAP=str(partial)))
    with pytest.raises(QgsProcessingException, match="a class change is FROM:TO"):
        processing.run("changen:landcover", _parameters(dubai_crop, out, CHANGE_CLASS="building"))
    assert not out.exists() or not any(out.iterdir())


def test_landcover_through_qgis_process(qgis_process_with_plugin, dubai_crop, tmp_path):  # noqa: F811
    parameters = _parameters(
        dubai_crop, tmp_path / "out", STEPS=2, CHANGE_CLASS="building:bareland,road:tree"
    )
    results = run_algorithm(qgis_process_with_plugin, "changen:landcover", **parameters)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(landcover_outputs(2))
    codes = set(np.unique(_read(results["FROM_TO"])[0]))
    road, tree = PROJECT_CLASSES.index("road"), PROJECT_CLASSES.index("tree")
    assert codes == {0, BUILDING * FROM_TO_BASE + BARELAND, road * FROM_TO_BASE + tree}


# ------------------------------------------------------------------------------------------------ dock
@pytest.fixture()
def landcover(dubai_crop, dock, tmp_path):  # noqa: F811
    """(image, labels, Land cover tab) with the Dubai crop loaded, plus a float raster the tab must not offer."""
    image_path, labels_path, _, labels, transform = dubai_crop
    heights = tmp_path / "heights.tif"
    profile = dict(driver="GTiff", width=64, height=64, count=1, dtype="float32", crs="EPSG:32640")
    with rasterio.open(heights, "w", transform=transform, **profile) as dataset:
        dataset.write(labels[None].astype(np.float32))
    image = QgsRasterLayer(str(image_path), "dubai image")
    classes = QgsRasterLayer(str(labels_path), "dubai classes")
    QgsProject.instance().addMapLayers([image, classes, QgsRasterLayer(str(heights), "heights")])
    tab = dock.landcover_tab
    tab.image_combo.setLayer(image)
    tab.classes_combo.setLayer(classes)
    tab.source.setCurrentText("dubai_mbrsc")
    yield image, classes, tab
    tab.close_tools()
    wait_until(lambda: not (tab.preview_runner.busy or tab.export_runner.busy))
    tab.discard_preview()


def _rule(tab, before: str, after: str) -> None:
    tab.from_class.setCurrentText(before)
    tab.to_class.setCurrentText(after)
    tab.add_rule.click()


def test_tab_offers_only_single_band_integer_rasters(landcover):
    image, classes, tab = landcover
    offered = [tab.classes_combo.layer(index) for index in range(tab.classes_combo.count())]
    assert [layer.name() for layer in offered] == ["dubai classes"]  # not the RGB image, not the float raster
    assert tab.image_combo.count() == 3
    assert (
        tab.scheme_note.text()
        == "Raster values: 0 unlabeled, 1 building, 2 bareland, 3 road, 4 tree, 5 water."
    )


def test_preview_task_adds_the_post_image_and_from_to_map_in_a_group(landcover, dubai_crop):  # noqa: F811
    from qgis.core import QgsPalettedRasterRenderer

    *_, labels, _ = dubai_crop
    image, classes, tab = landcover
    _rule(tab, "building", "bareland")
    assert tab.change_list.item(0).text() == "all building → bareland"
    task = tab.preview()
    assert task is not None
    wait_until(lambda: not tab.preview_runner.busy)
    assert tab.preview_layer_ids, tab.note.text()
    layers = [QgsProject.instance().mapLayer(layer_id) for layer_id in tab.preview_layer_ids]
    assert [layer.name() for layer in layers] == ["from→to t0→t1 (temporary)", "image t1 (temporary)"]
    assert tab.preview_group.name() == "Changen land-cover preview: dubai image"
    assert isinstance(layers[0].renderer(), QgsPalettedRasterRenderer)
    assert [item.label for item in layers[0].renderer().classes()] == ["building → bareland"]
    from_to = _read(layers[0].source())[0][0]
    assert (from_to[labels == 1] == BUILDING * FROM_TO_BASE + BARELAND).all()
    first = tab.preview_dir
    tab.preview()  # the next preview replaces the layers, the group and the folder
    wait_until(lambda: not tab.preview_runner.busy and tab.preview_dir != first)
    assert not Path(first).exists() and len(tab.preview_layer_ids) == 2
    assert "region(s) changed class" in tab.note.text()


def test_a_click_picks_the_region_under_it(landcover, dubai_crop, qgis_iface):  # noqa: F811
    from qgis.core import QgsPointXY

    *_, labels, transform = dubai_crop
    image, classes, tab = landcover
    qgis_iface.mapCanvas().setDestinationCrs(classes.crs())
    row, col = map(int, np.argwhere(labels == 1)[0])
    x, y = transform * (col + 0.5, row + 0.5)
    tab.target.setCurrentText("water")
    tab.tool.picked.emit(QgsPointXY(x, y))
    assert tab.changes[-1].at == (row, col) and tab.changes[-1].to_cls == PROJECT_CLASSES.index("water")
    assert tab.change_list.item(0).text() == f"region of value 1 at row {row}, col {col} → water"
    scene = qgis_iface.mapCanvas().scene()
    assert tab.markers[-1] in scene.items()  # the click stays marked on the map
    tab.tool.undo.emit()
    assert tab.changes == [] and tab.change_list.count() == 0 and tab.markers == []
    tab.pick_region(QgsPointXY(x + 1000, y))  # off the raster: said, nothing added
    assert tab.changes == []
    tab.pick_region(QgsPointXY(x, y))
    QgsProject.instance().addMapLayer(QgsRasterLayer(str(dubai_crop[0]), "another image"))
    assert len(tab.changes) == 1  # other layers leave the picks alone
    tab.classes_combo.setLayer(None)
    assert tab.changes == [] and tab.markers == []  # another land-cover raster starts over


def test_export_writes_the_georeferenced_series_with_its_animation(landcover, dubai_crop, tmp_path):  # noqa: F811
    *_, transform = dubai_crop
    image, classes, tab = landcover
    _rule(tab, "building", "bareland")
    tab.steps.setValue(2)
    parent = tmp_path / "exports"
    parent.mkdir()
    assert tab.export(str(parent)) is not None
    wait_until(lambda: not tab.export_runner.busy)
    [folder] = list(parent.iterdir())
    assert folder.name.startswith("changen_landcover_dubai_image_"), tab.note.text()
    assert sorted(p.name for p in folder.iterdir()) == sorted(landcover_outputs(2))
    assert _read(folder / "image_t2.tif")[2] == transform
    assert "animation.gif" in tab.note.text()


def test_unknown_class_values_ask_for_the_mapping(landcover, tmp_path):
    image, classes, tab = landcover
    partial = tmp_path / "map.json"
    partial.write_text(json.dumps({"0": "unlabeled", "1": "building"}))
    tab.class_map.setFilePath(str(partial))
    _rule(tab, "building", "bareland")
    tab.preview()
    wait_until(lambda: not tab.preview_runner.busy)
    text = tab.note.text()
    assert (
        "class values [2, 3]" in text and "choose the raster's class scheme, or a class mapping JSON" in text
    )
    assert not tab.preview_layer_ids
    tab.clear_changes()
    assert tab.preview() is None  # nothing to change: said before any task starts


def test_a_canceled_export_leaves_nothing(landcover, tmp_path):
    image, classes, tab = landcover
    _rule(tab, "building", "bareland")
    tab.steps.setValue(3)
    parent = tmp_path / "exports"
    task = tab.export(str(parent))
    task.progressChanged.connect(lambda _: tab.export_runner.cancel())  # once the drawing has started
    wait_until(lambda: not tab.export_runner.busy)
    assert tab.note.text() == "Export canceled: nothing was written."
    assert not parent.exists() or list(parent.iterdir()) == []
