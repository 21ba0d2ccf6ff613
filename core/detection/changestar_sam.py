"""Changen2's ChangeStar(1×256): SAM ViT image encoder → simple feature pyramid → FarSeg → 1×256 ChangeMixin.

Module names and shapes follow the public torchange `SAMEncoderFarSeg` encoder and its 1×256 head (every key is
listed in tests/data/changestar_1x256_vitb_state_dict.txt), so the released Changen2 checkpoints load strictly.
Inference only: this model is not trained here, so the training-time dropout of the official FarSeg is left out.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
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

ARCHITECTURE = "changestar_1x256_sam"
SAM_IMAGE_SIZE = 1024  # the position embedding covers 64×64 tokens; other sizes resample it, as SAM does
SAM_PATCH = 16
SAM_WINDOW = 14
SAM_NECK_CHANNELS = 256
FEATURE_CHANNELS = 256  # D of "1×256": SFP, FPN, FarSeg decoder and ChangeMixin width
# Token grid must be even (one ×0.5 pyramid level is doubled back by the FPN): sides are padded to this.
INPUT_MULTIPLE = 2 * SAM_PATCH


@dataclass(frozen=True)
class SamVariant:
    embed_dim: int
    depth: int
    heads: int
    global_blocks: tuple[int, ...]


SAM_VARIANTS = {
    "vit_b": SamVariant(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": SamVariant(1024, 24, 16, (5, 11, 17, 23)),
}


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (eps 1e-6, as SAM's neck)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalised = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return normalised.permute(0, 3, 1, 2)


def _relative_position_table(table: torch.Tensor, size: int) -> torch.Tensor:
    """(size, size, head_dim) embeddings of every query-key offset along one axis; the learned table is
    linearly resized when the axis length differs from the one it was trained for."""
    span = 2 * size - 1
    if table.shape[0] != span:
        table = F.interpolate(table.T[None], size=span, mode="linear")[0].T
    positions = torch.arange(size, device=table.device)
    return table[positions[:, None] - positions[None, :] + size - 1]


class Attention(nn.Module):
    """Multi-head self-attention on (B, H, W, C) tokens with SAM's decomposed relative-position bias."""

    def __init__(self, dim: int, heads: int, grid: int):
        super().__init__()
        self.heads = heads
        head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, height, width, dim = x.shape
        qkv = self.qkv(x).reshape(batch, height * width, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)  # (B, heads, H·W, head_dim)
        queries = query.reshape(batch, self.heads, height, width, -1)
        along_h = torch.einsum("bnhwc,hkc->bnhwk", queries, _relative_position_table(self.rel_pos_h, height))
        along_w = torch.einsum("bnhwc,wkc->bnhwk", queries, _relative_position_table(self.rel_pos_w, width))
        bias = (along_h[..., :, None] + along_w[..., None, :]).reshape(
            batch, self.heads, height * width, height * width
        )
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=bias.to(query.dtype))
        return self.proj(attended.transpose(1, 2).reshape(batch, height, width, dim))


def _windowed(attention: Attention, x: torch.Tensor, window: int) -> torch.Tensor:
    """Attention inside non-overlapping window×window blocks; the grid is zero-padded to whole windows."""
    batch, height, width, dim = x.shape
    x = F.pad(x, (0, 0, 0, -width % window, 0, -height % window))
    rows, cols = x.shape[1] // window, x.shape[2] // window
    windows = x.view(batch, rows, window, cols, window, dim).transpose(2, 3).reshape(-1, window, window, dim)
    attended = attention(windows).view(batch, rows, cols, window, window, dim).transpose(2, 3)
    return attended.reshape(batch, rows * window, cols * window, dim)[:, :height, :width]


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.gelu(self.lin1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; `window` 0 means global attention over the whole token grid."""

    def __init__(self, dim: int, heads: int, window: int, grid: int):
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, window or grid)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(x)
        x = x + (_windowed(self.attn, normed, self.window) if self.window else self.attn(normed))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, SAM_PATCH, SAM_PATCH)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).permute(0, 2, 3, 1)


class SamImageEncoder(nn.Module):
    """SAM's ViT image encoder (patch 16, window 14, global blocks, neck to 256 channels at stride 16)."""

    def __init__(self, variant: SamVariant):
        super().__init__()
        grid = SAM_IMAGE_SIZE // SAM_PATCH
        self.patch_embed = PatchEmbed(variant.embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, variant.embed_dim))
        self.blocks = nn.ModuleList(
            Block(variant.embed_dim, variant.heads, 0 if index in variant.global_blocks else SAM_WINDOW, grid)
            for index in range(variant.depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(variant.embed_dim, SAM_NECK_CHANNELS, 1, bias=False),
            LayerNorm2d(SAM_NECK_CHANNELS),
            nn.Conv2d(SAM_NECK_CHANNELS, SAM_NECK_CHANNELS, 3, padding=1, bias=False),
            LayerNorm2d(SAM_NECK_CHANNELS),
        )

    def _position_embedding(self, height: int, width: int) -> torch.Tensor:
        if self.pos_embed.shape[1:3] == (height, width):
            return self.pos_embed
        resized = F.interpolate(
            self.pos_embed.float().permute(0, 3, 1, 2),
            size=(height, width),
            mode="bicubic",
            antialias=True,
        )
        return resized.permute(0, 2, 3, 1).to(self.pos_embed.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)
        x = x + self._position_embedding(x.shape[1], x.shape[2])
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))


