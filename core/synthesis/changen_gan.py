"""The Changen generator I_t+1 = G(S_t+1, I_t, S_t, z) and its OASIS-style discriminator.

Built from the paper (Zheng et al., "Scalable Multi-Temporal Remote Sensing Change Data Generation via Simulating
Stochastic Change Process", ICCV 2023, section 3.2); the authors never released this network. Parts, named as in
the paper:

- `ImageEncoder`: a U-Net whose contracting path has the ResNet-18 layout (7×7 stem, max-pool, 4 stages of 2 basic
  blocks); it yields the pre-event features f_t,i, i = 0 (stride 32) … 5 (stride 1), widths `widths[i]`.
- `ConditionalDecoder`: f_t+1,0 = 3×3 conv over the 32× downsampled [one-hot S_t+1, 3-D Gaussian noise]; then six
  `SpadeResBlock`s G_0 … G_5 (spatially-adaptive *group* normalisation), bilinear ×2 upsampling between them, and a
  tanh output.
- `MaskedTransitionLayer` M_i at every scale (eqs. 4–5): masking (pre-event features inside the pre-event
  foreground are replaced by the decoder's features), de-styling of the rest (1×1 conv + instance norm + leaky
  ReLU), then spatially-adaptive normalisation on S_t+1 → the change field Δf added to f_t+1,i before G_i.
- `OasisDiscriminator`: a U-Net segmentation network with N + 1 outputs per pixel (0 = fake, 1 + class).

Spectral normalisation is on every convolution of the encoder, the decoder's residual paths and the discriminator.
Differences from the paper, chosen for small batches on a CPU: group norm instead of batch norm inside the
encoder (eval = train behaviour at batch 1–4), random initialisation (no ImageNet ResNet-18 exists offline), and the
`cpu` width preset. The training losses live in `core.train_generator`.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import InputError
from ..weights import load_weights

# `widths[i]`: channels of f_t,i and f_t+1,i (i = 0 at stride 32 … 5 at stride 1). `resnet`: stem + 4 stages.
CONFIGS = {
    "paper": {
        "num_classes": 2,
        "widths": [512, 256, 128, 64, 32, 16],
        "resnet": [64, 64, 128, 256, 512],
        "spade_hidden": 128,
        "noise_channels": 64,
        "disc_widths": [128, 128, 256, 256, 512, 512],
    },
    "cpu": {
        "num_classes": 2,
        "widths": [128, 96, 64, 32, 24, 16],
        "resnet": [24, 32, 64, 96, 128],
        "spade_hidden": 32,
        "noise_channels": 8,
        "disc_widths": [32, 48, 64, 96, 128],
    },
}
SIZE_MULTIPLE = 32
MIN_SIZE = 64  # instance norm at stride 32 needs more than one value per channel


def resolve_config(config: str | dict) -> dict:
    """A preset name, or a dict of overrides on top of the `cpu` preset (unknown keys are an error)."""
    if isinstance(config, str):
        if config not in CONFIGS:
            raise InputError(
                f"Unknown generator config '{config}': use one of {', '.join(CONFIGS)} or a dict."
            )
        return {
            key: list(value) if isinstance(value, list) else value for key, value in CONFIGS[config].items()
        }
    unknown = set(config) - set(CONFIGS["cpu"])
    if unknown:
        raise InputError(
            f"Unknown generator config keys {sorted(unknown)}: allowed keys are {sorted(CONFIGS['cpu'])}."
        )
    resolved = resolve_config("cpu")
    resolved.update(
        {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}
    )
    if len(resolved["widths"]) != 6 or len(resolved["resnet"]) != 5:
        raise InputError(
            "A generator config needs 6 'widths' (strides 32…1) and 5 'resnet' widths (stem + 4)."
        )
    for width in (
        resolved["widths"] + resolved["resnet"] + resolved["disc_widths"] + [resolved["spade_hidden"]]
    ):
        if width % 8:
            raise InputError(f"Every width must be a multiple of 8 (group norm uses 8 groups); got {width}.")
    return resolved


def conv(
    in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, padding_mode: str = "reflect"
) -> nn.Module:
    """Spectrally normalised conv. The generator pads by reflection: zero padding let it paint stripes along
    crop borders in early runs, which would also show as seams between tiles at inference."""
    layer = nn.Conv2d(
        in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, padding_mode=padding_mode
    )
    return spectral_norm(layer)


def group_norm(channels: int, affine: bool = True) -> nn.GroupNorm:
    return nn.GroupNorm(8, channels, affine=affine)


def one_hot(semantic: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return F.one_hot(semantic.long(), num_classes).permute(0, 3, 1, 2).to(dtype)


# ----------------------------------------------------------------------------------------------- image encoder
class EncoderResBlock(nn.Module):
    """ResNet-18 basic block (two 3×3 convs), group norm, projection shortcut when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = conv(in_channels, out_channels, 3, stride)
        self.norm1 = group_norm(out_channels)
        self.conv2 = conv(out_channels, out_channels, 3)
        self.norm2 = group_norm(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                conv(in_channels, out_channels, 1, stride), group_norm(out_channels)
            )

    def forward(self, x):
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class UpBlock(nn.Module):
    """U-Net expanding step: bilinear ×2, concatenate the skip feature, 3×3 conv + group norm + ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = conv(in_channels + skip_channels, out_channels)
        self.norm = group_norm(out_channels)

    def forward(self, x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return F.relu(self.norm(self.conv(torch.cat([x, skip], dim=1))))


class ImageEncoder(nn.Module):
    """U-Net with a ResNet-18 contracting path → [f_t,0 (stride 32), …, f_t,5 (stride 1)]."""

    def __init__(self, resnet: list[int], widths: list[int]):
        super().__init__()
        stem, *stages = resnet
        self.stem = nn.Sequential(conv(3, stem, 7, 2), group_norm(stem), nn.ReLU())
        self.full_resolution = nn.Sequential(conv(3, widths[5]), group_norm(widths[5]), nn.ReLU())
        layers, previous = [], stem
        for index, channels in enumerate(stages):
            stride = 1 if index == 0 else 2
            layers.append(
                nn.Sequential(
                    EncoderResBlock(previous, channels, stride), EncoderResBlock(channels, channels, 1)
                )
            )
            previous = channels
        self.layers = nn.ModuleList(layers)
        self.lateral = conv(stages[3], widths[0], 1)
        skips = [stages[2], stages[1], stages[0], stem, widths[5]]  # strides 16, 8, 4, 2, 1
        self.up = nn.ModuleList(UpBlock(widths[i], skips[i], widths[i + 1]) for i in range(5))

    def forward(self, image):
        full = self.full_resolution(image)
        half = self.stem(image)
        x = F.max_pool2d(half, 3, 2, 1)
        stage_outputs = []
        for layer in self.layers:
            x = layer(x)
            stage_outputs.append(x)
        skips = [stage_outputs[2], stage_outputs[1], stage_outputs[0], half, full]
        features = [self.lateral(stage_outputs[3])]
        for up, skip in zip(self.up, skips, strict=True):
            features.append(up(features[-1], skip))
        return features


# ----------------------------------------------------------------------------------------- conditional decoder
class SpatiallyAdaptiveGroupNorm(nn.Module):
    """SPADE with group norm: GN(x) · (1 + γ(h)) + β(h); h = the condition embedding at x's resolution."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.norm = group_norm(channels, affine=False)
        self.gamma_beta = nn.Conv2d(hidden, 2 * channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x, embedding):
        gamma, beta = self.gamma_beta(embedding).chunk(2, dim=1)
        return self.norm(x) * (1 + gamma) + beta


