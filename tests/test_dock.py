"""The dock's widgets: tabs, device status, settings, map-tool buttons, random events, building masks as input."""

import pytest
from dock_fixtures import wait_until
from qgis.core import QgsProject, QgsRasterLayer, QgsSettings, QgsVectorLayer
from qgis.PyQt.QtWidgets import QTabWidget

from changen.core.errors import InputError
from changen.plugin.deps import DependencyReport
from changen.plugin.map_tools import CreateBuildingTool, RemoveBuildingTool
from changen.plugin.settings import load_settings, save_settings
from changen.ui.dock import ChangenDock
from changen.ui.settings_dialog import SettingsDialog


def test_dock_has_both_tabs(dock):
    tabs = dock.findChild(QTabWidget, "ChangenTabs")
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Synthesize", "Detect", "Land cover"]


def test_status_line_shows_the_device_the_setting_resolves_to(dock, cuda, saved_settings):
    settings = load_settings()
    for choice in ("auto", "cuda"):
        settings.device = choice
        save_settings(settings)
        dock.show_device()
        text = dock.status.text()
        if cuda:
            assert text == f"Device: CUDA (Fake GPU) (setting: {choice})"
        elif choice == "auto":
            assert text.startswith("Device: CPU (") and text.endswith("(setting: auto)")
        else:  # a cuda choice without CUDA says how to fix it
            assert text.startswith("Device setting 'cuda' is unusable") and "choose 'cpu' or 'auto'" in text


def test_missing_dependencies_disable_the_tabs(qgis_iface):
    widget = ChangenDock(qgis_iface, DependencyReport(("torch",)))
    assert widget.tabs.count() == 0
    assert "torch" in widget.status.text() and "pip install" in widget.status.text()
    assert not widget.settings_button.isEnabled()
    widget.close_tools()


def test_settings_dialog_stores_the_choice_in_qgssettings(dock, saved_settings):
    dialog = SettingsDialog(dock)
    dialog.device.setCurrentText("cpu")
    dialog.detector.setCurrentText("my_detector")
    dialog.results.setText("/data/changen results")
    dialog.accept()
    assert QgsSettings().value("changen/device") == "cpu"
    assert load_settings().detector_model == "my_detector"
    assert load_settings().results_folder == "/data/changen results"
    dock.show_device()
    dock.detect_tab.refresh_model()
    assert "setting: cpu" in dock.status.text()
    assert dock.detect_tab.model_label.text() == "my_detector"


def test_settings_dialog_browses_for_an_official_detector_file(dock, monkeypatch):
    from changen.ui import settings_dialog

    asked = []

    def fake_dialog(parent, title, folder, file_filter):
        asked.append(file_filter)
        return "/models/changestar_vitb_1x256.pth", file_filter

    monkeypatch.setattr(settings_dialog.QFileDialog, "getOpenFileName", fake_dialog)
    dialog = SettingsDialog(dock)
    dialog.detector_row.browse_button.click()
    assert dialog.detector.currentText() == "/models/changestar_vitb_1x256.pth"
    assert "*.pth" in asked[0]
    dialog.reject()


def test_tool_buttons_install_and_remove_map_tools(joplin, qgis_iface):
    _, _, tab = joplin
    canvas = qgis_iface.mapCanvas()
    tab.edits.remove_button.setChecked(True)
    assert isinstance(canvas.mapTool(), RemoveBuildingTool)
    tab.edits.create_button.setChecked(True)
    assert isinstance(canvas.mapTool(), CreateBuildingTool)
    assert not tab.edits.remove_button.isChecked()
    tab.edits.angle.setValue(45)
    assert tab.edits.create_tool.angle == 45
    tab.close_tools()
    assert canvas.mapTool() is None
    assert not tab.edits.create_button.isChecked()


