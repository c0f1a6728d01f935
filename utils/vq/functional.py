"""The stateless pieces of vector quantization: nearest code, the one-hot reference, k-means, the
per-code sums, and the fused straight-through + commitment autograd node.

Everything works on flat ``(N, D)`` vectors and a ``(K, D)`` codebook. The nearest code is found
by squared L2 distance in the expanded form ``||x||^2 - 2 x.e + ||e||^2`` with one ``addmm``
(the ``||x||^2`` term is the same for every code and is dropped, which also avoids cancellation
when ``||x||`` is large), in row blocks so the ``(N, K)`` distance matrix stays small.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["nearest_code", "onehot_quantize", "kmeans"]


# Distances are computed in row blocks of at most this many elements (float32: 8 MiB): this bounds
# the memory of the (N, K) distance matrix for long inputs, and the min() pass reads a block that
# is partly still in cache. On our 2-core CPUs, at N=16384, K=1024, 4-8 MiB blocks gave ~20%
# lower undisturbed times than 16-64 MiB ones; 8 MiB keeps N=4096, K=512 in one block (every
# extra kernel launch costs a thread synchronisation, which is expensive on a loaded machine).
_BLOCK_ELEMS = 1 << 21


@torch.no_grad()
def nearest_code(z_flat: Tensor, codebook: Tensor) -> Tensor:
    """Index of the nearest code (squared L2) for each row of ``z_flat``.

    Uses the expanded square: ``argmin_k ||x||^2 - 2 x.e_k + ||e_k||^2``. The ``||x||^2`` term
    does not depend on ``k`` and is dropped, so one ``addmm`` (bias ``||e||^2``, ``alpha=-2``)
    gives everything the argmin needs. Long inputs are processed in row blocks so the distance
    matrix never exceeds ``_BLOCK_ELEMS`` elements. No gradient is recorded.

    Args:
        z_flat: vectors, shape ``(N, D)``.
        codebook: codes, shape ``(K, D)``, same dtype as ``z_flat``.

    Returns:
        ``(N,)`` int64 indices into ``codebook``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    if z_flat.dim() != 2 or codebook.dim() != 2 or z_flat.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"nearest_code expects (N, D) and (K, D); got {tuple(z_flat.shape)} and "
            f"{tuple(codebook.shape)}"
        )
    n, k = z_flat.shape[0], codebook.shape[0]
    # ||e_k||^2 as K batched 1xD @ Dx1 products: one kernel instead of mul + sum (each extra
    # threaded kernel costs a thread synchronisation, slow when other processes load the CPU)
    e_sq = torch.bmm(codebook.unsqueeze(1), codebook.unsqueeze(2)).view(k)
    cb_t = codebook.t()
    block = max(1, _BLOCK_ELEMS // max(k, 1))
    # ``min(dim).indices`` returns the first minimum like ``argmin`` but runs ~2-3x faster on
    # CPU (torch 2.13), and the argmin is as long as the GEMM here.
    if n <= block:
        return torch.addmm(e_sq, z_flat, cb_t, alpha=-2.0).min(1).indices
    out = torch.empty(n, dtype=torch.long, device=z_flat.device)
    buf = torch.empty(block, k, dtype=z_flat.dtype, device=z_flat.device)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d = torch.addmm(e_sq, z_flat[start:stop], cb_t, alpha=-2.0, out=buf[: stop - start])
        out[start:stop] = d.min(1).indices
    return out


def onehot_quantize(z_flat: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor]:
    """Reference quantizer in the seed's one-hot formulation: ``one_hot(argmin d) @ codebook``.

    This is how the seed README describes vector quantization (and how the seed computed its EMA
    statistics): build the ``(N, K)`` one-hot assignment matrix and multiply it with the
    ``(K, D)`` codebook. It is mathematically the same as the row lookup ``codebook[indices]``
    that :class:`VectorQuantizer` uses, but costs an extra ``N x K x D`` matmul and an ``N x K``
    matrix, so it is kept only as a didactic reference (the tests check both agree).

    Args:
        z_flat: vectors, shape ``(N, D)``.
        codebook: codes, shape ``(K, D)``.

    Returns:
        ``(quantized, indices)`` with shapes ``(N, D)`` and ``(N,)``. ``quantized`` is
        differentiable with respect to ``codebook`` (not to ``z_flat``).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    d = (
        z_flat.detach().pow(2).sum(1, keepdim=True)
        - 2.0 * z_flat.detach() @ codebook.detach().t()
        + codebook.detach().pow(2).sum(1)
    )
    indices = d.argmin(1)
    onehot = F.one_hot(indices, codebook.shape[0]).to(codebook.dtype)
    return onehot @ codebook, indices


@torch.no_grad()
def kmeans(
    x: Tensor, num_codes: int, iters: int = 10, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on the rows of ``x`` (used to initialise codebooks).

    Centroids start at ``num_codes`` distinct random rows (drawn with replacement when there are
    fewer rows than codes). An empty cluster keeps its previous centroid; such codes end with a
    count of zero, so the dead-code restart of :class:`VectorQuantizer` re-seeds them later.

    Args:
        x: data, shape ``(N, D)``, ``N >= 1``.
        num_codes: number of centroids ``K``.
        iters: Lloyd iterations (assignment + mean update).
        generator: optional random generator for the initial draw.

    Returns:
        ``(centroids, counts)``: ``(K, D)`` centroids and the ``(K,)`` number of rows assigned to
        each (in ``x.dtype``).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    n = x.shape[0]
    if x.dim() != 2 or n == 0:
        raise ValueError(f"kmeans needs a non-empty (N, D) tensor, got {tuple(x.shape)}")
    if n >= num_codes:
        start = torch.randperm(n, generator=generator, device="cpu")[:num_codes]
    else:
        start = torch.randint(0, n, (num_codes,), generator=generator, device="cpu")
    centroids = x[start.to(x.device)].clone()
    for _ in range(iters):
        assign = nearest_code(x, centroids)
        counts = torch.bincount(assign, minlength=num_codes).to(x.dtype)
        sums = _cluster_sums(assign, x, num_codes)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)
    assign = nearest_code(x, centroids)
    counts = torch.bincount(assign, minlength=num_codes).to(x.dtype)
    return centroids, counts


def _cluster_sums(indices: Tensor, x: Tensor, num_codes: int) -> Tensor:
    """``sums[k] = sum of the rows of x assigned to code k``, shape ``(K, D)``.

    Computed as a sparse ``(K, N)`` assignment matrix (one entry per column) times ``x``. This
    is the one-hot product of the seed without materialising the one-hot matrix. On our 2-core
    CPUs it is also steadier than ``index_add_``: both take ~0.1-0.4 ms on an idle machine at
    N=4096, D=64, but ``index_add_`` (which runs the ``scatter_add_`` kernel) took 60-100 ms per
    call while other processes loaded the CPU, whereas the sparse product stayed at ~0.5 ms
    (measured interleaved, torch 2.13).
    """
    n = x.shape[0]
    coo = torch.stack([indices, torch.arange(n, device=indices.device)])
    assign = torch.sparse_coo_tensor(coo, x.new_ones(n), (num_codes, n), check_invariants=False)
    return torch.sparse.mm(assign, x)


class _StraightThroughCommit(torch.autograd.Function):
    """Code lookup with straight-through gradient and the commitment loss, as one autograd node.

    Forward: ``q = codebook[indices]`` (shape of ``z``) and ``c = mean((z - q)^2)``.
    Backward: ``dz = dq + dc * 2 (z - q) / numel``, i.e. the identity for ``q`` (straight-through)
    plus the exact gradient of the commitment term. Fusing both saves a pass over the data and
    the autograd bookkeeping of separate ``mse_loss`` / ``z + (q - z).detach()`` nodes.
    """

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, indices: Tensor, codebook: Tensor
    ) -> tuple[Tensor, Tensor]:
        q = F.embedding(indices, codebook).view(z.shape)
        if q.dtype != z.dtype:
            q = q.to(z.dtype)
        diff = z - q
        flat = diff.reshape(-1)
        commitment = torch.dot(flat, flat) / max(flat.numel(), 1)
        ctx.save_for_backward(diff)
        return q, commitment

    @staticmethod
    def backward(
        ctx: Any, grad_q: Tensor, grad_commitment: Tensor
    ) -> tuple[Tensor, None, None]:
        (diff,) = ctx.saved_tensors
        scale = grad_commitment * (2.0 / max(diff.numel(), 1))
        return torch.addcmul(grad_q, diff, scale), None, None

