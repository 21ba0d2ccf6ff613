"""The iDDPM diffusion process with learned-range variance, as DiT trains it (and Changen2's RS-DiT with it),
and the samplers that run it backwards.

Training (`GaussianDiffusion`, 1000 steps, linear betas 1e-4 … 0.02; a model that outputs epsilon and, in its
second half of channels, v ∈ [-1, 1] interpolating the log-variance between the posterior's and beta_t):

    x_t = diffusion.q_sample(x0, t, noise)
    losses = diffusion.training_losses(model(x_t, t, labels), x0, x_t, t, noise)
    losses["loss"].mean().backward()  # per-sample (N,) terms: mse + vb

`vb` is iDDPM's variational-bound term in bits per dimension: KL(q(x_{t-1}|x_t,x_0) ‖ p(x_{t-1}|x_t)) for t > 0,
the discretised decoder NLL at t = 0 (DiT keeps the 8-bit image bins even on latents; so do we); it trains the
variance only, the mean enters it through a stop-gradient.

Sampling (`make_sampler`): diffusers' schedulers configured with this process's betas, behind a per-step API so the
caller can blend the pre-event latent outside the change after every step:

    sampler = make_sampler("ddim", steps=20, generator=torch.Generator().manual_seed(0))
    x = sampler.initial_noise(latent_shape, device=device)
    for t in sampler.timesteps:
        x = sampler.step(model(x, sampler.batch_timesteps(t, x), labels), t, x)
        x = keep * sampler.noise_to(pre_event_latent, t) + (1 - keep) * x

- "ddpm": ancestral sampling with the learned-range variance (`DDPMScheduler(variance_type="learned_range")`
  on this process's float64 ᾱ, which tests/test_diffusion_process.py shows equal to `p_mean_variance` plus the
  same noise); 1000 steps is the trained chain, fewer steps respace it as DiT's `SpacedDiffusion` does.
- "ddim": deterministic (eta = 0), for previews; the step count must divide 1000 (10, 20, 25, 50, …).
- "dpm++": DPM-Solver++(2M), deterministic, good at 10–25 steps; multistep, so it keeps the model outputs of
  earlier steps: blending after a step leaves them as they were (DDIM has no such memory).
The deterministic samplers use the epsilon half of the output (diffusers' DPM-Solver would otherwise keep
channels [:3] of a learned-range output, wrong for 4-channel latents).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from ...errors import InputError

NUM_TIMESTEPS = 1000
BETA_START = 1e-4
BETA_END = 0.02
SAMPLERS = ("ddpm", "ddim", "dpm++")


def mean_over_dims(x: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the batch: one value per sample."""
    return x.mean(dim=tuple(range(1, x.ndim)))


