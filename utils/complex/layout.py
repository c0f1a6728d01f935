"""Conversions between native complex tensors and the seed's trailing ``[real, imag]`` layout.

The 2022 seed (``Complex-Neural-Networks``) stored a complex tensor as a real tensor whose last
dimension has size 2 (``x[..., 0]`` real part, ``x[..., 1]`` imaginary part). This package works on
native ``torch.complex64`` / ``torch.complex128`` tensors instead; these two helpers translate for
readers of the seed code. Both are zero-copy views whenever the memory layout allows it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["to_complex", "to_trailing"]


def to_complex(x: Tensor) -> Tensor:
    """Turn a real tensor in the seed layout ``(..., 2)`` into a native complex tensor ``(...)``.

    ``x[..., 0]`` becomes the real part and ``x[..., 1]`` the imaginary part. ``float32`` gives
    ``complex64``, ``float64`` gives ``complex128``. The result is a view of ``x`` when the last
    dimension is contiguous (the usual case, e.g. after ``torch.stack([re, im], -1)``); otherwise a
    contiguous copy is taken first. Autograd flows through the conversion.

    Args:
        x: real floating tensor whose last dimension has size 2.

    Returns:
        Complex tensor with shape ``x.shape[:-1]``.

    Raises:
        ValueError: if the last dimension does not have size 2.
        TypeError: if ``x`` is complex or not floating point.

    Notebook: notebooks/05_complex_layers.ipynb
    """
    if x.is_complex() or not x.is_floating_point():
        raise TypeError(f"to_complex expects a real floating tensor (..., 2), got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != 2:
        raise ValueError(
            f"to_complex expects a trailing dimension of size 2 [real, imag], got shape "
            f"{tuple(x.shape)}"
        )
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if x.stride(-1) != 1 or any(s % 2 for s in x.stride()[:-1]) or x.storage_offset() % 2:
        x = x.contiguous()
    return torch.view_as_complex(x)


def to_trailing(z: Tensor) -> Tensor:
    """Turn a native complex tensor ``(...)`` into the seed layout ``(..., 2)`` = ``[real, imag]``.

    The result is a real view of ``z`` (``torch.view_as_real``): writing into it writes into ``z``.
    A lazily conjugated tensor (``z.conj()``) is materialised first, so the values are always those
    of ``z``.

    Args:
        z: complex tensor.

    Returns:
        Real tensor with shape ``z.shape + (2,)``.

    Raises:
        TypeError: if ``z`` is not complex.

    Notebook: notebooks/05_complex_layers.ipynb
    """
    if not z.is_complex():
        raise TypeError(f"to_trailing expects a complex tensor, got dtype {z.dtype}")
    return torch.view_as_real(z.resolve_conj())
