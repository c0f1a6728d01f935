"""Figures and players: waveform, spectrogram (physical axes, dB colour bars), player tables.

Helpers accept ``ax=`` and return ``(fig, ax, artist)`` so they compose into subplot grids.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import librosa
import librosa.display
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, Audio

from utils.audio import FEATURES, SR, FeatureConfig, log_mel, peak_normalize

__all__ = [
    "setup",
    "waveform",
    "spectrogram",
    "log_mel_figure",
    "spectrogram_rows",
    "player_table",
    "table",
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
    if title:
        ax.set_title(title)
    if colorbar:
        fmt = "%+2.0f dB" if unit == "dB" else None
        cb = fig.colorbar(img, ax=ax, format=fmt)
        if unit != "dB":
            cb.set_label(unit)
    return fig, ax, img


def log_mel_figure(
    y: np.ndarray,
    cfg: FeatureConfig = FEATURES,
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
    **kwargs,
):
    """Compute the collection's log-mel of ``y`` and show it in dB on a mel axis.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        y: Mono signal at ``cfg.sr``.
        cfg: Feature configuration.
        ax: Axes to draw on.
        title: Axes title.
        **kwargs: Passed to :func:`spectrogram`.

    Returns:
        ``(fig, ax, image)``.
    """
    db = _log_mel_db(y, cfg)
    kwargs.setdefault("vmin", float(db.max()) - 80.0)
    return spectrogram(
        db, cfg.sr, cfg.hop_length, ax=ax, y_axis="mel", title=title, fmax=cfg.fmax, **kwargs
    )


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


def player_table(
    rows: Mapping[str, Mapping[str, np.ndarray]] | Mapping[str, np.ndarray],
    sr: int = SR,
    *,
    peak: float = 0.95,
    normalize_rows_separately: bool = True,
) -> HTML:
    """An HTML table of audio players, jointly peak-normalised, ``normalize=False``.

    Either one row (``{"original": y, "reconstruction": y_hat}``) or several rows
    (``{"clip 1": {"original": ..., "model": ...}, ...}``; every row has the same columns).
    All players in a row share one gain, so loudness differences stay audible (with
    ``normalize_rows_separately=False``, one gain for the whole table).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        rows: One mapping column → signal, or row label → (column → signal).
        sr: Sample rate of every signal.
        peak: Peak of the loudest signal after the joint gain.
        normalize_rows_separately: One gain per row (``True``) or for the table.

    Returns:
        An ``IPython.display.HTML`` object (display it, or let the cell show it).
    """
    first = next(iter(rows.values()))
    if isinstance(first, np.ndarray) or np.isscalar(first) or not hasattr(first, "items"):
        rows = {"": rows}  # a single row
    columns = list(next(iter(rows.values())).keys())
    if not normalize_rows_separately:
        flat = [np.asarray(s) for r in rows.values() for s in r.values()]
        gain_src = peak_normalize(*flat, peak=peak)
        it = iter(gain_src)
        rows = {k: {c: next(it) for c in r} for k, r in rows.items()}
    else:
        rows = {k: dict(zip(r.keys(), peak_normalize(*r.values(), peak=peak), strict=True))
                for k, r in rows.items()}
    head = "".join(f"<th style='text-align:center'>{html.escape(c)}</th>" for c in columns)
    label_head = "<th></th>" if any(rows.keys()) else ""
    body = []
    for label, r in rows.items():
        players = (Audio(np.asarray(r[c], np.float32), rate=sr, normalize=False) for c in columns)
        cells = "".join(f"<td>{p._repr_html_()}</td>" for p in players)
        lab = f"<th style='text-align:left'>{html.escape(str(label))}</th>" if label_head else ""
        body.append(f"<tr>{lab}{cells}</tr>")
    return HTML(f"<table><tr>{label_head}{head}</tr>{''.join(body)}</table>")


def table(records: Sequence[Mapping[str, object]], floatfmt: str = "{:.3f}") -> HTML:
    """A small HTML table of results (one dict per row), floats formatted.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        records: Rows as mappings column → value; columns from the first row.
        floatfmt: Format for float values.

    Returns:
        An ``IPython.display.HTML`` table.
    """
    if not records:
        return HTML("<p>(no rows)</p>")
    cols = list(records[0].keys())

    def fmt(v):
        if isinstance(v, float | np.floating):
            return "n/a" if np.isnan(v) else floatfmt.format(v)
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in records
    )
    return HTML(f"<table><tr>{head}</tr>{body}</table>")


def feature_explorer(
    y: np.ndarray,
    sr: int = SR,
    n_fft: int = 1024,
    hop_length: int = 256,
    n_mels: int = 80,
    *,
    n_iter: int = 16,
):
    """Callback of notebook 01's ``interact``: STFT and mel of ``y`` for chosen parameters.

    Draws the dB spectrogram and the log-mel side by side and returns a player table of the
    original and its Griffin-Lim reconstruction from that mel, so the effect of n_fft / hop /
    n_mels can be both seen and heard.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        y: Mono signal.
        sr: Sample rate.
        n_fft: FFT size (window length).
        hop_length: Hop in samples (must not exceed n_fft).
        n_mels: Mel bands.
        n_iter: Griffin-Lim iterations for the audible reconstruction.

    Returns:
        ``(fig, player_html)``.
    """
    from utils.audio import mel_spectrogram, mel_to_audio, stft

    if hop_length > n_fft:
        raise ValueError(f"hop_length {hop_length} > n_fft {n_fft}: frames would leave gaps")
    cfg = FEATURES.with_(sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3), layout="constrained")
    S_db = librosa.amplitude_to_db(np.abs(stft(y, cfg)), ref=np.max, top_db=80)
    spectrogram(S_db, sr, hop_length, ax=a, y_axis="linear",
                title=f"|STFT| n_fft={n_fft}, hop={hop_length}")
    M = mel_spectrogram(y, cfg)
    spectrogram(librosa.amplitude_to_db(M, ref=np.max, top_db=80), sr, hop_length, ax=b,
                y_axis="mel", title=f"mel, {n_mels} bands")
    y_hat = mel_to_audio(M, cfg, n_iter=n_iter, length=len(y))
    return fig, player_table({"original": y, f"Griffin-Lim from {n_mels}-band mel": y_hat}, sr)


def figure_png(fig, dpi: int | None = None) -> bytes:
    """Render a figure to PNG bytes and close it (for ``ipywidgets.Image`` in callbacks).

    Interactive callbacks in this collection update ``Image``/``HTML`` widgets instead of
    displaying into ``interact``'s output area: displaying audio players there can deadlock
    headless execution (jupyter/nbconvert#2029, jupyter/nbclient#312).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        fig: A matplotlib figure.
        dpi: Resolution (default: the figure's).

    Returns:
        The PNG file's bytes.
    """
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def reconstruction_explorer(
    y: np.ndarray,
    reconstruct,
    label: str = "reconstruction",
    cfg: FeatureConfig = FEATURES,
):
    """Callback of notebook 02's ``interact``: original vs one reconstruction, seen and heard.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        y: Mono signal at ``cfg.sr``.
        reconstruct: Function waveform → reconstructed waveform (e.g. a codec at one bit rate).
        label: Name of the reconstruction (row title and player column).
        cfg: Feature configuration of the figure.

    Returns:
        ``(png_bytes, player_html)``: the log-mel rows as PNG and an HTML player table.
    """
    y_hat = np.asarray(reconstruct(y), dtype=np.float32)
    fig, _, _ = spectrogram_rows({"original": y, label: y_hat}, cfg, row_height=1.6)
    return figure_png(fig), player_table({"original": y, label: y_hat}, cfg.sr).data
