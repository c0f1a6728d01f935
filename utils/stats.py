"""Uncertainty of every verdict: bootstrap intervals over clips, paired differences, Welch + Holm.

Three questions, one function each:

- *How sure is this mean?* :func:`bootstrap_ci`: the mean over clips with a 95 % percentile
  bootstrap interval (clips resampled with replacement).
- *Is system A better than system B on the same clips?* :func:`paired_bootstrap`: the mean of
  the per-clip differences A − B with its bootstrap interval; the clips are resampled as pairs,
  so what both systems find hard cancels. A verdict is stated only when the interval excludes
  0 (:func:`verdict`).
- *Does training decide it?* :func:`welch` over seeds (unequal variances), and :func:`holm` to
  correct a family of such tests.

Notebook: notebooks/06_complex_networks.ipynb
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

__all__ = ["Interval", "bootstrap_ci", "paired_bootstrap", "verdict", "welch", "holm"]

#: Bootstrap resamples (enough for a stable 95 % interval's second decimal).
N_BOOT = 2000


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean with its 95 % interval, and how many values it rests on.

    Notebook: notebooks/06_complex_networks.ipynb
    """

    mean: float
    lo: float
    hi: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.lo:.3f}, {self.hi:.3f}]"

    def as_list(self, digits: int = 4) -> list[float | None]:
        """``[lo, hi]`` rounded (``None`` where undefined), for JSON."""
        return [None if math.isnan(v) else round(v, digits) for v in (self.lo, self.hi)]


def _finite(values: Sequence[float]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return v[np.isfinite(v)]


def bootstrap_ci(values: Sequence[float], *, level: float = 0.95, n_boot: int = N_BOOT,
                 seed: int = 0) -> Interval:
    """Mean of the finite values with a percentile bootstrap interval.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        values: One value per clip (NaN values are left out).
        level: Coverage of the interval.
        n_boot: Bootstrap resamples.
        seed: Seed of the resampling (fixed, so a table is reproducible).

    Returns:
        The :class:`Interval` (all NaN when no value is finite; ``lo == hi`` for one value).
    """
    v = _finite(values)
    if len(v) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if len(v) == 1:
        return Interval(float(v[0]), float(v[0]), float(v[0]), 1)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return Interval(float(v.mean()), float(lo), float(hi), len(v))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, level: float = 0.95,
                     n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """Mean per-clip difference ``a − b`` on the same clips, with its bootstrap interval.

    Notebook: notebooks/06_complex_networks.ipynb

    Args:
        a: Scores of system A, one per clip.
        b: Scores of system B on the same clips, in the same order.
        level, n_boot, seed: As in :func:`bootstrap_ci`.

    Returns:
        The :class:`Interval` of the difference (pairs with a NaN on either side left out).
    """
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired scores need the same clips: {x.shape} vs {y.shape}")
    return bootstrap_ci(x - y, level=level, n_boot=n_boot, seed=seed)


def verdict(diff: Interval, a: str, b: str, *, higher_is_better: bool = True) -> str:
    """What an interval of ``a − b`` supports, in words: which is better, or no verdict.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    if diff.n == 0 or math.isnan(diff.lo):
        return "not measured"
    if diff.lo <= 0 <= diff.hi:
        return f"no verdict: the interval of {a} − {b} contains 0"
    a_better = (diff.lo > 0) == higher_is_better
    return f"{a if a_better else b} is better"


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Welch's t-test of two independent samples (e.g. seeds): ``(t, two-sided p)``.

    Notebook: notebooks/06_complex_networks.ipynb
    """
    from scipy import stats

    x, y = _finite(a), _finite(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan
    res = stats.ttest_ind(x, y, equal_var=False)
    return float(res.statistic), float(res.pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values of a family of tests (same order as given).

    Notebook: notebooks/06_complex_networks.ipynb
    """
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()
