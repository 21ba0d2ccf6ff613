"""The analyst's workflow in the real QGIS desktop under Xvfb: edit buildings, preview, export, detect."""

import json
import os
import shutil

import pytest
from test_desktop import REPO_ROOT, run_qgis_desktop

ARTIFACTS = REPO_ROOT / "artifacts" / "desktop_workflow"


@pytest.mark.qgis_desktop
def test_desktop_workflow_on_real_data(tmp_path, shared_data):
    from changen.core.detection.changestar import build_changestar
    from changen.core.paths import MODELS_DIR
    from changen.core.weights import save_weights

    detector = ""
    if not any(MODELS_DIR.glob("changestar*.safetensors")):  # plumbing only: an untrained detector
        detector = str(tmp_path / "untrained_changestar.safetensors")
        model = build_changestar("efficientnet_lite0")
        save_weights(detector, model.state_dict(), model.export_config(threshold=0.5))
    out = tmp_path / "out"
    out.mkdir()
    output = run_qgis_desktop(
        REPO_ROOT / "scripts" / "desktop_workflow.py",
        tmp_path,
        {"CHANGEN_DATA": str(shared_data), "CHANGEN_WORKFLOW_OUT": str(out), "CHANGEN_DETECTOR": detector},
        timeout=600,
    )
    report_path = out / "checks.json"
    assert report_path.is_file(), f"the workflow script wrote no report:\n{output[-3000:]}"
    report = json.loads(report_path.read_text())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for png in out.glob("*.png"):
        shutil.copy(png, ARTIFACTS / png.name)
    shutil.copy(report_path, ARTIFACTS / "checks.json")
    assert "error" not in report, report.get("error")

    assert report["device"].startswith("Device:")
    assert report["removed_marked"] == 4 and report["placements_marked"] == 2
    assert report["preview_layers"] == 1 and report["preview_layers_after_second"] == 1
    assert report["outline_features"] >= 4
    assert report["export_folders"] and {"image_t0.tif", "image_t1.tif", "change_polygons.gpkg"} <= set(
        report["export_files"]
    )
    assert len(report["detect_groups"]) == 1
    assert report["detect_layers"] == ["change polygons", "change probability"]
    assert "Changed area" in report["detect_note"]
    others = [
        f"03_preview_{m}" for m in filter(None, os.environ.get("CHANGEN_WORKFLOW_METHODS", "").split(","))
    ]
    assert report["steps"] == ["01_edits", "02_preview", "03_preview_no_footprints", *others, "04_detect"]
    for name in report["steps"]:
        assert (out / f"{name}.png").stat().st_size > 50_000  # a rendered window, not a blank one
