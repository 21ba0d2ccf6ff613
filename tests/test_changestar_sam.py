"""Changen2 ChangeStar(1×256) SAM ViT-B: official key names and shapes, strict loading of official-style .pth
files through load_detector, temporal symmetry, probabilities, small and non-square inputs, tiled detection."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS
from state_dict_manifest import read_manifest

from core.detection.changestar_sam import ChangeStarSAM
from core.detection.inference import detect_change, predict_array
from core.detection.loading import load_detector
from core.errors import InputError

MANIFEST = Path(__file__).parent / "data" / "changestar_1x256_vitb_state_dict.txt"


@pytest.fixture(scope="module")
def model() -> ChangeStarSAM:
    """Random weights everywhere (the position embeddings and tables start at zero), so paths that use them
    change the output."""
    torch.manual_seed(0)
    net = ChangeStarSAM().eval()
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return net


@pytest.fixture(scope="module")
def official_file(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("official") / "s1_changestar_vitb_1x256.pth"
    torch.save({"model": {f"module.{key}": value for key, value in model.state_dict().items()}}, path)
    return path


def _pair(height: int, width: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 6, height, width, generator=torch.Generator().manual_seed(seed)) * 255


def test_state_dict_matches_official_manifest(model):
    ours = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    official = read_manifest(MANIFEST)
    assert len(official) == 321
    assert sorted(set(ours) ^ set(official)) == []
    assert {name: shape for name, shape in ours.items() if official[name] != shape} == {}
    assert sum(p.numel() for p in model.parameters()) == 99_934_530


def test_official_checkpoint_loads_strictly_with_identical_outputs(model, official_file):
    loaded = load_detector(official_file)
    assert isinstance(loaded.model, ChangeStarSAM)
    assert loaded.config["vit"] == "vit_b" and loaded.threshold == 0.5
    pair = _pair(64, 64)
    with torch.no_grad():
        expected = model(pair).change_probability
        actual = loaded.model(pair).change_probability
    assert torch.equal(actual, expected)


def test_temporally_symmetric_probabilities_for_small_non_square_input(model):
    pair = _pair(40, 72)
    swapped = torch.cat([pair[:, 3:], pair[:, :3]], dim=1)
    with torch.no_grad():
        forward = model(pair).change_probability
        backward = model(swapped).change_probability
    assert forward.shape == (1, 1, 40, 72)
    assert torch.allclose(forward, backward, atol=1e-6)
    assert float(forward.min()) >= 0.0 and float(forward.max()) <= 1.0
    assert float(forward.std()) > 0.0


def test_smallest_input_runs(model):
    with torch.no_grad():
        probability = model(_pair(1, 1)).change_probability
    assert probability.shape == (1, 1, 1, 1)


def test_wrong_input_channels_raise(model):
    with pytest.raises(InputError, match="6, H, W"):
        model(torch.zeros(1, 3, 32, 32))


def test_checkpoints_of_other_models_are_refused(model, tmp_path):
    unknown = tmp_path / "other.pth"
    torch.save({"backbone.weight": torch.zeros(1)}, unknown)
    with pytest.raises(InputError, match="neither"):
        load_detector(unknown)

    damage = {key: value for key, value in model.state_dict().items()}
    damage["head.change_conv.0.weight"] = torch.zeros(5, 256, 1, 1)
    damage["head.change_conv.0.bias"] = torch.zeros(5)
    damage_path = tmp_path / "xview2_damage.pth"
    torch.save(damage, damage_path)
    with pytest.raises(InputError, match="5 change classes"):
        load_detector(damage_path)

    truncated = {key: value for key, value in model.state_dict().items() if "blocks.11." not in key}
    truncated_path = tmp_path / "truncated.pth"
    torch.save(truncated, truncated_path)
    with pytest.raises(InputError, match="does not match"):
        load_detector(truncated_path)


def test_tiled_detection_with_an_official_file(model, official_file, tmp_path):
    rng = np.random.default_rng(0)
    t1 = rng.integers(0, 256, size=(80, 100, 3), dtype=np.uint8)
    t2 = t1.copy()
    t2[20:50, 30:70] = 255
    for name, image in (("t1.tif", t1), ("t2.tif", t2)):
        profile = {"driver": "GTiff", "width": 100, "height": 80, "count": 3, "dtype": "uint8"}
        profile.update(crs=CRS.from_epsg(32615), transform=Affine(0.5, 0, 400000, 0, -0.5, 4100000))
        with rasterio.open(tmp_path / name, "w", **profile) as dataset:
            dataset.write(np.moveaxis(image, -1, 0))
    result = detect_change(
        tmp_path / "t1.tif",
        tmp_path / "t2.tif",
        tmp_path / "change.tif",
        probability_path=tmp_path / "p.tif",
        model=str(official_file),
        device="cpu",
        precision="fp32",
        tile=64,
        overlap=16,
    )
    assert result.tiles > 1
    with rasterio.open(tmp_path / "p.tif") as dataset:
        written = dataset.read(1)
    expected = predict_array(model, t1, t2, torch.device("cpu"), tile=64, overlap=16)
    np.testing.assert_allclose(written, expected, atol=1e-6)
