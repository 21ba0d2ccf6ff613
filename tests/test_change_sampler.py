"""Latent-mixing change synthesis: the unchanged area stays, only windows around the change are sampled, same seed
same output, variation redraws the unchanged area, progress and cancel per sampler step."""

import numpy as np
import pytest
import torch

from core.errors import Canceled, InputError
from core.events.classes import BUILDING, PROJECT_CLASSES
from core.synthesis.diffusion.autoencoder import (
    AutoencoderConfig,
    LatentCodec,
    build_autoencoder,
    save_autoencoder,
)
from core.synthesis.diffusion.change_sampler import (
    LatentDiffusionGenerator,
    change_windows,
    latent_keep_mask,
    load_latent_diffusion,
    synthesize_change,
)
from core.synthesis.diffusion.rsdit import RSDiTConfig, build_rsdit

TINY_AE = AutoencoderConfig((8, 8, 8, 8), 1, 4)


def _generator(steps: int = 4, seed: int = 0) -> LatentDiffusionGenerator:
    torch.manual_seed(seed)
    codec = LatentCodec(build_autoencoder(TINY_AE), TINY_AE).eval()
    model = build_rsdit(
        RSDiTConfig(hidden_size=32, depth=2, num_heads=2, label_channels=len(PROJECT_CLASSES))
    )
    for parameter in model.parameters():  # leave adaLN-Zero: the output must depend on the input
        parameter.data.normal_(0, 0.05)
    return LatentDiffusionGenerator(codec, model.eval(), "classes", steps=steps)


def _scene(size: int = 96):
    rng = np.random.default_rng(0)
    image = rng.integers(40, 200, (size, size, 3), dtype=np.uint8)
    classes = np.zeros((size, size), np.uint8)
    change = np.zeros((size, size), bool)
    change[30:46, 50:70] = True
    classes[change] = BUILDING
    return image, classes, change


def test_windows_cover_the_change_with_context_and_merge():
    change = np.zeros((300, 400), bool)
    change[10:20, 10:20] = True
    change[40:50, 30:40] = True  # near the first: one window
    change[250:260, 350:360] = True  # far: its own window
    windows = change_windows(change, context=16, max_window=128)
    assert len(windows) == 2
    covered = np.zeros_like(change)
    for top, left, height, width in windows:
        assert height % 16 == 0 and width % 16 == 0 and top >= 0 and left >= 0
        assert top + height <= 300 and left + width <= 400
        covered[top : top + height, left : left + width] = True
    assert covered[change].all() and covered.mean() < 0.2


def test_keep_mask_is_zero_on_the_change_and_one_far_away():
    change = np.zeros((128, 128), bool)
    change[56:72, 56:72] = True
    keep = latent_keep_mask(change, 8)
    assert keep.shape == (16, 16)
    assert keep[6:10, 6:10].max() == 0.0 and 0 < keep[5, 8] < 1 and keep[0, 0] == pytest.approx(1.0, abs=1e-3)


def test_outside_the_change_is_the_input_and_inside_is_generated():
    generator = _generator()
    image, classes, change = _scene()
    out = synthesize_change(generator, image, classes, change, seed=3, context=16)
    grown = np.zeros_like(change)
    grown[30 - 16 : 46 + 16, 50 - 16 : 70 + 16] = True
    np.testing.assert_array_equal(out[~grown], image[~grown])
    assert np.abs(out[change].astype(int) - image[change]).mean() > 5


def test_same_seed_same_output_and_another_seed_differs():
    generator = _generator()
    image, classes, change = _scene()
    first = synthesize_change(generator, image, classes, change, seed=1)
    np.testing.assert_array_equal(first, synthesize_change(generator, image, classes, change, seed=1))
    assert not np.array_equal(first, synthesize_change(generator, image, classes, change, seed=2))


def test_variation_redraws_the_unchanged_area_only_when_asked():
    generator = _generator()
    image, classes, change = _scene(64)
    kept = synthesize_change(generator, image, classes, change, keep_outside=False, context=32, max_window=64)
    varied = synthesize_change(
        generator, image, classes, change, variation=0.5, keep_outside=False, context=32, max_window=64
    )
    far = np.zeros_like(change)
    far[:8, :8] = True
    assert np.abs(varied[far].astype(int) - kept[far]).mean() > 1


def test_progress_per_step_and_cancel():
    generator = _generator(steps=4)
    image, classes, change = _scene()
    seen = []
    synthesize_change(generator, image, classes, change, progress=seen.append)
    assert seen == [25.0, 50.0, 75.0, 100.0]
    with pytest.raises(Canceled):
        synthesize_change(generator, image, classes, change, is_canceled=lambda: True)


def test_bad_inputs_are_named():
    generator = _generator()
    image, classes, change = _scene()
    with pytest.raises(InputError, match="RGB"):
        synthesize_change(generator, image[..., 0], classes, change)
    with pytest.raises(InputError, match="variation"):
        synthesize_change(generator, image, classes, change, variation=2.0)


def test_shipped_form_round_trips_and_refuses_another_latent_space(tmp_path):
    from core.weights import save_weights

    generator = _generator()
    save_autoencoder(tmp_path / "ae.safetensors", generator.codec)
    meta = {
        "kind": "rsdit",
        "rsdit": generator.denoiser.config.__dict__,
        "autoencoder": "ae",
        "autoencoder_digest": generator.codec.latent_space_digest(),
    }
    save_weights(tmp_path / "dit.safetensors", generator.denoiser.state_dict(), meta)
    loaded = load_latent_diffusion(tmp_path / "dit.safetensors", tmp_path / "ae.safetensors")
    image, classes, change = _scene()
    np.testing.assert_array_equal(
        synthesize_change(loaded, image, classes, change, seed=4),
        synthesize_change(
            LatentDiffusionGenerator(loaded.codec, loaded.denoiser, "classes", steps=20),
            image,
            classes,
            change,
            seed=4,
        ),
    )
    other = _generator(seed=9)
    save_autoencoder(tmp_path / "other.safetensors", other.codec)
    with pytest.raises(InputError, match="latent space"):
        load_latent_diffusion(tmp_path / "dit.safetensors", tmp_path / "other.safetensors")
    with pytest.raises(InputError, match="VAE"):
        load_latent_diffusion(tmp_path / "official.pt")


def test_regenerate_redraws_the_whole_image_in_tiles():
    from core.synthesis.diffusion.change_sampler import synthesize_building_edit, whole_image_windows

    assert whole_image_windows((100, 40), 64) == [(0, 0, 64, 48), (64, 0, 48, 48)]
    generator = _generator()
    image, _, change = _scene()
    semantic = change.astype(np.uint8)
    kept = synthesize_building_edit(generator, image, semantic, change, seed=0, unchanged="keep")
    redrawn = synthesize_building_edit(generator, image, semantic, change, seed=0, unchanged="regenerate")
    assert (kept[:8, :8] == image[:8, :8]).all() and not (redrawn[:8, :8] == image[:8, :8]).all()
