"""Background tasks of the dock on real data: preview replacement, stale requests, cancel cleanup, export, detect."""

import glob
import os
import shutil
import tempfile
import threading
import time

import pytest
import rasterio
import shapely.wkt
from dock_fixtures import wait_until
from qgis.core import QgsPointXY, QgsProject, QgsRasterLayer, QgsVectorLayer

from changen.plugin.layers import TEMPORARY_PROPERTY, temporary_name, window_extent
from changen.plugin.map_tools import Placement, placed_outline
from changen.plugin.tasks import LatestRequestRunner
from changen.ui.synthesize_tab import OUTLINE_LAYER_NAME, PREVIEW_LAYER_NAME


def layers_named(name):
    return QgsProject.instance().mapLayersByName(temporary_name(name))


def preview_dirs():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "changen-preview-*")))


def _mark_buildings_in_view(tab, count):
    session = tab.edits.ensure_session()
    window = tab._view_window(tab.image_layer())
    request = tab.build_request(window)
    inside = request.buildings[request.buildings.geometry.area > 60].fid.tolist()
    assert len(inside) >= count
    for fid in inside[:count]:
        session.toggle_remove(fid)
    return inside[:count]


def test_runner_drops_a_request_replaced_by_a_newer_one(qgis_app):
    outcomes, discarded = [], []
    runner = LatestRequestRunner(outcomes.append, discard=discarded.append)
    started, release = threading.Event(), threading.Event()

    def slow(progress, is_canceled):
        started.set()
        release.wait(5)  # ignores cancel on purpose: its result must still be dropped
        return "old"

    runner.submit("slow", slow)
    wait_until(started.is_set)
    runner.submit("fast", lambda progress, is_canceled: "new")
    release.set()
    wait_until(lambda: not runner.busy)
    assert [o.result for o in outcomes] == ["new"]
    assert discarded == ["old"]


def test_cancel_after_the_job_returned_still_drops_its_result(qgis_app):
    """The job is done but QGIS has not yet called `finished` on the main thread (e.g. the plugin unloads then):
    the result must not be shown later."""
    outcomes, discarded = [], []
    runner = LatestRequestRunner(outcomes.append, discard=discarded.append)
    returned = threading.Event()

    def job(progress, is_canceled):
        returned.set()
        return "late"

    runner.submit("late", job)
    assert returned.wait(5)
    time.sleep(0.1)  # run() has returned; no event processed yet, so `finished` is still queued
    runner.cancel()
    wait_until(lambda: not runner.busy)
    assert discarded == ["late"]
    assert [(o.canceled, o.result) for o in outcomes] == [(True, None)]


def test_runner_reports_errors_without_raising(qgis_app):
    outcomes = []
    runner = LatestRequestRunner(outcomes.append)

    def failing(progress, is_canceled):
        raise ValueError("broken input")

    runner.submit("failing", failing)
    wait_until(lambda: not runner.busy)
    (outcome,) = outcomes
    assert isinstance(outcome.error, ValueError) and "broken input" in outcome.details
    assert outcome.result is None and not outcome.canceled


def test_preview_adds_one_layer_and_the_next_preview_replaces_it(joplin):
    image, _, tab = joplin
    _mark_buildings_in_view(tab, 3)
    tab.preview()
    wait_until(lambda: tab.preview_layer_ids)
    (first,) = layers_named(PREVIEW_LAYER_NAME)
    (outlines,) = layers_named(OUTLINE_LAYER_NAME)
    first_dir, first_id = tab.preview_dir, first.id()
    assert first.crs() == image.crs()
    # removed on unload, so flagged as temporary in the layer tree (issue 16, item 15)
    assert first.name().endswith("(temporary)") and first.customProperty(TEMPORARY_PROPERTY)
    assert outlines.name().endswith("(temporary)") and outlines.customProperty(TEMPORARY_PROPERTY)
    assert outlines.featureCount() >= 3
    assert {f["event_type"] for f in outlines.getFeatures()} == {"removed"}
    with rasterio.open(first.source()) as post, rasterio.open(image.source()) as pre:
        assert post.crs == pre.crs and post.res == pytest.approx(pre.res)
        assert post.width <= 1024

    tab.preview()
    wait_until(lambda: tab.preview_dir != first_dir)
    assert len(layers_named(PREVIEW_LAYER_NAME)) == 1 and len(layers_named(OUTLINE_LAYER_NAME)) == 1
    assert layers_named(PREVIEW_LAYER_NAME)[0].id() != first_id
    assert not os.path.exists(first_dir)
    root = QgsProject.instance().layerTreeRoot()
    order = [node.layerId() for node in root.findLayers()]
    assert order.index(layers_named(PREVIEW_LAYER_NAME)[0].id()) < order.index(image.id())


