"""Figures: waveform, spectrogram (physical axes, dB colour bars), rows of log-mels.

Helpers accept ``ax=`` and return ``(fig, ax, artist)`` so they compose into subplot grids.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

from collections.abc import Mapping

import librosa
import librosa.display
import matplotlib.pyplot as plt
import numpy as np

from utils.audio import FEATURES, SR, FeatureConfig, log_mel

__all__ = [
    "phase_rows",
    "setup",
    "waveform",
    "spectrogram",
    "spectrogram_rows",
]


def setup(dpi: int = 80) -> None:
    """Apply the collection's figure style (explicit rcParams, no named styles).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        dpi: Figure resolution in the notebook.
    """
    plt.rcParams.update(
        {
            "figure.dpi": dpi,
            "figure.figsize": (8, 2.6),
            "axes.grid": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "image.cmap": "magma",
            "font.size": 10,
        }
    )


def _log_mel_db(y: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """The collection's log-mel in dB (20·log10 for a magnitude mel, 10·log10 for power)."""
    return (20.0 if cfg.power == 1 else 10.0) * log_mel(np.asarray(y, dtype=np.float32), cfg)


def _axes(ax: plt.Axes | None, figsize: tuple[float, float] = (8, 2.6)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    else:
        fig = ax.figure
    return fig, ax


def waveform(
    y: np.ndarray,
    sr: int = SR,
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    **kwargs,
):
    """Plot a waveform against time in seconds.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        y: Mono signal.
        sr: Sample rate in Hz.
        ax: Axes to draw on (a new figure if ``None``).
        title: Axes title.
        **kwargs: Passed to ``librosa.display.waveshow`` (e.g. ``color``, ``alpha``).

    Returns:
        ``(fig, ax, artist)``.
    """
    fig, ax = _axes(ax)
    kwargs.setdefault("color", "0.35")
    art = librosa.display.waveshow(np.asarray(y, dtype=np.float32), sr=sr, ax=ax, **kwargs)
    ax.set(xlabel="Time (s)", ylabel="Amplitude")
    if title:
        ax.set_title(title)
    return fig, ax, art


def spectrogram(
    S_db: np.ndarray,
    sr: int = SR,
    hop_length: int = FEATURES.hop_length,
    *,
    ax: plt.Axes | None = None,
    y_axis: str = "linear",
    title: str | None = None,
    colorbar: bool = True,
    unit: str = "dB",
    fmax: float | None = None,
    **kwargs,
):
    """Show a spectrogram in dB with physical axes (time in s, frequency in Hz).

    Always pass the ``sr`` and ``hop_length`` that computed the features, or the axes lie.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        S_db: Array (bins, frames), already in dB (or another log unit, see ``unit``).
        sr: Sample rate of the features.
        hop_length: Hop of the features in samples.
        ax: Axes to draw on (a new figure if ``None``).
        y_axis: ``"linear"``, ``"log"`` (STFT bins), ``"mel"`` (mel bands) or ``"frames"``.
        title: Axes title.
        colorbar: Add a colour bar labelled with ``unit``.
        unit: Colour-bar unit label.
        fmax: Top of a mel axis in Hz (default sr / 2).
        **kwargs: Passed to ``librosa.display.specshow`` (e.g. ``vmin``, ``cmap``).

    Returns:
        ``(fig, ax, image)``.
    """
    fig, ax = _axes(ax)
    if y_axis == "mel":
        kwargs.setdefault("fmax", fmax or sr / 2)
    img = librosa.display.specshow(
        np.asarray(S_db), sr=sr, hop_length=hop_length, x_axis="time", y_axis=y_axis, ax=ax,
        **kwargs,
    )
    ax.set_xlabel("Time (s)")
    if title:
        ax.set_title(title)
    if colorbar:
        fmt = "%+2.0f dB" if unit == "dB" else None
        cb = fig.colorbar(img, ax=ax, format=fmt)
        if unit != "dB":
            cb.set_label(unit)
    return fig, ax, img


def spectrogram_rows(
    signals: Mapping[str, np.ndarray],
    cfg: FeatureConfig = FEATURES,
    *,
    width: float = 8.0,
    row_height: float = 1.9,
):
    """One log-mel row per signal, sharing the time axis and the colour scale.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        signals: Label → mono signal at ``cfg.sr`` (e.g. original / ceiling / model).
        cfg: Feature configuration.
        width: Figure width in inches.
        row_height: Height of one row in inches.

    Returns:
        ``(fig, axes, images)``.
    """
    n = len(signals)
    fig, axes = plt.subplots(
        n, 1, figsize=(width, row_height * n), sharex=True, squeeze=False, layout="constrained"
    )
    axes = axes[:, 0]
    dbs = {k: _log_mel_db(v, cfg) for k, v in signals.items()}
    top = max(float(d.max()) for d in dbs.values())
    images = []
    for ax, (label, db) in zip(axes, dbs.items(), strict=True):
        _, _, img = spectrogram(
            db, cfg.sr, cfg.hop_length, ax=ax, y_axis="mel", colorbar=False, vmin=top - 80.0,
            vmax=top,
        )
        ax.set_title(label, loc="left", fontsize=10)
        ax.label_outer()
        images.append(img)
    fig.colorbar(images[0], ax=list(axes), format="%+2.0f dB")
    return fig, axes, images


def phase_rows(
    signals: Mapping[str, np.ndarray],
    sr: int = 16000,
    *,
    n_fft: int = 512,
    hop_length: int = 128,
    floor_db: float = -50.0,
    width: float = 8.0,
    row_height: float = 1.7,
):
    """One row per signal: the instantaneous-frequency deviation of each STFT bin (Hz).

    Bins more than ``-floor_db`` dB below the loudest bin of the row are grey: their phase is
    meaningless. Clean voiced speech shows smooth bands along the harmonics; noise and a phase
    borrowed from a noisy mixture show speckle.

    Notebook: notebooks/07_speech_enhancement.ipynb

    Args:
        signals: Label → mono signal at ``sr``.
        sr: Sample rate in Hz.
        n_fft: STFT size (Hann window).
        hop_length: STFT hop.
        floor_db: Level below the row's maximum under which bins are hidden.
        width: Figure width in inches.
        row_height: Height of one row in inches.

    Returns:
        ``(fig, axes)``.
    """
    import librosa

    from utils.audio import instantaneous_frequency

    n = len(signals)
    fig, axes = plt.subplots(n, 1, figsize=(width, row_height * n), sharex=True, squeeze=False,
                             layout="constrained")
    axes = axes[:, 0]
    lim = sr / (2 * hop_length)
    img = None
    for ax, (label, y) in zip(axes, signals.items(), strict=True):
        S = librosa.stft(np.asarray(y, dtype=np.float32), n_fft=n_fft, hop_length=hop_length,
                         window="hann")
        dev = instantaneous_frequency(S, sr, hop_length)
        level = 20 * np.log10(np.abs(S[:, 1:]) + 1e-12)
        dev = np.ma.masked_where(level < level.max() + floor_db, dev)
        cmap = plt.get_cmap("twilight").copy()
        cmap.set_bad("0.85")
        img = ax.imshow(dev, origin="lower", aspect="auto", cmap=cmap, vmin=-lim, vmax=lim,
                        extent=(0, dev.shape[1] * hop_length / sr, 0, sr / 2000))
        ax.set_title(label, loc="left", fontsize=10)
        ax.set_ylabel("kHz")
        ax.label_outer()
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(img, ax=list(axes), label="IF − bin centre (Hz)")
    return fig, axes
