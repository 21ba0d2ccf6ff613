"""Run inside the QGIS desktop (`qgis --code scripts/desktop_smoke.py`): open a GeoTIFF, show the Changen dock,
grab the main window to PNG, write a JSON of checks, quit.

Paths come from the environment: CHANGEN_SMOKE_RASTER (input), optional CHANGEN_SMOKE_BUILDINGS (a polygon file
shown above it), CHANGEN_SMOKE_PNG and CHANGEN_SMOKE_JSON (outputs); optional CHANGEN_SMOKE_WHEELS (a folder holding
the wheel of CHANGEN_SMOKE_PACKAGE): the package installer's dialog installs it into CHANGEN_SMOKE_INSTALL_ROOT.
QGIS runs this file with `exec` before its event loop starts, so the work is scheduled on a timer.
"""

import json
import os
import time
import traceback
from pathlib import Path

from qgis.core import QgsApplication, QgsFillSymbol, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QLabel
from qgis.utils import active_plugins, iface

TASK_WAIT_SECONDS = 120


def _geo_stack_checks() -> dict:
    """The wheels' GDAL/GEOS next to QGIS's own: without the plugin's isolation this rasterize segfaults."""
    import rasterio
    import rasterio.features
    import shapely
    from affine import Affine
    from osgeo import gdal

    square = shapely.box(1, 1, 5, 5)
    burned = rasterio.features.rasterize([square], out_shape=(8, 8), transform=Affine.identity())
    return {
        "rasterio_gdal": rasterio.__gdal_version__,
        "qgis_gdal": gdal.__version__,
        "rasterized_pixels": int(burned.sum()),
    }


def _smoke_checks() -> dict:
    window = iface.mainWindow()
    window.setGeometry(0, 0, 1600, 1000)  # bare Xvfb has no window manager to size it
    layer = QgsRasterLayer(os.environ["CHANGEN_SMOKE_RASTER"], "pre-event")
    buildings = None
    if layer.isValid():
        QgsProject.instance().setCrs(layer.crs())
        QgsProject.instance().addMapLayer(layer)
    if os.environ.get("CHANGEN_SMOKE_BUILDINGS"):
        buildings = QgsVectorLayer(os.environ["CHANGEN_SMOKE_BUILDINGS"], "buildings", "ogr")
        outline = {"color": "0,0,0,0", "style": "no", "outline_color": "255,200,0", "outline_width": "0.4"}
        buildings.renderer().setSymbol(QgsFillSymbol.createSimple(outline))
        QgsProject.instance().addMapLayer(buildings)
    dock = window.findChild(QDockWidget, "ChangenDock")
    if dock is not None:
        dock.show()
        dock.raise_()
    for _ in range(20):  # QGIS zooms to the first layers once events run: frame the raster after that
        QApplication.processEvents()
    if layer.isValid():
        iface.mapCanvas().setDestinationCrs(layer.crs())
        iface.mapCanvas().setExtent(layer.extent())
        iface.mapCanvas().refresh()
    for _ in range(20):
        QApplication.processEvents()
    iface.mapCanvas().waitWhileRendering()
    QApplication.processEvents()
    grabbed = window.grab().save(os.environ["CHANGEN_SMOKE_PNG"])
    status = dock.findChild(QLabel, "ChangenStatus") if dock is not None else None
    return {
        "plugin_active": "changen" in active_plugins,
        "layer_valid": layer.isValid(),
        "layer_crs": layer.crs().authid(),
        "buildings_valid": buildings.isValid() if buildings is not None else None,
        "dock_found": dock is not None,
        "dock_visible": dock is not None and dock.isVisible(),
        "dock_title": dock.windowTitle() if dock is not None else None,
        "status_text": status.text() if status is not None else None,
        "screenshot_saved": bool(grabbed),
        "processing_algorithms": sorted(
            algorithm.id()
            for algorithm in QgsApplication.processingRegistry().algorithms()
            if algorithm.provider().id() == "changen"
        ),
        **_geo_stack_checks(),
    }


def _installer_checks() -> dict:
    """The missing-packages installer in the real desktop: the dialog, its task, pip's log and the restart
    prompt, on a local wheel (no network)."""
    from qgis.PyQt.QtWidgets import QMessageBox

    from changen.ui.install_dialog import InstallDialog

    prompts = []
    QMessageBox.information = lambda parent, title, text: prompts.append(text)
    dialog = InstallDialog(
        ("torch",),
        iface.mainWindow(),
        packages=[os.environ["CHANGEN_SMOKE_PACKAGE"]],
        pip_args=["--no-index", "--find-links", os.environ["CHANGEN_SMOKE_WHEELS"]],
    )
    dialog.root = Path(os.environ["CHANGEN_SMOKE_INSTALL_ROOT"])
    dialog.show()
    dialog.start()
    deadline = time.monotonic() + TASK_WAIT_SECONDS
    while dialog.task is not None and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
    return {
        "installer_progress": dialog.progress.value(),
        "installer_log_lines": dialog.log.toPlainText().count("\n"),
        "installer_prompts": prompts,
        "installer_left": sorted(p.name for p in dialog.root.iterdir()),
    }


def _run_and_quit():
    try:
        report = _smoke_checks()
        if os.environ.get("CHANGEN_SMOKE_WHEELS"):
            report.update(_installer_checks())
    except Exception:  # the test reads the traceback from the JSON
        report = {"error": traceback.format_exc()}
    path = os.environ["CHANGEN_SMOKE_JSON"]
    with open(path + ".tmp", "w") as handle:
        json.dump(report, handle, indent=2)
    os.replace(path + ".tmp", path)
    _quit_when_idle(time.monotonic() + TASK_WAIT_SECONDS)


def _quit_when_idle(deadline: float):
    """Quit once background tasks (e.g. the dock's model warm-up) are done: with a task running, QGIS asks
    whether to quit in a modal dialog nobody can answer under Xvfb."""
    if QgsApplication.taskManager().countActiveTasks() and time.monotonic() < deadline:
        QTimer.singleShot(250, lambda: _quit_when_idle(deadline))
        return
    QgsApplication.taskManager().cancelAll()
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().setDirty(False)
    iface.actionExit().trigger()


QTimer.singleShot(1500, _run_and_quit)
