"""Numba kernels for volatility: true range, ATR, Bollinger bands, rolling z-score, realized vol.

Same conventions as the other ``_*_nb`` modules: float64 ``(n_bars, n_columns)`` inputs, one
left-to-right pass per column, value at row ``i`` from rows ``<= i`` only, and a row where any
input is NaN gives NaN and restarts the warm-up.

Rolling variances use a sliding Welford update with an error bound that triggers an exact
two-pass recomputation, instead of ``E[x^2] - E[x]^2`` running sums, which cancel
catastrophically for series whose spread is tiny next to their level (prices in the thousands,
basis-point noise). A window whose values are all identical is detected exactly: variance 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from framework.indicators._momentum_nb import sma_column
from framework.indicators._nb import empty_matrix, nan_matrix

_EPS = 2.220446049250313e-16  # float64 machine epsilon


@njit(cache=True)
def true_range_value(high: float, low: float, prev_close: float) -> float:
    """One bar's true range given the previous close."""
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


@njit(cache=True)
def true_range_nb(high, low, close) -> np.ndarray:
    """True range ``max(h - l, |h - prev_close|, |l - prev_close|)`` from bar 1 (TA-Lib TRANGE)."""
    n, m = high.shape
    out = nan_matrix(n, m)
    for j in range(m):
        run = 0
        for i in range(n):
            if np.isnan(high[i, j]) or np.isnan(low[i, j]) or np.isnan(close[i, j]):
                run = 0
                continue
            run += 1
            if run > 1:
                out[i, j] = true_range_value(high[i, j], low[i, j], close[i - 1, j])
    return out


@njit(cache=True)
def atr_nb(high, low, close, window: int) -> np.ndarray:
    """Wilder ATR (TA-Lib ATR): SMA of the first ``window`` true ranges, then Wilder smoothing."""
    n, m = high.shape
    out = nan_matrix(n, m)
    inverse = 1.0 / window
    for j in range(m):
        count = 0
        atr = prev_close = 0.0
        for i in range(n):
            h, lo, c = high[i, j], low[i, j], close[i, j]
            if np.isnan(h) or np.isnan(lo) or np.isnan(c):
                count, atr = 0, 0.0
                continue
            if count > 0:
                tr = true_range_value(h, lo, prev_close)
                if count < window:
                    atr += tr
                else:
                    if count == window:
                        atr = (atr + tr) / window
                    else:  # x (1/window): keeps a division off the loop-carried chain
                        atr = (atr * (window - 1) + tr) * inverse
                    out[i, j] = atr
            prev_close = c
            count += 1
    return out


@njit(cache=True)
def _exact_moments(values, end, window):
    """Two-pass mean and sum of squared deviations of ``values[end - window + 1 : end + 1]``."""
    total = 0.0
    for k in range(end - window + 1, end + 1):
        total += values[k]
    mean = total / window
    m2 = 0.0
    for k in range(end - window + 1, end + 1):
        m2 += (values[k] - mean) * (values[k] - mean)
    return mean, m2


@njit(cache=True)
def rolling_moments_column(values, window, means, variances, ddof):
    """Rolling mean and variance (``ddof`` 0 or 1) of one column into NaN-filled outputs.

    Sliding Welford: when the window is full each step replaces the oldest value by the newest.
    Its rounding error is absolute (about eps x level x step size), so after a large move leaves
    the window it can dwarf a small remaining variance. ``drift`` bounds that accumulated error;
    once it exceeds 1e-12 of the current sum of squares the window is recomputed by two passes
    (on ordinary prices that happens every few hundred bars, so the cost stays O(1) per bar).
    A NaN restarts the window; a run of ``window`` identical values gives exactly variance 0.
    """
    count = 0
    same = 0  # how many consecutive values equal their predecessor
    mean = m2 = drift = 0.0
    inverse = 1.0 / window  # multiplications keep divisions off the per-bar path
    inverse_dof = 1.0 / (window - ddof)
    for i in range(values.shape[0]):
        v = values[i]
        if np.isnan(v):
            count, same, mean, m2, drift = 0, 0, 0.0, 0.0, 0.0
            continue
        same = same + 1 if count > 0 and v == values[i - 1] else 0
        if count < window:
            count += 1
            delta = v - mean
            mean += delta / count
            m2 += delta * (v - mean)
            drift += _EPS * (abs(delta) * (abs(v) + abs(mean)) + abs(m2))
        else:
            old = values[i - window]
            new_mean = mean + (v - old) * inverse
            m2 += (v - old) * (v - new_mean + old - mean)
            drift += _EPS * (abs(v - old) * (abs(v) + abs(old) + 2.0 * abs(mean)) + abs(m2))
            mean = new_mean
        if count < window:
            continue
        if same >= window - 1:
            mean, m2, drift = v, 0.0, 0.0
        elif drift > 1e-12 * m2:
            mean, m2 = _exact_moments(values, i, window)
            drift = _EPS * window * m2
        means[i] = mean
        variances[i] = m2 * inverse_dof


