"""The synthesis models of the dock, loaded once per (method, model, device) and kept: loading dominates a preview.

Jobs in task threads share the cache, hence the lock; the models come from core's `load_synthesis_generator`.
"""

import threading
from collections.abc import Callable
from typing import Any

from ..core.errors import InputError

_GENERATORS: dict[tuple[str, str, str], Any] = {}
_GENERATOR_LOCK = threading.Lock()


def _key(method: str, model: str | None, device) -> tuple[str, str, str]:
    from ..core.synthesis.methods import DEFAULT_MODELS

    if method == "changen2":  # the Settings model file is the Changen GAN's; RS-DiT uses its shipped file
        model = None
    return method, model or DEFAULT_MODELS[method], str(device)


BUILDING_FALLBACK = (
    "Meanwhile choose the Copy-Paste or Inpainting method in the dock, or pick a generator file in Changen → "
    "Settings…."
)


def cached_generator(method: str, model: str | None, device, fallback: str = BUILDING_FALLBACK):
    """The model `method` needs on `device` (None for the baselines), from the cache or loaded into it; a load
    error ends with `fallback` (what to do meanwhile)."""
    from ..core.synthesis.methods import DEFAULT_MODELS
    from ..core.synthesis.synthesize import load_synthesis_generator

    if method not in DEFAULT_MODELS:
        return None
    key = _key(method, model, device)
    with _GENERATOR_LOCK:
        if key not in _GENERATORS:
            try:
                _GENERATORS[key] = load_synthesis_generator(method, key[1], device)
            except InputError as error:
                raise InputError(f"{error} {fallback}".strip()) from error
        return _GENERATORS[key]


def generator_is_cached(method: str, model: str | None, device_choice: str) -> bool:
    from ..core.device import pick_device

    try:
        device = pick_device(device_choice)
    except InputError:
        return False
    with _GENERATOR_LOCK:
        return _key(method, model, device) in _GENERATORS


def warm_up_job(method: str, model: str | None, device_choice: str) -> Callable:
    """A job loading the method's model into the cache ahead of the first preview; returns the device description."""

    def job(progress, is_canceled) -> str:
        from ..core.device import describe_device, pick_device

        device = pick_device(device_choice)
        cached_generator(method, model, device)
        return describe_device(device)

    return job
