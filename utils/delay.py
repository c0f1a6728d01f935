"""Delays: every system states how late its output is, and the scorer compensates exactly that.

A reconstruction is scored against its original only after both are in time. The collection
does this **by the system's known delay, never by searching the waveforms**: a reconstruction
whose phase is invented (Griffin-Lim, a vocoder, a mel codec) has no waveform-level match with
the original, so a cross-correlation peak between them is spurious and "aligning" on it moves
an output that was already in time. So

- the collection's models and Griffin-Lim are in time by construction: delay 0;
- a waveform codec used as an anchor (Codec 2, Opus) has a fixed delay per mode, measured once
  on a known signal (:func:`measure_delay`, used by :mod:`utils.baselines`) and compensated;
- for a file from elsewhere, whose delay nobody stated, :func:`estimate_delay` estimates it on
  a **phase-blind** representation (log-mel frames, the metric's own), refined on the waveform
  only where the waveform correlation itself is clear, and trusted only when the improvement
  over "no delay" is clear.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from utils.audio import FEATURES, SR, log_mel

__all__ = ["DelayEstimate", "compensate", "shift", "estimate_delay", "measure_delay",
           "known_signal"]

#: How much better (relative log-mel L1) a lag must fit than "no delay" to be believed.
CLEAR_GAIN = 0.01
#: A waveform correlation at least this strong (normalised) is a real waveform match.
WAVEFORM_MATCH = 0.5


def shift(y: np.ndarray, delay: int, length: int | None = None) -> np.ndarray:
    """``y`` delayed by ``delay`` samples (negative: advanced), zero-filled, cut to ``length``.

    Notebook: notebooks/01_signal_processing.ipynb
    """
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    n = len(y) if length is None else length
    out = np.zeros(n, np.float32)
    if delay >= 0:
        piece = y[: max(0, n - delay)]
        out[delay : delay + len(piece)] = piece
    else:
        piece = y[-delay : -delay + n]
        out[: len(piece)] = piece
    return out


def compensate(reference: np.ndarray, estimate: np.ndarray,
               delay: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Undo a known delay: ``estimate[t + delay]`` is compared with ``reference[t]``.

    Both are cut to the overlap; nothing is searched, so an output that is in time
    (``delay = 0``) is only cropped to the shorter length.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: The system's output (samples,).
        delay: How late the output is, in samples (negative: early).

    Returns:
        ``(reference, estimate)`` in time, of equal length (float32).
    """
    ref = np.asarray(reference, dtype=np.float32).reshape(-1)
    est = np.asarray(estimate, dtype=np.float32).reshape(-1)
    delay = int(delay)
    if delay >= 0:
        est = est[delay:]
    else:
        ref = ref[-delay:]
    n = min(len(ref), len(est))
    return ref[:n], est[:n]


@dataclasses.dataclass(frozen=True)
class DelayEstimate:
    """What :func:`estimate_delay` found.

    Notebook: notebooks/01_signal_processing.ipynb

    Attributes:
        lag: The delay to compensate, in samples (0 unless the evidence is clear).
        best: The best-fitting lag, whether or not it was believed.
        clear: Whether ``best`` fits clearly better than no delay (then ``lag == best``).
        gain: Relative log-mel L1 improvement of ``best`` over no delay.
        waveform: Whether the lag was refined on the waveform (a real waveform match).
    """

    lag: int
    best: int
    clear: bool
    gain: float
    waveform: bool


