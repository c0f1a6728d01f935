"""Complex weight initialisation (Trabelsi et al., "Deep Complex Networks", ICLR 2018, sec. 3.6).

A complex weight ``W = |W| e^{iθ}`` is drawn with a Rayleigh-distributed magnitude of scale ``σ``
and a uniform phase ``θ ~ U(-π, π)``. Then ``E[W] = 0`` and ``Var(W) = E|W|^2 = 2σ^2``:

* Glorot: ``σ = 1/sqrt(fan_in + fan_out)``, so ``E|W|^2 = 2/(fan_in + fan_out)``;
* He: ``σ = 1/sqrt(fan_in)``, so ``E|W|^2 = 2/fan_in``.

Both the 2022 seed (real Xavier on each part) and ``nn.Linear(dtype=torch.cfloat)`` give twice the
complex Glorot variance; Trabelsi's reference code passes ``σ^2`` instead of ``σ`` as the Rayleigh
scale (a missing square root, deep_complex_networks#35). This module implements the paper's values.

Naming: ``mode="independent"`` here means i.i.d. entries (the paper's plain complex init), and
``mode="unitary"`` means the filters, flattened into the rows of a matrix, form a (semi-)unitary
matrix rescaled to the same variance. (Trabelsi's code calls the unitary construction
"independent filters".)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["complex_fans", "complex_init_"]


def complex_fans(weight: Tensor, transposed: bool = False, groups: int = 1) -> tuple[int, int]:
    """Fan-in and fan-out of a complex linear / convolution weight (counted in complex units).

    Layouts (as in ``torch.nn``): linear ``(out, in)``; convolution ``(out, in/groups, *k)``;
    transposed convolution ``(in, out/groups, *k)``. For a convolution
    ``fan_in = in/groups * prod(k)`` and ``fan_out = out/groups * prod(k)``; a transposed
    convolution is counted like the convolution from ``in`` to ``out`` channels with the same
    kernel.

    Args:
        weight: weight tensor (any dtype; only the shape is used).
        transposed: whether ``weight`` has the transposed-convolution layout.
        groups: number of convolution groups.

    Returns:
        ``(fan_in, fan_out)``.

    Notebook: notebooks/05_complex_layers.ipynb
    """
    if weight.dim() < 2:
        raise ValueError(f"weight must have at least 2 dimensions, got shape {tuple(weight.shape)}")
    receptive = math.prod(weight.shape[2:])
    if transposed:
        in_per_group, out_per_group = weight.shape[0] // groups, weight.shape[1]
    else:
        in_per_group, out_per_group = weight.shape[1], weight.shape[0] // groups
    return in_per_group * receptive, out_per_group * receptive


def complex_init_(
    weight: Tensor,
    fan_in: int,
    fan_out: int,
    criterion: str = "glorot",
    mode: str = "independent",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill a complex weight in place with Rayleigh magnitudes and uniform phases (Trabelsi).

    ``σ = 1/sqrt(fan_in + fan_out)`` (``"glorot"``) or ``1/sqrt(fan_in)`` (``"he"``); the target
    variance is ``E|W|^2 = 2σ^2``.

    * ``mode="independent"``: every entry is drawn independently, ``|W| ~ Rayleigh(σ)`` (sampled as
      ``σ sqrt(-2 ln U)``) and ``θ ~ U(-π, π)``; the empirical ``E|W|^2`` matches ``2σ^2`` up to
      sampling noise.
    * ``mode="unitary"``: the weight is viewed as a matrix with one row per leading index
      (``weight.shape[0]``: output units, or input channels for transposed convolutions) and the
      remaining dimensions flattened into columns. The polar factor ``Q = U V^H`` of a complex
      Gaussian matrix (from its SVD) is semi-unitary (orthonormal rows or columns) and has uniformly
      distributed phases; it is rescaled so that the mean of ``|W|^2`` equals ``2σ^2`` exactly.

    Args:
        weight: complex tensor (e.g. a ``Parameter``), filled in place without recording autograd.
        fan_in: number of complex inputs feeding one output.
        fan_out: number of complex outputs fed by one input.
        criterion: ``"glorot"`` or ``"he"``.
        mode: ``"independent"`` or ``"unitary"``.
        generator: optional ``torch.Generator`` for reproducible draws (the samples are drawn on the
            generator's device, in float64, then cast to ``weight``'s dtype and device).

    Returns:
        ``weight``.

    Raises:
        TypeError: if ``weight`` is not complex.
        ValueError: on an unknown criterion or mode, or non-positive fans.

    Notebook: notebooks/05_complex_layers.ipynb
    """
    if not weight.is_complex():
        raise TypeError(f"complex_init_ expects a complex tensor, got dtype {weight.dtype}")
    if fan_in <= 0 or fan_out <= 0:
        raise ValueError(f"fans must be positive, got fan_in={fan_in}, fan_out={fan_out}")
    if criterion == "glorot":
        sigma = 1.0 / math.sqrt(fan_in + fan_out)
    elif criterion == "he":
        sigma = 1.0 / math.sqrt(fan_in)
    else:
        raise ValueError(f"criterion must be 'glorot' or 'he', got {criterion!r}")
    device = generator.device if generator is not None else weight.device
    if weight.numel() == 0:
        return weight
    if mode == "independent":
        u_mag = torch.rand(weight.shape, generator=generator, dtype=torch.float64, device=device)
        u_phase = torch.rand(weight.shape, generator=generator, dtype=torch.float64, device=device)
        # 1 - U lies in (0, 1], so the logarithm is finite.
        magnitude = sigma * torch.sqrt(-2.0 * torch.log1p(-u_mag))
        phase = (2.0 * u_phase - 1.0) * math.pi
        values = torch.polar(magnitude, phase)
    elif mode == "unitary":
        rows = weight.shape[0]
        cols = weight.numel() // rows
        gauss = torch.randn(
            (rows, cols), generator=generator, dtype=torch.complex128, device=device
        )
        u, _, vh = torch.linalg.svd(gauss, full_matrices=False)
        q = u @ vh
        scale = sigma * math.sqrt(2.0 * rows * cols / min(rows, cols))
        values = (scale * q).reshape(weight.shape)
    else:
        raise ValueError(f"mode must be 'independent' or 'unitary', got {mode!r}")
    with torch.no_grad():
        weight.copy_(values.to(device=weight.device, dtype=weight.dtype))
    return weight
