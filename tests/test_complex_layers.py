"""Tests of utils.complex layout, init, layers, pooling and activations against reference math.

Reference computations run in complex128 / float64 (tolerance 1e-10). Tests named
``test_seed_defect_*`` are regressions for defects of the 2022 seed repository
``mehdihosseinimoghadam/Complex-Neural-Networks`` (defects 19 and 26-28 of ``docs/seed.md``).
"""

from __future__ import annotations

import cmath
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

from utils.complex.activations import Cardioid, CLeakyReLU, CReLU, ModReLU, ZReLU
from utils.complex.conv import ComplexConv1d, ComplexConv2d, ComplexConvTranspose2d
from utils.complex.dropout import ComplexDropout, ComplexDropout2d
from utils.complex.functional import IMPLS, complex_conv, complex_linear
from utils.complex.heads import ComplexToReal
from utils.complex.init import complex_fans, complex_init_
from utils.complex.layout import to_complex, to_trailing
from utils.complex.linear import ComplexLinear
from utils.complex.pooling import (
    ComplexAdaptiveAvgPool1d,
    ComplexAdaptiveAvgPool2d,
    ComplexAdaptiveMaxPool2d,
    ComplexAvgPool1d,
    ComplexAvgPool2d,
    ComplexMaxPool1d,
    ComplexMaxPool2d,
)

CD = torch.complex128
TOL = 1e-10



def crandn(*shape: int, seed: int = 0, requires_grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(*shape, dtype=CD, generator=g)
    return z.requires_grad_(requires_grad)


def with_random_bias(layer: nn.Module, seed: int = 1) -> nn.Module:
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.copy_(crandn(*layer.bias.shape, seed=seed))
    return layer


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


# ------------------------------------------------------------------------------------------------
# reference math
# ------------------------------------------------------------------------------------------------
def ref_conv(z, w, b, transposed=False, nd=2, **kw):
    """Complex convolution from four float64 real convolutions: (A*x - B*y) + i(B*x + A*y) + b."""
    if transposed:
        fn = F.conv_transpose1d if nd == 1 else F.conv_transpose2d
    else:
        fn = F.conv1d if nd == 1 else F.conv2d
    a, bw, x, y = w.real, w.imag, z.real, z.imag
    re = fn(x, a, **kw) - fn(y, bw, **kw)
    im = fn(x, bw, **kw) + fn(y, a, **kw)
    out = torch.complex(re, im)
    if b is not None:
        out = out + b.reshape(-1, *([1] * nd))
    return out


def loop_conv2d(z, w, b, stride, padding, dilation):
    """Explicit sums: out[n,o,i,j] = sum_{c,u,v} w[o,c,u,v] z[n,c,i*s+u*d-p, j*s+v*d-p] + b[o]."""
    n_b, n_c, h, wd = z.shape
    n_o, _, kh, kw = w.shape
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = torch.zeros(n_b, n_o, oh, ow, dtype=CD)
    for n, o, i, j in itertools.product(range(n_b), range(n_o), range(oh), range(ow)):
        acc = complex(b[o])
        for c, u, v in itertools.product(range(n_c), range(kh), range(kw)):
            r, s = i * stride + u * dilation - padding, j * stride + v * dilation - padding
            if 0 <= r < h and 0 <= s < wd:
                acc += complex(w[o, c, u, v]) * complex(z[n, c, r, s])
        out[n, o, i, j] = acc
    return out


def loop_conv_transpose2d(z, w, b, stride, padding):
    """Explicit scatter: out[n,o,i*s+u-p, j*s+v-p] += w[c,o,u,v] z[n,c,i,j], then + b[o]."""
    n_b, n_c, h, wd = z.shape
    _, n_o, kh, kw = w.shape
    oh, ow = (h - 1) * stride - 2 * padding + kh, (wd - 1) * stride - 2 * padding + kw
    out = torch.zeros(n_b, n_o, oh, ow, dtype=CD) + b.reshape(1, -1, 1, 1)
    for n, c, i, j, o, u, v in itertools.product(range(n_b), range(n_c), range(h), range(wd),
                                                 range(n_o), range(kh), range(kw)):
        r, s = i * stride + u - padding, j * stride + v - padding
        if 0 <= r < oh and 0 <= s < ow:
            out[n, o, r, s] += w[c, o, u, v] * z[n, c, i, j]
    return out


# ------------------------------------------------------------------------------------------------
# layout
# ------------------------------------------------------------------------------------------------
def test_layout_round_trip_and_views():
    x = torch.randn(3, 4, 2, dtype=torch.float64)
    z = to_complex(x)
    assert z.dtype == CD and z.shape == (3, 4)
    assert torch.equal(z.real, x[..., 0]) and torch.equal(z.imag, x[..., 1])
    assert torch.equal(to_trailing(z), x)
    assert z.data_ptr() == x.data_ptr()  # zero-copy view
    assert to_complex(torch.randn(5, 2)).dtype == torch.complex64
    back = crandn(2, 3)
    assert torch.equal(to_complex(to_trailing(back)), back)
    # conjugate views are materialised: values are those of the conjugate
    assert torch.equal(to_trailing(back.conj())[..., 1], -back.imag)


def test_layout_non_contiguous_and_errors():
    x = torch.randn(2, 5, 4, dtype=torch.float64)[..., ::2]  # trailing stride 2
    z = to_complex(x)
    assert torch.equal(z.real, x[..., 0]) and torch.equal(z.imag, x[..., 1])
    seed_like = torch.stack([torch.randn(3, 3), torch.randn(3, 3)], -1).permute(1, 0, 2)
    assert torch.equal(to_complex(seed_like).imag, seed_like[..., 1])
    with pytest.raises(ValueError):
        to_complex(torch.randn(3, 3))
    with pytest.raises(TypeError):
        to_complex(crandn(3, 2))
    with pytest.raises(TypeError):
        to_trailing(torch.randn(3))


def test_layout_gradients_flow():
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: to_trailing(to_complex(t) * (1 + 2j)), (x,))


