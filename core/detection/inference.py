"""ChangeStar change detection on arrays and on rasters of any size (`python -m core detect`).

Tiled windowed inference: each tile is read with context around its owned centre (`core.tiling.TileGrid`), one tile
ahead in a reader thread (T2 only where T1 has data), run through the model, and only the owned centre is written,
so there are no seams and memory does not grow with the raster. T2 is read on T1's grid; when the grids differ it is resampled onto T1's grid tile by tile (and the result
says so). Outputs: a uint8 mask (1 = change, 0 = no change, 255 = no data in either date) on T1's grid, optional
float32 probabilities, optional polygons with their area in a GeoPackage.

torch and the model code are imported when a model first runs: bad input is reported before that (see
`core/__main__.py`: a command's errors come in well under a second).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from rasterio.warp import transform_bounds

from ..device import describe_device, keep_freed_memory, pick_device, use_bf16
from ..errors import Canceled, InputError
from ..guards import check_outputs
from ..io.rasters import (
    GeoTiffWriter,
    RasterGrid,
    raster_grid,
    raster_stretch_limits,
    read_raster,
    reproject_to_grid,
    to_uint8,
)
from ..io.tiling import TileGrid, pad_to_multiple
from ..io.vectors import mask_polygons, write_gpkg
from ..paths import DEFAULT_DETECTOR
from . import DEFAULT_OVERLAP, DEFAULT_TILE

if TYPE_CHECKING:
    import torch

    from .changestar import ChangeStar
    from .loading import LoadedDetector

MASK_NODATA = 255
PROBABILITY_NODATA = -1.0
GDAL_CACHE_MB = 256


@dataclass
class DetectionResult:
    change_path: Path
    probability_path: Path | None
    vector_path: Path | None
    grid: RasterGrid
    threshold: float
    changed_pixels: int
    changed_area: float  # in squared map units (pixels for plain images)
    changed_area_m2: float | None  # ellipsoidal m² (None without a CRS): the polygons' areas, or the mask's
    polygons: int
    tiles: int
    skipped_tiles: int
    t2_resampled: bool
    device: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def predict_tile(
    model: ChangeStar, t1: np.ndarray, t2: np.ndarray, device: torch.device, bf16: bool
) -> np.ndarray:
    """Change probability `(H, W)` float32 for two uint8 `(H, W, 3)` images (padded to multiples of 32 inside)."""
    import torch

    pair, (height, width) = pad_to_multiple(np.concatenate([t1, t2], axis=2), 32)
    tensor = torch.from_numpy(np.ascontiguousarray(pair.transpose(2, 0, 1))[None].astype(np.float32)).to(
        device
    )
    if device.type == "cpu":
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        probability = model(tensor).change_probability
    return probability[0, 0, :height, :width].float().cpu().numpy()


def predict_array(
    model: ChangeStar,
    t1: np.ndarray,
    t2: np.ndarray,
    device: torch.device,
    bf16: bool = False,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> np.ndarray:
    """The same tiled prediction for images already in memory (e.g. evaluation pairs)."""
    if t1.shape != t2.shape:
        raise InputError(
            f"The two dates differ in shape ({t1.shape} vs {t2.shape}); resample one onto the other."
        )
    probability = np.zeros(t1.shape[:2], np.float32)
    for part in TileGrid(t1.shape[0], t1.shape[1], tile, overlap):
        read = part.read_slices
        probability[part.owned_slices] = predict_tile(model, t1[read], t2[read], device, bf16)[part.crop]
    return probability


def _prepare_model(model, device: torch.device) -> tuple[ChangeStar, float]:
    """A ChangeStar module (threshold 0.5), an already loaded detector (its threshold), or a name/path to load."""
    from .changestar import ChangeStar
    from .loading import LoadedDetector, load_detector

    if device.type == "cpu":
        keep_freed_memory()
    if isinstance(model, ChangeStar):
        return model.to(device).eval(), 0.5
    loaded = model if isinstance(model, LoadedDetector) else load_detector(model, device)
    return loaded.model.to(device).eval(), loaded.threshold


def _footprint_in(grid: RasterGrid, other: RasterGrid) -> tuple[float, float, float, float]:
    """`other`'s bounds in `grid`'s CRS."""
    return transform_bounds(other.crs, grid.crs, *other.bounds, densify_pts=21)


def _intersects(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _parse_bands(bands) -> list[int] | None:
    if bands is None or bands == "":
        return None
    if isinstance(bands, str):
        try:
            return [int(band) for band in bands.split(",")]
        except ValueError:
            raise InputError(f"--bands '{bands}' is not a list of band numbers such as 1,2,3.") from None
    return [int(band) for band in bands]


class _Aligned:
    """Reads T2 windows on T1's grid: directly when the grids match, by per-tile resampling otherwise."""

    def __init__(self, t1_path, t2_path, bands1, bands2):
        self.t2_path = t2_path
        self.bands2 = bands2
        self.grid1 = raster_grid(t1_path)
        self.grid2 = raster_grid(t2_path)
        if (self.grid1.crs_wkt is None) != (self.grid2.crs_wkt is None):
            raise InputError(
                f"{t1_path} and {t2_path} cannot be aligned: one is georeferenced and the other is not. Georeference "
                "both, or use two plain images of the same size."
            )
        self.same_grid = self.grid1.same_grid(self.grid2)
        self.notes = []
        if self.grid1.crs_wkt is None:
            if self.grid1.shape != self.grid2.shape:
                raise InputError(
                    f"{t1_path} ({self.grid1.width}×{self.grid1.height}) and {t2_path} ({self.grid2.width}×"
                    f"{self.grid2.height}) have no georeferencing and different sizes: give two images of the same "
                    "size, or georeferenced rasters."
                )
            self.same_grid = True
        if not self.same_grid:
            self.footprint2 = _footprint_in(self.grid1, self.grid2)
            if not _intersects(self.footprint2, self.grid1.bounds):
                raise InputError(
                    f"{t2_path} does not overlap {t1_path}: their footprints are disjoint in T1's CRS. Choose two "
                    "rasters of the same area, or fix the georeferencing of the wrong one."
                )
            size1 = (abs(self.grid1.transform.a), abs(self.grid1.transform.e))
            self.notes.append(
                f"T2 is on a different grid than T1 (CRS or pixel grid differ): T2 was resampled bilinearly onto T1's "
                f"grid ({self.grid1.width}×{self.grid1.height} px of {size1[0]:.6g}×{size1[1]:.6g} map units)."
            )
        # One stretch per raster (to_uint8 passes 8-bit data through unchanged), so tiles show no seams.
        self.limits1 = raster_stretch_limits(t1_path, bands1)
        self.limits2 = raster_stretch_limits(t2_path, bands2)

    def read_t2(self, window):
        if self.same_grid:
            return read_raster(self.t2_path, bands=self.bands2, window=window)
        tile_grid = self.grid1.window_grid(window)
        if not _intersects(self.footprint2, tile_grid.bounds):
            return None
        return reproject_to_grid(self.t2_path, tile_grid, bands=self.bands2, resampling="bilinear")


