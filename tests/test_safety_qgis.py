"""Issue 16 in QGIS: honest messages and reports (items 10, 13, 14, 16, 17, 18, 22)."""

import subprocess
import sys
from pathlib import Path

from qgis_process_runner import QGIS_PROCESS, qgis_process, qgis_process_env


# ------------------------------------------------------------------------------------------------ item 22
def test_qgis_process_lists_the_provider_with_packages_missing(tmp_path):
    """Headless with none of the Python packages (an empty PYTHONPATH): the algorithms are listed, and each
    says what is missing and how to install it."""
    plugin_link_parent = next(p for p in map(Path, sys.path) if (p / "changen").is_symlink())
    env = qgis_process_env(tmp_path / "config", plugin_link_parent)
    (tmp_path / "empty").mkdir()
    env["PYTHONPATH"] = str(tmp_path / "empty")
    qgis_process(env, "plugins", "enable", "changen")
    listing = qgis_process(env, "list")
    for algorithm in ("changen:detect", "changen:synthesize", "changen:generatedataset"):
        assert algorithm in listing, listing
    help_text = qgis_process(env, "help", "changen:detect")
    assert "torch" in help_text and "pip install" in help_text, help_text
    done = subprocess.run(
        [QGIS_PROCESS, "run", "changen:detect"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert "pip install" in done.stdout + done.stderr and "Traceback" not in done.stderr, done.stderr


# ------------------------------------------------------------------------------------------------ dock items
def _mark_in_view(tab, count):
    session = tab.edits.ensure_session()
    request = tab.build_request(tab._view_window(tab.image_layer()))
    inside = request.buildings[request.buildings.geometry.area > 60].fid.tolist()
    for fid in inside[:count]:
        session.toggle_remove(fid)
    return inside[:count]


def _event_types():
    from qgis.core import QgsProject

    from changen.plugin.layers import temporary_name
    from changen.ui.synthesize_tab import OUTLINE_LAYER_NAME

    (outlines,) = QgsProject.instance().mapLayersByName(temporary_name(OUTLINE_LAYER_NAME))
    return [f["event_type"] for f in outlines.getFeatures()]


def test_copy_paste_says_it_only_creates_and_reports_no_removal(joplin):
    """Item 10: Copy-Paste reported "3 removed" and removed nothing."""
    from dock_fixtures import wait_until

    _, _, tab = joplin
    tab.options.method.setCurrentIndex(tab.options.method.findData("copy-paste"))
    assert "only creates" in tab.options.method_hint.text()  # said before the run
    assert len(_mark_in_view(tab, 3)) == 3
    tab.preview()
    wait_until(lambda: not tab.preview_runner.busy)
    note = tab.result_note.text()
    assert "0 removed" in note and "3 removal(s) were not applied" in note, note
    assert "removed" not in _event_types()


def test_inpainting_says_it_only_removes_and_reports_no_creation(joplin):
    from dock_fixtures import wait_until

    _, _, tab = joplin
    tab.options.method.setCurrentIndex(tab.options.method.findData("inpainting"))
    assert "only removes" in tab.options.method_hint.text()
    tab.options.random_create.setValue(2)
    tab.options.random_remove.setValue(1)
    tab.preview()
    wait_until(lambda: not tab.preview_runner.busy)
    note = tab.result_note.text()
    assert "0 created" in note and "2 copy(ies) were not created" in note, note
    assert "created" not in _event_types()


def test_buildings_off_the_image_say_where_each_layer_is(joplin, qgis_iface):
    """Item 14: "0 removal(s), 0 copy(ies) marked" with no reason."""
    from qgis.core import QgsFeature, QgsGeometry, QgsProject, QgsVectorLayer

    image, _, tab = joplin
    far = QgsVectorLayer("Polygon?crs=EPSG:4326", "far buildings", "memory")
    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromWkt("POLYGON((10 50, 10.001 50, 10.001 50.001, 10 50.001, 10 50))"))
    far.dataProvider().addFeatures([feature])
    far.updateExtents()
    QgsProject.instance().addMapLayer(far)
    tab.buildings_combo.setLayer(far)
    tab.options.random_remove.setValue(1)
    for messages in qgis_iface.messageBar().messages.values():
        messages.clear()
    tab.random_events()
    texts = [m for level in qgis_iface.messageBar().messages.values() for m in level]
    text = " ".join(map(str, texts))
    assert "do not overlap" in text and "far buildings" in text and image.name() in text, texts
    assert "EPSG:4326" in text and image.crs().authid() in text, texts


def test_export_checks_the_pre_event_image_before_the_folder_dialog(dock, monkeypatch):
    """Item 17: the folder dialog opened before the missing image was noticed."""
    from qgis.PyQt.QtWidgets import QFileDialog

    opened = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: opened.append(a) or "")
    tab = dock.synthesize_tab
    tab.image_combo.setLayer(None)
    assert tab.export() is None
    assert opened == []


