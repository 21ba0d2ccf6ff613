"""Writing an event series: masks, instance rasters and change masks (GeoTIFF), `events.json` and `series.png`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..atomic import write_png_atomic, write_text_atomic
from ..errors import InputError
from ..events.series import Series, series_log
from ..events.state import LabelState
from ..events.step import StepResult
from .rasters import RasterGrid, write_geotiff

REMOVED_COLOUR = (230, 40, 40)  # RGB
CREATED_COLOUR = (40, 200, 60)
TRANSITION_COLOUR = (240, 180, 30)
LEGEND_HEIGHT = 24


def instance_ids(ids, feature_ids: dict | None) -> tuple[int, ...]:
    """Ids given by a user -> instance ids: polygon inputs are addressed by their feature ids."""
    if not feature_ids:
        return tuple(int(i) for i in ids)
    instance_of = {fid: iid for iid, fid in feature_ids.items()}
    unknown = [i for i in ids if i not in instance_of]
    if unknown:
        raise InputError(
            f"no polygon with feature id {unknown} on the grid (outside the image or too small?)"
        )
    return tuple(instance_of[i] for i in ids)


class SeriesWriter:
    """Writes a series frame by frame into `out`: only the first and the latest frame stay in memory.

    Per frame `mask_tNN.tif` (a building mask as 0/255 when `binary`, else classes), `instances_tNN.tif` and
    (with `outlines`) `outlines_tNN.tif`; per step `change_tNN_tMM.tif`; at the end the change from the first to
    the last frame, `series.png` and `events.json`. Rasters are on `grid` (pixel grid when None)."""

    def __init__(self, out: Path, first: LabelState, grid: RasterGrid | None, binary: bool, outlines=False):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        if grid is None:
            from affine import Affine

            grid = RasterGrid(None, Affine.identity(), first.shape[1], first.shape[0])
        self.grid, self.binary, self.outlines = grid, binary, outlines
        self.first = self.last = first
        self.files: list[str] = []
        self.panels: list[np.ndarray] = []
        self.step_logs: list[dict] = []
        self._write_frame(first, None)

    def _save(self, name: str, array: np.ndarray, dtype) -> None:
        write_geotiff(self.out / name, array, self.grid, dtype=dtype)
        self.files.append(name)

    def _write_frame(self, frame: LabelState, step: StepResult | None) -> None:
        t = len(self.step_logs)
        semantic = frame.semantic * np.uint8(255) if self.binary else frame.semantic
        self._save(f"mask_t{t:02d}.tif", semantic, np.uint8)
        self._save(f"instances_t{t:02d}.tif", frame.instance, np.int32)
        if self.outlines:
            self._save(f"outlines_t{t:02d}.tif", frame.outlines().astype(np.uint8) * 255, np.uint8)
        self.panels.append(render_panel(frame, step, t))

    def add(self, step: StepResult) -> None:
        t = len(self.step_logs)
        self._save(f"change_t{t:02d}_t{t + 1:02d}.tif", step.change.astype(np.uint8) * 255, np.uint8)
        self.step_logs.append(step.to_dict())
        self.last = step.state
        self._write_frame(step.state, step)

    def finish(
        self, seed, settings: dict, feature_ids: dict | None = None, extra: dict | None = None
    ) -> dict:
        last = len(self.step_logs)
        changed = self.first.semantic != self.last.semantic
        if last > 1:
            self._save(f"change_t00_t{last:02d}.tif", changed.astype(np.uint8) * 255, np.uint8)
        log = series_log(self.first, seed, settings, self.step_logs)
        if last >= 1 and not self.binary:
            base = max(int(self.first.semantic.max()), int(self.last.semantic.max())) + 1
            before, after = self.first.semantic.astype(np.int32), self.last.semantic.astype(np.int32)
            self._save(
                f"semantic_change_t00_t{last:02d}.tif", np.where(changed, before * base + after, 0), np.int32
            )
            log["semantic_change_base"] = base  # code = from * base + to on changed pixels, 0 elsewhere
        write_png_atomic(self.out / "series.png", join_panels(self.panels))
        self.files.append("series.png")
        self.files.append("events.json")
        log["files"] = self.files
        if feature_ids:
            log["feature_ids"] = {str(k): v for k, v in feature_ids.items()}
        log.update(extra or {})
        write_text_atomic(self.out / "events.json", json.dumps(log, indent=1))
        return {"files": list(self.files), "log": str(self.out / "events.json")}


def write_series(
    series: Series, out: Path, grid: RasterGrid | None, outlines=False, feature_ids=None, extra=None
) -> dict:
    """Write a simulated series with `SeriesWriter` (frames, change masks, preview strip, event log)."""
    writer = SeriesWriter(out, series.frames[0], grid, series.num_classes <= 1, outlines)
    for step in series.steps:
        writer.add(step)
    return writer.finish(series.seed, series.settings, feature_ids, extra)


def render_panel(frame: LabelState, step: StepResult | None, t: int, panel: int = 256) -> np.ndarray:
    """One frame, `panel` px on its long side: objects white, the step's removals red, creations green,
    transitions amber, labelled t=..."""
    rgb = np.zeros((*frame.shape, 3), dtype=np.uint8)
    rgb[frame.semantic != 0] = (235, 235, 235)
    if step is not None:
        rgb[step.transitioned] = TRANSITION_COLOUR
        rgb[step.removed] = REMOVED_COLOUR
        rgb[step.created] = CREATED_COLOUR
    scale = panel / max(frame.shape)
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    cv2.rectangle(small, (0, 0), (44, 26), (40, 40, 40), -1)
    cv2.putText(small, f"t={t}", (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return small


def join_panels(panels: list[np.ndarray], gap: int = 4) -> np.ndarray:
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    strip = np.full((height + LEGEND_HEIGHT, width, 3), 128, dtype=np.uint8)
    col = 0
    for small in panels:
        strip[: small.shape[0], col : col + small.shape[1]] = small
        col += small.shape[1] + gap
    x = 8
    for text, colour in (("objects", (235, 235, 235)), ("removed", REMOVED_COLOUR), ("created", CREATED_COLOUR),
                         ("class transition", TRANSITION_COLOUR)):  # fmt: skip
        cv2.rectangle(strip, (x, height + 6), (x + 12, height + 18), colour, -1)
        cv2.putText(
            strip,
            text,
            (x + 18, height + 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        x += 40 + 9 * len(text)
    return strip
