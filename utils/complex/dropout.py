"""Dropout for complex tensors: whole complex elements (:class:`ComplexDropout`) or whole
complex channels (:class:`ComplexDropout2d`), one mask shared by Re and Im.

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["ComplexDropout", "ComplexDropout2d"]


class ComplexDropout(nn.Module):
    """Dropout for complex tensors: one Bernoulli mask shared by Re and Im, scaled once.

    ``out = m * z / (1 - p)`` with ``m ~ Bernoulli(1 - p)`` per complex element, so a dropped
    element loses both parts and ``E[out] = z``. (The 2022 seed applied ``nn.Dropout`` to the
    stacked ``[Re, Im]`` tensor, dropping the parts independently; complexPyTorch shares the mask
    but scales survivors by ``1/(1-p)^2``.) Identity in eval mode.

    Args:
        p: probability of zeroing a complex element, in ``[0, 1]``.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = p

    def _mask_shape(self, z: Tensor) -> Sequence[int]:
        return z.shape

    def forward(self, z: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return z
        if not z.is_complex():
            raise TypeError(f"expected a complex tensor, got dtype {z.dtype}")
        if self.p == 1.0:
            return z * 0
        real_dtype = z.real.dtype
        mask = torch.empty(self._mask_shape(z), dtype=real_dtype, device=z.device)
        mask.bernoulli_(1.0 - self.p).mul_(1.0 / (1.0 - self.p))
        return z * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ComplexDropout2d(ComplexDropout):
    """Channel dropout for complex ``(B, C, H, W)`` tensors: whole complex channels are zeroed.

    The mask ``(B, C, 1, 1)`` is shared by Re and Im and survivors are scaled once by ``1/(1-p)``.

    Args:
        p: probability of zeroing a complex channel.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def _mask_shape(self, z: Tensor) -> Sequence[int]:
        if z.dim() < 3:
            raise ValueError(f"ComplexDropout2d expects (B, C, H, W), got {tuple(z.shape)}")
        return (*z.shape[:2], *([1] * (z.dim() - 2)))
