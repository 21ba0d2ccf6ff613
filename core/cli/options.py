"""TODO docstring."""

from __future__ import annotations

from ..errors import InputError


def parse_amount(text: str) -> int | float:
    """ "3" -> 3 instances, "0.3" -> 30 %."""
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise InputError(f"--remove takes a count (3) or a fraction (0.3), got {text!r}") from None