def test_pair_note_says_what_differs_and_the_group_names_both_layers(shared_data, dock):
    """Item 16: "t2 is not on t1's grid (EPSG:32615 vs EPSG:32615, …)"; group "Changen detection: <t1> → t2"."""
    from qgis.core import QgsProject, QgsRasterLayer

    chips = shared_data / "georef" / "joplin" / "chips" / "pre"
    t1 = QgsRasterLayer(str(chips / "0_pre.tif"), "chip zero")
    t2 = QgsRasterLayer(str(chips / "1_pre.tif"), "chip one")
    QgsProject.instance().addMapLayers([t1, t2])
    tab = dock.detect_tab
    tab.t1_combo.setLayer(t1)
    tab.t2_combo.setLayer(t2)
    note = tab.note.text()
    assert "origin" in note and "chip one" in note and "chip zero" in note, note
    assert "EPSG:32615 vs EPSG:32615" not in note


def test_detection_group_names_both_layers(shared_data, dock, tmp_path):
    import torch
    from dock_fixtures import wait_until
    from qgis.core import QgsProject, QgsRasterLayer

    from changen.plugin.settings import load_settings, save_settings
    from core.detection.changestar import build_changestar
    from core.weights import save_weights

    torch.manual_seed(0)
    net = build_changestar(fpn_channels=32, decoder_channels=16)
    model = tmp_path / "tiny.safetensors"
    save_weights(model, net.state_dict(), net.export_config(threshold=0.5))
    settings = load_settings()
    settings.detector_model = str(model)
    save_settings(settings)
    try:
        folder = shared_data / "georef" / "levir_dev"
        t1 = QgsRasterLayer(str(folder / "test_2_0000_0000_A.tif"), "before the storm")
        t2 = QgsRasterLayer(str(folder / "test_2_0000_0000_B.tif"), "after the storm")
        QgsProject.instance().addMapLayers([t1, t2])
        tab = dock.detect_tab
        tab.t1_combo.setLayer(t1)
        tab.t2_combo.setLayer(t2)
        assert tab.detect() is not None
        wait_until(lambda: not tab.runner.busy)
        names = [g.name() for g in QgsProject.instance().layerTreeRoot().children()]
        assert "Changen detection: before the storm → after the storm" in names, (names, tab.note.text())
    finally:
        settings.detector_model = ""
        save_settings(settings)


def test_settings_show_the_machine_and_refuse_cuda_without_it(dock, cuda, saved_settings):
    """Item 18: "cuda" was accepted on a machine without CUDA, then every run failed as Critical."""
    from changen.plugin.settings import load_settings, save_settings
    from changen.ui.settings_dialog import SettingsDialog

    settings = load_settings()
    settings.device = "cuda"  # e.g. saved on another machine
    save_settings(settings)
    dialog = SettingsDialog(dock)
    machine = dialog.machine.text()
    assert "CPU:" in machine and ("CUDA: Fake GPU" in machine if cuda else "CUDA: not available" in machine)
    cuda_item = dialog.device.model().item(dialog.device.findText("cuda"))
    assert cuda_item.isEnabled() == cuda
    assert dialog.device.currentText() == ("cuda" if cuda else "auto")
    dialog.accept()
    assert load_settings().device == ("cuda" if cuda else "auto")


def test_a_cuda_run_without_cuda_is_a_warning_with_the_fix(monkeypatch):
    import pytest
    import torch

    from core.device import pick_device
    from core.errors import InputError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # whatever this machine has
    with pytest.raises(InputError, match="Settings"):
        pick_device("cuda")
