"""ChangeStar(1×96): official key names and shapes, the official model's output, temporal symmetry, ImageNet
encoder, save/load round trip."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from state_dict_manifest import read_manifest

from core.detection.blocks import bitemporal_forward
from core.detection.changestar import EfficientNetLiteTrunk, build_changestar
from core.detection.loading import load_detector
from core.errors import InputError
from core.weights import save_weights

MANIFEST = Path(__file__).parent / "data" / "changestar_1x96_r18_state_dict.txt"
REFERENCE = Path(__file__).parent / "data" / "changestar_1x96_r18_reference.safetensors"
REFERENCE_SEED = 20261202


def seeded_state(template: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Random weights for every key of `template` from one seed, drawn in sorted key order (the recipe the
    reference fixture was made with): kernels randn / sqrt(fan_in), BN scales 1 + 0.2·randn, running variances
    0.5 + rand, other vectors 0.2·randn."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key in sorted(template):
        shape = template[key].shape
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) >= 2:
            state[key] = torch.randn(shape, generator=generator) / shape[1:].numel() ** 0.5
        elif key.endswith("running_mean"):
            state[key] = 0.2 * torch.randn(shape, generator=generator)
        elif key.endswith("weight"):
            state[key] = 1.0 + 0.2 * torch.randn(shape, generator=generator)
        else:
            state[key] = 0.2 * torch.randn(shape, generator=generator)
    return state


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
    assert loaded.config["temporal_symmetric"] is False  # as the official cstar_r18_farseg_d96 config
    source.decoder.temporal_symmetric = False
    pair = torch.rand(1, 6, 64, 64) * 255
    with torch.no_grad():
        expected = source.eval()(pair).change_probability
        assert torch.allclose(loaded.model(pair).change_probability, expected, atol=1e-6)


def test_training_checkpoint_keeps_its_own_config(tmp_path):
    """A .pt of our detector training carries `model_config`: it is not taken for an official file."""
    source = build_changestar("resnet18").eval()
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": source.state_dict(), "model_config": dict(source.config.__dict__)}, path)
    loaded = load_detector(path)
    assert loaded.config["temporal_symmetric"] is True
    assert loaded.model.decoder.temporal_symmetric is True


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_matches_the_official_changen_r18_model(one_thread, tmp_path):
    """Official config → official output: the same weights and input give the public Changen ChangeStar(1×96)
        R-18 logits within 1e-5 (measured on the fixture's machine: 0 at one thread, as the fixture was made; at two
        threads oneDNN splits the convolutions differently and the logits differ by up to 7.4e-6). The weights go
    through `load_detector` as a released .pth would (`{"model": {"module.<key>": …}}`).

        Fixture tests/data/changestar_1x96_r18_reference.safetensors holds the inputs and the public model's outputs,
        not its 16.4 M weights (65 MB in fp32; the public class fixes the ResNet-18, FPN and FarSeg widths, so it cannot
        be shrunk): both sides draw them with `seeded_state` from REFERENCE_SEED, and `weights.abs_sum` (one sum per
        sorted key) tells a change in torch's random stream apart from a change in the model. Produced outside the
        repository (no Changen code is committed): Z-Zheng/Changen at commit 2550969 (`fetch github:Z-Zheng/Changen`,
        `git archive` into /tmp), ever-beta 0.4.1 and einops 0.8.2 (`pip install --target … --no-deps`; ever-beta 0.6
        no longer builds that code), torch 2.13.0+cpu, one thread, with an import hook answering timm, torchvision and
        the other unused imports of `ever` with empty modules. The script builds `changestar_1x96_r18()` (config
        `cstar_r18_farseg_d96`, asserting `temporal_symmetric` is False), loads `seeded_state(model.state_dict(),
        20261202)` strictly, hooks `head.change_conv` for the logits and runs, in eval mode and fp32, two uint8 pairs
        from torch.Generator().manual_seed(20261203) (randint 0–255: (1, 6, 64, 64), then (2, 6, 96, 128)) normalised
        as ours does ((x − ImageNet mean) / std per date, the official model expects normalised input); it saves
        `case<i>.{pair,logit,probability}` and `weights.abs_sum` with safetensors.
    """
    tensors = load_file(REFERENCE)
    state = seeded_state(build_changestar("resnet18").state_dict(), REFERENCE_SEED)
    sums = torch.stack([state[key].double().abs().sum() for key in sorted(state)])
    assert torch.allclose(
        sums, tensors["weights.abs_sum"], rtol=1e-9
    ), "torch's random stream changed: remake"
    path = tmp_path / "changestar1x96_r18_official.pth"
    torch.save({"model": {f"module.{key}": value for key, value in state.items()}}, path)
    model = load_detector(path).model
    cases = sorted({key.split(".")[0] for key in tensors if key.startswith("case")})
    assert len(cases) == 2
    for case in cases:
        pair = tensors[f"{case}.pair"].float()
        with torch.no_grad():
            output = model(pair)
        assert (output.change_logit - tensors[f"{case}.logit"]).abs().max().item() <= 1e-5, case
        assert (output.change_probability - tensors[f"{case}.probability"]).abs().max().item() <= 1e-5, case
        # the symmetric mixin (ours) is a different model on the same weights: the flag is what makes them equal
        model.decoder.temporal_symmetric = True
        with torch.no_grad():
            symmetric = model(pair).change_logit
        model.decoder.temporal_symmetric = False
        assert (symmetric - tensors[f"{case}.logit"]).abs().max().item() > 1e-2, case


@pytest.mark.parametrize("encoder", ["resnet18", "efficientnet_lite0", "efficientnet_lite2"])
def test_forward_shape_and_temporal_symmetry(encoder):
    model = build_changestar(encoder).eval()
    model.load_state_dict(seeded_state(model.state_dict(), 7))  # logits of order 1, unlike a fresh init
    torch.manual_seed(0)
    pair = torch.rand(2, 6, 96, 128) * 255
    swapped = torch.cat([pair[:, 3:], pair[:, :3]], dim=1)
    with torch.no_grad():
        forward = model(pair).change_logit
        backward = model(swapped).change_logit
        model.decoder.temporal_symmetric = (
            False  # the official configs: swapping the dates changes the logits
        )
        one_order = model(pair).change_logit
        swapped_one_order = model(swapped).change_logit
    assert forward.shape == (2, 1, 96, 128)
    assert forward.std().item() > 0.05
    assert (forward - backward).abs().max().item() <= 1e-5
    assert (one_order - swapped_one_order).abs().max().item() > 1e-2


def test_bitemporal_forward_shares_one_encoder_on_the_batch_axis():
    model = build_changestar("efficientnet_lite0").eval()
    model.load_state_dict(seeded_state(model.state_dict(), 7))
    first, second = torch.rand(2, 1, 3, 64, 64) * 255
    with torch.no_grad():
        t1, t2 = bitemporal_forward(
            model.encoder, torch.cat([first, second], dim=1), model.pixel_mean, model.pixel_std
        )
        alone = [model.encoder((image - model.pixel_mean) / model.pixel_std) for image in (first, second)]
    assert t1.shape == (1, 96, 16, 16)
    for features, expected in zip((t1, t2), alone, strict=True):
        assert (features - expected).abs().max().item() <= 1e-4 * expected.abs().max().item()
    assert (t1 - t2).abs().max().item() > 1e-2 * t1.abs().max().item()
    with pytest.raises(InputError, match="6, H, W"):
        bitemporal_forward(model.encoder, torch.zeros(1, 3, 64, 64), model.pixel_mean, model.pixel_std)


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
