"""`make demo`'s steps on the real shared data: every step of `DEMO_STEPS` runs and has its checks here
(georeferenced outputs on the input grid, a real change, real scores)."""

import json
from pathlib import Path

import numpy as np
import rasterio

from core.cli.demo import DEMO_MASK, DEMO_STEPS, JOPLIN_PRE


def _grid(path):
    with rasterio.open(path) as raster:
        return raster.crs, raster.transform, raster.shape


def _check_events(out, written, shared_data):
    names = {Path(path).name for path in written}
    assert {"mask_t00.tif", "mask_t05.tif", "change_t00_t05.tif", "events.json", "series.png"} <= names
    assert _grid(out / "events" / "mask_t05.tif") == _grid(shared_data / DEMO_MASK)
    log = json.loads((out / "events" / "events.json").read_text())
    kinds = {event["kind"] for step in log["steps"] for event in step["events"]}
    assert len(log["steps"]) == 5 and {"remove", "create"} <= kinds


def _check_synthesize(out, written, shared_data):
    assert {"image_t0.tif", "image_t2.tif", "change_t2.tif", "events.json", "preview.png"} <= {
        Path(path).name for path in written
    }
    assert _grid(out / "synthesize" / "image_t2.tif") == _grid(shared_data / JOPLIN_PRE)
    with rasterio.open(out / "synthesize" / "change_t1.tif") as change:
        assert change.read(1).any(), "the first step changed nothing"


def _check_rsdit(out, written, shared_data):
    folder = out / "synthesize_rsdit"
    assert _grid(folder / "image_t1.tif") == _grid(shared_data / JOPLIN_PRE) and len(written) >= 5
    with rasterio.open(folder / "change_t1.tif") as change:
        changed = change.read(1) > 0
    with rasterio.open(folder / "image_t0.tif") as before, rasterio.open(folder / "image_t1.tif") as after:
        difference = np.abs(after.read().astype(int) - before.read()).sum(axis=0)
    assert changed.any() and difference[changed].mean() > 5 * max(difference[~changed].mean(), 0.01)


def _check_detect(out, written, shared_data):
    source = _grid(shared_data / JOPLIN_PRE)
    assert _grid(written[0]) == source and _grid(written[1]) == source


def _check_evaluate(out, written, shared_data):
    (table_path,) = written
    table = Path(table_path).read_text()
    assert "ChangeStar" in table and "CVA + Otsu" in table and "PCA-KMeans" in table


CHECKS = {
    "events_step": _check_events,
    "synthesize_step": _check_synthesize,
    "rsdit_step": _check_rsdit,
    "detect_step": _check_detect,
    "evaluate_step": _check_evaluate,
}


def test_demo_runs_every_part(shared_data, tmp_path):
    assert {step.__name__ for step in DEMO_STEPS} == set(CHECKS), "a demo step without checks here"
    for step in DEMO_STEPS:
        CHECKS[step.__name__](tmp_path, step(tmp_path), shared_data)
