"""RS-DiT: official key names and shapes (strict loading of RSDiT-B/2 and S/2 state dicts built from the
manifests), numerical equality with torchange's network, adaLN-Zero start, window/global attention, any H×W.

tests/data/rsdit_{b2,s2}_state_dict.txt are the two sections of ../shared/notes/rsdit_state_dict.txt (every key
and shape of torchange's `RSDiT_models['RSDiT-B/2' | 'RSDiT-S/2'](input_size=32, in_channels=4,
label_channels=1)` at commit 45434c7), split at their `#` headers so `read_manifest` reads them.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from state_dict_manifest import read_manifest

from core.errors import InputError
from core.synthesis.diffusion.rsdit import (
    RSDiT,
    RSDiTConfig,
    build_rsdit,
    config_from_state_dict,
    load_official_rsdit,
)

DATA = Path(__file__).parent / "data"
OFFICIAL = {
    "B/2": (DATA / "rsdit_b2_state_dict.txt", 140_422_208),
    "S/2": (DATA / "rsdit_s2_state_dict.txt", 35_284_784),
}
REFERENCE = DATA / "rsdit_reference_tiny.safetensors"
REFERENCE_CONFIGS = {
    "lc1": RSDiTConfig(hidden_size=64, depth=4, num_heads=2, label_channels=1),
    "lc3": RSDiTConfig(hidden_size=32, depth=4, num_heads=2, label_channels=3),
}

torch.set_num_threads(2)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def randomise(model: RSDiT, seed: int = 0) -> RSDiT:
    """Non-zero weights everywhere (adaLN-Zero would make the output zero and hide every path)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.parametrize("preset", OFFICIAL)
def test_preset_matches_official_manifest(preset):
    manifest, parameters = OFFICIAL[preset]
    model = build_rsdit(preset)
    shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    assert shapes == read_manifest(manifest)
    assert len(shapes) == 174
    assert parameter_count(model) == parameters


@pytest.mark.parametrize("preset", OFFICIAL)
def test_official_checkpoint_loads_strictly(preset, tmp_path):
    """A DiT-style {"ema": …} checkpoint with DataParallel prefixes and the manifest's keys and shapes: the
    preset is recognised from the shapes and every tensor lands in its parameter (tensor i holds the value i;
    expanded views keep the file a few kB)."""
    manifest = read_manifest(OFFICIAL[preset][0])
    state = {
        f"module.{key}": torch.full((1,), float(index)).expand(shape)
        for index, (key, shape) in enumerate(manifest.items())
    }
    path = tmp_path / "rsdit.pt"
    torch.save({"ema": state, "args": {"image_size": 256}}, path)

    model = load_official_rsdit(path)

    assert model.config == RSDiTConfig.preset(preset)
    assert not model.training
    loaded = model.state_dict()
    for index, key in enumerate(manifest):
        assert torch.all(loaded[key] == index), key


def test_config_is_read_from_shapes():
    config = RSDiTConfig.preset("cpu", label_channels=8)
    assert config_from_state_dict(build_rsdit(config).state_dict()) == config


class NotATensor:
    pass


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "code.pth"
    torch.save({"model": NotATensor()}, path)
    with pytest.raises(InputError, match="holds code, not only tensors; it is not loaded for safety"):
        load_official_rsdit(path)


def test_wrong_keys_are_named(tmp_path):
    state = build_rsdit(RSDiTConfig(hidden_size=64, depth=4, num_heads=1)).state_dict()
    del state["blocks.2.mlp.dwconv.weight"]
    state["blocks.2.mlp.norm.weight"] = torch.ones(256)
    path = tmp_path / "wrong.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(InputError) as error:
        load_official_rsdit(path)
    assert "missing 1: blocks.2.mlp.dwconv.weight" in str(error.value)
    assert "unexpected 1: blocks.2.mlp.norm.weight" in str(error.value)


def test_not_an_rsdit_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.vit.patch_embed.proj.weight": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="not an RS-DiT state dict"):
        load_official_rsdit(path)


