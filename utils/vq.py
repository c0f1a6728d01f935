"""Vector quantizers: plain / EMA codebooks, residual VQ with quantizer dropout, bit rates.

Everything here quantizes the **last** dimension of its input: a latent of shape ``[..., D]`` is
read as ``prod(...)`` vectors of dimension ``D``. A convolutional encoder that produces
``[B, C, H, W]`` must therefore be permuted to ``[B, H, W, C]`` first. The 2022 seed notebook
(``vq_VAE_for_Melspectrogram.ipynb``, defect "VQ latent layout bug") reshaped the channel-first
tensor with ``reshape(-1, D)`` and, because ``H * W`` happened to equal ``D``, silently quantized
each channel's whole 32x8 map instead of the D-dimensional vector at each time-frequency
position. :class:`VectorQuantizer` refuses inputs whose last dimension is not ``dim``.

Maths (van den Oord et al. 2017, with the usual refinements):

* nearest code by squared L2 distance, computed in the expanded form
  ``||x||^2 - 2 x.e + ||e||^2`` with one ``addmm``. The ``||x||^2`` term is the same for every
  code, so the argmin only needs ``||e||^2 - 2 x.e`` (this also avoids cancellation when
  ``||x||`` is large);
* straight-through estimator: the forward pass outputs the code, the backward pass hands the
  gradient to the encoder unchanged;
* commitment loss ``beta * ||x - sg[e]||^2`` (beta = 0.25) and, for a gradient-trained
  codebook, the codebook loss ``||sg[x] - e||^2``;
* EMA codebook (decay 0.99) with Laplace smoothing of the cluster sizes, updated in place from
  ``bincount`` counts and per-code sums (a sparse assignment matrix, not the seed's dense
  one-hot). With EMA the codebook is a buffer, so there is **no** codebook loss term (the seed
  added one that had no gradient);
* k-means initialisation from the first training batch, dead-code restart with a threshold
  relative to the expected count per code, and usage statistics (perplexity, share of codes
  used, entropy in bits);
* residual VQ with quantizer dropout, so one model serves a ladder of bit rates
  (``bitrate_bps``).

Under ``torch.distributed`` (e.g. DDP with gloo on CPU) the EMA statistics are all-reduced, and
k-means initialisation, dead-code restarts and the quantizer-dropout depth are decided on rank 0
and broadcast, so every rank keeps an identical codebook. Collectives are only issued in training
mode; evaluation never communicates (it may run on one rank only).

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.distributed import all_reduce_sum, broadcast_from_rank0, is_rank0, world_size

__all__ = [
    "VQOutput",
    "VectorQuantizer",
    "ResidualVQ",
    "nearest_code",
    "onehot_quantize",
    "kmeans",
    "bitrate_bps",
    "code_entropy",
    "codebook_usage",
]

# Distances are computed in row blocks of at most this many elements (float32: 8 MiB): this bounds
# the memory of the (N, K) distance matrix for long inputs, and the min() pass reads a block that
# is partly still in cache. On our 2-core CPUs, at N=16384, K=1024, 4-8 MiB blocks gave ~20%
# lower undisturbed times than 16-64 MiB ones; 8 MiB keeps N=4096, K=512 in one block (every
# extra kernel launch costs a thread synchronisation, which is expensive on a loaded machine).
_BLOCK_ELEMS = 1 << 21


class VQOutput(NamedTuple):
    """What a quantizer's ``forward`` returns.

    Attributes:
        quantized: the quantized latent, same shape as the input; straight-through, i.e. its
            gradient flows to the input unchanged.
        indices: code indices, shape ``input.shape[:-1]`` for :class:`VectorQuantizer` and
            ``input.shape[:-1] + (n_q,)`` for :class:`ResidualVQ`.
        loss: the term to add to the training loss (``beta * commitment_loss`` plus, without EMA,
            ``codebook_loss``; summed over the stages of a residual VQ).
        commitment_loss: unweighted ``mean((x - sg[e])^2)`` (summed over residual stages).
        codebook_loss: ``mean((sg[x] - e)^2)`` with a gradient to the codebook when the codebook
            is trained by gradient; a zero tensor for EMA codebooks, which get no loss term.
        perplexity: ``exp(entropy)`` of the code histogram of this batch (all ranks in
            distributed training); shape ``()`` for a single quantizer, ``(n_q,)`` for residual VQ.

    Notebook: notebooks/02_vq_vae.ipynb
    """

    quantized: Tensor
    indices: Tensor
    loss: Tensor
    commitment_loss: Tensor
    codebook_loss: Tensor
    perplexity: Tensor


# --------------------------------------------------------------------------------------------
# functional pieces
# --------------------------------------------------------------------------------------------


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


def bitrate_bps(frames_per_second: float, codebook_sizes: int | Sequence[int]) -> float:
    """Bit rate of a VQ code stream: ``frames_per_second * sum(log2 K_i)``.

    Each latent frame sends one index per codebook (one per residual stage), i.e. ``log2 K_i``
    bits for codebook ``i``. This is the rate without entropy coding; the empirical code entropy
    (:meth:`VectorQuantizer.usage`) bounds what entropy coding could save.

    Args:
        frames_per_second: latent frames per second of audio (e.g. 16000 / hop / downsampling).
        codebook_sizes: one codebook size or the sizes of the residual stages in use.

    Returns:
        Bits per second.

    Example:
        ``bitrate_bps(50, [1024, 1024])`` is 1000.0 (two 10-bit codes per 20 ms frame).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    sizes = [codebook_sizes] if isinstance(codebook_sizes, int) else list(codebook_sizes)
    if frames_per_second < 0:
        raise ValueError(f"frames_per_second must be >= 0, got {frames_per_second}")
    if any(int(k) < 1 for k in sizes):
        raise ValueError(f"codebook sizes must be >= 1, got {sizes}")
    return float(frames_per_second) * sum(math.log2(int(k)) for k in sizes)


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


