"""Closed bars from Webull's market-data REST endpoint, for :class:`~live.alpaca_feed.AlpacaFeed`.

The feed's pacing, warm-up, backfill and trading-deadline logic is the Alpaca feed's; only the
bar reader differs (``fetch=`` of :class:`~live.alpaca_feed.AlpacaFeed`). Webull's batch bars
endpoint (``POST /market-data/stocks/bars/list``) returns at most ``count`` (<= 1200) bars per
symbol, the latest ones not after ``end_time``; longer ranges are read backwards page by page.
Prices come as strings; ``time`` is the bar's time in UTC (daily bars: the session date).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from framework.errors import BrokerError
from live.alpaca_feed import bar_frame
from live.clock import BarSchedule
from live.webull_sdk import WebullConnection

TIMESPANS = {"1Min": "M1", "5Min": "M5", "15Min": "M15", "30Min": "M30", "1Hour": "M60",
             "1Day": "D"}
MAX_COUNT = 1200
CATEGORY = "US_STOCK"
_KEYS = {"o": "open", "h": "high", "l": "low", "c": "close", "v": "volume"}


def fetch_bars(conn: WebullConnection, symbols: Sequence[str], schedule: BarSchedule,
               start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Bars whose close label lies in ``(start, end]``, per symbol, labelled by close time."""
    first_open = schedule.bar_open(schedule.next_close(start))
    last_open = schedule.bar_open(end) if end > start else first_open
    if schedule.interval == "1Day":
        # daily bars are stamped with their session date: compare on New York midnight
        first_open = first_open.tz_convert("America/New_York").normalize().tz_convert("UTC")
        last_open = last_open.tz_convert("America/New_York").normalize().tz_convert("UTC")
    rows = {symbol: [] for symbol in symbols}
    for symbol in symbols:
        rows[symbol] = _read_symbol(conn, symbol, schedule.interval, first_open, last_open)
    out = {}
    for symbol in symbols:
        frame = bar_frame(rows[symbol], schedule)
        out[symbol] = frame[(frame.index > start) & (frame.index <= end)]
    return out


def _read_symbol(conn: WebullConnection, symbol: str, interval: str, first: pd.Timestamp,
                 last: pd.Timestamp) -> list[dict]:
    """Every bar of ``symbol`` with time in [first, last], oldest first, paging backwards."""
    found: dict[pd.Timestamp, dict] = {}
    high = last
    for _ in range(1000):  # bounded: each page moves ``high`` strictly back
        page = _page(conn, symbol, interval, first, high)
        for row in page:
            found[row["t"]] = row
        if len(page) < MAX_COUNT:
            break
        oldest = min(row["t"] for row in page)
        if oldest <= first:
            break
        high = oldest - pd.Timedelta(milliseconds=1)
    return [found[t] for t in sorted(found)]


def _page(conn: WebullConnection, symbol: str, interval: str, first: pd.Timestamp,
          high: pd.Timestamp) -> list[dict]:
    payload = conn.read_json(
        "POST /market-data/stocks/bars/list",
        lambda: conn.market.get_batch_history_bar(
            [symbol], CATEGORY, TIMESPANS[interval], count=str(MAX_COUNT),
            start_time=_ms(first), end_time=_ms(high)))
    groups = payload if isinstance(payload, list) else []
    rows = []
    for group in groups:
        if not isinstance(group, dict) or group.get("symbol") != symbol:
            continue
        for bar in group.get("result") or []:
            rows.append(_row(bar, symbol))
    return rows


def _row(bar: dict, symbol: str) -> dict:
    try:
        row = {"t": pd.Timestamp(bar["time"]).tz_convert("UTC")}
        row.update({key: float(bar[name]) for key, name in _KEYS.items() if name in bar})
    except (KeyError, TypeError, ValueError) as exc:
        raise BrokerError(f"webull sent an unreadable {symbol} bar {bar!r} ({exc}); expected "
                          "time, open, high, low, close, volume.") from exc
    return row


def _ms(stamp: pd.Timestamp) -> int:
    return int(pd.Timestamp(stamp).value // 1_000_000)