def test_matches_torchange_network():
    """Same weights, same inputs → torchange's RSDiT output, max abs difference ≤ 1e-5 × the output's max abs
    value. Measured: 3.4e-6 absolute on the AMD EPYC that made the fixture, 1.7e-5 on an Intel Xeon with AMX
    (outputs up to 4.7: the CPUs' fp32 kernels sum in another order), i.e. ≤ 3.6e-6 relative; a wrong block is off
    by O(1).

    Fixture tests/data/rsdit_reference_tiny.safetensors, produced outside the repository (no torchange code is
    committed): torchange from `fetch github:Z-Zheng/pytorch-change-models` (commit 45434c7, "Merge pull request
    #41"), timm 1.0.31, torch 2.13.0+cpu, one thread:

        mkdir -p /tmp/ref/torchange /tmp/ref/site /tmp/ref/stubs
        git --git-dir=/work/.mirror/Z-Zheng+pytorch-change-models/repo archive HEAD | tar -x -C /tmp/ref/torchange
        .venv/bin/python -m pip install --target /tmp/ref/site timm einops --no-deps
        PYTHONPATH=/tmp/ref/site:/tmp/ref/stubs .venv/bin/python make_rsdit_reference.py OUT.safetensors

    where /tmp/ref/stubs/stub_torchvision.py is an import hook that answers every `torchvision.*` import with
    an empty module (timm's import chain needs the names, RSDiT none of the code), and the script loads
    torchange/models/changen2/rsdit.py by file path (importlib.util.spec_from_file_location), then for
    `lc1` = RSDiT(input_size=32, patch_size=2, in_channels=4, hidden_size=64, depth=4, num_heads=2,
    label_channels=1, learn_sigma=True, window_size=8) and `lc3` (the same with hidden_size=32,
    label_channels=3), from torch.Generator().manual_seed(20261201):
    - sets every parameter (adaLN and final layers included): matrices and kernels randn / sqrt(fan_in),
      LayerNorm2d scales 1 + 0.2·randn, other vectors 0.2·randn, all rounded to bfloat16 (stored as bf16 to
      halve the file; both networks run them in fp32);
    - runs in eval mode, fp32, latents randn of shape lc1 (2,4,32,32) t=[0,999] (16×16 tokens, 2×2 windows),
      (1,4,20,20) t=[500] (10×10 tokens: padded windows), (1,4,16,32) t=[250] (non-square); lc3 (1,4,16,24)
      t=[737]; label maps at 8× the latent size, uint8: lc1 rand > 0.7, lc3 one-hot of randint(0, 3);
    - saves `<model>.model.<key>`, `<model>.case<i>.{x,t,labels,out}` with safetensors.
    """
    tensors = load_file(REFERENCE)
    for name, config in REFERENCE_CONFIGS.items():
        prefix = f"{name}.model."
        model = RSDiT(config).eval()
        state = {
            key.removeprefix(prefix): value.float()
            for key, value in tensors.items()
            if key.startswith(prefix)
        }
        model.load_state_dict(state, strict=True)
        cases = sorted({key.split(".")[1] for key in tensors if key.startswith(f"{name}.case")})
        assert cases
        for case in cases:
            inputs = {
                key.rsplit(".", 1)[1]: value
                for key, value in tensors.items()
                if key.startswith(f"{name}.{case}.")
            }
            with torch.no_grad():
                output = model(inputs["x"], inputs["t"], inputs["labels"].float())
            assert output.shape == inputs["out"].shape
            error = (output - inputs["out"]).abs().max().item()
            assert error <= 1e-5 * inputs["out"].abs().max().item(), (name, case, error)


@pytest.mark.parametrize("latent_size", [32, 64])  # 256² and 512² images in an 8× VAE latent
def test_forward_at_image_sizes(latent_size):
    model = randomise(build_rsdit("cpu"))
    x = torch.randn(1, 4, latent_size, latent_size)
    labels = (torch.rand(1, 1, 8 * latent_size, 8 * latent_size) > 0.5).float()
    with torch.no_grad():
        output = model(x, torch.tensor([500]), labels)
    assert output.shape == (1, 8, latent_size, latent_size)
    assert torch.isfinite(output).all()


def test_adaln_zero_start_gives_zero_output():
    model = build_rsdit(RSDiTConfig(hidden_size=64, depth=4, num_heads=2)).eval()
    with torch.no_grad():
        output = model(torch.randn(2, 4, 16, 16), torch.tensor([0, 999]), torch.rand(2, 1, 128, 128))
    assert torch.count_nonzero(output) == 0


def test_three_window_blocks_then_one_global():
    model = build_rsdit(RSDiTConfig(hidden_size=32, depth=12, num_heads=2))
    assert [block.window_size for block in model.blocks] == [8, 8, 8, 0] * 3


@pytest.mark.parametrize(("window_size", "crosses_windows"), [(8, False), (0, True)])
def test_window_attention_stays_in_its_window(window_size, crosses_windows):
    block = randomise(build_rsdit(RSDiTConfig(hidden_size=32, depth=1, num_heads=2))).blocks[0]
    block.window_size = window_size
    tokens = torch.randn(1, 16 * 16, 32)
    changed = tokens.clone().view(1, 16, 16, 32)
    changed[:, 8:, 8:] += 1.0  # only the bottom-right window
    with torch.no_grad():
        before = block.attend(tokens, 16, 16).view(1, 16, 16, 32)
        after = block.attend(changed.view(1, 256, 32), 16, 16).view(1, 16, 16, 32)
    top_left_moved = not torch.equal(before[:, :8, :8], after[:, :8, :8])
    assert top_left_moved == crosses_windows


def test_token_grid_not_a_multiple_of_the_window_is_padded():
    """10×10 and 12×6 tokens run (equality with torchange on padded windows is in the reference test)."""
    model = randomise(build_rsdit(RSDiTConfig(hidden_size=32, depth=4, num_heads=2)))
    for height, width in [(20, 20), (24, 12)]:
        with torch.no_grad():
            output = model(
                torch.randn(1, 4, height, width), torch.tensor([1]), torch.rand(1, 1, 8 * height, 8 * width)
            )
        assert output.shape == (1, 8, height, width)


def test_latent_not_a_multiple_of_the_patch_is_refused():
    model = build_rsdit(RSDiTConfig(hidden_size=32, depth=1, num_heads=2))
    with pytest.raises(InputError, match="multiples of the patch size 2"):
        model(torch.randn(1, 4, 17, 16), torch.tensor([1]), torch.rand(1, 1, 136, 128))
