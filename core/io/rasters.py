"""Raster input/output: grids, windowed reading, atomic GeoTIFF writing and explicit grid alignment.

Images travel as `(H, W, C)` arrays in their stored integer type (uint8 or uint16) together with a `RasterGrid`
(CRS as WKT, affine transform, size, nodata). PNG/JPEG files have no CRS and an identity transform.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import affine
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.transform import array_bounds
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from ..atomic import default_mode
from ..errors import InputError
from ..guards import band_choice_error, note_written

SUPPORTED_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
STRETCH_PERCENTILES = (2.0, 98.0)
_STRETCH_SAMPLE_SIDE = 1024


@dataclass(frozen=True)
class RasterGrid:
    """Where a raster's pixels are: CRS (WKT, None for plain images), pixel → map transform, size, nodata."""

    crs_wkt: str | None
    transform: affine.Affine
    width: int
    height: int
    nodata: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map units."""
        west, south, east, north = array_bounds(self.height, self.width, self.transform)
        return (west, south, east, north)

    @property
    def crs(self) -> CRS | None:
        return CRS.from_wkt(self.crs_wkt) if self.crs_wkt else None

    def window_grid(self, window: Window) -> RasterGrid:
        """The grid of a window of this raster (same CRS and pixel size, shifted origin)."""
        return RasterGrid(
            crs_wkt=self.crs_wkt,
            transform=window_transform(window, self.transform),
            width=int(window.width),
            height=int(window.height),
            nodata=self.nodata,
        )

    def same_grid(self, other: RasterGrid, tol: float = 1e-6) -> bool:
        """Same CRS, size and transform; `tol` is in pixels (offsets) and relative units (pixel size)."""
        if self.shape != other.shape:
            return False
        if (self.crs_wkt is None) != (other.crs_wkt is None):
            return False
        if self.crs_wkt is not None and self.crs != other.crs:
            return False
        a, b = self.transform, other.transform
        pixel = max(abs(a.a), abs(a.e), abs(a.b), abs(a.d), 1e-300)
        linear = (a.a, a.b, a.d, a.e)
        other_linear = (b.a, b.b, b.d, b.e)
        if any(abs(x - y) > tol * pixel for x, y in zip(linear, other_linear, strict=True)):
            return False
        return abs(a.c - b.c) <= tol * pixel and abs(a.f - b.f) <= tol * pixel


@dataclass
class RasterData:
    """Pixels `(H, W, C)` in the stored type, their grid, and `valid` `(H, W)` bool (False at nodata/outside)."""

    array: np.ndarray
    grid: RasterGrid
    valid: np.ndarray


def open_raster(path: str | os.PathLike):
    """A rasterio dataset, with an `InputError` that says the fix for missing, unsupported or broken files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"Raster file not found: {path}. Check the path.")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a raster file: pass a GeoTIFF, PNG or JPEG file.")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InputError(
            f"Unsupported raster format '{path.suffix}' for {path}: use a GeoTIFF (.tif), PNG or JPEG file "
            "(convert others with `gdal_translate -of GTiff`)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except RasterioIOError as error:
        raise InputError(
            f"Could not read {path} as a raster ({error}); is the file complete and valid?"
        ) from None


def _grid_of(dataset) -> RasterGrid:
    crs = dataset.crs
    nodata = dataset.nodata
    return RasterGrid(
        crs_wkt=crs.to_wkt() if crs else None,
        transform=dataset.transform,
        width=dataset.width,
        height=dataset.height,
        nodata=None if nodata is None else float(nodata),
    )


def raster_grid(path: str | os.PathLike) -> RasterGrid:
    with open_raster(path) as dataset:
        return _grid_of(dataset)


