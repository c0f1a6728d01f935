"""Complex convolutions: :class:`ComplexConv1d`, :class:`ComplexConv2d` and the transposed
:class:`ComplexConvTranspose2d`, with one complex weight and one complex bias each.

Weights are initialised with the complex Glorot/He rule of :mod:`utils.complex.init`; the
convolution itself is :func:`utils.complex.functional.complex_conv` (``impl=`` picks native,
Gauss or block).

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from utils.complex.functional import _ntuple, _resolve_impl, complex_conv
from utils.complex.init import complex_fans, complex_init_

__all__ = ["ComplexConv1d", "ComplexConv2d", "ComplexConvTranspose2d"]


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