@dataclass
class _TileInput:
    """One tile's pixels as the model sees them; `t1`/`t2` are None where no owned pixel has data in both dates."""

    both: np.ndarray  # (h, w) bool over the owned region
    t1: np.ndarray | None
    t2: np.ndarray | None


def _read_tile(aligned: _Aligned, t1_path, bands1, part) -> _TileInput:
    first = read_raster(t1_path, bands=bands1, window=part.read)
    valid1 = first.valid
    if not valid1[part.crop].any():  # nodata in T1's owned region: T2 is not read (nor resampled)
        return _TileInput(np.zeros(valid1[part.crop].shape, bool), None, None)
    second = aligned.read_t2(part.read)
    valid2 = second.valid if second is not None else np.zeros_like(valid1)
    both = (valid1 & valid2)[part.crop]
    if not both.any():
        return _TileInput(both, None, None)
    t1 = to_uint8(first.array, aligned.limits1)
    t2 = to_uint8(second.array, aligned.limits2)
    return _TileInput(both, *_fill_invalid(t1, t2, valid1, valid2))


def _fill_invalid(t1, t2, valid1, valid2):
    """Where only one date has data, show the model the same pixels twice (no change); no data stays 0."""
    t1 = np.where(valid1[..., None], t1, np.where(valid2[..., None], t2, 0)).astype(np.uint8)
    t2 = np.where(valid2[..., None], t2, t1).astype(np.uint8)
    return t1, t2