def test_two_quick_previews_leave_only_the_newest(joplin):
    _, _, tab = joplin
    _mark_buildings_in_view(tab, 2)
    before = preview_dirs()
    first = tab.preview()
    second = tab.preview()
    wait_until(lambda: not tab.preview_runner.busy)
    assert tab.preview_layer_ids and first.token < second.token
    assert len(layers_named(PREVIEW_LAYER_NAME)) == 1
    assert preview_dirs() - before == {tab.preview_dir}


def test_canceled_preview_leaves_no_layer_and_no_file(joplin):
    _, _, tab = joplin
    _mark_buildings_in_view(tab, 2)
    before = preview_dirs()
    task = tab.preview()
    task.cancel()
    wait_until(lambda: not tab.preview_runner.busy)
    assert layers_named(PREVIEW_LAYER_NAME) == [] and layers_named(OUTLINE_LAYER_NAME) == []
    assert preview_dirs() == before
    assert "canceled" in tab.result_note.text()


def test_export_writes_a_georeferenced_pair_on_the_source_grid(joplin, tmp_path):
    image, _, tab = joplin
    removed = _mark_buildings_in_view(tab, 2)
    tab.options.steps.setValue(2)
    tab.options.random_remove.setValue(1)
    tab.export(str(tmp_path))
    wait_until(lambda: not tab.export_runner.busy)
    (folder,) = [p for p in tmp_path.iterdir()]
    assert folder.name.startswith("changen_") and not folder.name.startswith(".")
    names = {p.name for p in folder.iterdir()}
    expected = {f"image_t{t}.tif" for t in range(3)} | {f"mask_t{t}.tif" for t in range(3)}
    expected |= {"change_t1.tif", "change_t2.tif", "change_polygons.gpkg", "events.json"}
    assert expected <= names
    with rasterio.open(image.source()) as source:
        for name in ("image_t0.tif", "image_t2.tif", "mask_t1.tif", "change_t2.tif"):
            with rasterio.open(folder / name) as written:
                assert written.crs == source.crs
                assert written.transform.almost_equals(source.transform)
                assert (written.width, written.height) == (source.width, source.height)
    polygons = QgsVectorLayer(str(folder / "change_polygons.gpkg"), "p", "ogr")
    assert polygons.crs() == image.crs()
    fields = polygons.fields().names()
    assert {"event_type", "area_m2", "step"} <= set(fields)
    removed_features = {f["feature_id"] for f in polygons.getFeatures() if f["step"] == 1}
    assert set(removed) <= removed_features
    assert all(f["area_m2"] > 0 for f in polygons.getFeatures())
    group_names = [
        g.name() for g in QgsProject.instance().layerTreeRoot().children() if hasattr(g, "addLayer")
    ]
    assert any(name.startswith("Changen export") for name in group_names)


def test_canceled_export_writes_nothing(joplin, tmp_path):
    _, _, tab = joplin
    _mark_buildings_in_view(tab, 2)
    task = tab.export(str(tmp_path))
    task.cancel()
    wait_until(lambda: not tab.export_runner.busy)
    assert list(tmp_path.iterdir()) == []
    assert not any(
        g.name().startswith("Changen export") for g in QgsProject.instance().layerTreeRoot().children()
    )


