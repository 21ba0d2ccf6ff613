"""Where things live: the repository, shipped weights, and the shared real data (never copied into git)."""

import os
from pathlib import Path

from .errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent  # in QGIS: the installed plugin folder
MODELS_DIR = REPO_ROOT / "resources" / "models"
DEFAULT_DETECTOR = "changestar_lite0"  # the shipped change detector in MODELS_DIR


def shared_data_dir() -> Path:
    """`$CHANGEN_DATA`, else `../shared/data` beside the repository."""
    candidates = [os.environ.get("CHANGEN_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate, "README.md").is_file():
            return Path(candidate)
    raise InputError(
        "The shared real data was not found: set CHANGEN_DATA to the folder holding buildings/, change/ "
        "and georef/, or place it at ../shared/data beside the repository."
    )
