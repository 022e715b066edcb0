"""Numba kernels for rolling extremes: rolling max/min and IV-rank style range rank.

Same conventions as the other ``_*_nb`` modules: float64 ``(n_bars, n_columns)`` inputs, one
left-to-right pass per column, value at row ``i`` from rows ``<= i`` only, and a NaN row restarts
the window (NaN output until ``window`` valid rows follow). Extremes use a monotonic deque, so the
cost is O(n) whatever the window.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.indicators._nb import nan_matrix


@njit(cache=True)
def rolling_extreme_column(values, window, want_max, out):
    """Write the max (``want_max``) or min of the last ``window`` values of a column into ``out``.

    ``out`` must be NaN-filled by the caller; rows inside the warm-up or after a NaN stay NaN.
    """
    n = values.shape[0]
    queue = np.empty(n, dtype=np.int64)  # row indices whose values are monotonic
    head = 0
    tail = 0
    run = 0
    for i in range(n):
        v = values[i]
        if np.isnan(v):
            head, tail, run = 0, 0, 0
            continue
        run += 1
        if want_max:
            while tail > head and values[queue[tail - 1]] <= v:
                tail -= 1
        else:
            while tail > head and values[queue[tail - 1]] >= v:
                tail -= 1
        queue[tail] = i
        tail += 1
        if queue[head] <= i - window:
            head += 1
        if run >= window:
            out[i] = values[queue[head]]


@njit(cache=True)
def rolling_max_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Maximum of the last ``window`` values including the current one (TA-Lib MAX)."""
    n, m = x.shape
    out = nan_matrix(n, m)
    for j in range(m):
        rolling_extreme_column(x[:, j], window, True, out[:, j])
    return out


@njit(cache=True)
def rolling_min_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Minimum of the last ``window`` values including the current one (TA-Lib MIN)."""
    n, m = x.shape
    out = nan_matrix(n, m)
    for j in range(m):
        rolling_extreme_column(x[:, j], window, False, out[:, j])
    return out


@njit(cache=True)
def range_rank_nb(x: np.ndarray, window: int) -> np.ndarray:
    """``(x - min) / (max - min)`` over the last ``window`` values; NaN when ``max == min``."""
    n, m = x.shape
    out = nan_matrix(n, m)
    highs = np.full(n, np.nan)
    lows = np.full(n, np.nan)
    for j in range(m):
        highs[:] = np.nan
        lows[:] = np.nan
        rolling_extreme_column(x[:, j], window, True, highs)
        rolling_extreme_column(x[:, j], window, False, lows)
        for i in range(n):
            width = highs[i] - lows[i]
            if width > 0.0:
                out[i, j] = (x[i, j] - lows[i]) / width
    return out


@njit(cache=True)
def percentile_rank_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Fraction of the last ``window`` values (current included) that are ``<=`` the current one."""
    n, m = x.shape
    out = nan_matrix(n, m)
    for j in range(m):
        run = 0
        for i in range(n):
            v = x[i, j]
            if np.isnan(v):
                run = 0
                continue
            run += 1
            if run < window:
                continue
            at_or_below = 0
            for k in range(i - window + 1, i + 1):
                if x[k, j] <= v:
                    at_or_below += 1
            out[i, j] = at_or_below / window
    return out


@njit(cache=True)
def drawdown_nb(x: np.ndarray) -> np.ndarray:
    """``x / running_peak - 1`` (<= 0). NaN rows give NaN and keep the peak; NaN while peak <= 0."""
    n, m = x.shape
    out = nan_matrix(n, m)
    for j in range(m):
        peak = np.nan
        for i in range(n):
            v = x[i, j]
            if np.isnan(v):
                continue
            if np.isnan(peak) or v > peak:
                peak = v
            if peak > 0.0:
                out[i, j] = (v - peak) / peak
    return out
