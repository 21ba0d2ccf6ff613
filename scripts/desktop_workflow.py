"""Drive the Changen dock in the real QGIS desktop (`qgis --code scripts/desktop_workflow.py`) on real data:
mark buildings with the map tools, preview a synthesized post-event image, measure the preview latency on a 512²
view, export, detect changes on a real pair; grab a PNG of the window at each step and write a JSON of checks.

Environment: CHANGEN_DATA (the shared data folder), CHANGEN_WORKFLOW_OUT (PNGs, export folder and checks.json),
CHANGEN_DETECTOR (optional detector model, used when none is shipped). QGIS runs this file before its event loop
starts, so the work is scheduled on a timer.
"""

import json
import os
import time
import traceback
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget
from qgis.utils import iface

from changen.plugin.layers import style_outline, temporary_name
from changen.ui.synthesize_tab import OUTLINE_LAYER_NAME, PREVIEW_LAYER_NAME

DATA = Path(os.environ["CHANGEN_DATA"])
OUT = Path(os.environ["CHANGEN_WORKFLOW_OUT"])
checks: dict = {"steps": []}


def settle(seconds: float = 0.5):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)
    iface.mapCanvas().waitWhileRendering()
    QApplication.processEvents()


def wait_for(condition, timeout: float = 300.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError("a Changen task did not finish in time")
        QApplication.processEvents()
        time.sleep(0.01)
    return time.monotonic() - started


def grab(name: str):
    settle()
    iface.mapCanvas().refresh()
    settle(1.0)
    path = OUT / f"{name}.png"
    iface.mainWindow().grab().save(str(path))
    checks["steps"].append(name)


def add_collapsed(*layers):
    """Add layers with their legend nodes folded, and let QGIS's zoom-to-first-layer happen before ours."""
    QgsProject.instance().addMapLayers(list(layers))
    for layer in layers:
        QgsProject.instance().layerTreeRoot().findLayer(layer.id()).setExpanded(False)
    settle(0.5)


def canvas_pixel(canvas, layer, point) -> QPoint:
    to_map = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    device = canvas.getCoordinateTransform().transform(to_map.transform(point))
    return QPoint(round(device.x()), round(device.y()))


def move(tool, canvas, layer, point):
    pixel = canvas_pixel(canvas, layer, point)
    tool.canvasMoveEvent(QgsMapMouseEvent(canvas, QEvent.MouseMove, pixel, Qt.NoButton))


def click(tool, canvas, layer, point, button=Qt.LeftButton):
    move(tool, canvas, layer, point)
    pixel = canvas_pixel(canvas, layer, point)
    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, pixel, button))


def free_spots(session, source_fid, view, angle, scale) -> list:
    """Points of the view (image CRS) where a rotated copy of the source would stand on open ground next to other
    buildings (4–20 m from the nearest footprint), nearest first and 60 m apart."""
    from changen.plugin.map_tools import placed_outline

    to_layer = QgsCoordinateTransform(session.work_crs, session.layer.crs(), QgsProject.instance())
    taken = [session.geometry(f.id()) for f in session.layer.getFeatures(to_layer.transformBoundingBox(view))]
    shape = session.geometry(source_fid)
    candidates = []
    for i in range(2, 19):
        for j in range(2, 19):
            point = QgsPointXY(
                view.xMinimum() + view.width() * i / 20, view.yMinimum() + view.height() * j / 20
            )
            outline = placed_outline(shape, point, angle, scale)
            gap = min(outline.distance(other) for other in taken)
            if 4.0 <= gap <= 20.0:
                candidates.append((gap, point))
    spots = []
    for _, point in sorted(candidates, key=lambda item: item[0]):
        if all(point.distance(other) > 60 for other in spots):
            spots.append(point)
    return spots


def shipped(prefix: str) -> bool:
    from changen.core.paths import MODELS_DIR

    return any(MODELS_DIR.glob(f"{prefix}*.safetensors"))