class ConditionEmbedding(nn.Module):
    """The shared 3×3 conv + ReLU of SPADE, computed once per block for all of its normalisations."""

    def __init__(self, cond_channels: int, hidden: int):
        super().__init__()
        self.conv = nn.Conv2d(cond_channels, hidden, 3, padding=1, padding_mode="reflect")

    def forward(self, cond, size):
        if cond.shape[-2:] != size:
            cond = F.interpolate(cond, size=size, mode="nearest")
        return F.relu(self.conv(cond))


class SpadeResBlock(nn.Module):
    """Decoder block G_i: two (SPADE-GN → leaky ReLU → 3×3 conv) steps plus a learned shortcut."""

    def __init__(self, in_channels: int, out_channels: int, cond_channels: int, hidden: int):
        super().__init__()
        middle = min(in_channels, out_channels)
        self.embed = ConditionEmbedding(cond_channels, hidden)
        self.norm0 = SpatiallyAdaptiveGroupNorm(in_channels, hidden)
        self.conv0 = conv(in_channels, middle)
        self.norm1 = SpatiallyAdaptiveGroupNorm(middle, hidden)
        self.conv1 = conv(middle, out_channels)
        self.shortcut_norm = self.shortcut = None
        if in_channels != out_channels:
            self.shortcut_norm = SpatiallyAdaptiveGroupNorm(in_channels, hidden)
            self.shortcut = conv(in_channels, out_channels, 1)

    def forward(self, x, cond):
        embedding = self.embed(cond, x.shape[-2:])
        dx = self.conv0(F.leaky_relu(self.norm0(x, embedding), 0.2))
        dx = self.conv1(F.leaky_relu(self.norm1(dx, embedding), 0.2))
        shortcut = x if self.shortcut is None else self.shortcut(self.shortcut_norm(x, embedding))
        return shortcut + dx


