"""The Changen generator and discriminator: shapes, determinism, masking, configs, shipped-file round trip."""

import pytest
import torch

from core.errors import InputError
from core.synthesis.changen_gan import (
    MaskedTransitionLayer,
    OasisDiscriminator,
    build_generator,
    count_parameters,
    load_generator,
)
from core.weights import save_weights


def make_inputs(batch=2, height=64, width=96, seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
    semantic_t = torch.zeros(batch, height, width, dtype=torch.long)
    semantic_t[:, 10:30, 20:50] = 1
    semantic_t1 = semantic_t.clone()
    semantic_t1[:, 10:30, 20:50] = 0  # removal
    semantic_t1[:, 40:60, 60:90] = 1  # creation
    return image, semantic_t, semantic_t1


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return build_generator("cpu").eval()


def test_cpu_config_size_and_the_output_follows_where_the_labels_change(generator):
    assert 1.5e6 <= count_parameters(generator) <= 3e6
    image, semantic_t, semantic_t1 = make_inputs()
    moved = semantic_t1.clone()
    moved[:, 40:60, 60:90] = 0
    moved[:, 40:60, 5:35] = 1  # the created object elsewhere
    with torch.no_grad():
        out = generator(image, semantic_t, semantic_t1, torch.Generator().manual_seed(1))
        out_moved = generator(image, semantic_t, moved, torch.Generator().manual_seed(1))
    assert out.shape == image.shape and out.dtype == torch.float32 and out.std() > 0.1
    difference = (out - out_moved).abs().mean(dim=1)
    where_moved = torch.cat([difference[:, 40:60, 60:90].flatten(), difference[:, 40:60, 5:35].flatten()])
    far_away = difference[:, :6].flatten()  # rows above every change
    assert where_moved.mean() > 4 * far_away.mean()


def test_same_noise_seed_same_image_other_seed_other_image(generator):
    image, semantic_t, semantic_t1 = make_inputs()
    with torch.no_grad():
        first = generator(image, semantic_t, semantic_t1, torch.Generator().manual_seed(5))
        again = generator(image, semantic_t, semantic_t1, torch.Generator().manual_seed(5))
        other = generator(image, semantic_t, semantic_t1, torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_explicit_noise_map_and_condition_change_the_output(generator):
    image, semantic_t, semantic_t1 = make_inputs(batch=1)
    noise = torch.randn(1, generator.noise_channels, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = generator(image, semantic_t, semantic_t1, noise)
        unchanged = generator(image, semantic_t, semantic_t, noise)
    assert not torch.allclose(out, unchanged)


@pytest.mark.parametrize("shape", [(1, 3, 64, 80), (1, 3, 32, 64), (1, 1, 64, 64)])
def test_bad_image_size_is_an_input_error(generator, shape):
    image = torch.zeros(shape)
    semantic = torch.zeros(shape[0], shape[2], shape[3], dtype=torch.long)
    with pytest.raises(InputError, match="multiples of 32"):
        generator(image, semantic, semantic)


def test_mismatched_masks_are_an_input_error(generator):
    image, semantic_t, _ = make_inputs(batch=1)
    with pytest.raises(InputError, match="Semantic masks"):
        generator(image, semantic_t, semantic_t[:, :32])


def test_masking_hides_pre_event_features_inside_the_pre_event_foreground():
    """Eq. 4: the change field does not depend on pre-event features inside S_t's foreground, at any scale."""
    torch.manual_seed(0)
    layer = MaskedTransitionLayer(16, num_classes=2, hidden=16).eval()
    foreground = torch.zeros(1, 1, 64, 64)
    foreground[..., 5, 9] = 1  # one pixel marks its whole coarse cell at stride 8
    one_hot = torch.zeros(1, 2, 64, 64)
    one_hot[:, 0] = 1
    pre = torch.randn(1, 16, 8, 8)
    post = torch.randn(1, 16, 8, 8)
    edited = pre.clone()
    edited[..., 0, 1] += 100.0  # the cell holding pixel (5, 9)
    with torch.no_grad():
        reference = layer(pre, post, foreground, one_hot)
        after_edit = layer(edited, post, foreground, one_hot)
        after_background_edit = layer(pre + (torch.arange(8) == 4).float() * 100, post, foreground, one_hot)
    assert torch.allclose(reference, after_edit, atol=1e-5)
    assert not torch.allclose(reference, after_background_edit, atol=1e-3)


def test_discriminator_segments_into_fake_plus_classes():
    discriminator = OasisDiscriminator("cpu")
    logits = discriminator(torch.zeros(2, 3, 64, 96))
    assert logits.shape == (2, 3, 64, 96)


def test_paper_config_matches_published_widths_and_dict_overrides_work():
    paper = build_generator("paper")
    assert paper.config["widths"] == [512, 256, 128, 64, 32, 16]
    assert count_parameters(paper) > 5 * count_parameters(build_generator("cpu"))
    small = build_generator({"widths": [64, 48, 32, 24, 16, 16], "noise_channels": 4})
    assert small.noise_channels == 4
    with pytest.raises(InputError, match="Unknown generator config"):
        build_generator("huge")
    with pytest.raises(InputError, match="Unknown generator config keys"):
        build_generator({"depth": 3})
    with pytest.raises(InputError, match="multiple of 8"):
        build_generator({"spade_hidden": 20})


def test_load_generator_round_trip(tmp_path, generator):
    path = tmp_path / "g.safetensors"
    save_weights(
        path, generator.state_dict(), {"model": "changen_generator", "architecture": generator.config}
    )
    loaded = load_generator(path)
    assert not loaded.training
    image, semantic_t, semantic_t1 = make_inputs(batch=1)
    with torch.no_grad():
        expected = generator(image, semantic_t, semantic_t1, torch.Generator().manual_seed(3))
        got = loaded(image, semantic_t, semantic_t1, torch.Generator().manual_seed(3))
    assert torch.allclose(expected, got, atol=1e-4)


def test_load_generator_rejects_other_models(tmp_path):
    path = tmp_path / "other.safetensors"
    save_weights(path, {"w": torch.zeros(1)}, {"model": "changestar"})
    with pytest.raises(InputError, match="not a Changen generator"):
        load_generator(path)
