"""Which optional Python dependencies are importable, and how to install the missing ones."""

import importlib.util
from dataclasses import dataclass

# import name -> pip requirement
REQUIRED = {
    "torch": "torch==2.13.0",
    "rasterio": "rasterio>=1.3,<1.5",
    "geopandas": "geopandas>=0.14",
    "safetensors": "safetensors>=0.4",
    "scipy": "scipy>=1.10",
    "cv2": "opencv-python-headless>=4.8,<4.11",
}


@dataclass(frozen=True)
class DependencyReport:
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing

    def install_command(self) -> str:
        """A pip command for QGIS's Python; numpy stays <2 because QGIS's GDAL bindings need numpy 1.x."""
        specs = " ".join(f"'{REQUIRED[name]}'" for name in self.missing)
        return f"python3 -m pip install --user --break-system-packages {specs} 'numpy<2'"

    def message(self) -> str:
        if self.ok:
            return ""
        return (
            f"Changen needs the Python package(s) {', '.join(self.missing)}, which QGIS's Python cannot import. "
            f"Install them with: {self.install_command()} (then restart QGIS; from a clone of the repository, "
            "`make setup` then `make qgis` does it all). Synthesis and detection stay disabled until then."
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
