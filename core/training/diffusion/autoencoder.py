"""`python -m core train-autoencoder`: the latent autoencoder of the diffusion generators, trained here on CPU.

Loss (Stable Diffusion's recipe, scaled down): L1 + a perceptual term on ImageNet EfficientNet-Lite0 features
(unit-normalised per channel, as LPIPS does) + a small KL term + a light patch-discriminator hinge term that starts
after `--adv-start` steps. `--freeze-encoder` fine-tunes the decoder only, so the latent space (and every denoiser
trained in it) stays valid. Data: RGB images of `../shared/data/{buildings,landcover,unlabeled}`, never `change/` or
`georef/`; one image in ten is held out for PSNR/SSIM. Resumable: the same command continues from `checkpoint.pt`
(tensors and plain values only, loaded with `weights_only=True`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ...data.augment import random_crop, random_dihedral
from ...data.sampling import BySource, is_held_out
from ...errors import InputError
from ...paths import shared_data_dir
from ...synthesis.diffusion.autoencoder import (
    AUTOENCODER_PRESETS,
    LatentCodec,
    build_autoencoder,
    load_autoencoder,
    save_autoencoder,
    to_signed,
    to_uint8,
)
from .checkpoints import autocast, load_checkpoint

# RGB sources (Vaihingen is near-infrared false colour and SpaceNet Atlanta panchromatic: not RGB, left out)
IMAGE_GLOBS = (
    "buildings/*/images/*.png",
    "landcover/dubai_mbrsc/images/*.jpg",
    "landcover/loveda/images/*.png",
    "landcover/potsdam/images/*.png",
    "unlabeled/levir_extra/*.png",
)
EVAL_CROP = 256
EVAL_CROPS = 24
SCALE_JITTER = (0.5, 1.0)


@dataclass
class TrainingImage:
    source: str
    name: str
    pixels: np.ndarray  # (H, W, 3) uint8


def load_training_images(root: Path | None = None) -> tuple[list[TrainingImage], list[TrainingImage]]:
    """(train, held-out) RGB images; the split is a stable hash of each file's path below the data root."""
    root = root or shared_data_dir()
    train, held_out = [], []
    for pattern in IMAGE_GLOBS:
        for path in sorted(root.glob(pattern)):
            relative = str(path.relative_to(root))
            image = TrainingImage(
                relative.split("/")[1], relative, np.asarray(Image.open(path).convert("RGB"))
            )
            (held_out if is_held_out(relative) else train).append(image)
    if not train:
        raise InputError(f"No training images under {root} ({', '.join(IMAGE_GLOBS)}).")
    return train, held_out


def random_crops(images: list, rng: np.random.Generator, batch: int, crop: int, fields=("pixels",)):
    """`batch` crops: sources drawn evenly, then an image; scale jitter 0.5–1×, a crop and one of the 8 dihedral
    transforms, the same for each of the image's `fields` -> one (batch, crop, crop, …) array per field."""
    by_source = BySource(images, lambda image: image.source)
    crops = []
    for _ in range(batch):
        image = by_source.draw(rng)
        arrays = random_crop([getattr(image, name) for name in fields], crop, rng, scale_range=SCALE_JITTER)
        crops.append(random_dihedral(arrays, rng))
    return tuple(np.stack(arrays) for arrays in zip(*crops, strict=True))


def evaluation_crops(
    held_out: list[TrainingImage], crop: int = EVAL_CROP, count: int = EVAL_CROPS
) -> np.ndarray:
    """Fixed crops of the held-out images (the centre, then the corners), at most `count`."""
    crops = []
    for anchor in ((0.5, 0.5), (0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0)):
        for image in held_out:
            height, width = image.pixels.shape[:2]
            if min(height, width) < crop:
                continue
            top = int(anchor[0] * (height - crop))
            left = int(anchor[1] * (width - crop))
            crops.append(image.pixels[top : top + crop, left : left + crop])
            if len(crops) == count:
                return np.stack(crops)
    return np.stack(crops)


class PerceptualLoss(nn.Module):
    """Distance of unit-normalised ImageNet EfficientNet-Lite0 features at strides 4–32 (LPIPS without its
    learned weights); inputs in [-1, 1], the normalisation Lite0 was trained with."""

    def __init__(self):
        super().__init__()
        from ...detection.changestar import EfficientNetLiteTrunk

        self.trunk = EfficientNetLiteTrunk("lite0", imagenet=True).eval().requires_grad_(False)

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self.trunk(real)
        loss = fake.new_zeros(())
        for predicted, target in zip(self.trunk(fake), targets, strict=False):
            predicted = F.normalize(predicted.float(), dim=1)
            target = F.normalize(target.float(), dim=1)
            loss = loss + (predicted - target).pow(2).sum(dim=1).mean()
        return loss


