"""Closed bars from Alpaca's market-data API, paced by the exchange calendar.

The feed waits (on market time, :class:`~live.clock.SyncedClock`) for each bar close of the
:class:`~live.clock.BarSchedule`, plus a settle delay, then reads the bars through the REST
historical endpoint. The same endpoint gives the warm-up history of a new run and backfills the
bars a restarted runner missed, so there is one code path and no gap.

Which bars are traded: only the latest closed bar, and only while the next bar has not opened
yet (plus a grace of a few seconds for intraday bars, which open the moment the previous one
closes). Older bars (warm-up, backfill, a decision that came too late) are yielded with
``warmup=True``: the runner feeds them to the strategy without trading, because an order sent now
would not fill where the backtest assumes (the next bar's open).

Minutes without a trade have no bar on IEX: such a bar is NaN for that symbol; a close with no
bar for any symbol is skipped for intraday intervals (with an event) and halts daily runs after
``max_wait`` (stale data).

For 1-minute bars a :class:`~live.alpaca_stream.BarStream` (the market-data websocket) may
supply the newest bar without a REST call; whatever it lacks (a gap, a reconnect, a backfill
after a restart) comes from REST, so the stream only makes the feed faster, never different.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.data.calendars import daily_close_labels
from framework.data.frames import session_dates
from framework.errors import BrokerError, ConfigError
from framework.types import FIELDS
from live.alpaca import AlpacaConnection
from live.clock import BarSchedule, SyncedClock
from live.feeds import ClosedBar

_KEYS = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
_SESSION_MINUTES = 390.0


class StaleDataError(BrokerError):
    """No bar arrived for a close within the allowed wait."""


@dataclass(frozen=True)
class LiveFeedSpec:
    """How the live feed paces itself.

    Attributes
    ----------
    interval : str
        Bar interval: ``1Min``, ``5Min``, ``15Min``, ``30Min``, ``1Hour`` or ``1Day``.
    warmup_bars : int
        History loaded before the first decision of a new run.
    settle : float, optional
        Seconds after a close before the bar is read (Alpaca computes minute bars about a second
        after the minute; daily bars settle later). Default: 3 s intraday, 120 s daily.
    poll : float
        Seconds between checks while waiting.
    max_wait : float
        Seconds after ``close + settle`` to wait for a missing bar before skipping (intraday)
        or halting (daily).
    grace : float
        Seconds after the next bar's open during which the latest bar is still traded.
    max_bars : int, optional
        Stop after this many traded (live) bars.
    """

    interval: str = "1Day"
    warmup_bars: int = 300
    settle: float | None = None
    poll: float = 1.0
    max_wait: float = 600.0
    grace: float = 30.0
    max_bars: int | None = None

    def __post_init__(self) -> None:
        BarSchedule(self.interval)  # validates the name
        if self.warmup_bars < 1:
            raise ConfigError(f"warmup_bars={self.warmup_bars}; expected at least 1 bar of history.")
        for name in ("poll", "max_wait", "grace"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"live feed {name}={value!r}; expected seconds >= 0.")
        if self.max_bars is not None and self.max_bars < 1:
            raise ConfigError(f"max_bars={self.max_bars}; expected at least 1 (or none).")

    @property
    def daily(self) -> bool:
        return self.interval == "1Day"

    @property
    def settle_seconds(self) -> float:
        if self.settle is not None:
            return float(self.settle)
        return 120.0 if self.daily else 3.0


def fetch_bars(conn: AlpacaConnection, symbols: Sequence[str], schedule: BarSchedule,
               start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Bars whose close label lies in ``(start, end]``, per symbol, labelled by close time."""
    from alpaca.data.requests import StockBarsRequest

    # Alpaca filters on bar open times (inclusive): from the first possible open after ``start``
    first_open = schedule.bar_open(schedule.next_close(start))
    last_open = schedule.bar_open(end) if end > start else first_open
    if schedule.interval == "1Day":
        # daily bars carry midnight New York as their open time
        first_open = first_open.tz_convert("America/New_York").normalize().tz_convert("UTC")
        last_open = last_open.tz_convert("America/New_York").normalize().tz_convert("UTC")
    request = StockBarsRequest(
        symbol_or_symbols=list(symbols), timeframe=_timeframe(schedule.interval),
        start=first_open.to_pydatetime(), end=last_open.to_pydatetime(),
        feed=conn.spec.feed, adjustment="split",
    )
    raw = conn.read("GET /v2/stocks/bars", lambda: conn.data.get_stock_bars(request))
    out = {}
    for symbol in symbols:
        rows = raw.get(symbol, []) if isinstance(raw, dict) else []
        frame = _frame(rows, schedule)
        out[symbol] = frame[(frame.index > start) & (frame.index <= end)]
    return out


