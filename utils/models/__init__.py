"""Models: one file per family (VQ-VAE, ...)."""
