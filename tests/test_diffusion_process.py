"""The iDDPM learned-range process against DiT's own numbers, diffusers' steps against our posterior, and the
samplers' determinism, exactness and seeding."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.errors import InputError
from core.synthesis.diffusion.process import GaussianDiffusion, make_sampler

REFERENCE = Path(__file__).parent / "data" / "dit_learned_range_reference.safetensors"
SHAPE = (2, 4, 8, 8)

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def diffusion() -> GaussianDiffusion:
    return GaussianDiffusion()


@pytest.fixture(scope="module")
def dit() -> dict[str, torch.Tensor]:
    return load_file(REFERENCE)


def learned_range_output(seed: int, shape=SHAPE) -> torch.Tensor:
    """A fixed model output: epsilon, then variance values in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(shape, generator=generator)
    return torch.cat([eps, torch.rand(shape, generator=generator) * 2 - 1], dim=1)


def perfect_denoiser(diffusion: GaussianDiffusion, x0: torch.Tensor):
    """The exact epsilon of x_t towards x0 (and a zero variance half)."""

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha_bar = diffusion.at(diffusion.alphas_cumprod, t, x)
        eps = (x - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()
        return torch.cat([eps, torch.zeros_like(eps)], dim=1)

    return denoise


def test_matches_dit_learned_range_formulas(diffusion, dit):
    """q_sample, the posterior, the learned-range p_mean_variance and the training losses equal DiT's to 1e-5
    (measured: 0.0, bit-identical; pred_x0 reaches 666 at t = 999 and is compared relative to 1 + |value|).

    Fixture tests/data/dit_learned_range_reference.safetensors, produced outside the repository (no DiT code is
    committed) from `fetch github:facebookresearch/DiT` (commit ed81ce2), torch 2.13.0+cpu:

        mkdir -p /tmp/ref/dit
        git --git-dir=/work/.mirror/facebookresearch+DiT/repo archive HEAD | tar -x -C /tmp/ref/dit
        PYTHONPATH=/tmp/ref/dit .venv/bin/python make_dit_reference.py OUT.safetensors

    The script: `diffusion = create_diffusion(timestep_respacing="")` (DiT's training process), from
    torch.Generator().manual_seed(20261202) x0 = randn(8,4,8,8), noise = randn(8,4,8,8), model_output = cat(randn,
    rand·2−1) on channels, t = [0,1,2,10,250,500,998,999]; stores x_t = q_sample(x0, t, noise), the posterior
    q_posterior_mean_variance(x0, x_t, t) (mean, clipped log-variance), p_mean_variance(lambda x, ts:
    model_output, x_t, t, clip_denoised=False) (mean, log_variance, pred_xstart → pred_x0), and
    training_losses(lambda x, ts: model_output, x0, t, noise=noise) (loss, mse, vb); plus, from
    create_diffusion("50"), p_mean_variance at spaced indices [49, 30, 1, 0] on the first four x_t / outputs
    (spaced_t = their original timesteps, spaced_mean, spaced_log_variance).
    """
    t = dit["t"]
    x_t = diffusion.q_sample(dit["x0"], t, dit["noise"])
    torch.testing.assert_close(x_t, dit["x_t"], atol=1e-5, rtol=0)
    posterior_mean, posterior_log_variance = diffusion.q_posterior_mean_variance(dit["x0"], dit["x_t"], t)
    torch.testing.assert_close(posterior_mean, dit["posterior_mean"], atol=1e-5, rtol=0)
    torch.testing.assert_close(
        posterior_log_variance.expand_as(x_t), dit["posterior_log_variance"], atol=1e-5, rtol=0
    )

    prediction = diffusion.p_mean_variance(dit["model_output"], dit["x_t"], t)
    torch.testing.assert_close(prediction.mean, dit["mean"], atol=1e-5, rtol=0)
    torch.testing.assert_close(prediction.log_variance, dit["log_variance"], atol=1e-5, rtol=0)
    assert ((prediction.pred_x0 - dit["pred_x0"]).abs() / (1 + dit["pred_x0"].abs())).max() <= 1e-5

    losses = diffusion.training_losses(dit["model_output"], dit["x0"], dit["x_t"], t, dit["noise"])
    for name in ("loss", "mse", "vb"):
        torch.testing.assert_close(losses[name], dit[name], atol=1e-5, rtol=0)


def test_learned_range_spans_posterior_to_beta(diffusion):
    x_t = torch.randn(SHAPE)
    t = torch.tensor([0, 600])
    eps = torch.randn(SHAPE)
    for value, expected in [
        (-1.0, diffusion.posterior_log_variance_clipped),
        (1.0, torch.log(diffusion.betas)),
    ]:
        output = torch.cat([eps, torch.full(SHAPE, value)], dim=1)
        log_variance = diffusion.p_mean_variance(output, x_t, t).log_variance
        torch.testing.assert_close(log_variance[:, 0, 0, 0], expected[t].float())


def test_vb_trains_the_variance_only(diffusion):
    x0, noise = torch.randn(SHAPE), torch.randn(SHAPE)
    t = torch.tensor([0, 400])
    output = learned_range_output(1).requires_grad_()
    losses = diffusion.training_losses(output, x0, diffusion.q_sample(x0, t, noise), t, noise)
    (vb_grad,) = torch.autograd.grad(losses["vb"].sum(), output, retain_graph=True)
    (mse_grad,) = torch.autograd.grad(losses["mse"].sum(), output)
    assert torch.count_nonzero(vb_grad[:, :4]) == 0 and torch.count_nonzero(vb_grad[:, 4:]) > 0
    assert torch.count_nonzero(mse_grad[:, 4:]) == 0 and torch.count_nonzero(mse_grad[:, :4]) > 0


def test_diffusers_ddpm_step_is_our_posterior_plus_the_same_noise(diffusion):
    """DDPMScheduler(variance_type="learned_range") over the 1000-step chain: x_{t-1} = mean + σ·z, z the
    generator's next normal draw (none at t = 0). Measured: ≤ 5e-7."""
    generator = torch.Generator()
    sampler = make_sampler("ddpm", 1000, generator)
    x_t = torch.randn(SHAPE)
    output = learned_range_output(2)
    for t in [999, 998, 500, 10, 1, 0]:
        generator.manual_seed(t)
        stepped = sampler.step(output, torch.tensor(t), x_t)
        prediction = diffusion.p_mean_variance(output, x_t, torch.full((SHAPE[0],), t))
        noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(t)) if t > 0 else 0
        expected = prediction.mean + torch.exp(0.5 * prediction.log_variance) * noise
        torch.testing.assert_close(stepped, expected, atol=1e-5, rtol=0)


