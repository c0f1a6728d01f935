"""utils.stats against reference math: bootstrap intervals, paired differences, Welch, Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest

from utils import stats


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_clips():
    rng = np.random.default_rng(0)
    small = stats.bootstrap_ci(rng.normal(3.0, 0.5, 20))
    large = stats.bootstrap_ci(rng.normal(3.0, 0.5, 2000))
    assert small.lo < small.mean < small.hi
    assert large.hi - large.lo < (small.hi - small.lo) / 5
    # the normal-theory interval: mean ± 1.96 σ / √n
    half = 1.96 * 0.5 / math.sqrt(2000)
    assert large.hi - large.lo == pytest.approx(2 * half, rel=0.15)


def test_bootstrap_leaves_nan_out_and_counts_what_it_used():
    ci = stats.bootstrap_ci([1.0, float("nan"), 3.0])
    assert ci.n == 2 and ci.mean == 2.0
    assert stats.bootstrap_ci([]).n == 0 and math.isnan(stats.bootstrap_ci([]).mean)


def test_paired_bootstrap_sees_a_small_consistent_gain_that_unpaired_intervals_miss():
    rng = np.random.default_rng(1)
    clip_difficulty = rng.normal(0, 1.0, 80)
    a = 2.0 + clip_difficulty + 0.05 + rng.normal(0, 0.02, 80)
    b = 2.0 + clip_difficulty
    ia, ib = stats.bootstrap_ci(a), stats.bootstrap_ci(b)
    assert ia.lo < ib.hi  # the unpaired intervals overlap
    diff = stats.paired_bootstrap(a, b)
    assert diff.lo > 0  # the paired one does not contain 0
    assert stats.verdict(diff, "A", "B") == "A is better"
    assert stats.verdict(stats.paired_bootstrap(b, b), "A", "B").startswith("no verdict")
    assert stats.verdict(diff, "A", "B", higher_is_better=False) == "B is better"


def test_paired_needs_the_same_clips():
    with pytest.raises(ValueError, match="same clips"):
        stats.paired_bootstrap([1.0, 2.0], [1.0])


def test_welch_matches_the_textbook_formula():
    a, b = [92.1, 93.5, 95.0, 94.2], [86.0, 88.4, 85.1, 89.9, 87.2]
    t, p = stats.welch(a, b)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t_ref = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    from scipy.stats import t as student

    assert t == pytest.approx(t_ref)
    assert p == pytest.approx(2 * student.sf(abs(t_ref), df))


def test_holm_by_hand():
    # sorted p: 0.01 (×4), 0.02 (×3), 0.03 (×2), 0.5 (×1), running maximum, capped at 1
    assert stats.holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
