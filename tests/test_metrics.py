"""utils.metrics: the scores of one pair, and why none of them can end a batch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from utils import metrics
from utils.audio import SR, load

REAL = Path(__file__).resolve().parents[1] / "data" / "real_speech"


@pytest.fixture(scope="module")
def real_clip() -> np.ndarray:
    return load(REAL / "speech_commands" / "right" / "50033893_nohash_0.flac", SR)


def test_identical_signals_score_perfectly(voiced):
    r = metrics.evaluate_pair(voiced, voiced.copy())
    assert r["logmel_l1"] == 0.0
    assert r["pesq_wb"] > 4.5


def test_evaluate_pair_compensates_a_known_delay_and_searches_nothing(voiced):
    late = np.concatenate([np.zeros(37, np.float32), voiced])
    assert metrics.evaluate_pair(voiced, late, delay=37)["logmel_l1"] == 0.0
    # without the delay it is scored as it is: a late output is worse, never shifted
    assert metrics.evaluate_pair(voiced, late)["logmel_l1"] > 0.01


def test_degradation_lowers_pesq_and_raises_l1(voiced):
    rng = np.random.default_rng(0)
    noisy = voiced + 0.05 * rng.standard_normal(len(voiced)).astype(np.float32)
    clean = metrics.evaluate_pair(voiced, voiced)
    bad = metrics.evaluate_pair(voiced, noisy)
    assert bad["pesq_wb"] < clean["pesq_wb"] - 1.0
    assert bad["logmel_l1"] > 0.1


def test_pesq_no_speech_is_nan_and_stoi_has_caveat(voiced):
    assert math.isnan(metrics.pesq_wb(np.zeros(16000, np.float32), np.zeros(16000, np.float32)))
    s = metrics.stoi(voiced, voiced)
    assert math.isnan(s) or 0.9 < s <= 1.0
    assert "unreliable" in metrics.STOI_CAVEAT


def test_stoi_is_nan_when_too_little_speech_to_measure():
    """Defect: pystoi's warning was suppressed and its 1e-5 reported as STOI ≈ 0."""
    rng = np.random.default_rng(0)
    y = np.zeros(16000, np.float32)
    y[6000:9000] = 0.3 * rng.standard_normal(3000)  # 190 ms of sound: < one 384 ms segment
    assert math.isnan(metrics.stoi(y, y))
    long = 0.3 * rng.standard_normal(48000).astype(np.float32)
    assert metrics.stoi(long, long) > 0.99


# ------------------------------------------------------------- scores that never crash


@pytest.mark.parametrize("seconds", [0.06, 0.1, 0.2, 0.249])
def test_short_clip_is_nan_with_a_reason_not_buffer_too_short_error(seconds, real_clip):
    """Defect: a 0.06–0.25 s clip raised pesq's raw BufferTooShortError."""
    y = real_clip[4000 : 4000 + int(seconds * SR)]
    scores, reasons = metrics.measure(y, y, metrics=("pesq_wb", "visqol", "logmel_l1"))
    assert math.isnan(scores["pesq_wb"]) and reasons["pesq_wb"].startswith("too short")
    assert math.isnan(scores["visqol"]) and reasons["visqol"].startswith("too short")
    assert math.isnan(metrics.pesq_wb(y, y))


def test_silent_reference_is_nan_with_a_reason_not_overflow_error(real_clip):
    """Defect: an all-zero reference raised OverflowError."""
    zero = np.zeros_like(real_clip)
    scores, reasons = metrics.measure(zero, real_clip, metrics=metrics.METRICS)
    for name in ("pesq_wb", "visqol", "stoi"):
        assert math.isnan(scores[name]), name
        assert reasons[name] == "reference is silent"
    assert math.isfinite(scores["dnsmos_ovrl"])  # reference-free: the estimate is judged
    scores, reasons = metrics.measure(real_clip, zero, metrics=("pesq_wb", "dnsmos_ovrl"))
    assert reasons == {"pesq_wb": "estimate is silent", "dnsmos_sig": "signal is silent",
                       "dnsmos_bak": "signal is silent", "dnsmos_ovrl": "signal is silent"}


def test_nan_samples_are_a_reason_not_a_crash(real_clip):
    bad = real_clip.copy()
    bad[100] = np.nan
    scores, reasons = metrics.measure(real_clip, bad, metrics=metrics.METRICS)
    assert all(math.isnan(v) for v in scores.values())
    assert reasons["pesq_wb"] == "estimate has NaN or infinite samples"


def test_long_recording_of_many_utterances_is_scored_in_segments(monkeypatch):
    """Defect: a 60 s recording of several utterances crashed the PESQ C code (the batch was
    lost). Long pairs are scored in ≤ 20 s segments cut at quiet frames."""
    import pesq as pesq_package

    sentence = load(REAL / "common_voice_hsb" / "CV00001" / "common_voice_hsb_20797893.flac")
    gap = np.zeros(SR // 2, np.float32)
    y = np.concatenate([np.concatenate([sentence, gap])] * 9)[: 60 * SR]
    rng = np.random.default_rng(1)
    est = (y + 0.003 * rng.standard_normal(len(y))).astype(np.float32)
    lengths = []
    real_pesq = pesq_package.pesq

    def spy(sr, ref, deg, mode):
        lengths.append(len(ref))
        return real_pesq(sr, ref, deg, mode)

    monkeypatch.setattr(pesq_package, "pesq", spy)
    value = metrics.pesq_wb(y, est)
    assert 3.0 < value <= 4.64
    assert len(lengths) >= 3 and max(lengths) <= metrics.PESQ_SEGMENT_S * SR
    assert sum(lengths) == len(y)


def test_second_opinions_on_a_real_clip(real_clip):
    rng = np.random.default_rng(0)
    noisy = (real_clip + 0.002 * rng.standard_normal(len(real_clip))).astype(np.float32)
    assert metrics.visqol(real_clip, real_clip) > metrics.visqol(real_clip, noisy) > 1.0
    clean, dirty = metrics.dnsmos(real_clip), metrics.dnsmos(noisy)
    assert set(clean) == {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"}
    assert all(1.0 <= v <= 5.0 for v in clean.values())
    assert dirty["dnsmos_bak"] < clean["dnsmos_bak"]  # the background got worse


def test_measure_refuses_an_unknown_metric(voiced):
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.measure(voiced, voiced, metrics=("pesq",))
