"""Yahoo Finance bars through ``yfinance`` (``Ticker.history``), split+dividend adjusted.

Daily bars come back indexed by the exchange-local date; they are labelled at the XNYS session
close of that date. Intraday bars are indexed by their start time; they are labelled
``start + bar length``. Prices use Yahoo's ``auto_adjust=True`` (OHLC adjusted for splits and
dividends as of the pull), so stored history can shift when a new dividend is paid; the pull logic
detects that on the overlapping bar and re-downloads the whole series.

Index symbols are stored without Yahoo's ``^`` (``GSPC``) and requested with it (``^GSPC``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.data.calendars import daily_close_labels
from framework.data.frames import Timeframe, canonical_frame, normalize_symbol, session_dates
from framework.data.providers import TransientProviderError
from framework.errors import ProviderError
from framework.types import SymbolInfo

# Stored names of Yahoo index tickers, which Yahoo spells with a leading "^".
YAHOO_INDEXES = frozenset({"GSPC", "IXIC", "VIX", "VVIX", "DJI", "RUT", "NDX", "TNX", "IRX", "TYX"})
_INTERVALS = {
    "1d": "1d",
    "1min": "1m",
    "2min": "2m",
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "1h": "1h",
}


def yahoo_ticker(symbol: str) -> str:
    """Yahoo's spelling of a stored symbol (``GSPC`` -> ``^GSPC``; ``BRK-B`` unchanged)."""
    name = normalize_symbol(symbol)
    return f"^{name}" if name in YAHOO_INDEXES else name


@dataclass(frozen=True)
class YahooProvider:
    """Fetch bars from Yahoo Finance with ``yfinance.Ticker(...).history``.

    Attributes
    ----------
    timeout : float
        Seconds per HTTP request (passed to yfinance).
    """

    name: str = "yahoo"
    timeout: float = 30.0

    def describe(self, symbol: str, timeframe: Timeframe) -> SymbolInfo:
        """Source text and adjustment basis recorded with Yahoo bars."""
        return SymbolInfo(
            source=f"yahoo:{yahoo_ticker(symbol)} (yfinance Ticker.history, auto_adjust=True)",
            adjusted=True,
            timeframe=timeframe.name,
            note="split+dividend adjusted by Yahoo (auto_adjust=True) as of the pull",
        )

    def fetch(
        self,
        symbol: str,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        timeframe: Timeframe,
    ) -> pd.DataFrame:
        """Bars in ``[start, end]`` (dates, inclusive; None = all available) as a canonical frame.

        Raises
        ------
        TransientProviderError
            Network failures and Yahoo rate limits.
        ProviderError
            Unknown tickers, unsupported timeframes and other yfinance errors.
        """
        import yfinance
        from yfinance import exceptions as yf_errors

        interval = _INTERVALS.get(timeframe.name)
        if interval is None:
            raise ProviderError(
                f"Yahoo has no {timeframe.name!r} bars; use one of {', '.join(_INTERVALS)}."
            )
        ticker = yahoo_ticker(symbol)
        kwargs = _history_kwargs(interval, start, end, self.timeout)
        try:
            with warnings.catch_warnings():
                # raise_errors is deprecated in favour of a process-wide yfinance setting; the
                # per-call flag keeps fw from changing global state in a third-party library.
                warnings.filterwarnings(
                    "ignore", message=".*raise_errors.*", category=DeprecationWarning
                )
                raw = yfinance.Ticker(ticker).history(raise_errors=True, **kwargs)
        except yf_errors.YFPricesMissingError:
            raw = pd.DataFrame()
        except yf_errors.YFRateLimitError as exc:
            raise TransientProviderError(f"yahoo: rate limited while fetching {ticker}") from exc
        except yf_errors.YFTickerMissingError as exc:
            raise ProviderError(
                f"yahoo: unknown or delisted ticker {ticker!r} ({exc}); check "
                "the symbol on finance.yahoo.com."
            ) from exc
        except yf_errors.YFException as exc:
            raise ProviderError(f"yahoo: fetching {ticker} failed: {exc}") from exc
        except OSError as exc:
            raise TransientProviderError(f"yahoo: network error fetching {ticker}: {exc}") from exc
        frame = yahoo_frame(raw, timeframe)
        if start is None and end is not None:
            # period="max" cannot be combined with an end date, so cut the answer here.
            frame = frame[session_dates(frame.index) <= pd.Timestamp(end).normalize()]
        return frame


def _history_kwargs(
    interval: str, start: pd.Timestamp | None, end: pd.Timestamp | None, timeout: float
) -> dict[str, object]:
    """Arguments of ``Ticker.history`` for an inclusive ``[start, end]`` range of days."""
    kwargs: dict[str, object] = {
        "interval": interval,
        "auto_adjust": True,
        "actions": False,
        "timeout": timeout,
    }
    if start is None:
        kwargs["period"] = "max"
        return kwargs
    kwargs["start"] = pd.Timestamp(start).strftime("%Y-%m-%d")
    if end is not None:
        # yfinance's end is exclusive; ours is the last wanted day, inclusive.
        kwargs["end"] = (pd.Timestamp(end).normalize() + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    return kwargs


def yahoo_frame(raw: pd.DataFrame, timeframe: Timeframe) -> pd.DataFrame:
    """Convert a ``Ticker.history`` frame (Open/High/Low/Close/Volume) to a canonical frame."""
    if raw is None or raw.empty:
        return canonical_frame(
            pd.DatetimeIndex([], tz="UTC"),
            {n: np.array([]) for n in ("open", "high", "low", "close", "volume")},
        )
    columns = {
        name.lower(): raw[name].to_numpy(np.float64)
        for name in ("Open", "High", "Low", "Close", "Volume")
    }
    keep = ~np.all(
        np.isnan(np.column_stack([columns[n] for n in ("open", "high", "low", "close")])), axis=1
    )
    columns = {name: values[keep] for name, values in columns.items()}
    index = pd.DatetimeIndex(raw.index)[keep]
    if timeframe.daily:
        local = index.tz_localize(None) if index.tz is not None else index
        labels = daily_close_labels(local.normalize())
    else:
        starts = index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
        labels = starts + timeframe.length
    return canonical_frame(labels, columns)
