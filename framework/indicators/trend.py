"""Trend indicators: moving averages (SMA, EMA, WMA), MACD, ADX with +DI/-DI, Parabolic SAR.

Every function accepts 1-D ``(bars,)`` or 2-D ``(bars, columns)`` arrays and returns the same
shape; multi-output indicators return a ``NamedTuple`` of such arrays. Warm-up rows are NaN and
follow TA-Lib's lookbacks exactly. A row where any input is NaN is NaN and restarts the warm-up:
the rows after it equal the indicator computed on the series that begins after the NaN. Inputs
shorter than the warm-up give all-NaN output, never an exception.

EMA-seeded indicators (EMA, MACD) and Wilder-smoothed ones (ADX, +DI, -DI) depend on where the
series starts; like TA-Lib (whose default "unstable period" is 0) the recursion starts at the
first valid bar, so a later start gives different early values that converge over time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from framework.errors import ParameterError
from framework.indicators._common import (
    as_matrices,
    as_matrix,
    check_positive,
    check_window,
    restore,
)
from framework.indicators._nb import ema_nb, sma_nb
from framework.indicators._trend_nb import adx_nb, macd_nb, sar_nb, wma_nb


class Macd(NamedTuple):
    """MACD outputs: ``line`` (fast EMA - slow EMA), ``signal`` (EMA of the line), ``histogram``."""

    line: np.ndarray
    signal: np.ndarray
    histogram: np.ndarray


class Adx(NamedTuple):
    """Average directional index and the two directional indicators, all in [0, 100]."""

    adx: np.ndarray
    plus_di: np.ndarray
    minus_di: np.ndarray


def sma(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars (TA-Lib SMA).

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars averaged (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``x``; the first ``window - 1`` rows, and any window containing a NaN, are
        NaN.
    """
    window = check_window(window, "sma")
    arr, one_d = as_matrix(x, "sma")
    return restore(sma_nb(arr, window), one_d)


def ema(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average, alpha = 2/(window+1), seeded by the first window's SMA.

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Span (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``x``; first valid at row ``window - 1`` (TA-Lib EMA). A NaN restarts the
        seed.
    """
    window = check_window(window, "ema")
    arr, one_d = as_matrix(x, "ema")
    return restore(ema_nb(arr, window), one_d)


def wma(x: np.ndarray, window: int) -> np.ndarray:
    """Linearly weighted moving average (weights 1..window, the newest heaviest; TA-Lib WMA).

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``x``; the first ``window - 1`` rows are NaN; a NaN restarts the window.
    """
    window = check_window(window, "wma")
    arr, one_d = as_matrix(x, "wma")
    return restore(wma_nb(arr, window), one_d)


def macd(x: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> Macd:
    """Moving average convergence/divergence with TA-Lib's seeding (TA-Lib MACD).

    Both EMAs start at row ``slow - 1`` (the fast one seeded with the SMA of the ``fast`` values
    ending there), the signal is the EMA of the line, and all three outputs start at row
    ``slow + signal - 2`` (earlier rows NaN, as in TA-Lib, even though the line exists sooner).

    Parameters
    ----------
    x : ndarray
        Prices, ``(bars,)`` or ``(bars, columns)``.
    fast, slow : int
        EMA spans, ``2 <= fast < slow``.
    signal : int
        Span of the signal EMA (>= 1).

    Returns
    -------
    Macd
        ``line``, ``signal`` and ``histogram`` (= line - signal), each shaped like ``x``.
    """
    fast = check_window(fast, "macd", label="fast", minimum=2)
    slow = check_window(slow, "macd", label="slow", minimum=2)
    signal = check_window(signal, "macd", label="signal")
    if fast >= slow:
        raise ParameterError(
            f"macd needs fast < slow; got fast={fast}, slow={slow}. Swap them (e.g. 12 and 26)."
        )
    arr, one_d = as_matrix(x, "macd")
    return Macd(*(restore(out, one_d) for out in macd_nb(arr, fast, slow, signal)))


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> Adx:
    """Wilder's ADX with +DI and -DI (TA-Lib ADX, PLUS_DI, MINUS_DI).

    Parameters
    ----------
    high, low, close : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    window : int
        Wilder smoothing period (>= 2).

    Returns
    -------
    Adx
        ``adx`` (first valid at row ``2 * window - 1``), ``plus_di`` and ``minus_di`` (first valid
        at row ``window``). A DI is 0 when the smoothed true range is 0; bars whose DX is undefined
        (zero true range or zero DI sum) leave the ADX unchanged, as in TA-Lib.
    """
    window = check_window(window, "adx", minimum=2)
    (h, lo, c), one_d = as_matrices("adx", high=high, low=low, close=close)
    return Adx(*(restore(out, one_d) for out in adx_nb(h, lo, c, window)))


def parabolic_sar(
    high: np.ndarray, low: np.ndarray, acceleration: float = 0.02, maximum: float = 0.2
) -> np.ndarray:
    """Wilder's Parabolic stop-and-reverse (TA-Lib SAR).

    The first bar's range seeds the stop and the initial direction is short only when the second
    bar has a positive one-bar -DM (TA-Lib's rule), so the output starts at row 1. The value at row
    ``i`` is the stop in force during bar ``i`` (on a reversal, the reversal level).

    Parameters
    ----------
    high, low : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    acceleration : float
        Acceleration factor step (> 0).
    maximum : float
        Cap of the acceleration factor (>= ``acceleration``).

    Returns
    -------
    ndarray
        Same shape as ``high``; row 0 and rows after a NaN restart are NaN.
    """
    acceleration = check_positive(acceleration, "parabolic_sar", "acceleration")
    maximum = check_positive(maximum, "parabolic_sar", "maximum")
    if acceleration > maximum:
        raise ParameterError(
            f"parabolic_sar acceleration ({acceleration}) must not exceed maximum ({maximum}); "
            "use e.g. acceleration=0.02, maximum=0.2."
        )
    (h, lo), one_d = as_matrices("parabolic_sar", high=high, low=low)
    return restore(sar_nb(h, lo, acceleration, maximum), one_d)


__all__ = ["Adx", "Macd", "adx", "ema", "macd", "parabolic_sar", "sma", "wma"]