class PatchDiscriminator(nn.Module):
    """A light PatchGAN (receptive field 34 px): judges local texture, the part L1 and features leave blurry."""

    def __init__(self, width: int = 32):
        super().__init__()
        sn = nn.utils.spectral_norm
        self.net = nn.Sequential(
            sn(nn.Conv2d(3, width, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width, width * 2, 4, 2, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width * 2, width * 4, 4, 1, 1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(width * 4, 1, 4, 1, 1)),
        )

    def forward(self, images):
        return self.net(images)


def psnr_ssim(reference: np.ndarray, reconstructed: np.ndarray) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM (per RGB channel, Gaussian σ 1.5) over a batch of uint8 images."""
    from ...synthesis.realism import ssim_map

    psnrs, ssims = [], []
    for a, b in zip(reference, reconstructed, strict=False):
        mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        psnrs.append(10 * np.log10(255.0**2 / max(mse, 1e-10)))
        ssims.append(float(ssim_map(a, b).mean()))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def reconstruct(codec: LatentCodec, pixels: np.ndarray, device, batch: int = 4) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch):
            images = to_signed(pixels[start : start + batch], device)
            out.append(to_uint8(codec.decode(codec.encode(images))))
    return np.concatenate(out)


def latent_statistics(
    codec: LatentCodec, images: list[TrainingImage], device, crop: int, seed: int = 0
) -> tuple[float, float]:
    """Mean and 1/std of the raw posterior means over 64 training crops: the latent normalisation to store."""
    rng = np.random.default_rng(seed)
    values = []
    with torch.inference_mode():
        for _ in range(16):
            (pixels,) = random_crops(images, rng, 4, crop)
            pixels = to_signed(pixels, device)
            values.append(codec.vae.encode(pixels).latent_dist.mode().flatten())
    values = torch.cat(values)
    return float(values.mean()), float(1.0 / values.std())


class Trainer:
    def __init__(self, args, device):
        self.args = args
        self.device = device
        self.vae = build_autoencoder(args.preset).to(device)
        self.disc = PatchDiscriminator().to(device)
        self.perceptual = PerceptualLoss().to(device)
        self.opt = torch.optim.Adam(self.vae.parameters(), lr=args.lr, betas=(0.5, 0.9))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=args.lr, betas=(0.5, 0.9))
        self.step = 0
        self.elapsed = 0.0
        self.rng = np.random.default_rng(args.seed)

    def state(self) -> dict:
        return {
            "vae": self.vae.state_dict(),
            "disc": self.disc.state_dict(),
            "opt": self.opt.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "rng": json.dumps(self.rng.bit_generator.state),
            "preset": self.args.preset,
        }

    def load(self, state: dict) -> None:
        if state["preset"] != self.args.preset:
            raise InputError(f"The run was started with --preset {state['preset']}; pass the same preset.")
        self.vae.load_state_dict(state["vae"])
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.rng.bit_generator.state = json.loads(state["rng"])

    def autocast(self):
        return autocast(self.args.precision, self.device)

    def train_step(self, images: torch.Tensor) -> dict[str, float]:
        args = self.args
        adversarial = self.step >= args.adv_start
        self.vae.encoder.requires_grad_(not args.freeze_encoder)
        self.vae.quant_conv.requires_grad_(not args.freeze_encoder)
        with self.autocast():
            posterior = self.vae.encode(images).latent_dist
            fake = self.vae.decode(posterior.sample()).sample.float()
            l1 = (fake - images).abs().mean()
            perceptual = self.perceptual(fake, images)
            kl = posterior.kl().mean() / images[0].numel()
            loss = l1 + args.perceptual_weight * perceptual + args.kl_weight * kl
            if adversarial:
                loss = loss - args.adv_weight * self.disc(fake).float().mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        logs = {"l1": l1.item(), "perceptual": perceptual.item(), "kl": kl.item()}
        if adversarial:
            with self.autocast():
                real_score = self.disc(images).float()
                fake_score = self.disc(fake.detach()).float()
                d_loss = F.relu(1 - real_score).mean() + F.relu(1 + fake_score).mean()
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            logs["d"] = d_loss.item()
        self.step += 1
        return logs


def evaluate(codec: LatentCodec, crops: np.ndarray, device) -> dict[str, float]:
    psnr, ssim_value = psnr_ssim(crops, reconstruct(codec, crops, device))
    return {"psnr": round(psnr, 3), "ssim": round(ssim_value, 4)}


def export_autoencoder(
    run_dir: Path, target: Path, device, crop: int, latent_space: Path | None = None
) -> tuple[LatentCodec, dict]:
    """The run's autoencoder with the latent normalisation measured on training crops."""
    state = load_checkpoint(run_dir)
    if state is None:
        raise InputError(f"No checkpoint in {run_dir}: train first (same --run-dir).")
    vae = build_autoencoder(state["preset"]).to(device)
    vae.load_state_dict(state["vae"])
    vae.eval()
    base = AUTOENCODER_PRESETS[state["preset"]]
    from dataclasses import replace

    if (
        latent_space is not None
    ):  # a decoder fine-tuned after the encoder froze: keep that space's normalisation
        reference = load_autoencoder(latent_space, device)
        config = reference.config
        codec = LatentCodec(
            vae, replace(base, scaling_factor=config.scaling_factor, shift_factor=config.shift_factor)
        )
        if codec.latent_space_digest() != reference.latent_space_digest():
            raise InputError(
                f"The run's encoder differs from the one of {latent_space}: it was not frozen since that export."
            )
    else:
        train, _ = load_training_images()
        shift, scale = latent_statistics(LatentCodec(vae, base), train, device, crop)
        codec = LatentCodec(vae, replace(base, scaling_factor=scale, shift_factor=shift))
    provenance = {"step": int(state["step"]), "hours": round(float(state["elapsed"]) / 3600, 3)}
    save_autoencoder(target, codec, provenance)
    return codec, provenance
