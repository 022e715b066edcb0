"""Numba kernels for trend indicators: WMA, MACD, ADX/+DI/-DI and Parabolic SAR.

Conventions shared by every kernel here: inputs are float64 ``(n_bars, n_columns)`` arrays,
each column is processed in one left-to-right pass, and the value at row ``i`` uses rows
``<= i`` only. A row where any input is NaN gives NaN and restarts the warm-up, so the rows after
it equal the indicator computed on the series that starts at the next valid row (TA-Lib's Python
wrapper treats leading NaNs the same way). Arithmetic follows TA-Lib's C code step by step so the
results agree to rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.indicators._nb import nan_matrix
from framework.indicators._volatility_nb import true_range_value


@njit(cache=True)
def wma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Linearly weighted moving average (weights 1..window, newest heaviest); TA-Lib WMA."""
    n, m = x.shape
    out = nan_matrix(n, m)
    divider = window * (window + 1) / 2.0
    for j in range(m):
        plain = 0.0  # sum of the values that will carry weight >= 1 on the next bar
        weighted = 0.0
        count = 0
        for i in range(n):
            v = x[i, j]
            if np.isnan(v):
                plain, weighted, count = 0.0, 0.0, 0
                continue
            count += 1
            if count < window:
                plain += v
                weighted += v * count
                continue
            plain += v
            weighted += v * window
            out[i, j] = weighted / divider
            # every weight drops by one for the next bar; the oldest value leaves the window
            weighted -= plain
            plain -= x[i - window + 1, j]
    return out


@njit(cache=True)
def macd_nb(x: np.ndarray, fast: int, slow: int, signal: int):
    """MACD line, signal line and histogram with TA-Lib's seeding.

    Both EMAs start at bar ``slow - 1``: the slow one is seeded with the SMA of the first ``slow``
    values, the fast one with the SMA of the ``fast`` values ending at that bar. The signal EMA of
    the line is seeded the same way, and all three outputs start at bar ``slow + signal - 2``.
    """
    n, m = x.shape
    line_out = nan_matrix(n, m)
    signal_out = nan_matrix(n, m)
    hist_out = nan_matrix(n, m)
    k_fast = 2.0 / (fast + 1.0)
    k_slow = 2.0 / (slow + 1.0)
    k_signal = 2.0 / (signal + 1.0)
    first_out = slow + signal - 2
    for j in range(m):
        count = 0
        ema_fast, ema_slow, ema_signal = 0.0, 0.0, 0.0
        for i in range(n):
            v = x[i, j]
            if np.isnan(v):
                count, ema_fast, ema_slow, ema_signal = 0, 0.0, 0.0, 0.0
                continue
            c = count  # bar index inside the current run of valid values
            count += 1
            if c < slow:
                ema_slow += v
                if c >= slow - fast:
                    ema_fast += v
                if c < slow - 1:
                    continue
                ema_slow /= slow
                ema_fast /= fast
            else:
                ema_slow = (v - ema_slow) * k_slow + ema_slow
                ema_fast = (v - ema_fast) * k_fast + ema_fast
            line = ema_fast - ema_slow
            if c < first_out:
                ema_signal += line
                continue
            if c == first_out:
                ema_signal = (ema_signal + line) / signal
            else:
                ema_signal = (line - ema_signal) * k_signal + ema_signal
            line_out[i, j] = line
            signal_out[i, j] = ema_signal
            hist_out[i, j] = line - ema_signal
    return line_out, signal_out, hist_out


@njit(cache=True)
def _directional_index(dm: float, tr: float) -> float:
    # exact zero test, as TA-Lib 0.8: a fixed band would zero every DI of a low-priced series
    if tr == 0.0:
        return 0.0
    return 100.0 * (dm / tr)


@njit(cache=True)
def _dx(plus_dm: float, minus_dm: float, tr: float) -> float:
    """DX from smoothed DMs and TR; NaN where TA-Lib skips the bar (zero TR or zero DI sum)."""
    if tr == 0.0:
        return np.nan
    minus_di = 100.0 * (minus_dm / tr)
    plus_di = 100.0 * (plus_dm / tr)
    total = minus_di + plus_di
    if total == 0.0:
        return np.nan
    return 100.0 * (abs(minus_di - plus_di) / total)


