"""The dialog that installs Changen's missing Python packages from inside QGIS (CPU or CUDA torch)."""

import shutil

from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QRadioButton,
    QVBoxLayout,
)

from ..plugin import LOG_TAG
from ..plugin.install_task import InstallPackagesTask
from ..plugin.installer import packages_root


class InstallDialog(QDialog):
    def __init__(self, missing, parent=None, packages=None, pip_args=()):
        super().__init__(parent)
        self.setObjectName("ChangenInstallDialog")
        self.setWindowTitle("Changen: install Python packages")
        self.root = packages_root(QgsApplication.qgisSettingsDirPath())
        self.packages, self.pip_args, self.task, self.closing = packages, pip_args, None, False
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                f"Changen needs {', '.join(missing)}. They are installed with pip into a folder of the plugin's "
                f"own, not into the system Python:\n{self.root}\nThe download is about 1 GB for CPU and several "
                "GB for CUDA; it takes some minutes."
            )
        )
        self.cpu = QRadioButton("PyTorch for the CPU (any computer)")
        self.cuda = QRadioButton("PyTorch with CUDA (NVIDIA graphics card)")
        (self.cuda if shutil.which("nvidia-smi") else self.cpu).setChecked(True)
        layout.addWidget(self.cpu)
        layout.addWidget(self.cuda)
        self.progress = QProgressBar()
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(2000)
        layout.addWidget(self.log)
        self.buttons = QDialogButtonBox()
        self.install_button = self.buttons.addButton("Install", QDialogButtonBox.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def start(self):
        self.install_button.setEnabled(False)
        self.cpu.setEnabled(False)
        self.cuda.setEnabled(False)
        self.task = InstallPackagesTask(self.root, self.cuda.isChecked(), self.packages, self.pip_args)
        self.task.line.connect(self.log.appendPlainText)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.task.done.connect(self.finish)
        QgsApplication.taskManager().addTask(self.task)

    def reject(self):
        """Cancel, Esc and the window's close button: a running install is canceled first; `finish` closes the
        dialog once pip has stopped and the partial folder is gone."""
        if self.task is not None:
            self.closing = True
            self.task.cancel()
        else:
            super().reject()

    def finish(self, ok: bool, message: str):
        self.task = None
        self.log.appendPlainText(message)
        if ok:
            self.progress.setValue(100)
            QMessageBox.information(self, LOG_TAG, message)
            self.accept()
        elif self.closing:
            super().reject()
        else:
            self.install_button.setEnabled(True)
            self.cpu.setEnabled(True)
            self.cuda.setEnabled(True)
