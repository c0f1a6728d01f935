"""Complex affine maps and (transposed) convolutions as functions, in three implementations.

All take and return native complex tensors (``torch.complex64``; ``torch.complex128`` also
works) and compute ``W * z + b`` with **one** complex weight ``W = A + iB`` and **one** complex
bias ``b`` (the 2022 seed added two real biases, an effective ``(b_A - b_B) + i(b_A + b_B)``
with twice the parameters). Three interchangeable implementations (``impl=``), equal up to float
rounding:

* ``"native"``: PyTorch's complex kernels (``F.conv2d`` / ``F.linear`` on complex tensors).
* ``"gauss"``: Gauss's three-multiplication trick, in a custom autograd function
  (:mod:`utils.complex.kernels`). Convolutions run in channels-last memory format
  (``channels_last=True``), which oneDNN executes faster on CPU; the output then has
  channels-last strides (same shape: use ``reshape``/``flatten`` rather than ``view`` on it).
* ``"block"``: one real product on the stacked ``[Re, Im]`` channels with the 2x2 block weight
  ``[[A, -B], [B, A]]`` (4 real multiplications per complex one, but a single kernel call).

``impl="auto"`` picks, per layer kind, the implementation measured fastest by
``benchmarks/complex_speed.py`` (forward + backward, 2 threads; see :data:`AUTO_IMPL`).

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from utils.complex.kernels import (
    _block_forward,
    _ConvOp,
    _GaussFunction,
    _LinearOp,
)

__all__ = ["AUTO_IMPL", "IMPLS", "complex_conv", "complex_linear"]

IMPLS = ("native", "gauss", "block")

#: Default implementation per layer kind for ``impl="auto"``, from
#: ``python benchmarks/complex_speed.py`` (torch 2.13 CPU, forward + backward, medians of
#: interleaved repeats); the numbers and their caveats are in the docstrings of
#: :class:`~utils.complex.conv.ComplexConv2d` and :class:`~utils.complex.linear.ComplexLinear`.
AUTO_IMPL: dict[str, str] = {"conv": "gauss", "conv_transpose": "gauss", "linear": "native"}


def _check_complex(z: Tensor, weight: Tensor) -> None:
    if not z.is_complex():
        raise TypeError(
            f"expected a complex input tensor, got dtype {z.dtype}; build one with "
            "torch.complex(re, im) or utils.complex.layout.to_complex(x) for the (..., 2) layout"
        )
    if z.dtype != weight.dtype:
        raise TypeError(f"input dtype {z.dtype} does not match weight dtype {weight.dtype}")


def _resolve_impl(impl: str, kind: str) -> str:
    if impl == "auto":
        return AUTO_IMPL[kind]
    if impl not in IMPLS:
        raise ValueError(f"impl must be 'auto' or one of {IMPLS}, got {impl!r}")
    return impl


def complex_linear(
    z: Tensor, weight: Tensor, bias: Tensor | None = None, impl: str = "auto"
) -> Tensor:
    """Complex affine map ``z @ W.T + b`` over the last dimension.

    Args:
        z: complex input ``(..., in_features)``.
        weight: complex weight ``(out_features, in_features)``.
        bias: optional complex bias ``(out_features,)``.
        impl: ``"auto"``, ``"native"``, ``"gauss"`` or ``"block"`` (see the module docstring).

    Returns:
        Complex tensor ``(..., out_features)``.

    Notebook: notebooks/05_complex_layers.ipynb
    """
    _check_complex(z, weight)
    impl = _resolve_impl(impl, "linear")
    if impl == "native":
        return F.linear(z, weight, bias)
    if impl == "gauss":
        return _GaussFunction.apply(z, weight, bias, _LinearOp(), False)
    return _block_forward(z, weight, bias, _LinearOp(), False, False)


def complex_conv(
    z: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Sequence[int] | int = 1,
    padding: Sequence[int] | int = 0,
    dilation: Sequence[int] | int = 1,
    groups: int = 1,
    transposed: bool = False,
    output_padding: Sequence[int] | int = 0,
    impl: str = "auto",
    channels_last: bool = True,
) -> Tensor:
    """Complex 1-D/2-D (transposed) convolution ``W * z + b`` with one complex weight and bias.

    Args:
        z: complex input ``(B, C_in, L)`` or ``(B, C_in, H, W)``.
        weight: complex weight ``(C_out, C_in/groups, *k)``, or ``(C_in, C_out/groups, *k)`` when
            ``transposed``.
        bias: optional complex bias ``(C_out,)``.
        stride, padding, dilation, groups, output_padding: as in ``torch.nn.functional.conv2d`` /
            ``conv_transpose2d`` (integers or one value per spatial dimension).
        transposed: transposed convolution (the adjoint of the convolution with ``weight``).
        impl: ``"auto"``, ``"native"``, ``"gauss"`` or ``"block"`` (see the module docstring).
        channels_last: for ``"gauss"``/``"block"`` on 2-D single-precision data, compute (and
            return) in channels-last layout; float64 always runs in the default layout.

    Returns:
        Complex output ``(B, C_out, ...)``.

    Notebook: notebooks/05_complex_layers.ipynb
    """
    _check_complex(z, weight)
    nd = weight.dim() - 2
    if z.dim() != nd + 2:
        raise ValueError(f"expected a {nd + 2}-D batched input, got shape {tuple(z.shape)}")
    stride_, padding_, dilation_, out_pad = (
        _ntuple(v, nd) for v in (stride, padding, dilation, output_padding)
    )
    impl = _resolve_impl(impl, "conv_transpose" if transposed else "conv")
    if impl == "native":
        if transposed:
            fn = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
            return fn(z, weight, bias, stride_, padding_, out_pad, groups, dilation_)
        fn = F.conv1d if nd == 1 else F.conv2d
        return fn(z, weight, bias, stride_, padding_, dilation_, groups)
    if nd == 1:  # run 1-D convolutions as 2-D ones of height 1 (channels-last friendly)
        out = complex_conv(
            z.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride_[0]), (0, padding_[0]),
            (1, dilation_[0]), groups, transposed, (0, out_pad[0]), impl, channels_last,
        )
        return out.squeeze(2)
    op = _ConvOp(stride_, padding_, dilation_, transposed, out_pad if transposed else [0] * nd,
                 groups)
    if impl == "gauss":
        return _GaussFunction.apply(z, weight, bias, op, channels_last)
    return _block_forward(z, weight, bias, op, transposed, channels_last)


def _ntuple(value: Sequence[int] | int, n: int) -> list[int]:
    if isinstance(value, int):
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise ValueError(f"expected {n} values, got {value}")
    return [int(v) for v in value]