def test_edit_outlines_show_with_the_synthesize_tab_only(joplin, dock):
    _, _, tab = joplin
    tab.edits.ensure_session()
    assert tab.edits.overlay.removed_band.isVisible()
    tab.edits.show_edits.setChecked(False)
    assert not tab.edits.overlay.removed_band.isVisible() and not tab.edits.overlay.placed_band.isVisible()
    tab.edits.show_edits.setChecked(True)
    assert tab.edits.overlay.removed_band.isVisible()
    dock.tabs.setCurrentWidget(dock.detect_tab)
    assert not tab.edits.overlay.removed_band.isVisible()
    dock.tabs.setCurrentWidget(tab)
    assert tab.edits.overlay.placed_band.isVisible()


def test_random_events_mark_buildings_with_the_seed(joplin):
    _, _, tab = joplin
    tab.options.random_remove.setValue(4)
    tab.options.random_create.setValue(2)
    tab.options.seed.setValue(7)
    tab.random_events()
    session = tab.edits.session
    first = (list(session.removed), [(p.source_fid, p.centre.x(), p.centre.y()) for p in session.placements])
    assert len(first[0]) == 4 and len(first[1]) == 2
    assert tab.edits.edit_summary.text().startswith("4 building(s) to remove, 2 to create")
    session.clear()
    tab.random_events()
    again = (list(session.removed), [(p.source_fid, p.centre.x(), p.centre.y()) for p in session.placements])
    assert again == first


def test_a_building_mask_raster_becomes_clickable_polygons(shared_data, qgis_iface, dock, tmp_path):
    import numpy as np
    import rasterio

    source = shared_data / "georef/joplin/chips/pre/0_pre.tif"
    with rasterio.open(source) as image:
        profile = image.profile | {"count": 1, "dtype": "uint8", "nodata": None}
        mask = np.zeros((image.height, image.width), np.uint8)
    mask[100:140, 200:260] = 255
    mask[500:530, 600:620] = 255
    mask_path = tmp_path / "mask.tif"
    with rasterio.open(mask_path, "w", **profile) as out:
        out.write(mask, 1)
    image_layer = QgsRasterLayer(str(source), "pre")
    mask_layer = QgsRasterLayer(str(mask_path), "building mask")
    QgsProject.instance().addMapLayers([image_layer, mask_layer])
    tab = dock.synthesize_tab
    tab.image_combo.setLayer(image_layer)
    tab.buildings_combo.setLayer(mask_layer)
    assert tab.masks.runner.busy  # vectorising runs in a task, not on the main thread (issue 16, item 9)
    with pytest.raises(InputError, match="click again when it is done"):
        tab.buildings_layer()
    wait_until(lambda: not tab.masks.runner.busy)
    polygons = tab.buildings_layer()
    assert polygons.featureCount() == 2
    assert polygons.crs() == image_layer.crs()
    assert tab.buildings_layer() is polygons
    areas = sorted(
        f.geometry().area() / (image_layer.rasterUnitsPerPixelX() * image_layer.rasterUnitsPerPixelY())
        for f in polygons.getFeatures()
    )
    assert areas == pytest.approx([600, 2400], rel=0.01)


def test_edits_survive_other_layers_being_added(joplin, shared_data):
    _, buildings, tab = joplin
    session = tab.edits.ensure_session()
    session.toggle_remove(next(buildings.getFeatures()).id())
    QgsProject.instance().addMapLayer(
        QgsRasterLayer(str(shared_data / "georef/joplin/chips/pre/1_pre.tif"), "other")
    )
    assert tab.edits.session is session and len(session.removed) == 1
    tab.buildings_combo.setLayer(tab.image_combo.currentLayer())
    assert tab.edits.session is None


def test_drawn_random_events_are_not_added_twice(joplin):
    from changen.plugin.synthesis_jobs import simulate_edits

    _, _, tab = joplin
    tab.options.random_remove.setValue(3)
    tab.options.seed.setValue(11)
    tab.random_events()
    request = tab.build_request(tab._view_window(tab.image_layer()))
    assert not request.random_in_first_step
    edits = simulate_edits(request)
    removed = [e for e in edits.series.steps[0].events if e.kind == "remove"]
    assert len(removed) == 3
    tab.edits.session.clear()
    request = tab.build_request(tab._view_window(tab.image_layer()))
    assert request.random_in_first_step and request.remove_fids == []
    assert len([e for e in simulate_edits(request).series.steps[0].events if e.kind == "remove"]) == 3


