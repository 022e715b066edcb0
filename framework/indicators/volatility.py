"""Volatility indicators: true range, ATR, Bollinger, Keltner and Donchian channels, realized vol.

Every function accepts 1-D ``(bars,)`` or 2-D ``(bars, columns)`` arrays and returns the same
shape; channel indicators return a ``NamedTuple``. Warm-up rows are NaN and follow TA-Lib's
lookbacks where TA-Lib has the indicator. A row where any input is NaN is NaN and restarts the
warm-up (the rows after it equal the indicator on the series that begins after the NaN). Inputs
shorter than the warm-up give all-NaN output, never an exception.
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
    invalid_rows,
    masked,
    restore,
)
from framework.indicators._extremes_nb import rolling_max_nb, rolling_min_nb
from framework.indicators._nb import ema_nb
from framework.indicators._volatility_nb import (
    atr_nb,
    bollinger_nb,
    realized_volatility_nb,
    true_range_nb,
)


class BollingerBands(NamedTuple):
    """Bollinger bands and %B = ``(x - lower) / (upper - lower)`` (NaN when the bands touch)."""

    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray
    percent_b: np.ndarray


class Channels(NamedTuple):
    """A price channel: ``upper``, ``middle`` and ``lower`` lines (Keltner, Donchian)."""

    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range ``max(high - low, |high - prev close|, |low - prev close|)`` (TA-Lib TRANGE).

    Parameters
    ----------
    high, low, close : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.

    Returns
    -------
    ndarray
        Same shape as ``close``; row 0 (no previous close) is NaN.
    """
    (h, lo, c), one_d = as_matrices("true_range", high=high, low=low, close=close)
    return restore(true_range_nb(h, lo, c), one_d)


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Wilder's average true range (TA-Lib ATR).

    The first value (row ``window``) is the mean of the first ``window`` true ranges; later values
    are Wilder-smoothed: ``atr = (atr * (window - 1) + tr) / window``.

    Parameters
    ----------
    high, low, close : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    window : int
        Smoothing period (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``close``; the first ``window`` rows are NaN.
    """
    window = check_window(window, "atr")
    (h, lo, c), one_d = as_matrices("atr", high=high, low=low, close=close)
    return restore(atr_nb(h, lo, c, window), one_d)


def bollinger_bands(
    x: np.ndarray, window: int = 20, num_std: float = 2.0, num_std_lower: float | None = None
) -> BollingerBands:
    """Bollinger bands: SMA +/- ``num_std`` population standard deviations (TA-Lib BBANDS).

    Parameters
    ----------
    x : ndarray
        Prices, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars (>= 2).
    num_std : float
        Width of the upper band in standard deviations (>= 0).
    num_std_lower : float, optional
        Width of the lower band; defaults to ``num_std``.

    Returns
    -------
    BollingerBands
        ``upper``, ``middle``, ``lower`` and ``percent_b``; first valid at row ``window - 1``.
        A window of identical values has a standard deviation of exactly 0, and then
        ``percent_b`` is NaN. The variance is a sliding Welford update, stable for series whose
        spread is tiny next to their level.
    """
    window = check_window(window, "bollinger_bands", minimum=2)
    up = check_positive(num_std, "bollinger_bands", "num_std", allow_zero=True)
    down = up
    if num_std_lower is not None:
        down = check_positive(num_std_lower, "bollinger_bands", "num_std_lower", allow_zero=True)
    arr, one_d = as_matrix(x, "bollinger_bands")
    return BollingerBands(*(restore(out, one_d) for out in bollinger_nb(arr, window, up, down)))


def keltner_channels(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    window: int = 20,
    atr_window: int = 10,
    multiplier: float = 2.0,
) -> Channels:
    """Keltner channels: EMA of the close +/- ``multiplier`` x ATR (no TA-Lib equivalent).

    The modern (Chester Keltner / StockCharts) form: ``middle = ema(close, window)``,
    ``upper/lower = middle +/- multiplier * atr(high, low, close, atr_window)``.

    Parameters
    ----------
    high, low, close : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    window : int
        EMA span of the middle line (>= 1).
    atr_window : int
        ATR period (>= 1).
    multiplier : float
        Band width in ATRs (>= 0).

    Returns
    -------
    Channels
        ``upper``, ``middle``, ``lower``; first valid at row ``max(window - 1, atr_window)``.
    """
    window = check_window(window, "keltner_channels")
    atr_window = check_window(atr_window, "keltner_channels", label="atr_window")
    multiplier = check_positive(multiplier, "keltner_channels", "multiplier", allow_zero=True)
    (h, lo, c), one_d = as_matrices("keltner_channels", high=high, low=low, close=close)
    # the EMA sees NaN wherever any input is missing, so both parts restart on the same rows
    middle = ema_nb(masked(c, invalid_rows(h, lo, c)), window)
    width = multiplier * atr_nb(h, lo, c, atr_window)
    middle = np.where(np.isnan(width), np.nan, middle)
    return Channels(
        restore(middle + width, one_d), restore(middle, one_d), restore(middle - width, one_d)
    )


def donchian_channels(high: np.ndarray, low: np.ndarray, window: int = 20) -> Channels:
    """Donchian channels: highest high and lowest low of the last ``window`` bars, and their mean.

    The current bar is included (TA-Lib MAX/MIN convention), so ``close > upper`` never happens;
    for a breakout rule compare with the previous bar's channel (shift by one row).

    Parameters
    ----------
    high, low : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` price arrays.
    window : int
        Number of bars (>= 1).

    Returns
    -------
    Channels
        ``upper``, ``middle`` = (upper + lower) / 2, ``lower``; first valid at row ``window - 1``.
    """
    window = check_window(window, "donchian_channels")
    (h, lo), one_d = as_matrices("donchian_channels", high=high, low=low)
    invalid = invalid_rows(h, lo)
    upper = rolling_max_nb(masked(h, invalid), window)
    lower = rolling_min_nb(masked(lo, invalid), window)
    middle = (upper + lower) / 2.0
    return Channels(restore(upper, one_d), restore(middle, one_d), restore(lower, one_d))


def realized_volatility(
    x: np.ndarray, window: int = 21, periods_per_year: float = 252.0, ddof: int = 1
) -> np.ndarray:
    """Annualized standard deviation of the last ``window`` log returns.

    ``sqrt(periods_per_year) * std(log(x[k] / x[k-1]) for the last window k, ddof)``.

    Parameters
    ----------
    x : ndarray
        Prices (> 0), ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of returns (>= ``ddof + 1``).
    periods_per_year : float
        Bars per year used to annualize (252 for daily bars).
    ddof : int
        0 (population) or 1 (sample, the default).

    Returns
    -------
    ndarray
        Same shape as ``x``; first valid at row ``window`` (``window + 1`` prices). A NaN or
        non-positive price has no log return and restarts the window like a NaN.
    """
    if ddof not in (0, 1) or isinstance(ddof, bool):
        raise ParameterError(f"realized_volatility ddof must be 0 or 1; got {ddof!r}.")
    window = check_window(window, "realized_volatility", minimum=ddof + 1)
    ppy = check_positive(periods_per_year, "realized_volatility", "periods_per_year")
    arr, one_d = as_matrix(x, "realized_volatility")
    return restore(realized_volatility_nb(arr, window, ppy, ddof), one_d)


__all__ = [
    "BollingerBands",
    "Channels",
    "atr",
    "bollinger_bands",
    "donchian_channels",
    "keltner_channels",
    "realized_volatility",
    "true_range",
]
