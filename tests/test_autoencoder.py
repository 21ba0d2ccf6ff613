"""The latent autoencoder: presets, normalisation, and the three file forms it loads (ours, a diffusers folder,
a single file in diffusers' key layout), with clear refusals."""

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.synthesis.diffusion.autoencoder import (
    AutoencoderConfig,
    LatentCodec,
    build_autoencoder,
    load_autoencoder,
    save_autoencoder,
    to_signed,
    to_uint8,
)
from core.training.diffusion.autoencoder import (
    evaluation_crops,
    load_training_images,
    psnr_ssim,
    random_crops,
)

TINY = AutoencoderConfig((8, 16), 1, 4, scaling_factor=0.5, shift_factor=0.1)


def _tiny_codec(seed: int = 0) -> LatentCodec:
    torch.manual_seed(seed)
    return LatentCodec(build_autoencoder(TINY), TINY).eval()


def test_sd_preset_is_stable_diffusions_vae_shape():
    vae = build_autoencoder("sd")
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
    assert vae.encoder.conv_in.weight.shape == (128, 3, 3, 3)
    assert vae.quant_conv.weight.shape == (8, 8, 1, 1)  # 4 latent channels: mean and log-variance


def test_cpu_preset_downsamples_eight_times_into_four_channels():
    codec = LatentCodec(build_autoencoder("cpu"), AutoencoderConfig((32, 64, 128, 128), 1, 16)).eval()
    with torch.inference_mode():
        latents = codec.encode(torch.zeros(1, 3, 64, 96))
        assert latents.shape == (1, 4, 8, 12)
        assert codec.decode(latents).shape == (1, 3, 64, 96)


def test_normalisation_is_applied_and_undone():
    codec = _tiny_codec()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        raw = codec.vae.encode(images).latent_dist.mode()
        latents = codec.encode(images)
        torch.testing.assert_close(latents, (raw - 0.1) * 0.5)
        torch.testing.assert_close(codec.decode(latents), codec.vae.decode(raw).sample.clamp(-1, 1))


def test_our_file_round_trips_with_its_config(tmp_path):
    codec = _tiny_codec()
    path = tmp_path / "vae.safetensors"
    save_autoencoder(path, codec, {"step": 7})
    loaded = load_autoencoder(path)
    assert loaded.config.scaling_factor == 0.5 and loaded.config.shift_factor == 0.1
    assert loaded.config.extra["step"] == 7
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        torch.testing.assert_close(loaded.decode(loaded.encode(images)), codec.decode(codec.encode(images)))


def test_diffusers_folder_loads_and_pickles_are_refused(tmp_path):
    codec = _tiny_codec()
    codec.vae.save_pretrained(tmp_path / "vae", safe_serialization=True)
    loaded = load_autoencoder(tmp_path / "vae")
    assert loaded.config.block_out_channels == (8, 16) and loaded.config.scaling_factor == 0.5
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text((tmp_path / "vae" / "config.json").read_text())
    with pytest.raises(InputError, match="not loaded for safety"):
        load_autoencoder(tmp_path / "pickled")


def test_single_file_in_diffusers_layout_loads_as_stable_diffusion(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(1)
    state = {key: value.contiguous() for key, value in build_autoencoder("sd").state_dict().items()}
    save_file(state, str(tmp_path / "sd_vae.safetensors"))
    loaded = load_autoencoder(tmp_path / "sd_vae.safetensors")
    assert loaded.config.scaling_factor == pytest.approx(0.18215)
    torch.testing.assert_close(loaded.vae.encoder.conv_in.weight, state["encoder.conv_in.weight"])


def test_bad_files_get_messages(tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="not a readable .safetensors"):
        load_autoencoder(corrupt)
    with pytest.raises(InputError, match="not found"):
        load_autoencoder(tmp_path / "missing_vae")


def test_training_images_exclude_evaluation_and_demo_data(shared_data):
    train, held_out = load_training_images(shared_data)
    names = [image.name for image in train + held_out]
    assert not any(name.startswith(("change/", "georef/")) for name in names)
    assert {image.source for image in train} >= {"xbd_harvey", "crowdai", "dubai_mbrsc", "levir_extra"}
    assert held_out and not {image.name for image in held_out} & {image.name for image in train}
    assert all(image.pixels.ndim == 3 and image.pixels.shape[2] == 3 for image in train[:5])
    (crops,) = random_crops(train, np.random.default_rng(0), 3, 64)
    assert crops.shape == (3, 64, 64, 3) and crops.dtype == np.uint8
    (again,) = random_crops(train, np.random.default_rng(0), 3, 64)
    np.testing.assert_array_equal(crops, again)
    fixed = evaluation_crops(held_out, crop=64, count=4)
    assert fixed.shape == (4, 64, 64, 3)


def test_pixels_convert_to_the_signed_range_and_back():
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    signed = to_signed(pixels, "cpu")
    assert signed.shape == (2, 3, 5, 7) and signed.min() >= -1 and signed.max() <= 1
    assert float(signed[1, 2, 3, 4]) == pytest.approx(pixels[1, 3, 4, 2] / 127.5 - 1)
    np.testing.assert_array_equal(to_uint8(signed), pixels)
    assert to_uint8(torch.full((1, 3, 2, 2), 5.0)).max() == 255  # decoded values beyond the range are clipped


def test_psnr_and_ssim_of_identical_and_noisy_images():
    rng = np.random.default_rng(0)
    ramp = np.linspace(60, 190, 32)
    images = np.broadcast_to((ramp[:, None, None] + ramp[None, :, None]) / 2, (2, 32, 32, 3)).astype(np.uint8)
    psnr, ssim = psnr_ssim(images, images)
    assert psnr > 90 and ssim == pytest.approx(1.0)
    noisy = np.clip(images.astype(int) + rng.normal(0, 10, images.shape), 0, 255).astype(np.uint8)
    psnr, ssim = psnr_ssim(images, noisy)
    assert 27 < psnr < 30 and ssim < 0.9