def synthesize_steps(dock):
    canvas = iface.mapCanvas()
    image = QgsRasterLayer(str(DATA / "georef/joplin/chips/pre/0_pre.tif"), "Joplin pre-event (2009)")
    buildings = QgsVectorLayer(
        str(DATA / "georef/joplin/footprints_2020.geojson"), "building footprints", "ogr"
    )
    add_collapsed(buildings, image)
    style_outline(buildings, "255,230,0,255", 0.3)
    QgsProject.instance().setCrs(image.crs())
    tab = dock.synthesize_tab
    dock.tabs.setCurrentWidget(tab)
    tab.image_combo.setLayer(image)
    tab.buildings_combo.setLayer(buildings)
    method = "changen" if shipped("changen") else "inpainting"
    tab.options.method.setCurrentIndex(tab.options.method.findData(method))

    # A 512 x 512 px view of the image (the canvas shows a little more on its longer side).
    full = image.extent()
    side_x, side_y = 512 * image.rasterUnitsPerPixelX(), 512 * image.rasterUnitsPerPixelY()
    centre = full.center()
    view = QgsRectangle(
        centre.x() - side_x / 2, centre.y() - side_y / 2, centre.x() + side_x / 2, centre.y() + side_y / 2
    )
    canvas.setExtent(view)
    settle(1.0)

    to_image = QgsCoordinateTransform(buildings.crs(), image.crs(), QgsProject.instance())
    in_view = [
        feature
        for feature in buildings.getFeatures(
            QgsCoordinateTransform(image.crs(), buildings.crs(), QgsProject.instance()).transformBoundingBox(
                view.buffered(-20)
            )
        )
        if to_image.transformBoundingBox(feature.geometry().boundingBox()).area() > 120
    ]
    tab.edits.remove_button.setChecked(True)
    for feature in in_view[:4]:
        click(tab.edits.remove_tool, canvas, buildings, feature.geometry().pointOnSurface().asPoint())
    checks["removed_marked"] = len(tab.edits.session.removed)
    # Two copies of a building on open ground, and the live outline of a third under the mouse.
    tab.edits.create_button.setChecked(True)
    source = in_view[5]
    click(tab.edits.create_tool, canvas, buildings, source.geometry().pointOnSurface().asPoint())
    tab.edits.angle.setValue(30)
    spots = free_spots(tab.edits.session, source.id(), view, 30.0, 1.0)
    for spot in spots[:2]:
        click(tab.edits.create_tool, canvas, image, spot)
    if len(spots) > 2:
        move(tab.edits.create_tool, canvas, image, spots[2])
    checks["placements_marked"] = len(tab.edits.session.placements)
    grab("01_edits")
    if method == "inpainting":  # inpainting paints removals only: keep the preview honest
        while tab.edits.session.placements:
            tab.edits.session.undo()

    task = tab.preview()
    latency = wait_for(lambda: not tab.preview_runner.busy)
    window = task and tab.build_request(tab._view_window(image)).window
    checks["preview"] = {
        "method": method,
        "seconds_click_to_layer": round(latency, 3),
        "window": [int(window.width), int(window.height)],
        "note": tab.result_note.text(),
    }
    checks["preview_layers"] = len(QgsProject.instance().mapLayersByName(temporary_name(PREVIEW_LAYER_NAME)))
    checks["outline_features"] = sum(
        layer.featureCount()
        for layer in QgsProject.instance().mapLayersByName(temporary_name(OUTLINE_LAYER_NAME))
    )
    tab.edits.remove_button.setChecked(False)
    tab.edits.create_button.setChecked(False)
    grab("02_preview")

    # A second preview: warm (generator loaded), replaces the first layer.
    task = tab.preview()
    checks["preview"]["seconds_second"] = round(wait_for(lambda: not tab.preview_runner.busy), 3)
    checks["preview_layers_after_second"] = len(
        QgsProject.instance().mapLayersByName(temporary_name(PREVIEW_LAYER_NAME))
    )
    buildings_node = QgsProject.instance().layerTreeRoot().findLayer(buildings.id())
    buildings_node.setItemVisibilityChecked(False)
    tab.edits.show_edits.setChecked(False)
    grab("03_preview_no_footprints")
    # The same edits with each other method (CHANGEN_WORKFLOW_METHODS, e.g. "changen2,copy-paste,inpainting"),
    # footprints hidden, for side-by-side screenshots.
    for other in filter(None, os.environ.get("CHANGEN_WORKFLOW_METHODS", "").split(",")):
        tab.options.method.setCurrentIndex(tab.options.method.findData(other))
        tab.preview()
        seconds = wait_for(lambda: not tab.preview_runner.busy, timeout=900)
        checks.setdefault("method_previews", {})[other] = {
            "seconds": round(seconds, 2),
            "note": tab.result_note.text(),
        }
        grab(f"03_preview_{other}")
    tab.options.method.setCurrentIndex(tab.options.method.findData(method))
    tab.edits.show_edits.setChecked(True)
    buildings_node.setItemVisibilityChecked(True)

    export_parent = OUT / "export"
    export_parent.mkdir(exist_ok=True)
    tab.export(str(export_parent))
    wait_for(lambda: not tab.export_runner.busy)
    exported = [p for p in export_parent.iterdir() if p.is_dir()]
    checks["export_folders"] = [p.name for p in exported]
    checks["export_files"] = sorted(p.name for p in exported[0].iterdir()) if exported else []
    checks["export_note"] = tab.result_note.text()


