"""Speed of the EMA vector quantizer (training-mode forward + backward) against anchors.

Candidates, all on the same ``(N, D)`` input and a ``K``-code codebook, EMA decay 0.99,
straight-through gradient, measured interleaved (one call of each per round) so that load from
other processes hits them alike; the table reports medians:

* ``ours``: :class:`utils.vq.VectorQuantizer` (EMA, dead-code check on, k-means off so the first
  call is not special; the first calls are warm-up anyway);
* ``vqpt``: ``vector_quantize_pytorch.VectorQuantize`` (the pinned 1.32.0) with
  ``rotation_trick=False, kmeans_init=False, decay=0.99``;
* ``seed``: a faithful re-implementation of the seed notebook's ``VQEmbeddingEMA`` forward
  (one-hot assignment matrix, one-hot matmul for the EMA sums, buffers re-assigned each step);
* ``gemm``: the bare ``(N x D) @ (D x K)`` product, forward + backward (three GEMMs), the
  floor that any distance-based quantizer is compared with.

Run: ``python benchmarks/vq_speed.py [--repeats 60] [--quick]``. Prints a table and, last, one
JSON line with the ratios (targets: ``vqpt / ours >= 4`` and ``ours / gemm <= 3``).

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.vq import VectorQuantizer  # noqa: E402


class SeedVQEmbeddingEMA(nn.Module):
    """The seed notebook's ``VQEmbeddingEMA`` forward, re-implemented faithfully for timing.

    Same operations as the 2022 notebook: uniform(-1/512, 1/512) codebook buffer, ``addmm``
    distances including ``||x||^2``, argmin, ``F.one_hot`` assignment matrix, embedding lookup,
    EMA counts from the one-hot column sums, EMA sums from ``one_hot.T @ x``, buffers replaced
    (not updated in place), a codebook loss without gradient, commitment loss, straight-through
    output and a one-hot perplexity. Only the decay is set to 0.99 (the seed used 0.999) so all
    candidates run the same update; speed does not depend on it.

    Notebook: notebooks/02_vq_vae.ipynb
    """

    def __init__(self, n_embeddings: int, embedding_dim: int, commitment_cost: float = 0.25,
                 decay: float = 0.99, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.commitment_cost = commitment_cost
        self.decay = decay
        self.epsilon = epsilon
        init_bound = 1 / 512
        embedding = torch.empty(n_embeddings, embedding_dim).uniform_(-init_bound, init_bound)
        self.register_buffer("embedding", embedding)
        self.register_buffer("ema_count", torch.zeros(n_embeddings))
        self.register_buffer("ema_weight", self.embedding.clone())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Seed forward: (quantized, commitment_loss, codebook_loss, perplexity).

        Notebook: notebooks/02_vq_vae.ipynb
        """
        m, d = self.embedding.size()
        x_flat = x.detach().reshape(-1, d)
        distances = torch.addmm(
            torch.sum(self.embedding**2, dim=1) + torch.sum(x_flat**2, dim=1, keepdim=True),
            x_flat, self.embedding.t(), alpha=-2.0, beta=1.0,
        )
        indices = torch.argmin(distances.float(), dim=-1)
        encodings = F.one_hot(indices, m).float()
        quantized = F.embedding(indices, self.embedding)
        quantized = quantized.view_as(x)
        if self.training:
            self.ema_count = self.decay * self.ema_count + (1 - self.decay) * torch.sum(
                encodings, dim=0)
            n = torch.sum(self.ema_count)
            self.ema_count = (self.ema_count + self.epsilon) / (n + m * self.epsilon) * n
            dw = torch.matmul(encodings.t(), x_flat)
            self.ema_weight = self.decay * self.ema_weight + (1 - self.decay) * dw
            self.embedding = self.ema_weight / self.ema_count.unsqueeze(-1)
        codebook_loss = F.mse_loss(x.detach(), quantized)
        e_latent_loss = F.mse_loss(x, quantized.detach())
        commitment_loss = self.commitment_cost * e_latent_loss
        quantized = x + (quantized - x).detach()
        avg_probs = torch.mean(encodings, dim=0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        return quantized, commitment_loss, codebook_loss, perplexity


def make_candidates(n: int, d: int, k: int) -> dict[str, Callable[[], None]]:
    """Build one zero-argument step function per candidate (forward + backward).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    from vector_quantize_pytorch import VectorQuantize

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=gen)
    grad_q = torch.randn(n, d, generator=gen)
    one = torch.ones(())

    ours = VectorQuantizer(d, k, ema=True, decay=0.99, kmeans_init=False).train()
    vqpt = VectorQuantize(dim=d, codebook_size=k, decay=0.99, rotation_trick=False,
                          kmeans_init=False, commitment_weight=0.25).train()
    seed = SeedVQEmbeddingEMA(k, d, decay=0.99).train()
    w = torch.randn(d, k, generator=gen, requires_grad=True)
    grad_y = torch.randn(n, k, generator=gen)

    def leaf(shape_like: Tensor) -> Tensor:
        return shape_like.clone().requires_grad_(True)

    def step_ours() -> None:
        z = leaf(x)
        out = ours(z)
        torch.autograd.backward([out.quantized, out.loss], [grad_q, one])

    def step_vqpt() -> None:
        z = leaf(x).unsqueeze(0)
        q, _, loss = vqpt(z)
        torch.autograd.backward([q, loss.sum()], [grad_q.unsqueeze(0), one])

    def step_seed() -> None:
        z = leaf(x)
        q, commitment, codebook, _ = seed(z)
        torch.autograd.backward([q, commitment + codebook], [grad_q, one])

    def step_gemm() -> None:
        a = leaf(x)
        w.grad = None
        y = a @ w
        y.backward(grad_y)

    return {"ours": step_ours, "vqpt": step_vqpt, "seed": step_seed, "gemm": step_gemm}


def measure(
    cands: dict[str, Callable[[], None]], repeats: int, warmup: int
) -> dict[str, list[float]]:
    """Interleaved timing; returns all per-call milliseconds per candidate.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    for _ in range(warmup):
        for fn in cands.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in cands}
    for _ in range(repeats):
        for name, fn in cands.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def _ratios(t: dict[str, float]) -> dict[str, float]:
    return {
        "vqpt_over_ours": t["vqpt"] / t["ours"],
        "seed_over_ours": t["seed"] / t["ours"],
        "ours_over_gemm": t["ours"] / t["gemm"],
    }


