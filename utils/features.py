"""The collection's one feature definition: sample rate, STFT and mel settings, mel filterbank.

Every forward feature and every inverse of the collection (:mod:`utils.audio`,
:mod:`utils.phase`) takes its settings from :class:`FeatureConfig` and its mel filterbank from
:func:`mel_filterbank`, so a transform and its inverse always share them. This module sits
below both: it imports nothing of the collection.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import librosa
import numpy as np

__all__ = ["SR", "FeatureConfig", "FEATURES", "mel_filterbank"]

#: Sample rate of every model and metric in the collection (Hz).
SR = 16_000


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters shared by a feature and its inverse.

    Notebook: notebooks/01_signal_processing.ipynb

    Attributes:
        sr: Sample rate in Hz.
        n_fft: FFT size (and Hann window length) in samples.
        hop_length: Hop between frames in samples.
        n_mels: Number of mel bands.
        fmin: Lowest mel-band edge in Hz.
        fmax: Highest mel-band edge in Hz (``None`` = sr / 2).
        htk: ``True`` for the HTK mel formula 2595·log10(1 + f/700); ``False`` for Slaney's
            (linear below 1 kHz, logarithmic above), librosa's default.
        norm: Filter normalisation, ``"slaney"`` (equal area) or ``None`` (peak 1).
        power: Exponent of the magnitude before the filterbank (1 = magnitude, 2 = power).
        log_floor: Floor applied before the logarithm of the log-mel.
    """

    sr: int = SR
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    norm: str | None = "slaney"
    power: float = 1.0
    log_floor: float = 1e-5

    def with_(self, **changes) -> FeatureConfig:
        """Return a copy with some fields changed.

        Notebook: notebooks/01_signal_processing.ipynb
        """
        return replace(self, **changes)

    @property
    def frames_per_second(self) -> float:
        """Feature frames per second (sr / hop_length)."""
        return self.sr / self.hop_length


#: The collection's feature definition (``docs/features.md``), also that of log-mel L1.
FEATURES = FeatureConfig()


@lru_cache(maxsize=16)
def _mel_basis(cfg: FeatureConfig) -> np.ndarray:
    fb = librosa.filters.mel(
        sr=cfg.sr,
        n_fft=cfg.n_fft,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=cfg.htk,
        norm=cfg.norm,
    )
    fb.setflags(write=False)
    return fb


def mel_filterbank(cfg: FeatureConfig = FEATURES) -> np.ndarray:
    """The mel filterbank used by both :func:`mel_spectrogram` and its inverses.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        cfg: Feature configuration (sr, n_fft, n_mels, fmin, fmax, htk, norm).

    Returns:
        Read-only matrix of shape (n_mels, 1 + n_fft // 2).
    """
    return _mel_basis(cfg)
