"""Installing the packages from inside QGIS (issue 16, item 21): a real venv and a real pip run, on a local wheel
made here so the test needs no network; cancel and failure leave nothing behind."""

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from dock_fixtures import wait_until

from changen.core.errors import Canceled, InputError
from changen.plugin.installer import activate, install, site_packages


def write_wheel(folder, name="changen_probe", version="0.1"):
    """A minimal valid wheel (pip checks RECORD's hashes)."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "ANSWER = 42\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return [f"{name}=={version}"], ["--no-index", "--find-links", str(folder)]


def test_install_makes_a_plugin_owned_environment_that_activate_puts_first(tmp_path):
    packages, pip_args = write_wheel(tmp_path / "wheels")
    root, lines, progress = tmp_path / "changen" / "python3", [], []
    site = install(root, False, lines.append, progress.append, pip_args=pip_args, packages=packages)
    assert site == site_packages(root / "venv") and (site / "changen_probe" / "__init__.py").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["venv"], "no partial or old environment left"
    assert progress[-1] == 100 and any("changen_probe" in line or "changen-probe" in line for line in lines)
    # QGIS's own packages are not reinstalled: the environment sees them (system site-packages)
    assert not (site / "numpy").exists()
    probe = (
        "import sys, pathlib; from changen.plugin.installer import activate; "
        "activate(pathlib.Path(sys.argv[1])) or sys.exit(3); import changen_probe; print(changen_probe.ANSWER)"
    )
    plugin_parent = next(p for p in map(Path, sys.path) if (p / "changen").is_dir())
    completed = subprocess.run(
        [sys.executable, "-c", probe, str(root)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(plugin_parent)),
    )
    assert completed.stdout.strip() == "42", completed.stderr
    assert activate(tmp_path / "nothing") is False


def test_canceled_or_failed_install_leaves_nothing(tmp_path):
    packages, pip_args = write_wheel(tmp_path / "wheels")
    root = tmp_path / "pkgs"
    with pytest.raises(Canceled):
        install(root, False, lambda line: None, None, lambda: True, pip_args, packages)
    assert list(root.iterdir()) == []
    with pytest.raises(InputError, match="pip failed"):
        install(root, False, lambda line: None, pip_args=pip_args, packages=["changen-missing==9"])
    assert list(root.iterdir()) == []


def test_dialog_installs_with_progress_and_log_then_asks_for_a_restart(qgis_app, tmp_path, monkeypatch):
    from qgis.PyQt.QtWidgets import QMessageBox

    from changen.ui.install_dialog import InstallDialog

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: shown.append(text))
    packages, pip_args = write_wheel(tmp_path / "wheels")
    dialog = InstallDialog(("torch",), packages=packages, pip_args=pip_args)
    dialog.root = tmp_path / "pkgs"
    dialog.start()
    wait_until(lambda: dialog.task is None, timeout=120)
    assert dialog.result() == dialog.Accepted and dialog.progress.value() == 100
    assert "Restart QGIS" in shown[0]
    assert "changen" in dialog.log.toPlainText().lower()
    assert (tmp_path / "pkgs" / "install.log").read_text().count("$ ") == 2
