"""The Deep Complex U-Net (Choi et al., ICLR 2019) and its two real baselines, waveform to waveform.

``SpeechEnhancer`` maps a noisy waveform to an enhanced one: STFT (Hann window) → a U-Net
predicts a mask → the mask multiplies the noisy STFT → inverse STFT. Three kinds share the
U-Net template (the paper's encoder/decoder tables, chosen by name) and differ in what they
see and predict:

* ``"complex"``: **DCUNet**, complex convolutions, whitening complex batch norm and complex
  leaky ReLU (``utils.complex``) on the complex STFT; its output ``m`` becomes the **bounded
  polar mask** ``tanh(|m|) · m / |m|`` (modulus < 1, any phase), applied by **complex
  multiplication**: the enhanced STFT gets a new modulus *and* a new phase;
* ``"ri"``: a real U-Net on the stacked ``[Re, Im]`` of the STFT that predicts ``[Re, Im]`` of a
  complex mask (the same bounded polar mask): phase-aware, but real arithmetic;
* ``"mag"``: a real U-Net on the compressed magnitude that predicts a real mask in (0, 1)
  (a sigmoid) and keeps the **noisy phase**.

The real kinds scale their channels by ``width_scale`` so that their parameter counts match
the complex model's (``match_width``), which separates "uses the phase" (``ri`` vs ``mag``) from
"uses complex arithmetic" (``complex`` vs ``ri``).

**Any size.** Each encoder convolution pads ``kernel // 2`` and each decoder transposed
convolution is asked for exactly the size of the matching encoder input (``output_size``), so
every (F, T) works, odd or even, without cropping tricks or size tables.

Notebook: notebooks/07_speech_enhancement.ipynb
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from utils.checkpoint import model_checkpoint, rebuild_model
from utils.complex import ComplexBatchNorm2d, ComplexConv2d, ComplexConvTranspose2d
from utils.complex.activations import CLeakyReLU
from utils.errors import OptionError

__all__ = ["ARCHITECTURES", "KINDS", "MODEL_KIND", "EnhanceConfig", "UNet", "SpeechEnhancer",
           "bounded_polar_mask", "si_sdr", "match_width"]

#: Written into checkpoints; a checkpoint of another kind is refused with a clear error.
MODEL_KIND = "speech-enhancer"

#: The three models of the comparison.
KINDS = ("complex", "ri", "mag")

#: Encoder layers of the paper's networks as (kernel (F, T), stride (F, T), complex channels);
#: the decoder mirrors them (Choi et al., 2019, appendix; channel counts as in common
#: complex re-implementations). ``width`` scales every channel count.
ARCHITECTURES: dict[str, list[tuple[tuple[int, int], tuple[int, int], int]]] = {
    "DCUNet-10": [((7, 5), (2, 2), 32), ((7, 5), (2, 2), 64), ((5, 3), (2, 2), 64),
                  ((5, 3), (2, 2), 64), ((5, 3), (2, 1), 64)],
    "DCUNet-16": [((7, 5), (2, 2), 32), ((7, 5), (2, 1), 32), ((7, 5), (2, 2), 64),
                  ((5, 3), (2, 1), 64), ((5, 3), (2, 2), 64), ((5, 3), (2, 1), 64),
                  ((5, 3), (2, 2), 64), ((5, 3), (2, 1), 64)],
    "DCUNet-20": [((7, 1), (1, 1), 32), ((1, 7), (1, 1), 32), ((7, 5), (2, 2), 64),
                  ((7, 5), (2, 1), 64), ((5, 3), (2, 2), 64), ((5, 3), (2, 1), 64),
                  ((5, 3), (2, 2), 64), ((5, 3), (2, 1), 64), ((5, 3), (2, 2), 64),
                  ((5, 3), (2, 1), 90)],
}


@dataclass(frozen=True)
class EnhanceConfig:
    """Hyper-parameters of :class:`SpeechEnhancer` (stored in every checkpoint).

    Notebook: notebooks/07_speech_enhancement.ipynb

    Attributes:
        kind: ``"complex"`` (DCUNet), ``"ri"`` (real U-Net on [Re, Im], complex mask) or
            ``"mag"`` (real U-Net on the magnitude, real mask, noisy phase).
        arch: ``"DCUNet-10"``, ``"DCUNet-16"`` or ``"DCUNet-20"``.
        width: Multiplier of the paper's channel counts (CPU-sized models use 0.25).
        width_scale: Extra channel multiplier of a real kind (:func:`match_width`).
        n_fft: STFT size and Hann window length (512 = 32 ms at 16 kHz; 257 bins).
        hop_length: STFT hop (128 = 8 ms).
        slope: Negative slope of the leaky ReLUs.
        compress: Exponent c of the input compression ``|X|^c`` (phase kept); the mask is
            applied to the uncompressed STFT.
    """

    kind: str = "complex"
    arch: str = "DCUNet-10"
    width: float = 0.25
    width_scale: float = 1.0
    n_fft: int = 512
    hop_length: int = 128
    slope: float = 0.1
    compress: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OptionError("--set kind", f"must be one of {KINDS}, got {self.kind!r}")
        if self.arch not in ARCHITECTURES:
            raise OptionError("--set arch", f"must be one of {list(ARCHITECTURES)}, got "
                                            f"{self.arch!r}")
        if not self.width > 0 or not self.width_scale > 0:
            raise OptionError("--set width", "width and width_scale must be positive")
        if self.n_fft < 16 or not 0 < self.hop_length <= self.n_fft:
            raise OptionError("--set n_fft", f"need n_fft >= 16 and 0 < hop_length <= n_fft, "
                                             f"got {self.n_fft}, {self.hop_length}")
        if not 0 < self.compress <= 1:
            raise OptionError("--set compress", f"must be in (0, 1], got {self.compress}")

    def channels(self) -> list[int]:
        """Channels of each encoder layer (complex channels for ``"complex"``, real otherwise)."""
        scale = self.width * (self.width_scale if self.kind != "complex" else 1.0)
        return [max(1, round(c * scale)) for _, _, c in ARCHITECTURES[self.arch]]


# --------------------------------------------------------------------------------------------
# Masks and the loss
# --------------------------------------------------------------------------------------------


def bounded_polar_mask(m: Tensor, eps: float = 1e-8) -> Tensor:
    """The DCUNet mask ``tanh(|m|) · m / |m|``: modulus in [0, 1), the phase of ``m``.

    Unlike the seed's element-wise ``tanh(Re m) + i tanh(Im m)`` (modulus up to √2, phase
    pulled towards the diagonals), the phase passes unchanged and the modulus is bounded.

    Notebook: notebooks/07_speech_enhancement.ipynb
    """
    mag = m.abs()
    return torch.tanh(mag) * m / mag.clamp_min(eps)


def si_sdr(estimate: Tensor, reference: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant signal-to-distortion ratio in dB along the last axis (Le Roux et al., 2019).

    Both signals are made zero-mean; ``α = <ŝ, s> / ||s||²``, target ``α s``,
    ``SI-SDR = 10 log10(||α s||² / ||ŝ − α s||²)``.

    Notebook: notebooks/07_speech_enhancement.ipynb
    """
    estimate = estimate - estimate.mean(-1, keepdim=True)
    reference = reference - reference.mean(-1, keepdim=True)
    alpha = (estimate * reference).sum(-1, keepdim=True) / (
        reference.pow(2).sum(-1, keepdim=True) + eps)
    target = alpha * reference
    noise = estimate - target
    return 10 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


