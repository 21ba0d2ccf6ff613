"""ChangeStar(1×96): official key names and shapes, temporal symmetry, ImageNet encoder, save/load round trip."""

from pathlib import Path

import pytest
import torch
from state_dict_manifest import read_manifest

from core.detection.changestar import EfficientNetLiteTrunk, build_changestar
from core.detection.loading import load_detector
from core.errors import InputError
from core.weights import save_weights

MANIFEST = Path(__file__).parent / "data" / "changestar_1x96_r18_state_dict.txt"


def test_resnet18_state_dict_matches_official_manifest():
    model = build_changestar("resnet18")
    ours = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    official = read_manifest(MANIFEST)
    assert len(official) == 250
    assert sorted(set(ours) ^ set(official)) == []
    assert {name: shape for name, shape in ours.items() if official[name] != shape} == {}
    assert sum(p.numel() for p in model.parameters()) == 16_401_569


def test_official_style_checkpoint_loads_strictly(tmp_path):
    source = build_changestar("resnet18")
    path = tmp_path / "changestar_1x96_r18.pth"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = load_detector(path)
    assert loaded.config["encoder"] == "resnet18"
    pair = torch.rand(1, 6, 64, 64) * 255
    with torch.no_grad():
        expected = source.eval()(pair).change_probability
        assert torch.allclose(loaded.model(pair).change_probability, expected, atol=1e-6)


@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet_lite0", "efficientnet_lite2"])
def test_forward_shape_and_temporal_symmetry(encoder):
    model = build_changestar(encoder).eval()
    torch.manual_seed(0)
    pair = torch.rand(2, 6, 96, 128) * 255
    swapped = torch.cat([pair[:, 3:], pair[:, :3]], dim=1)
    with torch.no_grad():
        forward = model(pair)
        backward = model(swapped)
    assert forward.change_logit.shape == (2, 1, 96, 128)
    probability = forward.change_probability
    assert float(probability.min()) >= 0.0 and float(probability.max()) <= 1.0
    assert torch.allclose(forward.change_logit, backward.change_logit, atol=1e-4)


def test_bitemporal_forward_shares_one_encoder_on_the_batch_axis():
    model = build_changestar("efficientnet_lite0").eval()
    image = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        t1, t2 = model.bitemporal_forward(torch.cat([image, image], dim=1))
    assert t1.shape == (1, 96, 16, 16)
    assert torch.allclose(t1, t2, atol=1e-5)
    with pytest.raises(InputError, match="6, H, W"):
        model.bitemporal_forward(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("encoder", ["efficientnet_lite0", "efficientnet_lite2"])
def test_lite_imagenet_weights_are_trained_not_random(encoder):
    pretrained = build_changestar(encoder, imagenet=True).encoder.efficientnet.net
    random_init = build_changestar(encoder).encoder.efficientnet.net
    stem_var = pretrained._bn0.running_var
    assert float(stem_var.std()) > 1.0  # fresh BN statistics are all ones
    assert float(pretrained._blocks[5]._bn1.running_mean.abs().mean()) > 0.05
    assert not torch.allclose(pretrained._conv_stem.weight, random_init._conv_stem.weight)


@pytest.mark.parametrize(
    ("variant", "channels"), [("lite0", (24, 40, 112, 1280)), ("lite2", (24, 48, 120, 1280))]
)
def test_lite_trunk_features_at_strides_4_to_32(variant, channels):
    trunk = EfficientNetLiteTrunk(variant).eval()
    with torch.no_grad():
        features = trunk(torch.zeros(1, 3, 64, 96))
    assert tuple(f.shape[1] for f in features) == trunk.channels == channels
    assert [tuple(f.shape[2:]) for f in features] == [(16, 24), (8, 12), (4, 6), (2, 3)]


def test_shipped_format_round_trip(tmp_path):
    model = build_changestar("efficientnet_lite0", fpn_channels=32, decoder_channels=16).eval()
    path = tmp_path / "detector.safetensors"
    save_weights(path, model.state_dict(), model.export_config(threshold=0.7))
    loaded = load_detector(path)
    assert loaded.threshold == 0.7
    assert loaded.config["fpn_channels"] == 32
    pair = torch.rand(1, 6, 64, 64) * 255
    with torch.no_grad():
        assert torch.allclose(loaded.model(pair).change_logit, model(pair).change_logit, atol=1e-6)


def test_loading_a_non_detector_file_says_what_it_is(tmp_path):
    path = tmp_path / "generator.safetensors"
    save_weights(path, {"w": torch.zeros(2)}, {"architecture": "changen_generator"})
    with pytest.raises(InputError, match="not a changestar_1x96"):
        load_detector(path)
