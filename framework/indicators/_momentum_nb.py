"""Numba kernels for momentum oscillators: RSI, Stochastic, CCI, Williams %R, ROC and momentum.

Same conventions as the other ``_*_nb`` modules: float64 ``(n_bars, n_columns)`` inputs, one
left-to-right pass per column, value at row ``i`` from rows ``<= i`` only, and a row where any
input is NaN gives NaN and restarts the warm-up. Arithmetic follows TA-Lib's C code.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.indicators._extremes_nb import rolling_extreme_column
from framework.indicators._nb import nan_matrix

_TA_EPSILON = 1e-14  # TA-Lib's relative dead-zone for "no range" (TA_IS_ZERO_SCALED)


@njit(cache=True)
def rsi_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Wilder RSI (TA-Lib RSI): seeded with the mean gain/loss of the first ``window`` changes.

    Averages multiply by ``1 / window`` rather than divide: the division sits on the loop-carried
    chain and doubled the run time, and TA-Lib's build does the same (its output is reproduced
    bit for bit on real data).
    """
    n, m = x.shape
    out = nan_matrix(n, m)
    inverse = 1.0 / window
    for j in range(m):
        count = 0
        gain = loss = prev = 0.0
        for i in range(n):
            v = x[i, j]
            if np.isnan(v):
                count, gain, loss = 0, 0.0, 0.0
                continue
            c = count
            count += 1
            change = v - prev
            prev = v
            if c == 0:
                continue
            if c > window:
                loss *= window - 1
                gain *= window - 1
            if change < 0.0:
                loss -= change
            else:
                gain += change
            if c < window:
                continue
            loss *= inverse
            gain *= inverse
            total = gain + loss
            # exact zero test (TA-Lib 0.8): any move, however small the price level, counts
            out[i, j] = 0.0 if total == 0.0 else 100.0 * (gain / total)
    return out


@njit(cache=True)
def _valid_rows(high, low, close):
    return ~(np.isnan(high) | np.isnan(low) | np.isnan(close))


@njit(cache=True)
def sma_column(values, window, out):
    """Running-sum SMA of one column into NaN-filled ``out``; a NaN restarts the window.

    Adds the newest value, divides, then drops the oldest: TA-Lib's order, so the rounding
    residue of the running sum matches TA-Lib's (it shows where a window of zeros averages).
    """
    total = 0.0
    count = 0
    for i in range(values.shape[0]):
        v = values[i]
        if np.isnan(v):
            total, count = 0.0, 0
            continue
        total += v
        count += 1
        if count >= window:
            out[i] = total / window
            total -= values[i - window + 1]


@njit(cache=True)
def _flat(highest: float, lowest: float) -> bool:
    """TA-Lib 0.8's scale-aware zero test: a range within 1e-14 of the price level is no range."""
    return abs(highest - lowest) <= _TA_EPSILON * (abs(highest) + abs(lowest))


@njit(cache=True)
def _highest_lowest(high, low, valid, window):
    nan = np.full(high.shape[0], np.nan)
    highest = nan.copy()
    lowest = nan.copy()
    rolling_extreme_column(np.where(valid, high, nan), window, True, highest)
    rolling_extreme_column(np.where(valid, low, nan), window, False, lowest)
    return highest, lowest


@njit(cache=True)
def stochastic_nb(high, low, close, k_window: int, k_smooth: int, d_window: int):
    """Slow stochastic %K and %D (TA-Lib STOCH with SMA smoothing); both start at the same bar."""
    n, m = high.shape
    slow_k = nan_matrix(n, m)
    slow_d = nan_matrix(n, m)
    fast_k = np.full(n, np.nan)
    for j in range(m):
        valid = _valid_rows(high[:, j], low[:, j], close[:, j])
        highest, lowest = _highest_lowest(high[:, j], low[:, j], valid, k_window)
        fast_k[:] = np.nan
        for i in range(n):
            if np.isnan(highest[i]):
                continue
            if _flat(highest[i], lowest[i]):
                fast_k[i] = 0.0
            else:
                fast_k[i] = (close[i, j] - lowest[i]) / ((highest[i] - lowest[i]) / 100.0)
        k_col = np.full(n, np.nan)
        sma_column(fast_k, k_smooth, k_col)
        sma_column(k_col, d_window, slow_d[:, j])
        for i in range(n):
            if not np.isnan(slow_d[i, j]):
                slow_k[i, j] = k_col[i]
    return slow_k, slow_d


@njit(cache=True)
def williams_r_nb(high, low, close, window: int) -> np.ndarray:
    """Williams %R in [-100, 0] (TA-Lib WILLR); 0 when the window's range is flat."""
    n, m = high.shape
    out = nan_matrix(n, m)
    for j in range(m):
        valid = _valid_rows(high[:, j], low[:, j], close[:, j])
        highest, lowest = _highest_lowest(high[:, j], low[:, j], valid, window)
        for i in range(n):
            if np.isnan(highest[i]):
                continue
            if _flat(highest[i], lowest[i]):
                out[i, j] = 0.0
            else:
                out[i, j] = (highest[i] - close[i, j]) / ((highest[i] - lowest[i]) / -100.0)
    return out


@njit(cache=True)
def cci_nb(high, low, close, window: int) -> np.ndarray:
    """Commodity Channel Index (TA-Lib CCI): typical-price deviation over 0.015 x mean deviation.

    0 when the deviation or the mean deviation is within 1e-14 of the window's average level.
    """
    n, m = high.shape
    out = nan_matrix(n, m)
    for j in range(m):
        run = 0
        typical = (high[:, j] + low[:, j] + close[:, j]) / 3.0
        for i in range(n):
            if np.isnan(typical[i]):
                run = 0
                continue
            run += 1
            if run < window:
                continue
            # sum in TA-Lib's circular-buffer order (slot = offset in the run modulo window): the
            # numerator is a small difference of large numbers, so the order shows in the result
            offset = i - run + 1  # first row of the run
            total = 0.0
            for slot in range(window):
                total += typical[i - (i - offset - slot) % window]
            average = total / window
            deviation = 0.0
            for slot in range(window):
                deviation += abs(typical[i - (i - offset - slot) % window] - average)
            deviation /= window
            distance = typical[i] - average
            # "flat window" is judged relative to the price level (TA-Lib 0.8's scaled test), so
            # rounding residue in a constant window never turns into a +/-100-something reading
            band = _TA_EPSILON * abs(average)
            if abs(distance) > band and abs(deviation) > band:
                out[i, j] = distance / (0.015 * deviation)
            else:
                out[i, j] = 0.0
    return out


@njit(cache=True)
def roc_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rate of change in percent, ``(x / x[i-window] - 1) * 100`` (TA-Lib ROC; 0 if base is 0)."""
    n, m = x.shape
    out = nan_matrix(n, m)
    for j in range(m):
        run = 0
        for i in range(n):
            if np.isnan(x[i, j]):
                run = 0
                continue
            run += 1
            if run > window:
                base = x[i - window, j]
                out[i, j] = ((x[i, j] / base) - 1.0) * 100.0 if base != 0.0 else 0.0
    return out


@njit(cache=True)
def momentum_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Momentum ``x - x[i-window]`` (TA-Lib MOM)."""
    n, m = x.shape
    out = nan_matrix(n, m)
    for j in range(m):
        run = 0
        for i in range(n):
            if np.isnan(x[i, j]):
                run = 0
                continue
            run += 1
            if run > window:
                out[i, j] = x[i, j] - x[i - window, j]
    return out