# ------------------------------------------------------------------------------------------------
# init
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("criterion", ["glorot", "he"])
def test_init_independent_variance_and_phase(criterion):
    w = torch.empty(96, 64, 3, 3, dtype=torch.complex64)
    fan_in, fan_out = complex_fans(w)
    assert (fan_in, fan_out) == (64 * 9, 96 * 9)
    complex_init_(w, fan_in, fan_out, criterion, generator=torch.Generator().manual_seed(0))
    sigma = 1 / math.sqrt(fan_in + fan_out) if criterion == "glorot" else 1 / math.sqrt(fan_in)
    w64 = w.to(CD)
    var = (w64.abs() ** 2).mean().item()
    assert abs(var / (2 * sigma**2) - 1) < 0.02  # 55k samples: ~0.4 % sampling std
    # Rayleigh(σ) mean is σ sqrt(π/2); phases uniform: circular mean ~ 0, E[W] ~ 0
    assert abs(w64.abs().mean().item() / (sigma * math.sqrt(math.pi / 2)) - 1) < 0.02
    assert (w64 / w64.abs()).mean().abs().item() < 0.02
    assert w64.mean().abs().item() < 0.02 * sigma


def test_init_unitary_exact_variance_and_orthogonality():
    w = torch.empty(16, 8, 3, 3, dtype=CD)
    fan_in, fan_out = complex_fans(w)
    complex_init_(w, fan_in, fan_out, "glorot", "unitary", torch.Generator().manual_seed(3))
    assert abs((w.abs() ** 2).mean().item() - 2 / (fan_in + fan_out)) < TOL
    q = w.reshape(16, -1)
    gram = q @ q.conj().T  # 16 x 16: rows are orthogonal with equal norms
    assert max_err(gram, gram[0, 0].real * torch.eye(16, dtype=CD)) < TOL
    tall = torch.empty(40, 10, dtype=CD)  # more rows than columns: orthogonal columns
    complex_init_(tall, 10, 40, "he", "unitary", torch.Generator().manual_seed(4))
    gram = tall.conj().T @ tall
    assert max_err(gram, gram[0, 0].real * torch.eye(10, dtype=CD)) < TOL
    assert abs((tall.abs() ** 2).mean().item() - 2 / 10) < TOL


def test_init_reproducible_and_validated():
    a, b = torch.empty(5, 7, dtype=CD), torch.empty(5, 7, dtype=CD)
    complex_init_(a, 7, 5, generator=torch.Generator().manual_seed(11))
    complex_init_(b, 7, 5, generator=torch.Generator().manual_seed(11))
    assert torch.equal(a, b)
    with pytest.raises(TypeError):
        complex_init_(torch.empty(3, 3), 3, 3)
    with pytest.raises(ValueError):
        complex_init_(a, 7, 5, criterion="lecun")
    with pytest.raises(ValueError):
        complex_init_(a, 7, 5, mode="orthogonal")
    assert complex_fans(torch.empty(6, 4, 3, 3), transposed=True, groups=2) == (27, 36)


def test_layer_default_init_variance():
    torch.manual_seed(0)
    lin = ComplexLinear(300, 200)
    conv = ComplexConv2d(64, 96, 3)
    for w, target in [(lin.weight, 2 / 500), (conv.weight, 2 / (64 * 9 + 96 * 9))]:
        assert w.dtype == torch.complex64
        assert abs((w.detach().abs() ** 2).mean().item() / target - 1) < 0.03
    assert torch.count_nonzero(lin.bias) == 0 and torch.count_nonzero(conv.bias) == 0