class MaskedTransitionLayer(nn.Module):
    """M_i: change field Δf_t→t+1,i from f_t,i, f_t+1,i, S_t and S_t+1 (eq. 4)."""

    def __init__(self, channels: int, num_classes: int, hidden: int):
        super().__init__()
        self.destyle = nn.Sequential(
            conv(channels, channels, 1), nn.InstanceNorm2d(channels), nn.LeakyReLU(0.2)
        )
        self.embed = ConditionEmbedding(num_classes, hidden)
        self.modulate = SpatiallyAdaptiveGroupNorm(channels, hidden)

    def forward(self, pre_feature, post_feature, pre_foreground, post_one_hot):
        # A coarse cell counts as foreground if any of its pixels is: no pre-event building feature leaks.
        factor = pre_foreground.shape[-1] // pre_feature.shape[-1]
        if factor > 1:
            pre_foreground = F.max_pool2d(pre_foreground, factor)
        foreground = pre_foreground > 0
        # Zero the foreground before de-styling so not even the instance-norm statistics see it.
        background = self.destyle(pre_feature.masked_fill(foreground, 0))
        masked = torch.where(foreground, post_feature, background)
        return self.modulate(masked, self.embed(post_one_hot, masked.shape[-2:]))


class ConditionalDecoder(nn.Module):
    """f_t+1,0 from the 32× downsampled [one-hot S_t+1, noise]; f_t+1,i+1 = G_i(f_t+1,i + Δf_i) (eq. 5)."""

    def __init__(self, widths: list[int], num_classes: int, noise_channels: int, hidden: int):
        super().__init__()
        cond_channels = num_classes + noise_channels
        self.first = conv(cond_channels, widths[0])
        out_widths = widths[1:] + widths[-1:]
        # The SPADE embedding never needs more channels than the feature it modulates (keeps stride 1 cheap).
        hiddens = [min(hidden, width) for width in widths]
        self.blocks = nn.ModuleList(
            SpadeResBlock(widths[i], out_widths[i], cond_channels, hiddens[i]) for i in range(6)
        )
        self.transitions = nn.ModuleList(
            MaskedTransitionLayer(widths[i], num_classes, hiddens[i]) for i in range(6)
        )
        self.to_image = conv(widths[-1], 3)

    def forward(self, pre_features, pre_foreground, post_one_hot, noise):
        cond = torch.cat([post_one_hot, noise], dim=1)
        size = pre_features[0].shape[-2:]
        feature = self.first(F.interpolate(cond, size=size, mode="nearest"))
        for index, (block, transition) in enumerate(zip(self.blocks, self.transitions, strict=True)):
            change_field = transition(pre_features[index], feature, pre_foreground, post_one_hot)
            feature = block(feature + change_field, cond)
            if index < 5:
                feature = F.interpolate(feature, scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(self.to_image(F.leaky_relu(feature, 0.2)))


class ChangenGenerator(nn.Module):
    """G(I_t, S_t, S_t+1, z) → I_t+1. Images (B, 3, H, W) in [-1, 1]; semantics (B, H, W) class indices."""

    def __init__(self, config: str | dict = "cpu"):
        super().__init__()
        self.config = resolve_config(config)
        c = self.config
        self.encoder = ImageEncoder(c["resnet"], c["widths"])
        self.decoder = ConditionalDecoder(
            c["widths"], c["num_classes"], c["noise_channels"], c["spade_hidden"]
        )

    @property
    def noise_channels(self) -> int:
        return self.config["noise_channels"]

    def sample_noise(self, batch: int, height: int, width: int, generator: torch.Generator | None = None):
        """The 3-D Gaussian noise map z (one value per pixel and noise channel)."""
        device = next(self.parameters()).device
        shape = (batch, self.noise_channels, height, width)
        if generator is not None and generator.device != device:
            return torch.randn(shape, generator=generator, device=generator.device).to(device)
        return torch.randn(shape, generator=generator, device=device)

    def forward(self, image_t, semantic_t, semantic_t1, noise=None):
        """`noise`: None (torch's default generator), a `torch.Generator`, or a (B, noise_channels, H, W) map."""
        batch, channels, height, width = image_t.shape
        if channels != 3 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or min(height, width) < MIN_SIZE:
            raise InputError(
                f"The generator needs (B, 3, H, W) images with H and W multiples of {SIZE_MULTIPLE} and at least "
                f"{MIN_SIZE}; got {tuple(image_t.shape)}. Pad or crop the tile."
            )
        if semantic_t.shape != (batch, height, width) or semantic_t1.shape != (batch, height, width):
            raise InputError(
                f"Semantic masks must be (B, H, W) = {(batch, height, width)}; got {tuple(semantic_t.shape)} "
                f"and {tuple(semantic_t1.shape)}."
            )
        if noise is None or isinstance(noise, torch.Generator):
            noise = self.sample_noise(batch, height, width, noise)
        dtype = image_t.dtype
        pre_foreground = (semantic_t > 0).to(dtype).unsqueeze(1)
        post_one_hot = one_hot(semantic_t1, self.config["num_classes"], dtype)
        pre_features = self.encoder(image_t)
        return self.decoder(pre_features, pre_foreground, post_one_hot, noise.to(dtype))


def build_generator(config: str | dict = "cpu") -> ChangenGenerator:
    return ChangenGenerator(config)


def load_generator(
    name_or_path: str = "changen_gan_cpu", device: str | torch.device = "cpu"
) -> ChangenGenerator:
    """A shipped (or exported) generator in eval mode; its architecture comes from the file's metadata.

    It is in channels-last memory format: 20% less CPU per forward here (`bench/bench_generator.py`); add
    `torch.autocast("cpu", dtype=torch.bfloat16)` around calls for another ~30% at bf16 precision.
    """
    state_dict, config = load_weights(name_or_path, device)
    if config.get("model") != "changen_generator":
        raise InputError(f"'{name_or_path}' holds a '{config.get('model')}' model, not a Changen generator.")
    generator = build_generator(config["architecture"])
    generator.load_state_dict(state_dict)
    return generator.to(device, memory_format=torch.channels_last).eval()


# ----------------------------------------------------------------------------------------------- discriminator
class DiscriminatorBlock(nn.Module):
    """OASIS discriminator residual block: (leaky ReLU → 3×3 conv) × 2, optional average-pool down-sampling."""

    def __init__(self, in_channels: int, out_channels: int, down: bool, first: bool = False):
        super().__init__()
        self.first, self.down = first, down
        self.conv0 = conv(in_channels, out_channels, padding_mode="zeros")
        self.conv1 = conv(out_channels, out_channels, padding_mode="zeros")
        self.shortcut = (
            conv(in_channels, out_channels, 1, padding_mode="zeros") if in_channels != out_channels else None
        )

    def forward(self, x):
        dx = self.conv0(x if self.first else F.leaky_relu(x, 0.2))
        dx = self.conv1(F.leaky_relu(dx, 0.2))
        shortcut = x if self.shortcut is None else self.shortcut(x)
        out = shortcut + dx
        return F.avg_pool2d(out, 2) if self.down else out


class OasisDiscriminator(nn.Module):
    """U-Net segmenter: image → (B, num_classes + 1, H, W) logits; class 0 = fake, 1 + c = real class c."""

    def __init__(self, config: str | dict = "cpu"):
        super().__init__()
        c = resolve_config(config)
        widths = c["disc_widths"]
        self.down = nn.ModuleList(
            DiscriminatorBlock(3 if i == 0 else widths[i - 1], widths[i], down=True, first=i == 0)
            for i in range(len(widths))
        )
        self.up = nn.ModuleList()
        for i in reversed(range(len(widths))):
            in_channels = widths[i] if i == len(widths) - 1 else 2 * widths[i]
            out_channels = widths[i - 1] if i > 0 else widths[0]
            self.up.append(DiscriminatorBlock(in_channels, out_channels, down=False))
        self.classifier = nn.Conv2d(widths[0], c["num_classes"] + 1, 1)

    def forward(self, image):
        skips, x = [], image
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for index, block in enumerate(self.up):
            if index > 0:
                x = torch.cat([x, skips.pop()], dim=1)
            x = F.interpolate(block(x), scale_factor=2, mode="nearest")
        return self.classifier(x)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