@pytest.fixture()
def detector_path(tmp_path_factory):
    """The shipped detector when there is one, else an untrained ChangeStar saved like a shipped model: the test
    checks the plumbing (tiles, georeferencing, layers), not accuracy."""
    from changen.core.detection.changestar import build_changestar
    from changen.core.paths import MODELS_DIR
    from changen.core.weights import save_weights

    shipped = sorted(MODELS_DIR.glob("changestar*.safetensors"))
    if shipped:
        return str(shipped[0])
    path = tmp_path_factory.mktemp("models") / "untrained_changestar.safetensors"
    model = build_changestar("efficientnet_lite0")
    save_weights(path, model.state_dict(), model.export_config(threshold=0.65))
    return str(path)


@pytest.fixture()
def levir_pair(shared_data, dock, detector_path, saved_settings, tmp_path):
    """t1, t2 and the Detect tab; results of the (unsaved) project go to `tmp_path / "results"`."""
    from changen.plugin.settings import load_settings, save_settings

    settings = load_settings()
    settings.detector_model = detector_path
    settings.results_folder = str(tmp_path / "results")
    save_settings(settings)
    t1 = QgsRasterLayer(str(shared_data / "georef/levir_dev/test_2_0000_0000_A.tif"), "t1")
    t2 = QgsRasterLayer(str(shared_data / "georef/levir_dev/test_2_0000_0000_B.tif"), "t2")
    QgsProject.instance().addMapLayers([t1, t2])
    tab = dock.detect_tab
    tab.t1_combo.setLayer(t1)
    tab.t2_combo.setLayer(t2)
    return t1, t2, tab


def test_detect_task_adds_a_result_group(levir_pair, qgis_iface, tmp_path):
    t1, _, tab = levir_pair
    tab.threshold.setValue(0.5)
    tab.detect()
    wait_until(lambda: not tab.runner.busy)
    assert "Changed area" in tab.note.text(), tab.note.text()
    assert "(threshold 0.50)" in tab.note.text()
    root = QgsProject.instance().layerTreeRoot()
    (group,) = [g for g in root.children() if g.name().startswith("Changen detection")]
    names = [node.name() for node in group.findLayers()]
    assert names == ["change polygons", "change probability"]
    probability = group.findLayers()[1].layer()
    polygons = group.findLayers()[0].layer()
    assert probability.crs() == t1.crs() and probability.width() == t1.width()
    assert probability.extent().toString(6) == t1.extent().toString(6)
    assert polygons.crs() == t1.crs() and "area_m2" in polygons.fields().names()
    assert all(f["area_m2"] > 0 for f in polygons.getFeatures())
    stats = probability.dataProvider().bandStatistics(1)
    assert stats.minimumValue >= 0.0 and stats.maximumValue <= 1.0
    # issue 16, item 15: in the results folder (unsaved project: the one set in Settings), not a temporary one
    (folder,) = (tmp_path / "results").iterdir()
    assert folder.name.startswith("changen_detect_t1_t2_")
    assert {p.name for p in folder.iterdir()} == {
        "change_mask.tif",
        "change_probability.tif",
        "change_polygons.gpkg",
    }
    assert os.path.dirname(probability.source()) == str(folder) and str(folder) in tab.note.text()


def test_detect_on_the_map_view_only(levir_pair, qgis_iface):
    t1, _, tab = levir_pair
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(t1.crs())
    extent = t1.extent()
    canvas.setExtent(extent.scaled(0.5, extent.center()))
    tab.view_only.setChecked(True)
    tab.threshold.setValue(0.0)
    assert tab.threshold.text() == "calibrated"
    tab.detect()
    wait_until(lambda: not tab.runner.busy)
    (group,) = [
        g
        for g in QgsProject.instance().layerTreeRoot().children()
        if g.name().startswith("Changen detection")
    ]
    probability = group.findLayers()[1].layer()
    calibrated = 0.65 if "untrained" in tab.model_label.text() else None
    assert calibrated is None or f"(threshold {calibrated:.2f})" in tab.note.text()
    assert 0 < probability.width() * probability.height() < t1.width() * t1.height()
    view = canvas.extent().intersect(t1.extent())
    pixel = t1.rasterUnitsPerPixelX()
    assert probability.extent().buffered(pixel).contains(view)
    assert t1.extent().buffered(pixel / 100).contains(probability.extent())


