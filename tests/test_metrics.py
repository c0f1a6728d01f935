"""utils.metrics: alignment, log-mel L1, PESQ-WB and STOI."""

from __future__ import annotations

import math

import numpy as np

from utils import metrics


def test_align_recovers_a_known_delay(voiced):
    for lag in (0, 37, -120, 800):
        est = np.roll(voiced, lag) if lag >= 0 else np.concatenate([voiced[-lag:], np.zeros(-lag)])
        est = est.astype(np.float32)
        ref_a, est_a = metrics.align(voiced, est)
        assert len(ref_a) == len(est_a)
        core = slice(1000, 8000)
        np.testing.assert_allclose(ref_a[core], est_a[core], atol=1e-6)


def test_identical_signals_score_perfectly(voiced):
    r = metrics.evaluate_pair(voiced, voiced.copy())
    assert r["logmel_l1"] == 0.0
    assert r["pesq_wb"] > 4.5


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