def test_seed_defect_per_part_xavier_init_doubles_complex_glorot_variance():
    """Seed defect 27: Xavier-uniform on Re and Im separately gives E|W|^2 = 2x complex Glorot."""
    torch.manual_seed(0)
    fan_in, fan_out = 256, 128
    seed_re, seed_im = torch.empty(fan_out, fan_in), torch.empty(fan_out, fan_in)
    nn.init.xavier_uniform_(seed_re)
    nn.init.xavier_uniform_(seed_im)
    seed_var = (seed_re.double() ** 2 + seed_im.double() ** 2).mean().item()
    target = 2 / (fan_in + fan_out)
    assert abs(seed_var / target - 2) < 0.1  # the seed's variance is twice the target
    ours = ComplexLinear(fan_in, fan_out).weight.detach()
    assert abs((ours.abs().double() ** 2).mean().item() / target - 1) < 0.05


# ------------------------------------------------------------------------------------------------
# linear / convolution layers
# ------------------------------------------------------------------------------------------------
def test_conv2d_matches_explicit_sums():
    torch.manual_seed(0)
    layer = with_random_bias(ComplexConv2d(2, 3, 3, stride=2, padding=1, dilation=1, dtype=CD))
    z = crandn(1, 2, 5, 6)
    expected = loop_conv2d(z, layer.weight.detach(), layer.bias.detach(), 2, 1, 1)
    for impl in IMPLS:
        layer.impl = impl
        assert max_err(layer(z).detach(), expected) < TOL, impl
    layer2 = with_random_bias(ComplexConv2d(2, 2, 2, padding=1, dilation=2, dtype=CD))
    expected = loop_conv2d(z, layer2.weight.detach(), layer2.bias.detach(), 1, 1, 2)
    for impl in IMPLS:
        layer2.impl = impl
        assert max_err(layer2(z).detach(), expected) < TOL, impl


def test_conv_transpose2d_matches_explicit_scatter_and_is_the_transpose():
    torch.manual_seed(0)
    layer = with_random_bias(ComplexConvTranspose2d(2, 3, 3, stride=2, padding=1, dtype=CD))
    z = crandn(1, 2, 3, 4)
    expected = loop_conv_transpose2d(z, layer.weight.detach(), layer.bias.detach(), 2, 1)
    for impl in IMPLS:
        layer.impl = impl
        assert max_err(layer(z).detach(), expected) < TOL, impl
    # bilinear adjoint identity: <conv(u; W), z> = <u, conv_T(z; W)> without conjugation
    layer.bias = None
    u = crandn(1, 3, 5, 7, seed=5)
    conv_u = F.conv2d(u, layer.weight.detach(), stride=2, padding=1)
    lhs = (conv_u * z).sum()
    for impl in IMPLS:
        layer.impl = impl
        rhs = (u * layer(z).detach()).sum()
        assert abs(complex(lhs - rhs)) < TOL


CONV_CASES = [
    # (class, constructor kwargs, input shape)
    (ComplexConv2d, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1),
                         padding=(1, 0)), (2, 4, 7, 6)),
    (ComplexConv2d, dict(in_channels=4, out_channels=6, kernel_size=3, padding=2, dilation=2,
                         groups=2), (2, 4, 6, 5)),
    (ComplexConv1d, dict(in_channels=3, out_channels=5, kernel_size=3, stride=2, padding=1),
     (2, 3, 9)),
    (ComplexConvTranspose2d, dict(in_channels=4, out_channels=6, kernel_size=(5, 3),
                                  stride=(2, 1), padding=(2, 1), output_padding=(1, 0)),
     (2, 4, 4, 5)),
    (ComplexConvTranspose2d, dict(in_channels=4, out_channels=2, kernel_size=2, stride=2,
                                  groups=2, dilation=1), (1, 4, 3, 3)),
]


def _ref_for(layer, z):
    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
              groups=layer.groups)
    if layer.transposed:
        kw["output_padding"] = layer.output_padding
    return ref_conv(z, layer.weight, layer.bias, layer.transposed, layer.nd, **kw)


@pytest.mark.parametrize("cls,kwargs,shape", CONV_CASES)
def test_conv_layers_all_impls_match_reference_values_and_gradients(cls, kwargs, shape):
    torch.manual_seed(0)
    layer = with_random_bias(cls(**kwargs, dtype=CD))
    z = crandn(*shape, requires_grad=True)
    target = crandn(*_ref_for(layer, z).shape, seed=9)
    ref = _ref_for(layer, z)
    ref_grads = torch.autograd.grad((ref * target.conj()).real.sum(), [z, layer.weight,
                                                                        layer.bias])
    for impl in IMPLS:
        layer.impl = impl
        for channels_last in (True, False):
            layer.channels_last = channels_last
            out = layer(z)
            assert out.shape == ref.shape and out.dtype == CD
            assert max_err(out, ref) < TOL, (impl, channels_last)
            grads = torch.autograd.grad((out * target.conj()).real.sum(),
                                        [z, layer.weight, layer.bias])
            for g, r in zip(grads, ref_grads, strict=True):
                assert max_err(g, r) < TOL, (impl, channels_last)


