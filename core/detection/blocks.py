"""Blocks the ChangeStar models share: FPN, bilinear upsamplers (corner-aligned, as the official models),
ImageNet statistics and the output dataclass."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)


@dataclass
class ChangeStarOutput:
    change_logit: torch.Tensor  # (B, 1, H, W)

    @property
    def change_probability(self) -> torch.Tensor:
        return torch.sigmoid(self.change_logit.float())


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
