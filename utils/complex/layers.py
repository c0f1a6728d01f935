"""Complex linear, convolution and transposed-convolution layers, complex dropout and a real head.

All layers take and return native complex tensors (``torch.complex64``; ``torch.complex128`` also
works). A layer computes ``W * z + b`` with **one** complex weight ``W = A + iB`` and **one**
complex bias ``b`` (the 2022 seed added two real biases, an effective ``(b_A - b_B) + i(b_A + b_B)``
with twice the parameters). Weights are initialised with the complex Glorot/He rule of
:mod:`utils.complex.init`.

Three interchangeable implementations (``impl=``), equal up to float rounding:

* ``"native"``: PyTorch's complex kernels (``F.conv2d`` / ``F.linear`` on complex tensors).
* ``"gauss"``: Gauss's three-multiplication trick with ``z = x + iy``::

      k1 = A*(x + y),  k2 = (B - A)*x + b_i,  k3 = (A + B)*y - b_r
      Re = k1 - k3,    Im = k1 + k2

  in a custom autograd function: the weight sums are formed once per call, the bias is folded into
  the real convolutions, the backward pass is three real ``convolution_backward`` calls (the same
  trick applied to the adjoint), and the real/imaginary planes are split and re-interleaved with
  one memory pass each. Convolutions run in channels-last memory format (``channels_last=True``),
  which oneDNN executes faster on CPU; the output then has channels-last strides (same shape: use
  ``reshape``/``flatten`` rather than ``view`` on it).
* ``"block"``: one real convolution on the stacked ``[Re, Im]`` channels with the 2x2 block weight
  ``[[A, -B], [B, A]]`` (4 real multiplications per complex one, but a single kernel call). In
  channels-last layout the complex input *is* such a real tensor, so no copies are made.

``impl="auto"`` picks, per layer kind, the implementation measured fastest by
``benchmarks/complex_speed.py`` (forward + backward, 2 threads; see :data:`AUTO_IMPL`).

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .init import complex_fans, complex_init_

__all__ = [
    "AUTO_IMPL",
    "IMPLS",
    "ComplexConv1d",
    "ComplexConv2d",
    "ComplexConvTranspose2d",
    "ComplexDropout",
    "ComplexDropout2d",
    "ComplexLinear",
    "ComplexToReal",
    "complex_conv",
    "complex_linear",
]

IMPLS = ("native", "gauss", "block")

#: Default implementation per layer kind for ``impl="auto"``, from
#: ``python benchmarks/complex_speed.py`` (torch 2.13 CPU, forward + backward, medians of
#: interleaved repeats); the numbers and their caveats are in the docstrings of
#: :class:`ComplexConv2d` and :class:`ComplexLinear`.
AUTO_IMPL: dict[str, str] = {"conv": "gauss", "conv_transpose": "gauss", "linear": "native"}

_CL_PERM = (0, 2, 3, 1)  # channels-last memory order of a 4-D (B, C, H, W) tensor


# ----------------------------------------------------------------------------------------------
# memory helpers
# ----------------------------------------------------------------------------------------------
def _inverse(perm: Sequence[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _split_planes(z: Tensor, perm: Sequence[int], extra: int) -> list[Tensor]:
    """Real planes of ``z``: ``extra`` uninitialised planes, then Re and Im (one copy pass).

    All planes have ``z``'s shape and the memory order ``perm`` (outermost to innermost dims).
    """
    zr = torch.view_as_real(z.resolve_conj().resolve_neg())
    shape = [z.shape[p] for p in perm]
    buf = torch.empty((extra + 2, *shape), dtype=zr.dtype, device=z.device)
    buf[extra:].copy_(zr.permute(zr.dim() - 1, *perm))
    inv = _inverse(perm)
    return [plane.permute(*inv) for plane in buf.unbind(0)]


def _empty_trailing(shape: Sequence[int], perm: Sequence[int], like: Tensor) -> Tensor:
    """Uninitialised real ``(*shape, 2)`` tensor whose complex view has memory order ``perm``."""
    buf = torch.empty((*[shape[p] for p in perm], 2), dtype=like.dtype, device=like.device)
    return buf.permute(*_inverse(perm), len(perm))


def _use_channels_last(t: Tensor, channels_last: bool) -> bool:
    """Channels-last pays off for oneDNN's single-precision CPU kernels; float64 convolutions fall
    back to PyTorch's reference kernel, whose channels-last variant is slower, so they stay NCHW
    (as do tensors on other devices, where this was not measured)."""
    dtype = t.real.dtype if t.is_complex() else t.dtype
    return (channels_last and t.dim() == 4 and dtype != torch.float64
            and t.device.type == "cpu")


def _memory_perm(t: Tensor, channels_last: bool) -> tuple[int, ...]:
    if _use_channels_last(t, channels_last):
        return _CL_PERM
    return tuple(range(t.dim()))


def _check_complex(z: Tensor, weight: Tensor) -> None:
    if not z.is_complex():
        raise TypeError(
            f"expected a complex input tensor, got dtype {z.dtype}; build one with "
            "torch.complex(re, im) or utils.complex.layout.to_complex(x) for the (..., 2) layout"
        )
    if z.dtype != weight.dtype:
        raise TypeError(f"input dtype {z.dtype} does not match weight dtype {weight.dtype}")


# ----------------------------------------------------------------------------------------------
# real bilinear operators used by the Gauss and block implementations
# ----------------------------------------------------------------------------------------------
class _ConvOp:
    """A real (transposed) convolution with fixed hyper-parameters, on 4-D or 3-D tensors."""

    def __init__(
        self,
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
        transposed: bool,
        output_padding: Sequence[int],
        groups: int,
    ) -> None:
        self.stride = list(stride)
        self.padding = list(padding)
        self.dilation = list(dilation)
        self.transposed = transposed
        self.output_padding = list(output_padding)
        self.groups = groups

    def forward(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return torch.ops.aten.convolution(
            x, w, b, self.stride, self.padding, self.dilation, self.transposed,
            self.output_padding, self.groups,
        )

    def backward(
        self, g: Tensor, x: Tensor, w: Tensor, need_x: bool, need_w: bool, need_b: bool = False
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Gradients w.r.t. input, weight and (a bias of) the output, from one kernel call."""
        return torch.ops.aten.convolution_backward(
            g, x, w, [w.shape[1] * self.groups if self.transposed else w.shape[0]],
            self.stride, self.padding, self.dilation, self.transposed, self.output_padding,
            self.groups, [need_x, need_w, need_b],
        )