@njit(cache=True)
def _adx_column(high, low, close, window, adx, plus_di, minus_di):
    n = high.shape[0]
    count = 0
    plus_dm = minus_dm = tr = sum_dx = prev_adx = 0.0
    prev_high = prev_low = prev_close = 0.0
    for i in range(n):
        h, lo, c_ = high[i], low[i], close[i]
        if np.isnan(h) or np.isnan(lo) or np.isnan(c_):
            count, plus_dm, minus_dm, tr, sum_dx = 0, 0.0, 0.0, 0.0, 0.0
            continue
        c = count
        count += 1
        if c > 0:
            diff_plus = h - prev_high
            diff_minus = prev_low - lo
            true_range = true_range_value(h, lo, prev_close)
            if c >= window:  # Wilder smoothing once the first window-1 moves are summed
                minus_dm -= minus_dm / window
                plus_dm -= plus_dm / window
                tr = tr - tr / window + true_range
            else:
                tr += true_range
            if diff_minus > 0 and diff_plus < diff_minus:
                minus_dm += diff_minus
            elif diff_plus > 0 and diff_plus > diff_minus:
                plus_dm += diff_plus
        prev_high, prev_low, prev_close = h, lo, c_
        if c < window:
            continue
        plus_di[i] = _directional_index(plus_dm, tr)
        minus_di[i] = _directional_index(minus_dm, tr)
        dx = _dx(plus_dm, minus_dm, tr)
        if c < 2 * window - 1:
            if not np.isnan(dx):
                sum_dx += dx
            continue
        if c == 2 * window - 1:
            if not np.isnan(dx):
                sum_dx += dx
            prev_adx = sum_dx / window
        elif not np.isnan(dx):
            prev_adx = (prev_adx * (window - 1) + dx) / window
        adx[i] = prev_adx


@njit(cache=True)
def adx_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int):
    """ADX, +DI and -DI (Wilder, TA-Lib): DI from bar ``window``, ADX from bar ``2*window - 1``."""
    n, m = high.shape
    adx = nan_matrix(n, m)
    plus_di = nan_matrix(n, m)
    minus_di = nan_matrix(n, m)
    for j in range(m):
        _adx_column(
            high[:, j], low[:, j], close[:, j], window, adx[:, j], plus_di[:, j], minus_di[:, j]
        )
    return adx, plus_di, minus_di


@njit(cache=True)
def _sar_column(high, low, acceleration, maximum, out):
    n = high.shape[0]
    count = 0
    is_long = True
    sar = ep = af = new_high = new_low = 0.0
    for i in range(n):
        h, lo = high[i], low[i]
        if np.isnan(h) or np.isnan(lo):
            count = 0
            continue
        count += 1
        if count == 1:
            new_high, new_low = h, lo
            continue
        if count == 2:
            # TA-Lib: a positive one-bar -DM starts short, anything else starts long; the first
            # bar's extreme is the initial SAR and this bar stands in for "yesterday" too.
            diff_minus = new_low - lo
            is_long = not (diff_minus > 0 and h - new_high < diff_minus)
            sar = new_low if is_long else new_high
            ep = h if is_long else lo
            af = acceleration
            new_high, new_low = h, lo
        prev_high, prev_low = new_high, new_low
        new_high, new_low = h, lo
        if is_long:
            if new_low <= sar:  # stopped out: reverse to short at the extreme point
                is_long = False
                sar = max(ep, prev_high, new_high)
                out[i] = sar
                af = acceleration
                ep = new_low
                sar = max(sar + af * (ep - sar), prev_high, new_high)
            else:
                out[i] = sar
                if new_high > ep:
                    ep = new_high
                    af = min(af + acceleration, maximum)
                sar = min(sar + af * (ep - sar), prev_low, new_low)
        elif new_high >= sar:  # stopped out: reverse to long
            is_long = True
            sar = min(ep, prev_low, new_low)
            out[i] = sar
            af = acceleration
            ep = new_high
            sar = min(sar + af * (ep - sar), prev_low, new_low)
        else:
            out[i] = sar
            if new_low < ep:
                ep = new_low
                af = min(af + acceleration, maximum)
            sar = max(sar + af * (ep - sar), prev_high, new_high)


@njit(cache=True)
def sar_nb(high: np.ndarray, low: np.ndarray, acceleration: float, maximum: float) -> np.ndarray:
    """Parabolic SAR (TA-Lib SAR): the first bar seeds the trend, output starts at bar 1."""
    n, m = high.shape
    out = nan_matrix(n, m)
    for j in range(m):
        _sar_column(high[:, j], low[:, j], acceleration, maximum, out[:, j])
    return out