def bar_frame(rows: list[dict], schedule: BarSchedule) -> pd.DataFrame:
    """Bars given as ``{"t": open time, "o", "h", "l", "c", "v"}`` rows, labelled by close."""
    return _frame(rows, schedule)


def _frame(rows: list[dict], schedule: BarSchedule) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({name: np.empty(0) for name in FIELDS},
                            index=pd.DatetimeIndex([], tz="UTC", name="time"))
    opens = pd.DatetimeIndex(pd.to_datetime([r["t"] for r in rows], utc=True, format="ISO8601"))
    if schedule.interval == "1Day":
        labels = daily_close_labels(session_dates(opens))
    else:
        labels = pd.DatetimeIndex([schedule.next_close(t) for t in opens])
    data = {name: np.array([r.get(key, np.nan) for r in rows], np.float64)
            for name, key in _KEYS.items()}
    frame = pd.DataFrame(data, index=labels.as_unit("ns").rename("time"))
    return frame[~frame.index.duplicated(keep="last")].sort_index()


def _timeframe(interval: str):
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    if interval == "1Day":
        return TimeFrame.Day
    if interval == "1Hour":
        return TimeFrame(1, TimeFrameUnit.Hour)
    return TimeFrame(int(interval.removesuffix("Min")), TimeFrameUnit.Minute)


