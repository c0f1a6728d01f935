"""Tests of the complex batch norms and the complex LSTM / GRU against reference maths."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck
from torch.func import functional_call

from utils.complex.batchnorm import (
    ComplexBatchNorm1d,
    ComplexBatchNorm2d,
    ComplexBatchNorm3d,
    NaiveComplexBatchNorm1d,
    NaiveComplexBatchNorm2d,
    inverse_sqrt_2x2,
)
from utils.complex.rnn import ComplexGRU, ComplexLSTM, ComplexLSTMState, combined_hidden

C128 = torch.complex128

F64 = torch.float64


def correlated(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Complex data whose real and imaginary parts are strongly correlated, per channel."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(shape, generator=g, dtype=torch.float64)
    b = torch.randn(shape, generator=g, dtype=torch.float64)
    c = shape[1]
    scale = torch.linspace(0.5, 3.0, c, dtype=torch.float64).view(1, c, *[1] * (len(shape) - 2))
    re = scale * a + 1.5
    im = 0.9 * scale * a + 0.2 * b - 0.7
    return torch.complex(re, im)


def per_channel_stats(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (complex, [C]) and biased 2x2 covariance ([C, 2, 2]) of a [B, C, ...] tensor."""
    c = z.shape[1]
    flat = z.transpose(0, 1).reshape(c, -1)
    mean = flat.mean(dim=1)
    xc = flat - mean[:, None]
    v = torch.stack([xc.real, xc.imag], dim=1)  # [C, 2, N]
    return mean, v @ v.transpose(1, 2) / v.shape[-1]


def reference_bn(
    z: torch.Tensor,
    mean: torch.Tensor,
    cov: torch.Tensor,
    eps: float,
    gamma: torch.Tensor,
    beta: torch.Tensor,
) -> torch.Tensor:
    """y = Γ V^{-1/2} (z - μ) + β per channel, V^{-1/2} from eigh (float64)."""
    c = z.shape[1]
    v = cov + eps * torch.eye(2, dtype=torch.float64)
    lam, q = torch.linalg.eigh(v)
    w = q @ torch.diag_embed(lam.rsqrt()) @ q.transpose(1, 2)  # [C, 2, 2]
    m = gamma @ w
    flat = z.transpose(0, 1).reshape(c, -1) - mean[:, None]
    vec = torch.stack([flat.real, flat.imag], dim=1)
    out = m @ vec  # [C, 2, N]
    y = torch.complex(out[:, 0], out[:, 1]) + beta[:, None]
    shape = (c, z.shape[0]) + tuple(z.shape[2:])
    return y.reshape(shape).transpose(0, 1)


def gamma_matrix(weight: torch.Tensor) -> torch.Tensor:
    grr, gri, gii = weight
    return torch.stack([torch.stack([grr, gri], -1), torch.stack([gri, gii], -1)], -2)


# --------------------------------------------------------------------------- batch norm


def test_inverse_sqrt_2x2_matches_eigh() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(200, 2, 2, generator=g, dtype=torch.float64)
    v = a @ a.transpose(1, 2) + 1e-6 * torch.eye(2, dtype=torch.float64)
    v[0] = torch.tensor([[1.0, 0.999999], [0.999999, 1.0]])  # nearly singular
    v[1] = torch.tensor([[1e-6, 0.0], [0.0, 1e4]])  # badly scaled
    wrr, wri, wii = inverse_sqrt_2x2(v[:, 0, 0], v[:, 0, 1], v[:, 1, 1])
    w = torch.stack([torch.stack([wrr, wri], -1), torch.stack([wri, wii], -1)], -2)
    lam, q = torch.linalg.eigh(v)
    ref = q @ torch.diag_embed(lam.rsqrt()) @ q.transpose(1, 2)
    torch.testing.assert_close(w, ref, rtol=1e-7, atol=1e-9)
    eye = torch.eye(2, dtype=torch.float64).expand_as(v)
    torch.testing.assert_close(w @ v @ w, eye, rtol=0, atol=1e-6)


