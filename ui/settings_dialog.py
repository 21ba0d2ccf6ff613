"""Settings dialog: compute device, the models the dock uses and the results folder (stored in QgsSettings)."""

from collections.abc import Callable

from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from ..core.device import DEVICE_CHOICES
from ..plugin.machine import cuda_available, machine_summary
from ..plugin.results import PROJECT_RESULTS_FOLDER
from ..plugin.settings import PluginSettings, load_settings, save_settings


def shipped_models(prefix: str) -> list[str]:
    """Names of shipped models (resources/models/*.safetensors) starting with `prefix`."""
    from ..core.paths import MODELS_DIR

    return sorted(path.stem for path in MODELS_DIR.glob(f"{prefix}*.safetensors"))


MODEL_FILE_FILTER = "Model files (*.safetensors *.pth *.pt)"


def _model_combo(current: str, names: list[str], tooltip: str) -> QComboBox:
    combo = QComboBox()
    combo.setEditable(True)
    combo.addItems(names)
    combo.setCurrentText(current)
    combo.lineEdit().setPlaceholderText("default shipped model")
    combo.setToolTip(tooltip)
    return combo


def _with_browse_button(field: QWidget, tip: str, ask: Callable[[QWidget], str], put: Callable[[str], None]):
    """`field` plus a "…" button (tooltip `tip`): `ask(row)` returns the chosen path ("" for none), `put` shows it."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(field, 1)
    browse = QToolButton()
    browse.setText("…")
    browse.setToolTip(tip)

    def choose():
        path = ask(row)
        if path:
            put(path)

    browse.clicked.connect(choose)
    layout.addWidget(browse)
    row.browse_button = browse
    return row


def _with_model_button(combo: QComboBox, title: str) -> QWidget:
    def ask(row):
        return QFileDialog.getOpenFileName(row, title, "", MODEL_FILE_FILTER)[0]

    return _with_browse_button(combo, "Choose a model file", ask, combo.setCurrentText)


def _with_folder_button(line: QLineEdit, title: str) -> QWidget:
    def ask(row):
        return QFileDialog.getExistingDirectory(row, title, line.text())

    return _with_browse_button(line, "Choose a folder", ask, line.setText)


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
        self.machine = QLabel(machine_summary())  # what this machine has, before anything is chosen
        self.machine.setObjectName("ChangenMachine")
        self.machine.setWordWrap(True)
        form.addRow("This machine", self.machine)
        self.cuda = cuda_available()
        # without CUDA, "cuda" cannot be chosen here; a stored "cuda" falls back to auto now, not at each run
        if not self.cuda:
            item = self.device.model().item(DEVICE_CHOICES.index("cuda"))
            item.setEnabled(False)
            item.setToolTip("No CUDA device on this machine.")
            if self.settings.device == "cuda":
                self.device.setCurrentText("auto")
                self.machine.setText(
                    self.machine.text() + " The saved choice 'cuda' was changed to 'auto' (the CPU here)."
                )
        self.generator = _model_combo(
            self.settings.generator_model,
            shipped_models("changen"),
            "A shipped generator name, or the path of a .safetensors generator exported by Changen.",
        )
        form.addRow("Generator model", _with_model_button(self.generator, "Generator model"))
        self.detector = _model_combo(
            self.settings.detector_model,
            shipped_models("changestar"),
            "A shipped detector name, a .safetensors detector exported by Changen, or an official ChangeStar "
            ".pth file (Changen 1×96 R-18, Changen2 1×256 SAM ViT-B/L).",
        )
        self.detector_row = _with_model_button(self.detector, "Detector model")
        form.addRow("Detector model", self.detector_row)
        self.results = QLineEdit(self.settings.results_folder)
        self.results.setObjectName("ChangenResultsFolder")
        self.results.setToolTip(
            "Detections and exports of an unsaved project go here; a saved project's go into "
            f"'{PROJECT_RESULTS_FOLDER}' next to the project file."
        )
        form.addRow("Results folder", _with_folder_button(self.results, "Results folder"))
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
        if self.device.currentText() == "cuda" and not self.cuda:
            self.device.setCurrentText("auto")
        self.settings.device = self.device.currentText()
        self.settings.generator_model = self.generator.currentText().strip()
        self.settings.detector_model = self.detector.currentText().strip()
        self.settings.results_folder = self.results.text().strip() or self.settings.results_folder
        save_settings(self.settings)
        super().accept()