# --------------------------------------------------------------------------------------------
# The U-Net template
# --------------------------------------------------------------------------------------------


class _Block(nn.Module):
    """Convolution (or transposed convolution) → batch norm → leaky ReLU, complex or real."""

    def __init__(self, complex_: bool, cin: int, cout: int, kernel: tuple[int, int],
                 stride: tuple[int, int], transposed: bool, last: bool, slope: float) -> None:
        super().__init__()
        pad = (kernel[0] // 2, kernel[1] // 2)
        if complex_:
            conv = ComplexConvTranspose2d if transposed else ComplexConv2d
            self.conv = conv(cin, cout, kernel, stride, pad)
            self.norm = nn.Identity() if last else ComplexBatchNorm2d(cout)
            self.act = nn.Identity() if last else CLeakyReLU(slope)
        else:
            conv = nn.ConvTranspose2d if transposed else nn.Conv2d
            self.conv = conv(cin, cout, kernel, stride, pad)
            self.norm = nn.Identity() if last else nn.BatchNorm2d(cout)
            self.act = nn.Identity() if last else nn.LeakyReLU(slope)
        self.transposed = transposed

    def forward(self, x: Tensor, size: tuple[int, int] | None = None) -> Tensor:  # noqa: D102
        x = self.conv(x, output_size=size) if self.transposed else self.conv(x)
        return self.act(self.norm(x))


class UNet(nn.Module):
    """The DCUNet encoder/decoder with skip connections, complex or real.

    Encoder layer ``i`` halves F (and T where its stride says so); decoder layer ``i`` mirrors
    encoder layer ``L-1-i`` and takes the concatenation of the previous decoder output and
    that encoder layer's output (except the first decoder layer, which takes the bottleneck).
    The last decoder layer has no norm and no activation: its output is the raw mask.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        arch: Key of :data:`ARCHITECTURES`.
        channels: Channels of each encoder layer.
        in_channels: Input channels (1 complex, 2 for [Re, Im], 1 for a magnitude).
        out_channels: Mask channels (1 complex, 2 for [Re, Im], 1 for a real mask).
        complex_: Complex layers (``utils.complex``) or real ones (``torch.nn``).
        slope: Leaky ReLU slope.
    """

    def __init__(self, arch: str, channels: list[int], in_channels: int, out_channels: int,
                 complex_: bool, slope: float = 0.1) -> None:
        super().__init__()
        layers = ARCHITECTURES[arch]
        self.encoders = nn.ModuleList()
        cin = in_channels
        for (kernel, stride, _), c in zip(layers, channels, strict=True):
            self.encoders.append(_Block(complex_, cin, c, kernel, stride, False, False, slope))
            cin = c
        self.decoders = nn.ModuleList()
        n = len(layers)
        for i in range(n):
            j = n - 1 - i                                   # the mirrored encoder layer
            kernel, stride, _ = layers[j]
            dec_in = channels[j] if i == 0 else 2 * channels[j]
            dec_out = out_channels if j == 0 else channels[j - 1]
            self.decoders.append(_Block(complex_, dec_in, dec_out, kernel, stride, True,
                                        j == 0, slope))

    def forward(self, x: Tensor) -> Tensor:
        """Mask ``[B, out_channels, F, T]`` for an input ``[B, in_channels, F, T]``, any F, T.

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        sizes, skips = [], []
        for enc in self.encoders:
            sizes.append(tuple(x.shape[-2:]))
            x = enc(x)
            skips.append(x)
        for i, dec in enumerate(self.decoders):
            j = len(self.encoders) - 1 - i
            if i > 0:
                x = torch.cat([x, skips[j]], dim=1)
            x = dec(x, sizes[j])
        return x


# --------------------------------------------------------------------------------------------
# Waveform in, waveform out
# --------------------------------------------------------------------------------------------


class SpeechEnhancer(nn.Module):
    """STFT → U-Net mask → masked STFT → inverse STFT: a noisy waveform in, an enhanced one out.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        config: Hyper-parameters (kind, architecture, width, STFT).
    """

    def __init__(self, config: EnhanceConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or EnhanceConfig()
        ins, outs = {"complex": (1, 1), "ri": (2, 2), "mag": (1, 1)}[c.kind]
        self.unet = UNet(c.arch, c.channels(), ins, outs, c.kind == "complex", c.slope)
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)

    # ------------------------------------------------------------------ the transform

    def stft(self, wave: Tensor) -> Tensor:
        """Complex STFT ``[B, F, T]`` of waveforms ``[B, N]`` (Hann window, centred frames).

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        return torch.stft(wave, self.config.n_fft, self.config.hop_length,
                          window=self.window, center=True, return_complex=True)

    def istft(self, spec: Tensor, length: int) -> Tensor:
        """Waveforms ``[B, length]`` from a complex STFT ``[B, F, T]`` (same window).

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        return torch.istft(spec, self.config.n_fft, self.config.hop_length,
                           window=self.window, center=True, length=length)

    # ------------------------------------------------------------------ the mask

    def mask(self, X: Tensor) -> Tensor:
        """The mask ``[B, F, T]`` (complex, modulus < 1; or real in (0, 1) for ``"mag"``).

        Notebook: notebooks/07_speech_enhancement.ipynb

        Args:
            X: Noisy complex STFT ``[B, F, T]``.
        """
        c = self.config
        mag = X.abs()
        Xc = X * (mag.clamp_min(1e-8) ** (c.compress - 1))  # |X|^c with the phase kept
        if c.kind == "complex":
            return bounded_polar_mask(self.unet(Xc[:, None])[:, 0])
        if c.kind == "ri":
            out = self.unet(torch.stack([Xc.real, Xc.imag], dim=1))
            return bounded_polar_mask(torch.complex(out[:, 0], out[:, 1]))
        return torch.sigmoid(self.unet(Xc.abs()[:, None])[:, 0])

    def masked(self, X: Tensor) -> Tensor:
        """The enhanced STFT: the mask times the noisy STFT, a **complex** multiplication
        (``|Y| = |M| |X|``, ``∠Y = ∠M + ∠X``; a real gain for ``"mag"``).

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        return self.mask(X) * X

    def forward(self, noisy: Tensor) -> Tensor:
        """Enhanced waveforms ``[B, N]`` (or ``[N]``) from noisy ones of the same shape.

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        single = noisy.dim() == 1
        wave = noisy[None] if single else noisy
        if wave.dim() != 2:
            raise ValueError(f"expected waveforms [B, N] or [N], got {tuple(noisy.shape)}")
        out = self.istft(self.masked(self.stft(wave)), wave.shape[-1])
        return out[0] if single else out

    @torch.no_grad()
    def enhance(self, y: Any) -> Any:
        """Enhance one NumPy waveform (eval mode, on the model's device); returns NumPy.

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        import numpy as np

        was = self.training
        self.eval()
        try:
            x = torch.as_tensor(np.asarray(y, dtype=np.float32), device=self.window.device)
            return self(x).cpu().numpy()
        finally:
            self.train(was)

    # ------------------------------------------------------------------ checkpoints

    def num_parameters(self) -> int:
        """Trainable parameters, a complex weight counting as two real ones.

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        return sum(p.numel() * (2 if p.is_complex() else 1)
                   for p in self.parameters() if p.requires_grad)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """A checkpoint dict (kind, format, config, weights, plus ``extra``).

        Notebook: notebooks/07_speech_enhancement.ipynb
        """
        return model_checkpoint(self, MODEL_KIND, **extra)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike,
                        map_location: str | torch.device = "cpu") -> SpeechEnhancer:
        """Rebuild a model from a checkpoint (``weights_only=True``), in eval mode.

        Notebook: notebooks/07_speech_enhancement.ipynb

        Raises:
            CheckpointError: Not a speech-enhancer checkpoint, or weights that do not fit.
        """
        return rebuild_model(cls, EnhanceConfig, path, MODEL_KIND,
                             map_location=map_location)


def match_width(config: EnhanceConfig, target: int, tolerance: float = 0.05) -> EnhanceConfig:
    """The ``width_scale`` of a real kind whose parameter count is closest to ``target``.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        config: A ``"ri"`` or ``"mag"`` configuration.
        target: Parameter count to match (the complex model's, real numbers).
        tolerance: Largest allowed relative difference.

    Raises:
        ValueError: No scale matches within ``tolerance``.
    """
    if config.kind == "complex":
        return config
    best, best_err = config, math.inf
    for k in range(50, 301):
        cand = EnhanceConfig(**{**asdict(config), "width_scale": k / 100})
        n = SpeechEnhancer(cand).num_parameters()
        err = abs(n - target) / target
        if err < best_err:
            best, best_err = cand, err
    if best_err > tolerance:
        raise ValueError(f"no width_scale matches {target} parameters within {tolerance:.0%} "
                         f"(best {best_err:.1%})")
    return best
