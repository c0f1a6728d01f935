"""utils.vq: nearest code, straight-through, EMA, k-means, dead codes, usage, residual VQ."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import utils.vq as vqmod
from utils.vq import (
    ResidualVQ,
    VectorQuantizer,
    bitrate_bps,
    kmeans,
    nearest_code,
    onehot_quantize,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _buffers(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


# ------------------------------------------------------------------ nearest code


@pytest.mark.parametrize("block_elems", [1 << 18, 64])
def test_nearest_code_matches_float64_cdist(monkeypatch, block_elems):
    """Expanded-square addmm + min == brute-force float64 cdist argmin (also in row blocks)."""
    monkeypatch.setattr(vqmod.functional, "_BLOCK_ELEMS", block_elems)
    g = _gen(1)
    z = torch.randn(301, 7, generator=g, dtype=torch.float64)
    cb = torch.randn(37, 7, generator=g, dtype=torch.float64)
    expected = torch.cdist(z, cb).argmin(1)
    assert torch.equal(nearest_code(z, cb), expected)


def test_nearest_code_float32_picks_a_nearest_code():
    """In float32 the chosen code's exact distance equals the minimum up to rounding."""
    g = _gen(2)
    z = torch.randn(2000, 16, generator=g) * 3 + 5  # large ||x||: no cancellation by design
    cb = torch.randn(256, 16, generator=g) * 3 + 5
    idx = nearest_code(z, cb)
    d = torch.cdist(z.double(), cb.double())
    chosen = d.gather(1, idx[:, None]).squeeze(1)
    assert torch.all(chosen - d.min(1).values <= 1e-4 * d.min(1).values + 1e-6)
    assert (idx == d.argmin(1)).float().mean() > 0.99


def test_onehot_formulation_equals_lookup():
    """The seed's one_hot(argmin) @ codebook equals the row lookup, values and gradients."""
    g = _gen(3)
    z = torch.randn(120, 5, generator=g, dtype=torch.float64)
    cb = torch.randn(17, 5, generator=g, dtype=torch.float64, requires_grad=True)
    q1, idx1 = onehot_quantize(z, cb)
    idx2 = nearest_code(z, cb.detach())
    q2 = F.embedding(idx2, cb)
    assert torch.equal(idx1, idx2)
    torch.testing.assert_close(q1, q2, rtol=0, atol=0)
    w = torch.randn(120, 5, generator=g, dtype=torch.float64)
    (g1,) = torch.autograd.grad((q1 * w).sum(), cb)
    (g2,) = torch.autograd.grad((q2 * w).sum(), cb)
    torch.testing.assert_close(g1, g2)
    # and the module's quantized output is the same lookup
    vq = VectorQuantizer(5, 17, kmeans_init=False).double().eval()
    vq.codebook.copy_(cb.detach())
    torch.testing.assert_close(vq(z).quantized, q2.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(50, 6), (3, 20, 6), (2, 4, 5, 6)])
def test_variable_leading_shapes(shape):
    vq = VectorQuantizer(6, 11)
    z = torch.randn(*shape, generator=_gen(4))
    for train in (True, False):
        out = vq.train(train)(z)
        assert out.quantized.shape == z.shape
        assert out.indices.shape == z.shape[:-1]
        assert out.indices.dtype == torch.long
    assert torch.equal(out.quantized, vq.codebook[out.indices])  # eval: codebook unchanged


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("ema", [True, False])
def test_straight_through_gradient_is_identity(ema):
    """d quantized / d z is the identity: the encoder receives the decoder's gradient as is."""
    vq = VectorQuantizer(4, 9, ema=ema).double()
    z = torch.randn(3, 10, 4, generator=_gen(5), dtype=torch.float64, requires_grad=True)
    out = vq(z)
    w = torch.randn(3, 10, 4, generator=_gen(6), dtype=torch.float64)
    (grad,) = torch.autograd.grad((out.quantized * w).sum(), z)
    torch.testing.assert_close(grad, w, rtol=0, atol=0)