def _band_indexes(dataset, bands) -> list[int]:
    """1-based band indexes; default: the first three bands, or band 1 three times for a single-band raster."""
    if bands is None and dataset.count == 2:
        raise band_choice_error(dataset.name, dataset.count)
    if bands is None:
        return (
            [1, 2, 3]
            if dataset.count >= 3
            else [1] * 3
            if dataset.count == 1
            else list(range(1, dataset.count + 1))
        )
    indexes = [int(band) for band in bands]
    for band in indexes:
        if not 1 <= band <= dataset.count:
            raise InputError(
                f"Band {band} does not exist in {dataset.name}, which has {dataset.count} band(s): "
                f"choose band numbers between 1 and {dataset.count}."
            )
    return indexes


def _clip_window(window: Window | None, height: int, width: int) -> tuple[Window, tuple[slice, slice]]:
    """The part of `window` inside the raster, and where that part lands in an array of the window's size."""
    if window is None:
        return Window(0, 0, width, height), (slice(0, height), slice(0, width))
    row0, col0 = int(window.row_off), int(window.col_off)
    rows, cols = int(window.height), int(window.width)
    top, left = max(row0, 0), max(col0, 0)
    bottom, right = min(row0 + rows, height), min(col0 + cols, width)
    if bottom <= top or right <= left:
        return Window(0, 0, 0, 0), (slice(0, 0), slice(0, 0))
    inside = Window(left, top, right - left, bottom - top)
    return inside, (slice(top - row0, bottom - row0), slice(left - col0, right - col0))


def read_raster(
    path: str | os.PathLike, bands: list[int] | None = None, window: Window | None = None
) -> RasterData:
    """Read bands (1-based; e.g. `[1, 1, 1]` makes a 1-band raster 3-channel) of a window (may reach outside
    the raster: outside pixels are 0 and not valid). The array keeps the stored data type."""
    with open_raster(path) as dataset:
        indexes = _band_indexes(dataset, bands)
        grid = _grid_of(dataset)
        out_window = window or Window(0, 0, dataset.width, dataset.height)
        rows, cols = int(out_window.height), int(out_window.width)
        array = np.zeros((rows, cols, len(indexes)), dtype=dataset.dtypes[indexes[0] - 1])
        valid = np.zeros((rows, cols), dtype=bool)
        inside, (row_slice, col_slice) = _clip_window(window, dataset.height, dataset.width)
        if inside.width > 0:
            unique = sorted(set(indexes))
            pixels = dataset.read(unique, window=inside)
            for channel, band in enumerate(indexes):
                array[row_slice, col_slice, channel] = pixels[unique.index(band)]
            valid[row_slice, col_slice] = _valid_mask(dataset, unique, pixels, inside)
    return RasterData(array=array, grid=grid.window_grid(out_window), valid=valid)


def _valid_mask(dataset, indexes: list[int], pixels: np.ndarray, window: Window) -> np.ndarray:
    """Invalid where every read band equals nodata, or where GDAL's per-dataset mask (alpha, .msk) says so."""
    valid = np.ones(pixels.shape[1:], dtype=bool)
    if dataset.nodata is not None:
        valid &= ~np.all(pixels == dataset.nodata, axis=0)
    elif any(flag.name == "per_dataset" or flag.name == "alpha" for flag in dataset.mask_flag_enums[0]):
        valid &= dataset.dataset_mask(window=window) > 0
    return valid


def read_mask(path: str | os.PathLike, window: Window | None = None) -> tuple[np.ndarray, RasterGrid]:
    """Band 1 of a mask/label raster as `(H, W)` uint8 with the stored values (e.g. 0/255 or class ids)."""
    data = read_raster(path, bands=[1], window=window)
    values = data.array[..., 0]
    if values.dtype != np.uint8:
        if (
            not np.issubdtype(values.dtype, np.integer)
            or values.min(initial=0) < 0
            or values.max(initial=0) > 255
        ):
            raise InputError(
                f"{path} is not a mask: expected integer values 0–255 in band 1 (e.g. 0/255 building masks), "
                f"found {values.dtype} in [{values.min()}, {values.max()}]."
            )
        values = values.astype(np.uint8)
    return values, data.grid


