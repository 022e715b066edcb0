"""The fake's websocket server: ``/stream`` (JSON trade_updates) and ``/v2/{iex,sip}`` (msgpack).

It runs a ``websockets`` asyncio server on its own loop in a daemon thread. The market calls the
listeners below from any thread, under its lock; they only hop onto the loop with
``call_soon_threadsafe``, so events keep their order. Each connection has a queue drained by one
sender task, which keeps frames in order and lets a "close after this frame" sentinel follow data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING

import msgpack
import pandas as pd
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from framework.errors import BrokerError

if TYPE_CHECKING:
    from .server import FakeAlpaca

DATA_PATHS = ("/v2/iex", "/v2/sip")
CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds",
            "corrections", "cancelErrors")
_CLOSE = object()  # queue sentinel: close the socket once everything before it was sent
WATCH_SECONDS = 0.02


@dataclass(eq=False)
class _Peer:
    """One client connection and its outgoing queue."""

    socket: ServerConnection
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    listening: bool = False
    subscriptions: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})
    last_bar: dict[str, dict] = field(default_factory=dict)

    def wants(self, channel: str, symbol: str) -> bool:
        """Whether the peer subscribed ``symbol`` (or ``*``) on ``channel``."""
        chosen = self.subscriptions[channel]
        return symbol in chosen or "*" in chosen


class StreamServer:
    """Both websocket endpoints on one ephemeral port; start/stop from any thread."""

    def __init__(self, app: FakeAlpaca) -> None:
        self.app = app
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fake-alpaca-ws", daemon=True)
        self._ready = threading.Event()
        self._server = None
        self._startup_error: BaseException | None = None
        self.trading: set[_Peer] = set()
        self.data: set[_Peer] = set()
        self._held: bytes | None = None
        self._sessions = {"trading": 0, "data": 0}
        self._bars_since_drop_knob = 0

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the loop thread, wait until the port is bound, and attach market listeners."""
        self._thread.start()
        if not self._ready.wait(10) or self._startup_error is not None:
            raise BrokerError(f"fake websocket server failed to start: {self._startup_error!r}")
        self.app.market.trade_listeners.append(self._on_trade)
        self.app.market.bar_listeners.append(self._on_bar)

    def stop(self) -> None:
        """Close every connection (1001) and the server, then end the loop thread."""
        market = self.app.market
        with market.lock:
            market.trade_listeners.remove(self._on_trade)
            market.bar_listeners.remove(self._on_bar)
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._server = self.loop.run_until_complete(self._open())
        except OSError as exc:  # reported to start() through _startup_error
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.close()

    async def _open(self):
        server = await serve(self._handle, "127.0.0.1", 0, process_request=self._route,
                             compression=None)
        self.port = server.sockets[0].getsockname()[1]
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        return server

    async def _shutdown(self) -> None:
        self._watcher.cancel()
        self._server.close(close_connections=True)
        await self._server.wait_closed()

    # ------------------------------------------------------------ connections
    @staticmethod
    def _route(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/stream" or request.path in DATA_PATHS:
            return None
        return connection.respond(HTTPStatus.NOT_FOUND, f"no websocket at {request.path}\n")

    async def _handle(self, socket: ServerConnection) -> None:
        try:
            if socket.request.path == "/stream":
                await self._trading_session(socket)
            else:
                await self._data_session(socket)
        except ConnectionClosed:
            return  # the client went away; its peer entry was removed in the session's finally

    async def _pump(self, peer: _Peer, reader) -> None:
        """Run the reader and the sender until either ends (close, sentinel or error)."""
        tasks = [asyncio.ensure_future(reader), asyncio.ensure_future(self._send_all(peer))]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None and not isinstance(task.exception(), ConnectionClosed):
                raise task.exception()

    @staticmethod
    async def _send_all(peer: _Peer) -> None:
        while True:
            frame = await peer.queue.get()
            if frame is _CLOSE:
                await peer.socket.close()
                return
            await peer.socket.send(frame)

    # ---------------------------------------------------------- trading /stream
    async def _trading_session(self, socket: ServerConnection) -> None:
        request = json.loads(await socket.recv())
        data = request.get("data") or {}
        refused = self.app.faults.refuse_second_trading_connection and bool(self.trading)
        authorized = (request.get("action") == "authenticate" and not refused
                      and data.get("key_id") == self.app.key
                      and data.get("secret_key") == self.app.secret)
        reply = {"action": "authenticate",
                 "status": "authorized" if authorized else "unauthorized"}
        if refused:
            reply["message"] = "connection limit exceeded"
        await socket.send(json.dumps({"stream": "authorization", "data": reply}).encode())
        if not authorized:
            await socket.close()
            return
        peer = _Peer(socket)
        self.trading.add(peer)
        self._sessions["trading"] += 1
        try:
            await self._pump(peer, self._trading_reader(peer))
        finally:
            self.trading.discard(peer)

    async def _trading_reader(self, peer: _Peer) -> None:
        async for raw in peer.socket:
            message = json.loads(raw)
            if message.get("action") != "listen":
                continue  # the real stream ignores other actions after auth
            streams = list((message.get("data") or {}).get("streams") or [])
            peer.listening = "trade_updates" in streams
            reply = {"stream": "listening", "data": {"streams": streams}}
            peer.queue.put_nowait(json.dumps(reply).encode())

    def _on_trade(self, message: dict) -> None:
        frame = json.dumps(message).encode()
        self.loop.call_soon_threadsafe(self._fan_out_trade, frame)

    def _fan_out_trade(self, frame: bytes) -> None:
        faults = self.app.faults
        frames = [frame]
        if faults.reorder_events and self._held is None:
            self._held = frame
            return
        if self._held is not None:
            frames = [frame, self._held] if faults.reorder_events else [self._held, frame]
            self._held = None
        if faults.duplicate_events:
            frames = [f for f in frames for _ in range(2)]
        self._deliver_trades(frames)

    def _deliver_trades(self, frames: list[bytes]) -> None:
        for peer in list(self.trading):
            if peer.listening:
                for frame in frames:
                    peer.queue.put_nowait(frame)

    async def _watch(self) -> None:
        """Apply the switch-like trading faults (tests flip plain dataclass fields)."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if self.app.faults.take_drop_trading_socket():
                for peer in list(self.trading):
                    peer.queue.put_nowait(_CLOSE)
            if self._held is not None and not self.app.faults.reorder_events:
                held, self._held = self._held, None
                self._deliver_trades([held])

    # ------------------------------------------------------ market data (msgpack)
    async def _data_session(self, socket: ServerConnection) -> None:
        await socket.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        request = msgpack.unpackb(await socket.recv())
        if not isinstance(request, dict) or request.get("action") != "auth":
            await socket.send(msgpack.packb([{"T": "error", "code": 401,
                                              "msg": "not authenticated"}]))
            await socket.close()
            return
        if request.get("key") != self.app.key or request.get("secret") != self.app.secret:
            await socket.send(msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}]))
            await socket.close()
            return
        await socket.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
        peer = _Peer(socket)
        self.data.add(peer)
        self._sessions["data"] += 1
        try:
            await self._pump(peer, self._data_reader(peer))
        finally:
            self.data.discard(peer)

    async def _data_reader(self, peer: _Peer) -> None:
        async for raw in peer.socket:
            message = msgpack.unpackb(raw)
            action = message.get("action") if isinstance(message, dict) else None
            if action not in ("subscribe", "unsubscribe"):
                error = {"T": "error", "code": 400, "msg": "invalid syntax"}
                peer.queue.put_nowait(msgpack.packb([error]))
                continue
            for channel in CHANNELS:
                symbols = set(message.get(channel) or [])
                if action == "subscribe":
                    peer.subscriptions[channel] |= symbols
                else:
                    peer.subscriptions[channel] -= symbols
            ack = {"T": "subscription", **{c: sorted(peer.subscriptions[c]) for c in CHANNELS}}
            peer.queue.put_nowait(msgpack.packb([ack]))

    def _on_bar(self, kind: str, symbol: str, bar: dict) -> None:
        self.loop.call_soon_threadsafe(self._fan_out_bar, kind, symbol, bar)

    def _fan_out_bar(self, kind: str, symbol: str, bar: dict) -> None:
        faults = self.app.faults
        if faults.drop_data_at_bar is None:
            self._bars_since_drop_knob = 0
        if kind == "b" and pd.Timestamp(bar["t"], tz="UTC") in faults.skip_minute:
            return
        channel = "bars" if kind == "b" else "dailyBars"
        for peer in list(self.data):
            if faults.mute_data or not peer.wants(channel, symbol):
                continue
            messages = [_bar_message(kind, symbol, bar)]
            previous = peer.last_bar.get(symbol)
            if faults.late_updated_bars and previous and peer.wants("updatedBars", symbol):
                messages.append(_bar_message("u", symbol, previous))
            peer.last_bar[symbol] = bar
            peer.queue.put_nowait(msgpack.packb(messages))
            self._bars_since_drop_knob += 1
            if faults.take_drop_data_at_bar(self._bars_since_drop_knob):
                self._bars_since_drop_knob = 0
                peer.queue.put_nowait(_CLOSE)

    def counts(self) -> dict[str, int]:
        """Live handshaken connections (listening / subscribed) and authenticated totals."""
        trading = sum(1 for peer in list(self.trading) if peer.listening)
        data = sum(1 for peer in list(self.data) if any(peer.subscriptions.values()))
        return {"trading": trading, "data": data,
                "trading_sessions": self._sessions["trading"],
                "data_sessions": self._sessions["data"]}

    def close_all(self) -> None:
        """Close every stream connection (helper for tests ending streams quickly)."""
        def _close() -> None:
            for peer in list(self.trading) + list(self.data):
                peer.queue.put_nowait(_CLOSE)
        with contextlib.suppress(RuntimeError):  # the loop already ended: nothing is open
            self.loop.call_soon_threadsafe(_close)


def _bar_message(kind: str, symbol: str, bar: dict) -> dict:
    """A stream bar: msgpack Timestamp for ``t`` (a string would break alpaca-py silently)."""
    return {"T": kind, "S": symbol, **bar, "t": msgpack.Timestamp.from_unix_nano(bar["t"])}