@njit(cache=True)
def bollinger_nb(x: np.ndarray, window: int, up: float, down: float):
    """Upper, middle, lower band and %B: SMA +/- population std (TA-Lib BBANDS, SMA type).

    A window of identical values has standard deviation exactly 0; %B is
    ``(x - lower) / (upper - lower)`` and NaN when the bands coincide.
    """
    n, m = x.shape
    # four outputs: writing each element once (NaN included) instead of pre-filling them all
    # with NaN halves the memory traffic, which is most of this kernel's cost
    upper = empty_matrix(n, m)
    middle = empty_matrix(n, m)
    lower = empty_matrix(n, m)
    percent_b = empty_matrix(n, m)
    averages = np.empty(n)
    means = np.empty(n)
    variances = np.empty(n)
    for j in range(m):
        averages[:] = np.nan
        variances[:] = np.nan
        sma_column(x[:, j], window, averages)
        rolling_moments_column(x[:, j], window, means, variances, 0)
        for i in range(n):
            if np.isnan(variances[i]):
                upper[i, j] = middle[i, j] = lower[i, j] = percent_b[i, j] = np.nan
                continue
            std = math.sqrt(variances[i])
            middle[i, j] = averages[i]
            upper[i, j] = averages[i] + std * up
            lower[i, j] = averages[i] - std * down
            width = upper[i, j] - lower[i, j]
            percent_b[i, j] = (x[i, j] - lower[i, j]) / width if width > 0.0 else np.nan
    return upper, middle, lower, percent_b


@njit(cache=True)
def zscore_nb(x: np.ndarray, window: int, ddof: int) -> np.ndarray:
    """``(x - rolling mean) / rolling std`` over ``window`` values; NaN on a constant window."""
    n, m = x.shape
    out = nan_matrix(n, m)
    means = np.full(n, np.nan)
    variances = np.full(n, np.nan)
    for j in range(m):
        means[:] = np.nan
        variances[:] = np.nan
        rolling_moments_column(x[:, j], window, means, variances, ddof)
        for i in range(n):
            if variances[i] > 0.0:
                out[i, j] = (x[i, j] - means[i]) / math.sqrt(variances[i])
    return out


@njit(cache=True)
def realized_volatility_nb(x, window: int, periods_per_year: float, ddof: int) -> np.ndarray:
    """Annualized std of the last ``window`` log returns; needs ``window + 1`` positive prices."""
    n, m = x.shape
    out = nan_matrix(n, m)
    returns = np.full(n, np.nan)
    means = np.full(n, np.nan)
    variances = np.full(n, np.nan)
    scale = math.sqrt(periods_per_year)
    for j in range(m):
        returns[:] = np.nan
        means[:] = np.nan
        variances[:] = np.nan
        for i in range(1, n):
            now, before = x[i, j], x[i - 1, j]
            # a non-positive price has no log return: treated like a missing one
            if now > 0.0 and before > 0.0 and math.isfinite(now) and math.isfinite(before):
                returns[i] = math.log(now / before)
        rolling_moments_column(returns, window, means, variances, ddof)
        for i in range(n):
            if not np.isnan(variances[i]):
                out[i, j] = math.sqrt(variances[i]) * scale
    return out
