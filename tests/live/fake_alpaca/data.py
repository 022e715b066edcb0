"""Market-data endpoints of the fake (``/v2/stocks/bars`` and ``/v2/stocks/bars/latest``).

Only complete bars are served (close_time <= clock), so a client can never see the future;
``faults.partial_daily_bar`` adds today's developing daily bar as the real API does.
Data-API errors carry only ``{"message": ...}`` (no numeric code), like Alpaca's data host.
"""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd

from .bars import SymbolBars, wire_bar
from .market import Market
from .orders import ApiReject
from .sessions import MINUTE_NS, NEW_YORK
from .trading import Call, query_choice, query_list, query_time

FEEDS = ("iex", "sip", "delayed_sip")
SIP_DELAY_NS = 15 * MINUTE_NS
_TIMEFRAME = re.compile(r"(\d+)(Min|T|Hour|H|Day|D)")


def _reject(status: int, message: str) -> ApiReject:
    return ApiReject(status, None, message)


def _timeframe_minutes(text: str | None, seeded: str) -> int | None:
    """Minutes per bar for intraday frames; None for 1Day. 422 for frames the seeds can't make."""
    match = _TIMEFRAME.fullmatch(text or "")
    if not match:
        raise _reject(422, f"invalid timeframe: {text!r} (expected e.g. 1Min, 5Min, 1Hour, 1Day)")
    amount, unit = int(match.group(1)), match.group(2)
    if unit in ("Day", "D"):
        if amount != 1 or seeded != "1Day":
            raise _reject(422, f"timeframe {text} is not available: the fake was seeded with "
                          f"{seeded} bars and serves 1Day only from daily seeds")
        return None
    minutes = amount * (60 if unit in ("Hour", "H") else 1)
    if seeded != "1Min" or not (1 <= amount <= (23 if unit in ("Hour", "H") else 59)):
        raise _reject(422, f"timeframe {text} is not available: the fake was seeded with "
                      f"{seeded} bars (intraday frames are aggregated from 1Min seeds)")
    return minutes


def _visible(series: SymbolBars, minutes: int | None, now: int) -> list[dict]:
    """Complete bars of one symbol at ``now`` in the requested frame, oldest first."""
    count = series.complete(now)
    if minutes is None or minutes == 1:
        return [series.wire(k) for k in range(count)]
    width = minutes * MINUTE_NS
    buckets = series.t[:count] // width * width
    complete = buckets + width <= now
    positions = np.nonzero(complete)[0]
    buckets = buckets[complete]
    rows = []
    for bucket in np.unique(buckets):
        take = positions[buckets == bucket]
        volume = float(series.v[take].sum())
        vwap = (float((series.vw[take] * series.v[take]).sum() / volume) if volume
                else float(series.c[take[-1]]))
        rows.append(wire_bar(int(bucket), series.o[take[0]], series.h[take].max(),
                             series.low[take].min(), series.c[take[-1]], volume,
                             series.n[take].sum(), vwap))
    return rows


def _developing_daily(market: Market, series: SymbolBars) -> list[dict]:
    """Today's bar while the session runs: o=h=l=c=open and a small volume."""
    now = market.now_ns
    position = series.complete(now)
    if (not market.sessions.is_open(now) or position >= len(series)
            or series.open_time[position] > now):
        return []
    opening = series.o[position]
    volume = max(1.0, float(np.floor(series.v[position] / 100)))
    return [wire_bar(int(series.t[position]), opening, opening, opening, opening, volume, 1,
                     opening)]


def _check_feed(market: Market, call: Call, end: int) -> str:
    feed = (call.query.get("feed") or "iex").lower()
    if feed not in FEEDS:
        raise _reject(400, f"invalid feed: {call.query.get('feed')!r} (expected one of {FEEDS})")
    if (feed == "sip" and market.faults.sip_recent_forbidden
            and end > market.now_ns - SIP_DELAY_NS):
        raise _reject(403, "subscription does not permit querying recent SIP data")
    return feed


def _symbols(call: Call) -> list[str]:
    symbols = query_list(call, "symbols")
    if not symbols:
        raise _reject(400, "missing symbols (pass symbols=SPY,QQQ)")
    return symbols


def _limit(call: Call) -> int:
    text = call.query.get("limit") or "1000"
    if not text.isdigit() or not 1 <= int(text) <= 10000:
        raise _reject(422, f"invalid limit: {text!r} (expected 1..10000)")
    return int(text)


def stock_bars(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/stocks/bars``: start/end inclusive on ``t``, paged by ``page_token``."""
    symbols = _symbols(call)
    minutes = _timeframe_minutes(call.query.get("timeframe"), market.timeframe)
    with market.lock:
        now = market.now_ns
        today = pd.Timestamp(now, tz="UTC").tz_convert(NEW_YORK).normalize().value
        start = query_time(call, "start", code=None)
        end = query_time(call, "end", code=None)
        start, end = today if start is None else start, now if end is None else end
        _check_feed(market, call, end)
        newest_first = query_choice(call, "sort", ("asc", "desc"), "asc") == "desc"
        rows = []
        for symbol in sorted(set(symbols)):
            series = market.series.get(symbol)
            if series is None:
                continue
            bars = _visible(series, minutes, now)
            if minutes is None and market.faults.partial_daily_bar:
                bars += _developing_daily(market, series)
            rows += [(symbol, b) for b in bars if start <= b["t"] <= end]
    return 200, _page(rows, newest_first, _limit(call), call.query.get("page_token"))


def _page(rows: list, newest_first: bool, limit: int, token: str | None) -> dict:
    sign = -1 if newest_first else 1
    rows.sort(key=lambda row: (row[0], sign * row[1]["t"]))
    if token:
        symbol, t_ns = _decode(token)
        rows = [row for row in rows if (row[0], sign * row[1]["t"]) >= (symbol, sign * t_ns)]
    page, rest = rows[:limit], rows[limit:]
    result: dict[str, list] = {}
    for symbol, bar in page:
        result.setdefault(symbol, []).append({**bar, "t": _bar_time(bar["t"])})
    following = _encode(rest[0][0], rest[0][1]["t"]) if rest else None
    return {"bars": result, "next_page_token": following}


def _bar_time(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode(symbol: str, t_ns: int) -> str:
    return base64.urlsafe_b64encode(f"{symbol}|{t_ns}".encode()).decode()


def _decode(token: str) -> tuple[str, int]:
    try:
        symbol, t_text = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return symbol, int(t_text)
    except (ValueError, UnicodeDecodeError):
        raise _reject(400, f"invalid page_token: {token!r}") from None


def latest_bars(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/stocks/bars/latest``: the last complete bar per symbol (a dict, not a list)."""
    symbols = _symbols(call)
    with market.lock:
        _check_feed(market, call, market.now_ns)
        result = {}
        for symbol in symbols:
            series = market.series.get(symbol)
            count = 0 if series is None else series.complete(market.now_ns)
            if count:
                bar = series.wire(count - 1)
                result[symbol] = {**bar, "t": _bar_time(bar["t"])}
    return 200, {"bars": result}


ROUTES = [
    ("GET", re.compile(r"/v2/stocks/bars/latest/?\Z"), latest_bars),
    ("GET", re.compile(r"/v2/stocks/bars/?\Z"), stock_bars),
]
