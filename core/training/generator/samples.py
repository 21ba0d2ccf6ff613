"""Generator training samples: batches of crops with simulated change, evaluation samples, fidelity metrics and
sample grids."""

import cv2
import numpy as np
import torch

from ...data.buildings import ChangeSample, held_out_crops, random_training_crop, simulate_change


# -------------------------------------------------------------------------------------------------- batches
def to_tensors(samples: list[ChangeSample], device) -> dict[str, torch.Tensor]:
    images = np.stack([s.image for s in samples]).astype(np.float32) / 127.5 - 1
    return {
        "image": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
        "semantic_t": torch.from_numpy(np.stack([s.semantic_t for s in samples]).astype(np.int64)).to(device),
        "semantic_t1": torch.from_numpy(np.stack([s.semantic_t1 for s in samples]).astype(np.int64)).to(
            device
        ),
        "change": torch.from_numpy(np.stack([s.change for s in samples])).to(device),
    }


def training_batch(tiles, shape_bank, rng, batch: int, crop: int) -> list[ChangeSample]:
    samples = []
    for _ in range(batch):
        image, mask, scale = random_training_crop(tiles, rng, crop)
        samples.append(simulate_change(image, mask, rng, shape_bank, scale=scale))
    return samples


def evaluation_samples(
    tiles, shape_bank, crop: int, count: int | None = 12, seed: int = 1234
) -> list[ChangeSample]:
    """Fixed held-out examples: held-out crops with buildings (`count` of them, all when None), taking turns
    with a removal, a creation and both."""
    rng = np.random.default_rng(seed)
    crops = [c for c in held_out_crops(tiles, crop) if c[2].sum() > 0.03 * crop * crop]
    count = len(crops) if count is None else min(count, len(crops))
    picked = [crops[i] for i in rng.choice(len(crops), size=count, replace=False)]
    samples = []
    for index, (_, image, mask) in enumerate(picked):
        samples.append(
            simulate_change(image, mask, rng, shape_bank, mode=("remove", "create", "both")[index % 3])
        )
    return samples


def images_to_uint8(images: torch.Tensor) -> np.ndarray:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def synthesize_samples(generator, samples: list[ChangeSample], seed: int, device) -> np.ndarray:
    batch = to_tensors(samples, device)
    noise = torch.Generator(device="cpu").manual_seed(seed)
    out = generator(batch["image"], batch["semantic_t"], batch["semantic_t1"], noise)
    return images_to_uint8(out)


def fidelity_metrics(samples: list[ChangeSample], synthesized: np.ndarray) -> dict[str, float]:
    """|post − pre| inside removed (created) buildings ÷ outside the change, and the layout correlation of
    blurred pre and post images outside the change (the three numbers of the model card)."""
    inside_removed, inside_created, outside, correlations = [], [], [], []
    for sample, post in zip(samples, synthesized, strict=True):
        difference = np.abs(post.astype(np.float32) - sample.image.astype(np.float32)).mean(axis=2)
        far = ~cv2.dilate(sample.change.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        outside.append(difference[far])
        inside_removed.append(difference[sample.removed])
        inside_created.append(difference[sample.created])
        pre_blur = cv2.blur(sample.image.astype(np.float32).mean(axis=2), (9, 9))[far]
        post_blur = cv2.blur(post.astype(np.float32).mean(axis=2), (9, 9))[far]
        if pre_blur.size > 100 and pre_blur.std() > 0 and post_blur.std() > 0:
            correlations.append(float(np.corrcoef(pre_blur, post_blur)[0, 1]))
    outside_mean = float(np.concatenate(outside).mean()) + 1e-6

    def ratio(parts):
        values = np.concatenate(parts)
        return float(values.mean() / outside_mean) if values.size else float("nan")

    return {
        "removed_ratio": ratio(inside_removed),
        "created_ratio": ratio(inside_created),
        "layout_corr": float(np.mean(correlations)) if correlations else float("nan"),
    }


def mask_to_rgb(mask: np.ndarray, change: np.ndarray | None = None) -> np.ndarray:
    """White buildings on black; changed pixels red (removed) or green (created) when `change` is given."""
    rgb = np.repeat((mask > 0)[..., None] * 255, 3, axis=2).astype(np.uint8)
    if change is not None:
        rgb[change & (mask > 0)] = (40, 200, 40)
        rgb[change & (mask == 0)] = (200, 40, 40)
    return rgb


def sample_grid(samples: list[ChangeSample], synthesized: np.ndarray, gap: int = 4) -> np.ndarray:
    """Rows: pre image | pre mask | post mask (change coloured) | post image."""
    rows = []
    for sample, post in zip(samples, synthesized, strict=True):
        cells = [
            sample.image,
            mask_to_rgb(sample.semantic_t),
            mask_to_rgb(sample.semantic_t1, sample.change),
            post,
        ]
        row = np.full((post.shape[0], 4 * post.shape[1] + 3 * gap, 3), 255, np.uint8)
        for index, cell in enumerate(cells):
            left = index * (post.shape[1] + gap)
            row[:, left : left + post.shape[1]] = cell
        rows.append(row)
    spacer = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([part for row in rows for part in (row, spacer)][:-1])