class _LinearOp:
    """A real ``x @ w.T + b`` over the last dimension."""

    @staticmethod
    def forward(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return F.linear(x, w, b)

    @staticmethod
    def backward(
        g: Tensor, x: Tensor, w: Tensor, need_x: bool, need_w: bool, need_b: bool = False
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        g2 = g.reshape(-1, g.shape[-1])
        gx = g @ w if need_x else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if need_w else None
        gb = g2.sum(0) if need_b else None
        return gx, gw, gb


class _GaussFunction(torch.autograd.Function):
    """Complex bilinear op ``W*z + b`` with three real products forward and three backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        z: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        op: _ConvOp | _LinearOp,
        channels_last: bool,
    ) -> Tensor:
        perm_in = _memory_perm(z, channels_last)
        s, x, y = _split_planes(z, perm_in, extra=1)
        torch.add(x, y, out=s)
        a = weight.real.contiguous()
        bw = weight.imag
        w2 = bw - a
        w3 = a + bw
        b2 = b3 = None
        if bias is not None:
            b2 = bias.imag.contiguous()
            b3 = -bias.real
        k1 = op.forward(s, a, None)
        k2 = op.forward(x, w2, b2)
        k3 = op.forward(y, w3, b3)
        perm_out = _memory_perm(k1, channels_last)
        out = _empty_trailing(k1.shape, perm_out, k1)
        torch.sub(k1, k3, out=out[..., 0])
        torch.add(k1, k2, out=out[..., 1])
        ctx.op = op
        ctx.perm_out = perm_out
        # the input gradient is returned in the input's own layout (no re-layout by autograd)
        ctx.perm_grad_in = (_CL_PERM if z.dim() == 4 and not z.is_contiguous()
                            and z.is_contiguous(memory_format=torch.channels_last)
                            else tuple(range(z.dim())))
        ctx.has_bias = bias is not None
        ctx.save_for_backward(s, x, y, a, w2, w3)
        return torch.view_as_complex(out)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        s, x, y, a, w2, w3 = ctx.saved_tensors
        op = ctx.op
        need_z, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and ctx.has_bias
        grad_z = grad_w = grad_b = None
        gs, gr, gi = _split_planes(grad, ctx.perm_out, extra=1)
        # dL/dk1 = g_r + g_i, dL/dk2 = g_i, dL/dk3 = -g_r (the sign is applied below). The bias
        # gradients come out of the kernels of k2 (sum g_i = dL/db_i) and k3 (sum g_r = dL/db_r).
        d2, gw2, gb_i = op.backward(gi, x, w2, need_z, need_w, need_b)
        d3, gw3, gb_r = op.backward(gr, y, w3, need_z, need_w, need_b)
        if need_z or need_w:
            torch.add(gr, gi, out=gs)
            d1, gw1, _ = op.backward(gs, s, a, need_z, need_w, False)
            if need_z:
                out = _empty_trailing(d1.shape, ctx.perm_grad_in, d1)
                torch.add(d1, d2, out=out[..., 0])  # dL/dx = d1 + d2
                torch.sub(d1, d3, out=out[..., 1])  # dL/dy = d1 - d3
                grad_z = torch.view_as_complex(out)
            if need_w:
                grad_w = torch.complex(gw1 - gw2 - gw3, gw2 - gw3)
        if need_b:
            grad_b = torch.complex(gb_r, gb_i)
        return grad_z, grad_w, grad_b, None, None


def _block_weight(weight: Tensor, transposed: bool) -> Tensor:
    """Real block weight acting on interleaved channels ``(c, part)``."""
    a, b = weight.real, weight.imag
    if transposed:  # (in, out/g, *k): rows are input channels
        blk = torch.stack([torch.stack([a, b], 2), torch.stack([-b, a], 2)], 1)
    else:  # (out, in/g, *k)
        blk = torch.stack([torch.stack([a, -b], 2), torch.stack([b, a], 2)], 1)
    return blk.reshape(2 * weight.shape[0], 2 * weight.shape[1], *weight.shape[2:])


def _block_forward(
    z: Tensor, weight: Tensor, bias: Tensor | None, op: _ConvOp | _LinearOp,
    transposed: bool, channels_last: bool,
) -> Tensor:
    real_bias = torch.view_as_real(bias).reshape(-1) if bias is not None else None
    w = _block_weight(weight, transposed)
    zr = torch.view_as_real(z.resolve_conj())
    if isinstance(op, _LinearOp):
        x = zr.reshape(*z.shape[:-1], 2 * z.shape[-1])
        out = op.forward(x, w, real_bias)
        return torch.view_as_complex(out.reshape(*out.shape[:-1], -1, 2))
    batch, chans = z.shape[:2]
    x = zr.movedim(-1, 2).reshape(batch, 2 * chans, *z.shape[2:])
    if _use_channels_last(x, channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        x = x.contiguous()
    out = op.forward(x, w, real_bias)
    out = out.reshape(batch, -1, 2, *out.shape[2:]).movedim(2, -1)
    if out.stride(-1) != 1:
        out = out.contiguous()
    return torch.view_as_complex(out)


# ----------------------------------------------------------------------------------------------
# functional entry points
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# modules
# ----------------------------------------------------------------------------------------------
class ComplexLinear(nn.Module):
    """Complex fully connected layer ``y = z W^T + b`` (one complex weight, one complex bias).

    ``impl="auto"`` is ``"native"`` (one complex GEMM). Measured with
    ``benchmarks/complex_speed.py`` (forward + backward, medians, ms, native / gauss / block):
    2 threads: 8192x64->64 23 / 55 / 29, 32768x45->90 91 / 195 / 87, 256x2048->1024
    212 / 440 / 396; 1 thread: 12.4 / 20.3 / 12.2, 65 / 102 / 60, 127 / 113 / 193. Native is
    never far from the best, while Gauss is 2x slower on the narrow shapes and block 1.5-2x
    slower on the wide one.

    Args:
        in_features: complex input features.
        out_features: complex output features.
        bias: add a learnable complex bias (initialised to 0).
        impl: ``"auto"``, ``"native"``, ``"gauss"`` or ``"block"``.
        criterion: ``"glorot"`` or ``"he"`` (complex Rayleigh init, :func:`complex_init_`).
        init_mode: ``"independent"`` or ``"unitary"``.
        dtype: ``torch.complex64`` (default) or ``torch.complex128``.
        device: parameter device.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        impl: str = "auto",
        criterion: str = "glorot",
        init_mode: str = "independent",
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not dtype.is_complex:
            raise TypeError(f"dtype must be complex, got {dtype}")
        _resolve_impl(impl, "linear")
        self.in_features = in_features
        self.out_features = out_features
        self.impl = impl
        self.criterion = criterion
        self.init_mode = init_mode
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=dtype,
                                               device=device))
        self.bias = (nn.Parameter(torch.empty(out_features, dtype=dtype, device=device))
                     if bias else None)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the weight (complex Glorot/He) and zero the bias.

        Notebook: notebooks/05_complex_layers.ipynb
        """
        complex_init_(self.weight, self.in_features, self.out_features, self.criterion,
                      self.init_mode, generator)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, z: Tensor) -> Tensor:
        return complex_linear(z, self.weight, self.bias, self.impl)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, impl={self.impl!r}")


class _ComplexConvNd(nn.Module):
    """The shared body of the complex convolutions; a subclass sets ``nd`` and ``transposed``.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd: int = 2
    transposed: bool = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int = 1,
        padding: Sequence[int] | int | str = 0,
        dilation: Sequence[int] | int = 1,
        groups: int = 1,
        bias: bool = True,
        impl: str = "auto",
        criterion: str = "glorot",
        init_mode: str = "independent",
        channels_last: bool = True,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not dtype.is_complex:
            raise TypeError(f"dtype must be complex, got {dtype}")
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        _resolve_impl(impl, "conv_transpose" if self.transposed else "conv")
        nd = self.nd
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = tuple(_ntuple(kernel_size, nd))
        self.stride = tuple(_ntuple(stride, nd))
        self.dilation = tuple(_ntuple(dilation, nd))
        self.padding = self._explicit_padding(padding)
        self.output_padding = (0,) * nd
        self.groups = groups
        self.impl = impl
        self.criterion = criterion
        self.init_mode = init_mode
        self.channels_last = channels_last
        shape = ((in_channels, out_channels // groups) if self.transposed
                 else (out_channels, in_channels // groups))
        self.weight = nn.Parameter(torch.empty(*shape, *self.kernel_size, dtype=dtype,
                                               device=device))
        self.bias = (nn.Parameter(torch.empty(out_channels, dtype=dtype, device=device))
                     if bias else None)
        self.reset_parameters()

    def forward(self, z: Tensor) -> Tensor:
        return self._conv(z, self.output_padding)

    def _explicit_padding(self, padding: Sequence[int] | int | str) -> tuple[int, ...]:
        if padding == "valid":
            return (0,) * self.nd
        if padding == "same":
            if any(s != 1 for s in self.stride):
                raise ValueError("padding='same' requires stride 1")
            total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size, strict=True)]
            if any(t % 2 for t in total):
                raise ValueError("padding='same' needs symmetric padding (odd effective kernel)")
            return tuple(t // 2 for t in total)
        if isinstance(padding, str):
            raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        return tuple(_ntuple(padding, self.nd))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the weight (complex Glorot/He) and zero the bias.

        Notebook: notebooks/05_complex_layers.ipynb
        """
        fan_in, fan_out = complex_fans(self.weight, self.transposed, self.groups)
        complex_init_(self.weight, fan_in, fan_out, self.criterion, self.init_mode, generator)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _conv(self, z: Tensor, output_padding: Sequence[int]) -> Tensor:
        unbatched = z.dim() == self.nd + 1
        if unbatched:
            z = z.unsqueeze(0)
        out = complex_conv(z, self.weight, self.bias, self.stride, self.padding, self.dilation,
                           self.groups, self.transposed, output_padding, self.impl,
                           self.channels_last)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, padding={self.padding}")
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.transposed and any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + f", bias={self.bias is not None}, impl={self.impl!r}"


class ComplexConv1d(_ComplexConvNd):
    """Complex 1-D convolution ``W * z + b`` on ``(B, C_in, L)`` (or unbatched ``(C_in, L)``).

    ``"gauss"`` and ``"block"`` run it as a 2-D convolution of height 1. Arguments as in
    :class:`ComplexConv2d`.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 1


class ComplexConv2d(_ComplexConvNd):
    """Complex 2-D convolution ``W * z + b`` on ``(B, C_in, H, W)`` (or unbatched ``(C_in, H, W)``).

    One complex weight ``(C_out, C_in/groups, kH, kW)`` and one complex bias, complex Glorot init.
    The state dict (``weight``, ``bias``) matches ``nn.Conv2d(..., dtype=torch.cfloat)``.

    ``impl="auto"`` is ``"gauss"``. ``python benchmarks/complex_speed.py`` (forward + backward,
    medians of interleaved repeats, ms; VGG-like 8x64->64x32x32 k3 p1 / DCUNet-like
    4x45->90x128x64 k(5,3) s2; complexPyTorch / native complex64 / gauss / block / one real conv):

    * 2 threads, idle machine (``benchmarks/results/complex_speed.json``): VGG
      44.2 / 34.3 / 28.9 / 33.5 / 8.7; DCUNet 94.3 / 69.1 / 56.6 / 67.8 / 17.8 -- Gauss
      fastest on both shapes, 1.19-1.22x native complex64 and 3.2-3.3x one real NCHW conv.
    * 1 thread: VGG 116 / 95 / 73 / 87 / 23.7; DCUNet 163 / 124 / 99 / 115 / 30.7 -- Gauss
      fastest too.
    * 2 threads while another job kept both cores busy (load average 4-6): VGG
      646 / 585 / 335 / 260 / 97; DCUNet 629 / 603 / 404 / 331 / 128 -- the single-call
      ``"block"`` kernel won, because under contention every extra parallel region costs a
      scheduler slice and Gauss launches about three times as many kernels.

    Gauss is the default because it is fastest whenever the cores are not oversubscribed (the
    notebook setting); pass ``impl="block"`` on a shared, overloaded CPU.

    Args:
        in_channels: complex input channels.
        out_channels: complex output channels.
        kernel_size, stride, padding, dilation, groups: as in ``torch.nn.Conv2d`` (``padding`` may
            be ``"same"`` for stride 1 and an odd effective kernel, or ``"valid"``).
        bias: add a learnable complex bias (initialised to 0).
        impl: ``"auto"``, ``"native"``, ``"gauss"`` or ``"block"``.
        criterion: ``"glorot"`` or ``"he"``.
        init_mode: ``"independent"`` or ``"unitary"``.
        channels_last: for ``"gauss"``/``"block"`` in single precision, compute and return
            channels-last tensors (float64 always runs in the default layout).
        dtype: ``torch.complex64`` (default) or ``torch.complex128``.
        device: parameter device.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 2


class ComplexConvTranspose2d(_ComplexConvNd):
    """Complex 2-D transposed convolution (the adjoint of a complex convolution) plus one bias.

    Weight layout ``(C_in, C_out/groups, kH, kW)`` as in ``torch.nn.ConvTranspose2d``. ``forward``
    accepts ``output_size`` to pick the output padding, like the real module.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
            dilation: as in ``torch.nn.ConvTranspose2d``.
        impl: ``"auto"``, ``"native"``, ``"gauss"`` or ``"block"``.
        criterion: ``"glorot"`` or ``"he"``.
        init_mode: ``"independent"`` or ``"unitary"``.
        channels_last: for ``"gauss"``/``"block"`` in single precision, compute and return
            channels-last tensors (float64 always runs in the default layout).
        dtype: ``torch.complex64`` (default) or ``torch.complex128``.
        device: parameter device.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    transposed = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int = 1,
        padding: Sequence[int] | int = 0,
        output_padding: Sequence[int] | int = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Sequence[int] | int = 1,
        impl: str = "auto",
        criterion: str = "glorot",
        init_mode: str = "independent",
        channels_last: bool = True,
        dtype: torch.dtype = torch.complex64,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(padding, str):
            raise ValueError("ComplexConvTranspose2d needs explicit integer padding")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, impl, criterion, init_mode, channels_last, dtype, device)
        self.output_padding = tuple(_ntuple(output_padding, self.nd))

    def forward(self, z: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        output_padding = self.output_padding
        if output_size is not None:
            size = list(output_size)[-2:]
            output_padding = []
            for d in range(2):
                n_in = z.shape[-2 + d]
                smallest = ((n_in - 1) * self.stride[d] - 2 * self.padding[d]
                            + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
                extra = size[d] - smallest
                if not 0 <= extra < max(self.stride[d], self.dilation[d]):
                    raise ValueError(
                        f"output_size {tuple(size)} unreachable from input {tuple(z.shape[-2:])}"
                    )
                output_padding.append(extra)
        return self._conv(z, tuple(output_padding))


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
