"""The plugin's user settings, kept in QgsSettings under `changen/`."""

import os
from dataclasses import dataclass

from qgis.core import QgsSettings

from ..core.device import DEVICE_CHOICES
from ..core.synthesis.methods import METHODS, UNCHANGED_MODES

_PREFIX = "changen/"
_DEFAULTS = {
    "device": "auto",
    "synthesis_method": "changen",
    "synthesis_unchanged": "keep",
    "generator_model": "",
    "detector_model": "",
    "detect_threshold": 0.0,
    "last_export_folder": "",
    "results_folder": os.path.join(os.path.expanduser("~"), "Changen results"),
}


@dataclass
class PluginSettings:
    """Model names are shipped model names or .safetensors paths; empty means core's default model.
    `detect_threshold` 0 means the detector's calibrated threshold. `results_folder` holds the results of an
    unsaved project (a saved project's go next to it: `results.results_folder`)."""

    device: str
    synthesis_method: str
    synthesis_unchanged: str  # Changen: "keep" the image outside the change, or "regenerate" it all
    generator_model: str
    detector_model: str
    detect_threshold: float
    last_export_folder: str
    results_folder: str


def load_settings() -> PluginSettings:
    store = QgsSettings()
    values = {}
    for key, default in _DEFAULTS.items():
        raw = store.value(_PREFIX + key, default)
        values[key] = type(default)(raw) if raw not in (None, "") else default
    if values["device"] not in DEVICE_CHOICES:
        values["device"] = "auto"
    if values["synthesis_method"] not in METHODS:
        values["synthesis_method"] = "changen"
    if values["synthesis_unchanged"] not in UNCHANGED_MODES:
        values["synthesis_unchanged"] = "keep"
    return PluginSettings(**values)


def save_settings(settings: PluginSettings) -> None:
    store = QgsSettings()
    for key in _DEFAULTS:
        store.setValue(_PREFIX + key, getattr(settings, key))
