"""The latent space of the diffusion generators (Changen2 §4, ChangeAnywhere §3.2): a KL autoencoder in Stable
Diffusion's layout, diffusers' `AutoencoderKL`. The same class holds our small CPU-trained model and the official
4-channel 8× VAE a GPU user brings (a diffusers folder, or a single .safetensors file in either key layout).

Latents handed to the denoiser are `(z - shift) * scale`, so they have roughly unit variance whatever the model;
our files store the factors measured on the training images (`scaling_factor`, `shift_factor`).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...errors import InputError
from ...weights import load_weights, save_weights

AUTOENCODER_KIND = "autoencoder_kl"
SD_SCALING_FACTOR = 0.18215  # Stable Diffusion 1.x/2.x VAE (the latent space of the official RS-DiT weights)


@dataclass(frozen=True)
class AutoencoderConfig:
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    norm_num_groups: int
    latent_channels: int = 4
    scaling_factor: float = 1.0
    shift_factor: float = 0.0
    mid_block_add_attention: bool = True
    extra: dict = field(default_factory=dict)  # free-form provenance (never read by the model)

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


AUTOENCODER_PRESETS = {
    # Stable Diffusion's VAE: 83.7 M parameters, the space of the official RSDiT-B/2 weights.
    "sd": AutoencoderConfig((128, 256, 512, 512), 2, 32, scaling_factor=SD_SCALING_FACTOR),
    # What one CPU thread can train in hours: the same 8× / 4-channel interface, ~1/40 of the compute.
    "cpu": AutoencoderConfig((32, 64, 128, 128), 1, 16),
}


def build_autoencoder(config: AutoencoderConfig | str = "cpu"):
    from diffusers import AutoencoderKL

    if isinstance(config, str):
        config = AUTOENCODER_PRESETS[config]
    blocks = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        norm_num_groups=config.norm_num_groups,
        latent_channels=config.latent_channels,
        scaling_factor=config.scaling_factor,
        shift_factor=config.shift_factor,
        mid_block_add_attention=config.mid_block_add_attention,
    )


class LatentCodec(torch.nn.Module):
    """An AutoencoderKL with its latent normalisation: images in [-1, 1] ↔ unit-variance latents."""

    def __init__(self, vae, config: AutoencoderConfig):
        super().__init__()
        self.vae = vae
        self.config = config

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    @property
    def downsampling(self) -> int:
        return self.config.downsampling

    def latent_space_digest(self) -> str:
        """A hash of what defines the latent space (encoder, quant_conv, normalisation), not of the decoder:
        a denoiser stays valid for a decoder fine-tuned later."""
        import hashlib

        digest = hashlib.sha256(f"{self.config.scaling_factor:.9g} {self.config.shift_factor:.9g}".encode())
        for key, value in sorted(self.vae.state_dict().items()):
            if key.startswith(("encoder.", "quant_conv.")):
                digest.update(key.encode())
                digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """`(B, 3, H, W)` in [-1, 1] → normalised latents; the posterior mean unless a generator is given."""
        posterior = self.vae.encode(images).latent_dist
        z = posterior.mode() if generator is None else posterior.sample(generator)
        return (z - self.config.shift_factor) * self.config.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents / self.config.scaling_factor + self.config.shift_factor
        return self.vae.decode(z).sample.clamp(-1.0, 1.0)


def to_signed(pixels: np.ndarray, device) -> torch.Tensor:
    """(B, H, W, 3) uint8 images -> (B, 3, H, W) float in [-1, 1] on `device`: the autoencoder's input."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) images in [-1, 1] (decoded) -> (B, H, W, 3) uint8 on the CPU."""
    return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def save_autoencoder(path: str | os.PathLike, codec: LatentCodec, provenance: dict | None = None) -> None:
    config = asdict(codec.config)
    config["extra"] = {**config["extra"], **(provenance or {})}
    save_weights(path, codec.vae.state_dict(), {"kind": AUTOENCODER_KIND, "autoencoder": config})


def config_from_dict(values: dict) -> AutoencoderConfig:
    values = dict(values)
    values["block_out_channels"] = tuple(values["block_out_channels"])
    return AutoencoderConfig(**values)