def _projection(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), LayerNorm2d(out_channels)),
        nn.Sequential(nn.Conv2d(out_channels, out_channels, 1, bias=False), LayerNorm2d(out_channels)),
    ]


class SimpleFeaturePyramid(nn.Module):
    """ViTDet's pyramid from the single stride-16 map: strides 4, 8, 16, 32 (`simfp_<log2 stride>`)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        half, quarter = in_channels // 2, in_channels // 4
        self.simfp_2 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, half, 2, 2),
            LayerNorm2d(half),
            nn.GELU(),
            nn.ConvTranspose2d(half, quarter, 2, 2),
            *_projection(quarter, out_channels),
        )
        self.simfp_3 = nn.Sequential(
            nn.ConvTranspose2d(in_channels, half, 2, 2), *_projection(half, out_channels)
        )
        self.simfp_4 = nn.Sequential(*_projection(in_channels, out_channels))
        self.simfp_5 = nn.Sequential(nn.MaxPool2d(2, 2), *_projection(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.simfp_2(x), self.simfp_3(x), self.simfp_4(x), self.simfp_5(x)]


def _conv_ln_gelu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), LayerNorm2d(out_channels), nn.GELU())


class ScaleAwareRelation(nn.Module):
    """FarSeg's foreground-scene relation with one scene encoder per level; each re-weighted level is
    concatenated with its input and projected back to `channels`."""

    def __init__(self, channels: int, levels: int = 4):
        super().__init__()
        self.scene_encoder = nn.ModuleList(
            nn.Sequential(*_conv_ln_gelu(channels, channels), *_conv_ln_gelu(channels, channels))
            for _ in range(levels)
        )
        self.project = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * channels, channels, 1, bias=False), LayerNorm2d(channels), nn.GELU())
            for _ in range(levels)
        )
        self.content_encoders = nn.ModuleList(_conv_ln_gelu(channels, channels) for _ in range(levels))
        self.feature_reencoders = nn.ModuleList(_conv_ln_gelu(channels, channels) for _ in range(levels))

    def forward(self, scene: torch.Tensor, features: list[torch.Tensor]) -> list[torch.Tensor]:
        refined = []
        for scene_op, content_op, reencode_op, project_op, feature in zip(
            self.scene_encoder,
            self.content_encoders,
            self.feature_reencoders,
            self.project,
            features,
            strict=True,
        ):
            relation = torch.sigmoid((scene_op(scene) * content_op(feature)).sum(dim=1, keepdim=True))
            refined.append(project_op(torch.cat([relation * reencode_op(feature), feature], dim=1)))
        return refined


class LayerNormDecoder(nn.Module):
    """FarSeg's asymmetric decoder with LayerNorm + GELU: every level to stride 4, then averaged."""

    def __init__(self, channels: int, strides=(4, 8, 16, 32)):
        super().__init__()
        self.blocks = nn.ModuleList()
        for stride in strides:
            upsamplings = int(math.log2(stride // 4))
            steps = [
                nn.Sequential(
                    nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
                    LayerNorm2d(channels),
                    nn.GELU(),
                    *([UpsampleBilinear2x()] if upsamplings else []),
                )
                for _ in range(max(upsamplings, 1))
            ]
            self.blocks.append(nn.Sequential(*steps))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return sum(block(feature) for block, feature in zip(self.blocks, features, strict=True)) / len(
            self.blocks
        )


class FarSeg(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.fpn = FPN((channels,) * 4, channels)
        self.fsr = ScaleAwareRelation(channels)
        self.dec = LayerNormDecoder(channels)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        scene = F.adaptive_avg_pool2d(pyramid[-1], 1)
        return self.dec(self.fsr(scene, self.fpn(pyramid)))


class SamFarSegEncoder(nn.Module):
    def __init__(self, variant: SamVariant):
        super().__init__()
        self.vit = SamImageEncoder(variant)
        self.sfp = SimpleFeaturePyramid(SAM_NECK_CHANNELS, FEATURE_CHANNELS)
        self.farseg = FarSeg(FEATURE_CHANNELS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.farseg(self.sfp(self.vit(images)))


class SymmetricChangeHead(nn.Module):
    """ChangeMixin 1×256: conv3×3 + LayerNorm + GELU on both date orders, summed; 1×1 + ×4 to the change logit.
    `semantic_conv` (the official single-date building head) is held only so released checkpoints load."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 3, 1, 1, bias=False), LayerNorm2d(channels), nn.GELU()
        )
        self.change_conv = nn.Sequential(nn.Conv2d(channels, 1, 1), ConvUpsample4x())
        self.semantic_conv = nn.Sequential(nn.Conv2d(channels, 1, 1), ConvUpsample4x())

    def forward(self, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
        return self.change_conv(change_mixin(self.conv, t1, t2, temporal_symmetric=True))


class ChangeStarSAM(nn.Module):
    """Input (B, 6, H, W): t1 RGB | t2 RGB on 0–255, any H and W. Normalised with ImageNet mean/std (SAM's),
    zero-padded bottom/right to a square multiple of 32 (the SAM encoder takes square input only); the output
    is cropped back to (B, 1, H, W)."""

    def __init__(self, vit: str = "vit_b"):
        super().__init__()
        if vit not in SAM_VARIANTS:
            raise InputError(f"Unknown SAM encoder '{vit}': choose one of {', '.join(SAM_VARIANTS)}.")
        self.vit = vit
        self.encoder = SamFarSegEncoder(SAM_VARIANTS[vit])
        self.head = SymmetricChangeHead(FEATURE_CHANNELS)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN_255).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD_255).view(1, 3, 1, 1), persistent=False)

    def forward(self, pair: torch.Tensor) -> ChangeStarOutput:
        height, width = pair.shape[-2:]
        side = -(-max(height, width) // INPUT_MULTIPLE) * INPUT_MULTIPLE

        def pad_square(dates: torch.Tensor) -> torch.Tensor:
            return F.pad(dates, (0, side - width, 0, side - height))

        t1, t2 = bitemporal_forward(self.encoder, pair, self.pixel_mean, self.pixel_std, pad=pad_square)
        return ChangeStarOutput(change_logit=self.head(t1, t2)[:, :, :height, :width])


def build_from_state(state: dict[str, torch.Tensor], source: str) -> tuple[ChangeStarSAM, dict]:
    """The model for a Changen2 ChangeStar(1×256) state dict (keys without "module."), loaded strictly."""
    embedding = state.get("encoder.vit.patch_embed.proj.weight")
    vit = next(
        (
            name
            for name, variant in SAM_VARIANTS.items()
            if embedding is not None and embedding.shape[0] == variant.embed_dim
        ),
        None,
    )
    if vit is None:
        raise InputError(
            f"'{source}' has encoder.vit.* keys but no SAM ViT-B or ViT-L patch embedding; pass an unmodified "
            "Changen2 ChangeStar(1×256) checkpoint."
        )
    change_weight = state.get("head.change_conv.0.weight")
    if change_weight is not None and change_weight.shape[0] != 1:
        raise InputError(
            f"'{source}' predicts {change_weight.shape[0]} change classes (e.g. the xView2 building-damage "
            "model); change detection needs a binary checkpoint such as s1c1 or s9c1."
        )
    model = ChangeStarSAM(vit)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InputError(
            f"'{source}' does not match the Changen2 ChangeStar(1×256) {vit} model: {error}"
        ) from error
    return model, {"architecture": ARCHITECTURE, "vit": vit, "threshold": 0.5}