def test_buildings_default_to_a_polygon_layer_over_the_image(shared_data, dock):
    image = QgsRasterLayer(str(shared_data / "georef/joplin/chips/pre/0_pre.tif"), "pre 0")
    QgsProject.instance().addMapLayer(image)
    tab = dock.synthesize_tab
    assert tab.buildings_combo.currentLayer() is None  # an RGB image is never offered as buildings (item 9)
    assert tab.buildings_combo.count() == 0
    buildings = QgsVectorLayer(
        str(shared_data / "georef/joplin/footprints_2020.geojson"), "footprints", "ogr"
    )
    QgsProject.instance().addMapLayer(buildings)
    assert tab.buildings_combo.currentLayer() is buildings


def test_changen_unchanged_choice_is_saved_and_reaches_the_request(joplin):
    _, _, tab = joplin
    assert tab.options.unchanged.currentData() == "keep"
    assert not tab.options.unchanged.isEnabled()  # the baselines always keep the unchanged pixels
    tab.options.method.setCurrentIndex(tab.options.method.findData("changen"))
    assert tab.options.unchanged.isEnabled()
    try:
        tab.options.unchanged.setCurrentIndex(tab.options.unchanged.findData("regenerate"))
        assert load_settings().synthesis_unchanged == "regenerate"
        assert tab.build_request(tab._view_window(tab.image_layer())).unchanged == "regenerate"
    finally:
        tab.options.unchanged.setCurrentIndex(tab.options.unchanged.findData("keep"))
    assert load_settings().synthesis_unchanged == "keep"
    assert tab.build_request(tab._view_window(tab.image_layer())).unchanged == "keep"


def test_only_single_band_integer_rasters_are_offered_as_building_masks(shared_data, dock, tmp_path):
    """Issue 16, item 9: an RGB image (or a float raster) is not a building mask."""
    import numpy as np
    import rasterio

    source = shared_data / "georef/joplin/chips/pre/0_pre.tif"
    with rasterio.open(source) as image:
        profile = image.profile | {"count": 1, "nodata": None}
    for name, dtype in (("labels.tif", "uint8"), ("heights.tif", "float32")):
        with rasterio.open(tmp_path / name, "w", **(profile | {"dtype": dtype})) as out:
            out.write(np.zeros((profile["height"], profile["width"]), dtype), 1)
    layers = {
        name: QgsRasterLayer(str(path), name)
        for name, path in (
            ("rgb", source),
            ("labels", tmp_path / "labels.tif"),
            ("heights", tmp_path / "heights.tif"),
        )
    }
    QgsProject.instance().addMapLayers(list(layers.values()))
    combo = dock.synthesize_tab.buildings_combo
    offered = [combo.layer(i).name() for i in range(combo.count())]
    assert offered == ["labels"]


def test_vectorising_a_mask_reports_progress(shared_data, tmp_path):
    import numpy as np
    import rasterio

    from changen.plugin.synthesis_jobs import vectorise_mask_job

    with rasterio.open(shared_data / "georef/joplin/chips/pre/0_pre.tif") as image:
        profile = image.profile | {"count": 1, "dtype": "uint8", "nodata": None}
    mask = np.zeros((profile["height"], profile["width"]), np.uint8)
    mask[::8, ::8] = 1  # 16,384 one-pixel buildings
    with rasterio.open(tmp_path / "mask.tif", "w", **profile) as out:
        out.write(mask, 1)
    seen = []
    result = vectorise_mask_job(str(tmp_path / "mask.tif"))(seen.append, lambda: False)
    try:
        assert result.count == 128 * 128
        assert seen == sorted(seen) and seen[-1] == 100.0
        assert len([value for value in seen if 10 < value < 90]) >= 3
    finally:
        import shutil

        shutil.rmtree(result.folder)
