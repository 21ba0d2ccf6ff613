"""The real QGIS desktop under Xvfb, with a temporary profile and the plugin enabled (a smoke test)."""

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from test_installer import write_wheel

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "artifacts" / "desktop"


def run_qgis_desktop(code: Path, workdir: Path, env: dict[str, str], timeout: float = 300) -> str:
    """Start `qgis --code code` in a fresh profile under `workdir` and return its console output.

    The profile links this repository as the `changen` plugin; QGIS's Python sees the project's venv packages.
    """
    profiles = workdir / "profiles"
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "qgis_profile.sh"), str(profiles), str(REPO_ROOT)], check=True
    )
    full_env = dict(
        os.environ,
        HOME=str(workdir),
        PYTHONPATH=sysconfig.get_path("purelib"),
        GDAL_PAM_ENABLED="NO",  # no .aux.xml statistics beside the shared data
        **env,
    )
    full_env.pop("QT_QPA_PLATFORM", None)  # the desktop needs the X server; offscreen crashes it
    command = [
        "timeout", "-k", "10", str(timeout),
        "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24",
        "qgis", "--profiles-path", str(profiles), "--nologo", "--noversioncheck", "--code", str(code),
    ]  # fmt: skip
    completed = subprocess.run(command, env=full_env, capture_output=True, text=True, cwd=workdir)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 124, f"QGIS did not quit within {timeout} s:\n{output[-3000:]}"
    return output


@pytest.mark.qgis_desktop
def test_desktop_opens_geotiff_and_shows_dock(tmp_path, shared_data):
    joplin = shared_data / "georef" / "joplin"
    png, report_path = tmp_path / "qgis_dock.png", tmp_path / "checks.json"
    packages, _ = write_wheel(tmp_path / "wheels")  # for the installer dialog (issue 16, item 21)
    output = run_qgis_desktop(
        REPO_ROOT / "scripts" / "desktop_smoke.py",
        tmp_path,
        {
            "CHANGEN_SMOKE_RASTER": str(joplin / "chips" / "pre" / "0_pre.tif"),
            "CHANGEN_SMOKE_BUILDINGS": str(joplin / "footprints_2020.geojson"),
            "CHANGEN_SMOKE_PNG": str(png),
            "CHANGEN_SMOKE_JSON": str(report_path),
            "CHANGEN_SMOKE_WHEELS": str(tmp_path / "wheels"),
            "CHANGEN_SMOKE_PACKAGE": packages[0],
            "CHANGEN_SMOKE_INSTALL_ROOT": str(tmp_path / "packages"),
        },
    )
    assert report_path.is_file(), f"the --code script wrote no report:\n{output[-3000:]}"
    report = json.loads(report_path.read_text())
    assert "error" not in report, report.get("error")

    assert report["plugin_active"]
    assert report["layer_valid"] and report["layer_crs"] == "EPSG:32615"
    assert report["buildings_valid"]
    assert report["dock_found"] and report["dock_visible"]
    assert report["dock_title"] == "Changen"
    assert report["status_text"].startswith("Device:")
    assert report["screenshot_saved"] and png.stat().st_size > 50_000  # a rendered window, not a blank one
    assert report["processing_algorithms"] == [
        "changen:detect",
        "changen:generatedataset",
        "changen:landcover",
        "changen:synthesize",
    ]
    assert report["rasterized_pixels"] == 16
    assert report["installer_progress"] == 100 and report["installer_log_lines"] > 3
    assert len(report["installer_prompts"]) == 1 and "Restart QGIS" in report["installer_prompts"][0]
    assert report["installer_left"] == ["install.log", "venv"]
    assert report["rasterio_gdal"] != report["qgis_gdal"], "rasterio must use its own GDAL inside QGIS"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(png, ARTIFACTS / png.name)
