"""Numba kernels for indicators and signal helpers.

Every kernel is causal (value at row ``i`` uses rows ``<= i`` only), works column by column on a
2-D float64 array ``(n_bars, n_columns)``, and makes one left-to-right pass. NaN inputs propagate
the way TA-Lib's conventions do: a window containing NaN gives NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; the first ``window - 1`` rows (and windows with NaN) are NaN."""
    n, m = x.shape
    out = np.full((n, m), np.nan)
    for j in range(m):
        total = 0.0
        count = 0  # consecutive finite values ending at i
        for i in range(n):
            v = x[i, j]
            if np.isnan(v):
                total = 0.0
                count = 0
                continue
            total += v
            count += 1
            if count > window:
                total -= x[i - window, j]
                count = window
            if count == window:
                out[i, j] = total / window
    return out


@njit(cache=True)
def ema_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average seeded with the SMA of the first ``window`` values (TA-Lib)."""
    n, m = x.shape
    out = np.full((n, m), np.nan)
    alpha = 2.0 / (window + 1.0)
    for j in range(m):
        seed = 0.0
        count = 0
        prev = np.nan
        for i in range(n):
            v = x[i, j]
            if np.isnan(v):
                # a gap restarts the seed: the average is undefined across missing data
                seed, count, prev = 0.0, 0, np.nan
                continue
            if count < window:
                seed += v
                count += 1
                if count == window:
                    prev = seed / window
                    out[i, j] = prev
            else:
                prev = prev + alpha * (v - prev)
                out[i, j] = prev
    return out


@njit(cache=True)
def latch_nb(entries: np.ndarray, exits: np.ndarray, long_value: float) -> np.ndarray:
    """Hold ``long_value`` from an entry until the next exit (exit wins on the same bar)."""
    n, m = entries.shape
    out = np.zeros((n, m))
    for j in range(m):
        state = 0.0
        for i in range(n):
            if exits[i, j]:
                state = 0.0
            elif entries[i, j]:
                state = long_value
            out[i, j] = state
    return out
