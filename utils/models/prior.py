"""An autoregressive prior over a VQ-VAE's code sequences: what makes the codec generative.

A VQ-VAE trained alone has no prior worth sampling: its latents are indices, and indices
drawn uniformly decode to noise. van den Oord et al. (2017) fitted an autoregressive model
``p(k_1, ..., k_T) = Π_t p(k_t | k_<t)`` over the indices of the trained codec and sampled
*that*. :class:`CodePrior` is the small version for this collection: a GRU over the first
residual stage's indices (one of ``K`` codes per latent frame, 31.25 frames/s), optionally
conditioned on a word label, with the label dropped for a share of the training sequences so
that one network is both the conditional and the unconditional prior.

It also measures the codes: its cross-entropy in bits per index is what an entropy coder
driven by the prior would spend, against the fixed ``log2 K`` of the codec.

A prior belongs to one codec: :meth:`CodePrior.check_codec` compares a fingerprint of the
codec's first codebook stored at training time and refuses any other codec.

Notebook: notebooks/03_vae_vs_vqvae.ipynb
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from utils.checkpoint import CheckpointError, model_checkpoint, rebuild_model
from utils.errors import OptionError

__all__ = ["PriorConfig", "CodePrior", "MODEL_KIND", "codebook_fingerprint"]

#: Written into checkpoints; a checkpoint of another kind is refused with a clear error.
MODEL_KIND = "code-prior"


def codebook_fingerprint(codec: nn.Module) -> str:
    """A short hash of a codec's first codebook: which codec a prior's indices refer to.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Args:
        codec: A :class:`utils.models.vqvae.MelVQVAE`.

    Returns:
        16 hex digits of the SHA-256 of the stage-1 codebook (float32, CPU).
    """
    book = codec.quantizer.layers[0].codebook.detach().float().cpu().contiguous()
    return hashlib.sha256(book.numpy().tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class PriorConfig:
    """Hyper-parameters of :class:`CodePrior` (stored in every checkpoint).

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Attributes:
        num_codes: Codebook size K of the codec's first stage.
        words: Class names of the condition, in label order (empty: unconditional only).
        embed_dim: Size of the code and label embeddings.
        hidden: GRU units per layer.
        layers: GRU layers.
        dropout: Dropout on the embeddings, between GRU layers and before the output.
        label_dropout: Share of training sequences shown without their label (the
            unconditional prior is learnt by the same network).
        codec_fingerprint: :func:`codebook_fingerprint` of the codec whose codes it models.
    """

    num_codes: int = 256
    words: tuple[str, ...] = ()
    embed_dim: int = 64
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.2
    label_dropout: float = 0.2
    codec_fingerprint: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(self.words))
        for name in ("num_codes", "embed_dim", "hidden", "layers"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"--set {name}", f"must be at least 1, got {getattr(self, name)}")
        for name in ("dropout", "label_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise OptionError(f"--set {name}", f"must be in [0, 1), got {getattr(self, name)}")


class CodePrior(nn.Module):
    """A GRU language model over code indices, optionally conditioned on a word.

    Input at step ``t``: the embedding of the previous index (a start token at ``t = 0``)
    plus the embedding of the label (or of "no label"); output: logits over the ``K`` codes.

    Notebook: notebooks/03_vae_vs_vqvae.ipynb

    Args:
        config: Hyper-parameters.
    """

    def __init__(self, config: PriorConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or PriorConfig()
        self.start = c.num_codes                      # the start token's index
        self.no_label = len(c.words)                  # the "unconditional" label's index
        self.code_embed = nn.Embedding(c.num_codes + 1, c.embed_dim)
        self.label_embed = nn.Embedding(len(c.words) + 1, c.embed_dim)
        self.drop = nn.Dropout(c.dropout)
        self.gru = nn.GRU(c.embed_dim, c.hidden, c.layers, batch_first=True,
                          dropout=c.dropout if c.layers > 1 else 0.0)
        self.head = nn.Linear(c.hidden, c.num_codes)

    # ------------------------------------------------------------------ the model

    def _labels(self, labels: Tensor | None, batch: int, device: torch.device) -> Tensor:
        if labels is None:
            return torch.full((batch,), self.no_label, dtype=torch.long, device=device)
        labels = torch.as_tensor(labels, dtype=torch.long, device=device).reshape(-1)
        if labels.numel() != batch:
            raise ValueError(f"expected {batch} labels, got {labels.numel()}")
        if bool(((labels < 0) | (labels > self.no_label)).any()):
            raise ValueError(f"labels must lie in [0, {self.no_label}] "
                             f"({self.no_label} = no label), got {labels.tolist()}")
        return labels

    def _inputs(self, previous: Tensor, labels: Tensor) -> Tensor:
        return self.drop(self.code_embed(previous) + self.label_embed(labels)[:, None])

    def forward(self, codes: Tensor, labels: Tensor | None = None) -> Tensor:
        """Logits ``[B, T, K]``: position ``t`` predicts ``codes[:, t]`` from ``codes[:, :t]``.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Args:
            codes: Indices ``[B, T]`` in ``[0, K)``.
            labels: Word labels ``[B]`` (``None`` or :attr:`no_label` entries: unconditional).
        """
        if codes.dim() != 2:
            raise ValueError(f"expected codes [B, T], got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.num_codes):
            raise ValueError(f"codes must lie in [0, {self.config.num_codes})")
        b = codes.shape[0]
        start = codes.new_full((b, 1), self.start)
        previous = torch.cat([start, codes[:, :-1]], dim=1)
        h, _ = self.gru(self._inputs(previous, self._labels(labels, b, codes.device)))
        return self.head(self.drop(h))

    def bits_per_code(self, codes: Tensor, labels: Tensor | None = None) -> Tensor:
        """Cross-entropy of each sequence in bits per index ``[B]`` (what coding would cost).

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        logits = self(codes, labels)
        nats = nn.functional.cross_entropy(logits.transpose(1, 2), codes, reduction="none")
        return nats.mean(1) / math.log(2)

    @torch.no_grad()
    def sample(self, n: int, frames: int, labels: Tensor | None = None, *,
               temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` code sequences of ``frames`` indices, one step at a time.

        The GRU state carries the past, so each step costs one GRU step (no re-reading of
        the prefix). Runs in eval mode (no dropout) and restores the previous mode.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Args:
            n: Number of sequences.
            frames: Latent frames per sequence.
            labels: Word labels ``[n]`` (``None``: the unconditional prior).
            temperature: Divides the logits (below 1: more probable, less varied codes).
            generator: Random generator (on the model's device) for reproducible samples.

        Returns:
            Indices ``[n, frames]`` (int64).
        """
        if n < 1 or frames < 1:
            raise ValueError(f"n and frames must be at least 1, got {n}, {frames}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        device = self.head.weight.device
        was = self.training
        self.eval()
        try:
            lab = self._labels(labels, n, device)
            previous = torch.full((n, 1), self.start, dtype=torch.long, device=device)
            state, out = None, []
            for _ in range(frames):
                h, state = self.gru(self._inputs(previous, lab), state)
                probs = torch.softmax(self.head(h[:, -1]) / temperature, dim=-1)
                previous = torch.multinomial(probs, 1, generator=generator)
                out.append(previous)
        finally:
            self.train(was)
        return torch.cat(out, dim=1)

    # ------------------------------------------------------------------ the codec it belongs to

    def check_codec(self, codec: nn.Module) -> None:
        """Refuse a codec other than the one whose codes this prior was trained on.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Raises:
            CheckpointError: The codec's first codebook has another fingerprint or size.
        """
        got = codebook_fingerprint(codec)
        want = self.config.codec_fingerprint
        if want and got != want:
            raise CheckpointError("codec", f"this prior was trained on the codes of codec "
                                           f"{want}, not of codec {got}")
        size = codec.quantizer.codebook_sizes[0]
        if size != self.config.num_codes:
            raise CheckpointError("codec", f"codebook of {size} codes; the prior has "
                                           f"{self.config.num_codes}")

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """A checkpoint dict (kind, format, config, weights, plus ``extra``).

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        return model_checkpoint(self, MODEL_KIND, **extra)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> CodePrior:
        """Rebuild a prior from a checkpoint (``weights_only=True``), in eval mode.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb

        Raises:
            CheckpointError: Not a code-prior checkpoint, or weights that do not fit.
        """
        return rebuild_model(cls, PriorConfig, path, MODEL_KIND,
                             map_location=map_location)

    def num_parameters(self) -> int:
        """Number of trainable parameters.

        Notebook: notebooks/03_vae_vs_vqvae.ipynb
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