def detect_change(
    t1_path: str | os.PathLike,
    t2_path: str | os.PathLike,
    change_path: str | os.PathLike,
    probability_path: str | os.PathLike | None = None,
    vector_path: str | os.PathLike | None = None,
    threshold: float | None = None,
    model: str | ChangeStar | LoadedDetector = DEFAULT_DETECTOR,
    bands: list[int] | str | None = None,
    bands_t2: list[int] | str | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    progress: Callable[[float], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
) -> DetectionResult:
    started = time.time()
    model_file = model if isinstance(model, str | os.PathLike) else None
    check_outputs([t1_path, t2_path, model_file], [change_path, probability_path, vector_path])
    bands1 = _parse_bands(bands)
    bands2 = _parse_bands(bands_t2) or bands1
    for band_list in (bands1, bands2):
        if band_list is not None and len(band_list) != 3:
            raise InputError(f"Give exactly three bands (R,G,B order), e.g. --bands 3,2,1; got {band_list}.")
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise InputError(f"--threshold must be between 0 and 1 (exclusive), got {threshold}.")
    aligned = _Aligned(t1_path, t2_path, bands1, bands2)
    torch_device = pick_device(device)
    bf16 = use_bf16(precision, torch_device)
    net, model_threshold = _prepare_model(model, torch_device)
    threshold = model_threshold if threshold is None else threshold
    grid = aligned.grid1
    tiles = TileGrid(grid.height, grid.width, tile, overlap)
    change_path = Path(change_path)
    changed_pixels, skipped = 0, 0

    with ExitStack() as writers:
        # A bounded GDAL block cache keeps memory flat: the outputs are written in row order, so only about two
        # tile rows of blocks are ever being filled at once.
        writers.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
        mask_writer = writers.enter_context(GeoTiffWriter(change_path, grid, 1, np.uint8, nodata=MASK_NODATA))
        probability_writer = None
        if probability_path:
            probability_writer = writers.enter_context(
                GeoTiffWriter(probability_path, grid, 1, np.float32, nodata=PROBABILITY_NODATA)
            )
        # One reader thread reads (and resamples) the next tile while the model runs on this one; GDAL and torch
        # release the GIL, so reading costs the model almost nothing. At most two tiles are in memory.
        reader = writers.enter_context(ThreadPoolExecutor(1, thread_name_prefix="changen-tile-reader"))
        parts = list(tiles)
        pending = reader.submit(_read_tile, aligned, t1_path, bands1, parts[0])
        for done, part in enumerate(parts):
            if is_canceled is not None and is_canceled():
                raise Canceled("change detection canceled")
            tile_input = pending.result()
            if done + 1 < len(parts):
                pending = reader.submit(_read_tile, aligned, t1_path, bands1, parts[done + 1])
            both = tile_input.both
            probability = np.full(both.shape, PROBABILITY_NODATA, np.float32)
            mask = np.full(both.shape, MASK_NODATA, np.uint8)
            if tile_input.t1 is not None:
                owned = predict_tile(net, tile_input.t1, tile_input.t2, torch_device, bf16)[part.crop]
                probability = np.where(both, owned, PROBABILITY_NODATA).astype(np.float32)
                mask = np.where(both, (owned >= threshold).astype(np.uint8), MASK_NODATA).astype(np.uint8)
                changed_pixels += int(np.sum(mask == 1))
            else:
                skipped += 1
            mask_writer.write(mask, part.owned)
            if probability_writer is not None:
                probability_writer.write(probability, part.owned)
            if progress is not None:
                progress(100.0 * (done + 1) / len(tiles) * (0.9 if vector_path else 1.0))

    polygons, changed_area_m2 = 0, None
    if vector_path:
        frame = write_change_polygons(change_path, vector_path)
        polygons, changed_area_m2 = len(frame), float(frame["area_m2"].sum())
    else:
        from ..areas import mask_area_m2

        changed_area_m2 = mask_area_m2(change_path)  # ellipsoidal m²; None without a CRS
    if progress is not None:
        progress(100.0)
    pixel_area = abs(grid.transform.a * grid.transform.e - grid.transform.b * grid.transform.d)
    return DetectionResult(
        change_path=change_path,
        probability_path=Path(probability_path) if probability_path else None,
        vector_path=Path(vector_path) if vector_path else None,
        grid=grid,
        threshold=float(threshold),
        changed_pixels=changed_pixels,
        changed_area=changed_pixels * pixel_area,
        changed_area_m2=changed_area_m2,
        polygons=polygons,
        tiles=len(tiles),
        skipped_tiles=skipped,
        t2_resampled=not aligned.same_grid,
        device=describe_device(torch_device),
        seconds=time.time() - started,
        notes=aligned.notes,
    )


def write_change_polygons(mask_path: str | os.PathLike, vector_path: str | os.PathLike):
    """Polygons of the change pixels (value 1) with `area` in squared map units and `area_m2`, written
    atomically as a GeoPackage layer `changes`; returns them (a CRS-less GeoDataFrame). Safe in QgsTask threads
    (see `core.vectors`)."""
    if Path(vector_path).suffix.lower() != ".gpkg":
        raise InputError(
            f"Polygons are written as a GeoPackage: give a .gpkg path, not {Path(vector_path).name}."
        )
    frame, crs_wkt = mask_polygons(mask_path)
    write_gpkg(frame, vector_path, crs_wkt, layer="changes")
    return frame
