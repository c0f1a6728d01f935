"""Players and tables for notebooks: jointly normalised audio players, result tables, and the
callbacks of the notebooks' interactive explorers.

Figures live in :mod:`utils.plot`; this module turns signals and results into HTML a notebook
shows (and a web page keeps).

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable, Mapping, Sequence

import librosa
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import HTML, Audio

from utils.audio import (
    FEATURES,
    SR,
    FeatureConfig,
    mel_spectrogram,
    mel_to_audio,
    peak_normalize,
    stft,
)
from utils.plot import spectrogram, spectrogram_rows

__all__ = ["player_table", "table", "feature_explorer", "figure_png", "reconstruction_explorer"]

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
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def reconstruction_explorer(
    y: np.ndarray,
    reconstruct: Callable[[np.ndarray], np.ndarray],
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
