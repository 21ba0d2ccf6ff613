"""Reads the "name shape" manifests in tests/data: every key and shape of an official model's state dict."""

import re
from pathlib import Path


def read_manifest(path: Path) -> dict[str, tuple[int, ...]]:
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            name, shape = line.split(" ", 1)
            entries[name] = tuple(int(size) for size in re.findall(r"\d+", shape))
    return entries
