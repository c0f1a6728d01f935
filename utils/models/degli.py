"""Deep Griffin-Lim iteration: Griffin-Lim's two projections with a small trained denoiser.

Griffin-Lim (:mod:`utils.phase`) repeats ``X ← P_C(P_A(X))``. Deep Griffin-Lim (Masuyama,
Yatabe, Koizumi, Oikawa & Harada, 2019) keeps both projections and adds a network that,
seeing the current estimate ``X``, its magnitude-projected ``Y = P_A(X)`` and the consistent
``Z = P_C(Y)``, predicts what ``Z`` still has wrong:

``X ← Z − D(X, Y, Z)``.

The same network (shared weights) runs at every iteration. Here the magnitude is not known: it
starts as the mel inverted by non-negative least squares (:func:`utils.audio.mel_to_magnitude`)
and, as in the best classical method of notebook 08, is re-estimated toward the mel before each
projection (:func:`utils.phase.mel_magnitude_step`); the network also learns to fix what the 80
mel bands lost. The start is the classical one: PGHI's phase, then ``warm`` iterations of
mel-consistent fast Griffin-Lim (no network); the network then adds ``iterations`` rounds. Its
last layer starts at zero, so before training the model *is* the classical method.

Two denoisers with the same shape, the collection's two halves side by side (``kind``):

* ``"complex"``: :class:`utils.complex.ComplexConv2d` layers on the three complex spectrograms,
  CReLU between them: a complex-valued network doing the job it is made for;
* ``"real"``: its real twin: ``nn.Conv2d`` on the six channels ``[Re, Im]`` of the same
  spectrograms, ReLU (which *is* CReLU on ``[Re, Im]`` channels), as many parameters as can
  be matched (``channels`` chosen by :func:`matched_real_channels`);
* ``"mag"``: a magnitude-only network: ``nn.Conv2d`` on the three magnitudes ``|X|, |Y|, |Z|``
  predicting a magnitude correction ``r``; the step is ``X ← (|Z| − r)·e^{i∠Z}``, so the
  network never sees or sets a phase (the phase moves only through the projections), again
  at matched parameters.

Inputs are divided by the RMS of ``A`` per clip (and the output multiplied back), so the
network sees the same scale for a whisper and a shout.

Notebook: notebooks/08_vocoders.ipynb
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from utils.audio import FEATURES, FeatureConfig, mel_to_magnitude
from utils.checkpoint import model_checkpoint, rebuild_model
from utils.complex import ComplexConv2d, CReLU
from utils.errors import OptionError
from utils.phase import (
    mel_magnitude_step,
    pghi,
    project_consistent,
    project_magnitude,
    torch_istft,
)

__all__ = ["MODEL_KIND", "KINDS", "DeGLIConfig", "DeepGriffinLim", "matched_real_channels",
           "magnitude_and_phase"]

#: Written into checkpoints; a checkpoint of another kind is refused with a clear error.
MODEL_KIND = "deep-griffin-lim"
#: The three denoisers: complex-valued, its real [Re, Im] twin, magnitude-only.
KINDS = ("complex", "real", "mag")
#: Input and output channels of each denoiser (X, Y, Z in; one correction out).
_IO = {"complex": (3, 1), "real": (6, 2), "mag": (3, 1)}


def _conv_params(c_in: int, c_out: int, k: int, complex_valued: bool) -> int:
    n = c_out * c_in * k + c_out
    return 2 * n if complex_valued else n


def _denoiser_params(channels: int, layers: int, k: int, kind: str) -> int:
    io, out = _IO[kind]
    sizes = [io] + [channels] * (layers - 1) + [out]
    return sum(_conv_params(a, b, k, kind == "complex")
               for a, b in zip(sizes, sizes[1:], strict=False))


def matched_real_channels(complex_channels: int, layers: int, kernel: tuple[int, int],
                          kind: str = "real") -> int:
    """The width of a real-valued denoiser (``"real"`` or ``"mag"``) whose parameter count is
    closest to the complex denoiser's.

    Notebook: notebooks/08_vocoders.ipynb
    """
    k = kernel[0] * kernel[1]
    target = _denoiser_params(complex_channels, layers, k, "complex")
    return min(range(1, 8 * complex_channels + 1),
               key=lambda c: abs(_denoiser_params(c, layers, k, kind) - target))


@dataclass(frozen=True)
class DeGLIConfig:
    """Hyper-parameters of :class:`DeepGriffinLim` (stored in every checkpoint).

    Notebook: notebooks/08_vocoders.ipynb

    Attributes:
        kind: ``"complex"``, ``"real"`` or ``"mag"`` denoiser.
        channels: Hidden channels (complex ones for ``"complex"``; for ``"real"`` and
            ``"mag"``, 0 picks the width that matches the complex denoiser of
            ``complex_channels``).
        complex_channels: The complex width the real-valued denoisers are matched to.
        layers: Convolutions of the denoiser.
        kernel: ``(frequency, time)`` kernel of every convolution.
        iterations: Deep Griffin-Lim iterations (the same at training and at synthesis).
        warm: Mel-consistent fast Griffin-Lim iterations before the first learned one.
    """

    kind: str = "complex"
    channels: int = 0
    complex_channels: int = 8
    layers: int = 3
    kernel: tuple[int, int] = (5, 3)
    iterations: int = 4
    warm: int = 16

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OptionError("--set kind", f"must be one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "kernel", tuple(int(k) for k in self.kernel))
        if len(self.kernel) != 2 or any(k < 1 or k % 2 == 0 for k in self.kernel):
            raise OptionError("--set kernel", f"must be two odd sizes, got {self.kernel}")
        for name in ("complex_channels", "layers", "iterations"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"--set {name}", f"must be at least 1, got {getattr(self, name)}")
        if self.layers < 2:
            raise OptionError("--set layers", f"must be at least 2, got {self.layers}")
        if self.warm < 0:
            raise OptionError("--set warm", f"must be ≥ 0, got {self.warm}")
        if self.channels < 0:
            raise OptionError("--set channels", f"must be ≥ 0 (0 = matched), got {self.channels}")

    @property
    def width(self) -> int:
        """Hidden channels actually used."""
        if self.channels:
            return self.channels
        if self.kind == "complex":
            return self.complex_channels
        return matched_real_channels(self.complex_channels, self.layers, self.kernel, self.kind)


class DeepGriffinLim(nn.Module):
    """``(A₀, X₀, mel) → X``: a classical warm start, then K rounds of
    ``X ← P_C(P_A(X)) − D(X, P_A(X), P_C(P_A(X)))`` (``A`` re-estimated toward the mel).

    Notebook: notebooks/08_vocoders.ipynb

    Args:
        config: Hyper-parameters.
        features: The STFT settings (the collection's).
    """

    def __init__(self, config: DeGLIConfig | None = None,
                 features: FeatureConfig = FEATURES) -> None:
        super().__init__()
        self.config = c = config or DeGLIConfig()
        self.features = features
        pad = (c.kernel[0] // 2, c.kernel[1] // 2)
        real = c.kind != "complex"
        io, out = _IO[c.kind]
        sizes = [io] + [c.width] * (c.layers - 1) + [out]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
            if real:
                layers.append(nn.Conv2d(a, b, c.kernel, padding=pad))
            else:
                layers.append(ComplexConv2d(a, b, c.kernel, padding=pad, channels_last=False))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU() if real else CReLU())
        self.denoiser = nn.Sequential(*layers)
        from utils.audio import mel_filterbank

        fb = torch.from_numpy(np.array(mel_filterbank(features), dtype=np.float32))
        self.register_buffer("fb", fb, persistent=False)
        # the last layer starts at zero: an untrained model is exactly Griffin-Lim
        last = self.denoiser[-1]
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()

    def denoise(self, X: Tensor, Y: Tensor, Z: Tensor) -> Tensor:
        """The network's estimate of what ``Z`` has wrong, ``[B, F, T]`` complex.

        Notebook: notebooks/08_vocoders.ipynb
        """
        h = torch.stack([X, Y, Z], dim=1)                       # [B, 3, F, T] complex
        if self.config.kind == "mag":                            # sees and sets |·| only
            r = self.denoiser(h.abs())[:, 0]                      # [B, F, T] real
            # Z − D = (|Z| − r)·e^{i∠Z}; r·sgn(Z), not torch.polar, whose gradient with respect
            # to the magnitude is zero where the magnitude is zero (the zero-initialised start)
            return r * Z.sgn()
        if self.config.kind == "real":
            h = torch.cat([h.real, h.imag], dim=1)               # [B, 6, F, T]
            r = self.denoiser(h)
            return torch.complex(r[:, 0], r[:, 1])
        return self.denoiser(h)[:, 0]

    def forward(self, magnitude: Tensor, X0: Tensor, mel: Tensor, length: int | None = None,
                iterations: int | None = None, every: bool = False) -> Tensor | list[Tensor]:
        """The spectrogram after the warm start and ``iterations`` learned rounds (``every``:
        after each learned round).

        Notebook: notebooks/08_vocoders.ipynb

        Args:
            magnitude: ``A₀`` ``[B, F, T]`` (the NNLS magnitude of the mel).
            X0: The first estimate ``[B, F, T]`` complex (``A₀`` with PGHI's phase).
            mel: The linear mel ``[B, n_mels, T]`` the magnitude is re-estimated toward.
            length: Signal length in samples (for the consistency projection).
            iterations: Learned rounds (default the configuration's).
            every: Return the list of every learned round's estimate.
        """
        f = self.features
        scale = magnitude.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-8)
        A, X, M = magnitude / scale, X0 / scale, mel / scale
        fb = self.fb
        with torch.no_grad():  # the classical warm start (fast Griffin-Lim, momentum 0.99)
            previous = None
            for _ in range(self.config.warm):
                T = project_consistent(project_magnitude(X, A), f, length)
                X = T if previous is None else T + 0.99 * (T - previous)
                previous = T
                A = mel_magnitude_step(X.abs(), M, f, fb)
        out = []
        for _ in range(iterations or self.config.iterations):
            A = mel_magnitude_step(X.abs(), M, f, fb)
            Y = project_magnitude(X, A)
            Z = project_consistent(Y, f, length)
            X = Z - self.denoise(X, Y, Z)
            out.append(X * scale)
        return out if every else out[-1]

    @torch.no_grad()
    def synthesize(self, logmel: np.ndarray, length: int | None = None) -> np.ndarray:
        """One NumPy log-mel ``[n_mels, T]`` → NumPy waveform (eval mode).

        Notebook: notebooks/08_vocoders.ipynb
        """
        A, phase = magnitude_and_phase(logmel, self.features)
        was = self.training
        self.eval()
        try:
            A_t = torch.from_numpy(A)[None]
            X0 = torch.polar(A_t, torch.from_numpy(phase))
            mel = torch.pow(10.0, torch.from_numpy(np.asarray(logmel, dtype=np.float32)))[None]
            X = self(A_t, X0, mel, length)
            return torch_istft(X, self.features, length)[0].numpy()
        finally:
            self.train(was)

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
                        map_location: str | torch.device = "cpu") -> DeepGriffinLim:
        """Rebuild a model from a checkpoint (``weights_only=True``), in eval mode.

        Notebook: notebooks/08_vocoders.ipynb

        Raises:
            CheckpointError: Not a Deep Griffin-Lim checkpoint, other feature settings, or
                weights that do not fit.
        """
        return rebuild_model(cls, DeGLIConfig, path, MODEL_KIND, map_location=map_location,
                             features=True)


def magnitude_and_phase(logmel: np.ndarray, features: FeatureConfig = FEATURES, *,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The classical start: NNLS magnitude of the mel and PGHI's phase on it (float32).

    Notebook: notebooks/08_vocoders.ipynb
    """
    M = np.power(10.0, np.asarray(logmel, dtype=np.float64)).astype(np.float32)
    A = mel_to_magnitude(M, features)
    return A, pghi(A, features, seed=seed).astype(np.float32)
