"""Numba kernels for indicators and signal helpers.

Every kernel is causal (value at row ``i`` uses rows ``<= i`` only), works column by column on a
2-D float64 array ``(n_bars, n_columns)`` (fastest in column-major order, which the wrappers
pass), and makes one left-to-right pass. NaN inputs propagate
the way TA-Lib's conventions do: a window containing NaN gives NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def nan_matrix(n: int, m: int) -> np.ndarray:
    """A NaN-filled ``(n, m)`` array in column-major order, so each column is contiguous.

    Kernels walk one column at a time; with column-major inputs and outputs every pass reads and
    writes consecutive memory (3-5x faster than striding through a row-major panel, measured
    on 6,000 x 500 bars with benchmarks/indicators_bench.py).
    """
    return np.full((m, n), np.nan).T


@njit(cache=True)
def empty_matrix(n: int, m: int) -> np.ndarray:
    """An uninitialised column-major ``(n, m)`` array, for kernels that write every element."""
    return np.empty((m, n)).T


@njit(cache=True)
def sma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; the first ``window - 1`` rows (and windows with NaN) are NaN."""
    n, m = x.shape
    out = nan_matrix(n, m)
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
    out = nan_matrix(n, m)
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
    # bars in the outer loop: inputs are row-major, so each row is read contiguously (a grid of
    # ~1,500 columns runs about 5x faster than column by column)
    state = np.zeros(m)
    for i in range(n):
        for j in range(m):
            if exits[i, j]:
                state[j] = 0.0
            elif entries[i, j]:
                state[j] = long_value
            out[i, j] = state[j]
    return out
