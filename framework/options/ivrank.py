"""IV rank and IV percentile: where today's implied volatility sits in its trailing history.

* :func:`iv_rank` - ``(iv - min) / (max - min)`` over the trailing ``window`` (today included):
  continuous in ``[0, 1]``, but one spike compresses every later reading until it leaves the window.
* :func:`iv_percentile` - the share of the window's other days whose IV was strictly below
  today's: in ``[0, 1]``, robust to a single spike, steps of ``1 / (days - 1)``.

Both are causal (row ``i`` uses rows ``<= i`` only) and accept a 1-D series ``(bars,)``, a 2-D
panel ``(bars, assets)``, or the pandas equivalents (the result keeps the index and columns).
Missing values (NaN) do not restart the window, they just do not count; see
:mod:`framework.options._ivrank_nb`. :func:`vix_iv_history` turns VIX closes into the usual SPY
IV proxy.

:mod:`framework.indicators.statistics` has ``range_rank`` / ``percentile_rank`` with the
indicator conventions (NaN restarts the window; percentile counts ``<=`` including today); the
functions here follow the options-trader definitions instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.errors import DataError, ParameterError
from framework.indicators._common import as_matrix, restore
from framework.options._ivrank_nb import iv_percentile_nb, iv_rank_nb
from framework.types import Bars

ArrayOrFrame = np.ndarray | pd.Series | pd.DataFrame


def iv_rank(iv: ArrayOrFrame, window: int = 252, min_periods: int | None = None) -> ArrayOrFrame:
    """IV rank: ``(iv - min) / (max - min)`` over the trailing ``window`` bars, today included.

    Parameters
    ----------
    iv : ndarray, Series or DataFrame
        Implied volatility (any positive scale, e.g. decimals or VIX points), ``(bars,)`` or
        ``(bars, assets)``.
    window : int
        Bars in the trailing window (>= 1); 252 is one year of daily bars.
    min_periods : int, optional
        Non-NaN values the window needs before a rank is given (1 .. window); default ``window``.

    Returns
    -------
    ndarray, Series or DataFrame
        Same shape and type as ``iv``, in ``[0, 1]`` (0 = the window's low, 1 = its high). NaN
        where ``iv`` is NaN, during the warm-up, and where the window is flat (``max == min``:
        the rank is 0/0, so a constant series gives all NaN).

    Raises
    ------
    ParameterError
        Bad ``window`` / ``min_periods`` or a non-numeric input.
    DataError
        ``iv`` contains an infinite value.
    """
    return _apply(iv_rank_nb, "iv_rank", iv, window, min_periods)


def iv_percentile(
    iv: ArrayOrFrame, window: int = 252, min_periods: int | None = None
) -> ArrayOrFrame:
    """IV percentile: share of the trailing window's other days with IV strictly below today's.

    Parameters
    ----------
    iv : ndarray, Series or DataFrame
        Implied volatility, ``(bars,)`` or ``(bars, assets)``.
    window : int
        Bars in the trailing window (>= 1), today included; 252 is one year of daily bars.
    min_periods : int, optional
        Non-NaN values the window needs, today's included (1 .. window); default ``window``.

    Returns
    -------
    ndarray, Series or DataFrame
        Same shape and type as ``iv``: ``(# days in the window below today) / (# other non-NaN
        days in the window)``, in ``[0, 1]``; 1 when today is above every other day, 0 when no
        day is below (so a constant series gives 0). NaN where ``iv`` is NaN, during the warm-up,
        and when today is the window's only value.

    Raises
    ------
    ParameterError
        Bad ``window`` / ``min_periods`` or a non-numeric input.
    DataError
        ``iv`` contains an infinite value.
    """
    return _apply(iv_percentile_nb, "iv_percentile", iv, window, min_periods)


def vix_iv_history(bars: Bars | pd.DataFrame | pd.Series, symbol: str = "VIX") -> pd.Series:
    """SPY's implied-volatility proxy: VIX closes / 100 (VIX is 30-day S&P 500 IV in points).

    Parameters
    ----------
    bars : Bars, DataFrame or Series
        :class:`framework.types.Bars` holding ``symbol``; or a frame with a ``close`` column
        (e.g. a daily CSV read with pandas); or a Series of VIX closes.
    symbol : str
        Column of ``bars`` that holds the VIX (``Bars`` input only).

    Returns
    -------
    Series
        Decimal IV (0.1669 for a VIX close of 16.69), named ``"iv"``, on the input's index.

    Raises
    ------
    DataError
        ``symbol`` is not in ``bars``, there is no ``close`` column, or a close is <= 0.
    """
    closes = _vix_closes(bars, symbol)
    values = closes.to_numpy(dtype=np.float64)
    bad = ~(np.isnan(values) | (values > 0.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"vix_iv_history: VIX close must be > 0; got {values[first]!r} at "
            f"{closes.index[first]}. Drop or repair that row first."
        )
    return pd.Series(values / 100.0, index=closes.index, name="iv")


def _vix_closes(bars: Bars | pd.DataFrame | pd.Series, symbol: str) -> pd.Series:
    """The VIX close series from any of the inputs :func:`vix_iv_history` accepts."""
    if isinstance(bars, Bars):
        if symbol not in bars.symbols:
            raise DataError(
                f"vix_iv_history: symbol {symbol!r} is not in bars (symbols: "
                f"{list(bars.symbols)}). Load it, e.g. load_bars([{symbol!r}], data_dir=...)."
            )
        return pd.Series(bars.close[:, bars.symbols.index(symbol)], index=bars.index)
    if isinstance(bars, pd.DataFrame):
        if "close" not in bars.columns:
            raise DataError(
                f"vix_iv_history: the frame has no 'close' column (columns: "
                f"{list(bars.columns)}). Pass a frame of daily bars or a Series of closes."
            )
        return bars["close"]
    if isinstance(bars, pd.Series):
        return bars
    raise DataError(
        f"vix_iv_history takes Bars, a DataFrame with 'close' or a Series; got "
        f"{type(bars).__name__}."
    )


def _apply(kernel, name: str, iv: ArrayOrFrame, window: int, min_periods: int | None):
    """Check arguments, run ``kernel`` on a column-major float64 panel, restore shape and type."""
    window = _check_window(name, window)
    min_periods = _check_min_periods(name, min_periods, window)
    arr, one_d = as_matrix(iv, name, "iv")
    if np.isinf(arr).any():
        raise DataError(
            f"{name}: iv contains an infinite value; implied volatility must be finite (use NaN "
            "for a missing day)."
        )
    out = restore(kernel(arr, window, min_periods), one_d)
    if isinstance(iv, pd.Series):
        return pd.Series(out, index=iv.index, name=iv.name)
    if isinstance(iv, pd.DataFrame):
        return pd.DataFrame(out, index=iv.index, columns=iv.columns)
    return out


def _check_window(name: str, window: object) -> int:
    """``window`` as an int >= 1, or a ParameterError naming it."""
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ParameterError(
            f"{name} window must be a positive integer number of bars; got {window!r}. "
            "Pass e.g. window=252 for one year of daily bars."
        )
    return int(window)


def _check_min_periods(name: str, min_periods: object, window: int) -> int:
    """``min_periods`` as an int in ``1 .. window`` (None means ``window``)."""
    if min_periods is None:
        return window
    ok = isinstance(min_periods, int | np.integer) and not isinstance(min_periods, bool)
    if not ok or not 1 <= min_periods <= window:
        raise ParameterError(
            f"{name} min_periods must be an integer from 1 to window={window}; got "
            f"{min_periods!r}. Leave it None to require a full window."
        )
    return int(min_periods)


__all__ = ["iv_percentile", "iv_rank", "vix_iv_history"]
