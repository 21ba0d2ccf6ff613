"""Settings dialog: compute device and the models the dock uses (stored in QgsSettings)."""

from qgis.PyQt.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel

from ..plugin.settings import DEVICE_CHOICES, PluginSettings, load_settings, save_settings


def shipped_models(prefix: str) -> list[str]:
    """Names of shipped models (resources/models/*.safetensors) starting with `prefix`."""
    from ..core.paths import MODELS_DIR

    return sorted(path.stem for path in MODELS_DIR.glob(f"{prefix}*.safetensors"))


def _model_combo(current: str, names: list[str]) -> QComboBox:
    combo = QComboBox()
    combo.setEditable(True)
    combo.addItems(names)
    combo.setCurrentText(current)
    combo.lineEdit().setPlaceholderText("default shipped model")
    combo.setToolTip("A shipped model name, or the path of a .safetensors file written by Changen.")
    return combo


class SettingsDialog(QDialog):
    def __init__(self, parent=None, settings: PluginSettings | None = None):
        super().__init__(parent)
        self.setObjectName("ChangenSettingsDialog")
        self.setWindowTitle("Changen settings")
        self.settings = settings or load_settings()
        form = QFormLayout(self)
        self.device = QComboBox()
        self.device.setObjectName("ChangenDeviceChoice")
        self.device.addItems(DEVICE_CHOICES)
        self.device.setCurrentText(self.settings.device)
        self.device.setToolTip("auto uses CUDA when torch sees a GPU, else the CPU.")
        form.addRow("Device", self.device)
        self.generator = _model_combo(self.settings.generator_model, shipped_models("changen"))
        form.addRow("Generator model", self.generator)
        self.detector = _model_combo(self.settings.detector_model, shipped_models("changestar"))
        form.addRow("Detector model", self.detector)
        note = QLabel(
            "Shipped weights are for non-commercial research use (trained on xBD, CC BY-NC-SA 4.0)."
        )
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def accept(self):
        self.settings.device = self.device.currentText()
        self.settings.generator_model = self.generator.currentText().strip()
        self.settings.detector_model = self.detector.currentText().strip()
        save_settings(self.settings)
        super().accept()
