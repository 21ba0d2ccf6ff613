"""Reading 8-bit PNG/JPEG images and binary masks (pair folders, evaluation pairs, building tiles)."""

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError

EIGHT_BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit image as `(H, W, 3)` uint8 RGB (grey replicated, alpha dropped, palettes applied)."""
    with Image.open(path) as image:
        if image.mode not in EIGHT_BIT_MODES:
            raise InputError(f"{path} is a {image.mode} image; these pairs and tiles must be 8-bit images.")
        return np.asarray(image.convert("RGB"))


def read_binary(path: Path) -> np.ndarray:
    """A 0/255 mask as `(H, W)` uint8 0/1."""
    with Image.open(path) as image:
        return (np.asarray(image.convert("L")) > 127).astype(np.uint8)


def write_gif_atomic(path: Path, frames: list[np.ndarray], seconds_per_frame: float = 0.8) -> None:
    """(H, W, 3) uint8 frames as a looping animated GIF (Pillow; one adaptive palette per frame)."""
    from ..atomic import atomic_path

    if not frames:
        raise ValueError("an animation needs at least one frame")
    images = [Image.fromarray(frame).quantize(256, method=Image.Quantize.MEDIANCUT) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(seconds_per_frame * 1000),
            loop=0,
            disposal=1,
        )