def test_canceled_detection_leaves_no_layer_and_no_file(levir_pair, tmp_path):
    _, _, tab = levir_pair
    task = tab.detect()
    task.cancel()
    wait_until(lambda: not tab.runner.busy)
    assert not any(
        g.name().startswith("Changen detection") for g in QgsProject.instance().layerTreeRoot().children()
    )
    assert not (tmp_path / "results").exists() or list((tmp_path / "results").iterdir()) == []


def test_preview_places_copies_where_the_analyst_clicked(joplin):
    image, _, tab = joplin
    tab.options.method.setCurrentIndex(tab.options.method.findData("copy-paste"))
    session = tab.edits.ensure_session()
    request = tab.build_request(tab._view_window(image))
    buildings = request.buildings[request.buildings.geometry.area > 80]
    source_fid = int(buildings.fid.iloc[0])
    occupied = request.buildings.geometry.buffer(3).union_all()
    view = window_extent(image, tab._view_window(image))
    free = None
    for fraction in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for other in (0.2, 0.5, 0.8):
            candidate = QgsPointXY(
                view.xMinimum() + fraction * view.width(), view.yMinimum() + other * view.height()
            )
            outline = placed_outline(session.geometry(source_fid), candidate, 40.0, 1.2)
            if not shapely.wkt.loads(outline.asWkt()).buffer(4).intersects(occupied):
                free = (candidate, outline)
                break
        if free:
            break
    assert free is not None, "the test view needs some free ground"
    centre, outline = free
    session.add_placement(Placement(source_fid, outline, centre, 40.0, 1.2))
    tab.preview()
    wait_until(lambda: not tab.preview_runner.busy)
    (outlines,) = layers_named(OUTLINE_LAYER_NAME)
    created = [f for f in outlines.getFeatures() if f["event_type"] == "created"]
    assert len(created) == 1, tab.result_note.text()
    geometry = created[0].geometry()
    pixel = image.rasterUnitsPerPixelX()
    assert geometry.centroid().asPoint().distance(centre) < 2 * pixel
    overlap = geometry.intersection(outline).area() / outline.area()
    assert overlap > 0.8  # same rotation direction and scale as the outline the analyst saw
    assert created[0]["area_m2"] == pytest.approx(outline.area(), rel=0.15)


def test_a_missing_generator_tells_the_analyst_what_to_do(joplin, qgis_iface):
    from changen.plugin.settings import load_settings, save_settings

    _, _, tab = joplin
    settings = load_settings()
    settings.generator_model = "no_such_generator"
    save_settings(settings)
    try:
        tab.options.method.setCurrentIndex(tab.options.method.findData("changen"))
        assert load_settings().synthesis_method == "changen"
        _mark_buildings_in_view(tab, 1)
        tab.preview()
        wait_until(lambda: not tab.preview_runner.busy)
    finally:
        settings.generator_model = ""
        save_settings(settings)
    assert layers_named(PREVIEW_LAYER_NAME) == []
    assert "no_such_generator" in tab.result_note.text()
    assert "Copy-Paste or Inpainting" in tab.result_note.text()


@pytest.fixture()
def changen_generator(tmp_path):
    """The settings name the shipped generator, or a random-init one saved like it when none is shipped."""
    from changen.core.paths import MODELS_DIR
    from changen.core.synthesis.changen_gan import build_generator
    from changen.core.weights import save_weights
    from changen.plugin.settings import load_settings, save_settings

    settings = load_settings()
    if not any(MODELS_DIR.glob("changen*.safetensors")):
        generator = build_generator("cpu")
        settings.generator_model = str(tmp_path / "generator.safetensors")
        save_weights(
            settings.generator_model,
            generator.state_dict(),
            {"model": "changen_generator", "architecture": generator.config},
        )
    save_settings(settings)
    yield settings
    settings.generator_model = ""
    save_settings(settings)