@pytest.mark.parametrize("cls,kwargs,shape", CONV_CASES)
def test_single_precision_channels_last_paths_match_native(cls, kwargs, shape):
    """complex64 runs the channels-last code paths (float64 stays NCHW): same values and grads."""
    torch.manual_seed(0)
    layer = cls(**kwargs, impl="native")
    with torch.no_grad():
        layer.bias.copy_(torch.randn(layer.bias.shape, dtype=torch.complex64))
    z = torch.randn(shape, dtype=torch.complex64, requires_grad=True)
    params = [z, layer.weight, layer.bias]
    ref = layer(z)
    target = torch.randn(ref.shape, dtype=torch.complex64)
    ref_grads = torch.autograd.grad((ref * target.conj()).real.sum(), params)
    for impl, channels_last in itertools.product(("gauss", "block"), (True, False)):
        layer.impl, layer.channels_last = impl, channels_last
        out = layer(z)
        assert max_err(out, ref) < 1e-5 * ref.abs().max().item(), (impl, channels_last)
        if out.dim() == 4 and out.shape[1] > 1:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            assert out.is_contiguous(memory_format=fmt)
        grads = torch.autograd.grad((out * target.conj()).real.sum(), params)
        for g, r in zip(grads, ref_grads, strict=True):
            assert max_err(g, r) < 1e-5 * r.abs().max().item(), (impl, channels_last)


def test_linear_all_impls_match_reference():
    torch.manual_seed(0)
    layer = with_random_bias(ComplexLinear(5, 4, dtype=CD))
    z = crandn(2, 3, 5, requires_grad=True)
    w, b = layer.weight, layer.bias
    ref = torch.einsum("oi,nti->nto", w, z) + b  # sum_i W[o,i] z[i] + b[o]
    explicit = sum(w[:, i] * z[..., i : i + 1] for i in range(5)) + b
    assert max_err(ref, explicit) < TOL
    target = crandn(2, 3, 4, seed=2)
    ref_grads = torch.autograd.grad((ref * target.conj()).real.sum(), [z, w, b])
    for impl in IMPLS:
        layer.impl = impl
        out = layer(z)
        assert max_err(out, ref) < TOL, impl
        grads = torch.autograd.grad((out * target.conj()).real.sum(), [z, w, b])
        for g, r in zip(grads, ref_grads, strict=True):
            assert max_err(g, r) < TOL, impl


@pytest.mark.parametrize("impl", ["gauss", "block"])
def test_gradcheck_custom_conv_and_linear(impl):
    torch.manual_seed(0)
    cases = [
        (dict(stride=(2, 1), padding=(1, 0)), (1, 2, 5, 4), (3, 2, 3, 2), False),
        (dict(stride=2, padding=1, output_padding=1), (1, 2, 3, 3), (2, 3, 3, 3), True),
        (dict(stride=1, padding=1), (1, 2, 6), (3, 2, 3), False),
    ]
    for kw, zshape, wshape, transposed in cases:
        z = crandn(*zshape, requires_grad=True)
        w = crandn(*wshape, seed=1, requires_grad=True)
        b = crandn(wshape[1] if transposed else wshape[0], seed=2, requires_grad=True)

        def fn(z, w, b, kw=kw, transposed=transposed):
            return complex_conv(z, w, b, transposed=transposed, impl=impl, **kw)

        assert gradcheck(fn, (z, w, b))
    lin = ComplexLinear(4, 3, impl=impl, dtype=CD)
    z = crandn(2, 4, requires_grad=True)
    assert gradcheck(lambda z, w, b: complex_linear(z, w, b, impl), (z, lin.weight, lin.bias))


def test_gauss_partial_gradients_first_layer_and_frozen_weight():
    torch.manual_seed(0)
    layer = with_random_bias(ComplexConv2d(2, 3, 3, padding=1, impl="gauss", dtype=CD))
    z = crandn(2, 2, 5, 5)  # input without grad (first layer of a network)
    ref = _ref_for(layer, z)
    gw_ref = torch.autograd.grad(ref.abs().square().sum(), layer.weight)[0]
    gw = torch.autograd.grad(layer(z).abs().square().sum(), layer.weight)[0]
    assert max_err(gw, gw_ref) < TOL
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    z.requires_grad_(True)
    gz = torch.autograd.grad(layer(z).abs().square().sum(), z)[0]
    gz_ref = torch.autograd.grad(_ref_for(layer, z).abs().square().sum(), z)[0]
    assert max_err(gz, gz_ref) < TOL
    with torch.no_grad():
        assert max_err(layer(z), _ref_for(layer, z)) < TOL