class GeoTiffWriter:
    """Window-by-window GeoTIFF writing into a temporary file that replaces `path` only on success.

    Use as a context manager; `write(array, window)` takes `(h, w)` or `(h, w, C)` blocks."""

    def __init__(
        self,
        path,
        grid: RasterGrid,
        count: int,
        dtype,
        nodata: float | None = None,
        colormap: dict | None = None,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, self._tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        os.close(handle)
        dtype = np.uint8 if np.dtype(dtype) == np.bool_ else dtype  # GeoTIFF has no boolean type
        tiled = grid.width >= 256 and grid.height >= 256
        profile = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": count,
            "dtype": np.dtype(dtype).name,
            "transform": grid.transform,
            "compress": "deflate",
            "tiled": tiled,
            "BIGTIFF": "IF_SAFER",
        }
        if tiled:
            profile.update(blockxsize=256, blockysize=256)
        if grid.crs_wkt:
            profile["crs"] = CRS.from_wkt(grid.crs_wkt)
        if nodata is not None:
            profile["nodata"] = nodata
        self._dtype = np.dtype(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._dataset = rasterio.open(self._tmp, "w", **profile)
        if colormap:
            self._dataset.write_colormap(1, colormap)  # before any pixel: GDAL fixes the photometric tag then

    def write(self, array: np.ndarray, window: Window | None = None) -> None:
        if array.ndim == 2:
            array = array[..., None]
        self._dataset.write(np.moveaxis(array.astype(self._dtype, copy=False), -1, 0), window=window)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        self._dataset.close()
        if exc_type is None:
            os.chmod(self._tmp, default_mode())  # mkstemp makes 0600
            os.replace(self._tmp, self.path)
            note_written(self.path)
        elif os.path.exists(self._tmp):
            os.remove(self._tmp)
        return False


def write_geotiff(
    path,
    array: np.ndarray,
    grid: RasterGrid,
    nodata: float | None = None,
    dtype=None,
    colormap: dict | None = None,
) -> None:
    """Write `(H, W)` or `(H, W, C)` atomically as a deflate-compressed, tiled GeoTIFF on `grid` (CRS as WKT).

    `nodata` is written only when given (pass `grid.nodata` to keep the input's). `colormap` {value: (r, g, b)}
    gives a single-band 8-bit raster a colour table (GIS viewers show it as a paletted class map)."""
    if array.shape[:2] != grid.shape:
        raise ValueError(f"array of shape {array.shape[:2]} does not match the grid {grid.shape}")
    count = 1 if array.ndim == 2 else array.shape[2]
    with GeoTiffWriter(path, grid, count, dtype or array.dtype, nodata, colormap) as writer:
        writer.write(array)


_RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "average": Resampling.average,
}


def reproject_to_grid(
    path: str | os.PathLike, grid: RasterGrid, bands: list[int] | None = None, resampling: str = "bilinear"
) -> RasterData:
    """Resample a raster onto `grid` (e.g. T2 onto T1's grid, or onto one tile of it via `window_grid`).

    Pixels of `grid` outside the source are 0 and not valid. Refuses rasters that do not overlap `grid`."""
    if resampling not in _RESAMPLING:
        raise InputError(f"Unknown resampling '{resampling}': use one of {', '.join(_RESAMPLING)}.")
    with open_raster(path) as dataset:
        indexes = _band_indexes(dataset, bands)
        source = _grid_of(dataset)
        if (source.crs_wkt is None) != (grid.crs_wkt is None):
            raise InputError(
                f"{path} and the target grid cannot be aligned: one has a CRS and the other has none. "
                "Georeference both rasters (e.g. in QGIS with the Georeferencer) or use two plain images of the "
                "same size."
            )
        if source.crs_wkt is None:
            if source.shape != grid.shape:
                raise InputError(
                    f"{path} ({source.width}×{source.height}) has no georeferencing and a different size from the "
                    f"target ({grid.width}×{grid.height}): resize it to the same size or georeference both."
                )
            return read_raster(path, bands=indexes)
        _check_overlap(path, source, grid)
        unique = sorted(set(indexes))
        stacked = np.zeros((len(unique), grid.height, grid.width), dtype=dataset.dtypes[unique[0] - 1])
        source_nodata = dataset.nodata if dataset.nodata is not None else 0
        for position, band in enumerate(unique):
            reproject(
                rasterio.band(dataset, band),
                stacked[position],
                src_nodata=source_nodata,
                dst_transform=grid.transform,
                dst_crs=grid.crs,
                dst_nodata=source_nodata,
                resampling=_RESAMPLING[resampling],
            )
        coverage = np.zeros(grid.shape, dtype=np.uint8)
        reproject(
            dataset.dataset_mask(),
            coverage,
            src_transform=dataset.transform,
            src_crs=dataset.crs,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=0,
            resampling=Resampling.nearest,
        )
    array = np.stack([stacked[unique.index(band)] for band in indexes], axis=-1)
    return RasterData(array=array, grid=grid, valid=coverage > 0)


