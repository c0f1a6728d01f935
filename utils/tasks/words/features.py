"""What a word classifier hears: the compressed complex STFT of a centred clip, and the input
each kind of model gets from it; a folder of clips loaded as such features.

The clip is resampled to 8 kHz, centred on its energy in a 1 s window and peak-normalised
(:func:`prepare_clip`), then ``X = STFT(y)`` with a 256-point Hann window and a 128-sample hop
(``[1, 129, 63]`` complex64 per clip); the magnitude is compressed with a power law that keeps
the phase (:func:`compress`): ``F = |X|^c · e^{i∠X}``, ``c = 0.3``. A complex model gets ``F``,
its real twin ``|F|`` or ``[Re F, Im F]`` (:func:`model_input`). Why these numbers: see
:mod:`utils.tasks.words`.

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import librosa
import numpy as np
import torch
from torch import Tensor

from utils.audio import FeatureConfig, stft
from utils.data.speech_commands import SpeechCommands

__all__ = ["KINDS", "WordFeatures", "WORD_FEATURES", "prepare_clip", "compress", "decompress",
           "complex_features", "magnitude_features", "model_input", "WordData", "load_words"]

#: ``"complex"``: complex model on the compressed complex STFT; ``"real"``: its real twin on the
#: compressed magnitude; ``"ri"``: the same real twin on the stacked real and imaginary parts
#: (two channels), the control that sees the phase with real arithmetic.
KINDS = ("complex", "real", "ri")
#: Real input channels of each real kind.
REAL_IN_CHANNELS = {"real": 1, "ri": 2}


@dataclass(frozen=True)
class WordFeatures:
    """Feature parameters of the word classifiers (stored in every checkpoint).

    Notebook: notebooks/06_complex_networks.ipynb

    Attributes:
        sr: Sample rate of the features in Hz (clips are resampled to it).
        length: Samples per clip after centring, at ``sr`` (8000 = 1 s).
        n_fft: FFT size and Hann window length (256 = 32 ms at 8 kHz).
        hop_length: Hop in samples (128 = 16 ms; half the window, so the STFT is invertible).
        exponent: Power-law compression of the modulus, ``|X|^exponent``; the phase is kept.
    """

    sr: int = 8000
    length: int = 8000
    n_fft: int = 256
    hop_length: int = 128
    exponent: float = 0.3

    @property
    def stft_config(self) -> FeatureConfig:
        """The :class:`utils.audio.FeatureConfig` of the STFT (for ``stft`` / ``istft``)."""
        return FeatureConfig(sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Feature shape ``(1, bins, frames)`` of one clip."""
        return (1, self.n_fft // 2 + 1, 1 + self.length // self.hop_length)


#: The features of the shipped checkpoints: ``[1, 129, 63]`` per 1 s clip.
WORD_FEATURES = WordFeatures()


def prepare_clip(y: np.ndarray, length: int = WORD_FEATURES.length) -> np.ndarray:
    """Centre a clip on its energy in a window of ``length`` samples and peak-normalise it to 1.

    The bundled words sit in the middle of their 1 s clips, real recordings anywhere: centring
    on the energy centroid ``Σ t·y(t)² / Σ y(t)²`` makes both alike. Samples outside the window
    are dropped, missing ones are zeros. A silent clip stays silent.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        y: Mono waveform of any length.
        length: Output length in samples.

    Returns:
        float32 waveform of ``length`` samples with peak 1 (or all zeros).
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"expected a mono waveform (samples,), got shape {y.shape}")
    energy = y.astype(np.float64) ** 2
    total = float(energy.sum())
    centre = (float(np.arange(y.size) @ energy) / total) if total > 0 else (y.size - 1) / 2
    start = int(round(centre)) - length // 2
    out = np.zeros(length, dtype=np.float32)
    lo, hi = max(start, 0), min(start + length, y.size)
    if hi > lo:
        out[lo - start : hi - start] = y[lo:hi]
    peak = float(np.max(np.abs(out)))
    return out / peak if peak > 0 else out


def compress(X: np.ndarray | Tensor, exponent: float = WORD_FEATURES.exponent):
    """Power-law compression of the modulus that keeps the phase: ``|X|^c · e^{i∠X}``.

    Computed as ``X · |X|^(c-1)`` (0 where ``X = 0``), so no angle is ever formed.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        X: Complex array or tensor (NumPy or torch).
        exponent: ``c`` in (0, 1]; 1 is the identity.

    Returns:
        The compressed array/tensor, same type, shape and dtype.
    """
    if isinstance(X, Tensor):
        mag = X.abs()
        gain = torch.where(mag > 0, mag.clamp_min(1e-30) ** (exponent - 1), torch.zeros_like(mag))
        return X * gain
    X = np.asarray(X)
    mag = np.abs(X)
    with np.errstate(divide="ignore"):
        gain = np.where(mag > 0, np.maximum(mag, 1e-30) ** (exponent - 1), 0.0)
    return (X * gain).astype(X.dtype, copy=False)


def decompress(Fc: np.ndarray | Tensor, exponent: float = WORD_FEATURES.exponent):
    """Inverse of :func:`compress`: ``|F|^(1/c) · e^{i∠F}``.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        Fc: Compressed complex array or tensor.
        exponent: The ``c`` used by :func:`compress`.

    Returns:
        The complex STFT, same type as the input.
    """
    return compress(Fc, 1.0 / exponent)


def complex_features(y: np.ndarray, cfg: WordFeatures = WORD_FEATURES,
                     sr: int | None = None) -> np.ndarray:
    """Compressed complex STFT of a clip: the input of the complex models.

    Resample to ``cfg.sr`` (if ``sr`` differs) → :func:`prepare_clip` (centre on the energy,
    peak 1) → STFT (Hann, ``cfg.n_fft``, ``cfg.hop_length``) → :func:`compress`.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        y: Mono waveform (any length).
        cfg: Feature parameters.
        sr: Sample rate of ``y`` (default ``cfg.sr``: no resampling).

    Returns:
        complex64 array of shape ``cfg.shape`` = ``(1, 129, 63)`` by default.
    """
    y = np.asarray(y, dtype=np.float32)
    if sr is not None and sr != cfg.sr:
        y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sr, res_type="soxr_hq")
    X = stft(prepare_clip(y, cfg.length), cfg.stft_config)
    return compress(X.astype(np.complex64), cfg.exponent)[None]


def magnitude_features(y: np.ndarray, cfg: WordFeatures = WORD_FEATURES,
                       sr: int | None = None) -> np.ndarray:
    """Compressed magnitude ``|X|^c`` of a clip: the input of the real twins.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        y: Mono waveform.
        cfg: Feature parameters.
        sr: Sample rate of ``y`` (default ``cfg.sr``).

    Returns:
        float32 array of shape ``cfg.shape``.
    """
    return np.abs(complex_features(y, cfg, sr)).astype(np.float32)


def model_input(features: Tensor, kind: str) -> Tensor:
    """The input a model of ``kind`` gets from complex features: themselves, their modulus, or
    their real and imaginary parts stacked as two channels.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        features: Complex features ``[B, 1, F, T]`` (:func:`complex_features`).
        kind: ``"complex"``, ``"real"`` or ``"ri"``.

    Returns:
        ``features`` for ``"complex"``; ``features.abs()`` ``[B, 1, F, T]`` for ``"real"``;
        ``[Re, Im]`` ``[B, 2, F, T]`` for ``"ri"`` (float32).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not features.is_complex():
        raise TypeError(f"expected complex features, got {features.dtype}")
    if kind == "complex":
        return features
    if kind == "real":
        return features.abs()
    return torch.cat([features.real, features.imag], dim=1)


class WordData(NamedTuple):
    """Features and labels of one split, held in memory.

    Notebook: notebooks/06_complex_networks.ipynb

    Attributes:
        x: Complex features ``[N, 1, F, T]`` (complex64).
        y: Label indices ``[N]`` (int64) into ``words``.
        words: Class names.
        files: Source file of every item.
        failed: ``(file, reason)`` of every file that could not be used (skipped).
    """

    x: Tensor
    y: Tensor
    words: list[str]
    files: list[Path]
    failed: list[tuple[Path, str]] = []


def load_words(
    root: str | Path,
    split: str | None = "train",
    *,
    words: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    cfg: WordFeatures = WORD_FEATURES,
) -> WordData:
    """Load a Speech Commands-layout folder as complex features (unreadable files are skipped).

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        root: Dataset folder (e.g. ``data/speech_words``).
        split: ``"train"``, ``"validation"``, ``"testing"`` or ``None`` (every clip).
        words: Word folders to read (default: all).
        classes: Class list the labels index into (default: ``words`` as read). Use the model's
            classes to evaluate on a folder holding only some of them.
        cfg: Feature parameters.

    Returns:
        A :class:`WordData`.
    """
    ds = SpeechCommands(root, words=words, split=split, sr=cfg.sr, length=None,
                        transform=lambda y: complex_features(y, cfg), cache=False)
    names = list(classes) if classes is not None else list(ds.words)
    missing = [w for w in ds.words if w not in names]
    if missing:
        raise ValueError(f"{root}: word(s) {missing} are not among the classes {names}")
    if len(ds) == 0:
        raise ValueError(f"{root}: no usable clip in split {split!r}")
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.tensor([names.index(ds.words[label]) for label in ds.labels], dtype=torch.int64)
    return WordData(x, y, names, list(ds.files), list(ds.failed))
