"""Alpaca websocket streams for the live runner: minute bars and trade updates.

Both classes run one of alpaca-py's real stream clients (``StockDataStream``,
``TradingStream``) in a daemon thread of their own, because the SDK's ``run()`` calls
``asyncio.run`` and so cannot share the runner's thread or an existing event loop.

Facts this module is built around (``../shared/notes/alpaca.md`` sections 1.4 and 5):

* Alpaca allows **one connection per stream endpoint per account**; a second one is refused
  with ``406 connection limit exceeded`` (the SDK only logs that and keeps reconnecting). The
  runner must therefore create ONE :class:`BarStream` and ONE :class:`TradeUpdates` per process
  and account and share them between strategies, never one per strategy;
* a data socket can stay connected yet deliver nothing; the SDK reconnects such a socket only
  when ``data_timeout`` is set (it is off by default), so :class:`BarStream` always sets it;
* the SDK reconnects with exponential backoff and resubscribes on its own; we count the
  sessions to make reconnects visible;
* no bar is sent for a minute without trades (common on IEX), and bars missed while
  reconnecting are not replayed: the REST bars endpoint (:func:`live.alpaca_feed.fetch_bars`)
  stays the way to fill gaps;
* an ``updatedBars`` message recalculates an earlier minute (late trades): it replaces that bar.

The connection bookkeeping hooks into two private coroutines of alpaca-py 0.44
(``_send_subscribe_msg`` of the data stream, ``_start_ws`` of the trading stream) and sets the
private reconnect backoff attributes; everything else uses the SDK's public API.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import functools
import logging
import math
import threading
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from framework.errors import BrokerError, ConfigError

_LOG = logging.getLogger(__name__)

COLUMNS = ("open", "high", "low", "close", "volume")
_WIRE_KEYS = ("o", "h", "l", "c", "v")
SESSION_MINUTES = 390
MAX_ERRORS = 100  # newest errors kept; older ones were logged already
LIVE_HOST = "api.alpaca.markets"
FILL_EVENTS = ("fill", "partial_fill")
# lifecycle rank: orders events of one instant in the order they happen to an order
_RANK = {"pending_new": 0, "accepted": 0, "new": 0, "partial_fill": 1, "fill": 2}
_LAST_RANK = 3


# ------------------------------------------------------------------------------ the SDK
def _sdk_streams():
    """alpaca-py's stream classes, imported lazily (the ``live`` extra) with a clear error."""
    try:
        with warnings.catch_warnings():
            # both modules import websockets.legacy, deprecated since websockets 14
            warnings.filterwarnings("ignore", message="websockets.legacy is deprecated",
                                    category=DeprecationWarning)
            from alpaca.data.enums import DataFeed
            from alpaca.data.live import StockDataStream
            from alpaca.trading.stream import TradingStream
    except ImportError as exc:
        raise ConfigError(
            "alpaca streams need alpaca-py; install it with `pip install 'fw[live]'`."
        ) from exc
    return StockDataStream, TradingStream, DataFeed


@functools.cache
def _stream_classes():
    """SDK stream subclasses that report (re)connections to a :class:`_Worker`."""
    stock_class, trading_class, data_feed = _sdk_streams()

    class _DataStream(stock_class):
        fw_worker: _Worker | None = None

        async def _send_subscribe_msg(self) -> None:
            # runs after every (re)connect + auth: the session is usable from here on
            await super()._send_subscribe_msg()
            if self.fw_worker is not None:
                self.fw_worker.opened()

        async def close(self) -> None:
            if self.fw_worker is not None:
                self.fw_worker.closed()
            await super().close()

    class _TradingStream(trading_class):
        fw_worker: _Worker | None = None

        async def _start_ws(self) -> None:
            await super()._start_ws()  # connect, authenticate, send "listen"
            if self.fw_worker is not None:
                self.fw_worker.opened()

        async def close(self) -> None:
            if self.fw_worker is not None:
                self.fw_worker.closed()
            await super().close()

    return _DataStream, _TradingStream, data_feed


def _check_backoff(backoff: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in backoff)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"reconnect_backoff={backoff!r}; expected (min, max) seconds.") from exc
    if not (math.isfinite(high) and 0 < low <= high):
        raise ConfigError(f"reconnect_backoff={backoff!r}; expected 0 < min <= max seconds, "
                          "e.g. (1.0, 30.0) (the SDK's default).")
    return low, high


