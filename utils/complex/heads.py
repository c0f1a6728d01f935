"""From complex features to real ones: :class:`ComplexToReal`, the parameter-free head before
a real loss or a real classifier layer.

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ComplexToReal"]


class ComplexToReal(nn.Module):
    """Parameter-free head turning complex features into real ones (e.g. logits for a real loss).

    Modes:

    * ``"modulus"``: ``|z|`` (phase-invariant; the gradient at ``z = 0`` is 0, not NaN);
    * ``"modulus_squared"``: ``|z|^2 = Re^2 + Im^2`` (smooth everywhere);
    * ``"concat"``: ``[Re z, Im z]`` concatenated along ``dim`` (doubles that dimension; follow it
      with a real ``nn.Linear`` to get logits);
    * ``"real"``: ``Re z``.

    Args:
        mode: one of the modes above.
        dim: feature dimension for ``"concat"`` (default 1: features of ``(B, F)`` or channels of
            ``(B, C, H, W)``).

    Notebook: notebooks/05_complex_layers.ipynb
    """

    MODES = ("modulus", "modulus_squared", "concat", "real")

    def __init__(self, mode: str = "modulus", dim: int = 1) -> None:
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.dim = dim

    def forward(self, z: Tensor) -> Tensor:
        if not z.is_complex():
            raise TypeError(f"expected a complex tensor, got dtype {z.dtype}")
        if self.mode == "modulus":
            return z.abs()
        if self.mode == "modulus_squared":
            return z.real.square() + z.imag.square()
        if self.mode == "concat":
            return torch.cat([z.real, z.imag], dim=self.dim)
        return z.real

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}" + (f", dim={self.dim}" if self.mode == "concat" else "")
