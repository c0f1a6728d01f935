"""The vector quantizers' interface: :class:`VectorQuantizer` and the residual
:class:`ResidualVQ`, and what their ``forward`` returns (:class:`VQOutput`).

Everything here quantizes the **last** dimension of its input: a latent of shape ``[..., D]`` is
read as ``prod(...)`` vectors of dimension ``D`` (channel-last; a convolutional encoder's
``[B, C, H, W]`` must be permuted to ``[B, H, W, C]`` first). A quantizer picks the nearest code
of every vector, passes the gradient straight through to the encoder and returns the commitment
(and, for a gradient-trained codebook, the codebook) loss; the codebook's state and its updates
are those of :class:`~utils.vq.codebook.Codebook`, which :class:`VectorQuantizer` extends.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.distributed import broadcast_from_rank0
from utils.vq.bits import bitrate_bps
from utils.vq.codebook import Codebook
from utils.vq.functional import _StraightThroughCommit, nearest_code

__all__ = ["VQOutput", "VectorQuantizer", "ResidualVQ"]


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


class VectorQuantizer(Codebook):
    """Vector quantizer over the last dimension, with EMA or gradient-trained codebook.

    ``forward(z)`` with ``z`` of shape ``[..., dim]`` returns a :class:`VQOutput`. In training
    mode it also (in this order): initialises the codebook by k-means on the first batch (if
    ``kmeans_init``), updates the EMA statistics with the assignments it just made (if ``ema``),
    and restarts dead codes. In eval mode no buffer changes; only the usage counters (plain
    attributes, not buffers) accumulate. The codebook, its statistics, the dead-code rule and
    the EMA update are those of :class:`~utils.vq.codebook.Codebook` (``usage``,
    ``reset_usage`` and ``dead_mask`` come from there).

    With ``ema=True`` (default) ``loss`` is only the commitment term; with ``ema=False`` the
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
        super().__init__(dim, num_codes, ema=ema, decay=decay, eps=eps, kmeans_init=kmeans_init,
                         kmeans_iters=kmeans_iters, dead_code_threshold=dead_code_threshold)
        self.beta = beta

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_codes={self.num_codes}, ema={self.ema}, decay={self.decay}, "
            f"beta={self.beta}, kmeans_init={self.kmeans_init}, "
            f"dead_code_threshold={self.dead_code_threshold}"
        )

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

    # ---------------------------------------------------------------- forward
    def _quantize(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Shared body of forward: (quantized_ste, indices, commitment, codebook_loss, ppl)."""
        z_flat = self._flatten(z)
        if self.training and not bool(self.initted):
            self._kmeans_init(z_flat.detach())

        indices = nearest_code(z_flat.detach(), self.codebook.detach())
        quantized, commitment = _StraightThroughCommit.apply(z, indices, self.codebook.detach())
        if self.ema:
            codebook_loss = commitment.new_zeros(())
        else:
            codebook_loss = F.mse_loss(F.embedding(indices, self.codebook), z_flat.detach())

        perplexity = self._observe(indices, z_flat.detach())
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