def _check_overlap(path, source: RasterGrid, target: RasterGrid) -> None:
    left, bottom, right, top = transform_bounds(source.crs, target.crs, *source.bounds, densify_pts=21)
    t_left, t_bottom, t_right, t_top = target.bounds
    if min(right, t_right) <= max(left, t_left) or min(top, t_top) <= max(bottom, t_bottom):
        raise InputError(
            f"{path} does not overlap the target raster (its bounds in the target CRS are "
            f"{left:.6g}, {bottom:.6g}, {right:.6g}, {top:.6g}; the target covers {t_left:.6g}, {t_bottom:.6g}, "
            f"{t_right:.6g}, {t_top:.6g}). Choose rasters of the same area, or fix the CRS of the one that is "
            "wrongly georeferenced."
        )


def stretch_limits(array: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-band (2nd, 98th) percentiles over valid pixels: `(C, 2)` float."""
    pixels = array.reshape(-1, array.shape[-1]) if array.ndim == 3 else array.reshape(-1, 1)
    if valid is not None:
        pixels = pixels[valid.reshape(-1)]
    if pixels.size == 0:
        return np.tile(np.array([[0.0, 1.0]]), (array.shape[-1] if array.ndim == 3 else 1, 1))
    return np.percentile(pixels, STRETCH_PERCENTILES, axis=0).T.astype(np.float64)


def raster_stretch_limits(path: str | os.PathLike, bands: list[int] | None = None) -> np.ndarray:
    """Stretch limits of a whole raster from a decimated read (≤ 1024 px a side), so that tiles converted
    with `to_uint8(tile, limits)` share one stretch and show no seams."""
    with open_raster(path) as dataset:
        indexes = _band_indexes(dataset, bands)
        scale = max(dataset.width, dataset.height) / _STRETCH_SAMPLE_SIDE
        shape = (max(1, round(dataset.height / max(scale, 1))), max(1, round(dataset.width / max(scale, 1))))
        pixels = dataset.read(indexes, out_shape=(len(indexes), *shape), resampling=Resampling.nearest)
        valid = ~np.all(pixels == dataset.nodata, axis=0) if dataset.nodata is not None else None
    return stretch_limits(np.moveaxis(pixels, 0, -1), valid)


def to_uint8(
    array: np.ndarray, limits: np.ndarray | None = None, valid: np.ndarray | None = None
) -> np.ndarray:
    """uint8 images pass through; others (16-bit, float) are stretched per band from their 2nd–98th percentile
    (or the given `(C, 2)` limits) linearly onto 0–255 and clipped."""
    if array.dtype == np.uint8:
        return array
    if limits is None:
        limits = stretch_limits(array, valid)
    low, high = limits[:, 0], limits[:, 1]
    span = np.where(high > low, high - low, 1.0)
    scaled = (array.astype(np.float32) - low.astype(np.float32)) * (255.0 / span).astype(np.float32)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
