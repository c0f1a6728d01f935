"""Objective quality of one reconstruction: PESQ-WB, ViSQOL, log-mel L1, STOI and DNSMOS.

Definitions (``docs/metrics.md``); both signals at 16 kHz, already in time (a system's known
delay is compensated first, :mod:`utils.delay`):

- **PESQ-WB**: ITU-T P.862.2 wide-band MOS-LQO from the ``pesq`` package (1.04 … 4.64).
- **ViSQOL v3, speech mode**: MOS-LQO (1 … 5) from ``visqol-python`` (the C++ default's lattice
  mapper when ``ai-edge-litert`` is installed); intrusive, the score codec papers report.
- **log-mel L1**: mean |log10(max(M, 1e-5)) − log10(max(M̂, 1e-5))| with the collection's
  80-band magnitude mel (n_fft 1024, hop 256), :data:`utils.audio.FEATURES`.
- **STOI**: ``pystoi``; unreliable on ~1 s clips (too few 384 ms analysis segments), so it is
  reported only with that caveat.
- **DNSMOS P.835**: reference-free SIG / BAK / OVRL (1 … 5) from the ONNX models shipped in
  ``speechmos``, on one 9.01 s window (a shorter clip is repeated to fill it).

**Scores never end a batch.** Each score that cannot be measured on a pair (too short, silent,
no speech found, not finite, a failure inside the C code) raises :class:`NotMeasurable` with
the reason inside :func:`measure`, which every batch uses: the value becomes NaN and the
reason is kept. The plain functions (:func:`pesq_wb`, ...) return NaN for those cases, so a
notebook can call them on anything. PESQ on a clip longer than :data:`PESQ_SEGMENT_S` is
computed on consecutive segments cut at the quietest frame near each boundary and averaged,
weighted by length: the C code overflows its stack on long recordings of many utterances.

Notebook: notebooks/01_signal_processing.ipynb
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from utils.audio import FEATURES, SR, FeatureConfig, log_mel

__all__ = [
    "STOI_CAVEAT",
    "METRICS",
    "NotMeasurable",
    "PESQ_MIN_S",
    "PESQ_SEGMENT_S",
    "logmel_l1",
    "pesq_wb",
    "stoi",
    "visqol",
    "dnsmos",
    "measure",
    "evaluate_pair",
]

STOI_CAVEAT = "STOI is unreliable on clips of about 1 s (too few analysis segments)."

#: Every score a clip can get, in the order tables show them.
METRICS = ("pesq_wb", "visqol", "logmel_l1", "stoi", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")

#: PESQ needs at least this much audio (seconds); shorter pairs are "too short".
PESQ_MIN_S = 0.25
#: PESQ of a longer pair is the length-weighted mean over segments of at most this length.
PESQ_SEGMENT_S = 20.0
#: A signal whose peak is below this is "silent" (−100 dBFS).
SILENCE_PEAK = 1e-5
#: DNSMOS scores windows of this many seconds (the length its models were trained on).
DNSMOS_WINDOW_S = 9.01


class NotMeasurable(Exception):
    """A score that cannot be computed on this pair; ``reason`` says why, in a few words.

    Notebook: notebooks/01_signal_processing.ipynb
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _as_signal(y: np.ndarray, what: str, min_s: float = 0.0) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise NotMeasurable(f"{what} has NaN or infinite samples")
    if len(y) < min_s * SR:
        raise NotMeasurable(f"too short ({len(y) / SR:.3f} s < {min_s:g} s)")
    if len(y) == 0 or float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise NotMeasurable(f"{what} is silent")
    return y


def _pair(reference: np.ndarray, estimate: np.ndarray, min_s: float = 0.0,
          silent_estimate_ok: bool = False) -> tuple[np.ndarray, np.ndarray]:
    ref = _as_signal(reference, "reference", min_s)
    est = np.asarray(estimate, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(est)):
        raise NotMeasurable("estimate has NaN or infinite samples")
    n = min(len(ref), len(est))
    if n < min_s * SR:
        raise NotMeasurable(f"too short ({n / SR:.3f} s < {min_s:g} s)")
    if not silent_estimate_ok and (n == 0 or float(np.max(np.abs(est[:n]))) < SILENCE_PEAK):
        raise NotMeasurable("estimate is silent")
    return ref[:n], est[:n]