def load_autoencoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> LatentCodec:
    """Our .safetensors, a diffusers `AutoencoderKL` folder, or an official single-file VAE (.safetensors)."""
    path = Path(path)
    if path.is_dir():
        codec = _load_diffusers_folder(path)
    elif path.suffix == ".safetensors" and path.is_file() and _has_changen_metadata(path):
        state, meta = load_weights(path)
        if meta.get("kind") != AUTOENCODER_KIND:
            raise InputError(f"{path} is a Changen model of kind '{meta.get('kind')}', not an autoencoder.")
        config = config_from_dict(meta["autoencoder"])
        vae = build_autoencoder(config)
        vae.load_state_dict(state, strict=True)
        codec = LatentCodec(vae, config)
    elif path.suffix == ".safetensors" and path.is_file():
        codec = _load_single_file(path)
    elif not path.exists() and path.suffix != ".safetensors":
        from ...weights import resolve_model_path

        return load_autoencoder(resolve_model_path(path), device)
    else:
        raise InputError(
            f"Autoencoder {path} not found or not a .safetensors file / diffusers folder "
            "(config.json + diffusion_pytorch_model.safetensors)."
        )
    return codec.to(device).eval()


def _has_changen_metadata(path: Path) -> bool:
    from safetensors import SafetensorError, safe_open

    from ...weights import CONFIG_KEY

    try:
        with safe_open(str(path), framework="pt") as handle:
            return CONFIG_KEY in (handle.metadata() or {})
    except SafetensorError as error:
        raise InputError(f"{path} is not a readable .safetensors file ({error}).") from error


def _sd_config_with(latent_channels: int, scaling_factor: float) -> AutoencoderConfig:
    sd = AUTOENCODER_PRESETS["sd"]
    return AutoencoderConfig(
        sd.block_out_channels, sd.layers_per_block, sd.norm_num_groups, latent_channels, scaling_factor
    )


def _load_diffusers_folder(path: Path) -> LatentCodec:
    from diffusers import AutoencoderKL

    if not (path / "config.json").is_file():
        raise InputError(f"{path} has no config.json: not a diffusers AutoencoderKL folder.")
    weights = list(path.glob("diffusion_pytorch_model*.safetensors"))
    if not weights:
        raise InputError(
            f"{path} holds no diffusion_pytorch_model.safetensors; pickled .bin weights are not loaded for "
            "safety (convert them to safetensors)."
        )
    vae = AutoencoderKL.from_pretrained(str(path), use_safetensors=True, local_files_only=True)
    cfg = vae.config
    config = AutoencoderConfig(
        tuple(cfg.block_out_channels),
        cfg.layers_per_block,
        cfg.norm_num_groups,
        cfg.latent_channels,
        float(cfg.scaling_factor or 1.0),
        float(getattr(cfg, "shift_factor", None) or 0.0),
        bool(getattr(cfg, "mid_block_add_attention", True)),
    )
    return LatentCodec(vae, config)


def _load_single_file(path: Path) -> LatentCodec:
    """A VAE in diffusers' key layout loads directly; the original (LDM) layout is converted by diffusers."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    state = {key.removeprefix("first_stage_model."): value for key, value in state.items()}
    if "encoder.conv_in.weight" not in state:
        raise InputError(f"{path} is not an autoencoder (no encoder.conv_in.weight).")
    latent_channels = state["quant_conv.weight"].shape[0] // 2
    config = _sd_config_with(latent_channels, SD_SCALING_FACTOR)
    if any(key.startswith("encoder.down_blocks.") for key in state):
        vae = build_autoencoder(config)
        missing, unexpected = vae.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise InputError(
                f"{path} does not match Stable Diffusion's VAE: {len(missing)} missing keys "
                f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})."
            )
        return LatentCodec(vae, config)
    from diffusers import AutoencoderKL

    with tempfile.TemporaryDirectory() as folder:  # the config diffusers would otherwise fetch from the hub
        (Path(folder) / "config.json").write_text(json.dumps(dict(build_autoencoder(config).config)))
        vae = AutoencoderKL.from_single_file(str(path), config=folder, local_files_only=True)
    return LatentCodec(vae, config)
