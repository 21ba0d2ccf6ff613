"""Latent diffusion: the RS-DiT denoiser (`rsdit`) and the iDDPM process with its samplers (`process`)."""
