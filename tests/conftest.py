"""Shared test set-up: the repository importable both as `core` and as the installed plugin `changen`."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["dock_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
_PLUGIN_PARENT = Path(tempfile.mkdtemp(prefix="changen-plugin-"))
(_PLUGIN_PARENT / "changen").symlink_to(REPO_ROOT)
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(_PLUGIN_PARENT))

# QGIS writes settings into its config path: keep it away from the user's profile.
os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", tempfile.mkdtemp(prefix="changen-qgis-config-"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# GDAL/QGIS must not write .aux.xml statistics beside the (read-only) shared data.
os.environ["GDAL_PAM_ENABLED"] = "NO"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data in ../shared/data (CI has it); a missing copy is an error, not a skip."""
    from core.paths import shared_data_dir

    return shared_data_dir()
