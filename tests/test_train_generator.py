"""Training the Changen generator: losses, real training data, the CLI (resume, export) and a 2-process run."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.buildings import (
    HOLDOUT_ROWS,
    BuildingTile,
    building_shape_bank,
    generator_tiles,
    held_out_crops,
    random_training_crop,
    simulate_change,
)
from core.synthesis.changen_gan import load_generator
from core.training.generator.losses import class_balanced_ce, lowfreq_loss
from core.training.generator.samples import fidelity_metrics

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiles(shared_data):
    return generator_tiles(shared_data / "buildings")


# ---------------------------------------------------------------------------------------------------- losses
def test_class_balanced_ce_weights_classes_equally():
    semantic = torch.zeros(1, 16, 16, dtype=torch.long)
    semantic[0, :2, :2] = 1  # 4 building pixels, 252 background
    uniform = torch.zeros(1, 3, 16, 16)
    assert class_balanced_ce(uniform, semantic).item() == pytest.approx(math.log(3), rel=1e-5)

    def wrong_on(pixels):
        logits = 5.0 * torch.nn.functional.one_hot(semantic + 1, 3).permute(0, 3, 1, 2).float()  # right …
        rows, cols = pixels
        logits[0, :, rows, cols] = 0.0
        logits[0, 0, rows, cols] = 5.0  # … except on these pixels, called fake
        return class_balanced_ce(logits, semantic).item()

    four_building_pixels = (torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1]))
    four_background_pixels = (torch.tensor([9, 9, 10, 10]), torch.tensor([9, 10, 9, 10]))
    assert wrong_on(four_building_pixels) > 10 * wrong_on(four_background_pixels)


def test_lowfreq_loss_ignores_the_change_and_its_margin():
    real = torch.zeros(1, 3, 64, 64)
    change = torch.zeros(1, 64, 64, dtype=torch.bool)
    change[0, 20:40, 20:40] = True
    assert lowfreq_loss(real.clone(), real, change).item() == 0
    inside = real.clone()
    inside[..., 18:42, 18:42] = 1.0  # the change plus a 2 px margin
    assert lowfreq_loss(inside, real, change).item() == 0
    outside = real.clone()
    outside[..., 50:60, 0:10] = 1.0
    assert lowfreq_loss(outside, real, change).item() > 0


# ------------------------------------------------------------------------------------------------------ data
def test_training_crops_never_touch_held_out_rows():
    image = np.zeros((640, 640, 3), np.uint8)
    image[-HOLDOUT_ROWS:] = 255
    mask = np.zeros((640, 640), np.uint8)
    tile = BuildingTile("synthetic", "test", image, mask)
    rng = np.random.default_rng(0)
    for _ in range(200):
        crop, crop_mask, scale = random_training_crop([tile], rng, 128)
        assert crop.shape == (128, 128, 3) and crop_mask.shape == (128, 128)
        assert 0.5 <= scale <= 1.0
        assert crop.max() == 0
    held_out = held_out_crops([tile], 128)
    assert len(held_out) == 5 and all(c[1].min() == 255 for c in held_out)


def test_real_tiles_and_simulated_changes(tiles):
    assert len(tiles) >= 12
    assert {tile.source for tile in tiles} >= {"xbd_harvey", "idabd", "xbd_joplin"}
    assert all(tile.image.shape[2] == 3 and set(np.unique(tile.mask)) <= {0, 1} for tile in tiles)
    bank = building_shape_bank(tiles)
    assert len(bank) > 100
    rng = np.random.default_rng(1)
    crops = [c for c in held_out_crops(tiles, 128) if c[2].sum() > 500]
    for mode in ("remove", "create", "both"):
        _, image, mask = crops[0]
        sample = simulate_change(image, mask, rng, bank, mode=mode)
        assert np.array_equal(sample.semantic_t, mask)
        assert np.array_equal(sample.change, sample.semantic_t != sample.semantic_t1)
        assert sample.removed.any() == (mode != "create")
        assert sample.created.any() == (mode != "remove")
        assert not (sample.semantic_t[sample.created]).any()
        assert (sample.semantic_t[sample.removed] == 1).all() and not sample.semantic_t1[sample.removed].any()


def test_fidelity_metrics_measure_change_inside_against_outside(tiles):
    rng = np.random.default_rng(2)
    bank = building_shape_bank(tiles)
    _, image, mask = next(c for c in held_out_crops(tiles, 128) if c[2].sum() > 500)
    sample = simulate_change(image, mask, rng, bank, mode="both")
    post = image.copy()
    post[sample.removed] = 0
    post[sample.created] = 255
    post = np.clip(post.astype(int) + rng.integers(-2, 3, post.shape), 0, 255).astype(np.uint8)
    metrics = fidelity_metrics([sample], post[None])
    assert metrics["removed_ratio"] > 5
    assert metrics["created_ratio"] > 5
    assert metrics["layout_corr"] > 0.95


# ------------------------------------------------------------------------------------------------------ CLI
def run_cli(*args, launcher=(sys.executable, "-m")):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [*launcher, "core", "train-generator", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_log(out: Path) -> list[dict]:
    with open(out / "log.csv") as handle:
        return list(csv.DictReader(handle))


def test_train_resume_export_and_load(tmp_path, shared_data):
    out = tmp_path / "gan"
    common = ["--out", str(out), "--batch", "2", "--crop", "64", "--log-every", "1", "--sample-every", "2"]
    first = run_cli(*common, "--steps", "2")
    assert first.returncode == 0, first.stderr
    assert [row["step"] for row in read_log(out)] == ["1", "2"]
    assert (out / "samples" / "step_0000002.png").is_file()
    assert -1 <= float(read_log(out)[1]["layout_corr"]) <= 1

    refused = run_cli(*common, "--steps", "3")
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = run_cli(*common, "--steps", "3", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [row["step"] for row in read_log(out)] == ["1", "2", "3"]

    exported = run_cli("--out", str(out), "--export", str(tmp_path / "g.safetensors"))
    assert exported.returncode == 0, exported.stderr
    generator = load_generator(tmp_path / "g.safetensors")
    checkpoint = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert checkpoint["step"] == 3
    for key, value in checkpoint["ema"].items():
        assert torch.equal(generator.state_dict()[key], value)

    warm = tmp_path / "warm"
    started = run_cli(
        "--out", str(warm), "--batch", "2", "--crop", "64", "--log-every", "1", "--steps", "4",
        "--init-generator", str(tmp_path / "g.safetensors"),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert [row["step"] for row in read_log(warm)] == ["4"]  # continues the exported run's step count
    warm_state = torch.load(warm / "checkpoint.pt", map_location="cpu", weights_only=False)
    exported_g = generator.state_dict()
    drift = max(float((warm_state["generator"][k] - v).abs().max()) for k, v in exported_g.items())
    assert drift < 0.05  # one Adam step (lr 1e-4) away from the exported weights
    assert not torch.equal(
        warm_state["discriminator"]["classifier.weight"], checkpoint["discriminator"]["classifier.weight"]
    )


def test_two_process_torchrun(tmp_path, shared_data):
    out = tmp_path / "ddp"
    torchrun = (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m")
    result = run_cli(
        "--out",
        str(out),
        "--steps",
        "3",
        "--batch",
        "2",
        "--crop",
        "64",
        "--log-every",
        "1",
        launcher=torchrun,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 process(es)" in result.stdout
    assert [row["step"] for row in read_log(out)] == ["1", "2", "3"]
    checkpoint = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert checkpoint["step"] == 3