def main() -> None:
    """Run the benchmark and print the table and the JSON line.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only the small size, 10 repeats")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    sizes = [(4096, 64, 512), (16384, 128, 1024)]
    repeats = args.repeats
    if args.quick:
        sizes, repeats = sizes[:1], 10

    result: dict[str, object] = {
        "torch": torch.__version__, "threads": 2, "repeats": repeats,
        "loadavg_1min_start": round(os.getloadavg()[0], 2),
    }
    head = f"{'N':>6} {'D':>4} {'K':>5} {'stat':>6} | " + " ".join(
        f"{c:>8}" for c in ("ours", "vqpt", "seed", "gemm")
    ) + f" ms | {'vqpt/ours':>9} {'seed/ours':>9} {'ours/gemm':>9}"
    print(head)
    for n, d, k in sizes:
        times = measure(make_candidates(n, d, k), repeats, args.warmup)
        entry: dict[str, object] = {}
        for stat, fn in (("median", statistics.median), ("min", min)):
            t = {name: fn(v) for name, v in times.items()}
            r = _ratios(t)
            print(f"{n:>6} {d:>4} {k:>5} {stat:>6} | "
                  + " ".join(f"{t[c]:8.2f}" for c in ("ours", "vqpt", "seed", "gemm"))
                  + f"    | {r['vqpt_over_ours']:9.2f} {r['seed_over_ours']:9.2f} "
                  f"{r['ours_over_gemm']:9.2f}")
            entry[f"{stat}_ms"] = {name: round(v, 3) for name, v in t.items()}
            entry[stat] = {name: round(v, 3) for name, v in r.items()}
        med = _ratios({name: statistics.median(v) for name, v in times.items()})
        entry["target_vqpt_over_ours_ge_4"] = med["vqpt_over_ours"] >= 4.0
        entry["target_ours_over_gemm_le_3"] = med["ours_over_gemm"] <= 3.0
        result[f"N{n}_D{d}_K{k}"] = entry
    result["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    print("ratios from medians (targets: vqpt/ours >= 4, ours/gemm <= 3); min rows show the "
          "least-disturbed call. Other processes on the machine inflate medians: see loadavg.")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
