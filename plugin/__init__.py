"""QGIS adapters: they turn layers into arrays for `core` and its results back into layers."""

import os

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the installed plugin folder
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icons", "changen.png")
LOG_TAG = "Changen"  # the QGIS log tab of every message
