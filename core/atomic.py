"""Atomic outputs: write to a temporary file beside the target, then rename it over the target.

A reader (or QGIS) never sees a half-written file, and a failed or canceled write leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .guards import note_written


def default_mode() -> int:
    """The permissions a plain `open(path, "w")` would give: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp", create: bool = True) -> Iterator[Path]:
    """Yields a temporary path in `path`'s folder (made if missing); when the block succeeds the file gets the
    usual permissions (mkstemp makes 0600) and replaces `path`; when it fails the temporary file is removed.
    `create=False` yields a path that does not exist yet, for writers that refuse an existing file (GeoPackage)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    if not create:
        os.remove(tmp)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
        note_written(path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_png_atomic(path: str | os.PathLike, rgb) -> None:
    """An (H, W, 3) uint8 RGB or (H, W) array as a PNG."""
    import cv2

    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    write_bytes_atomic(path, encoded.tobytes())
