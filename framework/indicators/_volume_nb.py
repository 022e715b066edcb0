"""Numba kernels for volume indicators: OBV, rolling VWAP and the Money Flow Index.

Same conventions as the other ``_*_nb`` modules: float64 ``(n_bars, n_columns)`` inputs, one
left-to-right pass per column, value at row ``i`` from rows ``<= i`` only, and a row where any
input is NaN gives NaN and restarts the warm-up (OBV restarts its running total).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.indicators._nb import nan_matrix

_TA_EPSILON = 1e-14  # TA-Lib's relative dead-zone for "the typical price did not move"


@njit(cache=True)
def obv_nb(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume (TA-Lib OBV): starts at the first bar's volume, +/- volume on up/down."""
    n, m = close.shape
    out = nan_matrix(n, m)
    for j in range(m):
        total = np.nan
        prev = 0.0
        for i in range(n):
            c, v = close[i, j], volume[i, j]
            if np.isnan(c) or np.isnan(v):
                total = np.nan
                continue
            if np.isnan(total):
                total = v
            elif c > prev:
                total += v
            elif c < prev:
                total -= v
            prev = c
            out[i, j] = total
    return out


@njit(cache=True)
def vwap_nb(high, low, close, volume, window: int) -> np.ndarray:
    """Rolling VWAP of the typical price ``(h + l + c) / 3``; NaN when the window's volume is 0."""
    n, m = high.shape
    out = nan_matrix(n, m)
    flow = np.empty(n)
    for j in range(m):
        typical = (high[:, j] + low[:, j] + close[:, j]) / 3.0
        run = 0
        silent = 0  # consecutive zero-volume bars: a silent window has exactly zero volume
        price_volume = 0.0
        total_volume = 0.0
        for i in range(n):
            v = volume[i, j]
            if np.isnan(typical[i]) or np.isnan(v):
                run, silent, price_volume, total_volume = 0, 0, 0.0, 0.0
                continue
            run += 1
            flow[i] = typical[i] * v
            price_volume += flow[i]
            total_volume += v
            if run > window:
                price_volume -= flow[i - window]
                total_volume -= volume[i - window, j]
            silent = silent + 1 if v == 0.0 else 0
            if silent >= window:
                price_volume, total_volume = 0.0, 0.0
            if run >= window and total_volume > 0.0:
                out[i, j] = price_volume / total_volume
    return out


@njit(cache=True)
def _mfi_column(high, low, close, volume, window, positive, negative, out):
    run = 0
    nulls = 0
    slot = 0
    prev_typical = pos_sum = neg_sum = 0.0
    for i in range(high.shape[0]):
        typical = (high[i] + low[i] + close[i]) / 3.0
        if np.isnan(typical) or np.isnan(volume[i]):
            run, nulls, slot, pos_sum, neg_sum = 0, 0, 0, 0.0, 0.0
            continue
        run += 1
        change = typical - prev_typical
        scale = abs(typical) + abs(prev_typical)
        prev_typical = typical
        if run == 1:
            continue
        if run > window + 1:
            pos_sum -= positive[slot]
            neg_sum -= negative[slot]
        flow = 0.0 if abs(change) <= _TA_EPSILON * scale else typical * volume[i]
        positive[slot] = 0.0 if change < 0.0 else flow
        negative[slot] = flow if change < 0.0 else 0.0
        pos_sum += positive[slot]
        neg_sum += negative[slot]
        slot = (slot + 1) % window
        nulls = nulls + 1 if flow == 0.0 else 0
        if nulls >= window:
            # a window without money flow holds exactly zero, not the running sums' residue
            nulls, pos_sum, neg_sum = window, 0.0, 0.0
        if run <= window:
            continue
        total = pos_sum + neg_sum
        clamped = min(max(pos_sum, 0.0), total)
        out[i] = 0.0 if total <= 0.0 else 100.0 * (clamped / total)


@njit(cache=True)
def mfi_nb(high, low, close, volume, window: int) -> np.ndarray:
    """Money Flow Index (TA-Lib MFI): volume-weighted RSI of the typical price, 0 when no flow."""
    n, m = high.shape
    out = nan_matrix(n, m)
    positive = np.zeros(window)
    negative = np.zeros(window)
    for j in range(m):
        _mfi_column(
            high[:, j], low[:, j], close[:, j], volume[:, j], window, positive, negative, out[:, j]
        )
    return out