@pytest.mark.parametrize("impl", IMPLS)
def test_phase_equivariance_of_c_linear_layers(impl):
    torch.manual_seed(0)
    phase = cmath.exp(0.7j)
    layers = [
        (ComplexLinear(5, 4, bias=False, impl=impl, dtype=CD), (3, 5)),
        (ComplexConv1d(2, 3, 3, padding=1, bias=False, impl=impl, dtype=CD), (2, 2, 7)),
        (ComplexConv2d(2, 3, 3, stride=2, bias=False, impl=impl, dtype=CD), (2, 2, 7, 6)),
        (ComplexConvTranspose2d(2, 3, 3, stride=2, bias=False, impl=impl, dtype=CD),
         (2, 2, 4, 4)),
    ]
    for layer, shape in layers:
        z = crandn(*shape)
        with torch.no_grad():
            assert max_err(layer(phase * z), phase * layer(z)) < TOL
            # and C-linearity: f(a z1 + b z2) = a f(z1) + b f(z2)
            z2 = crandn(*shape, seed=3)
            mixed = layer((2 - 1j) * z + 0.5j * z2)
            assert max_err(mixed, (2 - 1j) * layer(z) + 0.5j * layer(z2)) < TOL


def test_complex64_impls_agree_and_layout_of_outputs():
    torch.manual_seed(0)
    layer = ComplexConv2d(8, 16, 3, padding=1)
    z = torch.randn(2, 8, 10, 9, dtype=torch.complex64)
    outs = {}
    for impl in IMPLS:
        layer.impl = impl
        outs[impl] = layer(z).detach()
    scale = outs["native"].abs().max().item()
    for impl in ("gauss", "block"):
        assert max_err(outs[impl], outs["native"]) < 1e-5 * scale
        assert outs[impl].is_contiguous(memory_format=torch.channels_last)
        assert torch.flatten(outs[impl], 1).shape == (2, 16 * 90)
    layer.impl, layer.channels_last = "gauss", False
    assert layer(z).is_contiguous()
    assert layer.impl == "gauss" and "impl='gauss'" in repr(layer)


def test_unbatched_inputs_output_size_and_same_padding():
    torch.manual_seed(0)
    conv = ComplexConv2d(2, 3, 3, padding="same", dtype=CD)
    z = crandn(2, 6, 5)
    assert conv(z).shape == (3, 6, 5)
    assert max_err(conv(z), conv(z.unsqueeze(0))[0]) < TOL
    conv1 = ComplexConv1d(2, 3, 5, padding="same", dtype=CD)
    assert conv1(crandn(2, 11)).shape == (3, 11)
    up = ComplexConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=CD)
    x = crandn(1, 3, 4, 5)
    assert up(x).shape == (1, 2, 7, 9)
    assert up(x, output_size=(8, 10)).shape == (1, 2, 8, 10)
    with pytest.raises(ValueError):
        up(x, output_size=(12, 10))
    with pytest.raises(ValueError):
        ComplexConv2d(2, 3, 4, padding="same")
    with pytest.raises(ValueError):
        ComplexConv2d(2, 3, 3, impl="fast")


def test_real_inputs_and_dtype_mismatch_are_rejected():
    layer = ComplexConv2d(2, 3, 3)
    with pytest.raises(TypeError, match="complex"):
        layer(torch.randn(1, 2, 5, 5))
    with pytest.raises(TypeError, match="dtype"):
        layer(crandn(1, 2, 5, 5))
    with pytest.raises(TypeError):
        ComplexLinear(2, 3, dtype=torch.float32)


def test_seed_defect_two_real_biases_replaced_by_one_complex_bias():
    """Seed defect 27: two biased real sub-layers gave (b_A - b_B) + i(b_A + b_B)."""
    layer = ComplexConv2d(3, 5, 3)
    params = dict(layer.named_parameters())
    assert set(params) == {"weight", "bias"}
    assert params["bias"].dtype == torch.complex64 and params["bias"].shape == (5,)
    real_count = sum(torch.view_as_real(p).numel() for p in layer.parameters())
    assert real_count == 2 * 3 * 5 * 9 + 2 * 5
    # the bias is exactly the added complex constant: a zero input maps to b
    with torch.no_grad():
        layer.bias.copy_(torch.arange(5) * (1 - 2j))
    for impl in IMPLS:
        layer.impl = impl
        out = layer(torch.zeros(1, 3, 4, 4, dtype=torch.complex64))
        assert torch.allclose(out[0, :, 1, 1], layer.bias.detach())
    lin = ComplexLinear(4, 2)
    assert {n for n, _ in lin.named_parameters()} == {"weight", "bias"}
    assert ComplexLinear(4, 2, bias=False).bias is None


