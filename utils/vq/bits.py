"""What codes carry, in bits: the entropy of code histograms, per-stage codebook usage, and the
bit rate of a code stream.

The one definition of codebook entropy in the collection is :func:`code_entropy`; the
perplexity is ``2**entropy``, and ``entropy / log2 K`` is the share of the codebook's capacity
the codes carry. :func:`bitrate_bps` is the rate without entropy coding.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["bitrate_bps", "code_entropy", "codebook_usage"]


def bitrate_bps(frames_per_second: float, codebook_sizes: int | Sequence[int]) -> float:
    """Bit rate of a VQ code stream: ``frames_per_second * sum(log2 K_i)``.

    Each latent frame sends one index per codebook (one per residual stage), i.e. ``log2 K_i``
    bits for codebook ``i``. This is the rate without entropy coding; the empirical code entropy
    (:meth:`VectorQuantizer.usage`) bounds what entropy coding could save.

    Args:
        frames_per_second: latent frames per second of audio (e.g. 16000 / hop / downsampling).
        codebook_sizes: one codebook size or the sizes of the residual stages in use.

    Returns:
        Bits per second.

    Example:
        ``bitrate_bps(50, [1024, 1024])`` is 1000.0 (two 10-bit codes per 20 ms frame).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    sizes = [codebook_sizes] if isinstance(codebook_sizes, int) else list(codebook_sizes)
    if frames_per_second < 0:
        raise ValueError(f"frames_per_second must be >= 0, got {frames_per_second}")
    if any(int(k) < 1 for k in sizes):
        raise ValueError(f"codebook sizes must be >= 1, got {sizes}")
    return float(frames_per_second) * sum(math.log2(int(k)) for k in sizes)


def code_entropy(counts: Tensor) -> Tensor:
    """Entropy in **bits** of code histograms along the last axis (0 log 0 = 0; 0 if empty).

    The one definition of codebook entropy in the collection: the perplexity is ``2**entropy``
    (the number of equally used codes with the same entropy), and ``entropy / log2 K`` is the
    share of the codebook's capacity the codes carry.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        counts: Code counts ``[..., K]`` (any non-negative numbers).

    Returns:
        Entropies ``[...]`` in bits.
    """
    counts = counts.to(torch.float64 if counts.dtype == torch.float64 else torch.float32)
    p = counts / counts.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    return -torch.special.xlogy(p, p).sum(dim=-1) / math.log(2)


def codebook_usage(counts: Tensor) -> dict[str, list[float]]:
    """Per-stage usage of code counts ``[stages, K]``: share used, perplexity, entropy (bits).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        counts: ``[stages, K]`` number of times each code was chosen (or transmitted).

    Returns:
        ``{"codebook_used_fraction": [...], "codebook_perplexity": [...],
        "codebook_entropy_bits": [...]}``, one value per stage.
    """
    ent = code_entropy(counts)
    return {
        "codebook_used_fraction": [round(float(u), 4) for u in (counts > 0).float().mean(1)],
        "codebook_perplexity": [round(float(v), 1) for v in 2**ent],
        "codebook_entropy_bits": [round(float(v), 3) for v in ent],
    }

