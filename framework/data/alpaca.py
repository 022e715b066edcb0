"""Alpaca historical stock bars through ``alpaca-py`` (``StockHistoricalDataClient``).

Alpaca's bar time ``t`` is the bar **open** time (UTC). Daily bars (``t`` = midnight New York) are
labelled at the XNYS session close of their New York date; intraday bars at ``t + bar length``.
The SDK follows ``next_page_token`` itself. Keys come only from the environment
(``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``); ``APCA_API_DATA_URL`` may point the client at
another host (tests use a local fake). Requests use ``adjustment="all"`` (splits and dividends) by
default, so, as with Yahoo, history can shift after a dividend; the pull logic detects that.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from framework.data.calendars import daily_close_labels
from framework.data.frames import Timeframe, canonical_frame, normalize_symbol, session_dates
from framework.data.providers import TransientProviderError
from framework.errors import ProviderError
from framework.types import SymbolInfo

KEY_VARIABLE = "APCA_API_KEY_ID"
SECRET_VARIABLE = "APCA_API_SECRET_KEY"
URL_VARIABLE = "APCA_API_DATA_URL"
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class AlpacaSpec:
    """How to reach Alpaca's market-data API.

    Attributes
    ----------
    url_override : str, optional
        Base URL instead of ``https://data.alpaca.markets`` (the SDK appends ``/v2/...``).
    feed : str, optional
        ``"iex"`` or ``"sip"``; None lets the server choose for the account's plan.
    adjustment : str
        ``"raw"``, ``"split"``, ``"dividend"`` or ``"all"``.
    timeout : float
        Seconds per HTTP request (the SDK itself sets none, so a hung server would block).
    """

    url_override: str | None = None
    feed: str | None = None
    adjustment: str = "all"
    timeout: float = 30.0


class _TimeoutAdapter(HTTPAdapter):
    """An adapter that applies a default timeout to every request it sends."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


@dataclass(frozen=True)
class AlpacaProvider:
    """Fetch stock bars from Alpaca; build with :meth:`from_environment`."""

    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    spec: AlpacaSpec = AlpacaSpec()
    name: str = "alpaca"

    @classmethod
    def from_environment(
        cls, spec: AlpacaSpec | None = None, environ: Mapping[str, str] | None = None
    ) -> AlpacaProvider:
        """Read the keys (and an optional ``APCA_API_DATA_URL``) from the environment.

        Raises
        ------
        ProviderError
            When a key is missing, naming the variables to set.
        """
        env = os.environ if environ is None else environ
        missing = [v for v in (KEY_VARIABLE, SECRET_VARIABLE) if not env.get(v, "").strip()]
        if missing:
            raise ProviderError(
                f"Alpaca needs API keys in the environment; missing {', '.join(missing)}. "
                f"Export {KEY_VARIABLE} and {SECRET_VARIABLE} (paper keys from "
                "https://app.alpaca.markets) or put them in a .env file."
            )
        spec = spec or AlpacaSpec()
        if spec.url_override is None and env.get(URL_VARIABLE, "").strip():
            spec = AlpacaSpec(env[URL_VARIABLE].strip(), spec.feed, spec.adjustment, spec.timeout)
        return cls(env[KEY_VARIABLE].strip(), env[SECRET_VARIABLE].strip(), spec)

    def describe(self, symbol: str, timeframe: Timeframe) -> SymbolInfo:
        """Source text and adjustment basis recorded with Alpaca bars."""
        host = self.spec.url_override or "https://data.alpaca.markets"
        feed = self.spec.feed or "account default"
        return SymbolInfo(
            source=f"alpaca:{normalize_symbol(symbol)} ({host}, feed {feed})",
            adjusted=self.spec.adjustment == "all",
            timeframe=timeframe.name,
            note=f"Alpaca adjustment={self.spec.adjustment!r} as of the pull",
        )

    def fetch(
        self,
        symbol: str,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        timeframe: Timeframe,
    ) -> pd.DataFrame:
        """Bars whose session/start falls in ``[start, end]`` (dates, inclusive).

        ``start=None`` means 2016-01-01 (Alpaca's history begins about then); ``end=None`` means
        now.

        Raises
        ------
        TransientProviderError
            Connection errors, timeouts and HTTP 408/429/5xx.
        ProviderError
            Other HTTP errors (bad keys: 401/403; bad request: 4xx) and a missing alpaca-py.
        """
        api_error, client_class, request_class = _sdk()
        client = client_class(
            self.api_key, self.secret_key, raw_data=True, url_override=self.spec.url_override
        )
        # The SDK passes no timeout to requests; mount one on its session (see AlpacaSpec).
        for prefix in ("http://", "https://"):
            client._session.mount(prefix, _TimeoutAdapter(self.spec.timeout))
        name = normalize_symbol(symbol)
        first = pd.Timestamp(start or "2016-01-01").normalize()
        # Alpaca's end is inclusive on bar open times; the day after ``end`` (00:00 UTC) is
        # before that day's first bar opens, so it keeps exactly the wanted days.
        last = None if end is None else pd.Timestamp(end).normalize() + pd.Timedelta(days=1)
        request = request_class(
            symbol_or_symbols=name,
            timeframe=_alpaca_timeframe(timeframe),
            start=first.to_pydatetime(),
            end=None if last is None else last.to_pydatetime(),
            adjustment=self.spec.adjustment,
            feed=self.spec.feed,
        )
        try:
            raw = client.get_stock_bars(request)
        except api_error as exc:
            status = getattr(exc, "status_code", None)
            if status in _TRANSIENT_STATUS:
                raise TransientProviderError(f"alpaca: HTTP {status} for {name}") from exc
            hint = " Check APCA_API_KEY_ID/APCA_API_SECRET_KEY." if status in (401, 403) else ""
            raise ProviderError(
                f"alpaca: request for {name} failed with HTTP {status}: {exc}.{hint}"
            ) from exc
        except (requests.RequestException, OSError) as exc:
            raise TransientProviderError(f"alpaca: network error for {name}: {exc}") from exc
        return alpaca_frame(raw.get(name, []) if isinstance(raw, dict) else [], timeframe)