def test_whitening_gives_zero_mean_and_identity_covariance() -> None:
    z = correlated((32, 3, 6, 5))
    _, cov_in = per_channel_stats(z)
    corr_in = cov_in[:, 0, 1] / (cov_in[:, 0, 0] * cov_in[:, 1, 1]).sqrt()
    assert corr_in.min() > 0.9  # the test input really is correlated
    bn = ComplexBatchNorm2d(3, eps=1e-12, dtype=C128)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([[1.0] * 3, [0.0] * 3, [1.0] * 3]))  # Γ = I
    y = bn(z)
    mean, cov = per_channel_stats(y)
    torch.testing.assert_close(mean, torch.zeros_like(mean), rtol=0, atol=1e-12)
    torch.testing.assert_close(cov, torch.eye(2, dtype=torch.float64).expand(3, 2, 2),
                               rtol=0, atol=1e-9)


def test_default_gamma_is_inverse_sqrt2_and_gives_unit_power() -> None:
    bn = ComplexBatchNorm2d(4, eps=1e-12, dtype=C128)
    torch.testing.assert_close(bn.weight[0], torch.full((4,), 1 / math.sqrt(2), dtype=F64))
    torch.testing.assert_close(bn.weight[2], torch.full((4,), 1 / math.sqrt(2), dtype=F64))
    torch.testing.assert_close(bn.weight[1], torch.zeros(4, dtype=F64))
    y = bn(correlated((16, 4, 5, 5)))
    power = (y.abs() ** 2).mean(dim=(0, 2, 3))
    torch.testing.assert_close(power, torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-9)


@pytest.mark.parametrize("cls, shape", [
    (ComplexBatchNorm1d, (40, 3)),
    (ComplexBatchNorm1d, (8, 3, 7)),
    (ComplexBatchNorm2d, (6, 3, 4, 5)),
    (ComplexBatchNorm3d, (4, 3, 2, 3, 4)),
])
def test_whitening_matches_float64_eigh_reference(cls: type, shape: tuple[int, ...]) -> None:
    z = correlated(shape, seed=3)
    bn = cls(3, eps=1e-3, dtype=C128)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(3, 3, generator=g, dtype=torch.float64))
        bn.bias.copy_(torch.randn(3, generator=g, dtype=C128))
    y = bn(z)
    mean, cov = per_channel_stats(z)
    ref = reference_bn(z, mean, cov, 1e-3, gamma_matrix(bn.weight.detach()), bn.bias.detach())
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)


def test_running_stats_update_and_eval_uses_them() -> None:
    momentum = 0.25
    bn = ComplexBatchNorm2d(3, momentum=momentum, dtype=C128)
    z = correlated((8, 3, 4, 4), seed=7)
    bn(z)
    n = z.numel() // 3
    mean, cov = per_channel_stats(z)
    cov_unbiased = cov * n / (n - 1)
    torch.testing.assert_close(bn.running_mean, momentum * mean)
    eye = torch.eye(2, dtype=torch.float64).expand(3, 2, 2)
    expected = (1 - momentum) * eye + momentum * cov_unbiased
    torch.testing.assert_close(gamma_matrix(bn.running_covar), expected)
    assert int(bn.num_batches_tracked) == 1
    # buffers hold no autograd history (complexPyTorch #1 leaked the graph through them)
    assert bn.running_mean.grad_fn is None and bn.running_covar.grad_fn is None

    bn.eval()
    x = correlated((2, 3, 4, 4), seed=8)
    y = bn(x)
    ref = reference_bn(x, bn.running_mean, gamma_matrix(bn.running_covar), bn.eps,
                       gamma_matrix(bn.weight.detach()), bn.bias.detach())
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)
    # eval output of one sample does not depend on the rest of the batch
    torch.testing.assert_close(bn(x[:1]), y[:1])
    assert int(bn.num_batches_tracked) == 1  # eval does not update


def test_momentum_none_is_cumulative_average() -> None:
    bn = ComplexBatchNorm1d(2, momentum=None, dtype=C128)
    batches = [correlated((10, 2), seed=s) for s in range(3)]
    for b in batches:
        bn(b)
    means = torch.stack([per_channel_stats(b)[0] for b in batches])
    torch.testing.assert_close(bn.running_mean, means.mean(dim=0))