def _count_ops(fn, names):
    counts = dict.fromkeys(names, 0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    for event in prof.events():
        if event.name in counts:
            counts[event.name] += 1
    return counts


def test_seed_defect_four_real_convolutions_per_complex_conv():
    """Seed defect 28: every complex conv ran four real convolutions on re-stacked tensors."""
    torch.manual_seed(0)
    z = torch.randn(2, 4, 8, 8, dtype=torch.complex64, requires_grad=True)
    names = ["aten::convolution", "aten::convolution_backward"]
    for impl, expected in [("gauss", 3), ("block", 1)]:
        layer = ComplexConv2d(4, 4, 3, padding=1, impl=impl)

        def step(layer=layer):
            layer(z).abs().sum().backward()

        counts = _count_ops(step, names)
        assert counts == {"aten::convolution": expected,
                          "aten::convolution_backward": expected}, (impl, counts)


# ------------------------------------------------------------------------------------------------
# dropout and the complex -> real head
# ------------------------------------------------------------------------------------------------
def test_dropout_shares_one_mask_and_scales_once():
    torch.manual_seed(0)
    p = 0.3
    drop = ComplexDropout(p)
    z = torch.complex(torch.rand(64, 128) + 0.5, torch.rand(64, 128) + 0.5).to(CD)
    out = drop(z)
    dropped = out == 0
    assert torch.equal(out.real == 0, out.imag == 0)  # one mask for both parts
    kept = ~dropped
    assert max_err(out[kept], z[kept] / (1 - p)) < TOL  # scaled once
    assert abs(dropped.double().mean().item() - p) < 0.02
    drop.eval()
    assert drop(z) is z
    drop.train()
    assert gradcheck(lambda t: (torch.manual_seed(1), drop(t))[1], (crandn(3, 4,
                                                                          requires_grad=True),))
    assert torch.count_nonzero(ComplexDropout(1.0)(z)) == 0
    with pytest.raises(ValueError):
        ComplexDropout(1.5)


def test_dropout2d_zeroes_whole_channels():
    torch.manual_seed(0)
    drop = ComplexDropout2d(0.5)
    z = crandn(4, 16, 3, 3) + (3 + 3j)
    out = drop(z)
    zero_channels = (out == 0).all(dim=(2, 3))
    nonzero_channels = (out != 0).all(dim=(2, 3))
    assert torch.equal(zero_channels, ~nonzero_channels)
    assert 0 < zero_channels.sum() < 64
    keep = nonzero_channels[..., None, None].expand_as(z)
    assert max_err(out[keep], 2 * z[keep]) < TOL


def test_seed_defect_independent_dropout_masks_for_real_and_imag():
    """Seed defect 26: nn.Dropout on the stacked [Re, Im] tensor drops the parts independently."""
    torch.manual_seed(0)
    z = torch.complex(torch.rand(100, 100) + 1, torch.rand(100, 100) + 1)
    seed_out = nn.Dropout(0.5)(torch.view_as_real(z))
    half_dropped = (seed_out[..., 0] == 0) ^ (seed_out[..., 1] == 0)
    assert half_dropped.double().mean() > 0.4  # ~50 % of entries lose only one part
    ours = ComplexDropout(0.5)(z)
    assert not ((ours.real == 0) ^ (ours.imag == 0)).any()


def test_complex_to_real_modes():
    z = crandn(3, 4, requires_grad=True)
    assert max_err(ComplexToReal("modulus")(z), z.abs()) < TOL
    assert max_err(ComplexToReal("modulus_squared")(z), z.abs() ** 2) < TOL
    cat = ComplexToReal("concat")(z)
    assert cat.shape == (3, 8) and torch.equal(cat[:, :4], z.real) and torch.equal(cat[:, 4:],
                                                                                   z.imag)
    assert torch.equal(ComplexToReal("real")(z), z.real)
    for mode in ComplexToReal.MODES:
        assert gradcheck(ComplexToReal(mode), (z,))
    zero = torch.zeros(2, 3, dtype=torch.complex64, requires_grad=True)
    ComplexToReal("modulus")(zero).sum().backward()
    assert torch.isfinite(torch.view_as_real(zero.grad)).all()
    with pytest.raises(ValueError):
        ComplexToReal("phase")


def test_seed_defect_complex_logits_have_no_real_loss():
    """Seed defect 26: complex logits with no rule to real class scores; the head gives one."""
    torch.manual_seed(0)
    net = nn.Sequential(ComplexLinear(6, 5), ComplexToReal("concat"), nn.Linear(10, 3))
    z = torch.randn(4, 6, dtype=torch.complex64)
    logits = net(z)
    assert logits.dtype == torch.float32 and logits.shape == (4, 3)
    loss = F.cross_entropy(logits, torch.tensor([0, 1, 2, 1]))
    loss.backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError):  # a complex "logit" tensor cannot feed the real loss
        F.cross_entropy(net[0](z), torch.tensor([0, 1, 2, 1]))


