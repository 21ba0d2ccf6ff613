"""Small widget helpers shared by the dock's tabs."""

from qgis.PyQt.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)


def spin(minimum: int, maximum: int, value: int, name: str, tip: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(minimum, maximum)
    box.setValue(value)
    box.setObjectName(name)
    box.setToolTip(tip)
    return box


def double_spin(
    minimum: float, maximum: float, value: float, step: float, name: str, suffix: str = "", tip: str = ""
) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(minimum, maximum)
    box.setSingleStep(step)
    box.setDecimals(2)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setObjectName(name)
    box.setToolTip(tip)
    return box


def button(text: str, name: str, tip: str = "", checkable: bool = False) -> QPushButton:
    widget = QPushButton(text)
    widget.setObjectName(name)
    widget.setToolTip(tip)
    widget.setCheckable(checkable)
    return widget


def row(*widgets) -> QWidget:
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return holder


class RunControls(QWidget):
    """A run button, a cancel button and a progress bar; `running(bool)` switches between the two states."""

    def __init__(self, run_text: str, name: str, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.run = button(run_text, f"{name}Run")
        self.cancel = button("Cancel", f"{name}Cancel")
        self.progress = QProgressBar()
        self.progress.setObjectName(f"{name}Progress")
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        layout.addWidget(self.run)
        layout.addWidget(self.progress, 1)
        layout.addWidget(self.cancel)
        self.running(False)

    def running(self, busy: bool) -> None:
        self.cancel.setEnabled(busy)
        if not busy:
            self.progress.setValue(0)

    def follow(self, task) -> None:
        """Show `task`'s progress."""
        self.running(True)
        task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))


def choose_export_folder(parent, title: str, folder: str | None = None) -> str | None:
    """`folder`, or the one the analyst picks (starting at the last export folder or the results folder); the
    choice is remembered. None when the dialog is canceled."""
    from ..plugin.results import results_folder
    from ..plugin.settings import load_settings, save_settings

    settings = load_settings()
    if folder is None:
        folder = QFileDialog.getExistingDirectory(
            parent, title, settings.last_export_folder or results_folder()
        )
        if not folder:
            return None
    settings.last_export_folder = folder
    save_settings(settings)
    return folder
