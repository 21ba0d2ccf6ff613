"""The Changen Processing provider: each algorithm through `processing.run` and through `qgis_process`."""

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
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


def test_enum_indexes_keep_their_meaning(provider):
    """Saved models and qgis_process calls pass enum indexes: new choices only ever go last."""
    registry = QgsApplication.processingRegistry()
    method = registry.algorithmById("changen:synthesize").parameterDefinition("METHOD")
    assert len(method.options()) == 4 and method.options()[3].startswith("Changen2")
    assert [option.split()[0] for option in method.options()[:3]] == ["Changen", "Copy-Paste", "Inpainting"]
    dataset_method = registry.algorithmById("changen:generatedataset").parameterDefinition("METHOD")
    assert [option.split()[0] for option in dataset_method.options()] == [
        "Mixed",
        "Changen",
        "Copy-Paste",
        "Inpainting",
    ]
    device = registry.algorithmById("changen:detect").parameterDefinition("DEVICE")
    assert [option.split()[0] for option in device.options()] == ["Auto", "CPU", "CUDA"]


def test_generate_dataset_offers_every_setting_like_the_command_line(provider):
    """Both are built from `Settings`' field descriptions: same options, same defaults and ranges."""
    import argparse

    from core.cli.generate_dataset import add_arguments
    from core.data.recipes import setting_options

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cli_defaults = vars(parser.parse_args(["--source", "s", "--pairs", "1", "--out", "o"]))
    algorithm = QgsApplication.processingRegistry().algorithmById("changen:generatedataset")
    assert len(setting_options()) >= 13
    for item, option in setting_options():
        assert cli_defaults[item.name] == item.default
        parameter = algorithm.parameterDefinition(item.name.upper())
        assert parameter is not None and parameter.description() == option.label
        default = parameter.defaultValue()
        if option.choices is not None:
            assert list(option.choices)[default] == item.default
        elif isinstance(item.default, tuple):
            assert tuple(float(part) for part in str(default).split(",")) == item.default
        else:
            assert default == item.default
            if option.low is not None and not isinstance(item.default, bool):
                assert parameter.minimum() == option.low
    assert "--no-jitter" in parser.format_help() and "--anywhere" in parser.format_help()


def _read(path) -> tuple[np.ndarray, rasterio.profiles.Profile]:
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.profile


def test_provider_offers_the_algorithms_with_typed_parameters(provider):
    assert provider is not None
    ids = {algorithm.id() for algorithm in provider.algorithms()}
    assert ids == {"changen:synthesize", "changen:generatedataset", "changen:detect", "changen:landcover"}
    synthesize = QgsApplication.processingRegistry().algorithmById("changen:synthesize")
    types = {parameter.name(): parameter.type() for parameter in synthesize.parameterDefinitions()}
    assert types["INPUT"] == "raster"
    assert types["BUILDINGS"] == "layer"
    assert types["OUTPUT"] == "folderDestination"
    assert types["METHOD"] == "enum" and types["STEPS"] == "number"
    assert types["UNCHANGED"] == "enum"
    assert synthesize.parameterDefinition("UNCHANGED").defaultValue() == 0  # keep


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


# ------------------------------------------------------------------------------------------------ detect changes
LEVIR_PAIR = ("georef/levir_dev/test_77_0512_0256_A.tif", "georef/levir_dev/test_77_0512_0256_B.tif")


