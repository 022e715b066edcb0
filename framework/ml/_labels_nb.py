"""Numba kernels for labels and sample weights: triple barrier, causal volatility, uniqueness.

Conventions: float64 1-D price and volatility inputs, int64 index outputs with ``-1`` for "not
known", NaN for a missing value. Inputs are validated by :mod:`framework.ml.labels`; the kernels
trust them (positive finite or NaN closes, ``start <= end < n_bars`` for every live sample).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from framework.indicators._volatility_nb import rolling_moments_column


@njit(cache=True)
def triple_barrier_nb(
    close: np.ndarray,
    vol: np.ndarray,
    profit_take: float,
    stop_loss: float,
    max_holding: int,
    zero_time_label: bool,
):
    """Label, resolution bar and realised return of the triple barrier for every bar.

    For bar ``i`` the closes ``j = i+1 .. i+max_holding`` are walked in order; the first close at
    or above ``close[i] * (1 + profit_take * vol[i])`` gives +1, at or below
    ``close[i] * (1 - stop_loss * vol[i])`` gives -1. Without a touch the label at the time
    barrier is the sign of its return (0 return -> -1) or 0 when ``zero_time_label``. A walk that
    runs off the end of the data before either happens stays unknown (NaN, -1, NaN): the bars
    that would decide it do not exist yet. A NaN close inside the walk cannot touch a barrier; a
    NaN close at the time barrier leaves the label unknown (its return is unknown).

    Returns
    -------
    label : (n,) float64
    end : (n,) int64
    ret : (n,) float64
    """
    n = close.shape[0]
    label = np.full(n, np.nan)
    end = np.full(n, -1, dtype=np.int64)
    ret = np.full(n, np.nan)
    for i in range(n):
        c0 = close[i]
        v = vol[i]
        # zero width means both barriers sit on the entry price: no meaningful label
        if not (math.isfinite(c0) and math.isfinite(v) and v > 0.0):
            continue
        upper = c0 * (1.0 + profit_take * v)
        lower = c0 * (1.0 - stop_loss * v)
        horizon = i + max_holding
        last = min(horizon, n - 1)
        touched = False
        for j in range(i + 1, last + 1):
            c = close[j]
            if c >= upper:
                label[i] = 1.0
                touched = True
            elif c <= lower:
                label[i] = -1.0
                touched = True
            if touched:
                end[i] = j
                ret[i] = c / c0 - 1.0
                break
        if touched or horizon >= n or not math.isfinite(close[horizon]):
            continue
        r = close[horizon] / c0 - 1.0
        if zero_time_label:
            label[i] = 0.0
        else:
            label[i] = 1.0 if r > 0.0 else -1.0
        end[i] = horizon
        ret[i] = r
    return label, end, ret


@njit(cache=True)
def simple_returns_nb(close: np.ndarray) -> np.ndarray:
    """``close[i] / close[i-1] - 1`` from bar 1; NaN when either close is missing."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    for i in range(1, n):
        now = close[i]
        before = close[i - 1]
        if math.isfinite(now) and math.isfinite(before) and before > 0.0:
            out[i] = now / before - 1.0
    return out


@njit(cache=True)
def return_volatility_nb(close: np.ndarray, window: int) -> np.ndarray:
    """Sample (ddof 1) std of the last ``window`` simple returns; a missing return restarts it."""
    n = close.shape[0]
    returns = simple_returns_nb(close)
    means = np.full(n, np.nan)
    variances = np.full(n, np.nan)
    rolling_moments_column(returns, window, means, variances, 1)
    out = np.full(n, np.nan)
    for i in range(n):
        if not np.isnan(variances[i]):
            out[i] = math.sqrt(variances[i])
    return out


@njit(cache=True)
def average_uniqueness_nb(start: np.ndarray, end: np.ndarray, n_bars: int) -> np.ndarray:
    """Mean of ``1 / c_t`` over each sample's span ``[start, end]``; 0 for ``end < 0``.

    ``c_t`` counts the live samples (``end >= 0``) whose span covers bar ``t``; it is built with a
    difference array so counting stays O(n_samples + n_bars) and exact in integers.
    """
    m = start.shape[0]
    diff = np.zeros(n_bars + 1, dtype=np.int64)
    for k in range(m):
        if end[k] >= 0:
            diff[start[k]] += 1
            diff[end[k] + 1] -= 1
    concurrency = np.zeros(n_bars, dtype=np.int64)
    running = 0
    for t in range(n_bars):
        running += diff[t]
        concurrency[t] = running
    weight = np.zeros(m)
    for k in range(m):
        if end[k] < 0:
            continue
        total = 0.0
        for t in range(start[k], end[k] + 1):
            total += 1.0 / concurrency[t]
        weight[k] = total / (end[k] - start[k] + 1)
    return weight
