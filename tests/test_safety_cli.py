"""Issue 16, data safety on the command line: no command writes over its inputs, awkward outputs and model
files get messages (no tracebacks), and an interrupt ends every long command with exit code 130 and no
temporary files. Each case runs `python -m core` in a subprocess and hashes the inputs before and after."""

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from core.io.rasters import read_raster, write_geotiff

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).parent / "data" / "RGB.byte.tif"


def digest(*paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def cli(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=REPO_ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _interruptible():
    """A terminal's Ctrl-C reaches the command even when the tests run as a background job (whose shell set
    SIGINT to ignored, which Python's children inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=REPO_ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_interruptible,
    )


def refused(result, *words):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def pair(tmp_path):
    """Two copies of a small 3-band GeoTIFF as t1/t2."""
    a, b = tmp_path / "A.tif", tmp_path / "B.tif"
    shutil.copy(SAMPLE, a)
    shutil.copy(SAMPLE, b)
    return a, b


# ------------------------------------------------------------------------------------------------ item 1
def test_detect_refuses_to_write_over_an_input(pair, tmp_path):
    a, b = pair
    before = digest(a, b)
    refused(cli("detect", a, b, "-o", a), "would destroy the input", str(a))
    refused(cli("detect", a, b, "-o", tmp_path / "c.tif", "--probabilities", b), "would destroy the input")
    link = tmp_path / "out" / "hard_link_of_A.tif"
    link.parent.mkdir()
    os.link(a, link)
    refused(cli("detect", a, b, "-o", link), "a link to the same file")
    symlink = tmp_path / "out" / "symlink_to_B.tif"
    symlink.symlink_to(b)
    refused(cli("detect", a, b, "-o", tmp_path / "c.tif", "--vector", symlink), "would destroy the input")
    assert digest(a, b) == before


def test_synthesize_and_events_refuse_to_write_over_an_input(pair, tmp_path):
    a, _ = pair
    out = tmp_path / "syn"
    out.mkdir()
    image = out / "image_t0.tif"
    os.link(a, image)  # the input is what synthesize would write as t0
    mask = tmp_path / "mask.tif"
    write_geotiff(mask, np.zeros((718, 791), np.uint8), read_raster(a).grid)
    before = digest(a, mask)
    refused(cli("synthesize", image, mask, "-o", out, "--method", "copy-paste"), "would destroy the input")
    events_out = tmp_path / "ev"
    events_out.mkdir()
    os.link(mask, events_out / "mask_t00.tif")
    refused(cli("events", mask, "-o", events_out), "would destroy the input")
    assert digest(a, mask) == before


def test_generate_dataset_refuses_an_output_folder_inside_its_source(tmp_path, shared_data):
    source = tmp_path / "source"
    shutil.copytree(shared_data / "buildings" / "xbd_harvey", source)
    refused(
        cli("generate-dataset", "--source", source, "--out", source / "pairs", "--pairs", "1"), "overlaps"
    )
    assert not (source / "pairs").exists()


# ------------------------------------------------------------------------------------------------ item 2
def test_output_below_a_regular_file_is_a_message(pair, tmp_path):
    a, b = pair
    (tmp_path / "some_file").write_text("not a folder")
    refused(cli("detect", a, b, "-o", tmp_path / "some_file" / "c.tif"), "is a file, not a folder")
    refused(cli("synthesize", a, a, "-o", tmp_path / "some_file"), "is a file, not a folder")


# ------------------------------------------------------------------------------------------------ item 3
def test_corrupt_safetensors_and_pickled_pth_are_refused_in_our_words(pair, tmp_path):
    a, b = pair
    corrupt = tmp_path / "broken.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + bytes(100))
    refused(cli("detect", a, b, "-o", tmp_path / "c.tif", "--model", corrupt), "not a readable model file")
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": argparse.Namespace(code="runs on load")}, pickled)
    result = cli("detect", a, b, "-o", tmp_path / "c.tif", "--model", pickled)
    refused(result, "holds program code", "not loaded")
    assert "torch.load" not in result.stderr
    assert not (tmp_path / "c.tif").exists()


# ------------------------------------------------------------------------------------------------ item 4
def _wait_for(condition, process, seconds=120.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("timed out")


def _temporary_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_detect_exits_130_and_leaves_nothing(pair, tmp_path, signum):
    a, b = pair
    before = digest(a, b)
    out = tmp_path / "out"
    process = start(
        "detect",
        a,
        b,
        "-o",
        out / "c.tif",
        "--probabilities",
        out / "p.tif",
        "--tile",
        "64",
        "--overlap",
        "8",
    )
    _wait_for(lambda: out.is_dir() and _temporary_files(out), process)  # the writers are open
    time.sleep(0.3)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted, nothing written" in stderr and "Traceback" not in stderr, stderr
    assert list(out.iterdir()) == []
    assert digest(a, b) == before


def _big_scene(tmp_path, shared_data):
    source = shared_data / "georef" / "joplin" / "chips" / "pre" / "0_pre.tif"
    data = read_raster(source, window=Window(col_off=300, row_off=400, width=288, height=320))
    image = tmp_path / "pre.tif"
    write_geotiff(image, data.array, data.grid, nodata=0)
    return image, shared_data / "georef" / "joplin" / "footprints_2020.geojson"


@pytest.mark.parametrize("command", ["synthesize", "generate-dataset", "evaluate"])
def test_interrupted_long_commands_exit_130_without_files(command, tmp_path, shared_data):
    out = tmp_path / "out"
    if command == "synthesize":
        image, footprints = _big_scene(tmp_path, shared_data)
        inputs = [image]
        args = ["synthesize", image, footprints, "-o", out, "--steps", "200", "--device", "cpu"]
        ready = lambda: False  # noqa: E731 (nothing is written before the end)
    elif command == "generate-dataset":
        source = shared_data / "buildings" / "xbd_harvey"
        inputs = sorted((source / "images").glob("*.png"))[:2]
        args = [
            "generate-dataset",
            "--source",
            source,
            "--out",
            out,
            "--pairs",
            "100000",
            "--method",
            "copy-paste",
        ]
        ready = lambda: (out / "dataset.json").is_file()  # noqa: E731
    else:
        pairs = shared_data / "change" / "levir_dev"
        inputs = sorted(p for p in pairs.rglob("*.png"))[:2]
        # the folder twelve times over: three passes of levir_dev can end within the wait below
        args = ["evaluate", *["--pairs", pairs] * 12, "--json", out / "scores.json", "--device", "cpu"]
        ready = lambda: False  # noqa: E731
    before = digest(*inputs)
    process = start(*args)
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and not ready():
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert not out.exists() or not _temporary_files(out)
    if command != "generate-dataset":
        assert not out.exists() or list(out.iterdir()) == []
    assert digest(*inputs) == before


def _only_harvey(tmp_path, shared_data) -> dict:
    """A data folder holding only xbd_harvey's building tiles (quick to load)."""
    data = tmp_path / "data"
    (data / "buildings").mkdir(parents=True)
    (data / "README.md").write_text("test data\n")
    (data / "buildings" / "xbd_harvey").symlink_to(shared_data / "buildings" / "xbd_harvey")
    return {"CHANGEN_DATA": str(data)}


def test_interrupted_train_generator_saves_a_checkpoint_and_exits_130(tmp_path, shared_data):
    out = tmp_path / "gan"
    env = _only_harvey(tmp_path, shared_data)
    args = [
        "train-generator",
        "--out",
        out,
        "--batch",
        "2",
        "--crop",
        "64",
        "--log-every",
        "1",
        "--steps",
        "1000",
    ]
    process = start(*args, "--sample-every", "1000", env=env)
    _wait_for(
        lambda: (out / "log.csv").is_file() and len((out / "log.csv").read_text().splitlines()) > 1, process
    )
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted at step" in stdout and "Traceback" not in stderr, stderr
    assert (out / "checkpoint.pt").is_file() and not _temporary_files(out)
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)  # item 8: plain values
    assert state["step"] >= 1 and isinstance(state["torch_rng"], torch.Tensor)


# ------------------------------------------------------------------------------------------------ item 5
def test_synthesize_refuses_zero_steps(tmp_path, shared_data):
    image, footprints = _big_scene(tmp_path, shared_data)
    out = tmp_path / "out"
    refused(cli("synthesize", image, footprints, "-o", out, "--steps", "0"), "--steps must be at least 1")
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ items 6, 7
def test_two_band_raster_names_the_raster_its_bands_and_the_choice(pair, tmp_path):
    a, _ = pair
    two = tmp_path / "two_band.tif"
    with rasterio.open(a) as source:
        profile = dict(source.profile, count=2)
        with rasterio.open(two, "w", **profile) as target:
            target.write(source.read([1, 2]))
    result = cli("detect", a, two, "-o", tmp_path / "c.tif")
    refused(result, str(two), "2 band(s)", "--bands")
    assert "%|" not in result.stderr  # no progress bar before the inputs are checked
    assert not (tmp_path / "c.tif").exists()


def test_no_progress_bar_before_the_inputs_are_checked(pair, tmp_path):
    a, _ = pair
    other = tmp_path / "elsewhere.tif"
    with rasterio.open(a) as source:
        profile = dict(source.profile)
        profile["transform"] = source.transform * source.transform.translation(100000, 0)
        with rasterio.open(other, "w", **profile) as target:
            target.write(source.read())
    result = cli("detect", a, other, "-o", tmp_path / "c.tif")
    refused(result, "does not overlap")
    assert "%|" not in result.stderr, result.stderr


# ------------------------------------------------------------------------------------------------ item 8
class _RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_train_generator_resume_runs_no_code_from_a_checkpoint(tmp_path, shared_data):
    out = tmp_path / "gan"
    out.mkdir()
    marker = tmp_path / "code_ran"
    torch.save({"step": 0, "payload": _RunsCode(marker)}, out / "checkpoint.pt")
    before = digest(out / "checkpoint.pt")
    result = cli(
        "train-generator", "--out", out, "--resume", "--steps", "1", "--batch", "2", "--crop", "64",
        env=_only_harvey(tmp_path, shared_data),
    )  # fmt: skip
    refused(result, "holds program code")
    assert not marker.exists()
    assert digest(out / "checkpoint.pt") == before