# ------------------------------------------------------------------------------------------------
# pooling
# ------------------------------------------------------------------------------------------------
def _windows(z, k, s, p):
    """(B, C, L, k*k) complex windows with zero padding flagged by a mask."""
    b, c = z.shape[:2]
    re = F.unfold(F.pad(z.real, (p, p, p, p)), k, stride=s)
    im = F.unfold(F.pad(z.imag, (p, p, p, p)), k, stride=s)
    ones = F.unfold(F.pad(torch.ones_like(z.real), (p, p, p, p)), k, stride=s)
    shape = (b, c, k * k, -1)
    return (torch.complex(re, im).reshape(shape).transpose(2, 3),
            ones.reshape(shape).transpose(2, 3) > 0)


@pytest.mark.parametrize("channels_last", [False, True])
def test_maxpool_selects_largest_modulus_input_element(channels_last):
    z = crandn(2, 3, 7, 8)
    zin = z.contiguous(memory_format=torch.channels_last) if channels_last else z
    for k, s, p in [(2, 2, 0), (3, 2, 1)]:
        out = ComplexMaxPool2d(k, s, p)(zin)
        win, valid = _windows(z, k, s, p)
        mods = win.abs().masked_fill(~valid, -1)
        expected = win.gather(3, mods.argmax(3, keepdim=True)).squeeze(3)
        assert torch.equal(out.flatten(2), expected)
        assert set(out.flatten().tolist()) <= set(z.flatten().tolist())  # outputs ⊂ inputs
    out, idx = ComplexMaxPool2d(2, return_indices=True)(z)
    assert torch.equal(out, z.flatten(2).gather(2, idx.flatten(2)).reshape(out.shape))


def test_maxpool_gradients_and_zeros():
    z = crandn(1, 2, 4, 6, requires_grad=True)
    for module in (ComplexMaxPool2d(2), ComplexMaxPool2d(3, 1, 1), ComplexAdaptiveMaxPool2d(2)):
        assert gradcheck(module, (z,))
    zero = torch.zeros(1, 1, 4, 4, dtype=torch.complex64, requires_grad=True)
    out = ComplexMaxPool2d(2)(zero)
    torch.view_as_real(out).sum().backward()
    grad = torch.view_as_real(zero.grad)
    assert torch.isfinite(grad).all() and grad.abs().sum() == 8  # 4 windows x (1 + 1j)
    z1 = crandn(2, 3, 9, requires_grad=True)
    out1 = ComplexMaxPool1d(3, 2)(z1)
    assert set(out1.detach().flatten().tolist()) <= set(z1.detach().flatten().tolist())
    assert gradcheck(ComplexMaxPool1d(3, 2), (z1,))
    ad = ComplexAdaptiveMaxPool2d((2, 3))(z.detach())
    assert ad.shape == (1, 2, 2, 3)
    assert set(ad.flatten().tolist()) <= set(z.detach().flatten().tolist())


def test_seed_defect_split_maxpool_creates_values_not_in_input():
    """Seed defect 19: CMaxPool2d pooled Re and Im separately (10, 1j, -5-5j, -5-5j -> 10+1j)."""
    z = torch.tensor([[10 + 0j, 1j], [-5 - 5j, -5 - 5j]], dtype=torch.complex64).reshape(1, 1, 2, 2)
    parts = torch.view_as_real(z)
    seed = torch.complex(nn.MaxPool2d(2)(parts[..., 0]), nn.MaxPool2d(2)(parts[..., 1]))
    assert seed.item() == 10 + 1j and seed.item() not in z.flatten().tolist()
    ours = ComplexMaxPool2d(2)(z)
    assert ours.item() == 10 + 0j


@pytest.mark.parametrize("channels_last", [False, True])
def test_avgpool_and_adaptive_avgpool_match_reference(channels_last):
    z = crandn(2, 3, 7, 8)
    zin = z.contiguous(memory_format=torch.channels_last) if channels_last else z
    for k, s, p, include in [(2, 2, 0, True), (3, 2, 1, True), (3, 2, 1, False)]:
        out = ComplexAvgPool2d(k, s, p, count_include_pad=include)(zin)
        win, valid = _windows(z, k, s, p)
        denom = k * k if include else valid.sum(3)
        expected = win.sum(3) / denom
        assert max_err(out.flatten(2), expected) < TOL
    out = ComplexAdaptiveAvgPool2d((3, 2))(zin)
    for i, j in itertools.product(range(3), range(2)):  # PyTorch's adaptive bins
        r0, r1 = (i * 7) // 3, -((-(i + 1) * 7) // 3)
        c0, c1 = (j * 8) // 2, -((-(j + 1) * 8) // 2)
        assert max_err(out[:, :, i, j], z[:, :, r0:r1, c0:c1].mean((2, 3))) < TOL
    assert ComplexAdaptiveAvgPool2d(1)(zin).shape == (2, 3, 1, 1)


