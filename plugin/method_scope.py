"""What each synthesis method can do, said before the run and applied to the events (issue 16, item 10):
Copy-Paste only creates buildings, Inpainting only removes them, Changen does both."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodScope:
    removes: bool
    creates: bool
    description: str


SCOPES = {
    "changen": MethodScope(True, True, "Changen removes and creates buildings (the generator draws both)."),
    "changen2": MethodScope(
        True,
        True,
        "Changen2's RS-DiT removes and creates buildings (diffusion around each edit; an early, weak model).",
    ),
    "copy-paste": MethodScope(
        False, True, "Copy-Paste only creates buildings (pastes copies); removals are not applied."
    ),
    "inpainting": MethodScope(
        True, False, "Inpainting only removes buildings (fills them with ground); copies are not created."
    ),
}

LABELS = {
    "changen": "Changen",
    "changen2": "Changen2 RS-DiT",
    "copy-paste": "Copy-Paste",
    "inpainting": "Inpainting",
}


def scope_of(method: str) -> MethodScope:
    return SCOPES.get(method, SCOPES["changen"])


def limit_to_scope(method: str, removals: int, creations: int) -> tuple[bool, bool, list[str]]:
    """(apply removals, apply creations, notes naming what is not applied and why)."""
    scope, label, notes = scope_of(method), LABELS.get(method, method), []
    if not scope.removes and removals:
        notes.append(
            f"{label} only creates buildings: {removals} removal(s) were not applied (choose Changen or "
            "Inpainting to remove buildings)"
        )
    if not scope.creates and creations:
        notes.append(
            f"{label} only removes buildings: {creations} copy(ies) were not created (choose Changen or "
            "Copy-Paste to create buildings)"
        )
    return scope.removes, scope.creates, notes