def code_entropy(counts: Tensor) -> Tensor:
    """Entropy in **bits** of code histograms along the last axis (0 log 0 = 0; 0 if empty).

    The one definition of codebook entropy in the collection: the perplexity is ``2**entropy``
    (the number of equally used codes with the same entropy), and ``entropy / log2 K`` is the
    share of the codebook's capacity the codes carry.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        counts: Code counts ``[..., K]`` (any non-negative numbers).

    Returns:
        Entropies ``[...]`` in bits.
    """
    counts = counts.to(torch.float64 if counts.dtype == torch.float64 else torch.float32)
    p = counts / counts.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    return -torch.special.xlogy(p, p).sum(dim=-1) / math.log(2)


def codebook_usage(counts: Tensor) -> dict[str, list[float]]:
    """Per-stage usage of code counts ``[stages, K]``: share used, perplexity, entropy (bits).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        counts: ``[stages, K]`` number of times each code was chosen (or transmitted).

    Returns:
        ``{"codebook_used_fraction": [...], "codebook_perplexity": [...],
        "codebook_entropy_bits": [...]}``, one value per stage.
    """
    ent = code_entropy(counts)
    return {
        "codebook_used_fraction": [round(float(u), 4) for u in (counts > 0).float().mean(1)],
        "codebook_perplexity": [round(float(v), 1) for v in 2**ent],
        "codebook_entropy_bits": [round(float(v), 3) for v in ent],
    }


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


# --------------------------------------------------------------------------------------------
# VectorQuantizer
# --------------------------------------------------------------------------------------------