# --------------------------------------------------------------------------------------------
# The scores; each ``_name`` raises NotMeasurable, each public ``name`` returns NaN instead
# --------------------------------------------------------------------------------------------


def _logmel_l1(reference: np.ndarray, estimate: np.ndarray,
               cfg: FeatureConfig = FEATURES) -> float:
    ref, est = _pair(reference, estimate, silent_estimate_ok=True)
    if len(ref) < cfg.n_fft // 2 + 1:
        raise NotMeasurable(f"too short ({len(ref)} samples for one {cfg.n_fft}-point frame)")
    a, b = log_mel(ref, cfg), log_mel(est, cfg)
    return float(np.mean(np.abs(a - b)))


def _quietest_cut(y: np.ndarray, start: int, stop: int, frame: int = 320) -> int:
    """The start of the quietest ``frame``-sample frame in ``y[start:stop]``."""
    seg = y[start:stop]
    n = len(seg) // frame
    if n < 2:
        return stop
    energy = (seg[: n * frame].reshape(n, frame) ** 2).sum(axis=1)
    return start + int(np.argmin(energy)) * frame


def _segments(n: int, ref: np.ndarray, seconds: float) -> list[tuple[int, int]]:
    """Cut ``[0, n)`` into pieces of at most ``seconds``, at quiet frames of the reference."""
    most = int(seconds * SR)
    bounds, start = [], 0
    while n - start > most:
        cut = _quietest_cut(ref, start + most // 2, start + most)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < PESQ_MIN_S * SR:
        (a, _), (_, d) = bounds[-2], bounds.pop()
        bounds[-1] = (a, d)
    return bounds


def _pesq_wb(reference: np.ndarray, estimate: np.ndarray, sr: int = SR) -> float:
    from pesq import NoUtterancesError, PesqError, pesq

    if sr != 16000:
        raise ValueError(f"PESQ-WB needs 16 kHz audio, got {sr} Hz")
    ref, est = _pair(reference, estimate, PESQ_MIN_S)
    scores, weights = [], []
    for a, b in _segments(len(ref), ref, PESQ_SEGMENT_S):
        if float(np.max(np.abs(ref[a:b]))) < SILENCE_PEAK:
            continue  # a silent stretch of a long recording has nothing to judge
        try:
            scores.append(float(pesq(sr, ref[a:b], est[a:b], "wb")))
            weights.append(b - a)
        except NoUtterancesError:
            continue
        except (PesqError, ValueError, OverflowError) as exc:
            raise NotMeasurable(f"PESQ failed: {type(exc).__name__}: {exc}") from None
    if not scores:
        raise NotMeasurable("no speech found by PESQ")
    return float(np.average(scores, weights=weights))


def _stoi(reference: np.ndarray, estimate: np.ndarray, sr: int = SR) -> float:
    from pystoi import stoi as _pystoi

    ref, est = _pair(reference, estimate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(_pystoi(ref, est, sr, extended=False))
        except Exception as exc:  # pystoi raises on clips with fewer frames than one segment
            raise NotMeasurable(f"too little speech for STOI ({type(exc).__name__})") from None
    # pystoi warns and returns 1e-5 when, after dropping silent frames, fewer than one
    # 384 ms segment is left: that is "not measurable", not "unintelligible".
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        raise NotMeasurable("too little speech for STOI (< one 384 ms segment)")
    return value


@lru_cache(maxsize=1)
def _visqol_api() -> Any:
    import logging

    from visqol import VisqolApi

    logging.getLogger("visqol").setLevel(logging.ERROR)
    api = VisqolApi()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api.create(mode="speech")
    return api


def _visqol(reference: np.ndarray, estimate: np.ndarray, sr: int = SR) -> float:
    if sr != 16000:
        raise ValueError(f"ViSQOL's speech mode needs 16 kHz audio, got {sr} Hz")
    ref, est = _pair(reference, estimate, PESQ_MIN_S)
    try:
        result = _visqol_api().measure_from_arrays(ref.astype(np.float64),
                                                   est.astype(np.float64), sample_rate=sr)
    except Exception as exc:  # the package's own checks (too short for a patch, ...)
        raise NotMeasurable(f"ViSQOL failed: {type(exc).__name__}: {exc}") from None
    value = float(result.moslqo)
    if not math.isfinite(value):
        raise NotMeasurable("ViSQOL gave no finite score")
    return value


@lru_cache(maxsize=1)
def _dnsmos_model() -> Any:
    import os

    import onnxruntime as ort
    from speechmos import dnsmos as _dn

    folder = os.path.join(os.path.dirname(_dn.__file__), "dnsmos_models")
    # the package's own class, with sessions of one thread each: a batch already runs one
    # clip at a time, and ONNX Runtime's default (a thread per core) oversubscribes the
    # machine when evaluations run side by side
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model = _dn.DNSMOS.__new__(_dn.DNSMOS)
    model.primary_model_path = os.path.join(folder, "sig_bak_ovr.onnx")
    model.onnx_sess = ort.InferenceSession(model.primary_model_path, options,
                                           providers=["CPUExecutionProvider"])
    model.p808_onnx_sess = ort.InferenceSession(os.path.join(folder, "model_v8.onnx"), options,
                                                providers=["CPUExecutionProvider"])
    return model


def _dnsmos(estimate: np.ndarray, sr: int = SR) -> dict[str, float]:
    if sr != 16000:
        raise ValueError(f"DNSMOS needs 16 kHz audio, got {sr} Hz")
    y = _as_signal(estimate, "signal", PESQ_MIN_S)
    y = np.clip(y, -1.0, 1.0)
    win = int(DNSMOS_WINDOW_S * sr)
    if len(y) < win:  # repeat the clip to fill one window, as the reference code does
        y = np.tile(y, win // len(y) + 1)[:win]
    starts = list(range(0, len(y) - win + 1, win)) or [0]
    if starts[-1] + win < len(y):
        starts.append(len(y) - win)
    model = _dnsmos_model()
    out: dict[str, list[float]] = {"sig": [], "bak": [], "ovrl": []}
    for s in starts:
        # exactly one window per call: the package's loop then scores it once
        r = model(y[s : s + win].astype(np.float32), sr, False)
        out["sig"].append(float(r["sig_mos"]))
        out["bak"].append(float(r["bak_mos"]))
        out["ovrl"].append(float(r["ovrl_mos"]))
    return {f"dnsmos_{k}": float(np.mean(v)) for k, v in out.items()}


def _nan_on_failure(fn: Callable[..., float], *args: Any) -> float:
    try:
        return fn(*args)
    except NotMeasurable:
        return math.nan


def logmel_l1(reference: np.ndarray, estimate: np.ndarray,
              cfg: FeatureConfig = FEATURES) -> float:
    """Mean absolute difference of base-10 log-mel spectrograms of two signals in time.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Estimated signal, in time with the reference (cropped to the shorter).
        cfg: Feature configuration (default: the metric's definition).

    Returns:
        The L1 distance (0 = identical); NaN when it cannot be measured (see module doc).
    """
    return _nan_on_failure(_logmel_l1, reference, estimate, cfg)


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sr: int = SR) -> float:
    """Wide-band PESQ (P.862.2) of two 16 kHz signals in time; NaN if it cannot be measured.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Estimated signal (samples,).
        sr: Sample rate; must be 16000 for wide-band PESQ.

    Returns:
        MOS-LQO in [1.04, 4.64], or NaN (too short, silent, no speech found, a PESQ failure).
    """
    return _nan_on_failure(_pesq_wb, reference, estimate, sr)


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
    return _nan_on_failure(_stoi, reference, estimate, sr)


def visqol(reference: np.ndarray, estimate: np.ndarray, sr: int = SR) -> float:
    """ViSQOL v3 in speech mode (MOS-LQO, 1 … 5) of two 16 kHz signals; NaN if not measurable.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal (samples,).
        estimate: Estimated signal (samples,).
        sr: Sample rate; must be 16000 for the speech mode.

    Returns:
        MOS-LQO, or NaN (too short, silent, a failure inside the package).
    """
    return _nan_on_failure(_visqol, reference, estimate, sr)


def dnsmos(signal: np.ndarray, sr: int = SR) -> dict[str, float]:
    """DNSMOS P.835 of one 16 kHz signal, no reference: ``dnsmos_sig``, ``_bak``, ``_ovrl``.

    SIG judges the speech, BAK the background, OVRL the whole (1 … 5). A clip shorter than
    9.01 s is repeated to fill one window; a longer one is scored on consecutive windows.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        signal: The signal to judge (samples,).
        sr: Sample rate; must be 16000.

    Returns:
        The three scores (NaN each when the signal is too short, silent or not finite).
    """
    try:
        return _dnsmos(signal, sr)
    except NotMeasurable:
        return {"dnsmos_sig": math.nan, "dnsmos_bak": math.nan, "dnsmos_ovrl": math.nan}


def measure(reference: np.ndarray, estimate: np.ndarray, *,
            metrics: Sequence[str] = ("pesq_wb", "logmel_l1")) -> tuple[dict[str, float],
                                                                        dict[str, str]]:
    """Every asked score of one pair in time, and the reason of each that is NaN.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal at 16 kHz.
        estimate: Reconstruction at 16 kHz, already in time with the reference.
        metrics: Names from :data:`METRICS` (any of the three ``dnsmos_*`` asks for all three).

    Returns:
        ``(scores, reasons)``: ``scores[name]`` is a number or NaN; ``reasons[name]`` says why
        for every NaN.
    """
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {METRICS}")
    single = {"pesq_wb": _pesq_wb, "visqol": _visqol, "logmel_l1": _logmel_l1, "stoi": _stoi}
    scores: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name in metrics:
        if name in single:
            try:
                scores[name] = single[name](reference, estimate)
            except NotMeasurable as exc:
                scores[name], reasons[name] = math.nan, exc.reason
    if any(m.startswith("dnsmos_") for m in metrics):
        try:
            scores.update(_dnsmos(estimate))
        except NotMeasurable as exc:
            for k in ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"):
                scores[k], reasons[k] = math.nan, exc.reason
    return scores, reasons


def evaluate_pair(reference: np.ndarray, estimate: np.ndarray, *, delay: int = 0,
                  with_stoi: bool = False, with_visqol: bool = False) -> dict[str, float]:
    """PESQ-WB and log-mel L1 (and STOI, ViSQOL if asked) of one reconstruction.

    The estimate is taken to be in time except for its system's known ``delay``, which is
    compensated (:func:`utils.delay.compensate`); nothing is searched.

    Notebook: notebooks/01_signal_processing.ipynb

    Args:
        reference: Reference signal at 16 kHz.
        estimate: Reconstruction at 16 kHz.
        delay: The system's known delay in samples (its output is late by this much).
        with_stoi: Also compute STOI (unreliable on short clips).
        with_visqol: Also compute ViSQOL.

    Returns:
        ``{"pesq_wb": ..., "logmel_l1": ...}`` (+ ``"stoi"``, ``"visqol"``); NaN where a score
        cannot be measured.
    """
    from utils.delay import compensate

    ref, est = compensate(reference, estimate, delay)
    names = ["pesq_wb", "logmel_l1"] + (["stoi"] if with_stoi else []) + (
        ["visqol"] if with_visqol else [])
    return measure(ref, est, metrics=names)[0]
