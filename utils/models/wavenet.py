"""WaveNet built right: causal dilated convolutions, gated units, residual and skip paths,
mel conditioning, 8-bit μ-law, and incremental generation with per-layer caches.

The 2022 seed's WaveNet notebook (defect 13) had a correct causal convolution, a gated unit
and a dilation schedule, then stopped on a ``NameError``. Here is the whole model
(van den Oord et al., 2016, [arXiv:1609.03499]; mel conditioning as in Shen et al., 2018):

* **μ-law** (``mu_law_encode`` / ``mu_law_decode``): ``F(x) = sign(x) ln(1 + μ|x|) / ln(1 + μ)``
  with μ = 255, quantised to 256 classes; the model predicts a softmax over them;
* **causal dilated convolution** (:class:`CausalConv1d`): left padding ``(k − 1) d``, so the
  output at ``t`` sees only inputs ``≤ t``;
* **residual block** (:class:`ResidualBlock`): ``z = tanh(W_f * x + V_f c) ⊙ σ(W_g * x + V_g c)``,
  a 1×1 residual path back to the block's input and a 1×1 skip path to the output;
* **mel conditioning**: the log-mel (62.5 frames/s) repeated to the sample rate (each frame
  held for ``hop`` samples), projected by a 1×1 convolution in every block;
* **receptive field** ``1 + Σ_layers (k − 1) d``;
* **incremental generation** (:meth:`WaveNet.generate`): every layer keeps the last
  ``(k − 1) d`` inputs it saw, so each new sample costs one step per layer instead of a pass over
  the whole past (Paine et al., 2016, "Fast WaveNet").

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from utils.audio import FEATURES, FeatureConfig
from utils.checkpoint import model_checkpoint, rebuild_model
from utils.errors import OptionError

__all__ = ["MODEL_KIND", "WaveNetConfig", "CausalConv1d", "ResidualBlock", "WaveNet",
           "mu_law_encode", "mu_law_decode", "receptive_field"]

#: Written into checkpoints; a checkpoint of another kind is refused with a clear error.
MODEL_KIND = "wavenet"


def mu_law_encode(x: Tensor, channels: int = 256) -> Tensor:
    """μ-law companding and quantisation of a waveform in [−1, 1] to classes ``0 … channels−1``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    mu = channels - 1
    x = x.clamp(-1.0, 1.0)
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).long().clamp(0, mu)


def mu_law_decode(q: Tensor, channels: int = 256) -> Tensor:
    """The inverse of :func:`mu_law_encode`: classes → waveform in [−1, 1].

    Notebook: notebooks/08_vocoders.ipynb
    """
    mu = channels - 1
    y = 2 * q.float() / mu - 1
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def receptive_field(kernel: int, dilations: Sequence[int]) -> int:
    """Samples seen by one output: ``1 + Σ (kernel − 1) · d``.

    Notebook: notebooks/08_vocoders.ipynb
    """
    return 1 + sum((kernel - 1) * d for d in dilations)


@dataclass(frozen=True)
class WaveNetConfig:
    """Hyper-parameters of :class:`WaveNet` (stored in every checkpoint).

    Notebook: notebooks/08_vocoders.ipynb

    Attributes:
        channels: Residual channels.
        skip_channels: Skip channels.
        kernel: Kernel of the dilated convolutions.
        layers_per_stack: Layers per dilation cycle (dilations 1, 2, 4, …).
        stacks: Dilation cycles.
        quantization: Output classes (256: 8-bit μ-law).
        n_mels: Mel bands of the conditioning.
        mel_mean: Offset of the conditioning normalisation.
        mel_std: Scale of the conditioning normalisation.
    """

    channels: int = 64
    skip_channels: int = 128
    kernel: int = 2
    layers_per_stack: int = 10
    stacks: int = 2
    quantization: int = 256
    n_mels: int = 80
    mel_mean: float = -2.5
    mel_std: float = 1.2

    def __post_init__(self) -> None:
        for name in ("channels", "skip_channels", "layers_per_stack", "stacks"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"--set {name}", f"must be at least 1, got {getattr(self, name)}")
        if self.kernel < 2:
            raise OptionError("--set kernel", f"must be at least 2, got {self.kernel}")
        if self.quantization < 2:
            raise OptionError("--set quantization", f"must be at least 2, got {self.quantization}")

    @property
    def dilations(self) -> list[int]:
        """The dilation of every layer: ``1, 2, 4, …`` repeated ``stacks`` times."""
        return [2**i for i in range(self.layers_per_stack)] * self.stacks


