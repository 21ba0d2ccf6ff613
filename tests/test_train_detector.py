"""Detector training: STAR labels, restyled no-change pairs, threshold/calibration, resume, torchrun, export."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from core.data.augment import restyle
from core.data.buildings import BuildingTile, load_building_tiles
from core.data.pairs import find_pair_folders, write_pair
from core.detection.loading import load_detector
from core.detection.metrics import threshold_sweep
from core.training.detector.card import write_model_card
from core.training.detector.model import learning_rate
from core.training.detector.sampler import PairSampler

REPO = Path(__file__).resolve().parent.parent


def _tiles():
    rng = np.random.default_rng(0)
    tiles = []
    for index in range(2):
        image = rng.integers(0, 255, size=(96, 96, 3), dtype=np.uint8)
        mask = np.zeros((96, 96), np.uint8)
        mask[10 + 30 * index : 40 + 30 * index, 20:60] = 1
        tiles.append(BuildingTile(f"t{index}", "test", image, mask))
    return tiles


def test_star_pairs_label_the_xor_of_building_masks():
    sampler = PairSampler(_tiles(), [], crop=96, star_fraction=1.0, no_change_fraction=0.0)
    rng = np.random.default_rng(1)
    star = sampler._star(rng)
    tiles = _tiles()
    masks = {tile.image.tobytes(): tile.mask for tile in tiles}
    expected = np.bitwise_xor(masks[star[0].tobytes()], masks[star[1].tobytes()])
    assert np.array_equal(star[2], expected)


def _grid_tiles() -> list[BuildingTile]:
    """Bright 6-px roofs on dark ground, on three shifted grids."""
    tiles = []
    for offset in (0, 5, 9):
        mask = np.zeros((160, 160), np.uint8)
        for row in range(4 + offset, 150, 14):
            for col in range(4 + 2 * offset % 14, 150, 14):
                mask[row : row + 6, col : col + 6] = 1
        image = (40 + 180 * mask[..., None].repeat(3, axis=2)).astype(np.uint8)
        tiles.append(BuildingTile(f"grid{offset}", "test", image, mask))
    return tiles


def _label_mismatch(sampler: PairSampler, samples: int = 12) -> float:
    """Pixels where the label disagrees with the XOR of the two dates' roofs (Otsu-bright), per labelled pixel."""
    wrong = total = 0
    for seed in range(samples):
        t1, t2, change = sampler.sample(np.random.default_rng(seed))
        roofs = [
            cv2.threshold(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[
                1
            ]
            for image in (t1, t2)
        ]
        wrong += int(((roofs[0] ^ roofs[1]).astype(bool) != change.astype(bool)).sum())
        total += int(change.sum())
    return wrong / total


def test_misregistered_star_labels_follow_what_each_date_shows(monkeypatch):
    """Grids of bright 6-px roofs: the label must sit on the roofs each date shows, even after t2 moved."""
    sampler = PairSampler(_grid_tiles(), [], crop=96, star_fraction=1.0, no_change_fraction=0.0)
    aligned = _label_mismatch(sampler)
    monkeypatch.setattr("core.training.detector.sampler.follow_t2", lambda change, mask_t1, matrix: change)
    assert aligned < 0.6 * _label_mismatch(sampler)


def test_learning_rate_warms_up_then_holds_or_decays():
    assert learning_rate(0, 1.0, 10) == 0.1 and learning_rate(9, 1.0, 10) == 1.0
    assert learning_rate(500, 1.0, 10) == 1.0
    assert abs(learning_rate(55, 1.0, 10, cosine_until=100) - 0.5) < 1e-9
    assert (
        learning_rate(100, 1.0, 10, cosine_until=100) == 0.0 == learning_rate(150, 1.0, 10, cosine_until=100)
    )


def test_local_star_pairs_change_one_region_and_label_only_its_buildings():
    tiles = _grid_tiles()
    sampler = PairSampler(tiles, [], crop=160, star_fraction=1.0, no_change_fraction=0.0, local_star=1.0)
    t1, t2, change, mask_t1 = sampler._local(
        tiles[0].image, tiles[0].mask, tiles[1].image, tiles[1].mask, np.random.default_rng(4)
    )
    untouched = (t1 == t2).all(axis=2)
    assert untouched.mean() > 0.1 and not untouched.all()  # one region changed, the rest kept
    assert change.any() and not change[untouched].any()
    xor = np.bitwise_xor(tiles[0].mask, tiles[1].mask).astype(bool)
    assert not (change.astype(bool) & ~xor).any()
    components, _ = ndimage.label(tiles[0].mask | tiles[1].mask)
    for index in np.unique(components[change.astype(bool)]):  # every changed building changed whole
        assert (change.astype(bool) == xor)[components == index].all()
    assert mask_t1 is tiles[0].mask


def test_no_change_pairs_differ_in_appearance_only():
    sampler = PairSampler(_tiles(), [], crop=64, star_fraction=1.0, no_change_fraction=1.0)
    t1, t2, change = sampler.sample(np.random.default_rng(2))
    assert change.sum() == 0 and t1.shape == t2.shape == (64, 64, 3)
    assert np.abs(t1.astype(int) - t2.astype(int)).mean() > 1  # restyled, not identical
    images, labels = sampler.batch(3, np.random.default_rng(3))
    assert images.shape == (3, 6, 64, 64) and labels.shape == (3, 1, 64, 64)


def test_restyle_keeps_structure():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 200
    styled = restyle(image, np.random.default_rng(4))
    assert styled.shape == image.shape and styled.dtype == np.uint8
    assert styled[:, 40:].mean() > styled[:, :24].mean() + 50


def test_threshold_sweep_finds_the_best_threshold_and_measures_calibration():
    rng = np.random.default_rng(5)
    probabilities = rng.random(200_000)
    calibrated_labels = rng.random(200_000) < probabilities
    calibrated = threshold_sweep(probabilities, calibrated_labels)
    assert calibrated["ece"] < 0.01
    assert calibrated["reliability"][9]["observed_change"] == pytest.approx(0.95, abs=0.01)
    overconfident = threshold_sweep(np.clip(probabilities * 1.6, 0, 1), calibrated_labels)
    assert overconfident["ece"] > 0.1
    # Labels that are positive above 0.7 only: the sweep must land there and score a perfect F1.
    stepped = threshold_sweep(probabilities, probabilities >= 0.7)
    assert stepped["threshold"] == 0.7 and stepped["f1"] == 1.0
    # A calibrated detector's F1 curve is flat at the top: the most conservative near-best threshold is chosen.
    assert calibrated["threshold"] > calibrated["best_f1_threshold"]
    assert calibrated["f1"] - 0.01 <= calibrated["f1_at_threshold"] < calibrated["f1"]


def test_pair_folders_from_generate_dataset_layout(tmp_path):
    for index in range(3):
        folder = tmp_path / f"{index:06d}"
        folder.mkdir()
        empty = np.zeros((8, 8), bool)
        write_pair(
            folder,
            {
                "t1": empty[..., None].repeat(3, 2),
                "t2": empty[..., None].repeat(3, 2),
                "mask_t1": empty,
                "mask_t2": empty,
                "change": empty,
                "meta": {},
            },
        )
    (tmp_path / "000001" / "meta.json").unlink()  # unfinished: not a pair yet
    assert [folder.name for folder in find_pair_folders([tmp_path])] == ["000000", "000002"]


def test_real_building_tiles_load(shared_data):
    tiles = load_building_tiles(shared_data / "buildings")
    sources = {path.parent.parent.name for path in (shared_data / "buildings").glob("*/masks/*.png")}
    assert {tile.source for tile in tiles} == sources
    assert all(tile.image.shape[:2] == tile.mask.shape and tile.mask.max() <= 1 for tile in tiles)
    assert sum(tile.mask.any() for tile in tiles) > 0.9 * len(tiles)


def _train(args, env_extra=None, torchrun=False):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command = (launcher if torchrun else [sys.executable]) + ["-m", "core", "train-detector", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def test_two_process_run_resumes_and_exports(tmp_path, shared_data):
    run = tmp_path / "run"
    common = ["--run-dir", str(run), "--crop", "64", "--batch", "1", "--val-pairs", "2", "--log-every", "1"]
    common += ["--fpn-channels", "32", "--threads", "1"]
    started = time.time()
    first = _train([*common, "--steps", "3"], torchrun=True)
    assert first.returncode == 0, first.stderr[-2000:]
    assert time.time() - started < 60
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [1, 2, 3]
    assert log[-1]["pairs_seen"] == 6  # 2 processes × batch 1 × 3 steps
    resumed = _train([*common, "--steps", "5"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming at step 3" in resumed.stdout
    validation = json.loads((run / "validation.json").read_text())
    assert validation["step"] == 5 and 0.05 <= validation["threshold"] <= 0.95
    exported = _train(
        ["--run-dir", str(run), "--export", str(tmp_path / "m.safetensors"), "--which", "latest"]
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    detector = load_detector(tmp_path / "m.safetensors")
    assert detector.config["steps"] == 5 and detector.config["fpn_channels"] == 32
    assert detector.threshold == validation["threshold"]


def test_model_card_states_licence_threshold_calibration_scores_and_commands(tmp_path):
    pairs = tmp_path / "pairs_changen"
    pairs.mkdir()
    dataset = {
        "settings": {"method": "changen", "crop": 256, "star": 0.0, "seed": 3},
        "pairs": 800,
        "sources": ["/data/buildings/idabd/images/a.png", "/data/buildings/idabd/images/b.png"],
    }
    (pairs / "dataset.json").write_text(json.dumps(dataset))
    validation = threshold_sweep(
        np.random.default_rng(6).random(1000), np.random.default_rng(7).random(1000) < 0.3
    )
    config = {
        "fpn_channels": 256, "decoder_channels": 96, "threshold": validation["threshold"], "steps": 1200,
        "pairs_seen": 4800, "train_seconds": 3600.0, "synthetic_validation": validation, "checkpoint": "best.pt",
        "sources": {"generated_pairs": 3788, "pair_roots": [str(pairs)], "star_tiles": ["a", "b"]},
        "train_args": {"batch": "4", "crop": "256", "lr": "0.0002", "freeze_stride": "8", "run_dir": "runs/x",
                       "init": "None", "steps": "300"},
    }  # fmt: skip
    score = {"method": "CVA + Otsu", "precision": 0.5, "recall": 0.25, "f1": 1 / 3, "iou": 0.2}
    report = {"title": "DSIFN", "pairs": ["p"], "change_prevalence": 0.27, "scores": [score]}
    write_model_card(
        tmp_path / "m.md", "m", config, [report], "| pre-trained on | F1 |\n| changen pairs | 70 |"
    )
    card = (tmp_path / "m.md").read_text()
    assert "Non-commercial research use only" in card
    assert f"Decision threshold: **{validation['threshold']}**" in card
    assert "| CVA + Otsu | 50.0 | 25.0 | 33.3 | 20.0 |" in card
    assert card.count("| 0.") >= 10  # one reliability row per bin
    assert "--run-dir runs/x --export resources/models/m.safetensors --card" in card
    assert (
        f"generate-dataset --source /data/buildings/idabd --method changen --pairs 800 --crop 256 --star 0.0 "
        f"--seed 3 --out {pairs}"
    ) in card
    assert f"--pairs {pairs} --steps 300 --batch 4" in card and "--init" not in card
    assert "methods: changen" in card and "| changen pairs | 70 |" in card


def test_reproduce_commands_follow_init_back_through_our_exports(tmp_path):
    import torch

    from core.training.detector.card import reproduce_commands
    from core.weights import save_weights

    parent = tmp_path / "parent.safetensors"
    parent_args = {"run_dir": "runs/first", "steps": "2400", "encoder": "efficientnet_lite0", "init": "None"}
    save_weights(
        parent,
        {"w": torch.zeros(1)},
        {
            "checkpoint": "checkpoint.pt",
            "steps": 1641,
            "train_args": parent_args,
            "sources": {"pair_roots": []},
        },
    )
    child_args = {
        "run_dir": "runs/second",
        "steps": "1200",
        "init": str(parent),
        "cosine": "True",
        "local_star": "0.7",
    }
    lines = reproduce_commands("m", child_args, [])
    assert "--run-dir runs/first --encoder efficientnet_lite0 --steps 1641 --threads 1" in lines[0]
    assert lines[1].startswith(
        f"python -m core train-detector --run-dir runs/first --export {parent} --which latest"
    )
    assert (
        f"--run-dir runs/second --local-star 0.7 --steps 1200 --init {parent} --cosine --threads 1"
        in lines[2]
    )
    assert lines[3].endswith("--export resources/models/m.safetensors --card")


def test_initial_weights_from_resnet18_imagenet_or_a_whole_checkpoint(tmp_path):
    import torch

    from core.detection.changestar import build_changestar
    from core.errors import InputError
    from core.training.detector.model import load_initial_weights

    source = build_changestar("resnet18")
    trunk = {f"{key}": value for key, value in source.encoder.resnet.state_dict().items()}
    trunk["fc.weight"], trunk["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)  # torchvision layout
    torch.save(trunk, tmp_path / "resnet18_imagenet.pth")
    target = build_changestar("resnet18")
    load_initial_weights(target, tmp_path / "resnet18_imagenet.pth")
    assert torch.equal(target.encoder.resnet.conv1.weight, source.encoder.resnet.conv1.weight)
    assert not torch.equal(target.decoder.conv[0].weight, source.decoder.conv[0].weight)
    torch.save({"model": source.state_dict()}, tmp_path / "changestar.pth")
    load_initial_weights(target, tmp_path / "changestar.pth")
    assert torch.equal(target.decoder.conv[0].weight, source.decoder.conv[0].weight)
    with pytest.raises(InputError, match="resnet18"):
        load_initial_weights(build_changestar("efficientnet_lite0"), tmp_path / "resnet18_imagenet.pth")


def test_initial_weights_from_a_shipped_safetensors_detector(tmp_path):
    import torch

    from core.detection.changestar import build_changestar
    from core.errors import InputError
    from core.training.detector.model import load_initial_weights
    from core.weights import save_weights

    source = build_changestar("resnet18")
    path = tmp_path / "detector.safetensors"
    save_weights(path, source.state_dict(), {**source.config.__dict__, "threshold": 0.4})
    target = build_changestar("resnet18")
    load_initial_weights(target, path)
    assert torch.equal(target.decoder.conv[0].weight, source.decoder.conv[0].weight)
    with pytest.raises(InputError, match="--encoder resnet18"):
        load_initial_weights(build_changestar("efficientnet_lite0"), path)


def test_sample_grid_shows_real_pairs_and_the_detector_decisions(tmp_path, shared_data):
    import torch

    from core.detection.changestar import build_changestar
    from core.detection.evaluate import ZERO_SHOT_SETS
    from core.training.detector.export import SAMPLE_CELL, SAMPLES_PER_SET, write_sample_grid
    from core.weights import save_weights

    torch.manual_seed(0)
    model = build_changestar("efficientnet_lite0", fpn_channels=32)
    path = tmp_path / "tiny.safetensors"
    save_weights(path, model.state_dict(), model.export_config(threshold=0.5))
    write_sample_grid(path, tmp_path / "tiny_samples.png")
    grid = np.asarray(Image.open(tmp_path / "tiny_samples.png"))
    assert grid.shape == (len(ZERO_SHOT_SETS) * SAMPLES_PER_SET * SAMPLE_CELL, 4 * SAMPLE_CELL, 3)
    truth = grid[:, 2 * SAMPLE_CELL : 3 * SAMPLE_CELL]
    decisions = grid[:, 3 * SAMPLE_CELL :]
    assert truth.max() == 255 and decisions.max() > 0  # real changes shown, decisions coloured


def test_balanced_sources_draw_a_rare_source_as_often_as_a_large_one():
    blank = np.zeros((8, 8), np.uint8)
    tiles = [BuildingTile(f"big{i}", "big", np.zeros((8, 8, 3), np.uint8), blank) for i in range(9)]
    tiles.append(BuildingTile("rare", "rare", np.zeros((8, 8, 3), np.uint8), blank))
    rng = np.random.default_rng(0)
    for balance, expected in ((False, 0.1), (True, 0.5)):
        sampler = PairSampler(tiles, [], 8, 1.0, 0.0, balance_sources=balance)
        share = np.mean([sampler._tile(rng).source == "rare" for _ in range(4000)])
        assert abs(share - expected) < 0.03, (balance, share)