def test_changen_preview_with_a_warmed_up_generator(shared_data, qgis_iface, dock, changen_generator):
    """The Changen method end to end in the dock (a random-init generator stands in when none is shipped)."""
    from changen.plugin import generators

    settings = changen_generator
    image = QgsRasterLayer(str(shared_data / "georef/joplin/chips/pre/2_pre.tif"), "pre 2")
    buildings = QgsVectorLayer(str(shared_data / "georef/joplin/footprints_2020.geojson"), "fp", "ogr")
    QgsProject.instance().addMapLayers([image, buildings])
    tab = dock.synthesize_tab
    tab.options.method.setCurrentIndex(tab.options.method.findData("changen"))
    tab.image_combo.setLayer(image)
    tab.buildings_combo.setLayer(buildings)
    wait_until(lambda: not tab.warm_up_runner.busy)
    assert any(
        key[:2] == ("changen", settings.generator_model or "changen_gan_cpu")
        for key in generators._GENERATORS
    )
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(image.crs())
    centre = image.extent().center()
    canvas.setExtent(image.extent().scaled(0.25, centre))
    _mark_buildings_in_view(tab, 2)
    tab.preview()
    wait_until(lambda: not tab.preview_runner.busy)
    assert "Preview (changen" in tab.result_note.text(), tab.result_note.text()
    (preview,) = layers_named(PREVIEW_LAYER_NAME)
    with rasterio.open(preview.source()) as post, rasterio.open(image.source()) as pre:
        assert post.crs == pre.crs and post.count == 3
        before = pre.read(window=pre.window(*post.bounds))
        after = post.read()
    # "keep" (the default): two removed buildings change, the rest of the view is the image as it was
    same = (after == before).all(axis=0)
    assert 0.8 < same.mean() < 1.0


def test_outcomes_for_a_deleted_dock_are_discarded(qgis_app):
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QWidget

    owner = QWidget()
    outcomes, discarded = [], []
    runner = LatestRequestRunner(outcomes.append, discard=discarded.append, owner=owner)
    release = threading.Event()
    runner.submit("job", lambda progress, is_canceled: release.wait(5) and "result")
    sip.delete(owner)
    release.set()
    wait_until(lambda: not runner.busy)
    assert outcomes == [] and discarded == ["result"]


# ------------------------------------------------------------------------------------------------ issue 16, item 19
def test_a_canceled_task_ends_as_canceled_not_as_failed(qgis_app):
    """QGIS announces every terminated task as "Task failed": a canceled one completes, saying "canceled"."""
    import time

    from qgis.core import QgsTask

    from changen.core.errors import Canceled

    seen, statuses = [], []
    started = threading.Event()

    def wait_for_cancel(progress, is_canceled):
        started.set()
        while not is_canceled():
            time.sleep(0.01)
        raise Canceled()

    runner = LatestRequestRunner(lambda outcome: seen.append((outcome, task.description())))
    task = runner.submit("Changen preview", wait_for_cancel)
    task.statusChanged.connect(statuses.append)
    wait_until(started.is_set)
    runner.cancel()
    wait_until(lambda: not runner.busy and seen)
    ((outcome, description),) = seen
    assert outcome.canceled and outcome.error is None and outcome.result is None
    assert description == "Changen preview (canceled)"
    wait_until(lambda: statuses and statuses[-1] in (QgsTask.Complete, QgsTask.Terminated))
    assert statuses[-1] == QgsTask.Complete


def test_a_failed_task_still_ends_as_failed(qgis_app):
    from qgis.core import QgsTask

    statuses, outcomes = [], []
    runner = LatestRequestRunner(outcomes.append)

    def failing(progress, is_canceled):
        raise ValueError("broken input")

    task = runner.submit("Changen preview", failing)
    task.statusChanged.connect(statuses.append)
    wait_until(lambda: outcomes and statuses and statuses[-1] in (QgsTask.Complete, QgsTask.Terminated))
    assert statuses[-1] == QgsTask.Terminated and not outcomes[0].canceled


