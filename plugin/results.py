"""Where the dock's results go, and how a run's folder appears there only when complete.

Results (detections, exported pairs) go into `changen_results` next to a saved project, else into the folder set
in Settings; previews are temporary (see `layers.TEMPORARY_PROPERTY`) and stay in the system's temporary folder.
"""

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from qgis.core import QgsProject

from ..core.errors import InputError
from .settings import load_settings

PROJECT_RESULTS_FOLDER = "changen_results"


def results_folder() -> str:
    """`changen_results` beside the saved project; for an unsaved project the folder set in Settings."""
    project_dir = QgsProject.instance().absolutePath()
    if project_dir:
        return os.path.join(project_dir, PROJECT_RESULTS_FOLDER)
    return load_settings().results_folder


class StagedFolder:
    """`with StagedFolder(parent, name) as staged:` write into `staged.path`, a hidden folder inside `parent`
    (created when missing); when the block ends normally it is renamed to `staged.final` (`<name>_<date-time>`),
    on any exception or cancel it is removed: a run's folder appears complete or not at all."""

    def __init__(self, parent: str, name: str):
        self.parent, self.name = parent, _safe_name(name)
        self.path = self.final = ""

    def __enter__(self) -> "StagedFolder":
        fix = (
            "choose a folder you can write to (results of an unsaved project go to the folder set in Changen's "
            "Settings…, a saved project's next to it)"
        )
        try:
            os.makedirs(self.parent, exist_ok=True)
        except OSError as error:
            raise InputError(
                f"Cannot create the results folder '{self.parent}' ({error.strerror}): {fix}."
            ) from None
        if not os.access(self.parent, os.W_OK):
            raise InputError(f"Cannot write into '{self.parent}': {fix}.")
        self.path = tempfile.mkdtemp(prefix=".changen-", dir=self.parent)
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if kind is None:
            try:
                os.chmod(self.path, 0o755)
                self.final = self._free_name()
                os.rename(self.path, self.final)
                return False
            except BaseException:
                shutil.rmtree(self.path, ignore_errors=True)
                raise
        shutil.rmtree(self.path, ignore_errors=True)
        return False

    def _free_name(self) -> str:
        base = os.path.join(self.parent, f"{self.name}_{time.strftime('%Y%m%d-%H%M%S')}")
        final, count = base, 1
        while os.path.exists(final):
            count += 1
            final = f"{base}-{count}"
        return final


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "result"


@contextmanager
def scratch_folder(prefix: str) -> Iterator[str]:
    """A fresh temporary folder for a result shown later (a preview, a vectorised mask); removed if the job
    fails or is canceled inside the block."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def remove_folder(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def remove_result_folder(result) -> None:
    """Drops the folder of a result nobody will show (a superseded or discarded preview/export)."""
    folder = getattr(result, "folder", None)
    if folder:
        remove_folder(folder)
