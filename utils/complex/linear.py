"""The complex fully connected layer, :class:`ComplexLinear`.

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from utils.complex.functional import _resolve_impl, complex_linear
from utils.complex.init import complex_init_

__all__ = ["ComplexLinear"]


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
