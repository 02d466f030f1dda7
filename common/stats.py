"""Intervals and paired tests shared by the reports: percentile bootstrap over items, the paired bootstrap of
a difference, McNemar's exact test."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def bootstrap_ci(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile interval of the mean of `values`."""
    if len(values) == 0:
        return (float("nan"), float("nan"))
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b = first right only, c = second right only."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_metric(
    units: Sequence, metric: Callable[[Sequence], float], n_boot: int, rng: np.random.Generator
) -> tuple[float, list[float]]:
    """A metric computed over units (solutions, questions) and its 95% bootstrap interval, units resampled
    with replacement. NaN resamples (e.g. one class missing for an AUROC) are left out."""
    value = metric(units)
    draws = []
    for _ in range(n_boot):
        m = metric([units[i] for i in rng.integers(0, len(units), len(units))])
        if not math.isnan(m):
            draws.append(m)
    if not draws:
        return value, [float("nan"), float("nan")]
    return value, [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]


def paired_bootstrap(
    units_a: Sequence, units_b: Sequence, metric: Callable[[Sequence], float], n_boot: int, rng: np.random.Generator
) -> dict:
    """metric(a) - metric(b) on the same units (aligned lists), with its 95% interval and a two-sided
    bootstrap p-value (twice the share of resampled differences on the other side of 0)."""
    if len(units_a) != len(units_b):
        raise ValueError("paired units must be aligned")
    diff = metric(units_a) - metric(units_b)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(units_a), len(units_a))
        d = metric([units_a[i] for i in idx]) - metric([units_b[i] for i in idx])
        if not math.isnan(d):
            draws.append(d)
    if not draws:
        return {"difference": diff, "ci95": [float("nan"), float("nan")], "p": float("nan"), "n": len(units_a)}
    draws_arr = np.array(draws)
    p = 2 * min((draws_arr <= 0).mean(), (draws_arr >= 0).mean())
    return {
        "difference": diff,
        "ci95": [float(np.percentile(draws_arr, 2.5)), float(np.percentile(draws_arr, 97.5))],
        "p": float(min(1.0, p)),
        "p_floor": 1 / len(draws),
        "n": len(units_a),
    }
