"""`make package`: the plugin zip holds the runtime files under `changen/` and installs into a fresh profile."""

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from qgis_process_runner import qgis_process, qgis_process_env

REPO_ROOT = Path(__file__).resolve().parent.parent
METADATA_FIELDS = (
    "name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository",
    "tracker", "tags", "category", "icon", "hasProcessingProvider", "changelog",
)  # fmt: skip


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "package.py"), "--out", str(out)], check=True)
    (built,) = out.glob("*.zip")
    return built


def _metadata(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser["general"]


def test_zip_holds_the_runtime_files_under_changen(plugin_zip):
    names = zipfile.ZipFile(plugin_zip).namelist()
    metadata = _metadata((REPO_ROOT / "metadata.txt").read_text())
    assert plugin_zip.name == f"changen-{metadata['version']}.zip"
    assert {name.split("/")[0] for name in names} == {"changen"}
    for required in ("metadata.txt", "__init__.py", "LICENSE", "README.md", metadata["icon"]):
        assert f"changen/{required}" in names
    tracked = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-z", "plugin", "ui", "core", "resources"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    tree = {f"changen/{path}" for path in tracked if path}
    training = {name for name in tree if name.startswith("changen/core/training/")}
    assert training and any(name.endswith(".safetensors") for name in tree)
    assert sorted(tree - training - set(names)) == []  # the whole tree ships: code, weights, cards, icons ...
    assert [name for name in names if name.startswith("changen/core/training/")] == []  # ... but no trainer
    second_level = {name.split("/")[1] for name in names}
    assert second_level.isdisjoint(
        {"tests", ".venv", "runs", "bench", "docs", "scripts", "artifacts", "dist"}
    )
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_metadata_has_every_field_the_plugin_repository_requires(plugin_zip):
    metadata = _metadata(zipfile.ZipFile(plugin_zip).read("changen/metadata.txt").decode())
    missing = [field for field in METADATA_FIELDS if not metadata.get(field, "").strip()]
    assert missing == []
    assert metadata["qgisMinimumVersion"] == "3.22"
    assert metadata["hasProcessingProvider"] == "yes"


def test_two_builds_are_identical(plugin_zip, tmp_path):
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "package.py"), "--out", str(tmp_path)], check=True
    )
    assert (tmp_path / plugin_zip.name).read_bytes() == plugin_zip.read_bytes()


def test_zip_installs_into_a_fresh_profile_and_loads(plugin_zip, tmp_path):
    """Unzip as the plugin manager does, enable, and ask qgis_process for the plugin's provider."""
    plugins_dir = tmp_path / "profiles" / "default" / "python" / "plugins"
    plugins_dir.mkdir(parents=True)
    zipfile.ZipFile(plugin_zip).extractall(plugins_dir)
    env = qgis_process_env(tmp_path)

    assert "changen" in qgis_process(env, "plugins").split()
    qgis_process(env, "plugins", "enable", "changen")
    listing = qgis_process(env, "list")
    assert "\nChangen\n" in listing  # the provider exists only when the plugin loaded with its dependencies
    for algorithm in ("changen:synthesize", "changen:generatedataset", "changen:detect"):
        assert algorithm in listing
    ini = (tmp_path / "profiles" / "default" / "QGIS" / "QGIS3.ini").read_text()
    assert "changen=true" in ini