class CausalConv1d(nn.Conv1d):
    """A 1-D convolution padded on the left only: output ``t`` depends on inputs ``≤ t``.

    Notebook: notebooks/08_vocoders.ipynb
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, dilation: int = 1
                 ) -> None:
        super().__init__(in_channels, out_channels, kernel, dilation=dilation)
        self.left = (kernel - 1) * dilation

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return super().forward(nn.functional.pad(x, (self.left, 0)))

    def step(self, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """One output sample from one new input sample ``x [B, C]`` and the cached past.

        ``cache [B, C, left]`` holds the last ``(k − 1) d`` inputs; the output uses the taps
        at ``t − (k − 1) d, …, t − d, t``.

        Notebook: notebooks/08_vocoders.ipynb

        Returns:
            ``(output [B, C_out], the updated cache)``.
        """
        window = torch.cat([cache, x[..., None]], dim=-1)          # [B, C, left + 1]
        taps = window[..., :: self.dilation[0]]                     # k samples, d apart
        out = torch.einsum("bck,ock->bo", taps, self.weight) + self.bias
        return out, window[..., 1:]


class ResidualBlock(nn.Module):
    """Gated dilated causal convolution with mel conditioning, residual and skip outputs.

    Notebook: notebooks/08_vocoders.ipynb
    """

    def __init__(self, channels: int, skip_channels: int, kernel: int, dilation: int,
                 n_mels: int) -> None:
        super().__init__()
        self.conv = CausalConv1d(channels, 2 * channels, kernel, dilation)
        self.cond = nn.Conv1d(n_mels, 2 * channels, 1)
        self.res = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def _gate(self, h: Tensor) -> Tensor:
        f, g = h.chunk(2, dim=1)
        return torch.tanh(f) * torch.sigmoid(g)

    def forward(self, x: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """``(residual output, skip output)`` of ``x [B, C, N]`` with conditioning ``c [B, M, N]``.

        Notebook: notebooks/08_vocoders.ipynb
        """
        z = self._gate(self.conv(x) + self.cond(c))
        return x + self.res(z), self.skip(z)

    def step(self, x: Tensor, c: Tensor, cache: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One sample: ``x [B, C]``, ``c [B, M]`` → ``(residual, skip, cache)``.

        Notebook: notebooks/08_vocoders.ipynb
        """
        h, cache = self.conv.step(x, cache)
        z = self._gate((h + self.cond(c[..., None])[..., 0])[..., None])[..., 0]
        res = self.res(z[..., None])[..., 0]
        return x + res, self.skip(z[..., None])[..., 0], cache