def test_commitment_loss_gradient():
    """loss = beta * mean((z - sg[q])^2) with gradient 2 beta (z - q) / numel to z only."""
    beta = 0.25
    vq = VectorQuantizer(3, 8, beta=beta).double()
    z = torch.randn(40, 3, generator=_gen(7), dtype=torch.float64, requires_grad=True)
    out = vq(z)
    q = out.quantized.detach()
    torch.testing.assert_close(out.commitment_loss, ((z - q) ** 2).mean())
    torch.testing.assert_close(out.loss, beta * ((z - q) ** 2).mean())
    (grad,) = torch.autograd.grad(out.loss, z)
    torch.testing.assert_close(grad, 2 * beta * (z.detach() - q) / z.numel())
    # combined with a decoder gradient: both paths add up
    z2 = z.detach().clone().requires_grad_(True)
    out2 = vq.eval()(z2)
    (grad2,) = torch.autograd.grad(out2.loss + out2.quantized.sum(), z2)
    torch.testing.assert_close(grad2, 1 + 2 * beta * (z2.detach() - out2.quantized.detach()) / 120)


def test_fused_straight_through_commitment_gradcheck():
    """gradcheck of the fused custom op's commitment output (indices fixed, float64)."""
    cb = torch.randn(6, 3, generator=_gen(8), dtype=torch.float64)
    z = torch.randn(5, 3, generator=_gen(9), dtype=torch.float64, requires_grad=True)
    idx = nearest_code(z.detach(), cb)

    def commitment(z_: torch.Tensor) -> torch.Tensor:
        return vqmod.functional._StraightThroughCommit.apply(z_, idx, cb)[1]

    def weighted_output(z_: torch.Tensor) -> torch.Tensor:
        q, c = vqmod.functional._StraightThroughCommit.apply(z_, idx, cb)
        return c * 3.0 + (q * z_.detach()).sum()  # q-path: identity by construction

    assert torch.autograd.gradcheck(commitment, (z,))
    (grad,) = torch.autograd.grad(weighted_output(z), z)
    expected = 3.0 * 2 * (z.detach() - cb[idx]) / z.numel() + z.detach()
    torch.testing.assert_close(grad, expected)


def test_seed_defect_codebook_loss_without_gradient_is_gone():
    """Seed defect 'codebook_loss has no gradient': the seed added MSE(sg[x], q) with q read
    from an EMA *buffer*, so the term changed the reported loss but trained nothing.

    Here an EMA quantizer puts no codebook term in ``loss`` (codebook_loss is a reported zero),
    and a gradient quantizer's codebook loss really reaches the codebook.
    """
    g = _gen(10)
    z = torch.randn(64, 4, generator=g, requires_grad=True)
    # the seed's construction: lookup from a buffer -> the codebook loss has no gradient at all
    buffer_codebook = torch.randn(16, 4, generator=g)
    q_seed = F.embedding(nearest_code(z.detach(), buffer_codebook), buffer_codebook)
    assert not F.mse_loss(z.detach(), q_seed).requires_grad

    ema = VectorQuantizer(4, 16, ema=True)
    out = ema(z)
    assert out.codebook_loss.item() == 0.0 and not out.codebook_loss.requires_grad
    torch.testing.assert_close(out.loss, ema.beta * out.commitment_loss)
    assert out.loss.requires_grad
    assert not any(p.requires_grad for p in ema.parameters())

    sgd = VectorQuantizer(4, 16, ema=False, kmeans_init=False, dead_code_threshold=0)
    codebook = sgd.codebook.detach().clone()
    out = sgd(z)
    assert out.codebook_loss.requires_grad
    torch.testing.assert_close(out.loss, sgd.beta * out.commitment_loss + out.codebook_loss)
    (gcb,) = torch.autograd.grad(out.codebook_loss, sgd.codebook)
    idx = out.indices
    expected = torch.zeros_like(gcb).index_add_(
        0, idx, 2 * (codebook[idx] - z.detach()) / z.numel()
    )
    torch.testing.assert_close(gcb, expected)


