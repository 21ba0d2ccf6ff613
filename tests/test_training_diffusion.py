"""The autoencoder and denoiser trainers: a few real steps on the shared data, checkpoints that load with
`weights_only=True`, resuming with the same command, export to files the sampler loads, refusal of another
latent space."""

import json

import numpy as np
import pytest
import torch

from core.__main__ import main
from core.errors import InputError
from core.events.classes import BUILDING, PROJECT_CLASSES, one_hot, to_project_classes
from core.synthesis.diffusion.autoencoder import (
    AutoencoderConfig,
    LatentCodec,
    build_autoencoder,
    save_autoencoder,
)


@pytest.fixture(scope="module")
def tiny_autoencoder(tmp_path_factory):
    config = AutoencoderConfig((8, 8, 8, 8), 1, 4)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ae") / "tiny_ae.safetensors"
    save_autoencoder(path, LatentCodec(build_autoencoder(config), config))
    return path


def test_label_spaces_map_every_source_and_ask_for_unknown_values():
    dubai = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)
    np.testing.assert_array_equal(
        to_project_classes(dubai, "dubai_mbrsc"),
        [[0, BUILDING, 1], [4, 5, 6]],  # unlabeled, building, bareland / road, tree, water
    )
    with pytest.raises(InputError, match=r"class values \[9\].*give each value a project class"):
        to_project_classes(np.array([[9]], np.uint8), "potsdam")
    assert one_hot(np.array([[BUILDING]], np.uint8)).shape == (len(PROJECT_CLASSES), 1, 1)


def test_denoiser_trains_resumes_and_exports(tmp_path, tiny_autoencoder, shared_data):
    from core.synthesis.diffusion.change_sampler import load_latent_diffusion, synthesize_change

    run = tmp_path / "run"
    common = ["train-denoiser", "--run-dir", str(run), "--autoencoder", str(tiny_autoencoder), "--crop", "32"]
    common += ["--batch", "2", "--threads", "1", "--log-every", "1"]
    assert main([*common, "--steps", "2"]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    assert main([*common, "--steps", "3"]) == 0  # the same command continues
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3] and all(np.isfinite(row["loss"]) for row in rows)
    target = tmp_path / "dit.safetensors"
    assert main([*common, "--export", str(target)]) == 0
    generator = load_latent_diffusion(target, tiny_autoencoder)
    assert generator.denoiser.config.label_channels == len(PROJECT_CLASSES)
    image = np.full((64, 64, 3), 120, np.uint8)
    change = np.zeros((64, 64), bool)
    change[20:40, 20:40] = True
    out = synthesize_change(generator, image, np.where(change, BUILDING, 0).astype(np.uint8), change)
    assert out.shape == image.shape and (out[:8, :8] == 120).all()
    # a new run warm-started from the export continues its step count from the exported weights
    warm = ["train-denoiser", "--run-dir", str(tmp_path / "warm"), "--autoencoder", str(tiny_autoencoder)]
    warm += ["--crop", "32", "--batch", "2", "--threads", "1", "--init", str(target)]
    assert main([*warm, "--steps", "4", "--preset", "S/2"]) == 2  # another network shape is refused
    assert main([*warm, "--steps", "4"]) == 0
    assert torch.load(tmp_path / "warm" / "checkpoint.pt", weights_only=True)["step"] == 4


def test_denoiser_refuses_to_resume_in_another_latent_space(tmp_path, tiny_autoencoder, shared_data):
    run = tmp_path / "run"
    common = ["train-denoiser", "--run-dir", str(run), "--crop", "32", "--batch", "2", "--threads", "1"]
    assert main([*common, "--autoencoder", str(tiny_autoencoder), "--steps", "1"]) == 0
    config = AutoencoderConfig((8, 8, 8, 8), 1, 4)
    torch.manual_seed(5)
    other = tmp_path / "other.safetensors"
    save_autoencoder(other, LatentCodec(build_autoencoder(config), config))
    assert main([*common, "--autoencoder", str(other), "--steps", "2"]) == 2


def test_autoencoder_trains_resumes_and_exports(tmp_path, shared_data):
    from core.synthesis.diffusion.autoencoder import load_autoencoder

    run = tmp_path / "vae"
    common = ["train-autoencoder", "--run-dir", str(run), "--crop", "32", "--batch", "1", "--threads", "1"]
    common += ["--log-every", "1", "--adv-start", "1", "--eval-crops", "2"]
    assert main([*common, "--steps", "2"]) == 0
    assert main([*common, "--steps", "3", "--freeze-encoder"]) == 0
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "d" in rows[-1]  # the patch GAN term is on after --adv-start
    target = tmp_path / "vae.safetensors"
    assert main([*common, "--export", str(target)]) == 0
    codec = load_autoencoder(target)
    assert codec.config.scaling_factor > 0 and codec.config.extra["step"] == 3
