"""Hypothesis-test helpers of :mod:`cortexsim.analysis.compare`: Welch's t-test, Hedges' g, and the
Holm and Benjamini-Hochberg multiple-comparison corrections (plain numpy/scipy)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

__all__ = ["holm_adjust", "benjamini_hochberg_adjust", "welch_test", "hedges_g"]


def holm_adjust(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down; controls the family-wise error rate)."""
    p = np.asarray(p_values, dtype=float).reshape(-1)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must be finite numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def benjamini_hochberg_adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (step-up; controls the false discovery rate)."""
    p = np.asarray(p_values, dtype=float).reshape(-1)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must be finite numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def welch_test(a, b) -> tuple[float, float, float]:
    """Welch's two-sample t-test: (t, degrees of freedom, two-sided p).

    Both groups need >= 2 values. If both have zero spread the test degenerates: p = 1 for equal
    means, p = 0 otherwise (the difference cannot be noise).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"welch_test needs >= 2 values per group, got {a.size} and {b.size}")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff = b.mean() - a.mean()
    if va + vb == 0:
        return (0.0, math.inf, 1.0) if diff == 0 else (math.copysign(math.inf, diff), math.inf, 0.0)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    return float(t), float(df), float(2 * scipy_stats.t.sf(abs(t), df))


def hedges_g(a, b) -> float:
    """Standardised mean difference (mean(b) - mean(a)) / pooled SD, small-sample corrected."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or b.size < 2:
        raise ValueError(f"hedges_g needs >= 2 values per group, got {a.size} and {b.size}")
    n = a.size + b.size
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (n - 2))
    diff = b.mean() - a.mean()
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return float(diff / pooled * (1 - 3 / (4 * n - 9)))
