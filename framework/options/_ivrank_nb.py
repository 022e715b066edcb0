"""Numba kernels for IV rank and IV percentile over a trailing window.

Both kernels take a column-major float64 ``(n_bars, n_columns)`` array and walk each column once,
left to right, so row ``i`` only ever sees rows ``i - window + 1 .. i`` (causal). Unlike the
indicator kernels, a NaN does not restart the window: it is a missing observation that simply
does not count (as in ``pandas.Series.rolling(window, min_periods)``), because implied-volatility
histories have holes (holidays of one venue, failed fits) that should not cost a year of warm-up.
A row is NaN when its own value is NaN or when fewer than ``min_periods`` values in its window are
present.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _rank_column(x: np.ndarray, window: int, min_periods: int, out: np.ndarray) -> None:
    """Fill ``out`` with ``(x - min) / (max - min)`` of each trailing window of the 1-D ``x``.

    The window's maximum and minimum come from two monotonic queues of row numbers (O(1)
    amortised per row instead of O(window)): each queue only keeps rows that can still become the
    extreme of a later window.
    """
    n = x.shape[0]
    max_q = np.empty(n, np.int64)
    min_q = np.empty(n, np.int64)
    max_head = max_tail = min_head = min_tail = 0
    count = 0  # non-NaN values in the current window
    for i in range(n):
        leaving = i - window
        if leaving >= 0 and not np.isnan(x[leaving]):
            count -= 1
        while max_head < max_tail and max_q[max_head] <= leaving:
            max_head += 1
        while min_head < min_tail and min_q[min_head] <= leaving:
            min_head += 1
        v = x[i]
        if np.isnan(v):
            continue
        count += 1
        while max_tail > max_head and x[max_q[max_tail - 1]] <= v:
            max_tail -= 1
        max_q[max_tail] = i
        max_tail += 1
        while min_tail > min_head and x[min_q[min_tail - 1]] >= v:
            min_tail -= 1
        min_q[min_tail] = i
        min_tail += 1
        if count < min_periods:
            continue
        low = x[min_q[min_head]]
        width = x[max_q[max_head]] - low
        if width > 0.0:  # a flat window has no rank (0/0): leave NaN
            out[i] = (v - low) / width


@njit(cache=True)
def iv_rank_nb(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """IV rank ``(x - min) / (max - min)`` over the trailing ``window`` rows, today included.

    Parameters
    ----------
    x : ndarray
        ``(n_bars, n_columns)`` float64, column-major for speed.
    window : int
        Rows in the trailing window (>= 1).
    min_periods : int
        Non-NaN values the window needs (1 .. window) before a rank is given.

    Returns
    -------
    ndarray
        Same shape, in ``[0, 1]``; NaN where ``x`` is NaN, the window has fewer than
        ``min_periods`` values, or the window is flat (``max == min``).
    """
    n, m = x.shape
    out = np.full((m, n), np.nan).T  # column-major, like the input
    for j in range(m):
        _rank_column(x[:, j], window, min_periods, out[:, j])
    return out


@njit(cache=True)
def iv_percentile_nb(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """IV percentile: share of the window's other days whose value is strictly below today's.

    Parameters
    ----------
    x : ndarray
        ``(n_bars, n_columns)`` float64, column-major for speed.
    window : int
        Rows in the trailing window (>= 1), today included.
    min_periods : int
        Non-NaN values the window needs (1 .. window), today's included, before a value is given.

    Returns
    -------
    ndarray
        Same shape, in ``[0, 1]`` (1 = above every other day of the window, 0 = none below);
        NaN where ``x`` is NaN, the window has fewer than ``min_periods`` values, or today is the
        window's only value. Cost is O(n_bars x window) per column.
    """
    n, m = x.shape
    out = np.full((m, n), np.nan).T
    for j in range(m):
        count = 0
        for i in range(n):
            leaving = i - window
            if leaving >= 0 and not np.isnan(x[leaving, j]):
                count -= 1
            v = x[i, j]
            if np.isnan(v):
                continue
            count += 1
            if count < min_periods or count < 2:
                continue
            below = 0
            for k in range(max(0, i - window + 1), i):
                if x[k, j] < v:  # NaN compares False, so missing days are never "below"
                    below += 1
            out[i, j] = below / (count - 1)
    return out