def test_track_running_stats_false_uses_batch_stats_in_eval() -> None:
    """complexPyTorch #6 crashed with track_running_stats=False; here eval = batch stats."""
    bn = ComplexBatchNorm2d(3, track_running_stats=False, dtype=C128)
    assert bn.running_mean is None
    z = correlated((4, 3, 3, 3))
    y_train = bn(z)
    bn.eval()
    torch.testing.assert_close(bn(z), y_train)


def test_no_affine_is_plain_whitening() -> None:
    bn = ComplexBatchNorm1d(3, affine=False, eps=1e-12, dtype=C128)
    assert bn.weight is None and bn.bias is None
    y = bn(correlated((50, 3)))
    _, cov = per_channel_stats(y)
    torch.testing.assert_close(cov, torch.eye(2, dtype=torch.float64).expand(3, 2, 2))


def test_gradcheck_whitening_batchnorm() -> None:
    bn = ComplexBatchNorm2d(2, eps=1e-3, dtype=C128)
    z = correlated((3, 2, 2, 2), seed=11).requires_grad_()
    g = torch.Generator().manual_seed(2)
    w = torch.randn(3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=C128, requires_grad=True)

    def f(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return functional_call(bn, {"weight": w, "bias": b}, (z,))

    assert gradcheck(f, (z, w, b), eps=1e-6, atol=1e-6)
    bn.eval()
    assert gradcheck(f, (z, w, b), eps=1e-6, atol=1e-6)


def test_complex64_default_dtype_and_input_checks() -> None:
    bn = ComplexBatchNorm2d(3)
    assert bn.bias.dtype == torch.complex64 and bn.weight.dtype == torch.float32
    assert bn(torch.randn(2, 3, 4, 4, dtype=torch.complex64)).dtype == torch.complex64
    with pytest.raises(TypeError):
        bn(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError):
        bn(torch.randn(2, 3, 4, dtype=torch.complex64))
    with pytest.raises(ValueError):
        ComplexBatchNorm1d(3)(torch.randn(1, 3, dtype=torch.complex64))


def test_seed_defect_cbatchnorm_re_batch_used_for_both_parts() -> None:
    """Seed defect 18: CBatchnorm applied re_batch to the imaginary part too.

    In the seed, im_batch never received a gradient or statistics, and re_batch's running
    statistics mixed both parts and advanced twice per step.
    """
    z = correlated((16, 3, 4, 4), seed=4)
    naive = NaiveComplexBatchNorm2d(3, momentum=1.0, dtype=C128)
    y = naive(z)
    (y.abs() ** 2 * torch.arange(1.0, 4.0, dtype=torch.float64).view(1, 3, 1, 1)).sum().backward()
    assert naive.bn_im.weight.grad is not None and naive.bn_im.weight.grad.abs().sum() > 0
    assert int(naive.bn_re.num_batches_tracked) == 1
    assert int(naive.bn_im.num_batches_tracked) == 1
    mean, _ = per_channel_stats(z)
    torch.testing.assert_close(naive.bn_re.running_mean, mean.real)
    torch.testing.assert_close(naive.bn_im.running_mean, mean.imag)
    # each part standardised with its own statistics
    ym, ycov = per_channel_stats(y)
    torch.testing.assert_close(ym, torch.zeros_like(ym), rtol=0, atol=1e-12)
    torch.testing.assert_close(ycov[:, 1, 1], torch.ones(3, dtype=torch.float64), atol=1e-4,
                               rtol=0)
    # the whitening BN keeps one set of complex statistics, updated once per step
    bn = ComplexBatchNorm2d(3, momentum=1.0, dtype=C128)
    bn(z)
    assert int(bn.num_batches_tracked) == 1
    torch.testing.assert_close(bn.running_mean, mean)


def test_naive_bn_keeps_correlation_whitening_removes_it() -> None:
    z = correlated((64, 2, 4, 4), seed=9)
    _, c_in = per_channel_stats(z)
    _, c_naive = per_channel_stats(NaiveComplexBatchNorm2d(2, dtype=C128)(z))
    _, c_white = per_channel_stats(ComplexBatchNorm2d(2, eps=1e-12, dtype=C128)(z))

    def rho(c: torch.Tensor) -> torch.Tensor:
        return c[:, 0, 1] / (c[:, 0, 0] * c[:, 1, 1]).sqrt()

    torch.testing.assert_close(rho(c_naive), rho(c_in), rtol=1e-6, atol=1e-6)
    assert rho(c_naive).min() > 0.9
    assert rho(c_white).abs().max() < 1e-9


def test_naive_bn_1d_shapes() -> None:
    bn = NaiveComplexBatchNorm1d(4, dtype=C128)
    for shape in [(5, 4), (5, 4, 6)]:
        assert bn(torch.randn(shape, dtype=C128)).shape == shape


# --------------------------------------------------------------------------- recurrent nets


def lstm_steps(net: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """Reference real LSTM from the equations (gate order i, f, g, o as in PyTorch)."""
    w_ih, w_hh = net.weight_ih_l0, net.weight_hh_l0
    b = net.bias_ih_l0 + net.bias_hh_l0 if net.bias else 0.0
    outs = []
    for x_t in x:
        i, f, g, o = (x_t @ w_ih.T + h @ w_hh.T + b).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


def gru_steps(net: nn.GRU, x: torch.Tensor, h: torch.Tensor):
    """Reference real GRU from the equations (gate order r, z, n as in PyTorch)."""
    w_ih, w_hh, b_ih, b_hh = net.weight_ih_l0, net.weight_hh_l0, net.bias_ih_l0, net.bias_hh_l0
    outs = []
    for x_t in x:
        xr, xz, xn = (x_t @ w_ih.T + b_ih).chunk(3, dim=-1)
        hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        u = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - u) * n + u * h
        outs.append(h)
    return torch.stack(outs), h


def complex_lstm_reference(m: ComplexLSTM, z: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
    """Layer by layer: four real recurrences, combined by the complex product rule."""
    hs, cs = [], []
    for layer in range(m.num_layers):
        a_net, b_net = m.rnn_re[layer], m.rnn_im[layer]
        h, c = h0[layer], c0[layer]
        ax, hax, cax = lstm_steps(a_net, z.real, h[0].real, c[0].real)
        ay, hay, cay = lstm_steps(a_net, z.imag, h[0].imag, c[0].imag)
        bx, hbx, cbx = lstm_steps(b_net, z.real, h[1].real, c[1].real)
        by, hby, cby = lstm_steps(b_net, z.imag, h[1].imag, c[1].imag)
        z = torch.complex(ax - by, bx + ay)
        hs.append(torch.stack([torch.complex(hax, hay), torch.complex(hbx, hby)]))
        cs.append(torch.stack([torch.complex(cax, cay), torch.complex(cbx, cby)]))
    return z, torch.stack(hs), torch.stack(cs)


def complex_gru_reference(m: ComplexGRU, z: torch.Tensor, h0: torch.Tensor):
    hs = []
    for layer in range(m.num_layers):
        a_net, b_net = m.rnn_re[layer], m.rnn_im[layer]
        h = h0[layer]
        ax, hax = gru_steps(a_net, z.real, h[0].real)
        ay, hay = gru_steps(a_net, z.imag, h[0].imag)
        bx, hbx = gru_steps(b_net, z.real, h[1].real)
        by, hby = gru_steps(b_net, z.imag, h[1].imag)
        z = torch.complex(ax - by, bx + ay)
        hs.append(torch.stack([torch.complex(hax, hay), torch.complex(hbx, hby)]))
    return z, torch.stack(hs)


def crandn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, dtype=C128, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_complex_lstm_matches_explicit_step_loop() -> None:
    torch.manual_seed(0)
    m = ComplexLSTM(3, 4, num_layers=3).double()
    z = crandn(6, 2, 3)
    h0, c0 = 0.5 * crandn(3, 2, 2, 4, seed=1), 0.5 * crandn(3, 2, 2, 4, seed=2)
    out, (h, c) = m(z, (h0, c0))
    ref_out, ref_h, ref_c = complex_lstm_reference(m, z, h0, c0)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, ref_h, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c, ref_c, rtol=1e-12, atol=1e-12)
    # zero default state
    out0, _ = m(z)
    zero = torch.zeros_like(h0)
    torch.testing.assert_close(out0, complex_lstm_reference(m, z, zero, zero)[0])


@torch.no_grad()
def test_complex_gru_matches_explicit_step_loop() -> None:
    torch.manual_seed(1)
    m = ComplexGRU(3, 5, num_layers=2).double()
    z = crandn(7, 3, 3)
    h0 = 0.5 * crandn(2, 2, 3, 5, seed=3)
    out, h = m(z, h0)
    ref_out, ref_h = complex_gru_reference(m, z, h0)
    torch.testing.assert_close(out, ref_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, ref_h, rtol=1e-12, atol=1e-12)


@torch.no_grad()
def test_product_rule_against_complex128_arithmetic() -> None:
    """out = A[z] + i·B[z] in complex arithmetic, with A[z] := A(Re z) + i·A(Im z)."""
    torch.manual_seed(2)
    m = ComplexLSTM(4, 3).double()
    z = crandn(5, 2, 4)
    out, _ = m(z)
    a_net, b_net = m.rnn_re[0], m.rnn_im[0]
    a_z = torch.complex(a_net(z.real)[0], a_net(z.imag)[0])
    b_z = torch.complex(b_net(z.real)[0], b_net(z.imag)[0])
    torch.testing.assert_close(out, a_z + 1j * b_z, rtol=1e-13, atol=1e-13)

    # with linear "recurrences" the rule is exactly the complex matrix product (W_A + i W_B) z
    wa, wb = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    lin_a = torch.complex(z.real @ wa.T, z.imag @ wa.T)
    lin_b = torch.complex(z.real @ wb.T, z.imag @ wb.T)
    torch.testing.assert_close(lin_a + 1j * lin_b, z @ torch.complex(wa, wb).T)


@pytest.mark.parametrize("cls", [ComplexLSTM, ComplexGRU])
@pytest.mark.parametrize("batch_first", [False, True])
@torch.no_grad()
def test_chunked_state_equals_full_run(cls: type, batch_first: bool) -> None:
    torch.manual_seed(3)
    m = cls(3, 4, num_layers=2, batch_first=batch_first).double()
    z = crandn(2, 11, 3) if batch_first else crandn(11, 2, 3)
    full, full_state = m(z)
    for cuts in [(1,), (4, 5), (3, 1, 6)]:
        state, outs, start = None, [], 0
        for length in cuts + (11 - sum(cuts),):
            piece = z[:, start:start + length] if batch_first else z[start:start + length]
            y, state = m(piece, state)
            outs.append(y)
            start += length
        torch.testing.assert_close(torch.cat(outs, dim=1 if batch_first else 0), full,
                                   rtol=1e-12, atol=1e-12)
        for s, f in zip(state if cls is ComplexLSTM else (state,),
                        full_state if cls is ComplexLSTM else (full_state,), strict=True):
            torch.testing.assert_close(s, f, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [ComplexLSTM, ComplexGRU])
@torch.no_grad()
def test_batch_first_matches_time_first(cls: type) -> None:
    torch.manual_seed(4)
    tf = cls(3, 4, num_layers=2).double()
    bf = cls(3, 4, num_layers=2, batch_first=True).double()
    bf.load_state_dict(tf.state_dict())
    z = crandn(5, 2, 3)
    out_tf, st_tf = tf(z)
    out_bf, st_bf = bf(z.transpose(0, 1))
    assert out_bf.shape == (2, 5, 4)
    torch.testing.assert_close(out_bf.transpose(0, 1), out_tf)
    if cls is ComplexLSTM:
        torch.testing.assert_close(st_bf.h, st_tf.h)
        torch.testing.assert_close(st_bf.c, st_tf.c)
    else:
        torch.testing.assert_close(st_bf, st_tf)


def test_gradcheck_complex_lstm() -> None:
    torch.manual_seed(5)
    m = ComplexLSTM(2, 2, num_layers=2).double()
    z = crandn(3, 2, 2).requires_grad_()
    h0 = (0.3 * crandn(2, 2, 2, 2, seed=1)).requires_grad_()
    c0 = (0.3 * crandn(2, 2, 2, 2, seed=2)).requires_grad_()

    def f(z, h0, c0):
        out, (h, c) = m(z, (h0, c0))
        return out, h, c

    assert gradcheck(f, (z, h0, c0), eps=1e-6, atol=1e-6)


def test_gradcheck_complex_gru() -> None:
    torch.manual_seed(6)
    m = ComplexGRU(2, 3, num_layers=2, batch_first=True).double()
    z = crandn(2, 3, 2).requires_grad_()
    h0 = (0.3 * crandn(2, 2, 2, 3, seed=1)).requires_grad_()
    assert gradcheck(lambda z, h0: m(z, h0), (z, h0), eps=1e-6, atol=1e-6)


def test_parameters_of_both_networks_get_gradients() -> None:
    m = ComplexLSTM(3, 4, num_layers=2)
    out, _ = m(torch.randn(4, 2, 3, dtype=torch.complex64))
    (out.abs() ** 2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert out.dtype == torch.complex64


@torch.no_grad()
def test_seed_defect_clstm_wrong_imaginary_path() -> None:
    """Seed defect 20: CLSTM computed out_im = re_LSTM(x_re) + im_LSTM(x_im).

    The correct imaginary part is re_LSTM(x_im) + im_LSTM(x_re). The seed also required h0/c0
    and returned linearly mixed states that could not be fed back (covered by the chunk test).
    """
    torch.manual_seed(7)
    m = ComplexLSTM(3, 4).double()
    z = crandn(5, 2, 3)
    out, state = m(z)  # no h0 / c0 needed
    assert isinstance(state, ComplexLSTMState)
    a, b = m.rnn_re[0], m.rnn_im[0]
    correct_im = a(z.imag)[0] + b(z.real)[0]
    seed_im = a(z.real)[0] + b(z.imag)[0]
    torch.testing.assert_close(out.imag, correct_im)
    assert (out.imag - seed_im).abs().max() > 1e-2
    # with a real input the seed's rule would give out_re = a - b and out_im = a + b
    x = torch.complex(z.real, torch.zeros_like(z.real))
    out_real_input, _ = m(x)
    zeros = torch.zeros_like(z.real)
    torch.testing.assert_close(out_real_input.imag, b(z.real)[0] + a(zeros)[0])
    # the returned state is fed back: continuing equals one full pass
    y1, s1 = m(z[:2])
    y2, _ = m(z[2:], s1)
    torch.testing.assert_close(torch.cat([y1, y2]), out, rtol=1e-12, atol=1e-12)


@torch.no_grad()
def test_stacked_layers_combine_after_every_layer() -> None:
    """asteroid #360: stacked complex layers must combine after each layer, not once."""
    torch.manual_seed(8)
    m = ComplexLSTM(3, 4, num_layers=2).double()
    first, second = ComplexLSTM(3, 4).double(), ComplexLSTM(4, 4).double()
    first.rnn_re[0].load_state_dict(m.rnn_re[0].state_dict())
    first.rnn_im[0].load_state_dict(m.rnn_im[0].state_dict())
    second.rnn_re[0].load_state_dict(m.rnn_re[1].state_dict())
    second.rnn_im[0].load_state_dict(m.rnn_im[1].state_dict())
    z = crandn(4, 2, 3)
    out, state = m(z)
    torch.testing.assert_close(out, second(first(z)[0])[0])
    # the "combine once" model (two 2-layer real LSTMs) is a different function
    stack_a = nn.LSTM(3, 4, num_layers=2).double()
    stack_b = nn.LSTM(3, 4, num_layers=2).double()
    for k, net in ((0, m.rnn_re), (1, m.rnn_im)):
        target = (stack_a, stack_b)[k]
        for layer in range(2):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(target, f"{name}_l{layer}").copy_(getattr(net[layer], f"{name}_l0"))
    once = torch.complex(stack_a(z.real)[0] - stack_b(z.imag)[0],
                         stack_b(z.real)[0] + stack_a(z.imag)[0])
    assert (once - out).abs().max() > 1e-3
    torch.testing.assert_close(combined_hidden(state.h)[-1], out[-1])


def test_rnn_input_and_state_checks() -> None:
    m = ComplexGRU(3, 4)
    with pytest.raises(TypeError):
        m(torch.randn(5, 2, 3))
    with pytest.raises(ValueError):
        m(torch.randn(5, 3, dtype=torch.complex64))
    with pytest.raises(ValueError):
        m(torch.randn(5, 2, 3, dtype=torch.complex64),
          torch.zeros(1, 2, 4, dtype=torch.complex64))
    lstm = ComplexLSTM(3, 4, num_layers=2)
    h, c = lstm.init_state(2)
    assert h.shape == (2, 2, 2, 4) and h.dtype == torch.complex64