def detect_steps(dock):
    from changen.plugin.settings import load_settings, save_settings

    settings = load_settings()
    settings.results_folder = str(OUT / "results")  # the project is not saved: results go where Settings say
    if not shipped("changestar") and os.environ.get("CHANGEN_DETECTOR"):
        settings.detector_model = os.environ["CHANGEN_DETECTOR"]
    save_settings(settings)
    dock.detect_tab.refresh_model()
    canvas = iface.mapCanvas()
    root = QgsProject.instance().layerTreeRoot()
    for node in root.children():
        node.setItemVisibilityChecked(False)
    t1 = QgsRasterLayer(str(DATA / "georef/joplin/chips/pre/0_pre.tif"), "Joplin t1 (2009)")
    t2 = QgsRasterLayer(
        str(DATA / "georef/joplin/chips/post/0_post.tif"), "Joplin t2 (2011, after the tornado)"
    )
    add_collapsed(t2, t1)
    QgsProject.instance().setCrs(t1.crs())
    canvas.setExtent(t1.extent())
    tab = dock.detect_tab
    dock.tabs.setCurrentWidget(tab)
    tab.t1_combo.setLayer(t1)
    tab.t2_combo.setLayer(t2)
    root.findLayer(t1.id()).setItemVisibilityChecked(False)
    root.findLayer(t2.id()).setItemVisibilityChecked(True)
    tab.detect()
    checks["detect_seconds"] = round(wait_for(lambda: not tab.runner.busy), 3)
    checks["detect_note"] = tab.note.text()
    groups = [g.name() for g in root.children() if g.name().startswith("Changen detection")]
    checks["detect_groups"] = groups
    checks["detect_layers"] = [
        node.name() for g in root.children() if g.name() in groups for node in g.findLayers()
    ]
    grab("04_detect")


def run_workflow():
    window = iface.mainWindow()
    window.setGeometry(0, 0, 1600, 1000)
    dock = window.findChild(QDockWidget, "ChangenDock")
    dock.show()
    dock.raise_()
    checks["device"] = dock.status.text()
    synthesize_steps(dock)
    detect_steps(dock)


def _run_and_quit():
    try:
        run_workflow()
    except Exception:  # the test reads the traceback from the JSON
        checks["error"] = traceback.format_exc()
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().setDirty(False)
    settle(0.5)
    try:  # QGIS asks about running tasks before quitting (a modal dialog): they must all have ended
        wait_for(lambda: QgsApplication.taskManager().countActiveTasks() == 0, timeout=120)
    except TimeoutError:
        checks.setdefault("error", "background tasks were still running at exit")
    path = OUT / "checks.json"
    path.with_suffix(".tmp").write_text(json.dumps(checks, indent=2))
    os.replace(path.with_suffix(".tmp"), path)
    iface.actionExit().trigger()


QTimer.singleShot(1500, _run_and_quit)
