"""Loading a detector: shipped .safetensors models, Changen's released 1×96 R-18 and Changen2's 1×256 SAM
checkpoints (recognised by their keys).

A released 1×96 checkpoint runs as its official config does (`temporal_symmetric=False`: one date order into the
ChangeMixin); our own training checkpoints (.pt with a `model_config`) and shipped models keep what they were
trained with (symmetric when the config does not say)."""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..guards import torch_load_tensors
from ..paths import DEFAULT_DETECTOR
from ..weights import load_weights
from .changestar import ARCHITECTURE, ChangeStar, ChangeStarConfig

CONFIG_FIELDS = ("encoder", "fpn_channels", "decoder_channels", "temporal_symmetric")


@dataclass
class LoadedDetector:
    model: nn.Module  # ChangeStar, or core.changestar_sam.ChangeStarSAM for Changen2 1×256 checkpoints
    config: dict

    @property
    def threshold(self) -> float:
        return float(self.config.get("threshold", 0.5))


# the official cstar_r18_farseg_d96 config (Z-Zheng/Changen): its ChangeMixin is not temporally symmetric
OFFICIAL_R18_CONFIG = {"architecture": ARCHITECTURE, "encoder": "resnet18", "temporal_symmetric": False}


def load_official_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """A .pth/.pt checkpoint: its tensors and our config for it, the official R-18 one for a released Changen
    ChangeStar(1×96) file, its own `model_config` for a checkpoint of our detector training."""
    checkpoint = torch_load_tensors(path)  # pickled code refused, damage named, both in our words
    config = {**OFFICIAL_R18_CONFIG, "threshold": 0.5}
    if isinstance(checkpoint, dict):
        if isinstance(checkpoint.get("model_config"), dict):
            config = {"architecture": ARCHITECTURE, "threshold": 0.5, **checkpoint["model_config"]}
        checkpoint = checkpoint.get("model", checkpoint.get("state_dict", checkpoint))
    if not isinstance(checkpoint, dict):
        raise InputError(f"{path} holds no state dict; pass a .pth file saved from a model's state_dict().")
    state = {key.removeprefix("module."): value for key, value in checkpoint.items()}
    return state, config


def load_detector(name_or_path: str = DEFAULT_DETECTOR, device: str | torch.device = "cpu") -> LoadedDetector:
    """A shipped name (resources/models/<name>.safetensors), a .safetensors path, or an official .pth checkpoint:
    Changen's ChangeStar(1×96) R-18 or Changen2's ChangeStar(1×256) SAM ViT; returns the model in eval mode."""
    if Path(name_or_path).suffix in (".pth", ".pt"):
        state, config = load_official_checkpoint(name_or_path)
        if any(key.startswith("encoder.vit.") for key in state):
            from .changestar_sam import build_from_state

            model, config = build_from_state(state, str(name_or_path))
            return LoadedDetector(model=model.to(device).eval(), config=config)
        if config["encoder"] == "resnet18" and not any(key.startswith("encoder.resnet.") for key in state):
            raise InputError(
                f"'{name_or_path}' is neither a ChangeStar(1×96) R-18 (encoder.resnet.*) nor a Changen2 "
                "ChangeStar(1×256) (encoder.vit.*) checkpoint; pass one of those released .pth files."
            )
    else:
        state, config = load_weights(name_or_path, device="cpu")
    if config.get("architecture") != ARCHITECTURE:
        raise InputError(
            f"'{name_or_path}' holds a '{config.get('architecture')}' model, not a {ARCHITECTURE} change detector."
        )
    fields = {key: config[key] for key in CONFIG_FIELDS if key in config}
    model = ChangeStar(ChangeStarConfig(**fields))
    model.load_state_dict(state, strict=True)
    return LoadedDetector(model=model.to(device).eval(), config=config)