class VectorQuantizer(nn.Module):
    """Vector quantizer over the last dimension, with EMA or gradient-trained codebook.

    ``forward(z)`` with ``z`` of shape ``[..., dim]`` returns a :class:`VQOutput`. In training
    mode it also (in this order): initialises the codebook by k-means on the first batch (if
    ``kmeans_init``), updates the EMA statistics with the assignments it just made (if ``ema``),
    and restarts dead codes. In eval mode no buffer changes; only the usage counters (plain
    attributes, not buffers) accumulate.

    **Dead codes.** A code is dead when its EMA cluster size falls below
    ``dead_code_threshold * expected``, where ``expected = sum(cluster sizes) / K`` is the
    EMA of the batch size divided by ``K``, i.e. the count a code would get if all were used
    equally. Being relative, the rule behaves the same for a batch of 64 vectors and of 64k
    vectors (an absolute threshold such as EnCodec's 2 would declare every code dead at every
    step once ``N / K < 2``), and being an EMA over about ``1 / (1 - decay)`` steps it does not
    fire for a code that merely missed a few small batches. With the defaults a code that
    was used at the average rate has to go unused for ``log(0.05) / log(0.99)`` ~ 300 steps.
    Dead codes are replaced by random vectors of the current batch, given the expected count.
    ``dead_code_threshold=0`` switches restarts off.

    **EMA.** With ``ema=True`` (default) the codebook is a buffer updated as
    ``N_k <- decay N_k + (1 - decay) n_k``, ``m_k <- decay m_k + (1 - decay) sum_{x -> k} x``,
    Laplace-smoothed sizes ``N~_k = (N_k + eps) / (sum N + K eps) * sum N`` and
    ``e_k = m_k / N~_k``. ``loss`` is then only the commitment term. With ``ema=False`` the
    codebook is an ``nn.Parameter`` and ``loss`` also contains the codebook loss.

    Args:
        dim: vector dimension ``D`` (the size of the last input dimension).
        num_codes: codebook size ``K``.
        ema: EMA codebook (True) or gradient-trained codebook (False).
        decay: EMA decay (also used for the cluster-size statistics of a gradient codebook).
        eps: Laplace smoothing constant.
        beta: commitment weight.
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iters: Lloyd iterations of that k-means.
        dead_code_threshold: restart threshold relative to the expected count per code.

    Notebook: notebooks/02_vq_vae.ipynb
    """

    codebook: Tensor
    cluster_size: Tensor
    embed_sum: Tensor
    initted: Tensor

    def __init__(
        self,
        dim: int,
        num_codes: int,
        *,
        ema: bool = True,
        decay: float = 0.99,
        eps: float = 1e-5,
        beta: float = 0.25,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.05,
    ) -> None:
        super().__init__()
        if dim < 1 or num_codes < 1:
            raise ValueError(f"dim and num_codes must be >= 1, got {dim}, {num_codes}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be >= 0, got {dead_code_threshold}")
        self.dim = dim
        self.num_codes = num_codes
        self.ema = ema
        self.decay = decay
        self.eps = eps
        self.beta = beta
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.dead_code_threshold = dead_code_threshold

        init = torch.randn(num_codes, dim)
        if ema:
            self.register_buffer("codebook", init)
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)  # type: ignore[assignment]
        # one pseudo-observation per code, so codebook == embed_sum / cluster_size from the start
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("initted", torch.tensor(0.0 if kmeans_init else 1.0))
        self.reset_usage()

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_codes={self.num_codes}, ema={self.ema}, decay={self.decay}, "
            f"beta={self.beta}, kmeans_init={self.kmeans_init}, "
            f"dead_code_threshold={self.dead_code_threshold}"
        )

    # ---------------------------------------------------------------- usage statistics
    def reset_usage(self) -> None:
        """Start a new usage window (e.g. at the start of an epoch).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        self._usage_counts: Tensor | None = None
        self._usage_batches = 0
        self._usage_perplexity_sum: Tensor | float = 0.0
        self._usage_restarted = 0

    def _record_usage(self, counts: Tensor, perplexity: Tensor) -> None:
        if self._usage_counts is None or self._usage_counts.device != counts.device:
            self._usage_counts = torch.zeros(counts.shape, dtype=torch.float64,
                                             device=counts.device)
        self._usage_counts.add_(counts)
        self._usage_batches += 1
        self._usage_perplexity_sum = self._usage_perplexity_sum + perplexity.detach()

    def usage(self) -> dict[str, float]:
        """Code usage since the last :meth:`reset_usage` (training and eval forwards).

        Returns:
            A dict with ``perplexity`` (exp of the entropy of the accumulated code histogram),
            ``entropy_bits`` (that entropy in bits), ``entropy_fraction`` (``entropy_bits /
            log2 K``, DAC's "effective percentage"), ``used_fraction`` (share of the ``K``
            codes used at least once), ``mean_batch_perplexity``, ``num_vectors``,
            ``num_batches``, ``restarted_codes`` (dead-code restarts in the window) and
            ``dead_codes`` (codes currently under the restart threshold). With no forward in
            the window the entropy-based values are NaN.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        k = self.num_codes
        nan = float("nan")
        counts = self._usage_counts
        total = float(counts.sum()) if counts is not None else 0.0
        if counts is None or total == 0:
            entropy_bits, used = nan, 0.0
        else:
            entropy_bits = float(code_entropy(counts))
            used = float((counts > 0).double().mean())
        return {
            "perplexity": 2**entropy_bits,
            "entropy_bits": entropy_bits,
            "entropy_fraction": entropy_bits / math.log2(k) if k > 1 else nan,
            "used_fraction": used,
            "mean_batch_perplexity": (
                float(self._usage_perplexity_sum) / self._usage_batches
                if self._usage_batches
                else nan
            ),
            "num_vectors": total,
            "num_batches": float(self._usage_batches),
            "restarted_codes": float(self._usage_restarted),
            "dead_codes": float(self.dead_mask().sum()),
        }

    @torch.no_grad()
    def dead_mask(self) -> Tensor:
        """Boolean ``(K,)`` mask of codes under the dead-code threshold.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        expected = self.cluster_size.sum() / self.num_codes
        return self.cluster_size < self.dead_code_threshold * expected

    # ---------------------------------------------------------------- encode / decode
    def _flatten(self, z: Tensor) -> Tensor:
        if z.dim() < 1 or z.shape[-1] != self.dim:
            raise ValueError(
                f"VectorQuantizer(dim={self.dim}) quantizes the LAST dimension, got input of shape "
                f"{tuple(z.shape)}; move the channel axis last first (e.g. z.permute(0, 2, 3, 1) "
                "for NCHW), instead of reshaping a channel-first tensor"
            )
        z_flat = z.reshape(-1, self.dim)
        if z_flat.dtype != self.codebook.dtype:
            z_flat = z_flat.to(self.codebook.dtype)
        return z_flat

    @torch.no_grad()
    def encode(self, z: Tensor) -> Tensor:
        """Code indices of ``z`` (shape ``[..., dim]`` -> ``[...]``); changes no state.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        z_flat = self._flatten(z)
        return nearest_code(z_flat, self.codebook.detach()).view(z.shape[:-1])

    def decode(self, indices: Tensor) -> Tensor:
        """Codes for ``indices`` (shape ``[...]`` -> ``[..., dim]``).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return F.embedding(indices, self.codebook)

    # ---------------------------------------------------------------- training-time updates
    @torch.no_grad()
    def _kmeans_init(self, z_flat: Tensor) -> None:
        if is_rank0():
            centroids, counts = kmeans(z_flat, self.num_codes, self.kmeans_iters)
        else:
            centroids = torch.empty_like(self.codebook)
            counts = torch.empty_like(self.cluster_size)
        broadcast_from_rank0(centroids)
        broadcast_from_rank0(counts)
        self.codebook.copy_(centroids)
        self.cluster_size.copy_(counts)
        if self.ema:
            self.embed_sum.copy_(centroids * counts.unsqueeze(1))
        self.initted.fill_(1.0)

    @torch.no_grad()
    def _ema_update(self, counts: Tensor, sums: Tensor) -> None:
        w = 1.0 - self.decay  # lerp_: decay * old + (1 - decay) * new, in one in-place pass
        self.cluster_size.lerp_(counts, w)
        self.embed_sum.lerp_(sums, w)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps).mul_(n / (n + self.num_codes * self.eps))
        torch.div(self.embed_sum, smoothed.unsqueeze(1), out=self.codebook)

    @torch.no_grad()
    def _restart_dead(self, z_flat: Tensor) -> None:
        dead = self.dead_mask()
        n_dead = int(dead.sum())  # identical on every rank (cluster_size is all-reduced)
        if n_dead == 0:
            return
        if is_rank0():
            n = z_flat.shape[0]
            if n >= n_dead:
                pick = torch.randperm(n, device=z_flat.device)[:n_dead]
            else:
                pick = torch.randint(0, n, (n_dead,), device=z_flat.device)
            fresh = z_flat[pick].to(self.codebook.dtype)
        else:
            fresh = torch.empty(n_dead, self.dim, dtype=self.codebook.dtype,
                                device=self.codebook.device)
        broadcast_from_rank0(fresh)
        expected = self.cluster_size.sum() / self.num_codes
        self.codebook[dead] = fresh
        self.cluster_size[dead] = expected
        if self.ema:
            self.embed_sum[dead] = fresh * expected
        self._usage_restarted += n_dead

    # ---------------------------------------------------------------- forward
    def _quantize(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Shared body of forward: (quantized_ste, indices, commitment, codebook_loss, ppl)."""
        z_flat = self._flatten(z)
        training = self.training
        if training and not bool(self.initted):
            self._kmeans_init(z_flat.detach())

        indices = nearest_code(z_flat.detach(), self.codebook.detach())
        quantized, commitment = _StraightThroughCommit.apply(z, indices, self.codebook.detach())
        if self.ema:
            codebook_loss = commitment.new_zeros(())
        else:
            codebook_loss = F.mse_loss(F.embedding(indices, self.codebook), z_flat.detach())

        with torch.no_grad():
            counts = torch.bincount(indices, minlength=self.num_codes).to(self.codebook.dtype)
            if training:
                if self.ema:
                    sums = _cluster_sums(indices, z_flat.detach(), self.num_codes)
                    if world_size() > 1:
                        packed = all_reduce_sum(torch.cat([counts.unsqueeze(1), sums], 1))
                        counts, sums = packed[:, 0], packed[:, 1:]
                    self._ema_update(counts, sums)
                else:
                    all_reduce_sum(counts)
                    self.cluster_size.lerp_(counts, 1.0 - self.decay)
                if self.dead_code_threshold > 0:
                    self._restart_dead(z_flat.detach())
            perplexity = 2 ** code_entropy(counts)
            self._record_usage(counts, perplexity)
        return quantized, indices.view(z.shape[:-1]), commitment, codebook_loss, perplexity

    def forward(self, z: Tensor) -> VQOutput:
        """Quantize ``z`` of shape ``[..., dim]``.

        Args:
            z: latent vectors, channel-last.

        Returns:
            A :class:`VQOutput`; add ``out.loss`` to the training loss.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        quantized, indices, commitment, codebook_loss, perplexity = self._quantize(z)
        loss = self.beta * commitment
        if not self.ema:
            loss = loss + codebook_loss
        return VQOutput(quantized, indices, loss, commitment, codebook_loss, perplexity)


# --------------------------------------------------------------------------------------------
# ResidualVQ
# --------------------------------------------------------------------------------------------


class ResidualVQ(nn.Module):
    """Residual vector quantizer (SoundStream / EnCodec style) with quantizer dropout.

    Stage ``i`` quantizes what the stages before it left over: ``r_0 = z``,
    ``q_i = VQ_i(r_i)``, ``r_{i+1} = r_i - q_i``, and the output is ``sum_i q_i``. One
    straight-through estimator is applied to the sum (so the encoder gets the gradient once,
    not ``n_q`` times); every stage adds its own commitment loss on its residual.

    **Quantizer dropout.** In training mode, when ``forward`` is not given ``n_q``, a depth
    ``1..num_quantizers`` is drawn uniformly per batch (the same on every rank) and only that
    many stages are used, so the decoder learns to work at every depth and one model serves the
    whole ladder of bit rates ``bitrate_bps(fps, sizes[:n_q])``. Under DDP with ``ema=False``
    the unused stages' codebooks get no gradient: use ``find_unused_parameters=True``.

    Args:
        dim: vector dimension.
        num_codes: codebook size of every stage, or one size per stage.
        num_quantizers: number of stages.
        quantizer_dropout: draw a random depth per training batch.
        **vq_kwargs: passed to each :class:`VectorQuantizer` (``ema``, ``decay``, ``beta``,
            ``kmeans_init``, ``dead_code_threshold``, ...).

    Notebook: notebooks/02_vq_vae.ipynb
    """

    def __init__(
        self,
        dim: int,
        num_codes: int | Sequence[int],
        num_quantizers: int,
        *,
        quantizer_dropout: bool = True,
        **vq_kwargs: Any,
    ) -> None:
        super().__init__()
        if num_quantizers < 1:
            raise ValueError(f"num_quantizers must be >= 1, got {num_quantizers}")
        sizes = [num_codes] * num_quantizers if isinstance(num_codes, int) else list(num_codes)
        if len(sizes) != num_quantizers:
            raise ValueError(f"{len(sizes)} codebook sizes given for {num_quantizers} stages")
        self.dim = dim
        self.num_quantizers = num_quantizers
        self.quantizer_dropout = quantizer_dropout
        self.layers = nn.ModuleList(VectorQuantizer(dim, k, **vq_kwargs) for k in sizes)

    @property
    def codebook_sizes(self) -> list[int]:
        """Codebook size of each stage.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return [layer.num_codes for layer in self.layers]

    def bitrate_bps(self, frames_per_second: float, n_q: int | None = None) -> float:
        """Bit rate when the first ``n_q`` stages (default all) are sent.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return bitrate_bps(frames_per_second, self.codebook_sizes[: self._check_depth(n_q)])

    def _check_depth(self, n_q: int | None) -> int:
        if n_q is None:
            return self.num_quantizers
        if not 1 <= n_q <= self.num_quantizers:
            raise ValueError(f"n_q must be in 1..{self.num_quantizers}, got {n_q}")
        return int(n_q)

    def _draw_depth(self) -> int:
        depth = torch.randint(1, self.num_quantizers + 1, (1,))
        broadcast_from_rank0(depth)
        return int(depth)

    def forward(self, z: Tensor, n_q: int | None = None) -> VQOutput:
        """Quantize ``z`` (``[..., dim]``) with ``n_q`` stages.

        Args:
            z: latent vectors, channel-last.
            n_q: number of stages; ``None`` means a random depth per batch in training mode
                with quantizer dropout, and all stages otherwise.

        Returns:
            A :class:`VQOutput` with ``indices`` of shape ``[..., n_used]``, losses summed over
            the stages and a per-stage ``perplexity`` of shape ``(n_used,)``.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        if n_q is None and self.training and self.quantizer_dropout:
            depth = self._draw_depth()
        else:
            depth = self._check_depth(n_q)
        residual = z
        total = None
        indices, perplexities = [], []
        commitment = codebook_loss = loss = z.new_zeros(())
        for layer in self.layers[:depth]:
            q, idx, com, cbl, ppl = layer._quantize(residual)
            q = q.detach()
            total = q if total is None else total + q
            residual = residual - q
            indices.append(idx)
            perplexities.append(ppl)
            commitment = commitment + com
            codebook_loss = codebook_loss + cbl
            loss = loss + layer.beta * com + (0.0 if layer.ema else cbl)
        assert total is not None
        quantized = z + (total - z).detach()
        return VQOutput(
            quantized,
            torch.stack(indices, -1),
            loss,
            commitment,
            codebook_loss,
            torch.stack(perplexities),
        )

    @torch.no_grad()
    def encode(self, z: Tensor, n_q: int | None = None) -> Tensor:
        """Indices ``[..., n_q]`` of the first ``n_q`` stages (default all); changes no state.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        depth = self._check_depth(n_q)
        residual = z
        out = []
        for layer in self.layers[:depth]:
            idx = layer.encode(residual)
            residual = residual - layer.decode(idx).to(residual.dtype)
            out.append(idx)
        return torch.stack(out, -1)

    def decode(self, indices: Tensor) -> Tensor:
        """Sum of the codes of ``indices`` ``[..., m]`` (the first ``m`` stages) -> ``[..., dim]``.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        m = indices.shape[-1]
        self._check_depth(m)
        out = self.layers[0].decode(indices[..., 0])
        for i in range(1, m):
            out = out + self.layers[i].decode(indices[..., i])
        return out

    def usage(self) -> list[dict[str, float]]:
        """Per-stage :meth:`VectorQuantizer.usage`.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        return [layer.usage() for layer in self.layers]

    def reset_usage(self) -> None:
        """Reset the usage window of every stage.

        Notebook: notebooks/02_vq_vae.ipynb
        """
        for layer in self.layers:
            layer.reset_usage()
