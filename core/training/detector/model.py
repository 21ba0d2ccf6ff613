"""The detector's training pieces: BCE + Dice loss, learning-rate schedule, frozen encoder stages, initial
weights and validation predictions."""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...detection.changestar import ChangeStar
from ...errors import InputError
from ...weights import load_weights


# ------------------------------------------------------------------------------------------ loss and metrics
def bce_dice_loss(logit: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logit = logit.float()
    bce = F.binary_cross_entropy_with_logits(logit, target)
    probability = torch.sigmoid(logit)
    intersection = (probability * target).sum()
    dice = 1 - (2 * intersection + 1) / (probability.sum() + target.sum() + 1)
    return bce + dice


def learning_rate(step: int, peak: float, warmup: int, cosine_until: int = 0) -> float:
    """Linear warm-up to `peak`, then constant, or a cosine decay to zero at step `cosine_until` when given."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if cosine_until <= warmup:
        return peak
    progress = min(1.0, (step - warmup) / (cosine_until - warmup))
    return peak * 0.5 * (1.0 + float(np.cos(np.pi * progress)))


def frozen_trunk_modules(model: ChangeStar, stride: int) -> list[torch.nn.Module]:
    """The encoder's modules that only produce features at strides ≤ `stride` (0: none). Freezing them (weights
    and batch-norm statistics) keeps generic ImageNet low-level features and saves their costly backward pass."""
    if stride <= 0:
        return []
    levels = {4: 1, 8: 2, 16: 3, 32: 4}
    if stride not in levels:
        raise InputError(f"--freeze-stride must be 0, 4, 8, 16 or 32, got {stride}.")
    trunk = model.encoder.trunk
    if model.config.encoder == "resnet18":
        return [trunk.conv1, trunk.bn1] + [getattr(trunk, f"layer{i}") for i in range(1, levels[stride] + 1)]
    net = trunk.net
    last_block = trunk.stage_ends[levels[stride] - 1]
    modules = [net._conv_stem, net._bn0, *net._blocks[: last_block + 1]]
    return modules + ([net._conv_head, net._bn1] if stride == 32 else [])


def set_training_mode(model: ChangeStar, frozen: list[torch.nn.Module]) -> None:
    model.train()
    for module in frozen:
        module.eval()


def predict_probabilities(
    model: ChangeStar, images: torch.Tensor, device, autocast: bool, frozen, batch: int = 4
):
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                outputs.append(model(chunk).change_probability.cpu())
    set_training_mode(model, frozen)
    return torch.cat(outputs).numpy()[:, 0]


def load_initial_weights(model: ChangeStar, path: Path) -> None:
    """Start from a whole ChangeStar checkpoint (e.g. an official Changen R-18 release) or from ImageNet weights of
    the encoder alone (a torchvision-style ResNet-18 state dict; its classifier is dropped), or from a shipped
    .safetensors detector (continued training)."""
    if path.suffix == ".safetensors":
        state, config = load_weights(path)
        if config.get("encoder") != model.config.encoder:
            raise InputError(
                f"{path} holds a {config.get('encoder')} detector: pass --encoder {config.get('encoder')}."
            )
        model.load_state_dict(state, strict=True)
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"Cannot read {path} as a PyTorch state dict ({error}).") from error
    state = state.get("model", state.get("state_dict", state))
    state = {key.removeprefix("module."): value for key, value in state.items()}
    if any(key.startswith("encoder.") for key in state):
        model.load_state_dict(state, strict=True)
        return
    if model.config.encoder != "resnet18":
        raise InputError(
            f"{path} holds encoder-only weights; they fit --encoder resnet18 (torchvision names)."
        )
    model.encoder.resnet.load_state_dict(
        {k: v for k, v in state.items() if not k.startswith("fc.")}, strict=True
    )
