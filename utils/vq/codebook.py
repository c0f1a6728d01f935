"""The state a vector quantizer keeps, and how training moves it: :class:`Codebook`.

A codebook is ``K`` codes of dimension ``D`` plus the statistics that train them: the EMA of
every code's cluster size and (for an EMA codebook) of the sum of the vectors assigned to it, a
flag saying whether the k-means start has run, and a window of usage counts (perplexity, share of
codes used, dead-code restarts). The quantizers of :mod:`utils.vq.quantizers` build on it: they
decide *which* code each vector gets and what the loss is; this module decides how the codebook
changes afterwards.

Under ``torch.distributed`` the EMA statistics are all-reduced, and the k-means start and the
dead-code restarts are decided on rank 0 and broadcast, so every rank keeps an identical
codebook. Collectives are only issued in training mode.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from utils.distributed import all_reduce_sum, broadcast_from_rank0, is_rank0, world_size
from utils.vq.bits import code_entropy
from utils.vq.functional import _cluster_sums, kmeans

__all__ = ["Codebook"]


class Codebook(nn.Module):
    """``K`` codes of dimension ``D`` and their statistics: the state of a vector quantizer.

    It holds the buffers every quantizer checkpoint stores (``codebook``, ``cluster_size``,
    ``embed_sum`` with EMA, ``initted``) and updates them after each training forward, in this
    order: k-means initialisation on the first batch (if ``kmeans_init``), the EMA statistics
    from the assignments just made, then dead-code restarts. In eval mode no buffer changes;
    only the usage counters (plain attributes, not buffers) accumulate. It has no ``forward``:
    :class:`~utils.vq.quantizers.VectorQuantizer` extends it with one.

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
    ``e_k = m_k / N~_k``. With ``ema=False`` the codebook is an ``nn.Parameter`` trained by
    gradient, and only the cluster sizes are tracked (for the dead-code rule).

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        dim: vector dimension ``D``.
        num_codes: codebook size ``K``.
        ema: EMA codebook (True) or gradient-trained codebook (False).
        decay: EMA decay (also used for the cluster-size statistics of a gradient codebook).
        eps: Laplace smoothing constant.
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iters: Lloyd iterations of that k-means.
        dead_code_threshold: restart threshold relative to the expected count per code.
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

    @torch.no_grad()
    def _observe(self, indices: Tensor, z_flat: Tensor) -> Tensor:
        """Account for one forward's assignments; return the batch perplexity.

        In training mode the statistics move (EMA update, or the cluster sizes alone for a
        gradient codebook; then dead-code restarts); in every mode the usage window counts the
        codes.

        Args:
            indices: ``(N,)`` code of each vector.
            z_flat: the ``(N, D)`` vectors (detached).
        """
        counts = torch.bincount(indices, minlength=self.num_codes).to(self.codebook.dtype)
        if self.training:
            if self.ema:
                sums = _cluster_sums(indices, z_flat, self.num_codes)
                if world_size() > 1:
                    packed = all_reduce_sum(torch.cat([counts.unsqueeze(1), sums], 1))
                    counts, sums = packed[:, 0], packed[:, 1:]
                self._ema_update(counts, sums)
            else:
                all_reduce_sum(counts)
                self.cluster_size.lerp_(counts, 1.0 - self.decay)
            if self.dead_code_threshold > 0:
                self._restart_dead(z_flat)
        perplexity = 2 ** code_entropy(counts)
        self._record_usage(counts, perplexity)
        return perplexity
