"""`make demo`'s steps on the real shared data: georeferenced outputs on the input grid, real scores."""

from pathlib import Path

import numpy as np
import rasterio

from core.cli.demo import JOPLIN_PRE, detect_step, evaluate_step, rsdit_step, synthesize_step


def _grid(path):
    with rasterio.open(path) as raster:
        return raster.crs, raster.transform, raster.shape


def test_demo_runs_every_part(shared_data, tmp_path):
    source = _grid(shared_data / JOPLIN_PRE)

    synthesized = synthesize_step(tmp_path)
    assert {"image_t0.tif", "image_t2.tif", "change_t2.tif", "events.json", "preview.png"} <= {
        path.rsplit("/", 1)[-1] for path in synthesized
    }
    assert _grid(tmp_path / "synthesize" / "image_t2.tif") == source
    with rasterio.open(tmp_path / "synthesize" / "change_t1.tif") as change:
        assert change.read(1).any(), "the first step changed nothing"

    rsdit = rsdit_step(tmp_path)
    assert _grid(tmp_path / "synthesize_rsdit" / "image_t1.tif") == source and len(rsdit) >= 5
    with rasterio.open(tmp_path / "synthesize_rsdit" / "change_t1.tif") as change:
        changed = change.read(1) > 0
    folder = tmp_path / "synthesize_rsdit"
    with rasterio.open(folder / "image_t0.tif") as before, rasterio.open(folder / "image_t1.tif") as after:
        difference = np.abs(after.read().astype(int) - before.read()).sum(axis=0)
    assert changed.any() and difference[changed].mean() > 5 * max(difference[~changed].mean(), 0.01)

    detected = detect_step(tmp_path)
    assert _grid(detected[0]) == source and _grid(detected[1]) == source

    (table_path,) = evaluate_step(tmp_path)
    table = Path(table_path).read_text()
    assert "ChangeStar" in table and "CVA + Otsu" in table and "PCA-KMeans" in table
