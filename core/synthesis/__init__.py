"""Image synthesis engines for change generation (Changen2's latent diffusion and its building blocks)."""
