"""The embedded default data: real daily bars shipped inside the installed ``arch`` package.

Nothing is copied into the repository; the data is read from ``arch.data`` at run time, offline:

* ``GSPC`` - ``arch.data.sp500``: S&P 500 index (^GSPC, from Yahoo), 1999-01-04..2018-12-31, OHLC
  and volume. It is a **price index** (no dividends), used as the SPY proxy when no ETF data is
  imported; buy-and-hold returns on it understate SPY's total return by the dividend yield.
* ``IXIC`` - ``arch.data.nasdaq``: Nasdaq Composite (^IXIC, Yahoo), same range, price index.
* ``VIX`` - ``arch.data.vix``: CBOE VIX daily close from FRED (VIXCLS), 2014-01-03..2019-01-03.
  Only the close exists, so open = high = low = close (bars carry no intraday range) and volume is
  NaN (not reported). The 46 FRED rows without a value (exchange holidays) are dropped.

Dates are labelled at the XNYS session close like every daily series.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from framework.data.calendars import daily_close_labels
from framework.data.frames import canonical_frame, normalize_symbol
from framework.data.validation import validate_frame
from framework.errors import DataError, did_you_mean
from framework.types import Bars, SymbolInfo

EMBEDDED_SYMBOLS: tuple[str, ...] = ("GSPC", "IXIC", "VIX")

_INFO = {
    "GSPC": SymbolInfo(
        source="arch.data.sp500 (S&P 500 index ^GSPC, Yahoo, 1999-01-04..2018-12-31)",
        adjusted=False,
        note="price index (no dividends), used as the SPY proxy for GSPC",
    ),
    "IXIC": SymbolInfo(
        source="arch.data.nasdaq (Nasdaq Composite index ^IXIC, Yahoo, 1999-01-04..2018-12-31)",
        adjusted=False,
        note="price index (no dividends)",
    ),
    "VIX": SymbolInfo(
        source="arch.data.vix (CBOE VIX close, FRED VIXCLS, 2014-01-03..2019-01-03)",
        adjusted=False,
        note="close only: open = high = low = close, volume NaN; not tradable",
    ),
}


def embedded_info(symbol: str) -> SymbolInfo:
    """Source and notes of one embedded symbol."""
    return _INFO[_check(symbol)]


def embedded_frame(symbol: str) -> pd.DataFrame:
    """One embedded symbol as a canonical frame (UTC session-close index, float64 OHLCV)."""
    symbol = _check(symbol)
    if symbol == "VIX":
        from arch.data import vix

        close = vix.load()["vix"].dropna()
        dates = pd.DatetimeIndex(close.index)
        values = close.to_numpy(np.float64)
        columns = {
            "open": values,
            "high": values,
            "low": values,
            "close": values,
            "volume": np.full(len(values), np.nan),
        }
    else:
        from arch.data import nasdaq, sp500

        raw = (sp500 if symbol == "GSPC" else nasdaq).load()
        dates = pd.DatetimeIndex(raw.index)
        columns = {
            name.lower(): raw[name].to_numpy(np.float64)
            for name in ("Open", "High", "Low", "Close", "Volume")
        }
    frame = canonical_frame(daily_close_labels(dates.normalize()), columns)
    validate_frame(frame, path=_INFO[symbol].source)
    return frame


def load_default(symbols: Sequence[str] | None = None) -> Bars:
    """Load embedded daily bars (offline); all of ``EMBEDDED_SYMBOLS`` when ``symbols`` is None.

    Parameters
    ----------
    symbols : sequence of str, optional
        Any of ``GSPC``, ``IXIC``, ``VIX``.

    Returns
    -------
    Bars
        Aligned on the union of dates; ``info`` names the true source and range of each symbol.
    """
    names = list(EMBEDDED_SYMBOLS) if symbols is None else [_check(s) for s in symbols]
    frames = {name: embedded_frame(name) for name in names}
    return Bars.from_frames(frames, info={name: _INFO[name] for name in names})


def _check(symbol: str) -> str:
    name = normalize_symbol(symbol)
    if name not in _INFO:
        raise DataError(
            f"{symbol!r} is not an embedded symbol.{did_you_mean(name, EMBEDDED_SYMBOLS)} "
            f"Embedded: {', '.join(EMBEDDED_SYMBOLS)}; import other data with "
            "`fw data import PATH`."
        )
    return name