def test_respaced_ddpm_step_is_dits_spaced_posterior(dit):
    """50 steps: the timesteps and the respaced learned-range posterior of DiT's create_diffusion("50")."""
    generator = torch.Generator()
    sampler = make_sampler("ddpm", 50, generator)
    spaced_t = dit["spaced_t"].tolist()
    assert set(spaced_t) <= set(sampler.timesteps.tolist())
    for index, t in enumerate(spaced_t):
        generator.manual_seed(index)
        stepped = sampler.step(dit["model_output"][index : index + 1], t, dit["x_t"][index : index + 1])
        noise = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(index)) if t > 0 else 0
        expected = dit["spaced_mean"][index] + torch.exp(0.5 * dit["spaced_log_variance"][index]) * noise
        torch.testing.assert_close(stepped, expected.expand_as(stepped), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("kind", "steps"), [("ddim", 20), ("ddim", 10), ("dpm++", 15)])
def test_deterministic_sampler_recovers_x0_from_a_perfect_denoiser(diffusion, kind, steps):
    x0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
    samples = []
    for seed in (0, 1):  # different starting noise, different generators: the same x0
        sampler = make_sampler(kind, steps, torch.Generator().manual_seed(seed))
        samples.append(sampler.sample(perfect_denoiser(diffusion, x0), sampler.initial_noise(SHAPE)))
        assert sampler.timesteps[0] == 999
    torch.testing.assert_close(samples[0], x0, atol=1e-5, rtol=0)
    torch.testing.assert_close(samples[1], x0, atol=1e-5, rtol=0)


def test_ddim_is_deterministic_given_its_start():
    x_start = torch.randn(SHAPE)
    weights = torch.randn(8, 4) * 0.3

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.einsum("oc,nchw->nohw", weights, x)

    runs = [
        make_sampler("ddim", 25, torch.Generator().manual_seed(seed)).sample(denoise, x_start)
        for seed in (0, 1)
    ]
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("kind", ["ddpm", "ddim", "dpm++"])
def test_same_seed_same_sample(kind):
    weights = torch.randn(8, 4, generator=torch.Generator().manual_seed(4)) * 0.3

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.einsum("oc,nchw->nohw", weights, x))

    def run(seed: int) -> torch.Tensor:
        sampler = make_sampler(kind, 20, torch.Generator().manual_seed(seed))
        return sampler.sample(denoise, sampler.initial_noise(SHAPE))

    assert torch.equal(run(7), run(7))
    assert not torch.allclose(run(7), run(8))


def test_noise_to_gives_the_level_of_the_next_step(diffusion):
    sampler = make_sampler("ddim", 20, torch.Generator().manual_seed(0))
    x0, noise = torch.randn(SHAPE), torch.randn(SHAPE)
    assert sampler.next_timestep(999) == 949
    torch.testing.assert_close(
        sampler.noise_to(x0, torch.tensor(999), noise),
        diffusion.q_sample(x0, torch.tensor([949, 949]), noise),
    )
    assert sampler.next_timestep(49) == -1
    assert torch.equal(sampler.noise_to(x0, 49), x0)


def test_blending_everywhere_returns_the_pre_event_latent(diffusion):
    """Latent mixing with the unchanged area covering everything: the sample is the pre-event latent."""
    pre_event = torch.randn(SHAPE)
    sampler = make_sampler("ddpm", 20, torch.Generator().manual_seed(5))
    x = sampler.initial_noise(SHAPE)
    for t in sampler.timesteps:
        x = sampler.step(learned_range_output(int(t)), t, x)
        x = sampler.noise_to(pre_event, t)
    assert torch.equal(x, pre_event)


def test_bad_sampler_settings_are_refused():
    with pytest.raises(InputError, match="DDIM steps must divide 1000"):
        make_sampler("ddim", 30, torch.Generator())
    with pytest.raises(InputError, match="Unknown sampler"):
        make_sampler("euler", 20, torch.Generator())
    with pytest.raises(InputError, match="between 1 and 1000"):
        make_sampler("ddpm", 0, torch.Generator())


def test_fixed_variance_output_is_refused(diffusion):
    with pytest.raises(InputError, match="2 × 4 channels"):
        diffusion.p_mean_variance(torch.randn(SHAPE), torch.randn(SHAPE), torch.tensor([1, 2]))
