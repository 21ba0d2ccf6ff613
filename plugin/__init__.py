"""QGIS adapters: they turn layers into arrays for `core` and its results back into layers."""

from ..core.paths import REPO_ROOT

ICON_PATH = str(REPO_ROOT / "resources" / "icons" / "changen.png")
# the plugin's name in QGIS: its log tab, message-bar title, menu entry, dock and provider
LOG_TAG = "Changen"
