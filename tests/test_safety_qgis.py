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
