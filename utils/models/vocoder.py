"""A fast phase-aware vocoder: log-mel in, complex STFT out, inverse STFT, at the mel frame rate.

Every reconstruction before this module ended in Griffin-Lim, which guesses a phase for a
magnitude. :class:`MelVocoder` *predicts* the phase. It runs at the mel frame rate (62.5
frames/s, not 16 000 samples/s like WaveNet), so it is cheap:

* a 1-D convolutional backbone over the mel frames (ConvNeXt blocks: depthwise convolution,
  layer norm, a pointwise MLP, a learned layer scale, a residual; Liu et al., 2022, as used by
  Vocos, Siuzdak, 2023);
* a head that predicts, per STFT bin and frame, a correction to the log-magnitude of the mel
  inverted by the filterbank's pseudo-inverse (where Griffin-Lim starts), and a phase, in one
  of two parametrisations (``head``):

  - ``"polar"``: a real linear layer gives ``log|S|`` and an angle ``φ``; ``S = |S| e^{iφ}``;
  - ``"complex"``: the same magnitude, and the phase from a **complex** linear layer
    (``utils.complex.ComplexLinear``) on the backbone's features read as complex numbers:
    ``S = |S| · u / |u|``, so the phase is the argument of a complex-valued network's output;

* the collection's inverse STFT (1024-point periodic Hann window, hop 256, centred frames):
  the STFT frame ``t`` is the mel frame ``t``.

Training (task ``vocoder``) compares the resynthesis with the original through a
multi-resolution STFT loss (spectral convergence plus log-magnitude L1 at three resolutions;
Yamamoto et al., 2020) and the log-mel L1 of the collection's features; with
``--adversarial``, also against discriminators (:mod:`utils.models.discriminators`).

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from utils.audio import FEATURES, FeatureConfig
from utils.checkpoint import model_checkpoint, rebuild_model
from utils.complex import ComplexLinear
from utils.errors import OptionError

__all__ = ["MODEL_KIND", "HEADS", "VocoderConfig", "ConvNeXtBlock", "MelVocoder",
           "multi_resolution_stft_loss", "RESOLUTIONS"]

#: Written into checkpoints; a checkpoint of another kind is refused with a clear error.
MODEL_KIND = "mel-vocoder"
#: The two phase parametrisations.
HEADS = ("polar", "complex")
#: (n_fft, hop) of the multi-resolution STFT loss.
RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


@dataclass(frozen=True)
class VocoderConfig:
    """Hyper-parameters of :class:`MelVocoder` (stored in every checkpoint).

    Notebook: notebooks/08_vocoders.ipynb

    Attributes:
        n_mels: Mel bands of the input (the collection's 80).
        channels: Width of the backbone.
        blocks: ConvNeXt blocks.
        kernel: Depthwise kernel (frames).
        mult: MLP expansion of each block.
        head: ``"polar"`` or ``"complex"`` (see the module docstring).
        mel_mean: Offset of the input normalisation (log10 units).
        mel_std: Scale of the input normalisation.
    """

    n_mels: int = 80
    channels: int = 192
    blocks: int = 6
    kernel: int = 7
    mult: int = 3
    head: str = "polar"
    mel_mean: float = -2.5
    mel_std: float = 1.2

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise OptionError("--set head", f"must be one of {HEADS}, got {self.head!r}")
        for name in ("channels", "blocks", "kernel", "mult"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"--set {name}", f"must be at least 1, got {getattr(self, name)}")
        if self.kernel % 2 == 0:
            raise OptionError("--set kernel", f"must be odd (centred), got {self.kernel}")
        if self.head == "complex" and self.channels % 2:
            raise OptionError("--set channels", "must be even for the complex head")


class ConvNeXtBlock(nn.Module):
    """Depthwise conv → LayerNorm → Linear (×mult) → GELU → Linear → layer scale, plus input.

    Notebook: notebooks/08_vocoders.ipynb
    """

    def __init__(self, channels: int, kernel: int = 7, mult: int = 3,
                 scale: float = 0.1) -> None:
        super().__init__()
        self.dw = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.up = nn.Linear(channels, mult * channels)
        self.down = nn.Linear(mult * channels, channels)
        self.gamma = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        h = self.norm(self.dw(x).transpose(1, 2))
        h = self.down(nn.functional.gelu(self.up(h))) * self.gamma
        return x + h.transpose(1, 2)


class MelVocoder(nn.Module):
    """Log-mel ``[B, n_mels, T]`` → complex STFT ``[B, 513, T]`` → waveform ``[B, (T-1)·hop]``.

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        config: Hyper-parameters.
        features: The feature settings of the log-mel (the collection's by default).
    """

    def __init__(self, config: VocoderConfig | None = None,
                 features: FeatureConfig = FEATURES) -> None:
        super().__init__()
        self.config = c = config or VocoderConfig()
        self.features = features
        self.bins = features.n_fft // 2 + 1
        self.embed = nn.Conv1d(c.n_mels, c.channels, 7, padding=3)
        self.norm_in = nn.LayerNorm(c.channels)
        self.backbone = nn.Sequential(*[ConvNeXtBlock(c.channels, c.kernel, c.mult)
                                        for _ in range(c.blocks)])
        self.norm_out = nn.LayerNorm(c.channels)
        if c.head == "polar":
            self.out = nn.Linear(c.channels, 2 * self.bins)
        else:
            self.out = nn.Linear(c.channels, self.bins)              # log-magnitude
            self.phase = ComplexLinear(c.channels // 2, self.bins)    # complex → phasor
        self.register_buffer("window", torch.hann_window(features.n_fft, periodic=True),
                             persistent=False)
        from utils.audio import mel_filterbank

        fb = torch.from_numpy(np.array(mel_filterbank(features), dtype=np.float32))
        self.register_buffer("inverse_fb", torch.linalg.pinv(fb), persistent=False)

    def base_log_magnitude(self, logmel: Tensor) -> Tensor:
        """``log |S₀|`` ``[B, T, bins]``: the mel inverted by the filterbank's pseudo-inverse.

        The magnitude Griffin-Lim starts from; the network predicts a correction to it (and
        the whole phase), so it starts from a sensible spectrum instead of from noise.

        Notebook: notebooks/08_vocoders.ipynb
        """
        mel = torch.pow(10.0, logmel) ** (1.0 / self.features.power)
        mag = (self.inverse_fb @ mel).clamp_min(self.features.log_floor)
        return torch.log(mag).transpose(1, 2)

    def features_of(self, logmel: Tensor) -> Tensor:
        """Backbone features ``[B, T, C]`` of a log-mel batch.

        Notebook: notebooks/08_vocoders.ipynb
        """
        if logmel.dim() != 3 or logmel.shape[1] != self.config.n_mels:
            raise ValueError(f"expected [B, {self.config.n_mels}, T], got {tuple(logmel.shape)}")
        x = (logmel - self.config.mel_mean) / self.config.mel_std
        h = self.embed(x)
        h = self.norm_in(h.transpose(1, 2)).transpose(1, 2)
        h = self.backbone(h)
        return self.norm_out(h.transpose(1, 2))

    def spectrum(self, logmel: Tensor) -> Tensor:
        """The predicted complex STFT ``[B, n_fft/2 + 1, T]``.

        Notebook: notebooks/08_vocoders.ipynb
        """
        h = self.features_of(logmel)
        if self.config.head == "polar":
            log_mag, angle = self.out(h).chunk(2, dim=-1)
            phasor = torch.polar(torch.ones_like(angle), angle)
        else:
            log_mag = self.out(h)
            half = self.config.channels // 2
            u = self.phase(torch.complex(h[..., :half], h[..., half:]))
            phasor = u / u.abs().clamp_min(1e-8)
        mag = torch.exp((self.base_log_magnitude(logmel) + log_mag).clamp(max=6.0))
        return (mag * phasor).transpose(1, 2)

    def istft(self, spec: Tensor, length: int | None = None) -> Tensor:
        """Waveforms from a complex STFT with the collection's window and hop.

        Notebook: notebooks/08_vocoders.ipynb
        """
        f = self.features
        frames = spec.shape[-1]
        return torch.istft(spec, f.n_fft, f.hop_length, window=self.window, center=True,
                           length=length or (frames - 1) * f.hop_length)

    def forward(self, logmel: Tensor, length: int | None = None) -> Tensor:
        """Waveforms ``[B, length]`` (default ``(T - 1) · hop``) from a log-mel batch.

        Notebook: notebooks/08_vocoders.ipynb
        """
        return self.istft(self.spectrum(logmel), length)

    @torch.no_grad()
    def synthesize(self, logmel: np.ndarray, length: int | None = None) -> np.ndarray:
        """One NumPy log-mel ``[n_mels, T]`` → NumPy waveform (eval mode, model's device).

        Notebook: notebooks/08_vocoders.ipynb
        """
        was = self.training
        self.eval()
        try:
            x = torch.as_tensor(np.asarray(logmel, dtype=np.float32),
                                device=self.window.device)[None]
            return self(x, length)[0].cpu().numpy()
        finally:
            self.train(was)

    # ------------------------------------------------------------------ checkpoints

    def num_parameters(self) -> int:
        """Trainable parameters, a complex weight counting as two real ones.

        Notebook: notebooks/08_vocoders.ipynb
        """
        return sum(p.numel() * (2 if p.is_complex() else 1)
                   for p in self.parameters() if p.requires_grad)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """A checkpoint dict (kind, format, config, features, weights, plus ``extra``).

        Notebook: notebooks/08_vocoders.ipynb
        """
        return model_checkpoint(self, MODEL_KIND, **extra)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> MelVocoder:
        """Rebuild a vocoder from a checkpoint (``weights_only=True``), in eval mode.

        The discriminators of an adversarially trained vocoder are left out: synthesis never
        needs them.

        Notebook: notebooks/08_vocoders.ipynb

        Raises:
            CheckpointError: Not a vocoder checkpoint, other feature settings than the
                collection's, or weights that do not fit.
        """
        return rebuild_model(cls, VocoderConfig, path, MODEL_KIND,
                             map_location=map_location, features=True,
                             ignore=("discriminators.",))


def multi_resolution_stft_loss(estimate: Tensor, reference: Tensor,
                               resolutions: Sequence[tuple[int, int]] = RESOLUTIONS,
                               eps: float = 1e-5) -> tuple[Tensor, dict[str, float]]:
    """Spectral convergence + log-magnitude L1, averaged over STFT resolutions.

    ``SC = ‖ |S| − |Ŝ| ‖_F / ‖ |S| ‖_F`` and ``L_mag = mean | log(|S| + ε) − log(|Ŝ| + ε) |``
    for each ``(n_fft, hop)`` (Hann windows); the loss is their sum, averaged over resolutions.

    Notebook: notebooks/08_vocoders.ipynb

    Returns:
        ``(loss, {"sc": ..., "log_mag": ...})``.
    """
    sc = mag = 0.0
    for n_fft, hop in resolutions:
        w = torch.hann_window(n_fft, device=estimate.device)
        S = torch.stft(reference, n_fft, hop, window=w, return_complex=True).abs()
        E = torch.stft(estimate, n_fft, hop, window=w, return_complex=True).abs()
        sc = sc + torch.linalg.norm(S - E) / torch.linalg.norm(S).clamp_min(eps)
        mag = mag + (torch.log(S + eps) - torch.log(E + eps)).abs().mean()
    n = len(resolutions)
    sc, mag = sc / n, mag / n
    return sc + mag, {"sc": float(sc.detach()), "log_mag": float(mag.detach())}