def normal_kl(mean1: torch.Tensor, log_var1: torch.Tensor, mean2: torch.Tensor, log_var2: torch.Tensor):
    """KL(N(mean1, e^log_var1) ‖ N(mean2, e^log_var2)) per element, in nats."""
    return 0.5 * (
        -1.0
        + log_var2
        - log_var1
        + torch.exp(log_var1 - log_var2)
        + (mean1 - mean2) ** 2 * torch.exp(-log_var2)
    )


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of Φ that iDDPM's decoder likelihood uses (kept for equal numbers)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor):
    """log P(x) per element, in nats, of a Gaussian binned into 256 levels over [-1, 1] (open-ended outer bins)."""
    centred = x - mean
    inverse_std = torch.exp(-log_scale)
    cdf_plus = approx_standard_normal_cdf(inverse_std * (centred + 1.0 / 255.0))
    cdf_minus = approx_standard_normal_cdf(inverse_std * (centred - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_minus = torch.log((1.0 - cdf_minus).clamp(min=1e-12))
    log_bin = torch.log((cdf_plus - cdf_minus).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_minus, log_bin))


@dataclass
class Prediction:
    """p(x_{t-1} | x_t) from one model output."""

    mean: torch.Tensor
    variance: torch.Tensor
    log_variance: torch.Tensor
    pred_x0: torch.Tensor


class GaussianDiffusion:
    """The forward process q and the learned-range reverse process of iDDPM/DiT (epsilon prediction, no clipping:
    latents are not bounded). The schedule is kept in float64 and cast to the inputs' dtype and device when used.
    `t` is a (N,) integer tensor of timesteps 0 … num_timesteps − 1 (0 = one step of noise)."""

    def __init__(
        self, num_timesteps: int = NUM_TIMESTEPS, beta_start: float = BETA_START, beta_end: float = BETA_END
    ):
        scale = NUM_TIMESTEPS / num_timesteps  # iDDPM's "linear" schedule, stretched for other lengths
        betas = torch.linspace(scale * beta_start, scale * beta_end, num_timesteps, dtype=torch.float64)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        self.num_timesteps = num_timesteps
        self.betas = betas
        self.alphas_cumprod = alphas_cumprod
        self.posterior_variance = posterior_variance
        # The posterior variance is 0 at t = 0: its log takes the value of t = 1 there, as iDDPM does.
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([posterior_variance[1:2], posterior_variance[1:]])
        )
        self.posterior_mean_coef_x0 = betas * torch.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        self.posterior_mean_coef_xt = (
            (1.0 - alphas_cumprod_prev) * torch.sqrt(1.0 - betas) / (1.0 - alphas_cumprod)
        )

    @staticmethod
    def at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[t], shaped (N, 1, 1, …) to broadcast against `like`, in its dtype and on its device."""
        picked = values[t.cpu().long()].to(device=like.device, dtype=like.dtype)
        return picked.view(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t ~ q(x_t | x_0) for the given standard normal `noise`."""
        return (
            self.at(self.alphas_cumprod.sqrt(), t, x0) * x0
            + self.at((1.0 - self.alphas_cumprod).sqrt(), t, x0) * noise
        )

    def q_posterior_mean_variance(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """Mean and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = (
            self.at(self.posterior_mean_coef_x0, t, x_t) * x0
            + self.at(self.posterior_mean_coef_xt, t, x_t) * x_t
        )
        return mean, self.at(self.posterior_log_variance_clipped, t, x_t)

    def predict_x0_from_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        recip = self.at(torch.sqrt(1.0 / self.alphas_cumprod), t, x_t)
        recip_minus_one = self.at(torch.sqrt(1.0 / self.alphas_cumprod - 1.0), t, x_t)
        return recip * x_t - recip_minus_one * eps

    def p_mean_variance(self, model_output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> Prediction:
        """p(x_{t-1} | x_t) from a (N, 2C, …) output: epsilon, then v ∈ [-1, 1] mapping the log-variance
        linearly from the posterior's (v = -1) to log beta_t (v = 1)."""
        channels = x_t.shape[1]
        if model_output.shape[1] != 2 * channels:
            raise InputError(
                f"A learned-range model outputs 2 × {channels} channels (epsilon and variance); "
                f"got {model_output.shape[1]}."
            )
        eps, variance_values = model_output.split(channels, dim=1)
        min_log = self.at(self.posterior_log_variance_clipped, t, x_t)
        max_log = self.at(torch.log(self.betas), t, x_t)
        fraction = (variance_values + 1) / 2
        log_variance = fraction * max_log + (1 - fraction) * min_log
        pred_x0 = self.predict_x0_from_eps(x_t, t, eps)
        mean, _ = self.q_posterior_mean_variance(pred_x0, x_t, t)
        return Prediction(
            mean=mean, variance=torch.exp(log_variance), log_variance=log_variance, pred_x0=pred_x0
        )

    def vb_terms(self, model_output: torch.Tensor, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
        """The variational-bound term per sample, in bits per dimension (decoder NLL at t = 0, KL otherwise)."""
        true_mean, true_log_variance = self.q_posterior_mean_variance(x0, x_t, t)
        prediction = self.p_mean_variance(model_output, x_t, t)
        kl = mean_over_dims(normal_kl(true_mean, true_log_variance, prediction.mean, prediction.log_variance))
        decoder_nll = -discretized_gaussian_log_likelihood(x0, prediction.mean, 0.5 * prediction.log_variance)
        return torch.where(t.to(x0.device) == 0, mean_over_dims(decoder_nll), kl) / math.log(2.0)

    def training_losses(
        self,
        model_output: torch.Tensor,
        x0: torch.Tensor,
        x_t: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """DiT's loss for a model output at x_t = q_sample(x0, t, noise): {"mse", "vb", "loss" = mse + vb}, each
        (N,). The vb term sees the epsilon half detached, so it trains the variance half only."""
        model_output = model_output.to(x0.dtype)
        eps, variance_values = model_output.split(x0.shape[1], dim=1)
        frozen_mean = torch.cat([eps.detach(), variance_values], dim=1)
        mse = mean_over_dims((noise - eps) ** 2)
        vb = self.vb_terms(frozen_mean, x0, x_t, t)
        return {"loss": mse + vb, "mse": mse, "vb": vb}


class Sampler:
    """One sampling run over a diffusers scheduler: `timesteps` (descending), `step`, `noise_to`; every random draw
    comes from the `generator` it was made with (a CPU generator gives the same numbers on every device)."""

    def __init__(
        self, scheduler, diffusion: GaussianDiffusion, generator: torch.Generator, epsilon_only: bool
    ):
        self.scheduler = scheduler
        self.diffusion = diffusion
        self.generator = generator
        self.epsilon_only = epsilon_only
        self.timesteps = scheduler.timesteps.clone()
        following = self.timesteps.tolist()[1:] + [-1]
        self.next_timesteps = dict(zip(self.timesteps.tolist(), following, strict=True))

    def draw_noise(
        self, shape: tuple[int, ...], device: torch.device | str, dtype: torch.dtype
    ) -> torch.Tensor:
        noise = torch.randn(shape, generator=self.generator, device=self.generator.device, dtype=dtype)
        return noise.to(device)

    def initial_noise(
        self, shape: tuple[int, ...], device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """x_T for the first timestep (every sampler here starts from pure noise, scaled by 1)."""
        return self.draw_noise(shape, device, dtype) * self.scheduler.init_noise_sigma

    @staticmethod
    def batch_timesteps(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The model's (N,) timestep input for scalar `t` and latents `x`."""
        return t.to(x.device).expand(x.shape[0])

    def step(self, model_output: torch.Tensor, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """x at the next timestep (or the clean latent after the last one) from the model output at t."""
        if self.epsilon_only:
            model_output = model_output[:, : x.shape[1]]
        return self.scheduler.step(model_output, t, x, generator=self.generator).prev_sample

    def next_timestep(self, t: torch.Tensor | int) -> int:
        """The timestep `step(…, t, …)` lands on; -1 after the last step (clean)."""
        return self.next_timesteps[int(t)]

    def noise_to(
        self, x0: torch.Tensor, t: torch.Tensor | int, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`x0` (e.g. the pre-event latent) noised to the level `step(…, t, …)` returns, for blending; x0 itself
        after the last step. Fresh noise comes from the generator unless given."""
        following = self.next_timestep(t)
        if following < 0:
            return x0
        if noise is None:
            noise = self.draw_noise(tuple(x0.shape), x0.device, x0.dtype)
        timesteps = torch.full((x0.shape[0],), following, dtype=torch.long)
        return self.diffusion.q_sample(x0, timesteps, noise)

    def sample(
        self, denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        """The whole loop without blending: `denoise(x, t_batch)` is the model with its condition bound."""
        for t in self.timesteps:
            x = self.step(denoise(x, self.batch_timesteps(t, x)), t, x)
        return x


def make_sampler(
    kind: str, steps: int, generator: torch.Generator, diffusion: GaussianDiffusion | None = None
) -> Sampler:
    """A sampler over `steps` timesteps of `diffusion` (default: the 1000-step training process)."""
    diffusion = diffusion or GaussianDiffusion()
    if not 1 <= steps <= diffusion.num_timesteps:
        raise InputError(f"Sampler steps must be between 1 and {diffusion.num_timesteps}; got {steps}.")
    schedule = {
        "num_train_timesteps": diffusion.num_timesteps,
        "trained_betas": diffusion.betas.numpy(),
        "prediction_type": "epsilon",
    }
    if kind == "ddpm":
        scheduler = DDPMScheduler(
            **schedule, variance_type="learned_range", clip_sample=False, timestep_spacing="linspace"
        )
    elif kind == "ddim":
        if diffusion.num_timesteps % steps:
            raise InputError(
                f"DDIM steps must divide {diffusion.num_timesteps} (10, 20, 25, 50, …); got {steps}."
            )
        scheduler = DDIMScheduler(
            **schedule, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing"
        )
    elif kind == "dpm++":
        scheduler = DPMSolverMultistepScheduler(
            **schedule,
            algorithm_type="dpmsolver++",
            solver_order=2,
            timestep_spacing="linspace",
            final_sigmas_type="zero",
        )
    else:
        raise InputError(f"Unknown sampler '{kind}'; choose one of {', '.join(SAMPLERS)}.")
    if kind in ("ddpm", "ddim"):
        # diffusers keeps ᾱ in float32, where 1 − ᾱ_t and β_t = 1 − ᾱ_t/ᾱ_{t-1} cancel at small t (the posterior
        # variance was 1e-3 off at t = 1, the step 1.4e-4): its steps compute from our float64 ᾱ instead.
        scheduler.alphas_cumprod = diffusion.alphas_cumprod
    scheduler.set_timesteps(steps)
    return Sampler(scheduler, diffusion, generator, epsilon_only=kind != "ddpm")