@pytest.fixture(scope="module")
def levir_pair(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """Copies of a real LEVIR-CD pair (QGIS may write .aux.xml statistics beside the layers it opens)."""
    folder = tmp_path_factory.mktemp("levir")
    copies = tuple(folder / Path(name).name for name in LEVIR_PAIR)
    for name, copy in zip(LEVIR_PAIR, copies, strict=True):
        shutil.copyfile(shared_data / name, copy)
    return copies


@pytest.fixture(scope="module")
def small_detector(tmp_path_factory) -> Path:
    """An untrained, narrow ChangeStar saved as a model file: these tests check the adapter (grids, files,
    thresholds, polygons), not detection quality (that is tests/test_detect.py and bench/)."""
    import torch

    from core.detection.changestar import build_changestar
    from core.weights import save_weights

    torch.manual_seed(0)
    net = build_changestar(fpn_channels=32, decoder_channels=16)
    path = tmp_path_factory.mktemp("models") / "tiny_changestar.safetensors"
    save_weights(path, net.state_dict(), net.export_config(threshold=0.5))
    return path


def _feature_count(gpkg: str) -> int:
    import pyogrio

    return int(pyogrio.read_info(gpkg, layer="changes")["features"])


def test_detect_through_processing_run(provider, small_detector, levir_pair, tmp_path):
    import processing

    t1, t2 = levir_pair
    feedback = RecordingFeedback()
    results = {}
    for threshold in (0.3, 0.7):
        results[threshold] = processing.run(
            "changen:detect",
            {
                "T1": str(t1),
                "T2": str(t2),
                "MODEL": str(small_detector),
                "THRESHOLD": threshold,
                "TILE": 128,
                "OVERLAP": 16,
                "OUTPUT": str(tmp_path / f"change_{threshold}.tif"),
                "PROBABILITY": str(tmp_path / f"probability_{threshold}.tif"),
                "POLYGONS": str(tmp_path / f"changes_{threshold}.gpkg"),
            },
            feedback=feedback,
        )
    assert feedback.progress_values[-1] == 100
    low, high = results[0.3], results[0.7]
    assert low["THRESHOLD_USED"] == pytest.approx(0.3) and high["THRESHOLD_USED"] == pytest.approx(0.7)

    mask, mask_profile = _read(low["OUTPUT"])
    probability, _ = _read(low["PROBABILITY"])
    _, t1_profile = _read(t1)
    assert mask_profile["crs"] == t1_profile["crs"] and mask_profile["transform"] == t1_profile["transform"]
    assert set(np.unique(mask)) <= {0, 1, 255}
    assert low["CHANGED_PIXELS"] == int((mask == 1).sum())
    assert ((probability >= 0.3) == (mask == 1)).all()
    assert low["CHANGED_PIXELS"] >= high["CHANGED_PIXELS"]
    assert low["POLYGON_COUNT"] == _feature_count(low["POLYGONS"])


def test_detect_threshold_defaults_to_the_model(provider, small_detector, levir_pair, tmp_path):
    import processing

    t1, t2 = levir_pair
    results = processing.run(
        "changen:detect",
        {"T1": str(t1), "T2": str(t2), "MODEL": str(small_detector), "OUTPUT": str(tmp_path / "change.tif")},
    )
    assert results["THRESHOLD_USED"] == pytest.approx(0.5)
    assert "POLYGONS" not in results or not results["POLYGONS"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change.tif"]


def test_detect_cancel_leaves_no_output(provider, small_detector, levir_pair, tmp_path):
    import processing

    t1, t2 = levir_pair
    feedback = RecordingFeedback(cancel_after=0)
    with pytest.raises(QgsProcessingException, match="cancel"):
        processing.run(
            "changen:detect",
            {
                "T1": str(t1),
                "T2": str(t2),
                "MODEL": str(small_detector),
                "TILE": 128,
                "OVERLAP": 16,
                "OUTPUT": str(tmp_path / "change.tif"),
            },
            feedback=feedback,
        )
    assert list(tmp_path.iterdir()) == []


def test_detect_through_qgis_process(qgis_process_with_plugin, small_detector, levir_pair, tmp_path):
    t1, t2 = levir_pair
    results = run_algorithm(
        qgis_process_with_plugin,
        "changen:detect",
        T1=t1,
        T2=t2,
        MODEL=small_detector,
        OUTPUT=tmp_path / "change.tif",
        POLYGONS=tmp_path / "changes.gpkg",
    )
    mask, _ = _read(results["OUTPUT"])
    assert results["CHANGED_PIXELS"] == int((mask == 1).sum())
    assert results["POLYGON_COUNT"] == _feature_count(results["POLYGONS"])


# ------------------------------------------------------------------------------------ generate synthetic dataset
def _finished_pairs(out: Path) -> list[str]:
    return sorted(folder.name for folder in out.iterdir() if (folder / "meta.json").is_file())


def test_generate_dataset_through_processing_run_and_resume(provider, shared_data, tmp_path):
    import processing

    parameters = {
        "SOURCE": str(shared_data / "buildings" / "xbd_harvey"),
        "METHOD": 0,  # mixed
        "PAIRS": 3,
        "CROP": 128,
        "SEED": 4,
        "OUTPUT": str(tmp_path / "dataset"),
    }
    feedback = RecordingFeedback()
    first = processing.run("changen:generatedataset", parameters, feedback=feedback)
    assert (first["WRITTEN"], first["SKIPPED"]) == (3, 0)
    assert feedback.progress_values[-1] == 100
    out = Path(first["OUTPUT"])
    assert _finished_pairs(out) == ["000000", "000001", "000002"]
    for folder in out.glob("0000*"):
        t1, t2, change = (np.asarray(Image.open(folder / f"{name}.png")) for name in ("t1", "t2", "change"))
        assert t1.shape == t2.shape == (128, 128, 3) and change.shape == (128, 128)
    second = processing.run("changen:generatedataset", parameters)
    assert (second["WRITTEN"], second["SKIPPED"]) == (0, 3)


def test_generate_dataset_cancel_keeps_finished_pairs(provider, shared_data, tmp_path):
    import processing

    feedback = RecordingFeedback(cancel_after=1)  # cancels once the first pair is reported
    with pytest.raises(QgsProcessingException, match="resume"):
        processing.run(
            "changen:generatedataset",
            {
                "SOURCE": str(shared_data / "buildings" / "xbd_harvey"),
                "METHOD": 3,  # inpainting
                "PAIRS": 4,
                "CROP": 96,
                "OUTPUT": str(tmp_path / "dataset"),
            },
            feedback=feedback,
        )
    assert _finished_pairs(tmp_path / "dataset") == ["000000"]


def test_generate_dataset_through_qgis_process(qgis_process_with_plugin, shared_data, tmp_path):
    results = run_algorithm(
        qgis_process_with_plugin,
        "changen:generatedataset",
        SOURCE=shared_data / "buildings" / "xbd_harvey",
        METHOD=2,  # copy-paste
        PAIRS=2,
        CROP=96,
        OUTPUT=tmp_path / "dataset",
    )
    assert results["WRITTEN"] == 2
    assert _finished_pairs(tmp_path / "dataset") == ["000000", "000001"]


def test_algorithms_run_as_background_tasks_like_the_toolbox_and_batch_mode(
    provider, joplin_crop, shared_data, tmp_path
):
    """The toolbox and batch mode run algorithms in QgsProcessingAlgRunnerTask on a worker thread."""
    from qgis.core import QgsProcessingAlgRunnerTask, QgsProcessingContext, QgsTaskManager
    from qgis.PyQt.QtCore import QCoreApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("changen:synthesize")
    outcomes = []
    tasks = []
    for seed in (1, 2):  # two rows of a batch
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        parameters = {
            "INPUT": str(joplin_crop),
            "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),
            "METHOD": 1,
            "REMOVE": 0,
            "CREATE": 1,
            "SEED": seed,
            "OUTPUT": str(tmp_path / f"row{seed}"),
        }
        task = QgsProcessingAlgRunnerTask(algorithm, parameters, context, feedback)
        task.executed.connect(lambda ok, results: outcomes.append((ok, results)))
        tasks.append((task, context, feedback))
        QgsApplication.taskManager().addTask(task)
    manager: QgsTaskManager = QgsApplication.taskManager()
    for _ in range(600):
        QCoreApplication.processEvents()
        if len(outcomes) == 2 and manager.countActiveTasks() == 0:
            break
        time.sleep(0.1)
    assert [ok for ok, _ in outcomes] == [True, True]
    assert {Path(results["OUTPUT"]).name for _, results in outcomes} == {"row1", "row2"}
    assert all(results["CREATED"] == 1 for _, results in outcomes)


def test_detect_results_load_styled(provider, small_detector, levir_pair, tmp_path):
    """As from the toolbox: results load into the project, probabilities and polygons styled."""
    import processing
    from qgis.core import QgsProject, QgsSingleBandPseudoColorRenderer

    t1, t2 = levir_pair
    project = QgsProject.instance()
    before = set(project.mapLayers())
    processing.runAndLoadResults(
        "changen:detect",
        {
            "T1": str(t1),
            "T2": str(t2),
            "MODEL": str(small_detector),
            "THRESHOLD": 0.3,
            "OUTPUT": str(tmp_path / "change.tif"),
            "PROBABILITY": str(tmp_path / "probability.tif"),
            "POLYGONS": str(tmp_path / "changes.gpkg"),
        },
    )
    loaded = {
        Path(layer.source().split("|")[0]).name: layer
        for key, layer in project.mapLayers().items()
        if key not in before
    }
    try:
        assert {"change.tif", "probability.tif", "changes.gpkg"} <= set(loaded)
        assert isinstance(loaded["probability.tif"].renderer(), QgsSingleBandPseudoColorRenderer)
        outline = loaded["changes.gpkg"].renderer().symbol().symbolLayer(0)
        assert outline.strokeColor().name() == "#e31a1c"
    finally:
        project.removeMapLayers([layer.id() for layer in loaded.values()])


def test_synthesize_with_the_shipped_generator(provider, joplin_crop, shared_data, tmp_path):
    """The default method: the shipped Changen generator, on the 384² crop, one step; by default the image
    stays as it was away from the change, with UNCHANGED = regenerate the generator redraws all of it."""
    import processing
    from scipy import ndimage

    from changen.core.synthesis.compositing import KEEP_DILATION, KEEP_FEATHER

    parameters = {
        "INPUT": str(joplin_crop),
        "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),
        "REMOVE": 2,
        "CREATE": 1,
        "SEED": 3,
        "DEVICE": 1,  # CPU
    }
    results = processing.run("changen:synthesize", parameters | {"OUTPUT": str(tmp_path / "out")})
    log = json.loads(Path(results["EVENT_LOG"]).read_text())
    assert log["method"] == "changen" and log["device"].startswith("CPU") and log["unchanged"] == "keep"
    source, source_profile = _read(joplin_crop)
    post, post_profile = _read(results["POST_IMAGE"])
    assert post.shape == source.shape and post_profile["transform"] == source_profile["transform"]
    changed = _read(results["CHANGE"])[0][0] > 0
    assert results["REMOVED"] == 2 and changed.any()
    difference = np.abs(post.astype(int) - source.astype(int)).mean(axis=0)
    assert difference[changed].mean() > 5
    away = ndimage.distance_transform_edt(~changed) >= KEEP_DILATION + KEEP_FEATHER
    assert (difference[away] == 0).all()

    regenerated = processing.run(
        "changen:synthesize", parameters | {"UNCHANGED": 1, "OUTPUT": str(tmp_path / "regenerated")}
    )
    assert json.loads(Path(regenerated["EVENT_LOG"]).read_text())["unchanged"] == "regenerate"
    redrawn = np.abs(_read(regenerated["POST_IMAGE"])[0].astype(int) - source.astype(int)).mean(axis=0)
    assert (redrawn[away] > 0).mean() > 0.5


def test_synthesize_results_load_into_the_project(provider, joplin_crop, shared_data, tmp_path):
    """As from the toolbox: the last post-event image and its change mask load as named, styled raster layers,
    without QGIS trying them as vectors first (issue 16, item 12: "[OGR] Cannot open …/change_t1.tif")."""
    import processing
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsSingleBandPseudoColorRenderer

    project = QgsProject.instance()
    before = set(project.mapLayers())
    logged = []
    log = QgsApplication.messageLog()
    log.messageReceived.connect(lambda message, tag, level: logged.append(f"{tag}: {message}"))
    processing.runAndLoadResults(
        "changen:synthesize",
        {
            "INPUT": str(joplin_crop),
            "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),
            "METHOD": 1,
            "REMOVE": 0,
            "CREATE": 1,
            "OUTPUT": str(tmp_path / "out"),
        },
    )
    loaded = [layer for key, layer in project.mapLayers().items() if key not in before]
    try:
        assert sorted(Path(layer.source()).name for layer in loaded) == ["change_t1.tif", "image_t1.tif"]
        assert all(
            layer.crs().authid() == "EPSG:32615" and isinstance(layer, QgsRasterLayer) for layer in loaded
        )
        by_file = {Path(layer.source()).name: layer for layer in loaded}
        assert by_file["image_t1.tif"].name().startswith("Changen post-event (")
        assert by_file["change_t1.tif"].name().startswith("Changen change (")
        assert isinstance(by_file["change_t1.tif"].renderer(), QgsSingleBandPseudoColorRenderer)
        assert not [line for line in logged if "OGR" in line and "change_t1" in line], logged
    finally:
        project.removeMapLayers([layer.id() for layer in loaded])


def test_detect_names_a_missing_model_and_the_fix(provider, levir_pair, tmp_path):
    import processing

    t1, t2 = levir_pair
    with pytest.raises(QgsProcessingException, match="no_such_detector.*Shipped models"):
        processing.run(
            "changen:detect",
            {
                "T1": str(t1),
                "T2": str(t2),
                "MODEL": "no_such_detector",
                "OUTPUT": str(tmp_path / "change.tif"),
            },
        )
    assert list(tmp_path.iterdir()) == []


def test_synthesize_with_the_rsdit_generator_through_processing(provider, joplin_crop, shared_data, tmp_path):
    """Changen2's RS-DiT (`changen2`, the last method) runs from Processing: only the edited windows change."""
    import processing

    results = processing.run(
        "changen:synthesize",
        {
            "INPUT": str(joplin_crop),
            "BUILDINGS": str(shared_data / JOPLIN_FOOTPRINTS),
            "METHOD": 3,
            "STEPS": 1,
            "REMOVE": 1,
            "CREATE": 1,
            "SEED": 2,
            "OUTPUT": str(tmp_path / "out"),
        },
        feedback=RecordingFeedback(),
    )
    assert results["REMOVED"] == 1
    source, _ = _read(joplin_crop)
    post, _ = _read(results["POST_IMAGE"])
    changed = _read(results["CHANGE"])[0][0] > 0
    difference = np.abs(post.astype(int) - source.astype(int)).sum(axis=0)
    assert changed.any() and difference[changed].mean() > 5 * max(difference[~changed].mean(), 0.01)


def test_detect_reports_the_changed_area_in_ellipsoidal_square_metres(
    provider, small_detector, levir_pair, tmp_path
):
    """Issue 16, item 13: a geographic (EPSG:4326) pair reported its area in square degrees (4e-07)."""
    import processing

    from core.areas import ellipsoidal_areas

    class Messages(QgsProcessingFeedback):
        messages = []

        def pushInfo(self, info):  # noqa: N802 (QGIS's name)
            self.messages.append(info)

    t1, t2 = levir_pair
    feedback = Messages()
    parameters = {
        "T1": str(t1),
        "T2": str(t2),
        "MODEL": str(small_detector),
        "THRESHOLD": 0.3,
        "TILE": 128,
        "OVERLAP": 16,
    }
    results = processing.run(
        "changen:detect", {**parameters, "OUTPUT": str(tmp_path / "c.tif")}, feedback=feedback
    )
    assert results["CHANGED_PIXELS"] > 0
    with rasterio.open(t1) as dataset:
        import shapely

        west, south, east, north = dataset.bounds
        (whole,) = ellipsoidal_areas([shapely.box(west, south, east, north)], dataset.crs.to_wkt())
        pixel_m2 = whole / (dataset.width * dataset.height)
    assert results["CHANGED_AREA"] == pytest.approx(results["CHANGED_PIXELS"] * pixel_m2, rel=1e-3)
    assert any("m², ellipsoidal" in line for line in feedback.messages), feedback.messages
