"""Which optional Python dependencies are importable, and how to install the missing ones."""

import importlib.util
from dataclasses import dataclass

REQUIRED = {
    "torch": "torch==2.13.0",
    "rasterio": "rasterio",
    "geopandas": "geopandas",
    "safetensors": "safetensors",
}


@dataclass(frozen=True)
class DependencyReport:
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing

    def message(self) -> str:
        if self.ok:
            return ""
        specs = " ".join(f"'{REQUIRED[name]}'" for name in self.missing)
        return (
            f"Changen needs the Python package(s) {', '.join(self.missing)}, which QGIS's Python cannot import. "
            f"Install them with: python3 -m pip install --user {specs} "
            "(from the repository: `make setup`). Synthesis and detection stay disabled until then."
        )


def check_dependencies() -> DependencyReport:
    missing = []
    for name in REQUIRED:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return DependencyReport(tuple(missing))
