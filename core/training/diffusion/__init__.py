"""Training of the latent autoencoder and the RS-DiT denoiser."""
