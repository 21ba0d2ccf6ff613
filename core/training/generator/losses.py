"""The generator's losses: OASIS class-balanced cross-entropy for the discriminator and the low-frequency
layout term (a deviation from the paper, `--lowfreq-weight 0` turns it off)."""

import torch
import torch.nn.functional as F

LOWFREQ_CHANGE_MARGIN = 3  # pixels around a change excluded from the low-frequency loss
LOWFREQ_POOL = 4  # blur = 4×4 average pooling


# ------------------------------------------------------------------------------------------------------ losses
def class_balanced_ce(logits: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
    """OASIS real-class loss: targets 1 + class, each class weighted by the inverse of its pixel share."""
    num_classes = logits.shape[1] - 1
    counts = torch.bincount(semantic.flatten(), minlength=num_classes).float()
    present = (counts > 0).sum()
    weights = torch.where(
        counts > 0, semantic.numel() / (present * counts.clamp(min=1)), torch.zeros_like(counts)
    )
    loss = F.cross_entropy(logits.float(), semantic + 1, reduction="none")
    return (loss * weights[semantic]).mean()


def fake_ce(logits: torch.Tensor) -> torch.Tensor:
    target = torch.zeros(logits.shape[0], *logits.shape[2:], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits.float(), target)


def unchanged_low_res(change: torch.Tensor) -> torch.Tensor:
    """(B, 1, H/4, W/4): 1 where a 4×4 cell is at least LOWFREQ_CHANGE_MARGIN px from every changed pixel."""
    near_change = F.max_pool2d(
        change.float().unsqueeze(1), 2 * LOWFREQ_CHANGE_MARGIN + 1, 1, LOWFREQ_CHANGE_MARGIN
    )
    return 1 - F.max_pool2d(near_change, LOWFREQ_POOL)


def lowfreq_loss(fake: torch.Tensor, real: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    keep = unchanged_low_res(change)
    diff = (F.avg_pool2d(fake.float(), LOWFREQ_POOL) - F.avg_pool2d(real.float(), LOWFREQ_POOL)).abs()
    return (diff * keep).sum() / (keep.sum() * 3).clamp(min=1)
