"""Rolling statistics: max/min, z-score, percentile rank, range (IV) rank, drawdown.

Every function accepts 1-D ``(bars,)`` or 2-D ``(bars, columns)`` arrays and returns the same
shape. The first ``window - 1`` rows are NaN; a NaN input is NaN and restarts the window (the rows
after it equal the statistic on the series that begins after the NaN), except in
:func:`drawdown`, whose running peak carries over a gap. Inputs shorter than the window give
all-NaN output, never an exception.

Two ranks are offered for "where is today's value within its recent history" (e.g. IV rank or the
VIX percentile):

* :func:`percentile_rank` - the fraction of the last ``window`` values (today's included) that are
  at or below today's: in ``[1/window, 1]``, robust to a single outlier, steps of ``1/window``.
* :func:`range_rank` - the IV-rank formula ``(x - min) / (max - min)`` over the window: in
  ``[0, 1]``, continuous, but one spike compresses every later reading until it leaves the window.
"""

from __future__ import annotations

import numpy as np

from framework.errors import ParameterError
from framework.indicators._common import as_matrix, check_window, restore
from framework.indicators._extremes_nb import (
    drawdown_nb,
    percentile_rank_nb,
    range_rank_nb,
    rolling_max_nb,
    rolling_min_nb,
)
from framework.indicators._volatility_nb import zscore_nb


def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    """Maximum of the last ``window`` values, the current one included (TA-Lib MAX).

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``x``; the first ``window - 1`` rows are NaN.
    """
    window = check_window(window, "rolling_max")
    arr, one_d = as_matrix(x, "rolling_max")
    return restore(rolling_max_nb(arr, window), one_d)


def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    """Minimum of the last ``window`` values, the current one included (TA-Lib MIN).

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``x``; the first ``window - 1`` rows are NaN.
    """
    window = check_window(window, "rolling_min")
    arr, one_d = as_matrix(x, "rolling_min")
    return restore(rolling_min_nb(arr, window), one_d)


def rolling_zscore(x: np.ndarray, window: int = 20, ddof: int = 0) -> np.ndarray:
    """``(x - mean) / std`` of the last ``window`` values, the current one included.

    Parameters
    ----------
    x : ndarray
        Values, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars (>= 2).
    ddof : int
        0 for the population standard deviation (the default, as in Bollinger bands) or 1 for the
        sample one (pandas' ``rolling().std()`` default).

    Returns
    -------
    ndarray
        Same shape as ``x``; the first ``window - 1`` rows are NaN, and so is every row whose
        window is constant (the z-score is 0/0 there).
    """
    if ddof not in (0, 1) or isinstance(ddof, bool):
        raise ParameterError(f"rolling_zscore ddof must be 0 or 1; got {ddof!r}.")
    window = check_window(window, "rolling_zscore", minimum=2)
    arr, one_d = as_matrix(x, "rolling_zscore")
    return restore(zscore_nb(arr, window, ddof), one_d)


def percentile_rank(x: np.ndarray, window: int = 252) -> np.ndarray:
    """Fraction of the last ``window`` values (today's included) that are ``<=`` today's value.

    Parameters
    ----------
    x : ndarray
        Values, e.g. implied volatility or VIX closes, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars (>= 1); 252 is one year of daily bars.

    Returns
    -------
    ndarray
        Same shape as ``x``, values in ``[1/window, 1]`` (1 = the highest of the window); the
        first ``window - 1`` rows are NaN. Cost is O(bars x window).
    """
    window = check_window(window, "percentile_rank")
    arr, one_d = as_matrix(x, "percentile_rank")
    return restore(percentile_rank_nb(arr, window), one_d)


def range_rank(x: np.ndarray, window: int = 252) -> np.ndarray:
    """IV-rank style position in the window's range: ``(x - min) / (max - min)``.

    Parameters
    ----------
    x : ndarray
        Values, e.g. implied volatility, ``(bars,)`` or ``(bars, columns)``.
    window : int
        Number of bars (>= 1), the current one included.

    Returns
    -------
    ndarray
        Same shape as ``x``, values in ``[0, 1]``; NaN in the first ``window - 1`` rows and where
        the window is flat (``max == min``, the rank is 0/0).
    """
    window = check_window(window, "range_rank")
    arr, one_d = as_matrix(x, "range_rank")
    return restore(range_rank_nb(arr, window), one_d)


def drawdown(x: np.ndarray) -> np.ndarray:
    """Fractional distance below the running peak: ``x / max(x[:i+1]) - 1`` (<= 0).

    Parameters
    ----------
    x : ndarray
        Prices or equity (> 0), ``(bars,)`` or ``(bars, columns)``.

    Returns
    -------
    ndarray
        Same shape as ``x``. A NaN row is NaN and the peak carries over it (a gap must not hide a
        drawdown); rows are NaN while the running peak is <= 0, where a fraction has no meaning.
    """
    arr, one_d = as_matrix(x, "drawdown")
    return restore(drawdown_nb(arr), one_d)


__all__ = [
    "drawdown",
    "percentile_rank",
    "range_rank",
    "rolling_max",
    "rolling_min",
    "rolling_zscore",
]
