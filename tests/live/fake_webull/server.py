"""``FakeWebull``: a TLS server on 127.0.0.1 that the real SDK reaches through ``add_endpoint``.

The SDK always speaks HTTPS to an endpoint given as ``host:port`` and signs ``host:port``;
the server therefore serves TLS with the self-signed test certificate next to this file
(``cert.pem``, also the CA bundle clients pass as ``verify``). Cross-cutting behaviour lives
here: signature and token checks, a sliding 60 s request window (429 ``TOO_MANY_REQUESTS``),
the REST faults (latency, hangs, 429 storms, injected statuses, accept-then-fail), the ``Date``
header carrying the fake's market time (Webull has no clock endpoint; fw reads ``Date``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from framework.errors import ConfigError
from tests.live.fake_alpaca.faults import Faults
from tests.live.fake_alpaca.market import Market
from tests.live.fake_alpaca.rest import RateWindow
from tests.live.fake_alpaca.server import FakeClock
from tests.live.fake_alpaca.trading import DropConnection

from .api import Call, WebullApi
from .auth import APP_KEY, APP_SECRET, Refused, TokenBook, Verifier

HERE = Path(__file__).resolve().parent
CA_FILE = str(HERE / "cert.pem")
KEY_FILE = str(HERE / "key.pem")


@dataclass
class WebullFaults(Faults):
    """The fake Alpaca's switches (same meaning; ``fail_paths`` matches Webull paths, e.g.
    ``/trading/orders``; ``disappear`` holds Webull client order ids) plus the token flow:
    ``token_check_enabled`` (the ``/openapi/config`` answer)."""

    token_check_enabled: bool = True


class FakeWebull:
    """A faithful-enough in-process fake of Webull's OpenAPI for one test account.

    Parameters
    ----------
    bars : dict of str to pandas.DataFrame
        Per symbol, OHLCV indexed by bar open time as in :class:`~tests.live.fake_alpaca.FakeAlpaca`
        (daily bars at midnight New York of the session).
    timeframe : {"1Day", "1Min"}
    start : str or pandas.Timestamp, optional
        Initial market time.
    cash : float
    key, secret : str
        The app key and secret requests must be signed with.
    page_size : int
        Orders per page of the order lists.

    Use as a context manager; ``fake.endpoint`` is ``127.0.0.1:PORT`` and ``CA_FILE`` the
    certificate to trust. ``fake.clock`` moves market time (fills happen on the way).
    """

    def __init__(self, bars: dict[str, pd.DataFrame], timeframe: str = "1Day",
                 start: str | pd.Timestamp | None = None, cash: float = 100_000.0,
                 key: str = APP_KEY, secret: str = APP_SECRET, page_size: int = 10) -> None:
        self.faults = WebullFaults()
        self.market = Market(bars, timeframe, start, cash, self.faults)
        self.clock = FakeClock(self.market)
        self.tokens = TokenBook()
        self.verifier = Verifier(key, secret)
        self.api = WebullApi(self.market, self.tokens, self.faults, page_size)
        self.requests: list[dict] = []
        self.errors: list[BaseException] = []
        self.on_request = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server: _TlsServer | None = None

    def __enter__(self) -> FakeWebull:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._server is not None:
            raise ConfigError("this FakeWebull is already running; create a new one per test")
        self._server = _TlsServer(self)
        self._server.start()

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self._server is not None:
            self._server.stop()

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT`` for ``ApiClient.add_endpoint`` (the SDK adds https://)."""
        if self._server is None:
            raise ConfigError("FakeWebull.endpoint is only known once started; use 'with fake:'")
        return f"127.0.0.1:{self._server.server_address[1]}"

    def record(self, method: str, path: str, query: dict, status: int | None) -> None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "query": dict(query),
                                  "status": status, "market_time": self.clock.now()})

    def orders(self) -> list[dict]:
        """Every order in the fake Alpaca's wire format (``client_order_id`` = Webull id)."""
        return self.market.orders()

    def positions(self) -> dict[str, float]:
        return self.market.position_qty()

    def fills(self) -> list[dict]:
        return self.market.fills()

    @property
    def cash(self) -> float:
        with self.market.lock:
            return self.market.cash


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: FakeWebull) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(CA_FILE, KEY_FILE)
        # the handshake runs in the request's thread, so a stuck client blocks nobody else
        self.socket = context.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)
        self.app = app
        self.window = RateWindow()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="fake-webull",
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            live = list(self._connections)
        for connection in live:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def track(self, connection: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(connection)

    def handle_error(self, request, client_address) -> None:
        """A client that gave up mid-handshake or mid-reply is not a fake bug: stay quiet."""
        kind = sys.exc_info()[0]
        if kind is not None and issubclass(kind, (ssl.SSLError, ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-webull/1"
    server: _TlsServer

    def setup(self) -> None:
        # headers and body go out in two writes: without TCP_NODELAY, Nagle plus delayed ACK
        # costs ~40 ms per request
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.do_handshake()
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: requests are recorded in ``FakeWebull.requests``."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header: the fake's market time (what fw's clock check reads)."""
        return formatdate(self.server.app.clock.now().timestamp(), usegmt=True)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        app = self.server.app
        try:
            status, body = self._answer(app, split.path, query, raw)
        except DropConnection:
            app.record(self.command, split.path, query, None)
            self.close_connection = True
            return
        payload = json.dumps(body).encode()
        app.record(self.command, split.path, query, status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-Id", f"fake-{time.monotonic_ns()}")
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True  # the client timed out first

    def _answer(self, app: FakeWebull, path: str, query: dict, raw: bytes) -> tuple[int, object]:
        try:
            if app.on_request is not None:
                app.on_request(self.command, path, query)
            for seconds in (app.faults.latency, app.faults.take_hang()):
                if seconds and seconds > 0:
                    app.stopping.wait(seconds)
            return self._checked(app, path, query, raw)
        except Refused as refused:
            return refused.status, refused.body()
        except DropConnection:
            raise
        except Exception as exc:  # a bug in the fake or a test hook: answer 500, keep it
            traceback.print_exc(file=sys.stderr)
            app.errors.append(exc)
            return 500, {"error_code": "INTERNAL_ERROR", "message": f"fake error: {exc!r}"}

    def _checked(self, app: FakeWebull, path: str, query: dict, raw: bytes) -> tuple[int, object]:
        headers = {k.lower(): v for k, v in self.headers.items()}
        app.verifier.check(path, query, headers, raw)
        if app.faults.take_storm():
            raise Refused(429, "TOO_MANY_REQUESTS", "Too many requests, please try again later.")
        admitted, _, _ = self.server.window.admit(app.faults.rate_limit_per_min, count=True)
        if not admitted:
            raise Refused(429, "TOO_MANY_REQUESTS", "Too many requests, please try again later.")
        injected = app.faults.take_fail(path)
        if injected is not None:
            return injected, {"error_code": "SYSTEM_ERROR",
                              "message": f"injected HTTP {injected} (fake fault)"}
        if app.api.needs_token(path) and not app.tokens.valid(headers.get("x-access-token")):
            raise Refused(401, "INVALID_TOKEN", "Header x-access-token is missing or invalid.")
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise Refused(400, "ILLEGAL_PARAMETER", "body is not JSON") from None
        return app.api.handle(Call(self.command, path, query, body))
