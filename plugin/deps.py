"""Which optional Python dependencies are importable, and how to install the missing ones."""

import ctypes
import importlib.machinery
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

# import name -> pip requirement: everything core/ imports at run time (requirements.txt has the same bounds)
REQUIRED = {
    "torch": "torch==2.13.0",
    "rasterio": "rasterio>=1.3,<1.5",
    "affine": "affine<3",
    "geopandas": "geopandas>=0.14",
    "pyogrio": "pyogrio>=0.7",
    "shapely": "shapely>=2.0",
    "pyproj": "pyproj>=3.4",
    "scipy": "scipy>=1.10",
    "cv2": "opencv-python-headless>=4.8,<4.11",
    "safetensors": "safetensors>=0.4",
    "tqdm": "tqdm>=4.60",
    "efficientnet_lite_pytorch": "efficientnet-lite-pytorch==0.1.0",
    "diffusers": "diffusers>=0.30,<1",
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
            "In QGIS, 'Install packages…' in this message installs them into a folder of the plugin's own; or "
            f"install them with: {self.install_command()} (then restart QGIS; from a clone of the repository, "
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


# Python wheels that bundle their own GDAL, GEOS or PROJ. Inside the QGIS executables these libraries are already
# loaded into the global symbol scope (QGIS links Debian's builds), and the wheels' extension modules would bind
# to those older copies: mixed library versions give wrong results and segfaults (shapely coordinates turn
# NaN, rasterio.features.rasterize crashes). Importing them with RTLD_DEEPBIND makes each extension module
# resolve symbols in its own bundled libraries first.
BUNDLED_NATIVE_PACKAGES = ("shapely", "pyproj", "rasterio", "pyogrio")
ISOLATED_MARK = (
    "_changen_isolated"  # set on a package Changen imported itself, so a plugin reload does not warn
)


def _host_exports_geo_libraries() -> bool:
    """True inside a process whose executable linked GDAL/GEOS globally (qgis, qgis_process), not in python."""
    host = ctypes.CDLL(None)
    return any(hasattr(host, symbol) for symbol in ("GDALVersionInfo", "GEOSversion", "proj_info"))


@dataclass
class NativeIsolation:
    """`too_late`: packages imported before the plugin (they keep QGIS's libraries); `broken`: package -> the
    error its native modules raised on import (a broken install)."""

    too_late: list[str] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)


def isolate_bundled_native_libraries() -> NativeIsolation:
    """Import the extension modules of `BUNDLED_NATIVE_PACKAGES` with their own native libraries (only inside
    the QGIS executables; a no-op in a plain Python process)."""
    outcome = NativeIsolation()
    if not _host_exports_geo_libraries():
        return outcome
    flags = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
    try:
        for package in BUNDLED_NATIVE_PACKAGES:
            if package in sys.modules:
                if not getattr(sys.modules[package], ISOLATED_MARK, False):  # a reload finds its own imports
                    outcome.too_late.append(package)
                continue
            try:
                spec = importlib.util.find_spec(package)
            except (ImportError, ValueError):
                continue
            if spec is None or not spec.submodule_search_locations:
                continue
            try:
                for module in _extension_modules(package, Path(next(iter(spec.submodule_search_locations)))):
                    importlib.import_module(module)
                setattr(importlib.import_module(package), ISOLATED_MARK, True)
            except (ImportError, OSError) as error:
                outcome.broken[package] = f"{type(error).__name__}: {error}"
    finally:
        sys.setdlopenflags(flags)
    return outcome


def _extension_modules(package: str, folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*")):
        suffix = next((s for s in importlib.machinery.EXTENSION_SUFFIXES if path.name.endswith(s)), None)
        if suffix is None or "tests" in path.relative_to(folder).parts:
            continue
        parts = path.relative_to(folder).with_name(path.name[: -len(suffix)]).parts
        names.append(".".join((package, *parts)))
    return names