def test_avgpool_1d_gradients_and_equivariance():
    z = crandn(2, 3, 9, requires_grad=True)
    for module in (ComplexAvgPool1d(3, 2, 1), ComplexAdaptiveAvgPool1d(4)):
        assert gradcheck(module, (z,))
    out = ComplexAvgPool1d(3)(z)
    assert max_err(out, z[..., :9].reshape(2, 3, 3, 3).mean(-1)) < TOL
    z2 = crandn(1, 2, 6, 6, requires_grad=True)
    for module in (ComplexAvgPool2d(2), ComplexAdaptiveAvgPool2d(4)):
        assert gradcheck(module, (z2,))
    phase = cmath.exp(-1.1j)
    for module in (ComplexAvgPool2d(2), ComplexMaxPool2d(2), ComplexAdaptiveAvgPool2d(3)):
        with torch.no_grad():
            assert max_err(module(phase * z2), phase * module(z2)) < TOL
    assert ComplexAvgPool2d(2)(crandn(3, 4, 4)).shape == (3, 2, 2)  # unbatched


# ------------------------------------------------------------------------------------------------
# activations
# ------------------------------------------------------------------------------------------------
def test_activations_match_formulas():
    z = crandn(4, 3, 5)
    x, y = z.real, z.imag
    assert max_err(CReLU()(z), torch.complex(x.clamp_min(0), y.clamp_min(0))) < TOL
    leaky = torch.complex(torch.where(x > 0, x, 0.2 * x), torch.where(y > 0, y, 0.2 * y))
    assert max_err(CLeakyReLU(0.2)(z), leaky) < TOL
    mod = ModReLU(3, bias_init=-0.5).double()
    with torch.no_grad():
        mod.bias.copy_(torch.tensor([-0.5, 0.0, 0.3]))
    b = mod.bias.detach().reshape(1, 3, 1)
    expected = torch.clamp_min(z.abs() + b, 0) * z / z.abs()
    assert max_err(mod(z), expected) < TOL
    inside = (x >= 0) & (y >= 0)
    assert max_err(ZReLU()(z), torch.where(inside, z, torch.zeros_like(z))) < TOL
    angle = torch.angle(z)
    assert max_err(Cardioid()(z), 0.5 * (1 + torch.cos(angle)) * z) < TOL
    real_line = torch.linspace(-2, 2, 9, dtype=torch.float64).to(CD)
    assert max_err(Cardioid()(real_line), real_line.real.clamp_min(0).to(CD)) < TOL


def test_modrelu_sign_convention():
    """b is added to |z|: b = -0.5 zeroes |z| = 0.3 and shrinks |z| = 2 to 1.5, same phase."""
    mod = ModReLU(1, bias_init=-0.5).double()
    z = torch.tensor([0.3 * cmath.exp(1j), 2 * cmath.exp(-2j)], dtype=CD)
    out = mod(z).detach()
    assert abs(complex(out[0])) < TOL
    assert abs(complex(out[1]) - 1.5 * cmath.exp(-2j)) < TOL
    mod_pos = ModReLU(1, bias_init=0.0).double()
    assert max_err(mod_pos(z), z) < TOL  # b = 0 is the identity


def test_activation_gradients_and_zero_input():
    z = crandn(2, 3, 4, requires_grad=True)
    modules = [CReLU(), CLeakyReLU(0.1), ModReLU(3, -0.2).double(), ZReLU(), Cardioid()]
    for module in modules:
        assert gradcheck(module, (z,)), type(module).__name__
        for dtype in (torch.complex64, CD):
            zero = torch.zeros(2, 3, 4, dtype=dtype, requires_grad=True)
            out = module(zero)
            torch.view_as_real(out).sum().backward()
            assert torch.isfinite(torch.view_as_real(out)).all()
            assert torch.isfinite(torch.view_as_real(zero.grad)).all(), type(module).__name__
    mod = ModReLU(3, -0.2)
    mod(z.detach().to(torch.complex64).requires_grad_()).abs().sum().backward()
    assert mod.bias.grad is not None and torch.isfinite(mod.bias.grad).all()


def test_seed_defect_split_activations_only_no_phase_preserving_option():
    """Seed defect 26: only split ReLU/LeakyReLU; modReLU keeps the phase, CReLU does not."""
    z = crandn(3, 4, 5)
    phase = cmath.exp(2.0j)
    mod = ModReLU(4, bias_init=-0.3).double()
    with torch.no_grad():
        assert max_err(mod(phase * z), phase * mod(z)) < TOL
        assert max_err(CReLU()(phase * z), phase * CReLU()(z)) > 0.1
        out = mod(z)
        assert max_err(torch.angle(out[out != 0]), torch.angle(z[out != 0])) < 1e-9


def test_package_reexports_resolve():
    import utils.complex as cplx

    missing = [name for name in cplx.__all__ if not hasattr(cplx, name)]
    assert not missing and cplx.ComplexConv2d is ComplexConv2d