# ------------------------------------------------------------------ layout


def test_seed_latent_layout_bug_channel_last():
    """Seed defect 'VQ latent layout bug': reshape(-1, D) of an NCHW latent with H*W == D made
    each 'vector' a whole channel map. Here the last dimension is the vector: a channel-first
    tensor is refused, and the channel-last view quantizes the D-vector at each position."""
    b, d, h, w = 2, 16, 4, 4  # H * W == D, the coincidence that hid the seed bug
    g = _gen(11)
    codebook = torch.randn(10, d, generator=g, dtype=torch.float64)
    true_idx = torch.randint(0, 10, (b, h, w), generator=g)
    z_last = codebook[true_idx] + 1e-3 * torch.randn(b, h, w, d, generator=g, dtype=torch.float64)
    z_nchw = z_last.permute(0, 3, 1, 2).contiguous()

    # what the seed did: rows are channel maps, not per-position vectors
    seed_rows = z_nchw.reshape(-1, d)
    assert torch.equal(seed_rows[0], z_nchw[0, 0].reshape(-1))
    assert not torch.allclose(seed_rows[0], z_last[0, 0, 0])

    vq = VectorQuantizer(d, 10, kmeans_init=False).double().eval()
    vq.codebook.copy_(codebook)
    with pytest.raises(ValueError, match="LAST dimension"):
        vq(torch.randn(b, d, h, w + 1, dtype=torch.float64))
    out = vq(z_nchw.permute(0, 2, 3, 1))  # non-contiguous channel-last view is fine
    assert torch.equal(out.indices, true_idx)
    torch.testing.assert_close(out.quantized, codebook[true_idx])
    # the seed's reshape quantizes channel maps: its result is not the per-position codes
    seed_q = F.embedding(nearest_code(seed_rows, codebook), codebook).view_as(z_nchw)
    assert not torch.allclose(seed_q, codebook[true_idx].permute(0, 3, 1, 2), atol=0.1)


# ------------------------------------------------------------------ EMA


def test_ema_update_matches_hand_computation():
    """One EMA step against numbers worked out by hand (decay 0.9, eps 0.01, Laplace)."""
    vq = VectorQuantizer(2, 3, decay=0.9, eps=0.01, kmeans_init=False, dead_code_threshold=0)
    vq.double()
    e = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    vq.codebook.copy_(e)
    vq.embed_sum.copy_(e)
    vq.cluster_size.fill_(1.0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 1.0]], dtype=torch.float64)
    out = vq(x)
    assert out.indices.tolist() == [0, 0, 1]
    # counts (2, 1, 0); sums ((1, 1), (9, 1), (0, 0))
    n_ema = [0.9 * 1 + 0.1 * 2, 0.9 * 1 + 0.1 * 1, 0.9 * 1 + 0.1 * 0]  # 1.1, 1.0, 0.9
    total = sum(n_ema)  # 3.0
    smoothed = [(v + 0.01) / (total + 3 * 0.01) * total for v in n_ema]
    m = [[0.9 * 0 + 0.1 * 1, 0.9 * 0 + 0.1 * 1], [0.9 * 10 + 0.1 * 9, 0.1 * 1], [0.0, 9.0]]
    expected = torch.tensor([[m[k][j] / smoothed[k] for j in range(2)] for k in range(3)],
                            dtype=torch.float64)
    torch.testing.assert_close(vq.cluster_size, torch.tensor(n_ema, dtype=torch.float64))
    torch.testing.assert_close(vq.embed_sum, torch.tensor(m, dtype=torch.float64))
    torch.testing.assert_close(vq.codebook, expected)
    # quantization used the codebook *before* the update (zalando issue #5 ordering)
    torch.testing.assert_close(out.quantized, e[[0, 0, 1]])


