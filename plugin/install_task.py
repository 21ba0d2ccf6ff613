"""The background task behind the installer dialog: `installer.install` in a QgsTask, pip's lines as a signal."""

from pathlib import Path

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..core.errors import Canceled, InputError
from .installer import install


class InstallPackagesTask(QgsTask):
    """Installs the requirements into `root/venv`; every pip line goes to `root/install.log` and `line`."""

    line = pyqtSignal(str)
    done = pyqtSignal(bool, str)  # success, message

    def __init__(self, root: Path, cuda: bool, packages=None, pip_args=()):
        super().__init__("Changen: installing Python packages", QgsTask.CanCancel)
        self.root, self.cuda, self.packages, self.pip_args = Path(root), cuda, packages, tuple(pip_args)
        self.log_path = self.root / "install.log"
        self.message = ""

    def run(self) -> bool:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w", encoding="utf-8") as log_file:

            def log(text: str) -> None:
                log_file.write(text + "\n")
                log_file.flush()
                self.line.emit(text)

            try:
                site = install(
                    self.root, self.cuda, log, self.setProgress, self.isCanceled, self.pip_args, self.packages
                )
            except Canceled:
                self.message = "Installation canceled; nothing was installed."
                return False
            except (InputError, OSError) as error:
                self.message = f"{error} Log: {self.log_path}"
                log(self.message)
                return False
        self.message = f"Installed into {site}. Restart QGIS to use Changen."
        return True

    def finished(self, result: bool) -> None:  # noqa: D401 (QGIS's name)
        self.done.emit(result, self.message or "Installation canceled; nothing was installed.")
