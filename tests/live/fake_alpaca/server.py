"""``FakeAlpaca``: the in-process fake paper account (REST + websockets) and its ``FakeClock``."""

from __future__ import annotations

import threading
import time

import pandas as pd

from framework.errors import ConfigError

from .faults import Faults
from .market import Market
from .options import OptionBook, OptionsSpec
from .rest import RestServer
from .sessions import to_utc
from .ws import StreamServer

KEY = "test-key"
SECRET = "test-secret"


class FakeClock:
    """Market time of the fake. Only this clock moves it; nothing sleeps on market time."""

    def __init__(self, market: Market) -> None:
        self._market = market

    def now(self) -> pd.Timestamp:
        """Current market time (tz-aware UTC)."""
        return pd.Timestamp(self._market.now_ns, tz="UTC")

    def set(self, ts: str | pd.Timestamp) -> None:
        """Jump forward to ``ts``; runs the fill model and pushes bars completed on the way.

        Raises
        ------
        ConfigError
            When ``ts`` is naive or earlier than :meth:`now`.
        """
        self._market.advance_to(to_utc(ts, "ts").value)

    def advance(self, delta: pd.Timedelta | str) -> None:
        """Move forward by ``delta`` (e.g. ``"1min"``, ``pd.Timedelta(days=1)``)."""
        step = pd.Timedelta(delta)
        if step < pd.Timedelta(0):
            raise ConfigError(f"advance({delta!r}) is negative; the fake clock only moves forward")
        self.set(self.now() + step)


class FakeAlpaca:
    """A faithful in-process fake of Alpaca's paper trading and market-data APIs.

    Parameters
    ----------
    bars : dict of str to pandas.DataFrame
        Per symbol: columns open, high, low, close, volume (optional trade_count, vwap), indexed
        by the bar's open time ``t`` as Alpaca reports it (tz-aware). "1Day": midnight New York
        of the session date; "1Min": the minute start.
    timeframe : {"1Day", "1Min"}
        Granularity of the seeded bars.
    start : str or pandas.Timestamp, optional
        Initial market time (tz-aware); defaults to the open of the earliest seeded bar.
    cash : float
        Starting cash.
    key, secret : str
        Credentials the servers accept.
    options : OptionsSpec, optional
        How option contracts on the seeded symbols are listed and priced (``options.py``).

    Use as a context manager: servers bind 127.0.0.1 ephemeral ports in daemon threads.
    """

    def __init__(self, bars: dict[str, pd.DataFrame], timeframe: str = "1Day",
                 start: str | pd.Timestamp | None = None, cash: float = 100_000.0,
                 key: str = KEY, secret: str = SECRET, options: OptionsSpec | None = None) -> None:
        self.faults = Faults()
        self.market = Market(bars, timeframe, start, cash, self.faults)
        self.options = OptionBook(self.market, options)
        self.clock = FakeClock(self.market)
        self.key, self.secret = key, secret
        self.requests: list[dict] = []
        self.errors: list[BaseException] = []
        self.on_request = None
        self.stopping = threading.Event()
        self._requests_lock = threading.Lock()
        self._rest: RestServer | None = None
        self._streams: StreamServer | None = None

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> FakeAlpaca:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the REST and websocket servers."""
        if self._rest is not None:
            raise ConfigError("this FakeAlpaca is already running; create a new one per test")
        self._rest = RestServer(self)
        self._rest.start()
        self._streams = StreamServer(self)
        self._streams.start()

    def stop(self) -> None:
        """Stop both servers (idempotent); hanging requests are released at once."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self._streams is not None:
            self._streams.stop()
        if self._rest is not None:
            self._rest.stop()

    def _running(self, what: str) -> None:
        if self._rest is None or self._streams is None:
            raise ConfigError(f"FakeAlpaca.{what} is only known once started; use 'with fake:'")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` for TradingClient and StockHistoricalDataClient."""
        self._running("url")
        return self._rest.url

    @property
    def trading_stream_url(self) -> str:
        """``ws://127.0.0.1:PORT/stream`` for TradingStream(url_override=...)."""
        self._running("trading_stream_url")
        return f"ws://127.0.0.1:{self._streams.port}/stream"

    @property
    def data_stream_url(self) -> str:
        """``ws://127.0.0.1:PORT/v2/iex`` for StockDataStream(url_override=...)."""
        self._running("data_stream_url")
        return f"ws://127.0.0.1:{self._streams.port}/v2/iex"

    def stream_counts(self) -> dict[str, int]:
        """Stream clients: ``trading`` (listening now), ``data`` (subscribed now), and
        ``trading_sessions``/``data_sessions`` (authenticated connections ever, to see reconnects).

        Tests poll this to know a client finished its handshake before moving the clock.
        """
        self._running("stream_counts")
        return self._streams.counts()

    def close_streams(self) -> None:
        """Close every websocket connection now (clients may reconnect)."""
        self._running("close_streams")
        self._streams.close_all()

    # ---------------------------------------------------------- inspection
    def record(self, method: str, path: str, query: dict, status: int | None) -> None:
        """Append one REST request to :attr:`requests` (status None: connection dropped)."""
        entry = {"method": method, "path": path, "query": dict(query), "status": status,
                 "time": time.time(), "market_time": self.clock.now()}
        with self._requests_lock:
            self.requests.append(entry)

    def orders(self) -> list[dict]:
        """Every order in wire format, oldest first."""
        return self.market.orders()

    def positions(self) -> dict[str, float]:
        """{symbol: signed qty} of open positions."""
        return self.market.position_qty()

    def fills(self) -> list[dict]:
        """Fills {id, order_id, client_order_id, symbol, qty (signed), price, time}."""
        return self.market.fills()

    @property
    def cash(self) -> float:
        """Account cash."""
        with self.market.lock:
            return self.market.cash
