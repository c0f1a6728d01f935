"""Complex activation functions: CReLU, CLeakyReLU, modReLU, zReLU and cardioid.

PyTorch has no complex ReLU-type activations (``relu`` rejects complex tensors). Definitions, with
``z = x + iy``:

* CReLU (split): ``ReLU(x) + i ReLU(y)`` (Trabelsi et al. 2018). Not phase-equivariant.
* modReLU (Arjovsky et al. 2016): ``ReLU(|z| + b) z/|z|`` with a learnable real ``b`` per feature;
  keeps the phase, shrinks the modulus by ``-b`` (``b < 0`` gives a dead zone ``|z| < -b``).
  cplxmodule writes the same family with ``τ = -b`` (cplxmodule#22): mind the sign.
* zReLU (Guberman 2016): ``z`` if ``arg z ∈ [0, π/2]`` (i.e. ``x >= 0`` and ``y >= 0``), else 0.
* Cardioid (Virtue et al. 2017): ``(1 + cos(arg z))/2 · z = (1 + x/|z|)/2 · z``; real-valued inputs
  go through ReLU.

All are finite at ``z = 0`` with finite gradients (no ``atan2``; divisions by ``|z|`` are guarded).

Notebook: notebooks/05_complex_layers.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CLeakyReLU", "CReLU", "Cardioid", "ModReLU", "ZReLU"]


def _check(z: Tensor) -> None:
    if not z.is_complex():
        raise TypeError(f"expected a complex tensor, got dtype {z.dtype}")


class CReLU(nn.Module):
    """Split ReLU: ``CReLU(z) = ReLU(Re z) + i ReLU(Im z)``.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def forward(self, z: Tensor) -> Tensor:
        _check(z)
        return torch.view_as_complex(F.relu(torch.view_as_real(z.resolve_conj())))


class CLeakyReLU(nn.Module):
    """Split leaky ReLU on Re and Im (the DCUNet encoder/decoder activation).

    Args:
        negative_slope: slope for negative parts.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, z: Tensor) -> Tensor:
        _check(z)
        real = torch.view_as_real(z.resolve_conj())
        return torch.view_as_complex(F.leaky_relu(real, self.negative_slope))

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ModReLU(nn.Module):
    """modReLU: ``ReLU(|z| + b) · z/|z|`` with a learnable real bias ``b`` per feature.

    Sign convention (Arjovsky et al. 2016): the bias is **added** to the modulus, so a negative
    ``b`` switches off ``|z| <= -b`` and shrinks larger moduli by ``-b``; the phase is kept, hence
    ``modReLU(e^{iθ} z) = e^{iθ} modReLU(z)``. ``b = 0`` is the identity. cplxmodule uses the
    opposite sign (``τ = -b``).

    ``|z|`` is clamped below by ``eps`` in the division, so the output at ``z = 0`` is 0 and the
    gradient is finite (for ``b > 0`` the function is discontinuous at 0 and the gradient there is
    ``b/eps``-sized; keep ``b <= 0`` where that matters).

    Args:
        num_features: number of features (size of ``dim``); use 1 for one shared bias.
        bias_init: initial value of every ``b``.
        dim: feature dimension of the input (1 for ``(B, F)`` and ``(B, C, H, W)``).
        eps: lower clamp of ``|z|`` in the division.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def __init__(
        self, num_features: int, bias_init: float = 0.0, dim: int = 1, eps: float = 1e-6
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.dim = dim
        self.eps = eps
        self.bias = nn.Parameter(torch.full((num_features,), float(bias_init)))

    def forward(self, z: Tensor) -> Tensor:
        _check(z)
        mod = z.abs()
        shape = [1] * z.dim()
        if self.num_features != 1:
            shape[self.dim] = self.num_features
        b = self.bias.to(mod.dtype).reshape(shape)
        scale = F.relu(mod + b) / mod.clamp_min(self.eps)
        return z * scale

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, dim={self.dim}"


class ZReLU(nn.Module):
    """zReLU: keeps ``z`` when ``Re z >= 0`` and ``Im z >= 0`` (``arg z ∈ [0, π/2]``), else 0.

    Implemented with a mask (no ``atan2``), so the gradient is the mask itself.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def forward(self, z: Tensor) -> Tensor:
        _check(z)
        mask = (z.real >= 0) & (z.imag >= 0)
        return z * mask


class Cardioid(nn.Module):
    """Cardioid: ``(1 + cos(arg z))/2 · z``, computed as ``(1 + Re z/|z|)/2 · z``.

    Scales the modulus by a phase-dependent factor in ``[0, 1]`` (1 on the positive real axis, 0 on
    the negative one); on real inputs it is ReLU. At ``z = 0`` the output is 0 and the gradient is
    finite (``|z|`` is clamped below by ``eps`` in the division).

    Args:
        eps: lower clamp of ``|z|`` in the division.

    Notebook: notebooks/05_complex_layers.ipynb
    """

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, z: Tensor) -> Tensor:
        _check(z)
        cos = z.real / z.abs().clamp_min(self.eps)
        return z * (0.5 * (1.0 + cos))