def test_laplace_smoothing_keeps_unused_codes_finite():
    """Zero-count codes: smoothing avoids 0/0; sizes keep their total; formula checked."""
    k, eps = 4, 1e-3
    vq = VectorQuantizer(2, k, decay=0.5, eps=eps, kmeans_init=False, dead_code_threshold=0)
    vq.double()
    vq.cluster_size.copy_(torch.tensor([0.0, 0.0, 3.0, 5.0]))
    vq.embed_sum.copy_(torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 3.0], [-5.0, 5.0]]))
    vq.codebook.copy_(torch.tensor([[50.0, 50.0], [60.0, 60.0], [1.0, 1.0], [-1.0, 1.0]]))
    x = torch.tensor([[1.0, 1.2], [-1.0, 0.8]], dtype=torch.float64)
    vq(x)
    n = torch.tensor([0.0, 0.0, 2.0, 3.0], dtype=torch.float64)  # 0.5 * old + 0.5 * counts
    m = torch.tensor([[0.0, 0.0], [0.0, 0.0], [2.0, 2.1], [-3.0, 2.9]], dtype=torch.float64)
    torch.testing.assert_close(vq.cluster_size, n)
    smoothed = (n + eps) / (n.sum() + k * eps) * n.sum()
    torch.testing.assert_close(smoothed.sum(), n.sum())
    torch.testing.assert_close(vq.codebook, m / smoothed[:, None])
    assert torch.isfinite(vq.codebook).all()
    # without smoothing the unused codes would be 0 / 0
    assert torch.isnan(m / n[:, None]).any()


# ------------------------------------------------------------------ k-means


