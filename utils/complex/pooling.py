"""Complex pooling: max pooling by modulus (returns input elements) and average pooling.

Max pooling picks, in every window, the element of largest modulus ``|z|`` and returns that
complex element itself (Zhang et al. 2017; cplxmodule's ``max_poolnd``), so every output is one of
the inputs. The 2022 seed pooled Re and Im separately, which combines the real part of one element
with the imaginary part of another (inputs ``{10, 1j, -5-5j, -5-5j}`` gave ``10+1j``). Average
pooling is linear, so pooling Re and Im separately is exact; here both parts are pooled in one call
on a real view of the complex tensor.

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ComplexAdaptiveAvgPool1d",
    "ComplexAdaptiveAvgPool2d",
    "ComplexAdaptiveMaxPool2d",
    "ComplexAvgPool1d",
    "ComplexAvgPool2d",
    "ComplexMaxPool1d",
    "ComplexMaxPool2d",
]

_IntOrTuple = int | Sequence[int]


def _check(z: Tensor) -> None:
    if not z.is_complex():
        raise TypeError(f"expected a complex tensor, got dtype {z.dtype}")


def _batched(z: Tensor, nd: int, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply ``fn`` to a batched ``(B, C, *spatial)`` tensor, accepting unbatched input too."""
    _check(z)
    if z.dim() == nd + 1:
        return fn(z.unsqueeze(0)).squeeze(0)
    if z.dim() != nd + 2:
        raise ValueError(f"expected a {nd + 1}-D or {nd + 2}-D input, got shape {tuple(z.shape)}")
    return fn(z)


def _is_channels_last(z: Tensor) -> bool:
    return z.dim() == 4 and not z.is_contiguous() and z.is_contiguous(
        memory_format=torch.channels_last)


def _gather(z: Tensor, index: Tensor) -> Tensor:
    """``out[b, c, *o] = z[b, c].flatten()[index[b, c, *o]]`` (differentiable, no value rebuild)."""
    batch, chans = z.shape[:2]
    if _is_channels_last(z):  # gather along the flattened spatial axis of a (B, HW, C) view
        flat = z.permute(0, 2, 3, 1).reshape(batch, -1, chans)
        idx = index.permute(0, 2, 3, 1).reshape(batch, -1, chans)
        out = flat.gather(1, idx)
        return out.reshape(batch, *index.shape[2:], chans).permute(0, 3, 1, 2)
    flat = z.reshape(batch, chans, -1)
    return flat.gather(2, index.reshape(batch, chans, -1)).reshape(index.shape)


def _pool_real_view(
    z: Tensor, nd: int, pool: Callable[..., Tensor], kwargs: dict, trailing_pool: Callable,
    trailing_kwargs: dict,
) -> Tensor:
    """Apply a linear real pooling to Re and Im of ``z`` at once.

    Channels-last 2-D input: the complex tensor is a real ``(B, 2C, H, W)`` tensor with
    interleaved ``(c, part)`` channels (a view), pooled with ``pool``. Otherwise the real view
    ``(B, C, *spatial, 2)`` is pooled with the ``(nd + 1)``-D ``trailing_pool`` whose last kernel
    extent is 1.
    """
    zr = torch.view_as_real(z.resolve_conj())
    batch, chans = z.shape[:2]
    if _is_channels_last(z):
        x = zr.movedim(-1, 2).reshape(batch, 2 * chans, *z.shape[2:])
        out = pool(x, **kwargs)
        out = out.reshape(batch, chans, 2, *out.shape[2:]).movedim(2, -1)
    else:
        out = trailing_pool(zr, **trailing_kwargs)
    if out.stride(-1) != 1:
        out = out.contiguous()
    return torch.view_as_complex(out)


