"""Start-up: `python -m core --help`, a command's --help and a bad-input error come without importing torch
(the start-up time itself is measured in bench/bench_detector.py, not here)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# `python -m core ARGS`, then print whether torch was imported, whatever the exit
PROBE = """
import sys
from core.__main__ import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print("torch imported:", "torch" in sys.modules)
sys.exit(code)
"""


def _probe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [[], ["detect"], ["evaluate"], ["events"], ["demo"], ["synthesize"]])
def test_help_builds_the_parser_without_torch(command):
    done = _probe(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout + done.stderr
    assert "torch imported: False" in done.stdout


def test_a_missing_input_is_reported_before_torch_is_imported(tmp_path):
    done = _probe(
        "detect", str(tmp_path / "missing.tif"), str(tmp_path / "missing2.tif"), "-o", str(tmp_path / "x.tif")
    )
    assert done.returncode == 2
    assert "Raster file not found" in done.stderr and "Check the path" in done.stderr
    assert "torch imported: False" in done.stdout
    done = _probe("synthesize", str(tmp_path / "missing.tif"), "b.gpkg", "-o", str(tmp_path / "out"))
    assert done.returncode == 2 and "Raster file not found" in done.stderr
    assert "torch imported: False" in done.stdout
    done = _probe("evaluate", "--pairs", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "is not a pair folder" in done.stderr
    assert "torch imported: False" in done.stdout
