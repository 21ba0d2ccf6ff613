"""The Changen dock on a fresh project, and the dock set up on the real Joplin chip with its footprints
(shared by the dock and task tests; pytest picks the fixtures up through `pytest_plugins` in conftest)."""

import time

import pytest
from pytest_qgis.mock_qgis_classes import MockMessageBar

# pytest-qgis's message bar keeps texts, not QgsMessageBarItems: nothing of Changen's to replace
MockMessageBar.items = lambda self: []


def wait_until(condition, timeout=120.0):
    from qgis.core import QgsApplication

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for a task"
        QgsApplication.processEvents()
        time.sleep(0.01)


@pytest.fixture()
def dock(qgis_iface, qgis_new_project):
    from changen.plugin.deps import check_dependencies
    from changen.ui.dock import ChangenDock

    widget = ChangenDock(qgis_iface, check_dependencies())
    yield widget
    widget.close_tools()
    tab = widget.synthesize_tab
    runners = (tab.preview_runner, tab.export_runner, tab.warm_up_runner, tab.masks.runner)
    wait_until(lambda: not any(runner.busy for runner in runners))
    widget.deleteLater()


@pytest.fixture()
def joplin(shared_data, qgis_iface, dock):
    """(image, buildings, synthesize tab): Joplin chip 0 and its footprints, Inpainting, the view on the centre."""
    from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

    image = QgsRasterLayer(str(shared_data / "georef/joplin/chips/pre/0_pre.tif"), "pre 0")
    buildings = QgsVectorLayer(
        str(shared_data / "georef/joplin/footprints_2020.geojson"), "footprints", "ogr"
    )
    assert image.isValid() and buildings.isValid()
    QgsProject.instance().addMapLayers([image, buildings])
    tab = dock.synthesize_tab
    tab.options.method.setCurrentIndex(tab.options.method.findData("inpainting"))
    tab.image_combo.setLayer(image)
    tab.buildings_combo.setLayer(buildings)
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(image.crs())
    canvas.setExtent(image.extent().scaled(0.5, image.extent().center()))
    return image, buildings, tab


@pytest.fixture()
def saved_settings():
    """The plugin settings as they were before the test, restored after it whatever happened."""
    from changen.plugin.settings import load_settings, save_settings

    before = load_settings()
    yield before
    save_settings(before)


@pytest.fixture(params=[False, True], ids=["no-cuda", "cuda"])
def cuda(request, monkeypatch) -> bool:
    """torch sees one CUDA device ("Fake GPU", CUDA 12.1 build) or none (a CPU-only build), whatever this machine has."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: request.param)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(request.param))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    monkeypatch.setattr(torch.version, "cuda", "12.1" if request.param else None)
    return request.param
