"""One class set for every label source (Changen2 §3.3 trains on OpenEarthMap's classes): OpenEarthMap's 8 classes
plus "unlabeled", and the written mapping of each source's own classes onto it.

"unlabeled" (id 0) means *not known*, not "nothing": building-only sources enter as {building, unlabeled}, so their
ground, trees and roads are all "unlabeled". The generator learns that an unlabeled region is whatever the context
says; a removed building becomes unlabeled ground and is drawn from its surroundings.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

# OpenEarthMap's classes in its own order (ids 1..8), as the transition table in core.events uses them.
PROJECT_CLASSES = (
    "unlabeled",
    "bareland",
    "rangeland",
    "developed",
    "road",
    "tree",
    "water",
    "agriculture",
    "building",
)
UNLABELED = 0
BUILDING = PROJECT_CLASSES.index("building")

# source class id -> project class name; every id a source uses must be listed.
SOURCE_CLASSES = {
    "buildings": {0: "unlabeled", 1: "building"},  # 0/1 building masks (xBD, IdaBD, CrowdAI, SpaceNet)
    "dubai_mbrsc": {0: "unlabeled", 1: "building", 2: "bareland", 3: "road", 4: "tree", 5: "water"},
    # LoveDA's "background" is everything else (parks, yards, plazas): not one OEM class, so unlabeled.
    "loveda": {
        0: "unlabeled",
        1: "unlabeled",
        2: "building",
        3: "road",
        4: "water",
        5: "bareland",
        6: "tree",
        7: "agriculture",
    },
    # ISPRS: impervious surfaces and cars are "developed", low vegetation "rangeland", clutter unknown.
    "potsdam": {
        0: "unlabeled",
        1: "developed",
        2: "building",
        3: "rangeland",
        4: "tree",
        5: "developed",
        6: "unlabeled",
    },
}
SOURCE_CLASSES["vaihingen"] = SOURCE_CLASSES["potsdam"]
SOURCE_CLASSES["project"] = dict(enumerate(PROJECT_CLASSES))  # already project ids (e.g. our own outputs)
# The order the plugin offers the sources in (Processing passes an index): new sources go last.
CLASS_SCHEMES = ("project", "dubai_mbrsc", "loveda", "potsdam", "vaihingen", "buildings")
assert set(CLASS_SCHEMES) == set(SOURCE_CLASSES), "every source is offered once"

# OpenEarthMap's class colours (RGB), for class maps and previews; unlabeled is black.
PROJECT_COLOURS = (
    (0, 0, 0),
    (128, 0, 0),
    (0, 255, 36),
    (148, 148, 148),
    (255, 255, 255),
    (34, 97, 38),
    (0, 69, 255),
    (75, 181, 73),
    (222, 31, 7),
)


def class_id(text: str) -> int:
    """A project class given by name ("tree") or id ("5") -> its id."""
    if text.strip().isdigit() and int(text) < len(PROJECT_CLASSES):
        return int(text)
    if text.strip() in PROJECT_CLASSES:
        return PROJECT_CLASSES.index(text.strip())
    raise InputError(
        f"unknown class {text!r}: give a project class name or id ({', '.join(PROJECT_CLASSES)}; ids 0..8)"
    )


def load_class_map(path) -> dict[int, str]:
    """A JSON object `{"source value": "project class", ...}` (e.g. `{"1": "building", "2": "bareland"}`)."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text())
        mapping = {int(value): str(name) for value, name in data.items()}
    except (OSError, ValueError, AttributeError, TypeError) as error:
        raise InputError(
            f"cannot read the class mapping {path}: {error}; expected a JSON object from each class value of "
            f'the raster to a project class, e.g. {{"1": "building", "2": "bareland"}}'
        ) from error
    outside = [value for value in mapping if not 0 <= value <= 255]
    if outside:
        raise InputError(f"class mapping {path}: values {outside} are not 8-bit class values (0..255)")
    lookup_table(mapping)  # checks the names
    return mapping


def lookup_table(mapping: dict[int, str]) -> np.ndarray:
    """A 256-entry uint8 table from source ids to project ids; ids missing from `mapping` map to 255."""
    table = np.full(256, 255, np.uint8)
    for source_id, name in mapping.items():
        if name not in PROJECT_CLASSES:
            raise InputError(
                f"class mapping: unknown project class {name!r}; classes are {list(PROJECT_CLASSES)}"
            )
        table[source_id] = PROJECT_CLASSES.index(name)
    return table


def to_project_classes(
    labels: np.ndarray, mapping: dict[int, str] | str, where: str = "label map"
) -> np.ndarray:
    """Map a source label raster onto the project classes; unknown values get a message asking for the mapping."""
    if isinstance(mapping, str):
        mapping = SOURCE_CLASSES[mapping]
    mapped = lookup_table(mapping)[labels.astype(np.uint8)]
    unknown = np.unique(labels[mapped == 255])
    if unknown.size:
        raise InputError(
            f"{where} holds class values {unknown.tolist()} that the class mapping does not cover "
            f"(it maps {sorted(mapping)}): give each value a project class ({', '.join(PROJECT_CLASSES)})."
        )
    return mapped


def one_hot(classes: np.ndarray) -> np.ndarray:
    """(H, W) project class ids -> (len(PROJECT_CLASSES), H, W) float32 one-hot, the denoiser's condition."""
    return (np.arange(len(PROJECT_CLASSES), dtype=np.uint8)[:, None, None] == classes[None]).astype(
        np.float32
    )
