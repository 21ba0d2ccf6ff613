import numpy as np
import pytest
from PIL import Image

from core.events.state import LabelState
from core.events.step import simulate_step
from core.synthesis.inpaint import inpaint
from core.synthesis.realism import (
    FeatureExtractor,
    change_fidelity,
    frechet_distance,
    kernel_inception_distance,
    ssim_map,
)


@pytest.fixture(scope="module")
def crops(shared_data):
    """Sixteen real 128² crops from two xBD Harvey tiles, with their building masks."""
    folder = shared_data / "buildings" / "xbd_harvey"
    images, masks = [], []
    for name in ("hurricane-harvey_00000001_pre_disaster.png", "hurricane-harvey_00000007_pre_disaster.png"):
        image = np.asarray(Image.open(folder / "images" / name).convert("RGB"))
        mask = np.asarray(Image.open(folder / "masks" / name))
        for row in range(0, 1024, 512):
            for col in range(0, 1024, 256):
                images.append(image[row : row + 128, col : col + 128].copy())
                masks.append(mask[row : row + 128, col : col + 128] > 0)
    return images, masks


def test_fid_and_kid_rank_noise_far_from_real_images(crops):
    images, _ = crops
    extractor = FeatureExtractor(batch_size=8)
    real = extractor(images[:8])
    similar = extractor(images[8:])
    noise = extractor(
        [np.random.default_rng(i).integers(0, 256, (128, 128, 3), dtype=np.uint8) for i in range(8)]
    )
    assert real.shape == (8, 1280)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-3)
    assert frechet_distance(real, noise) > 2 * frechet_distance(real, similar)
    kid_similar, _ = kernel_inception_distance(real, similar)
    kid_noise, _ = kernel_inception_distance(real, noise)
    assert kid_noise > 2 * kid_similar


def test_ssim_is_one_for_identical_images_and_lower_for_noisy_ones(crops):
    grey = crops[0][0].mean(axis=2).astype(np.uint8)
    noisy = np.clip(grey + np.random.default_rng(0).normal(0, 25, grey.shape), 0, 255).astype(np.uint8)
    assert np.allclose(ssim_map(grey, grey), 1.0, atol=1e-4)
    assert ssim_map(grey, noisy).mean() < 0.8


def test_change_fidelity_of_an_inpainted_removal(crops):
    images, masks = crops
    index = int(np.argmax([mask.sum() for mask in masks]))
    state = LabelState.from_mask(masks[index])
    step = simulate_step(state, np.random.default_rng(0), remove=1.0, min_area=16)
    post = inpaint(images[index], state, step, np.random.default_rng(0))
    scores = change_fidelity(images[index], post, step.removed, step.created)
    assert scores["mad_outside"] == 0.0 and scores["ssim_outside"] == pytest.approx(1.0, abs=1e-4)
    assert scores["mad_removed"] > 5.0 and np.isnan(scores["mad_created"])
    assert scores["removed_to_ring_post"] < scores["removed_to_ring_pre"]
