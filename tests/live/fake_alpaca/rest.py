"""The fake's REST server: a ThreadingHTTPServer serving both trading and data paths.

Cross-cutting behaviour lives here: auth headers, the X-RateLimit-* headers and the sliding
60 s window, and the REST faults (latency, hangs, 429 storms, injected statuses). Hangs and latency
wait on wall-clock time in the request's own thread, so other requests keep being served.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import sys
import threading
import time
import traceback
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from . import data, options, trading
from .orders import ApiReject
from .trading import Call, DropConnection, injected_body

if TYPE_CHECKING:
    from .server import FakeAlpaca

# options first: its handlers answer option requests and hand stock requests on unchanged
ROUTES = options.ROUTES + trading.ROUTES + data.ROUTES
WINDOW_SECONDS = 60.0


class RateWindow:
    """Sliding 60 s wall-clock window of admitted requests (one per API family)."""

    def __init__(self) -> None:
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def admit(self, limit: int, count: bool) -> tuple[bool, int, int]:
        """(admitted, remaining, reset unix seconds); ``count`` records an admitted request."""
        now = time.time()
        with self._lock:
            while self._stamps and self._stamps[0] <= now - WINDOW_SECONDS:
                self._stamps.popleft()
            reset = math.ceil((self._stamps[0] if self._stamps else now) + WINDOW_SECONDS)
            if limit <= 0:
                return True, 0, reset
            if count and len(self._stamps) >= limit:
                return False, 0, reset
            if count:
                self._stamps.append(now)
            return True, max(0, limit - len(self._stamps)), reset


class RestServer(ThreadingHTTPServer):
    """HTTP server bound to 127.0.0.1 on an ephemeral port; ``app`` is the FakeAlpaca."""

    daemon_threads = True

    def __init__(self, app: FakeAlpaca) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app
        self.windows = {"trading": RateWindow(), "data": RateWindow()}
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="fake-alpaca-rest",
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """Base URL for ``url_override``."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections so no client talks to a dead fake."""
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            # OSError here means the peer already closed it: nothing left to cut.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)

    def track(self, connection: socket.socket, alive: bool) -> None:
        """Remember live client connections (see :meth:`stop`)."""
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-alpaca/1"
    server: RestServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus delayed ACK
        # adds ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, alive=False)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: every request is recorded in ``FakeAlpaca.requests`` instead."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        app = self.server.app
        family = "data" if split.path.startswith(("/v2/stocks", "/v1beta1")) else "trading"
        try:
            status, body = self._answer(app, split.path, query, raw, family)
        except DropConnection:
            app.record(self.command, split.path, query, None)
            self.close_connection = True
            return
        payload = self._encode(app, body)
        if payload is None:
            status, payload = 500, b'{"code":50010000,"message":"fake could not encode its reply"}'
        app.record(self.command, split.path, query, status)
        limit = app.faults.rate_limit_per_min
        _, remaining, reset = self.server.windows[family].admit(limit, count=False)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        if status == 429:  # how long to back off (Alpaca's exact hint is not documented)
            self.send_header("Retry-After", "1")
        if limit:  # 0: limiting switched off, so no quota to report
            self.send_header("X-RateLimit-Limit", str(limit))
            self.send_header("X-RateLimit-Remaining", str(remaining))
            self.send_header("X-RateLimit-Reset", str(reset))
        try:
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its timeout beat an injected hang); the request is
            # already in app.requests, so there is nothing left to report.
            self.close_connection = True

    @staticmethod
    def _encode(app: FakeAlpaca, body: object) -> bytes | None:
        if body is None:
            return b""
        try:
            return json.dumps(body).encode()
        except TypeError as exc:  # a bug in the fake: answer 500 and keep the error for tests
            traceback.print_exc(file=sys.stderr)
            app.errors.append(exc)
            return None

    def _answer(self, app: FakeAlpaca, path: str, query: dict, raw: bytes,
                family: str) -> tuple[int, object]:
        try:
            if app.on_request is not None:
                app.on_request(self.command, path, query)
            self._wait(app, app.faults.latency)
            self._wait(app, app.faults.take_hang())
            return self._checked(app, path, query, raw, family)
        except ApiReject as reject:
            return reject.status, reject.body()
        except DropConnection:
            raise
        except Exception as exc:  # a bug in the fake or in a test hook: answer 500, keep it
            traceback.print_exc(file=sys.stderr)
            app.errors.append(exc)
            return 500, {"code": 50010000, "message": f"fake server error: {exc!r}"}

    @staticmethod
    def _wait(app: FakeAlpaca, seconds: float) -> None:
        if seconds and seconds > 0:
            app.stopping.wait(seconds)

    def _checked(self, app: FakeAlpaca, path: str, query: dict, raw: bytes,
                 family: str) -> tuple[int, object]:
        if (self.headers.get("APCA-API-KEY-ID") != app.key
                or self.headers.get("APCA-API-SECRET-KEY") != app.secret):
            return 401, {"code": 40110000, "message": "request is not authorized"}
        if app.faults.take_storm():
            return 429, injected_body(429)
        admitted, _, _ = self.server.windows[family].admit(app.faults.rate_limit_per_min,
                                                            count=True)
        if not admitted:
            return 429, injected_body(429)
        injected = app.faults.take_fail(path)
        if injected is not None:
            return injected, injected_body(injected)
        handler, match = _route(self.command, path)
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                return 400, {"code": 40010000, "message": "request body format is invalid"}
        return handler(app.market, Call(self.command, path, query, body, match))


def _route(method: str, path: str):
    """(handler, match) for ``method path``; 404 for unknown paths, 405 for wrong methods."""
    known_path = False
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match:
            known_path = True
            if route_method == method:
                return handler, match
    if known_path:
        raise ApiReject(405, 40510000, f"method {method} not allowed on {path}")
    raise ApiReject(404, 40410000, f"endpoint not found: {method} {path}")
