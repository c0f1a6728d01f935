"""Players and tables for notebooks: loudness-matched audio players, result tables, and the
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
import pyloudnorm
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

__all__ = [
    "loudness_normalize",
    "player_table",
    "table",
    "feature_explorer",
    "figure_png",
    "reconstruction_explorer",
]

#: Default target of every player group, in LUFS (EBU R 128's programme loudness).
LOUDNESS = -23.0


def _integrated_loudness(y: np.ndarray, sr: int) -> float:
    """Integrated loudness of one signal in LUFS (ITU-R BS.1770), ``-inf`` if it is silent.

    What BS.1770 measures, and why a gain moves it by exactly its dB:

    1. K-weighting: a high shelf (about +4 dB above ~1.5 kHz, the acoustic effect of the head)
       followed by the "RLB" high-pass (~38 Hz), so rumble counts little and presence a bit more.
    2. The K-weighted signal ``z`` is cut into 400 ms blocks with 75 % overlap (100 ms hop);
       block ``j`` has loudness ``l_j = -0.691 + 10 log10(mean(z²) over the block)``.
    3. Absolute gate: blocks with ``l_j <= -70 LUFS`` (near-silence) are dropped.
    4. Relative gate: the mean square of the remaining blocks gives ``Γ_r = L - 10 LU``; blocks
       at or below ``Γ_r`` (pauses, breaths, tails) are dropped as well.
    5. Integrated loudness ``L = -0.691 + 10 log10(mean of z² over the blocks kept)``.

    Filtering is linear and the relative gate is scale-invariant, so ``L(g·y) = L(y) + 20 log10
    g`` as long as the absolute gate keeps the same blocks; a gain of ``10**((target - L) / 20)``
    therefore puts a signal at ``target``. To keep the absolute gate out of that (a prior sample
    30 dB down must not lose blocks that the loud player keeps), the measurement runs on a copy
    scaled to peak 1 and the scale is added back.

    Edge cases:

    * Shorter than one 400 ms block (pyloudnorm refuses those): the copy is zero-padded to
      exactly one block, which is measured as one ungated block, and the padding is corrected
      by ``+10 log10(block / length)``: the K-weighted mean square over the clip itself.
    * Nothing survives the gates (e.g. a DC offset, which the high-pass removes): fall back to
      the unweighted RMS level ``-0.691 + 10 log10(mean(y²))``, so the player is still matched
      to something instead of getting an infinite gain.
    * All zeros, or empty: ``-inf`` (the caller leaves the signal silent).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        y: Mono signal ``(samples,)``, or ``(channels, samples)`` as ``IPython.display.Audio``
            takes it.
        sr: Sample rate in Hz.

    Returns:
        Loudness in LUFS, or ``-inf`` for a silent signal.
    """
    x = np.asarray(y, dtype=np.float64)
    x = x.T if x.ndim == 2 else x  # pyloudnorm wants (samples, channels)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if not top > 0 or not np.isfinite(top):
        return float("-inf")
    x = x / top
    offset = 20.0 * np.log10(top)
    meter = pyloudnorm.Meter(sr)  # block_size 0.4 s
    block = int(np.ceil(meter.block_size * sr))
    n = x.shape[0]
    if n < block:  # one ungated block over a zero-padded copy, corrected for the padding
        pad = [(0, block - n)] + [(0, 0)] * (x.ndim - 1)
        level = meter.integrated_loudness(np.pad(x, pad)) + 10.0 * np.log10(block / n)
    else:
        level = meter.integrated_loudness(x)
    if not np.isfinite(level):  # gates left nothing: RMS level instead
        level = -0.691 + 10.0 * np.log10(float(np.mean(np.sum(np.atleast_2d(x.T) ** 2, 0))))
    return float(level + offset)


def loudness_normalize(
    *signals: np.ndarray,
    sr: int = SR,
    loudness: float | None = LOUDNESS,
    peak: float = 0.95,
) -> list[np.ndarray]:
    """Scale a group of players to one integrated loudness, then limit the group's peak jointly.

    Each signal gets its own gain to ``loudness`` LUFS (ITU-R BS.1770, see
    :func:`_integrated_loudness` for what is measured); if any sample of the group would then
    exceed ``peak``, the whole group gets ONE further common gain reduction, so no player clips
    and all stay at the same loudness (just below the target). Silent or all-zero signals stay
    silent (no division by zero, no NaN).

    Use ``loudness=None`` when the level difference *is* the point (a reconstruction that lost
    energy, a gain sweep, noisy vs clean at a given SNR): then all signals share one gain, set
    by the loudest peak (:func:`utils.audio.peak_normalize`), and their level differences stay.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        *signals: The signals of one group (mono, or ``(channels, samples)``).
        sr: Sample rate of every signal.
        loudness: Common target in LUFS, or ``None`` for one joint peak gain.
        peak: Largest absolute sample allowed in the group.

    Returns:
        The scaled signals, float32, in the given order.
    """
    if loudness is None:
        return peak_normalize(*signals, peak=peak)
    out = []
    for s in signals:
        x = np.asarray(s, dtype=np.float64)
        level = _integrated_loudness(x, sr)
        out.append(x * 10.0 ** ((loudness - level) / 20.0) if np.isfinite(level) else x.copy())
    top = max((float(np.max(np.abs(x))) for x in out if x.size), default=0.0)
    if top > peak:
        out = [x * (peak / top) for x in out]
    return [x.astype(np.float32) for x in out]


def player_table(
    rows: Mapping[str, Mapping[str, np.ndarray]] | Mapping[str, np.ndarray],
    sr: int = SR,
    *,
    peak: float = 0.95,
    normalize_rows_separately: bool = True,
    loudness: float | None = LOUDNESS,
) -> HTML:
    """An HTML table of audio players, loudness-matched per group, ``normalize=False``.

    Either one row (``{"original": y, "reconstruction": y_hat}``) or several rows
    (``{"clip 1": {"original": ..., "model": ...}, ...}``; every row has the same columns).
    A group is a row (with ``normalize_rows_separately=False``, the whole table). Every player
    of a group is scaled to ``loudness`` LUFS (ITU-R BS.1770), then the group shares one peak
    limit (:func:`loudness_normalize`), so a quiet reconstruction plays as loud as the original
    beside it and the ear compares content, not level.

    Pass ``loudness=None`` when the level difference *is* the point (e.g. a reconstruction that
    lost energy, or a sweep over gains): the old behaviour, one common peak gain per group, so
    level differences stay audible.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        rows: One mapping column → signal, or row label → (column → signal).
        sr: Sample rate of every signal.
        peak: Largest absolute sample of a group (with ``loudness=None``: the loudest peak).
        normalize_rows_separately: Each row is a group (``True``) or the table is one group.
        loudness: Common integrated loudness in LUFS of every player of a group, or ``None``
            for one joint peak gain per group (level differences kept).

    Returns:
        An ``IPython.display.HTML`` object (display it, or let the cell show it).
    """
    first = next(iter(rows.values()))
    if isinstance(first, np.ndarray) or np.isscalar(first) or not hasattr(first, "items"):
        rows = {"": rows}  # a single row
    columns = list(next(iter(rows.values())).keys())
    if not normalize_rows_separately:
        flat = [np.asarray(s) for r in rows.values() for s in r.values()]
        gain_src = loudness_normalize(*flat, sr=sr, loudness=loudness, peak=peak)
        it = iter(gain_src)
        rows = {k: {c: next(it) for c in r} for k, r in rows.items()}
    else:
        rows = {
            k: dict(zip(r.keys(), loudness_normalize(*r.values(), sr=sr, loudness=loudness,
                                                     peak=peak), strict=True))
            for k, r in rows.items()
        }
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
    loudness: float | None = LOUDNESS,
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
        loudness: Common loudness of the two players in LUFS (see :func:`player_table`), or
            ``None`` for one joint peak gain.

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
    return fig, player_table({"original": y, f"Griffin-Lim from {n_mels}-band mel": y_hat}, sr,
                             loudness=loudness)


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
    *,
    loudness: float | None = LOUDNESS,
):
    """Callback of notebook 02's ``interact``: original vs one reconstruction, seen and heard.

    Notebook: notebooks/02_vq_vae.ipynb

    Args:
        y: Mono signal at ``cfg.sr``.
        reconstruct: Function waveform → reconstructed waveform (e.g. a codec at one bit rate).
        label: Name of the reconstruction (row title and player column).
        cfg: Feature configuration of the figure.
        loudness: Common loudness of the two players in LUFS (see :func:`player_table`), or
            ``None`` for one joint peak gain.

    Returns:
        ``(png_bytes, player_html)``: the log-mel rows as PNG and an HTML player table.
    """
    y_hat = np.asarray(reconstruct(y), dtype=np.float32)
    fig, _, _ = spectrogram_rows({"original": y, label: y_hat}, cfg, row_height=1.6)
    return figure_png(fig), player_table({"original": y, label: y_hat}, cfg.sr,
                                           loudness=loudness).data
