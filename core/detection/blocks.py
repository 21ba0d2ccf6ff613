"""Blocks the ChangeStar models share: the bitemporal forward through one encoder, the ChangeMixin date fusion,
FPN, bilinear upsamplers (corner-aligned, as the official models), ImageNet statistics and the output dataclass."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)


@dataclass
class ChangeStarOutput:
    change_logit: torch.Tensor  # (B, 1, H, W)

    @property
    def change_probability(self) -> torch.Tensor:
        return torch.sigmoid(self.change_logit.float())


def bitemporal_forward(
    encoder: nn.Module,
    pair: torch.Tensor,
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
    pad: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both dates of a (B, 6, H, W) t1|t2 RGB pair through the one `encoder`, stacked on the batch axis and
    normalised (`pad`, if given, runs on the normalised dates first); returns the t1 and t2 features."""
    if pair.ndim != 4 or pair.shape[1] != 6:
        raise InputError(f"ChangeStar expects (B, 6, H, W) t1|t2 RGB input, got {tuple(pair.shape)}.")
    batch = pair.shape[0]
    dates = (torch.cat([pair[:, :3], pair[:, 3:]], dim=0) - pixel_mean) / pixel_std
    features = encoder(dates if pad is None else pad(dates))
    return features[:batch], features[batch:]


def change_mixin(
    conv: nn.Module, t1: torch.Tensor, t2: torch.Tensor, temporal_symmetric: bool
) -> torch.Tensor:
    """ChangeMixin: `conv` on the concatenated dates; temporally symmetric models add the swapped order."""
    mixed = conv(torch.cat([t1, t2], dim=1))
    if temporal_symmetric:
        mixed = mixed + conv(torch.cat([t2, t1], dim=1))
    return mixed


def _upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    # nn.UpsamplingBilinear2d (used by the official model) aligns corners.
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=True)


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, ...], out_channels: int):
        super().__init__()
        for level, channels in enumerate(in_channels, start=1):
            setattr(
                self, f"fpn_inner{level}", nn.Sequential(nn.Conv2d(channels, out_channels, 1, bias=False))
            )
            setattr(
                self,
                f"fpn_layer{level}",
                nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)),
            )
        self.levels = len(in_channels)

    def forward(self, features):
        inner = getattr(self, f"fpn_inner{self.levels}")(features[-1])
        outputs = [getattr(self, f"fpn_layer{self.levels}")(inner)]
        for level in range(self.levels - 1, 0, -1):
            lateral = getattr(self, f"fpn_inner{level}")(features[level - 1])
            inner = lateral + F.interpolate(inner, size=lateral.shape[-2:], mode="nearest")
            outputs.insert(0, getattr(self, f"fpn_layer{level}")(inner))
        return outputs


class UpsampleBilinear2x(nn.Module):
    def forward(self, x):
        return _upsample(x, 2)


class ConvUpsample4x(nn.Module):
    def forward(self, x):
        return _upsample(x, 4)
