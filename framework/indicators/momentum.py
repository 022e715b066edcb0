"""Momentum oscillators: RSI, Stochastic %K/%D, CCI, Williams %R, rate of change, momentum.

Every function accepts 1-D ``(bars,)`` or 2-D ``(bars, columns)`` arrays and returns the same
shape; multi-output indicators return a ``NamedTuple``. Warm-up rows are NaN and follow TA-Lib's
lookbacks exactly. A row where any input is NaN is NaN and restarts the warm-up (the rows after it
equal the indicator on the series that begins after the NaN). Inputs shorter than the warm-up give
all-NaN output, never an exception.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from framework.indicators._common import as_matrices, as_matrix, check_window, restore
from framework.indicators._momentum_nb import (
    cci_nb,
    momentum_nb,
    roc_nb,
    rsi_nb,
    stochastic_nb,
    williams_r_nb,
)


class Stochastic(NamedTuple):
    """Slow stochastic: ``k`` (smoothed %K) and ``d`` (SMA of ``k``), both in [0, 100]."""

    k: np.ndarray
    d: np.ndarray


def rsi(x: np.ndarray, window: int = 14) -> np.ndarray:
    """Wilder's relative strength index in [0, 100] (TA-Lib RSI).

    Average gain and loss are seeded with the plain mean of the first ``window`` changes, then
    Wilder-smoothed: ``avg = (avg * (window - 1) + today) / window``.

    Parameters
    ----------
    x : ndarray
        Prices, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Smoothing period (>= 2).

    Returns
    -------
    ndarray
        Same shape as ``x``; first valid at row ``window``. 0 when there was neither gain nor loss.
    """
    window = check_window(window, "rsi", minimum=2)
    arr, one_d = as_matrix(x, "rsi")
    return restore(rsi_nb(arr, window), one_d)


def stochastic(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    k_window: int = 5,
    k_smooth: int = 3,
    d_window: int = 3,
) -> Stochastic:
    """Slow stochastic oscillator (TA-Lib STOCH with SMA smoothing).

    Fast %K is ``100 * (close - lowest low) / (highest high - lowest low)`` over ``k_window`` bars
    (0 when the range is 0); ``k`` is its ``k_smooth``-bar SMA and ``d`` the ``d_window``-bar SMA of
    ``k``. ``k_smooth=1`` gives the fast stochastic (TA-Lib STOCHF).

    Parameters
    ----------
    high, low, close : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    k_window, k_smooth, d_window : int
        Look-back of %K, smoothing of %K, smoothing of %D (each >= 1).

    Returns
    -------
    Stochastic
        ``k`` and ``d``; both first valid at row ``k_window + k_smooth + d_window - 3``.
    """
    k_window = check_window(k_window, "stochastic", label="k_window")
    k_smooth = check_window(k_smooth, "stochastic", label="k_smooth")
    d_window = check_window(d_window, "stochastic", label="d_window")
    (h, lo, c), one_d = as_matrices("stochastic", high=high, low=low, close=close)
    k, d = stochastic_nb(h, lo, c, k_window, k_smooth, d_window)
    return Stochastic(restore(k, one_d), restore(d, one_d))


def cci(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Commodity channel index (TA-Lib CCI).

    ``(tp - mean(tp)) / (0.015 * mean(|tp - mean(tp)|))`` over ``window`` bars of the typical
    price ``tp = (high + low + close) / 3``; 0 when the numerator or the mean deviation is 0.

    Parameters
    ----------
    high, low, close : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    window : int
        Number of bars (>= 2).

    Returns
    -------
    ndarray
        Same shape as ``close``; first valid at row ``window - 1``.
    """
    window = check_window(window, "cci", minimum=2)
    (h, lo, c), one_d = as_matrices("cci", high=high, low=low, close=close)
    return restore(cci_nb(h, lo, c, window), one_d)


def williams_r(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14
) -> np.ndarray:
    """Williams %R in [-100, 0] (TA-Lib WILLR).

    ``-100 * (highest high - close) / (highest high - lowest low)`` over ``window`` bars; 0 when
    the range is 0.

    Parameters
    ----------
    high, low, close : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    window : int
        Number of bars (>= 2).

    Returns
    -------
    ndarray
        Same shape as ``close``; first valid at row ``window - 1``.
    """
    window = check_window(window, "williams_r", minimum=2)
    (h, lo, c), one_d = as_matrices("williams_r", high=high, low=low, close=close)
    return restore(williams_r_nb(h, lo, c, window), one_d)


def roc(x: np.ndarray, window: int = 10) -> np.ndarray:
    """Rate of change in percent, ``100 * (x[i] / x[i - window] - 1)`` (TA-Lib ROC).

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Distance in bars (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``x``; first valid at row ``window``; 0 where ``x[i - window]`` is 0.
    """
    window = check_window(window, "roc")
    arr, one_d = as_matrix(x, "roc")
    return restore(roc_nb(arr, window), one_d)


def momentum(x: np.ndarray, window: int = 10) -> np.ndarray:
    """Momentum ``x[i] - x[i - window]`` (TA-Lib MOM).

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Distance in bars (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``x``; first valid at row ``window``.
    """
    window = check_window(window, "momentum")
    arr, one_d = as_matrix(x, "momentum")
    return restore(momentum_nb(arr, window), one_d)


__all__ = ["Stochastic", "cci", "momentum", "roc", "rsi", "stochastic", "williams_r"]