class WaveNet(nn.Module):
    """A mel-conditioned WaveNet with a softmax over μ-law classes.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        config: Hyper-parameters.
        features: The feature settings of the conditioning log-mel.
    """

    def __init__(self, config: WaveNetConfig | None = None,
                 features: FeatureConfig = FEATURES) -> None:
        super().__init__()
        self.config = c = config or WaveNetConfig()
        self.features = features
        self.embed = nn.Embedding(c.quantization, c.channels)
        self.blocks = nn.ModuleList(ResidualBlock(c.channels, c.skip_channels, c.kernel, d,
                                                  c.n_mels) for d in c.dilations)
        self.out1 = nn.Conv1d(c.skip_channels, c.skip_channels, 1)
        self.out2 = nn.Conv1d(c.skip_channels, c.quantization, 1)

    @property
    def receptive_field(self) -> int:
        """Samples seen by one output (:func:`receptive_field`).

        Notebook: notebooks/08_vocoders.ipynb
        """
        return receptive_field(self.config.kernel, self.config.dilations)

    def upsample(self, logmel: Tensor, samples: int) -> Tensor:
        """Normalised log-mel ``[B, M, T]``, each frame held for ``hop`` samples (``[B, M, N]``).

        Mel frame ``t`` (centred on sample ``t · hop``) conditions samples
        ``t · hop − hop/2 … t · hop + hop/2``.

        Notebook: notebooks/08_vocoders.ipynb
        """
        hop = self.features.hop_length
        x = (logmel - self.config.mel_mean) / self.config.mel_std
        idx = (torch.arange(samples, device=x.device) + hop // 2) // hop
        idx = idx.clamp(max=x.shape[-1] - 1)
        return x[..., idx]

    def forward(self, previous: Tensor, logmel: Tensor) -> Tensor:
        """Logits ``[B, Q, N]``: position ``t`` predicts sample ``t`` from samples ``< t``.

        Notebook: notebooks/08_vocoders.ipynb

        Args:
            previous: μ-law classes ``[B, N]`` of the samples *before* each position (the
                target shifted right by one, a 0-level class first).
            logmel: Conditioning ``[B, n_mels, T]``, ``T ≥ 1 + (N − 1) // hop``.
        """
        c = self.upsample(logmel, previous.shape[-1])
        x = self.embed(previous).transpose(1, 2)
        skips = 0
        for block in self.blocks:
            x, s = block(x, c)
            skips = skips + s
        return self.out2(torch.relu(self.out1(torch.relu(skips))))

    @staticmethod
    def shift(q: Tensor, channels: int = 256) -> Tensor:
        """The inputs for targets ``q [B, N]``: ``q`` shifted right by one, the silence class first.

        Notebook: notebooks/08_vocoders.ipynb
        """
        silence = mu_law_encode(torch.zeros(1), channels).item()
        return torch.cat([q.new_full((q.shape[0], 1), silence), q[:, :-1]], dim=1)

    def _head(self, skips: Tensor) -> Tensor:
        h = torch.relu(self.out1(torch.relu(skips)[..., None]))
        return self.out2(h)[..., 0]

    @torch.no_grad()
    def generate(self, logmel: Tensor, samples: int, *, temperature: float = 1.0,
                 generator: torch.Generator | None = None, teacher: Tensor | None = None
                 ) -> tuple[Tensor, Tensor]:
        """Sample a waveform one sample at a time with per-layer caches.

        Notebook: notebooks/08_vocoders.ipynb

        Args:
            logmel: Conditioning ``[B, n_mels, T]``.
            samples: Samples to generate.
            temperature: Divides the logits before sampling.
            generator: Random generator for reproducible samples.
            teacher: μ-law classes ``[B, samples]`` to feed instead of the samples drawn
                (teacher forcing: then the returned logits equal :meth:`forward`'s).

        Returns:
            ``(waveform [B, samples] in [−1, 1], logits [B, Q, samples])``.
        """
        was = self.training
        self.eval()
        try:
            c = self.upsample(logmel, samples)
            b = logmel.shape[0]
            caches = [torch.zeros(b, self.config.channels, blk.conv.left, device=c.device)
                      for blk in self.blocks]
            prev = self.shift(torch.zeros(b, 1, dtype=torch.long, device=c.device),
                              self.config.quantization)[:, 0]
            out, logits = [], []
            for t in range(samples):
                x = self.embed(prev)
                skips = 0
                for i, blk in enumerate(self.blocks):
                    x, s, caches[i] = blk.step(x, c[..., t], caches[i])
                    skips = skips + s
                lg = self._head(skips)
                logits.append(lg)
                if teacher is not None:
                    prev = teacher[:, t]
                else:
                    probs = torch.softmax(lg / temperature, dim=-1)
                    prev = torch.multinomial(probs, 1, generator=generator)[:, 0]
                out.append(prev)
            q = torch.stack(out, dim=1)
            return mu_law_decode(q, self.config.quantization), torch.stack(logits, dim=-1)
        finally:
            self.train(was)

    # ------------------------------------------------------------------ checkpoints

    def num_parameters(self) -> int:
        """Number of trainable parameters.

        Notebook: notebooks/08_vocoders.ipynb
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """A checkpoint dict (kind, format, config, features, weights, plus ``extra``).

        Notebook: notebooks/08_vocoders.ipynb
        """
        return model_checkpoint(self, MODEL_KIND, **extra)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> WaveNet:
        """Rebuild a WaveNet from a checkpoint (``weights_only=True``), in eval mode.

        Notebook: notebooks/08_vocoders.ipynb

        Raises:
            CheckpointError: Not a WaveNet checkpoint, or weights that do not fit.
        """
        return rebuild_model(cls, WaveNetConfig, path, MODEL_KIND,
                             map_location=map_location, features=True)