def _blobs(n_per: int, centers: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    g = _gen(seed)
    pts = [c + std * torch.randn(n_per, centers.shape[1], generator=g) for c in centers]
    return torch.cat(pts)[torch.randperm(n_per * len(centers), generator=g)]


def test_kmeans_init_from_first_training_batch():
    centers = torch.tensor([[5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    x = _blobs(50, centers, 0.3, seed=12)
    torch.manual_seed(0)
    vq = VectorQuantizer(2, 4, kmeans_init=True, kmeans_iters=10)
    before = vq.codebook.clone()
    vq.eval()(x)  # eval: no initialisation, no change
    assert torch.equal(vq.codebook, before) and vq.initted.item() == 0
    vq.train()(x)
    assert vq.initted.item() == 1
    # every centre is matched by one code (up to permutation)
    dist = torch.cdist(centers, vq.codebook)
    assert torch.all(dist.min(1).values < 0.2)
    assert sorted(dist.argmin(1).tolist()) == [0, 1, 2, 3]
    # EMA statistics consistent with the k-means clusters (50 points each)
    torch.testing.assert_close(vq.cluster_size.sort().values, torch.full((4,), 50.0))
    # a second batch does not re-initialise: the codebook moves only by the EMA step
    cb = vq.codebook.clone()
    vq(x)
    assert (vq.codebook - cb).abs().max() < 0.05


def test_kmeans_function_improves_on_random_start():
    x = _blobs(40, torch.randn(6, 3, generator=_gen(13)) * 4, 0.5, seed=14)
    g = _gen(15)
    start = x[torch.randperm(x.shape[0], generator=_gen(15))[:6]]
    centroids, counts = kmeans(x, 6, iters=10, generator=g)

    def inertia(c: torch.Tensor) -> float:
        return float(torch.cdist(x, c).min(1).values.pow(2).sum())

    assert inertia(centroids) < inertia(start)
    assert counts.sum().item() == x.shape[0]
    assert torch.equal(counts, torch.bincount(nearest_code(x, centroids), minlength=6).float())
    # fewer points than codes: still K centroids, empty ones with count 0
    c2, n2 = kmeans(x[:3], 6, iters=3)
    assert c2.shape == (6, 3) and n2.sum().item() == 3


# ------------------------------------------------------------------ dead codes


def test_dead_code_threshold_small_batches_do_not_restart_unlucky_codes():
    """64 codes, batches of 16 vectors: every batch leaves >= 48 codes unused, yet no code is
    restarted, because the threshold is relative to the expected count N/K and uses the EMA.
    An absolute threshold (EnCodec's 2) would declare every code dead at every step."""
    k, d = 64, 4
    torch.manual_seed(16)
    codebook = torch.randn(k, d) * 5
    vq = VectorQuantizer(d, k, kmeans_init=False, decay=0.99, dead_code_threshold=0.05)
    vq.codebook.copy_(codebook)
    vq.embed_sum.copy_(codebook)
    g = _gen(17)
    for _ in range(300):
        idx = torch.randint(0, k, (16,), generator=g)
        out = vq(codebook[idx] + 0.01 * torch.randn(16, d, generator=g))
        assert out.indices.unique().numel() <= 16
    assert vq.usage()["restarted_codes"] == 0
    assert vq.usage()["used_fraction"] == 1.0
    assert torch.all(vq.cluster_size < 2.0)  # what an absolute threshold of 2 would restart


def test_dead_code_truly_dead_code_is_restarted():
    k, d = 8, 2
    torch.manual_seed(18)
    vq = VectorQuantizer(d, k, kmeans_init=False, decay=0.99, dead_code_threshold=0.05)
    codebook = torch.randn(k, d)
    codebook[3] = torch.tensor([1000.0, 1000.0])  # far from all data: never chosen
    vq.codebook.copy_(codebook)
    vq.embed_sum.copy_(codebook)
    g = _gen(19)
    steps = 0
    while vq.usage()["restarted_codes"] == 0 and steps < 1000:
        vq(torch.randn(32, d, generator=g))
        steps += 1
    # dead when 0.99^t (its pseudo-count 1, decaying) < 0.05 * expected, where the expected
    # count sum/K = (32 - 24 * 0.99^t) / 8 rises from 1 to N/K = 4
    assert steps == math.ceil(math.log(0.2 / 1.15) / math.log(0.99))  # 175
    assert vq.codebook[3].abs().max() < 10  # moved onto the data
    assert vq.cluster_size[3] > 0.05 * vq.cluster_size.sum() / k
    assert vq.usage()["restarted_codes"] == 1


def test_dead_code_restart_gradient_codebook():
    """Restarts also work when the codebook is an nn.Parameter (ema=False), and backward runs."""
    torch.manual_seed(20)
    vq = VectorQuantizer(2, 4, ema=False, kmeans_init=False, decay=0.5)
    with torch.no_grad():
        vq.codebook[2] = 500.0
    for _ in range(30):
        out = vq(torch.randn(16, 2, requires_grad=True))
        out.loss.backward()
    assert vq.codebook.detach()[2].abs().max() < 10
    assert vq.codebook.grad is not None


# ------------------------------------------------------------------ usage


def test_usage_statistics_on_constructed_example():
    vq = VectorQuantizer(1, 4, kmeans_init=False).eval()
    vq.codebook.copy_(torch.tensor([[0.0], [10.0], [20.0], [30.0]]))
    b1 = vq(torch.tensor([[0.1], [0.2], [10.1], [9.9]]))  # codes 0, 0, 1, 1
    b2 = vq(torch.tensor([[-0.1], [0.3], [0.0], [-0.2]]))  # codes 0, 0, 0, 0
    torch.testing.assert_close(b1.perplexity, torch.tensor(2.0))
    torch.testing.assert_close(b2.perplexity, torch.tensor(1.0))
    u = vq.usage()
    # accumulated histogram (6, 2, 0, 0) / 8
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert u["entropy_bits"] == pytest.approx(h)
    assert u["perplexity"] == pytest.approx(2**h)
    assert u["entropy_fraction"] == pytest.approx(h / 2)
    assert u["used_fraction"] == 0.5
    assert u["mean_batch_perplexity"] == pytest.approx(1.5)
    assert u["num_vectors"] == 8 and u["num_batches"] == 2
    vq.reset_usage()
    u = vq.usage()
    assert u["num_vectors"] == 0 and u["used_fraction"] == 0 and math.isnan(u["entropy_bits"])


# ------------------------------------------------------------------ eval mode


def test_eval_mode_changes_no_buffers():
    torch.manual_seed(21)
    vq = VectorQuantizer(3, 16, kmeans_init=True).eval()
    rvq = ResidualVQ(3, 16, 3).eval()
    z = torch.randn(2, 50, 3, requires_grad=True)
    b_vq, b_rvq = _buffers(vq), _buffers(rvq)
    for _ in range(3):
        out = vq(z)
        (out.quantized.sum() + out.loss).backward()
        rvq(z)
        rvq.encode(z, 2)
    for before, after in ((b_vq, vq.state_dict()), (b_rvq, rvq.state_dict())):
        assert before.keys() == after.keys()
        for key in before:
            assert torch.equal(before[key], after[key]), key
    assert vq.usage()["num_batches"] == 3  # usage counters are not buffers


# ------------------------------------------------------------------ residual VQ


def test_rvq_residual_decreases_with_depth():
    torch.manual_seed(22)
    rvq = ResidualVQ(8, 32, 4, quantizer_dropout=False)
    z = torch.randn(600, 8, generator=_gen(23))
    rvq.train()(z)  # k-means initialises each stage on its residual
    rvq.eval()
    errors = [float((z - rvq.decode(rvq.encode(z, m))).pow(2).mean()) for m in range(1, 5)]
    assert all(a > b for a, b in zip([float(z.pow(2).mean())] + errors, errors, strict=False))
    assert errors[-1] < 0.5 * errors[0]


def test_rvq_quantizer_dropout():
    torch.manual_seed(24)
    rvq = ResidualVQ(4, 8, 4, quantizer_dropout=True, kmeans_init=False)
    z = torch.randn(2, 30, 4)
    depths = set()
    for _ in range(40):
        stage3 = rvq.layers[3].codebook.clone()
        out = rvq.train()(z)
        depth = out.indices.shape[-1]
        depths.add(depth)
        assert out.perplexity.shape == (depth,)
        if depth < 4:  # unused stages are not touched
            assert torch.equal(rvq.layers[3].codebook, stage3)
    assert depths == {1, 2, 3, 4}
    assert rvq.train()(z, n_q=2).indices.shape == (2, 30, 2)  # explicit depth: no dropout
    assert rvq.eval()(z).indices.shape == (2, 30, 4)  # eval: all stages
    with pytest.raises(ValueError):
        rvq(z, n_q=5)
    # one straight-through for the sum: the encoder gradient is the identity, not n_q times it
    zz = z.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(rvq.eval()(zz).quantized.sum(), zz)
    torch.testing.assert_close(grad, torch.ones_like(zz))


def test_encode_decode_round_trip():
    torch.manual_seed(25)
    z = torch.randn(3, 40, 6)
    vq = VectorQuantizer(6, 32)
    vq(z)
    vq.eval()
    idx = vq.encode(z)
    assert idx.shape == (3, 40)
    torch.testing.assert_close(vq.decode(idx), vq(z).quantized, rtol=0, atol=0)
    all_codes = torch.arange(32)
    assert torch.equal(vq.encode(vq.decode(all_codes)), all_codes)

    rvq = ResidualVQ(6, [32, 16, 8], 3)
    rvq.train()(z, n_q=3)
    rvq.eval()
    for m in (1, 2, 3):
        codes = rvq.encode(z, m)
        assert codes.shape == (3, 40, m)
        out = rvq(z, n_q=m)
        assert torch.equal(out.indices, codes)
        torch.testing.assert_close(rvq.decode(codes), out.quantized)


def test_bitrate_formula():
    assert bitrate_bps(50, 512) == pytest.approx(450.0)
    assert bitrate_bps(50, [1024, 1024]) == pytest.approx(1000.0)
    assert bitrate_bps(50, [1024] * 12) == pytest.approx(6000.0)  # DAC 16 kHz, really 6 kbps
    assert bitrate_bps(62.5, [8, 5, 5, 5]) == pytest.approx(62.5 * math.log2(1000))
    assert bitrate_bps(50, 1) == 0.0
    rvq = ResidualVQ(4, [1024, 256, 16], 3)
    assert rvq.bitrate_bps(25) == pytest.approx(25 * 22)
    assert rvq.bitrate_bps(25, n_q=2) == pytest.approx(25 * 18)
    with pytest.raises(ValueError):
        bitrate_bps(50, [0])


# ------------------------------------------------------------------ distributed (gloo, 2 ranks)


def _ddp_batches() -> torch.Tensor:
    return torch.randn(3, 64, 4, generator=_gen(30))


class _TinyVQAE(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = torch.nn.Linear(4, 4)
        self.rvq = ResidualVQ(4, 8, 2)
        self.dec = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, vqmod.VQOutput]:
        out = self.rvq(self.enc(x))
        return self.dec(out.quantized), out


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        # (a) plain EMA: each rank sees half of every batch
        batches = _ddp_batches()
        torch.manual_seed(1)
        vq = VectorQuantizer(4, 16, kmeans_init=False, dead_code_threshold=0)
        half = batches.shape[1] // world
        for b in batches:
            vq(b[rank * half:(rank + 1) * half])
        # (b) k-means init, dead-code restarts and quantizer dropout inside DDP; the ranks'
        # data and random states differ on purpose
        torch.manual_seed(100 + rank)
        model = torch.nn.ModuleDict({
            "enc": torch.nn.Linear(4, 4),
            "rvq": ResidualVQ(4, 8, 3, dead_code_threshold=0.5, decay=0.8),
        })
        with torch.no_grad():  # same initial weights on every rank
            for p in model.parameters():
                p.copy_(torch.linspace(-0.5, 0.5, p.numel()).view_as(p))
        ddp = torch.nn.parallel.DistributedDataParallel(model["enc"])
        depths = []
        for _ in range(6):
            z = ddp(torch.randn(20, 4) * (rank + 1))
            out = model["rvq"](z)
            depths.append(out.indices.shape[-1])
            (out.quantized.pow(2).mean() + out.loss).backward()
        # (c) the usual wrapping, DDP(model) with the quantizer inside (DDP also broadcasts
        # buffers from rank 0 before each forward): must run without hang or error
        wrapped = torch.nn.parallel.DistributedDataParallel(_TinyVQAE())
        for _ in range(3):
            x = torch.randn(10, 4)
            y, out = wrapped(x)
            ((y - x).pow(2).mean() + out.loss).backward()
        torch.save(
            {"vq": vq.state_dict(), "rvq": model["rvq"].state_dict(), "depths": depths,
             "restarts": sum(u["restarted_codes"] for u in model["rvq"].usage())},
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_ema_allreduce_and_identical_codebooks():
    """Under torchrun-style DDP (gloo, 2 CPU ranks): EMA statistics are all-reduced (2 x half
    batch == 1 x full batch) and k-means init, dead-code restarts and the dropout depth are
    decided on rank 0, so both ranks end with identical codebooks."""
    world = 2
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_ddp_worker, args=(world, str(Path(tmp) / "init"), tmp), nprocs=world)
        res = [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(world)]
    for key in res[0]["vq"]:
        assert torch.equal(res[0]["vq"][key], res[1]["vq"][key]), key
    for key in res[0]["rvq"]:
        assert torch.equal(res[0]["rvq"][key], res[1]["rvq"][key]), key
    assert res[0]["depths"] == res[1]["depths"]
    assert res[0]["restarts"] == res[1]["restarts"] > 0
    # single-process reference on the full batches
    torch.manual_seed(1)
    ref = VectorQuantizer(4, 16, kmeans_init=False, dead_code_threshold=0)
    for b in _ddp_batches():
        ref(b)
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(res[0]["vq"][key], value, rtol=1e-5, atol=1e-6)