def _sdk() -> tuple[type[Exception], type, type]:
    """alpaca-py's APIError, StockHistoricalDataClient and StockBarsRequest (imported lazily)."""
    try:
        with warnings.catch_warnings():
            # alpaca.data imports its websocket module, which imports websockets.legacy
            # (deprecated upstream); nothing here uses websockets.
            warnings.filterwarnings("ignore", message="websockets.legacy is deprecated")
            from alpaca.common.exceptions import APIError
            from alpaca.data.historical import StockHistoricalDataClient
            from alpaca.data.requests import StockBarsRequest
    except ImportError as exc:
        raise ProviderError(
            "alpaca-py is not installed; install it with "
            "`pip install 'fw[live]'` (or `pip install alpaca-py`)."
        ) from exc
    return APIError, StockHistoricalDataClient, StockBarsRequest


def _alpaca_timeframe(timeframe: Timeframe):
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    if timeframe.daily:
        return TimeFrame.Day
    minutes = int(timeframe.length / pd.Timedelta(minutes=1))
    if minutes % 60 == 0:
        return TimeFrame(minutes // 60, TimeFrameUnit.Hour)
    return TimeFrame(minutes, TimeFrameUnit.Minute)


def alpaca_frame(bars: list[dict], timeframe: Timeframe) -> pd.DataFrame:
    """Convert Alpaca's bar dicts (``t`` open time, ``o h l c v``) to a canonical frame."""
    keys = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
    columns = {
        name: np.array([bar.get(key, np.nan) for bar in bars], dtype=np.float64)
        for name, key in keys.items()
    }
    try:
        opens = pd.DatetimeIndex(
            pd.to_datetime([bar["t"] for bar in bars], utc=True, format="ISO8601")
        ).as_unit("ns")
    except (KeyError, ValueError) as exc:
        raise ProviderError(
            f"alpaca: a bar lacks a readable 't' timestamp ({exc}); expected "
            "ISO-8601 like 2024-01-02T14:30:00Z."
        ) from exc
    if timeframe.daily:
        labels = daily_close_labels(session_dates(opens))
    else:
        labels = opens + timeframe.length
    return canonical_frame(labels, columns)
