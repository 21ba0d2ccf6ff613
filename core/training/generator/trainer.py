"""Bitemporal adversarial training of the Changen generator (Changen Algorithm 1; `python -m core train-generator`).

Each step: crops I_t, S_t from the real building tiles, S_t+1 = F(S_t) from `core.events`, fake = G(S_t+1, I_t,
S_t, z); the OASIS discriminator learns real = (I_t, S_t) and fake = (fake, S_t+1) with class-balanced
cross-entropy over N + 1 classes; G learns to make D label its output as S_t+1.

Deviation from the paper (switch: `--lowfreq-weight`, 0 = the paper's adversarial-only objective): λ · L1 between
blurred G output and blurred I_t on pixels at least 3 px away from any change. On this small CPU budget the
adversarial-only objective first learns to ignore the pre-event image (seen in an early run); the
low-frequency term keeps the layout while texture stays free.

Resumable (`--resume`; checkpoints every few minutes, atomically, with optimisers, EMA and step; the data and
noise of step n come from generators seeded by (seed, rank, n), so a resumed run continues the same stream),
logs losses to `log.csv`, writes sample grids to `samples/`, and runs under `torchrun` (gloo on CPU, NCCL on CUDA).
`--export [PATH]` writes the EMA generator of the latest checkpoint as a shipped safetensors model.
"""

import copy
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ...atomic import atomic_path
from ...device import pick_device
from ...errors import InputError
from ...synthesis.changen_gan import OasisDiscriminator, build_generator, resolve_config
from ...weights import load_weights
from .losses import class_balanced_ce, fake_ce, lowfreq_loss

CHECKPOINT = "checkpoint.pt"
LOG_FIELDS = [
    "step",
    "wall_s",
    "steps_per_s",
    "d_real",
    "d_fake",
    "g_adv",
    "g_lowfreq",
    "removed_ratio",
    "created_ratio",
    "layout_corr",
]


# ------------------------------------------------------------------------------------------------ training
class Trainer:
    def __init__(self, args, device, rank: int, world_size: int):
        self.args, self.device, self.rank, self.world_size = args, device, rank, world_size
        self.architecture = resolve_config(args.config)
        self.generator = build_generator(self.architecture).to(device)
        self.discriminator = OasisDiscriminator(self.architecture).to(device)
        self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=args.lr_g, betas=(0.0, 0.999))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=args.lr_d, betas=(0.0, 0.999))
        self.memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
        for module in (self.generator, self.discriminator, self.ema):
            module.to(memory_format=self.memory_format)
        self.step, self.wall_s = 0, 0.0
        self.g_train, self.d_train = self.generator, self.discriminator
        if world_size > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.generator, device_ids=ids)
            self.d_train = DistributedDataParallel(self.discriminator, device_ids=ids)
        self.autocast_dtype = torch.bfloat16 if args.precision == "bf16" else None

    def autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        )

    def state(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "wall_s": self.wall_s,
            "architecture": self.architecture,
            "args": {k: v for k, v in vars(self.args).items() if k != "export"},
            "torch_rng": torch.get_rng_state(),
        }

    def load(self, state: dict) -> None:
        if state["architecture"] != self.architecture:
            raise InputError(
                f"The checkpoint was trained with architecture {state['architecture']}, not {self.architecture}: "
                "pass the same --config or a new --out."
            )
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.wall_s = state["step"], state["wall_s"]
        torch.set_rng_state(state["torch_rng"])

    def init_generator(self, model: str) -> None:
        """Warm start: G and EMA from an exported generator; the discriminator re-learns quickly."""
        state_dict, config = load_weights(model)
        if config.get("model") != "changen_generator" or config["architecture"] != self.architecture:
            raise InputError(
                f"'{model}' is not a Changen generator with architecture {self.architecture}: "
                "pick a model exported with the same --config."
            )
        self.generator.load_state_dict(state_dict)
        self.ema.load_state_dict(state_dict)
        self.step = config["training"]["steps"]
        self.wall_s = config["training"]["wall_hours"] * 3600

    def train_step(self, batch: dict, noise: torch.Tensor) -> dict[str, float]:
        real = batch["image"].contiguous(memory_format=self.memory_format)
        semantic_t, semantic_t1 = batch["semantic_t"], batch["semantic_t1"]
        with self.autocast():
            fake = self.g_train(real, semantic_t, semantic_t1, noise)

        # Discriminator: real = (I_t, S_t), fake = (G, S_t+1 → "fake" class).
        with self.autocast():
            logits = self.d_train(torch.cat([real, fake.detach()]))
        d_real = class_balanced_ce(logits[: len(real)], semantic_t)
        d_fake = fake_ce(logits[len(real) :])
        self.opt_d.zero_grad(set_to_none=True)
        (d_real + d_fake).backward()
        self.opt_d.step()

        # Generator: D should read the fake as S_t+1 (plain module: no DDP gradient sync for D here).
        self.discriminator.requires_grad_(False)
        with self.autocast():
            fake_logits = self.discriminator(fake)
        self.discriminator.requires_grad_(True)
        g_adv = class_balanced_ce(fake_logits, semantic_t1)
        g_lowfreq = lowfreq_loss(fake, real, batch["change"])
        self.opt_g.zero_grad(set_to_none=True)
        (g_adv + self.args.lowfreq_weight * g_lowfreq).backward()
        self.opt_g.step()
        self.update_ema()
        self.step += 1
        return {
            "d_real": d_real.item(),
            "d_fake": d_fake.item(),
            "g_adv": g_adv.item(),
            "g_lowfreq": g_lowfreq.item(),
        }

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = min(self.args.ema, (1 + self.step) / (10 + self.step))  # short warm-up
        for ema_p, p in zip(self.ema.parameters(), self.generator.parameters(), strict=True):
            ema_p.lerp_(p, 1 - decay)
        for ema_b, b in zip(self.ema.buffers(), self.generator.buffers(), strict=True):
            ema_b.copy_(b)


def save_checkpoint(out: Path, state: dict) -> None:
    with atomic_path(out / CHECKPOINT) as tmp:
        torch.save(state, tmp)


def load_checkpoint(out: Path) -> dict:
    path = out / CHECKPOINT
    if not path.is_file():
        raise InputError(f"No checkpoint at {path}: train first (without --resume) or point --out at a run.")
    from ...guards import torch_load_tensors

    return torch_load_tensors(path)  # tensors and plain values only: a checkpoint from elsewhere runs no code


def distributed_setup(choice: str) -> tuple[torch.device, int, int]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return pick_device(choice), 0, 1
    device = pick_device(choice)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, dist.get_rank(), world_size
