"""Land-cover change in QGIS: the "Synthesize land-cover change" Processing algorithm and the dock's Land cover
tab, on a real 64² crop of a CC0 Dubai MBRSC image and its label map (the `dubai_crop` fixture of the core tests)."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import QgsProcessingException, QgsProject, QgsRasterLayer
from test_landcover import dubai_crop  # noqa: F401 (a fixture)
from test_processing import RecordingFeedback, provider  # noqa: F401 (a fixture)

from core.events.classes import LANDCOVER_SOURCES, PROJECT_CLASSES
from core.synthesis.landcover import FROM_TO_BASE, landcover_outputs

BUILDING, BARELAND = PROJECT_CLASSES.index("building"), PROJECT_CLASSES.index("bareland")


def _read(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.crs, dataset.transform


def _parameters(dubai_crop, out, **extra):  # noqa: F811 (the fixture's value)
    image_path, labels_path, *_ = dubai_crop
    return {
        "INPUT": str(image_path),
        "LANDCOVER": str(labels_path),
        "SOURCE": LANDCOVER_SOURCES.index("dubai_mbrsc"),
        "CHANGE_CLASS": "building:bareland",
        "TRANSITION": 0.0,
        "STEPS": 1,
        "SEED": 3,
        "DEVICE": 1,  # cpu
        "OUTPUT": str(out),
    } | extra


# ------------------------------------------------------------------------------------------------ Processing
def test_landcover_through_processing_run(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing

    image_path, labels_path, image, labels, transform = dubai_crop
    before = [path.read_bytes() for path in (image_path, labels_path)]
    feedback = RecordingFeedback()
    out = tmp_path / "out"
    results = processing.run("changen:landcover", _parameters(dubai_crop, out), feedback=feedback)
    assert [path.read_bytes() for path in (image_path, labels_path)] == before  # nothing written over inputs
    assert sorted(p.name for p in out.iterdir()) == sorted(landcover_outputs(1))
    assert feedback.progress_values[-1] == 100
    assert results["REGIONS"] >= 1 and Path(results["EVENT_LOG"]).is_file()
    post, crs, post_transform = _read(results["POST_IMAGE"])
    assert crs.to_epsg() == 32640 and post_transform == transform and post.shape == (3, 64, 64)
    from_to = _read(results["FROM_TO"])[0][0]
    is_building = labels == 1  # Dubai's building value
    assert (from_to[is_building] == BUILDING * FROM_TO_BASE + BARELAND).all() and not from_to[
        ~is_building
    ].any()
    assert (np.moveaxis(post, 0, -1)[is_building] != image[is_building]).any()


def test_landcover_results_load_as_named_styled_layers(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing
    from qgis.core import QgsPalettedRasterRenderer

    project = QgsProject.instance()
    before = set(project.mapLayers())
    processing.runAndLoadResults("changen:landcover", _parameters(dubai_crop, tmp_path / "out", STEPS=2))
    loaded = [layer for key, layer in project.mapLayers().items() if key not in before]
    try:
        by_file = {Path(layer.source()).name: layer for layer in loaded}
        assert sorted(by_file) == [
            "fromto_t0_t2.tif",
            "image_t2.tif",
            "mask_t0.tif",
            "mask_t1.tif",
            "mask_t2.tif",
        ]
        assert all(isinstance(layer, QgsRasterLayer) for layer in loaded)
        assert by_file["image_t2.tif"].name().startswith("Changen land-cover post-event (")
        assert by_file["fromto_t0_t2.tif"].name().startswith("Changen from→to (")
        classes = by_file["mask_t0.tif"].renderer()
        assert isinstance(classes, QgsPalettedRasterRenderer)  # core's .qml
        assert [item.label for item in classes.classes()] == list(PROJECT_CLASSES)
        assert (tmp_path / "out" / "animation.gif").is_file()
    finally:
        project.removeMapLayers([layer.id() for layer in loaded])


def test_landcover_cancel_writes_nothing(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing

    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException):
        processing.run(
            "changen:landcover", _parameters(dubai_crop, out), feedback=RecordingFeedback(cancel_after=0)
        )
    assert not out.exists() or not any(out.iterdir())


def test_landcover_unknown_class_values_ask_for_the_mapping(provider, dubai_crop, tmp_path):  # noqa: F811
    import processing

    partial = tmp_path / "map.json"
    partial.write_text(json.dumps({"0": "unlabeled", "1": "building"}))
    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException, match=r"class values \[2, 3\].*class mapping JSON"):
        processing.run("changen:landcover", _parameters(dubai_crop, out, CLASS_MAP=str(partial)))
    with pytest.raises(QgsProcessingException, match="a class change is FROM:TO"):
        processing.run("changen:landcover", _parameters(dubai_crop, out, CHANGE_CLASS="building"))
    assert not out.exists() or not any(out.iterdir())
