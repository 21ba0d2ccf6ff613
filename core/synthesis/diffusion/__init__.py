"""Latent diffusion generators (Changen2's RS-DiT, ChangeAnywhere's latent mixing): autoencoder, denoiser,
diffusion process and the change sampler."""
