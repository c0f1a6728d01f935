"""The real kernels behind the ``"gauss"`` and ``"block"`` implementations of a complex product.

A complex (transposed) convolution or affine map ``W * z + b`` with ``W = A + iB``, ``z = x + iy``
can be computed from real kernels in two ways (:mod:`utils.complex.functional` picks one):

* **Gauss** (:class:`_GaussFunction`): three real products instead of four::

      k1 = A*(x + y),  k2 = (B - A)*x + b_i,  k3 = (A + B)*y - b_r
      Re = k1 - k3,    Im = k1 + k2

  as a custom autograd function: the weight sums are formed once per call, the bias is folded
  into the real products, the backward pass is three real ``convolution_backward`` calls (the
  same trick applied to the adjoint), and the real/imaginary planes are split and re-interleaved
  with one memory pass each. Convolutions run in channels-last memory format, which oneDNN
  executes faster on CPU.
* **Block** (:func:`_block_forward`): one real product on the stacked ``[Re, Im]`` channels with
  the 2x2 block weight ``[[A, -B], [B, A]]`` (4 real multiplications per complex one, but a
  single kernel call). In channels-last layout the complex input *is* such a real tensor, so no
  copies are made.

Here too are the real operators both use (:class:`_ConvOp`, :class:`_LinearOp`) and the memory
helpers that split a complex tensor into real planes in a chosen memory order.

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

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