# ---------------------------------------------------------------------------- the thread
class _Worker:
    """One SDK stream in its own daemon thread: start, prompt stop, sessions and errors."""

    def __init__(self, name: str, stream: Any, backoff: tuple[float, float]) -> None:
        self.name, self.stream = name, stream
        # the SDK has no constructor parameter for its reconnect backoff
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = backoff
        stream.fw_worker = self
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.connected = False
        self.sessions = 0
        self.errors: list[BaseException] = []

    # -- bookkeeping, called from the stream's loop thread --------------------------------
    def opened(self) -> None:
        with self._lock:
            if self.connected:
                return
            self.connected = True
            self.sessions += 1
            sessions = self.sessions
        _LOG.info("alpaca %s stream connected (session %d)", self.name, sessions)

    def closed(self) -> None:
        with self._lock:
            self.connected = False

    def record(self, exc: BaseException, context: str) -> None:
        """Log ``exc`` with its traceback and keep it (the newest :data:`MAX_ERRORS`)."""
        _LOG.error("alpaca %s stream: %s: %s", self.name, context, exc, exc_info=exc)
        with self._lock:
            self.errors.append(exc)
            del self.errors[:-MAX_ERRORS]

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise ConfigError(f"this alpaca {self.name} stream was already started; a stream "
                              "runs once: create a new one after stop().")
        self._thread = threading.Thread(target=self._run, name=f"alpaca-{self.name}-stream",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._stopping.is_set():
            return  # stopped before the thread got going
        try:
            self.stream.run()
        except Exception as exc:  # the thread's end: keep it where the runner can see it
            self.record(exc, "stream thread failed")
            return
        if not self._stopping.is_set():
            # the SDK gives up for good on "insufficient subscription" (409)
            self.record(BrokerError(
                f"the alpaca {self.name} stream ended on its own (see the log above, e.g. "
                "'insufficient subscription'); check the account's market-data plan and feed, "
                "then restart the runner."), "stream ended")

    def stop(self, timeout: float) -> bool:
        """Stop the stream and close its socket; True when the thread ended within ``timeout``."""
        self._stopping.set()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        deadline = time.monotonic() + max(0.0, float(timeout))
        loop = self._wait_for_loop(thread, deadline)
        if loop is not None:
            self._halt_on(loop, deadline)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            _LOG.warning("alpaca %s stream did not stop within %g s; its daemon thread is left "
                         "to end with the process", self.name, timeout)
            return False
        return True

    def _wait_for_loop(self, thread: threading.Thread, deadline: float):
        """The stream's event loop once ``run()`` set it (None: the thread ended first)."""
        while thread.is_alive() and time.monotonic() < deadline:
            loop = self.stream._loop
            if loop is not None and loop.is_running():
                return loop
            time.sleep(0.005)
        return None

    def _halt_on(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        async def halt() -> None:
            await self.stream.stop_ws()
            # the SDK notices the stop request only between receives (up to 5 s apart):
            # closing the socket ends the pending receive at once
            await self.stream.close()

        try:
            future = asyncio.run_coroutine_threadsafe(halt(), loop)
        except RuntimeError:  # the loop closed meanwhile: the thread is ending anyway
            return
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            _LOG.warning("alpaca %s stream: closing the socket timed out", self.name)
        except Exception as exc:  # a close error must not keep stop() from returning
            self.record(exc, "stop failed")


# --------------------------------------------------------------------------------- bars
def _utc_ns(value: Any) -> int:
    """Nanoseconds since the epoch (UTC) of a stream or user timestamp."""
    to_nano = getattr(value, "to_unix_nano", None)  # msgpack.Timestamp (raw stream data)
    if to_nano is not None:
        return int(to_nano())
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ConfigError(f"timestamp {value!r} has no time zone; expected a tz-aware UTC time "
                          "such as pd.Timestamp('2024-07-01 13:30', tz='UTC').")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


class BarBuffer:
    """Thread-safe minute bars keyed by (symbol, bar open time), at most ``max_minutes`` minutes.

    A bar put again for the same key (an updated bar) replaces the earlier one. When more than
    ``max_minutes`` distinct open times are held, the oldest minutes are dropped.
    """

    def __init__(self, max_minutes: int = 2 * SESSION_MINUTES) -> None:
        if int(max_minutes) != max_minutes or max_minutes < 1:
            raise ConfigError(f"max_minutes={max_minutes!r}; expected a whole number of "
                              f"minutes >= 1 (default {2 * SESSION_MINUTES}, two sessions).")
        self.max_minutes = int(max_minutes)
        self._lock = threading.Lock()
        self._minutes: dict[int, dict[str, tuple[float, ...]]] = {}

    def put(self, symbol: str, open_ns: int, values: Sequence[float]) -> None:
        """Store one bar (open, high, low, close, volume); replaces the same (symbol, minute)."""
        row = tuple(float(v) for v in values)
        if len(row) != len(COLUMNS):
            raise ConfigError(f"bar of {symbol} has {len(row)} values; expected {COLUMNS}.")
        with self._lock:
            self._minutes.setdefault(int(open_ns), {})[symbol] = row
            excess = len(self._minutes) - self.max_minutes
            if excess > 0:
                for key in sorted(self._minutes)[:excess]:
                    del self._minutes[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._minutes)

    def between(self, symbols: Iterable[str], start_ns: int, end_ns: int) -> dict[str, pd.DataFrame]:
        """Per symbol, the bars whose open time lies in ``[start_ns, end_ns]``, oldest first."""
        with self._lock:
            keys = sorted(k for k in self._minutes if start_ns <= k <= end_ns)
            rows = {k: dict(self._minutes[k]) for k in keys}
        return {symbol: _bar_frame([(k, rows[k][symbol]) for k in keys if symbol in rows[k]])
                for symbol in symbols}


def _bar_frame(rows: list[tuple[int, tuple[float, ...]]]) -> pd.DataFrame:
    index = pd.DatetimeIndex(np.array([k for k, _ in rows], dtype="datetime64[ns]"),
                             name="open_time").tz_localize("UTC")
    values = np.array([v for _, v in rows], dtype=np.float64).reshape(len(rows), len(COLUMNS))
    return pd.DataFrame(values, index=index, columns=list(COLUMNS))


class BarStream:
    """Live minute bars (and their updates) of ``symbols`` from Alpaca's market-data stream.

    Only one data connection per account is allowed (a second gets 406): the runner must share
    ONE ``BarStream`` per process for all its symbols. Bars missed while reconnecting, and
    minutes without trades, are absent here; backfill them from REST
    (:func:`live.alpaca_feed.fetch_bars`), which remains complete.

    Parameters
    ----------
    symbols : sequence of str
        Symbols subscribed to ``bars`` and ``updatedBars``.
    key, secret : str
        API key id and secret.
    url : str, optional
        Stream URL instead of Alpaca's ``wss://stream.data.alpaca.markets/v2/{feed}``.
    feed : {"iex", "sip"}
        Market-data feed (the free plan has IEX only).
    data_timeout : float
        Seconds without market data after which the SDK drops a mute socket and reconnects.
        Keep it well above the bar interval (a quiet minute sends nothing).
    max_minutes : int
        Distinct bar minutes kept in the buffer (default two regular sessions).
    reconnect_backoff : (float, float)
        The SDK's reconnect backoff bounds in seconds (tests shorten them).
    """

    def __init__(self, symbols: Sequence[str], key: str, secret: str, url: str | None = None,
                 feed: str = "iex", data_timeout: float = 60.0, *,
                 max_minutes: int = 2 * SESSION_MINUTES,
                 reconnect_backoff: tuple[float, float] = (1.0, 30.0)) -> None:
        self.symbols = _check_symbols(symbols)
        if feed not in ("iex", "sip"):
            raise ConfigError(f"alpaca stream feed {feed!r}; expected 'iex' (free plan) or 'sip'.")
        if not (isinstance(data_timeout, int | float) and math.isfinite(data_timeout)
                and data_timeout > 0):
            raise ConfigError(f"data_timeout={data_timeout!r}; expected seconds > 0 (e.g. 60): "
                              "without it a mute data socket is never reconnected.")
        self.buffer = BarBuffer(max_minutes)
        data_class, _, data_feed = _stream_classes()
        stream = data_class(key, secret, raw_data=True, feed=data_feed(feed), url_override=url,
                            data_timeout=float(data_timeout))
        self._worker = _Worker("data", stream, _check_backoff(reconnect_backoff))
        self._last_message: float | None = None
        self.received = 0  # bars and updated bars stored
        self.updates = 0  # updated bars among them
        stream.subscribe_bars(self._on_bar, *self.symbols)
        stream.subscribe_updated_bars(self._on_updated_bar, *self.symbols)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in a background thread (returns at once; see :attr:`connected`)."""
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop and close the stream; safe before :meth:`start` or a connection.

        Returns
        -------
        bool
            True when the stream's thread ended within ``timeout`` seconds.
        """
        return self._worker.stop(timeout)

    @property
    def connected(self) -> bool:
        """True while a session is connected and subscribed."""
        return self._worker.connected

    @property
    def running(self) -> bool:
        """True while the stream's thread runs (it ends on stop() or a fatal SDK error)."""
        return self._worker.alive

    @property
    def sessions(self) -> int:
        """Subscribed sessions so far (the first connection included)."""
        return self._worker.sessions

    @property
    def reconnects(self) -> int:
        """Sessions after the first one."""
        return max(0, self._worker.sessions - 1)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions of the handlers and the stream thread (each was logged too)."""
        with self._worker._lock:
            return list(self._worker.errors)

    # -- reading -------------------------------------------------------------------------------
    def bars_between(self, start_open: pd.Timestamp,
                     end_open: pd.Timestamp) -> dict[str, pd.DataFrame]:
        """Bars of every subscribed symbol whose OPEN time lies in ``[start_open, end_open]``.

        Returns
        -------
        dict of str to pandas.DataFrame
            Columns open, high, low, close, volume (float64), indexed by the bar open time
            (UTC), oldest first; an empty frame for a symbol without bars in the range.
        """
        return self.buffer.between(self.symbols, _utc_ns(start_open), _utc_ns(end_open))

    def last_message_age(self, now_monotonic: float | None = None) -> float | None:
        """Seconds since the last bar message (``time.monotonic`` clock); None before any."""
        last = self._last_message
        if last is None:
            return None
        now = time.monotonic() if now_monotonic is None else now_monotonic
        return max(0.0, now - last)

    # -- handlers (the stream's loop thread) ------------------------------------------------
    async def _on_bar(self, message: Mapping[str, Any]) -> None:
        self._store(message, updated=False)

    async def _on_updated_bar(self, message: Mapping[str, Any]) -> None:
        self._store(message, updated=True)

    def _store(self, message: Mapping[str, Any], updated: bool) -> None:
        self._last_message = time.monotonic()
        try:
            values = [message[k] for k in _WIRE_KEYS]
            self.buffer.put(str(message["S"]), _utc_ns(message["t"]), values)
        except Exception as exc:  # one bad message must not end the stream; it is kept
            self._worker.record(exc, f"bad {'updated ' if updated else ''}bar {message!r}")
            return
        self.received += 1
        self.updates += int(updated)


def _check_symbols(symbols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(symbols, str):
        symbols = [symbols]
    chosen = tuple(dict.fromkeys(symbols))
    if not chosen or not all(isinstance(s, str) and s and s != "*" for s in chosen):
        raise ConfigError(f"symbols={symbols!r}; expected one or more ticker symbols such as "
                          "['SPY'] (the '*' wildcard is not supported).")
    return chosen


# ------------------------------------------------------------------------ trade updates
def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def order_event(data: Mapping[str, Any]) -> dict[str, Any]:
    """One ``trade_updates`` payload (the message's ``data``) as a flat record.

    Keys: event, execution_id, order_id, client_order_id, symbol, side, status, time (UTC
    ``pd.Timestamp``), qty (signed by the side; None for events without a quantity), price,
    position_qty, filled_qty (the order's cumulative fill after this event, unsigned).
    """
    order = data["order"]
    side = str(order.get("side") or "")
    qty = _float_or_none(data.get("qty"))
    if qty is not None and side == "sell":
        qty = -qty
    return {
        "event": str(data["event"]), "execution_id": _text(data.get("execution_id")),
        "order_id": str(order["id"]), "client_order_id": str(order["client_order_id"]),
        "symbol": str(order.get("symbol") or ""), "side": side,
        "status": str(order.get("status") or ""),
        "time": pd.Timestamp(data["timestamp"]).tz_convert("UTC"),
        "qty": qty, "price": _float_or_none(data.get("price")),
        "position_qty": _float_or_none(data.get("position_qty")),
        "filled_qty": _float_or_none(order.get("filled_qty")) or 0.0,
    }


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


class OrderEventLog:
    """Order events de-duplicated and kept in event order, whatever order they arrive in.

    The identity of an event is its ``execution_id`` (or, when it has none, the order id, event
    and time). Events are ordered by (time, lifecycle rank, cumulative filled quantity, arrival),
    so that a partial fill comes before the fill that completes the order even when both carry
    the same time or arrive swapped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[Any] = set()
        self._keys: list[tuple] = []
        self._events: list[dict[str, Any]] = []
        self._arrivals = 0

    @staticmethod
    def identity(record: Mapping[str, Any]) -> Any:
        execution = record.get("execution_id")
        if execution:
            return execution
        return (record["order_id"], record["event"], record["time"])

    def add(self, record: Mapping[str, Any]) -> bool:
        """Insert ``record`` (see :func:`order_event`); False when it is a duplicate."""
        identity = self.identity(record)
        with self._lock:
            if identity in self._seen:
                return False
            self._seen.add(identity)
            self._arrivals += 1
            key = (pd.Timestamp(record["time"]).value,
                   _RANK.get(record["event"], _LAST_RANK),
                   float(record.get("filled_qty") or 0.0), self._arrivals)
            position = bisect.bisect_right(self._keys, key)
            self._keys.insert(position, key)
            self._events.insert(position, dict(record))
            return True

    def events(self) -> list[dict[str, Any]]:
        """Every distinct order event, in event order (copies)."""
        with self._lock:
            return [dict(e) for e in self._events]

    def fills(self) -> list[dict[str, Any]]:
        """fill and partial_fill events: execution_id, order_id, client_order_id, symbol, qty
        (signed), price, time, event; in event order."""
        keys = ("execution_id", "order_id", "client_order_id", "symbol", "qty", "price", "time",
                "event")
        with self._lock:
            return [{k: e[k] for k in keys} for e in self._events if e["event"] in FILL_EVENTS]


class TradeUpdates:
    """The account's order events (``trade_updates``) as they happen, for promptness.

    The REST activities endpoint (``AlpacaBroker.fills``) stays the source of truth for fills:
    an event missed while the socket reconnects is not replayed, and the stream's
    ``execution_id`` need not equal the activity id. Use :attr:`changed` to wake up instead of
    polling, then reconcile with REST.

    Only one trade_updates connection per account is allowed: share ONE ``TradeUpdates`` per
    process.

    Parameters
    ----------
    key, secret : str
        API key id and secret.
    url : str, optional
        Stream URL instead of Alpaca's paper ``wss://paper-api.alpaca.markets/stream``; the
        live-trading host is refused.
    reconnect_backoff : (float, float)
        The SDK's reconnect backoff bounds in seconds.

    Attributes
    ----------
    changed : threading.Event
        Set on every new (non-duplicate) order event. Clear it *before* reading
        :meth:`fills`/:meth:`events` (or use :meth:`wait`) so that no event is missed.
    """

    def __init__(self, key: str, secret: str, url: str | None = None, *,
                 reconnect_backoff: tuple[float, float] = (1.0, 30.0)) -> None:
        if url is not None and url.split("://", 1)[-1].split("/", 1)[0] == LIVE_HOST:
            raise ConfigError(f"trade updates url {url!r} is Alpaca's LIVE trading host; fw "
                              "trades paper accounts only: leave url unset (paper).")
        _, trading_class, _ = _stream_classes()
        stream = trading_class(key, secret, paper=True, raw_data=True, url_override=url)
        self._worker = _Worker("trading", stream, _check_backoff(reconnect_backoff))
        self.log = OrderEventLog()
        self.changed = threading.Event()
        stream.subscribe_trade_updates(self._on_update)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in a background thread (returns at once; see :attr:`connected`)."""
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop and close the stream; True when its thread ended within ``timeout`` seconds."""
        return self._worker.stop(timeout)

    @property
    def connected(self) -> bool:
        """True while a session is authenticated and listening."""
        return self._worker.connected

    @property
    def running(self) -> bool:
        return self._worker.alive

    @property
    def sessions(self) -> int:
        return self._worker.sessions

    @property
    def reconnects(self) -> int:
        """Sessions after the first one."""
        return max(0, self._worker.sessions - 1)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions of the handler and the stream thread (each was logged too)."""
        with self._worker._lock:
            return list(self._worker.errors)

    # -- reading -------------------------------------------------------------------------------
    def fills(self) -> list[dict[str, Any]]:
        """Distinct fill/partial_fill events in event order (see :meth:`OrderEventLog.fills`)."""
        return self.log.fills()

    def events(self) -> list[dict[str, Any]]:
        """Every distinct order event in event order (see :func:`order_event`)."""
        return self.log.events()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until an order event arrived (or ``timeout``), then clear :attr:`changed`."""
        fired = self.changed.wait(timeout)
        self.changed.clear()
        return fired

    # -- handler (the stream's loop thread) ------------------------------------------------
    async def _on_update(self, message: Mapping[str, Any]) -> None:
        try:
            record = order_event(message["data"])
        except Exception as exc:  # one bad message must not end the stream; it is kept
            self._worker.record(exc, f"bad trade update {message!r}")
            return
        if self.log.add(record):
            self.changed.set()
