"""Complex batch normalisation on native complex tensors.

Two families:

* :class:`ComplexBatchNorm1d` / :class:`ComplexBatchNorm2d` / :class:`ComplexBatchNorm3d` --
  the *whitening* batch norm of Trabelsi et al. (2018, "Deep Complex Networks", Sec. 3.5).
  Each feature z = x + iy is treated as a 2-vector (x, y). The batch mean is removed and the
  vector is multiplied by the inverse square root of its 2x2 covariance
  ``V = [[Vrr, Vri], [Vri, Vii]]``, so that the output has covariance I: real and imaginary
  parts become uncorrelated with equal variance 1/2 + 1/2. A learnable symmetric 2x2 matrix
  ``Γ = [[Γrr, Γri], [Γri, Γii]]`` (initialised to I/√2, so E|y|² = 1) and a complex shift β
  follow.
* :class:`NaiveComplexBatchNorm1d` / :class:`NaiveComplexBatchNorm2d` -- two independent real
  batch norms, one on the real and one on the imaginary part. It standardises each part but
  leaves their correlation in place; it is kept for comparison.

The 2022 seed repository (``CBatchnorm``) applied its ``re_batch`` to *both* parts: ``im_batch``
never trained, and the running statistics mixed real and imaginary data and were updated twice per
step. Both classes here fix that.

Conventions follow :class:`torch.nn.BatchNorm2d`: normalisation uses the biased batch covariance,
the running covariance is updated with the unbiased one (factor n/(n-1)),
``running = (1 - momentum) * running + momentum * batch`` (``momentum=None`` gives a cumulative
average), and ``eps`` is a ridge added to the diagonal of V before inversion.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "ComplexBatchNorm1d",
    "ComplexBatchNorm2d",
    "ComplexBatchNorm3d",
    "NaiveComplexBatchNorm1d",
    "NaiveComplexBatchNorm2d",
    "inverse_sqrt_2x2",
    "whiten_2x2",
]


def _real_dtype(dtype: torch.dtype | None) -> torch.dtype:
    """Real dtype matching a complex one (complex64 by default)."""
    if dtype is None:
        dtype = torch.complex64
    if not dtype.is_complex:
        raise TypeError(f"dtype must be a complex dtype such as torch.complex64, got {dtype}")
    return dtype.to_real()


def inverse_sqrt_2x2(
    vrr: torch.Tensor, vri: torch.Tensor, vii: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse square root of symmetric positive definite 2x2 matrices, in closed form.

    For ``V = [[vrr, vri], [vri, vii]]`` with ``s = sqrt(det V)`` and
    ``t = sqrt(vrr + vii + 2 s)``, the principal square root is ``(V + s I) / t`` and its inverse is
    ``[[vii + s, -vri], [-vri, vrr + s]] / (s t)``. Works element-wise on tensors of any shape.
    The determinant is clamped at the smallest positive normal number of the dtype, so the
    square root never sees a negative value produced by rounding (callers add a ridge ``eps`` to
    the diagonal, which keeps det V >= eps² in exact arithmetic).

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        vrr: Variance of the real parts.
        vri: Covariance of real and imaginary parts.
        vii: Variance of the imaginary parts.

    Returns:
        The entries ``(wrr, wri, wii)`` of the symmetric matrix ``V^{-1/2}``.
    """
    det = (vrr * vii - vri * vri).clamp(min=torch.finfo(vrr.dtype).tiny)
    s = det.sqrt()
    t = (vrr + vii + 2.0 * s).sqrt()
    inv_st = 1.0 / (s * t)
    return (vii + s) * inv_st, -vri * inv_st, (vrr + s) * inv_st


def whiten_2x2(
    z: torch.Tensor, wrr: torch.Tensor, wri: torch.Tensor, wii: torch.Tensor
) -> torch.Tensor:
    """Apply the symmetric real 2x2 matrix ``[[wrr, wri], [wri, wii]]`` to (Re z, Im z).

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        z: Complex tensor.
        wrr: Matrix entry, broadcastable to ``z``.
        wri: Off-diagonal entry, broadcastable to ``z``.
        wii: Matrix entry, broadcastable to ``z``.

    Returns:
        Complex tensor ``(wrr x + wri y) + i (wri x + wii y)`` for ``z = x + iy``.
    """
    x, y = z.real, z.imag
    return torch.complex(wrr * x + wri * y, wri * x + wii * y)