def test_unloading_removes_the_preview_layers_and_files(joplin, dock):
    _, _, tab = joplin
    _mark_buildings_in_view(tab, 1)
    tab.preview()
    wait_until(lambda: tab.preview_layer_ids)
    folder = tab.preview_dir
    dock.close_tools()  # what the plugin's unload calls
    assert layers_named(PREVIEW_LAYER_NAME) == [] and layers_named(OUTLINE_LAYER_NAME) == []
    assert not os.path.exists(folder)


def test_a_new_message_replaces_changens_earlier_ones(qgis_app):
    """QGIS re-shows a stacked older message when the newer one closes: old warnings came back minutes later."""
    from types import SimpleNamespace

    from qgis.core import Qgis
    from qgis.gui import QgsMessageBar

    from changen.ui.messages import report, report_error

    bar = QgsMessageBar()
    iface = SimpleNamespace(messageBar=lambda: bar)
    bar.pushMessage("Changen", "Install the missing packages", level=Qgis.Warning, duration=0)
    report_error(iface, "Preview", ValueError("old trouble"))
    report(iface, "Preview (inpainting, CPU): 1 removed", duration=8)
    assert sorted(item.text() for item in bar.items()) == [
        "Install the missing packages",
        "Preview (inpainting, CPU): 1 removed",
    ]


def test_preview_progress_moves_during_the_synthesis(joplin, qgis_iface, changen_generator):
    """Issue 16, item 20: the preview sat at 10 % for the whole run (0, 10, 90): now per generator tile."""
    from changen.plugin.synthesis_jobs import preview_job

    image, _, tab = joplin
    tab.options.method.setCurrentIndex(tab.options.method.findData("changen"))
    qgis_iface.mapCanvas().setExtent(image.extent())  # the whole 1024 px chip: several generator tiles
    session = tab.edits.ensure_session()
    request = tab.build_request(tab._view_window(image))
    for fid in request.buildings.fid.tolist()[::5]:  # buildings all over the chip
        session.toggle_remove(fid)
    request = tab.build_request(tab._view_window(image))
    seen = []
    result = preview_job(request)(seen.append, lambda: False)
    tab.discard_preview()
    shutil.rmtree(result.folder)
    assert seen == sorted(seen) and seen[-1] == 100.0
    assert len({round(value) for value in seen if 10 < value < 90}) >= 3, seen


def test_results_go_next_to_a_saved_project_else_to_the_settings_folder(
    qgis_new_project, saved_settings, tmp_path
):
    """Issue 16, item 15: detections lived in the temporary folder and a saved project pointed into it."""
    from changen.plugin.results import results_folder
    from changen.plugin.settings import save_settings

    saved_settings.results_folder = str(tmp_path / "mine")
    save_settings(saved_settings)
    assert results_folder() == str(tmp_path / "mine")
    project = QgsProject.instance()
    project.setFileName(str(tmp_path / "site" / "survey.qgz"))
    try:
        assert results_folder() == str(tmp_path / "site" / "changen_results")
    finally:
        project.setFileName("")


def test_a_results_folder_that_cannot_be_made_says_how_to_fix_it(tmp_path):
    from changen.core.errors import InputError
    from changen.plugin.results import StagedFolder

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with (
        pytest.raises(InputError, match="choose a folder you can write to"),
        StagedFolder(str(blocker / "results"), "changen_detect"),
    ):
        pass
    with pytest.raises(ValueError), StagedFolder(str(tmp_path / "results"), "changen_detect") as staged:
        (tmp_path / "results" / os.path.basename(staged.path) / "half.tif").write_text("")
        raise ValueError("the run failed")
    assert not (tmp_path / "results").exists() or list((tmp_path / "results").iterdir()) == []
