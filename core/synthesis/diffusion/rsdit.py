"""RS-DiT, Changen2's resolution-scalable diffusion transformer (the denoiser of its latent diffusion generator).

A DiT without absolute position embedding, so the token grid is read per call (train at 256², sample at 1024²):
- position comes from a depth-wise 3×3 convolution inside every MLP;
- three of every four blocks attend within 8×8-token windows, every fourth block attends globally;
- the condition is a dense label map: a conv stack with three stride-2 stages embeds it at latent resolution, it
  is resized (nearest) to the token grid and added per token to the timestep embedding, so the adaLN-Zero
  shift/scale/gate vary in space;
- learned sigma: the output has 2 × latent channels (epsilon, then the variance interpolation of iDDPM).

Module names and shapes follow torchange's `torchange/models/changen2/rsdit.py` (commit 45434c7), so the official
RSDiT-B/2 and RSDiT-S/2 checkpoints load strictly (`load_official_rsdit`); tests/test_rsdit.py checks the numbers
against that network.
"""

import dataclasses
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import InputError

ARCHITECTURE = "rsdit"
LABEL_DOWNSAMPLING = (
    8  # the label embedder's three stride-2 stages: label maps come at image (8× latent) size
)
OFFICIAL_HEAD_DIM = 64  # every published RSDiT preset (S, B, L, XL) uses 64-channel heads
CHECKPOINT_WRAPPER_KEYS = ("ema", "model", "state_dict")  # DiT-style checkpoints: prefer the EMA weights
# The tensors whose shapes give a checkpoint's config.
SHAPE_KEYS = (
    "x_embedder.proj.weight",
    "t_embedder.mlp.0.weight",
    "y_embedder.convs.0.weight",
    "blocks.0.mlp.fc1.weight",
    "final_layer.linear.weight",
)


@dataclass(frozen=True)
class RSDiTConfig:
    hidden_size: int
    depth: int
    num_heads: int
    patch_size: int = 2
    in_channels: int = 4  # latent channels (Stable Diffusion's 8× VAE)
    label_channels: int = 1  # channels of the condition map (1 for building masks, or one per class)
    mlp_ratio: float = 4.0
    window_size: int = 8  # tokens per window side; 0 makes every block global
    global_every: int = 4  # blocks 4, 8, 12, … attend globally
    learn_sigma: bool = True
    frequency_embedding_size: int = 256

    @property
    def out_channels(self) -> int:
        return 2 * self.in_channels if self.learn_sigma else self.in_channels

    def is_global_block(self, index: int) -> bool:
        return self.window_size == 0 or (index + 1) % self.global_every == 0

    @classmethod
    def preset(cls, name: str, **overrides) -> "RSDiTConfig":
        """`RSDiTConfig.preset("cpu", label_channels=8)`: a preset with some fields replaced."""
        if name not in PRESETS:
            raise InputError(f"Unknown RS-DiT preset '{name}'; choose one of {', '.join(PRESETS)}.")
        return dataclasses.replace(PRESETS[name], **overrides)


