"""Objective quality of a reconstruction: PESQ-WB, log-mel L1 and STOI, after alignment.

Definitions (``docs/metrics.md``): both signals at 16 kHz are aligned by cross-correlation, then

- **PESQ-WB**: ITU-T P.862.2 wide-band MOS-LQO from the ``pesq`` package (1.04 … 4.64).
- **log-mel L1**: mean |log10(max(M, 1e-5)) − log10(max(M̂, 1e-5))| with the collection's
  80-band magnitude mel (n_fft 1024, hop 256), :data:`utils.audio.FEATURES`.
- **STOI**: ``pystoi``; unreliable on ~1 s clips (too few 384 ms analysis segments), so it is
  reported only with that caveat.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from utils.audio import FEATURES, SR, FeatureConfig, log_mel

__all__ = ["align", "logmel_l1", "pesq_wb", "stoi", "evaluate_pair", "STOI_CAVEAT"]

STOI_CAVEAT = "STOI is unreliable on clips of about 1 s (too few analysis segments)."


def align(
    reference: np.ndarray, estimate: np.ndarray, max_lag: int = 1600
) -> tuple[np.ndarray, np.ndarray]:
    """Shift ``estimate`` to best match ``reference`` (cross-correlation), crop to overlap.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Signal to align (samples,), e.g. a codec's or model's output.
        max_lag: Largest shift searched, in samples (1600 = 100 ms at 16 kHz).

    Returns:
        ``(reference, estimate)`` cropped to the same length, aligned.
    """
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    n = min(len(ref), len(est))
    if n == 0:
        raise ValueError("cannot align empty signals")
    nfft = 1 << (len(ref) + len(est) - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(ref, nfft) * np.conj(np.fft.rfft(est, nfft)), nfft)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = int(lags[np.argmax(xc[lags])])
    if lag >= 0:  # the estimate is early: reference[lag:] matches estimate[0:]
        ref, est = ref[lag:], est
    else:
        ref, est = ref, est[-lag:]
    m = min(len(ref), len(est))
    return ref[:m].astype(np.float32), est[:m].astype(np.float32)


def logmel_l1(
    reference: np.ndarray, estimate: np.ndarray, cfg: FeatureConfig = FEATURES
) -> float:
    """Mean absolute difference of base-10 log-mel spectrograms (no alignment done here).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Estimated signal of the same length.
        cfg: Feature configuration (default: the metric's definition).

    Returns:
        The L1 distance (0 = identical).
    """
    a, b = log_mel(reference, cfg), log_mel(estimate, cfg)
    t = min(a.shape[1], b.shape[1])
    return float(np.mean(np.abs(a[:, :t] - b[:, :t])))


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sr: int = SR) -> float:
    """Wide-band PESQ (P.862.2) of two aligned 16 kHz signals; NaN if PESQ finds no speech.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Estimated signal (samples,).
        sr: Sample rate; must be 16000 for wide-band PESQ.

    Returns:
        MOS-LQO in [1.04, 4.64], or NaN when no utterance is detected.
    """
    from pesq import NoUtterancesError, pesq

    if sr != 16000:
        raise ValueError(f"PESQ-WB needs 16 kHz audio, got {sr} Hz")
    try:
        ref = np.asarray(reference, np.float32)
        return float(pesq(sr, ref, np.asarray(estimate, np.float32), "wb"))
    except NoUtterancesError:
        return math.nan


def stoi(reference: np.ndarray, estimate: np.ndarray, sr: int = SR) -> float:
    """Short-time objective intelligibility (see :data:`STOI_CAVEAT`).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Estimated signal (samples,).
        sr: Sample rate in Hz.

    Returns:
        STOI in [0, 1], or NaN when it cannot be measured: fewer than 30 non-silent frames
        (one 384 ms segment) are left after pystoi drops frames 40 dB below the loudest.
    """
    from pystoi import stoi as _stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(_stoi(reference, estimate, sr, extended=False))
        except Exception:  # pystoi raises on clips with fewer frames than one segment
            return math.nan
    # pystoi warns and returns 1e-5 when, after dropping silent frames, fewer than one
    # 384 ms segment is left: that is "not measurable", not "unintelligible".
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return math.nan
    return value


def evaluate_pair(
    reference: np.ndarray, estimate: np.ndarray, *, with_stoi: bool = False
) -> dict[str, float]:
    """Align, then compute PESQ-WB and log-mel L1 (and STOI if asked).

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal at 16 kHz.
        estimate: Reconstruction at 16 kHz.
        with_stoi: Also compute STOI (slow-ish, unreliable on short clips).

    Returns:
        ``{"pesq_wb": ..., "logmel_l1": ...}`` (+ ``"stoi"``).
    """
    ref, est = align(reference, estimate)
    out = {"pesq_wb": pesq_wb(ref, est), "logmel_l1": logmel_l1(ref, est)}
    if with_stoi:
        out["stoi"] = stoi(ref, est)
    return out
