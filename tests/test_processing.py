"""The Changen Processing provider: each algorithm through `processing.run` and through `qgis_process`."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback
from qgis_process_runner import qgis_process, qgis_process_env, run_algorithm
from rasterio.windows import Window

JOPLIN_CHIP = Path("georef", "joplin", "chips", "pre", "0_pre.tif")
JOPLIN_FOOTPRINTS = Path("georef", "joplin", "footprints_2020.geojson")  # EPSG:4326; the chip is EPSG:32615


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps every progress value; cancels itself once progress passes `cancel_after` percent."""

    def __init__(self, cancel_after: float | None = None):
        super().__init__()
        self.progress_values = []
        self.cancel_after = cancel_after

    def setProgress(self, progress):  # noqa: N802 (QGIS's name)
        self.progress_values.append(progress)
        super().setProgress(progress)
        if self.cancel_after is not None and progress >= self.cancel_after:
            self.cancel()


@pytest.fixture(scope="module")
def provider(qgis_processing):
    import changen

    plugin = changen.classFactory(None)
    plugin.initProcessing()
    yield QgsApplication.processingRegistry().providerById("changen")
    plugin.unload()


@pytest.fixture(scope="module")
def joplin_crop(shared_data, tmp_path_factory) -> Path:
    """A 384² crop of a real Joplin pre-event chip (EPSG:32615, dense houses), written to a temporary GeoTIFF."""
    target = tmp_path_factory.mktemp("joplin") / "joplin_pre_crop.tif"
    with rasterio.open(shared_data / JOPLIN_CHIP) as source:
        window = Window(512, 256, 384, 384)
        profile = source.profile | {
            "width": 384,
            "height": 384,
            "transform": source.window_transform(window),
            "tiled": False,
        }
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        with rasterio.open(target, "w", **profile) as sink:
            sink.write(source.read(window=window))
    return target


def _read(path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.profile


def test_provider_offers_the_algorithms_with_typed_parameters(provider):
    assert provider is not None
    ids = {algorithm.id() for algorithm in provider.algorithms()}
    assert "changen:synthesize" in ids
    synthesize = QgsApplication.processingRegistry().algorithmById("changen:synthesize")
    types = {parameter.name(): parameter.type() for parameter in synthesize.parameterDefinitions()}
    assert types["INPUT"] == "raster"
    assert types["BUILDINGS"] == "layer"
    assert types["OUTPUT"] == "folderDestination"
    assert types["METHOD"] == "enum" and types["STEPS"] == "number"


def test_synthesize_through_processing_run(provider, joplin_crop, shared_data, tmp_path):
    import processing

    feedback = RecordingFeedback()
    results = processing.run(
        "changen:synthesize",
        {
            "INPUT": str(joplin_crop),
            "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),
            "METHOD": 2,  # inpainting: removals only
            "STEPS": 2,
            "REMOVE": 2,
            "CREATE": 0,
            "SEED": 7,
            "OUTPUT": str(tmp_path / "out"),
        },
        feedback=feedback,
    )
    assert results["REMOVED"] == 4 and results["CREATED"] == 0
    assert feedback.progress_values[-1] == 100
    assert feedback.progress_values == sorted(feedback.progress_values)

    source, source_profile = _read(joplin_crop)
    post, post_profile = _read(results["POST_IMAGE"])
    change, _ = _read(results["CHANGE"])
    assert post_profile["crs"] == source_profile["crs"]
    assert post_profile["transform"] == source_profile["transform"]
    assert post.shape == source.shape
    changed = change[0] > 0
    assert changed.sum() > 100, "two removed houses leave a visible change mask"
    difference = np.abs(post.astype(int) - source.astype(int))
    assert difference[:, changed].mean() > 5 * difference[:, ~changed].mean()
    log = json.loads(Path(results["EVENT_LOG"]).read_text())
    assert log["method"] == "inpainting"
    assert sorted(p.name for p in (tmp_path / "out").glob("change_t*.tif")) == [
        "change_t1.tif",
        "change_t2.tif",
    ]


def test_synthesize_same_seed_same_result(provider, joplin_crop, shared_data, tmp_path):
    import processing

    parameters = {
        "INPUT": str(joplin_crop),
        "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),
        "METHOD": 1,  # copy-paste: creations only
        "REMOVE": 0,
        "CREATE": 2,
        "SEED": 11,
    }
    first = processing.run("changen:synthesize", parameters | {"OUTPUT": str(tmp_path / "a")})
    second = processing.run("changen:synthesize", parameters | {"OUTPUT": str(tmp_path / "b")})
    assert first["CREATED"] == 2
    assert np.array_equal(_read(first["POST_IMAGE"])[0], _read(second["POST_IMAGE"])[0])
    assert not np.array_equal(_read(first["POST_IMAGE"])[0], _read(joplin_crop)[0])


def test_synthesize_cancel_writes_nothing(provider, joplin_crop, shared_data, tmp_path):
    import processing

    feedback = RecordingFeedback(cancel_after=0)
    with pytest.raises(QgsProcessingException):
        processing.run(
            "changen:synthesize",
            {
                "INPUT": str(joplin_crop),
                "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),
                "METHOD": 2,
                "STEPS": 3,
                "OUTPUT": str(tmp_path / "out"),
            },
            feedback=feedback,
        )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_synthesize_explains_buildings_off_the_image(provider, joplin_crop, shared_data, tmp_path):
    import processing

    with pytest.raises(QgsProcessingException, match="No building polygon"):
        processing.run(
            "changen:synthesize",
            {
                "INPUT": str(shared_data / "georef" / "levir_dev" / "test_2_0000_0000_A.tif"),  # Texas
                "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),  # Missouri
                "METHOD": 2,
                "OUTPUT": str(tmp_path / "out"),
            },
        )


@pytest.fixture(scope="module")
def qgis_process_with_plugin(tmp_path_factory):
    """A qgis_process environment with a fresh config dir and this repository enabled as plugin `changen`."""
    plugin_link_parent = next(p for p in map(Path, sys.path) if (p / "changen").is_symlink())
    env = qgis_process_env(tmp_path_factory.mktemp("qgis-config"), plugin_link_parent)
    qgis_process(env, "plugins", "enable", "changen")
    return env


def test_synthesize_through_qgis_process(qgis_process_with_plugin, joplin_crop, shared_data, tmp_path):
    results = run_algorithm(
        qgis_process_with_plugin,
        "changen:synthesize",
        INPUT=joplin_crop,
        BUILDINGS=shared_data / JOPLIN_FOOTPRINTS,
        METHOD=1,
        REMOVE=0,
        CREATE=3,
        SEED=5,
        OUTPUT=tmp_path / "out",
    )
    assert results["CREATED"] == 3
    post, post_profile = _read(results["POST_IMAGE"])
    source, source_profile = _read(joplin_crop)
    assert (
        post_profile["crs"] == source_profile["crs"]
        and post_profile["transform"] == source_profile["transform"]
    )
    changed = _read(results["CHANGE"])[0][0] > 0
    assert changed.any()
    assert np.array_equal(post[:, ~changed], source[:, ~changed])
