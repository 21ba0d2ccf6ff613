"""Run `qgis_process` as a user without a display would: a temporary config dir, the plugin enabled there."""

import json
import os
import subprocess
import sysconfig
from pathlib import Path

QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # Debian's qgis_process wrapper passes an option 3.22 rejects


def qgis_process_env(config_dir: Path, plugin_parent: Path | None = None) -> dict[str, str]:
    """`plugin_parent`: a folder holding `changen` (QGIS_PLUGINPATH); None to use the profile's own plugins."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        QGIS_CUSTOM_CONFIG_PATH=str(config_dir),
        HOME=str(config_dir),
        GDAL_PAM_ENABLED="NO",  # no .aux.xml statistics beside the shared data
        PYTHONPATH=sysconfig.get_path("purelib"),  # torch & co. from the venv; the plugin itself is not on it
    )
    env.pop("QGIS_PLUGINPATH", None)
    if plugin_parent is not None:
        env["QGIS_PLUGINPATH"] = str(plugin_parent)
    return env


def qgis_process(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    done = subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert (
        done.returncode == 0
    ), f"qgis_process {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def run_algorithm(env: dict[str, str], algorithm: str, **parameters) -> dict:
    """`qgis_process --json run algorithm -- KEY=VALUE …` -> its results."""
    arguments = [f"{key}={value}" for key, value in parameters.items()]
    output = qgis_process(env, "--json", "run", algorithm, "--", *arguments)
    return json.loads(output)["results"]
