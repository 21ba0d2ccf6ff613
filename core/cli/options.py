"""Argument types and options shared by several `python -m core` commands."""

from __future__ import annotations

from ..device import DEVICE_CHOICES, PRECISION_CHOICES
from ..errors import InputError


def parse_amount(text: str) -> int | float:
    """ "3" -> 3 instances, "0.3" -> 30 %."""
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise InputError(f"--remove takes a count (3) or a fraction (0.3), got {text!r}") from None


def add_device_argument(parser) -> None:
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="auto: CUDA when present")


def add_precision_argument(parser) -> None:
    parser.add_argument(
        "--precision", choices=PRECISION_CHOICES, default="auto", help="auto: bf16 where the device has it"
    )
