"""The synthesis methods and unchanged-pixel modes as data, readable without torch or numpy (the plugin's
settings, Processing parameters and command-line choices are built from them): names, labels, what each method
does to the events, and the models the generative ones need."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    """How a synthesis method is offered (`label`) and what it does to the events (`description`, said before a
    run): whether it applies removals and creations."""

    label: str
    removes: bool
    creates: bool
    description: str


# New methods go last: Processing's method parameter is an index (saved models and qgis_process calls keep it).
METHOD_INFO = {
    "changen": MethodInfo(
        "Changen (generator)", True, True, "Changen removes and creates buildings (the generator draws both)."
    ),
    "copy-paste": MethodInfo(
        "Copy-Paste",
        False,
        True,
        "Copy-Paste only creates buildings (pastes copies); removals are not applied.",
    ),
    "inpainting": MethodInfo(
        "Inpainting",
        True,
        False,
        "Inpainting only removes buildings (fills them with ground); copies are not created.",
    ),
    "changen2": MethodInfo(
        "Changen2 (RS-DiT diffusion)",
        True,
        True,
        "Changen2's RS-DiT removes and creates buildings (diffusion around each edit; an early, weak model).",
    ),
}
METHODS = tuple(METHOD_INFO)
DEFAULT_GENERATOR = "changen_gan_cpu"
DEFAULT_MODELS = {"changen": DEFAULT_GENERATOR, "changen2": "rsdit_cpu"}  # methods that need a trained model

# What a generative method does outside the change (see `compositing.keep_unchanged`); the baselines always keep.
UNCHANGED_LABELS = {
    "keep": "Keep the image outside the change (an edit)",
    "regenerate": "Regenerate the whole image (the paper's synthesis)",
}
UNCHANGED_MODES = tuple(UNCHANGED_LABELS)


def limit_to_method(method: str, removals: int, creations: int) -> tuple[bool, bool, list[str]]:
    """(apply removals, apply creations, notes naming what `method` does not apply and why) for the planned
    counts, so the events keep only what the method does and counts, masks and polygons stay honest."""
    info, notes = METHOD_INFO[method], []
    if not info.removes and removals:
        notes.append(
            f"{info.label} only creates buildings: {removals} removal(s) were not applied (choose Changen or "
            "Inpainting to remove buildings)"
        )
    if not info.creates and creations:
        notes.append(
            f"{info.label} only removes buildings: {creations} copy(ies) were not created (choose Changen or "
            "Copy-Paste to create buildings)"
        )
    return info.removes, info.creates, notes