class _ComplexBatchNorm(nn.Module):
    """Shared implementation of the whitening complex batch norm (any number of spatial dims)."""

    _expected_dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        real = _real_dtype(dtype)
        cplx = dtype if dtype is not None else torch.complex64
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            # Rows: Γrr, Γri, Γii (Γ is symmetric, as in Trabelsi et al.).
            self.weight = nn.Parameter(torch.empty(3, num_features, device=device, dtype=real))
            self.bias = nn.Parameter(torch.empty(num_features, device=device, dtype=cplx))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer(
                "running_mean", torch.zeros(num_features, device=device, dtype=cplx)
            )
            # Rows: Vrr, Vri, Vii (without the eps ridge).
            self.register_buffer(
                "running_covar", torch.zeros(3, num_features, device=device, dtype=real)
            )
            self.register_buffer(
                "num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device)
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_covar", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean 0, running covariance I, counter 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_covar.zero_()
            self.running_covar[0].fill_(1.0)
            self.running_covar[2].fill_(1.0)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Γ = I/√2 (so E|y|² = 1 for whitened input), β = 0, and fresh running statistics."""
        self.reset_running_stats()
        if self.affine:
            with torch.no_grad():
                self.weight.zero_()
                self.weight[0].fill_(1.0 / math.sqrt(2.0))
                self.weight[2].fill_(1.0 / math.sqrt(2.0))
                self.bias.zero_()

    def _check_input(self, z: torch.Tensor) -> None:
        if not z.is_complex():
            raise TypeError(
                f"{type(self).__name__} expects a complex tensor (e.g. torch.complex64), "
                f"got {z.dtype}"
            )
        if z.dim() not in self._expected_dims:
            raise ValueError(
                f"{type(self).__name__} expects a {' or '.join(map(str, self._expected_dims))}-D "
                f"input [B, C, ...], got shape {tuple(z.shape)}"
            )
        if z.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__} was built for {self.num_features} features, "
                f"input has {z.shape[1]} channels"
            )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Whiten each feature of ``z`` (complex, shape [B, C, ...]) and apply Γ and β."""
        self._check_input(z)
        shape = (1, self.num_features) + (1,) * (z.dim() - 2)
        dims = [0] + list(range(2, z.dim()))
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            n = z.numel() // self.num_features
            if n < 2:
                raise ValueError(
                    f"{type(self).__name__}: expected more than 1 value per feature in "
                    f"training mode, got input shape {tuple(z.shape)}"
                )
            mean = z.mean(dim=dims)
            zc = z - mean.view(shape)
            xr, xi = zc.real, zc.imag
            vrr = (xr * xr).mean(dim=dims)
            vri = (xr * xi).mean(dim=dims)
            vii = (xi * xi).mean(dim=dims)
            if self.training and self.track_running_stats:
                self._update_running(mean, vrr, vri, vii, n)
        else:
            mean = self.running_mean
            zc = z - mean.view(shape)
            vrr, vri, vii = self.running_covar
        wrr, wri, wii = inverse_sqrt_2x2(vrr + self.eps, vri, vii + self.eps)
        if self.affine:
            # Fold Γ·W into one 2x2 matrix per feature (W and Γ symmetric; the product is not).
            grr, gri, gii = self.weight
            arr = grr * wrr + gri * wri
            ari = grr * wri + gri * wii
            air = gri * wrr + gii * wri
            aii = gri * wri + gii * wii
            x, y = zc.real, zc.imag
            out = torch.complex(
                arr.view(shape) * x + ari.view(shape) * y,
                air.view(shape) * x + aii.view(shape) * y,
            )
            return out + self.bias.view(shape)
        return whiten_2x2(zc, wrr.view(shape), wri.view(shape), wii.view(shape))

    @torch.no_grad()
    def _update_running(
        self,
        mean: torch.Tensor,
        vrr: torch.Tensor,
        vri: torch.Tensor,
        vii: torch.Tensor,
        n: int,
    ) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = n / (n - 1)
        batch_covar = torch.stack([vrr, vri, vii]).detach() * unbiased
        self.running_mean.lerp_(mean.detach(), factor)
        self.running_covar.lerp_(batch_covar, factor)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class ComplexBatchNorm1d(_ComplexBatchNorm):
    """Whitening complex batch norm for [B, C] or [B, C, L] complex inputs (Trabelsi et al.).

    Per feature: centre, multiply (Re, Im) by the inverse square root of the 2x2 covariance
    (closed form, ``eps`` ridge, determinant clamped), then apply ``Γ`` (symmetric 2x2, learnable,
    initialised to I/√2) and add the complex ``β``. Running mean and running 2x2 covariance are
    used in eval mode.

    Parameters: ``weight`` (real, shape [3, C], rows Γrr, Γri, Γii) and ``bias`` (complex, [C]).
    Buffers: ``running_mean`` (complex, [C]), ``running_covar`` (real, [3, C], rows Vrr, Vri,
    Vii), ``num_batches_tracked``.

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        num_features: Number of features C.
        eps: Ridge added to the diagonal of the covariance.
        momentum: Running-statistics update factor; ``None`` for a cumulative average.
        affine: Learn Γ and β.
        track_running_stats: Keep running statistics (else batch statistics are always used).
        device: Device of parameters and buffers.
        dtype: Complex dtype (``torch.complex64`` by default; real buffers use the matching real
            dtype).
    """

    _expected_dims = (2, 3)


class ComplexBatchNorm2d(_ComplexBatchNorm):
    """Whitening complex batch norm for [B, C, H, W] complex inputs (Trabelsi et al.).

    Same maths and arguments as :class:`ComplexBatchNorm1d`; statistics are taken over batch and
    both spatial dimensions.

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        num_features: Number of channels C.
        eps: Ridge added to the diagonal of the covariance.
        momentum: Running-statistics update factor; ``None`` for a cumulative average.
        affine: Learn Γ and β.
        track_running_stats: Keep running statistics (else batch statistics are always used).
        device: Device of parameters and buffers.
        dtype: Complex dtype (``torch.complex64`` by default).
    """

    _expected_dims = (4,)


class ComplexBatchNorm3d(_ComplexBatchNorm):
    """Whitening complex batch norm for [B, C, D, H, W] complex inputs (Trabelsi et al.).

    Same maths and arguments as :class:`ComplexBatchNorm1d`.

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        num_features: Number of channels C.
        eps: Ridge added to the diagonal of the covariance.
        momentum: Running-statistics update factor; ``None`` for a cumulative average.
        affine: Learn Γ and β.
        track_running_stats: Keep running statistics (else batch statistics are always used).
        device: Device of parameters and buffers.
        dtype: Complex dtype (``torch.complex64`` by default).
    """

    _expected_dims = (5,)


class _NaiveComplexBatchNorm(nn.Module):
    """Two independent real batch norms: ``bn_re`` on Re z and ``bn_im`` on Im z."""

    _bn_class: type[nn.modules.batchnorm._BatchNorm] = nn.BatchNorm1d

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        real = _real_dtype(dtype)
        self.num_features = num_features
        kwargs = dict(
            eps=eps,
            momentum=momentum,
            affine=affine,
            track_running_stats=track_running_stats,
            device=device,
            dtype=real,
        )
        self.bn_re = self._bn_class(num_features, **kwargs)
        self.bn_im = self._bn_class(num_features, **kwargs)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Normalise Re z with ``bn_re`` and Im z with ``bn_im``."""
        if not z.is_complex():
            raise TypeError(f"{type(self).__name__} expects a complex tensor, got {z.dtype}")
        return torch.complex(self.bn_re(z.real), self.bn_im(z.imag))


class NaiveComplexBatchNorm1d(_NaiveComplexBatchNorm):
    """Naive complex batch norm for [B, C] or [B, C, L]: independent real BNs on Re and Im.

    Each part is standardised on its own (``bn_re`` for the real part, ``bn_im`` for the
    imaginary part -- the seed used ``re_batch`` for both). The correlation between real and
    imaginary parts is *not* removed; use :class:`ComplexBatchNorm1d` for whitening.

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        num_features: Number of features C.
        eps: Added to the variance, as in :class:`torch.nn.BatchNorm1d`.
        momentum: Running-statistics update factor; ``None`` for a cumulative average.
        affine: Learn a scale and shift per part.
        track_running_stats: Keep running statistics.
        device: Device of parameters and buffers.
        dtype: Complex dtype of the inputs (``torch.complex64`` by default).
    """

    _bn_class = nn.BatchNorm1d


class NaiveComplexBatchNorm2d(_NaiveComplexBatchNorm):
    """Naive complex batch norm for [B, C, H, W]: independent real BNs on Re and Im.

    See :class:`NaiveComplexBatchNorm1d`; kept as the ablation of :class:`ComplexBatchNorm2d`.

    Notebook: notebooks/05_complex_layers.ipynb

    Args:
        num_features: Number of channels C.
        eps: Added to the variance, as in :class:`torch.nn.BatchNorm2d`.
        momentum: Running-statistics update factor; ``None`` for a cumulative average.
        affine: Learn a scale and shift per part.
        track_running_stats: Keep running statistics.
        device: Device of parameters and buffers.
        dtype: Complex dtype of the inputs (``torch.complex64`` by default).
    """

    _bn_class = nn.BatchNorm2d
