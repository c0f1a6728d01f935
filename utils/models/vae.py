"""A Gaussian VAE on the collection's log-mel, with the codec's trunk: the bottleneck compared.

The encoder and decoder are those of :class:`utils.models.vqvae.MelVQVAE` (same trunk, same
latent frame rate), so a VAE and a VQ-VAE of one configuration differ only in the bottleneck:

* **posterior** ``q(z | x) = N(μ(x), diag σ²(x))``, one ``D``-vector per latent frame;
* **prior** ``p(z) = N(0, I)``;
* **likelihood** ``p(x | z) = N(x̂(z), s² I)`` on the normalised log-mel with one learned
  scale ``s`` (a Gaussian in the log domain: any range of targets is valid, unlike the
  seed's binary cross-entropy on powers above 1);
* **loss** (negative ELBO per element) ``NLL + β · KL``, with optional **KL annealing** (β
  ramps from 0 over ``anneal_steps``) and **free bits** (each latent dimension's KL counts
  at least ``free_bits`` nats, so the optimiser gains nothing by collapsing it).

**Rate.** By bits-back / relative-entropy coding, latents drawn from ``q(z | x)`` can be sent
with about ``KL(q ‖ p)`` bits, so a VAE is a codec whose rate is its KL term:
``rate (bit/s) = KL per latent frame (nats) / ln 2 × latent frames per second``. That makes
its points comparable with the VQ-VAE ladder on one rate–distortion plot.

Notebook: notebooks/03_vae_vs_vqvae.ipynb
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from utils.audio import FEATURES, FeatureConfig, log_mel, log_mel_to_audio
from utils.checkpoint import model_checkpoint, rebuild_model
from utils.models.vqvae import (
    ENCODERS,
    MelLatentRate,
    build_decoder,
    build_encoder,
    resolve_config,
)

__all__ = ["VAEConfig", "VAEOutput", "MelVAE", "MODEL_KIND", "gaussian_kl"]

#: Written into checkpoints; a checkpoint of another kind is refused with a clear error.
MODEL_KIND = "mel-vae"


@dataclass(frozen=True)
class VAEConfig:
    """Hyper-parameters of :class:`MelVAE` (stored in every checkpoint).

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Attributes:
        n_mels: Mel bands of the input.
        channels: Width of the convolutional trunk.
        latent_dim: Dimension D of each latent vector.
        downsample_log2: Stride-2 stages (latent rate 62.5 / 2**downsample_log2 frames/s).
        res_blocks: Residual blocks before and after the resampling stages.
        encoder: Encoder trunk, as for the VQ-VAE (``"conv"``, ``"cbhg"``, ``"inception"``).
        beta: Weight of the KL term (β-VAE); larger β, lower rate.
        free_bits: Minimum KL per latent dimension, in nats per latent frame (0: off).
        anneal_steps: Steps over which β ramps linearly from 0 (0: no annealing).
        mel_mean: Input normalisation mean (log10 units).
        mel_std: Input normalisation standard deviation (log10 units).
        log_floor: log10 of the feature floor; outputs are clamped to it.
    """

    n_mels: int = 80
    channels: int = 192
    latent_dim: int = 64
    downsample_log2: int = 1
    res_blocks: int = 2
    encoder: str = "conv"
    beta: float = 1.0
    free_bits: float = 0.0
    anneal_steps: int = 0
    mel_mean: float = -2.5
    mel_std: float = 1.2
    log_floor: float = -5.0

    def __post_init__(self) -> None:
        at_least = {"n_mels": 1, "channels": 1, "latent_dim": 1, "downsample_log2": 0,
                    "res_blocks": 0, "anneal_steps": 0}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if not self.beta >= 0 or not self.free_bits >= 0:
            raise ValueError("beta and free_bits must not be negative")
        if not self.mel_std > 0:
            raise ValueError(f"mel_std must be positive, got {self.mel_std}")


class VAEOutput(NamedTuple):
    """What :meth:`MelVAE.forward` returns besides the reconstruction.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Attributes:
        mu: Posterior means ``[B, T', D]``.
        logvar: Posterior log-variances ``[B, T', D]``.
        z: The latents that were decoded (a sample in training, ``mu`` in eval).
        kl: KL(q ‖ p) per element ``[B, T', D]``, in nats.
    """

    mu: Tensor
    logvar: Tensor
    z: Tensor
    kl: Tensor


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(μ, σ²) ‖ N(0, 1))`` element-wise, in nats: ``½(μ² + σ² − 1 − log σ²)``.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


class MelVAE(MelLatentRate, nn.Module):
    """Gaussian VAE on log-mel spectrograms ``[B, n_mels, T]`` with the codec's trunk.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Args:
        config: A :class:`VAEConfig` (or keyword overrides of the default).
        features: Feature configuration of the log-mel the model reads and writes.
    """

    def __init__(self, config: VAEConfig | None = None, features: FeatureConfig = FEATURES,
                 **overrides) -> None:
        super().__init__()
        cfg = resolve_config(VAEConfig, config, overrides, features)
        self.config = cfg
        self.features = features
        d = cfg.latent_dim
        self.encoder = build_encoder(cfg.encoder, cfg.n_mels, cfg.channels, 2 * d,
                                     cfg.downsample_log2, cfg.res_blocks)
        self.decoder = build_decoder(cfg.n_mels, cfg.channels, d, cfg.downsample_log2,
                                     cfg.res_blocks)
        # one learned scale of the Gaussian likelihood, in normalised log-mel units
        self.log_scale = nn.Parameter(torch.tensor(math.log(0.3)))

    # ------------------------------------------------------------------ rates and shapes

    def rate_bps(self, kl_nats_per_frame: float) -> float:
        """Bit rate of the latents: KL per latent frame (nats, summed over D) → bits/s.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        return kl_nats_per_frame / math.log(2.0) * self.latent_fps

    # ------------------------------------------------------------------ network

    def encode(self, logmel: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior parameters ``(μ, log σ²)``, each ``[B, T', D]``.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        t = logmel.shape[-1]
        pad = (-t) % self.factor
        if pad:
            logmel = nn.functional.pad(logmel, (0, pad), value=self.config.log_floor)
        x = (logmel - self.config.mel_mean) / self.config.mel_std
        h = self.encoder(x).transpose(1, 2)
        mu, logvar = h.chunk(2, dim=-1)
        return mu.contiguous(), logvar.clamp(-12.0, 8.0).contiguous()

    def decode(self, z: Tensor, length: int | None = None) -> Tensor:
        """Log-mel ``[B, n_mels, T]`` from latents ``[B, T', D]``.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        y = self.decoder(z.transpose(1, 2)) * self.config.mel_std + self.config.mel_mean
        y = y.clamp_min(self.config.log_floor)
        return y if length is None else y[..., :length]

    def forward(self, logmel: Tensor, *, sample: bool | None = None
                ) -> tuple[Tensor, VAEOutput]:
        """Reconstruct a log-mel batch: encode, draw ``z`` (or take ``μ``), decode.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Args:
            logmel: Input log-mel ``[B, n_mels, T]``.
            sample: Draw ``z ~ q(z | x)`` (default: in training mode only).

        Returns:
            ``(reconstruction [B, n_mels, T], VAEOutput)``.
        """
        if logmel.dim() != 3 or logmel.shape[1] != self.config.n_mels:
            raise ValueError(f"expected [B, {self.config.n_mels}, T], got {tuple(logmel.shape)}")
        mu, logvar = self.encode(logmel)
        sample = self.training if sample is None else sample
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return self.decode(z, logmel.shape[-1]), VAEOutput(mu, logvar, z, gaussian_kl(mu, logvar))

    def beta_at(self, step: int) -> float:
        """β after ``step`` training steps (linear annealing from 0 when configured).

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        if self.config.anneal_steps <= 0:
            return self.config.beta
        return self.config.beta * min(1.0, step / self.config.anneal_steps)

    def loss(self, logmel: Tensor, recon: Tensor, out: VAEOutput, mask: Tensor | None = None,
             step: int | None = None) -> tuple[Tensor, dict[str, float]]:
        """Negative ELBO per log-mel element: Gaussian NLL + β · KL (with free bits).

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Args:
            logmel: Target log-mel ``[B, n_mels, T]`` (any range).
            recon: Reconstruction from :meth:`forward`.
            out: The :class:`VAEOutput` of that call.
            mask: ``[B, 1, T]`` of valid frames (padding excluded), or ``None``.
            step: Training step (for KL annealing); ``None``: the full β.

        Returns:
            ``(loss, stats)`` with the NLL, the KL in nats per latent frame, β and the L1.
        """
        cfg = self.config
        if mask is None:
            mask = torch.ones_like(logmel[:, :1])
        x = (logmel - cfg.mel_mean) / cfg.mel_std
        x_hat = (recon - cfg.mel_mean) / cfg.mel_std
        s = self.log_scale
        nll = 0.5 * ((x - x_hat) / s.exp()).pow(2) + s + 0.5 * math.log(2 * math.pi)
        n_el = (mask.sum() * logmel.shape[1]).clamp_min(1)
        nll = (nll * mask).sum() / n_el
        # latent frames that cover valid mel frames
        m_lat = nn.functional.max_pool1d(
            nn.functional.pad(mask, (0, (-mask.shape[-1]) % self.factor)), self.factor,
            self.factor).transpose(1, 2)                                   # [B, T', 1]
        frames = m_lat.sum().clamp_min(1)
        kl_dim = (out.kl * m_lat).sum((0, 1)) / frames                     # [D], nats/frame
        kl_used = kl_dim.clamp_min(cfg.free_bits) if cfg.free_bits > 0 else kl_dim
        beta = cfg.beta if step is None else self.beta_at(step)
        # per mel element, so the two terms keep their relative weight for any T and n_mels
        kl_term = kl_used.sum() * frames / n_el
        l1 = float(((recon.detach() - logmel).abs() * mask).sum() / n_el)
        stats = {"nll": float(nll.detach()), "kl_nats_per_frame": float(kl_dim.detach().sum()),
                 "beta": beta, "recon_l1": l1, "scale": float(s.exp().detach())}
        return nll + beta * kl_term, stats

    # ------------------------------------------------------------------ audio and samples

    @torch.no_grad()
    @torch.no_grad()
    def reconstruct(self, y: np.ndarray, *, n_iter: int = 32, seed: int = 0,
                    sample: bool = False) -> np.ndarray:
        """Waveform → log-mel → latent → log-mel → Griffin-Lim waveform.

        The latent is the posterior mean, or with ``sample=True`` a draw ``z ~ q(z | x)``:
        what relative-entropy coding at the KL rate actually transmits.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Args:
            y: Mono waveform at the feature sample rate.
            n_iter: Griffin-Lim iterations.
            seed: Seed of the initial phase and of the latent draw.
            sample: Decode a sample of the posterior instead of its mean.
        """
        device = next(self.parameters()).device
        x = torch.from_numpy(log_mel(y, self.features))[None].to(device)
        mu, logvar = self.encode(x)
        z = mu
        if sample:
            g = torch.Generator(device=device).manual_seed(seed)
            z = mu + torch.randn(mu.shape, generator=g, device=device) * (0.5 * logvar).exp()
        L = self.decode(z, x.shape[-1])[0].cpu().numpy()
        return log_mel_to_audio(L, self.features, n_iter=n_iter, length=len(y), seed=seed)

    @torch.no_grad()
    def sample(self, n: int, frames: int, *, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> Tensor:
        """Log-mels ``[n, n_mels, frames]`` decoded from the prior ``z ~ N(0, t² I)``.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        device = next(self.parameters()).device
        t_lat = -(-frames // self.factor)
        z = torch.randn(n, t_lat, self.config.latent_dim, generator=generator) * temperature
        return self.decode(z.to(device), frames)

    @torch.no_grad()
    def active_units(self, mus: Tensor, threshold: float = 1e-2) -> Tensor:
        """Which latent dimensions the encoder uses: ``Var_x[E_q(z|x) z_d] > threshold``
        (Burda et al., 2016). ``mus``: posterior means ``[N, D]`` of many frames.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        return mus.var(dim=0) > threshold

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, **extra) -> dict:
        """A checkpoint dict (kind, format, config, features, weights, plus ``extra``).

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        return model_checkpoint(self, MODEL_KIND, **extra)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> MelVAE:
        """Rebuild a VAE from a checkpoint (``weights_only=True``), in eval mode.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Raises:
            CheckpointError: Not a mel VAE checkpoint, other feature settings than
                :data:`utils.audio.FEATURES`, or weights that do not fit.
        """
        return rebuild_model(cls, VAEConfig, path, MODEL_KIND,
                             map_location=map_location, features=True)