PRESETS = {
    "S/2": RSDiTConfig(hidden_size=384, depth=12, num_heads=6),  # the paper's; 35.3 M parameters
    "B/2": RSDiTConfig(
        hidden_size=768, depth=12, num_heads=12
    ),  # the paper's and the released weights'; 140.4 M
    # Trainable on one CPU thread: 11.0 M parameters, 44 MB in fp32, 22 MB in bf16.
    "cpu": RSDiTConfig(hidden_size=256, depth=8, num_heads=4),
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, cosines first, as DiT/GLIDE."""
    half = dim // 2
    frequencies = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    angles = t[:, None].float() * frequencies[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size: int, frequency_embedding_size: int):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.frequency_embedding_size))


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a (N, C, H, W) map, eps 1e-6."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Written out rather than F.layer_norm on a permuted map: same maths, same rounding as torchange's.
        mean = x.mean(1, keepdim=True)
        variance = (x - mean).square().mean(1, keepdim=True)
        normalised = (x - mean) / torch.sqrt(variance + self.eps)
        return self.weight[:, None, None] * normalised + self.bias[:, None, None]


class DenseLabelEmbedder(nn.Module):
    """Four stages of two 3×3 convs (LayerNorm2d + SiLU after each but the last) at widths D/8, D/4, D/2, D;
    the first conv of stages 2–4 has stride 2, so the map comes out at 1/8 of the label resolution."""

    def __init__(self, label_channels: int, hidden_size: int):
        super().__init__()
        widths = [hidden_size // 8, hidden_size // 4, hidden_size // 2, hidden_size]
        layers: list[nn.Module] = []
        in_channels = label_channels
        for stage, width in enumerate(widths):
            for conv_index in range(2):
                stride = 2 if stage > 0 and conv_index == 0 else 1
                layers += [nn.Conv2d(in_channels, width, 3, stride, 1), LayerNorm2d(width), nn.SiLU()]
                in_channels = width
        self.convs = nn.Sequential(*layers[:-1])

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.convs(labels)


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_channels: int, hidden_size: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (N, C, h, w) → (N, h·w, D)


class Attention(nn.Module):
    """Multi-head self-attention over (N, T, D) tokens (timm's `Attention` layout: fused qkv, output proj)."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, channels))


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(N, h, w, D) with h, w multiples of `window` → (N·windows, window², D)."""
    batch, h, w, channels = x.shape
    x = x.view(batch, h // window, window, w // window, window, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, channels)


def window_unpartition(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: (N·windows, window², D) → (N, h, w, D)."""
    channels = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, channels)


class ConvMlp(nn.Module):
    """fc1 → depth-wise 3×3 conv on the token grid (the only source of position) → GELU(tanh) → fc2."""

    def __init__(self, hidden_size: int, mlp_hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, mlp_hidden)
        self.dwconv = nn.Conv2d(mlp_hidden, mlp_hidden, 3, 1, 1, groups=mlp_hidden, bias=False)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(mlp_hidden, hidden_size)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.fc1(x)
        batch, tokens, channels = x.shape
        grid = x.transpose(1, 2).reshape(batch, channels, h, w)
        x = self.dwconv(grid).flatten(2).transpose(1, 2)
        return self.fc2(self.act(x))


class RSDiTBlock(nn.Module):
    """A DiT block with per-token adaLN-Zero conditioning and window or global attention.

    Token grids that are not a multiple of the window are zero-padded at the bottom/right after modulation, and
    the padded tokens take part in attention unmasked, as in torchange: the official weights see what they would
    see there. (They were trained at 16×16 tokens, where no padding happens.)
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, window_size: int):
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = ConvMlp(hidden_size, int(hidden_size * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def attend(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if self.window_size == 0:
            return self.attn(x)
        window = self.window_size
        grid = x.reshape(x.shape[0], h, w, x.shape[2])
        pad_h, pad_w = -h % window, -w % window
        grid = F.pad(grid, (0, 0, 0, pad_w, 0, pad_h))
        windows = self.attn(window_partition(grid, window))
        grid = window_unpartition(windows, window, h + pad_h, w + pad_w)[:, :h, :w]
        return grid.reshape(x.shape)

    def forward(self, x: torch.Tensor, c: torch.Tensor, h: int, w: int) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(
            6, dim=-1
        )
        x = x + gate_msa * self.attend(modulate(self.norm1(x), shift_msa, scale_msa), h, w)
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp), h, w)


class FinalLayer(nn.Module):
    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class RSDiT(nn.Module):
    """`forward(x, t, labels)`: latents (N, C, H, W), timesteps (N,), label maps (N, label_channels, 8H, 8W) →
    (N, out_channels, H, W). H and W must be multiples of the patch size; any size otherwise."""

    def __init__(self, config: RSDiTConfig):
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.x_embedder = PatchEmbed(config.patch_size, config.in_channels, hidden)
        self.t_embedder = TimestepEmbedder(hidden, config.frequency_embedding_size)
        self.y_embedder = DenseLabelEmbedder(config.label_channels, hidden)
        self.blocks = nn.ModuleList(
            RSDiTBlock(
                hidden,
                config.num_heads,
                config.mlp_ratio,
                window_size=0 if config.is_global_block(index) else config.window_size,
            )
            for index in range(config.depth)
        )
        self.final_layer = FinalLayer(hidden, config.patch_size, config.out_channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation: xavier linears and patch embedding, N(0, 0.02) timestep MLP, and adaLN-Zero
        (zero modulation and output layers, so every block starts as the identity and the output is zero)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        patch_weight = self.x_embedder.proj.weight.data
        nn.init.xavier_uniform_(patch_weight.view(patch_weight.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        zeroed = [block.adaLN_modulation[-1] for block in self.blocks]
        zeroed += [self.final_layer.adaLN_modulation[-1], self.final_layer.linear]
        for linear in zeroed:
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)

    def check_inputs(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> None:
        config = self.config
        if x.ndim != 4 or x.shape[1] != config.in_channels:
            raise InputError(f"RS-DiT takes latents (N, {config.in_channels}, H, W); got {tuple(x.shape)}.")
        if x.shape[2] % config.patch_size or x.shape[3] % config.patch_size:
            raise InputError(
                f"Latent height and width must be multiples of the patch size {config.patch_size}; "
                f"got {x.shape[2]}×{x.shape[3]}: crop or pad the latent."
            )
        if labels.ndim != 4 or labels.shape[1] != config.label_channels or labels.shape[0] != x.shape[0]:
            raise InputError(
                f"RS-DiT takes label maps (N, {config.label_channels}, H, W) for its {x.shape[0]} latents; "
                f"got {tuple(labels.shape)}."
            )
        if t.shape != (x.shape[0],):
            raise InputError(
                f"RS-DiT takes one timestep per latent, shape ({x.shape[0]},); got {tuple(t.shape)}."
            )

    def unpatchify(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(N, h·w, p·p·C) with (p, p, C) ordered row, column, channel → (N, C, h·p, w·p)."""
        p, channels = self.config.patch_size, self.config.out_channels
        x = tokens.reshape(tokens.shape[0], h, w, p, p, channels).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(tokens.shape[0], channels, h * p, w * p)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.check_inputs(x, t, labels)
        h, w = x.shape[2] // self.config.patch_size, x.shape[3] // self.config.patch_size
        tokens = self.x_embedder(x)
        time = self.t_embedder(t)[:, None, :]
        dense = self.y_embedder(labels)
        dense = F.interpolate(dense.float(), size=(h, w), mode="nearest").to(time.dtype)
        c = time + dense.flatten(2).transpose(1, 2)  # (N, h·w, D): a condition per token
        for block in self.blocks:
            tokens = block(tokens, c, h, w)
        return self.unpatchify(self.final_layer(tokens, c), h, w)


def build_rsdit(config: RSDiTConfig | str = "cpu", **overrides) -> RSDiT:
    """A freshly initialised RS-DiT from a config or a preset name (`build_rsdit("B/2")`)."""
    if isinstance(config, str):
        config = RSDiTConfig.preset(config, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    return RSDiT(config)


def config_from_state_dict(state: dict[str, torch.Tensor], num_heads: int | None = None) -> RSDiTConfig:
    """The config a state dict was built with, read from its shapes. Heads leave no trace in the shapes: the
    default is 64 channels per head (every official preset); the window size is assumed to be 8."""
    absent = [key for key in SHAPE_KEYS if key not in state]
    if absent:
        raise InputError(
            f"This is not an RS-DiT state dict (no {', '.join(absent)}); "
            "pass a checkpoint of torchange's RSDiT (e.g. RSDiT-B-2-xView2-256)."
        )
    hidden, in_channels, patch, _ = state["x_embedder.proj.weight"].shape
    depth = len({key.split(".")[1] for key in state if key.startswith("blocks.")})
    label_channels = state["y_embedder.convs.0.weight"].shape[1]
    out_channels = state["final_layer.linear.weight"].shape[0] // (patch * patch)
    mlp_hidden = state["blocks.0.mlp.fc1.weight"].shape[0]
    config = RSDiTConfig(
        hidden_size=hidden,
        depth=depth,
        num_heads=num_heads or max(1, hidden // OFFICIAL_HEAD_DIM),
        patch_size=patch,
        in_channels=in_channels,
        label_channels=label_channels,
        mlp_ratio=mlp_hidden / hidden,
        learn_sigma=out_channels == 2 * in_channels,
        frequency_embedding_size=state["t_embedder.mlp.0.weight"].shape[1],
    )
    if hidden % config.num_heads:
        raise InputError(f"{config.num_heads} heads do not divide the hidden size {hidden}; pass num_heads.")
    return config


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a `.pt`/`.pth` file, unwrapped from a {"ema"|"model"|"state_dict": …} dict and stripped of
    DataParallel's `module.` (and torch.compile's `_orig_mod.`) prefixes. Only tensors are unpickled."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"RS-DiT checkpoint not found: {path}.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise InputError(
            f"{path}: this file holds code, not only tensors; it is not loaded for safety. "
            "Re-save its state_dict() with torch.save, or use the released weights file."
        ) from error
    except Exception as error:
        raise InputError(f"Cannot read {path} as a PyTorch checkpoint ({error}).") from error
    if isinstance(checkpoint, dict):
        for key in CHECKPOINT_WRAPPER_KEYS:
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise InputError(
            f"{path} holds no state dict of tensors; pass a file saved from a model's state_dict()."
        )
    state = {}
    for key, value in checkpoint.items():
        for prefix in ("module.", "_orig_mod."):
            key = key.removeprefix(prefix)
        state[key] = value
    return state


def load_state_strictly(model: RSDiT, state: dict[str, torch.Tensor], source: str) -> None:
    """`load_state_dict(strict=True)` with a message that names the missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    misshaped = [
        f"{key} {tuple(state[key].shape)} (expected {tuple(expected[key].shape)})"
        for key in sorted(expected.keys() & state.keys())
        if state[key].shape != expected[key].shape
    ]
    if missing or unexpected or misshaped:

        def listing(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")

        problems = [
            f"{label} {len(keys)}: {listing(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped))
            if keys
        ]
        raise InputError(
            f"{source} does not match RS-DiT {model.config.hidden_size}×{model.config.depth} "
            f"({'; '.join(problems)}); pass an official RSDiT checkpoint or one saved by this plugin."
        )
    model.load_state_dict(state, strict=True)


def load_official_rsdit(
    path: str | Path, device: str | torch.device = "cpu", num_heads: int | None = None
) -> RSDiT:
    """An official torchange RSDiT checkpoint (e.g. RSDiT-B-2-xView2-256 .pt/.pth), its config inferred from the
    tensor shapes, loaded strictly; returned in eval mode on `device`."""
    state = read_checkpoint(path)
    model = RSDiT(config_from_state_dict(state, num_heads=num_heads))
    load_state_strictly(model, state, str(path))
    return model.to(device).eval()
