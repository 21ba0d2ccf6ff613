"""`make demo`'s steps on the real shared data: georeferenced outputs on the input grid, real scores."""

from pathlib import Path

import rasterio

from core.cli.demo import DEMO_STEPS, JOPLIN_PRE, detect_step, evaluate_step, synthesize_step


def _grid(path):
    with rasterio.open(path) as raster:
        return raster.crs, raster.transform, raster.shape


def test_demo_runs_every_part(shared_data, tmp_path):
    assert DEMO_STEPS[1:] == [synthesize_step, detect_step, evaluate_step]
    source = _grid(shared_data / JOPLIN_PRE)

    synthesized = synthesize_step(tmp_path)
    assert {"image_t0.tif", "image_t2.tif", "change_t2.tif", "events.json", "preview.png"} <= {
        path.rsplit("/", 1)[-1] for path in synthesized
    }
    assert _grid(tmp_path / "synthesize" / "image_t2.tif") == source
    with rasterio.open(tmp_path / "synthesize" / "change_t1.tif") as change:
        assert change.read(1).any(), "the first step changed nothing"

    detected = detect_step(tmp_path)
    assert _grid(detected[0]) == source and _grid(detected[1]) == source

    (table_path,) = evaluate_step(tmp_path)
    table = Path(table_path).read_text()
    assert "ChangeStar" in table and "CVA + Otsu" in table and "PCA-KMeans" in table
