"""`python -m core train-denoiser`: Changen2's RS-DiT trained here with the iDDPM objective (learned-range variance)
in the latent space of a frozen autoencoder, conditioned on the one-hot project class map.

Data: building tiles ({building, unlabeled}) and land-cover maps (each source mapped onto the project classes by
`core.events.classes`), sources drawn evenly, 256² crops with 0.5–1× scale jitter and the eight dihedral
transforms. The held-out images are those the autoencoder held out (the same stable hash). Resumable: the same
command continues from `checkpoint.pt` (tensors and plain values, loaded with `weights_only=True`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...data.sampling import is_held_out
from ...errors import InputError
from ...events.classes import PROJECT_CLASSES, to_project_classes
from ...paths import shared_data_dir
from ...synthesis.diffusion.autoencoder import load_autoencoder, to_signed
from ...synthesis.diffusion.process import GaussianDiffusion
from ...synthesis.diffusion.rsdit import RSDiTConfig, build_rsdit
from .checkpoints import autocast, load_checkpoint

LABELLED_SOURCES = (  # (glob of images, label folder relative to the image folder, class mapping)
    ("buildings/{name}/images/*.png", "../masks", "buildings"),
    ("landcover/dubai_mbrsc/images/*.jpg", "../labels", "dubai_mbrsc"),
    ("landcover/loveda/images/*.png", "../labels", "loveda"),
    ("landcover/potsdam/images/*.png", "../labels", "potsdam"),
)
BUILDING_SOURCES = ("xbd_harvey", "idabd", "xbd_joplin", "xbd_guatemala", "crowdai")  # RGB ones
EVAL_TIMESTEPS = (50, 250, 500, 750)
LABELLED_FIELDS = ("pixels", "classes")  # what `random_crops` cuts of a LabelledImage


@dataclass
class LabelledImage:
    source: str
    name: str
    pixels: np.ndarray  # (H, W, 3) uint8
    classes: np.ndarray  # (H, W) uint8 project class ids


def _read_labels(path: Path, mapping: str) -> np.ndarray:
    values = np.asarray(Image.open(path).convert("L"))
    if mapping == "buildings":
        values = (values > 127).astype(np.uint8)
    return to_project_classes(values, mapping, str(path))


def load_labelled_images(root: Path | None = None) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """(train, held-out) image + project-class pairs from every labelled RGB source."""
    root = root or shared_data_dir()
    train, held_out = [], []
    patterns = [
        (p.format(name=name), lab, m) for p, lab, m in LABELLED_SOURCES[:1] for name in BUILDING_SOURCES
    ]
    for pattern, label_dir, mapping in patterns + list(LABELLED_SOURCES[1:]):
        for path in sorted(root.glob(pattern)):
            label_path = (path.parent / label_dir / path.name).with_suffix(".png")
            if not label_path.is_file():
                continue
            relative = str(path.relative_to(root))
            image = LabelledImage(
                relative.split("/")[1],
                relative,
                np.asarray(Image.open(path).convert("RGB")),
                _read_labels(label_path, mapping),
            )
            (held_out if is_held_out(relative) else train).append(image)
    if not train:
        raise InputError(f"No labelled training images under {root}.")
    return train, held_out


def one_hot_batch(classes: np.ndarray, device) -> torch.Tensor:
    """(B, H, W) class ids -> (B, C, H, W) float one-hot on `device`."""
    ids = torch.from_numpy(np.ascontiguousarray(classes)).long().to(device)
    return torch.nn.functional.one_hot(ids, len(PROJECT_CLASSES)).permute(0, 3, 1, 2).float()


class DenoiserTrainer:
    def __init__(self, args, device):
        self.args = args
        self.device = device
        self.codec = load_autoencoder(args.autoencoder, device).requires_grad_(False)
        self.config = RSDiTConfig.preset(
            args.preset, label_channels=len(PROJECT_CLASSES), in_channels=self.codec.latent_channels
        )
        self.model = build_rsdit(self.config).to(device)
        self.ema = build_rsdit(self.config).to(device).requires_grad_(False)
        self.ema.load_state_dict(self.model.state_dict())
        self.diffusion = GaussianDiffusion()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=args.lr, weight_decay=0.0)
        self.step, self.elapsed = 0, 0.0
        self.rng = np.random.default_rng(args.seed)
        self.torch_rng = torch.Generator().manual_seed(args.seed)
        self.autoencoder_digest = self.codec.latent_space_digest()

    def autocast(self):
        return autocast(self.args.precision, self.device)

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "elapsed": self.elapsed,
            "rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": self.torch_rng.get_state(),
            "config": json.dumps(asdict(self.config)),
            "autoencoder_digest": self.autoencoder_digest,
        }

    def load(self, state: dict) -> None:
        if state["autoencoder_digest"] != self.autoencoder_digest:
            raise InputError(
                f"The run was trained in the latent space of another autoencoder (digest "
                f"{state['autoencoder_digest']}); pass the same --autoencoder file."
            )
        if json.loads(state["config"]) != asdict(self.config):
            raise InputError("The run was started with another --preset; pass the same preset.")
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.torch_rng.set_state(state["torch_rng"])

    def start_from(self, path: Path) -> None:
        """A new run warm-started from exported denoiser weights (same latent space and preset); steps and hours
        continue from theirs (the optimizer state starts afresh)."""
        from ...weights import load_weights

        state, meta = load_weights(path, self.device)
        if meta.get("autoencoder_digest") != self.autoencoder_digest:
            raise InputError(
                f"{path} was trained in the latent space of another autoencoder; pass the --autoencoder it names "
                f"({meta.get('autoencoder')})."
            )
        if meta.get("rsdit") != asdict(self.config):
            raise InputError(f"{path} has another RS-DiT shape than --preset {self.args.preset}.")
        weights = {key: value.float() for key, value in state.items()}
        self.model.load_state_dict(weights)
        self.ema.load_state_dict(weights)
        self.step, self.elapsed = int(meta.get("step", 0)), float(meta.get("hours", 0.0)) * 3600

    def latents(self, pixels: np.ndarray) -> torch.Tensor:
        with torch.no_grad(), self.autocast():
            return self.codec.encode(to_signed(pixels, self.device), generator=self.torch_rng).float()

    def train_step(self, pixels: np.ndarray, classes: np.ndarray) -> dict[str, float]:
        x0 = self.latents(pixels)
        labels = one_hot_batch(classes, self.device)
        t = torch.randint(0, self.diffusion.num_timesteps, (len(x0),), generator=self.torch_rng).to(
            self.device
        )
        noise = torch.randn(x0.shape, generator=self.torch_rng).to(self.device)
        x_t = self.diffusion.q_sample(x0, t, noise)
        with self.autocast():
            output = self.model(x_t, t, labels).float()
        losses = self.diffusion.training_losses(output, x0, x_t, t, noise)
        self.opt.zero_grad(set_to_none=True)
        losses["loss"].mean().backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        with torch.no_grad():
            for ema, live in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                ema.lerp_(live, 1.0 - self.args.ema)
        self.step += 1
        return {key: float(value.detach().mean()) for key, value in losses.items()}

    def held_out_losses(self, pixels: np.ndarray, classes: np.ndarray) -> dict[str, float]:
        """EMA model's epsilon MSE at fixed timesteps with fixed noise: a curve comparable across checkpoints."""
        generator = torch.Generator().manual_seed(1234)
        with torch.inference_mode():
            x0 = torch.cat([self.latents(pixels[i : i + 4]) for i in range(0, len(pixels), 4)])
            labels = one_hot_batch(classes, self.device)
            scores = {}
            for step in EVAL_TIMESTEPS:
                t = torch.full((len(x0),), step, device=self.device)
                noise = torch.randn(x0.shape, generator=generator).to(self.device)
                x_t = self.diffusion.q_sample(x0, t, noise)
                errors = []
                for start in range(0, len(x0), 4):
                    part = slice(start, start + 4)
                    with self.autocast():
                        out = self.ema(x_t[part], t[part], labels[part]).float()
                    errors.append(((out[:, : x0.shape[1]] - noise[part]) ** 2).mean(dim=(1, 2, 3)))
                scores[f"mse_t{step}"] = round(float(torch.cat(errors).mean()), 5)
        return scores


def export_denoiser(run_dir: Path, target: Path, autoencoder: Path) -> dict:
    """The EMA weights in bf16 (half the size; sampling runs them in fp32 or bf16 autocast) with their config."""
    from ...weights import save_weights

    state = load_checkpoint(run_dir)
    if state is None:
        raise InputError(f"No checkpoint in {run_dir}: train first (same --run-dir).")
    config = {
        "kind": "rsdit",
        "rsdit": json.loads(state["config"]),
        "classes": list(PROJECT_CLASSES),
        "autoencoder": Path(autoencoder).stem,
        "autoencoder_digest": state["autoencoder_digest"],
        "step": int(state["step"]),
        "hours": round(float(state["elapsed"]) / 3600, 3),
    }
    save_weights(target, {k: v.to(torch.bfloat16) for k, v in state["ema"].items()}, config)
    return config
