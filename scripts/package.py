"""Build the zip that QGIS's plugin manager installs: `dist/changen-<version>.zip` with top folder `changen/`.

It holds the plugin's runtime files only (metadata, code, .ui files, icons, shipped weights, licence, README);
no tests, development files, caches or data. Entries are sorted and carry a fixed time stamp, so two builds
of the same tree are byte-identical.
"""

import argparse
import configparser
import os
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_NAME = "changen"
TOP_LEVEL_FILES = ("metadata.txt", "__init__.py", "LICENSE", "README.md")
TOP_LEVEL_DIRS = ("plugin", "ui", "core", "resources")
EXCLUDED_DIRS = ("core/training",)  # command-line trainers: not part of the installed plugin
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".tmp", ".log"}
FIXED_TIMESTAMP = (2020, 1, 1, 0, 0, 0)


def plugin_version(root: Path) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(root / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"]


def runtime_files(root: Path) -> list[Path]:
    """Paths relative to `root` of every file the installed plugin needs."""
    files = []
    for name in TOP_LEVEL_FILES:
        if not (root / name).is_file():
            raise SystemExit(f"package: {name} is missing from {root}; it is required in the plugin zip")
        files.append(Path(name))
    for top in TOP_LEVEL_DIRS:
        for folder, subfolders, names in os.walk(root / top):
            subfolders[:] = sorted(
                d
                for d in subfolders
                if d not in SKIPPED_DIRS
                and not d.startswith(".")
                and Path(folder, d).relative_to(root).as_posix() not in EXCLUDED_DIRS
            )
            for name in names:
                path = Path(folder, name)
                if name.startswith(".") or path.suffix in SKIPPED_SUFFIXES:
                    continue
                files.append(path.relative_to(root))
    return sorted(files)


def build_zip(root: Path, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN_NAME}-{plugin_version(root)}.zip"
    handle, temporary = tempfile.mkstemp(dir=out_dir, suffix=".zip.tmp")
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for relative in runtime_files(root):
                info = zipfile.ZipInfo(f"{PLUGIN_NAME}/{relative.as_posix()}", FIXED_TIMESTAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, (root / relative).read_bytes())
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "dist", help="folder for the zip (default: dist)"
    )
    args = parser.parse_args(argv)
    target = build_zip(REPO_ROOT, args.out)
    with zipfile.ZipFile(target) as archive:
        count = len(archive.infolist())
    print(f"package: {target} ({count} files, {target.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