class AlpacaFeed:
    """Closed bars of ``symbols`` as they close, after the warm-up/backfill history.

    Parameters
    ----------
    symbols : sequence of str
    conn : AlpacaConnection
    clock : SyncedClock
        Market time (synced to the broker's clock).
    spec : LiveFeedSpec
    after : pandas.Timestamp, optional
        The last bar the run already processed (None: a new run, load ``warmup_bars``).
    on_event : callable, optional
        Receives ``(kind, message)`` for skipped bars and similar notes.
    should_stop : callable, optional
        Polled while waiting; True ends the feed.
    fetch : callable, optional
        ``fetch(symbols, schedule, start, end) -> {symbol: frame}`` reads bars whose close label
        lies in ``(start, end]`` (another broker's market data); default :func:`fetch_bars` on
        ``conn``.
    source : str, optional
        How the data source is named in messages (default: the Alpaca feed, e.g. "iex feed").
    """

    def __init__(self, symbols: Sequence[str], conn: AlpacaConnection, clock: SyncedClock,
                 spec: LiveFeedSpec, after: pd.Timestamp | None = None,
                 on_event: Callable[[str, str], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False, stream=None,
                 fetch: Callable[..., dict[str, pd.DataFrame]] | None = None,
                 source: str | None = None) -> None:
        self.symbols = tuple(symbols)
        self.conn, self.clock, self.spec = conn, clock, spec
        self._fetch = fetch or (lambda *args: fetch_bars(self.conn, *args))
        self._source = source
        self.schedule = BarSchedule(spec.interval)
        self.after = None if after is None else pd.Timestamp(after).tz_convert("UTC")
        self._on_event = on_event or (lambda kind, message: None)
        self._should_stop = should_stop
        self.live_bars = 0
        self.stream = stream if spec.interval == "1Min" else None
        self.from_stream = 0  # bars taken from the websocket (the rest came by REST)

    def __iter__(self) -> Iterator[ClosedBar]:
        self.clock.sync()
        last = self.after if self.after is not None else self._warmup_start()
        while not self._should_stop():
            if self.spec.max_bars is not None and self.live_bars >= self.spec.max_bars:
                return
            due = self.schedule.next_close(last)
            settle = pd.Timedelta(seconds=self.spec.settle_seconds)
            if not self.clock.sleep_until(due + settle, self.spec.poll, self._should_stop):
                return
            self.clock.check()
            batch = self._read(last)
            if batch is None:  # nothing for the due close: skipped (intraday)
                last = due
                continue
            for bar in batch:
                if not bar.warmup:
                    self.live_bars += 1
                yield bar
                last = bar.time

    # -- reading ------------------------------------------------------------------------------
    def _warmup_start(self) -> pd.Timestamp:
        """A time before the first warm-up bar's close: enough sessions back for the history."""
        now = self.clock.now()
        per_session = 1.0 if self.spec.daily else _SESSION_MINUTES / _minutes(self.spec.interval)
        sessions = math.ceil(self.spec.warmup_bars / per_session) + 1
        days = math.ceil(sessions * 7 / 5) + 10  # weekends and holidays
        start = now - pd.Timedelta(days=days)
        closes = self.schedule.closes_between(start, now)
        keep = closes[-(self.spec.warmup_bars + 1):]
        return keep[0] if len(keep) > self.spec.warmup_bars else start

    def _read(self, last: pd.Timestamp) -> list[ClosedBar] | None:
        """Every closed bar after ``last`` up to now; waits for the newest one."""
        settle = pd.Timedelta(seconds=self.spec.settle_seconds)
        deadline = self.clock.now() + pd.Timedelta(seconds=self.spec.max_wait)
        while True:
            now = self.clock.now()
            closes = self.schedule.closes_between(last, now - settle)
            frames = self._from_stream(closes)
            if frames is not None:
                self.from_stream += 1
                return self._bars(closes, frames, self.clock.now())
            frames = self._fetch(self.symbols, self.schedule, last, closes[-1])
            newest = closes[-1]
            if any(newest in f.index for f in frames.values()):
                return self._bars(closes, frames, self.clock.now())
            if self.clock.now() >= deadline or self._should_stop():
                break
            self.clock.sleep_until(min(self.clock.now() + pd.Timedelta(seconds=self.spec.poll),
                                       deadline), self.spec.poll, self._should_stop)
        message = (f"no bar for {', '.join(self.symbols)} at {newest.isoformat()} after waiting "
                   f"{self.spec.max_wait:g} s ({self._source or self.conn.spec.feed + ' feed'})")
        if self.spec.daily:
            raise StaleDataError(
                f"stale data: {message}. Trading is halted; check "
                f"{'Alpaca' if self._source is None else 'the broker'}'s data status and the "
                "symbols, then `fw resume` and restart `fw paper`."
            )
        self._on_event("bar_skipped", message + "; minutes without trades have no bar on IEX")
        older = self._bars(closes[:-1], frames, now) if len(closes) > 1 else []
        return older or None

    def _from_stream(self, closes: pd.DatetimeIndex) -> dict[str, pd.DataFrame] | None:
        """The newest minute from the websocket when it alone is due and every symbol has it."""
        if self.stream is None or len(closes) != 1:
            return None
        opened = closes[-1] - pd.Timedelta(minutes=1)
        got = self.stream.bars_between(opened, opened)
        frames = {}
        for symbol in self.symbols:
            frame = got.get(symbol)
            if frame is None or frame.empty:
                return None  # a symbol without a streamed bar: REST decides (gap or late)
            frames[symbol] = frame.set_axis(frame.index + pd.Timedelta(minutes=1)).rename_axis("time")
        return frames

    def _bars(self, closes: pd.DatetimeIndex, frames: dict[str, pd.DataFrame],
              now: pd.Timestamp) -> list[ClosedBar]:
        out = []
        for k, close in enumerate(closes):
            row = {name: np.full(len(self.symbols), np.nan) for name in FIELDS}
            seen = False
            for j, symbol in enumerate(self.symbols):
                frame = frames[symbol]
                if close in frame.index:
                    seen = True
                    for name in FIELDS:
                        row[name][j] = float(frame.at[close, name])
            if not seen:
                continue  # no data at all for this close (as in stored history: no row)
            tradable = k == len(closes) - 1 and now <= self._trade_deadline(close)
            out.append(ClosedBar(time=close, symbols=self.symbols, warmup=not tradable, **row))
        return out

    def _trade_deadline(self, close: pd.Timestamp) -> pd.Timestamp:
        """The latest time a decision at ``close`` may still be sent: the next bar's open
        (plus the settle delay and grace for intraday bars, which open at once)."""
        next_open = self.schedule.bar_open(self.schedule.next_close(close))
        extra = 0.0 if self.spec.daily else self.spec.settle_seconds + self.spec.grace
        return next_open + pd.Timedelta(seconds=extra)


def _minutes(interval: str) -> float:
    return 60.0 if interval == "1Hour" else float(interval.removesuffix("Min"))