def estimate_delay(reference: np.ndarray, estimate: np.ndarray, *, max_lag: int = 1600,
                   clear_gain: float = CLEAR_GAIN) -> DelayEstimate:
    """Estimate how late ``estimate`` is, without trusting its phase.

    1. Coarse: the log-mel L1 of the metrics (phase-blind, so it works for Griffin-Lim or a
       vocoder) between the reference and the estimate advanced by every 16th lag.
    2. Fine: the best lag within ±16 samples of the coarse one, sample by sample.
    3. If the *waveforms* correlate strongly (normalised peak ≥ 0.5) within ±32 samples of
       that, the output kept the original's waveform (a waveform codec, a filter): the
       waveform peak is exact, and it is used.
    4. The lag is believed only if it fits better than no delay by ``clear_gain`` (relative
       log-mel L1), or the waveform match says so; otherwise the answer is 0.

    The phase-blind estimate is exact for outputs that keep the original's waveform and good
    to a few samples (about 0.2 ms) for outputs with an invented phase.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Output of unknown delay (samples,).
        max_lag: Largest delay searched, either way, in samples (1600 = 0.1 s).
        clear_gain: See step 4.

    Returns:
        A :class:`DelayEstimate`.
    """
    ref = np.asarray(reference, dtype=np.float32).reshape(-1)
    est = np.asarray(estimate, dtype=np.float32).reshape(-1)
    # every lag is judged on the same stretch of the reference, inside its edges, so that no
    # lag wins by comparing zeros it shifted in with a quiet edge
    max_lag = int(min(max_lag, max(0, (len(ref) - FEATURES.n_fft) // 3)))
    hop = FEATURES.hop_length
    a = -(-max_lag // hop) * hop  # on the frame grid of the metric's STFT
    n = len(ref) - 2 * a
    if n < FEATURES.n_fft or len(est) < FEATURES.n_fft:
        return DelayEstimate(0, 0, False, 0.0, False)
    window = ref[a : a + n]
    inner = slice(2, -2)  # frames that see no edge padding of the window
    ref_mel = log_mel(window)[:, inner]

    def piece(lag: int) -> np.ndarray:
        return shift(est, -(a + lag), n)

    def l1(lag: int) -> float:
        return float(np.mean(np.abs(ref_mel - log_mel(piece(lag))[:, inner])))

    step = 16
    scores = {lag: l1(lag) for lag in range(-max_lag, max_lag + 1, step)}
    coarse = min(scores, key=scores.get)
    for lag in range(max(-max_lag, coarse - step), min(max_lag, coarse + step) + 1):
        if lag not in scores:
            scores[lag] = l1(lag)
    best = min(scores, key=scores.get)
    at_zero = scores[0] if 0 in scores else l1(0)
    gain = (at_zero - scores[best]) / max(at_zero, 1e-12)
    # waveform refinement, only where the waveforms really match
    lags = range(max(-max_lag, best - 2 * step), min(max_lag, best + 2 * step) + 1)
    norm = float(np.linalg.norm(window)) or 1.0
    corr = {lag: float(np.dot(window, p)) / (norm * (float(np.linalg.norm(p)) or 1.0))
            for lag in lags for p in [piece(lag)]}
    peak = max(corr, key=corr.get)
    waveform = corr[peak] >= WAVEFORM_MATCH
    if waveform:
        best = int(peak)
    clear = waveform or gain > clear_gain
    return DelayEstimate(best if clear else 0, int(best), bool(clear), float(gain),
                         bool(waveform))


def known_signal(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    """The signal delays are measured on: a chirp, then gated harmonic tones with sharp onsets.

    The chirp sweeps 100 Hz … 3.8 kHz (a waveform codec keeps it, so its waveform peak is
    exact); the gated tones (f0 110, 140 and 190 Hz, 200 ms on, 200 ms off, 5 ms ramps) are
    speech-like, which a parametric codec such as Codec 2 models, and their onsets time it.

    Notebook: notebooks/01_signal_processing.ipynb
    """
    t = np.arange(int(seconds * sr)) / sr
    half = seconds / 2
    chirp = np.sin(2 * np.pi * (100 * t + (3800 - 100) / (2 * half) * t**2)) * (t < half)
    f0 = np.where(t < half + half / 3, 110.0, np.where(t < half + 2 * half / 3, 140.0, 190.0))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tones = sum(np.sin(k * phase) / k for k in range(1, 24)) * (t >= half)
    gate = ((t % 0.4) < 0.2).astype(float)
    ramp = np.hanning(int(0.005 * sr))
    gate = np.convolve(gate, ramp / ramp.sum(), mode="same")
    y = 0.5 * chirp + 0.3 * tones * gate / 2.5
    return y.astype(np.float32)


def measure_delay(system: Callable[[np.ndarray], np.ndarray], *, max_lag: int = 1600) -> int:
    """A system's fixed delay in samples, measured once on :func:`known_signal`.

    Each half of the known signal (the chirp and the gated tones) is passed through the
    system on its own; the delay is the waveform-refined estimate where one half keeps its
    waveform (Opus keeps the chirp's), otherwise the phase-blind estimate of the half that
    fits clearest (a parametric codec such as Codec 2 cannot code a chirp, but times the
    onsets of the gated tones).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        system: Waveform (16 kHz) → the system's output (16 kHz).
        max_lag: Largest delay searched, in samples.

    Returns:
        The delay in samples (positive: the output is late).
    """
    y = known_signal()
    halves = [y[: len(y) // 2], y[len(y) // 2 :]]
    found = [estimate_delay(h, system(h), max_lag=max_lag, clear_gain=-1.0) for h in halves]
    exact = [f.best for f in found if f.waveform]
    if exact:
        return int(exact[0])
    return int(max(found, key=lambda f: f.gain).best)