def _trailing(value: _IntOrTuple | None, nd: int, last: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    vals = (value,) * nd if isinstance(value, int) else tuple(value)
    return (*vals, last)


class _ComplexMaxPoolNd(nn.Module):
    nd = 2

    def __init__(
        self,
        kernel_size: _IntOrTuple,
        stride: _IntOrTuple | None = None,
        padding: _IntOrTuple = 0,
        dilation: _IntOrTuple = 1,
        ceil_mode: bool = False,
        return_indices: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.return_indices = return_indices

    def _pool(self, z: Tensor) -> tuple[Tensor, Tensor]:
        fn = F.max_pool1d if self.nd == 1 else F.max_pool2d
        with torch.no_grad():
            _, index = fn(z.abs(), self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=True)
        return _gather(z, index), index

    def forward(self, z: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        _check(z)
        unbatched = z.dim() == self.nd + 1
        out, index = self._pool(z.unsqueeze(0) if unbatched else z)
        if unbatched:
            out, index = out.squeeze(0), index.squeeze(0)
        return (out, index) if self.return_indices else out

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class ComplexMaxPool2d(_ComplexMaxPoolNd):
    """2-D max pooling by modulus: each output is the window element of largest modulus ``|z|``.

    The selection is made on ``|z|`` (no gradient), then the complex value is gathered, so outputs
    are input elements (not rebuilt from magnitude and ``atan2``) and the gradient flows only to the
    selected elements, with no NaN at ``z = 0``. Ties go to the first maximum, as in
    ``torch.nn.MaxPool2d``. Arguments as in ``torch.nn.MaxPool2d``; with ``return_indices=True``
    the flat per-plane indices of the selected elements are returned too.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 2


class ComplexMaxPool1d(_ComplexMaxPoolNd):
    """1-D max pooling by modulus on ``(B, C, L)``; see :class:`ComplexMaxPool2d`.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 1


class ComplexAdaptiveMaxPool2d(nn.Module):
    """Adaptive 2-D max pooling by modulus to a fixed ``output_size`` (outputs are input elements).

    Args:
        output_size: target ``(H, W)`` (or one int for a square; ``None`` keeps that dimension).
        return_indices: also return the flat per-plane indices.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def __init__(self, output_size: _IntOrTuple | None, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, z: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        _check(z)
        unbatched = z.dim() == 3
        zb = z.unsqueeze(0) if unbatched else z
        with torch.no_grad():
            _, index = F.adaptive_max_pool2d(zb.abs(), self.output_size, return_indices=True)
        out = _gather(zb, index)
        if unbatched:
            out, index = out.squeeze(0), index.squeeze(0)
        return (out, index) if self.return_indices else out

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _ComplexLinearPoolNd(nn.Module):
    """A linear pooling of complex tensors: Re and Im pooled together by one real call.

    A subclass says which real pooling to run (:meth:`_plan`); this class runs it.
    """

    nd = 2

    def _plan(self) -> tuple[Callable[..., Tensor], dict, Callable[..., Tensor], dict]:
        """``(pool, kwargs, trailing_pool, trailing_kwargs)`` for :func:`_pool_real_view`."""
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        pool, kwargs, trailing, trailing_kwargs = self._plan()
        return _batched(z, self.nd, lambda x: _pool_real_view(x, self.nd, pool, kwargs, trailing,
                                                              trailing_kwargs))


class ComplexAvgPool2d(_ComplexLinearPoolNd):
    """2-D average pooling of complex tensors (Re and Im pooled together in one real call).

    Arguments as in ``torch.nn.AvgPool2d``. Exactly the complex mean of each window (pooling is
    linear), hence phase-equivariant.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 2

    def __init__(
        self,
        kernel_size: _IntOrTuple,
        stride: _IntOrTuple | None = None,
        padding: _IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        if self.nd == 1 and divisor_override is not None:
            raise ValueError("divisor_override exists for 2-D pooling only (as in torch)")
        if self.nd == 1 and divisor_override is not None:
            raise ValueError("divisor_override exists for 2-D pooling only (as in torch)")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def _plan(self) -> tuple[Callable[..., Tensor], dict, Callable[..., Tensor], dict]:
        nd = self.nd
        common = dict(ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad)
        if nd == 2:
            common["divisor_override"] = self.divisor_override
        kwargs = dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                      **common)
        trailing_kwargs = dict(kernel_size=_trailing(self.kernel_size, nd, 1),
                               stride=_trailing(self.stride, nd, 1),
                               padding=_trailing(self.padding, nd, 0), ceil_mode=self.ceil_mode,
                               count_include_pad=self.count_include_pad,
                               divisor_override=self.divisor_override)
        pool = F.avg_pool1d if nd == 1 else F.avg_pool2d
        trailing = F.avg_pool2d if nd == 1 else F.avg_pool3d
        return pool, kwargs, trailing, trailing_kwargs

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ComplexAvgPool1d(ComplexAvgPool2d):
    """1-D average pooling of complex ``(B, C, L)`` tensors; see :class:`ComplexAvgPool2d`.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 1


class ComplexAdaptiveAvgPool2d(_ComplexLinearPoolNd):
    """Adaptive 2-D average pooling of complex tensors to ``output_size``.

    (PyTorch's ``adaptive_avg_pool2d`` rejects ``complex128``; this works for both complex dtypes.)

    Args:
        output_size: target ``(H, W)``, one int for a square, ``None`` to keep a dimension.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 2

    def __init__(self, output_size: _IntOrTuple | None) -> None:
        super().__init__()
        self.output_size = output_size

    def _plan(self) -> tuple[Callable[..., Tensor], dict, Callable[..., Tensor], dict]:
        nd = self.nd
        size = self.output_size
        if isinstance(size, int) or size is None:
            size = (size,) * nd
        size = tuple(size)
        pool = F.adaptive_avg_pool1d if nd == 1 else F.adaptive_avg_pool2d
        trailing = F.adaptive_avg_pool2d if nd == 1 else F.adaptive_avg_pool3d
        return pool, {"output_size": size}, trailing, {"output_size": (*size, 2)}

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class ComplexAdaptiveAvgPool1d(ComplexAdaptiveAvgPool2d):
    """Adaptive 1-D average pooling of complex ``(B, C, L)`` tensors to ``output_size``.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    nd = 1
