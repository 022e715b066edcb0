"""Health of a running paper session, for monitors: lag judged in market hours and a tiny HTTP
endpoint on localhost.

* :func:`heartbeat_due` tells whether a runner has been silent for too long during market hours
  (nights, weekends and holidays never count); :func:`default_grace` is how late a bar may be.
* :func:`judge` turns ``fw status --json`` data into healthy/unhealthy with reasons.
* :class:`HealthServer` answers ``GET /health`` (503 when unhealthy) and ``GET /status`` on
  localhost (``fw paper --health-port``) for external monitors.
"""

from __future__ import annotations

import http.server
import json
import logging
import math
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from framework.errors import ConfigError, FwError
from live.service import ServiceError

_log = logging.getLogger(__name__)

# seconds added to the live feed's own worst wait for a bar (settle + max_wait) before a
# missing bar counts as silence: a restart (RestartSec=30) and the warm-up read fit in it
HEARTBEAT_MARGIN = 60.0
# seconds -> BarSchedule interval, for heartbeat_due
INTERVAL_SECONDS: dict[int, str] = {
    60: "1Min", 300: "5Min", 900: "15Min", 1800: "30Min", 3600: "1Hour", 86400: "1Day",
}


def _utc(t: object, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(t)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} {t!r} is not a time; expected an ISO time or Timestamp.") from exc
    if stamp is pd.NaT:
        raise ConfigError(f"{what} {t!r} is not a time; expected an ISO time or Timestamp.")
    if stamp.tzinfo is None:
        raise ConfigError(f"{what} {t!r} has no time zone; expected a tz-aware time (UTC).")
    return stamp.tz_convert("UTC")


def default_grace(schedule_interval_seconds: float | str) -> float:
    """Seconds a bar of this interval may be late before :func:`heartbeat_due` calls it missing.

    The live feed waits ``settle`` seconds after a close, and up to ``max_wait`` more for a bar
    that is slow to appear before it skips it; a restart after a crash needs ``RestartSec`` and
    a warm-up read. The default is the feed's worst wait (its defaults) plus
    :data:`HEARTBEAT_MARGIN`: 663 s for intraday bars, 780 s for daily ones.
    """
    from live.alpaca_feed import LiveFeedSpec

    feed = LiveFeedSpec(interval=_interval_name(schedule_interval_seconds))
    return feed.settle_seconds + feed.max_wait + HEARTBEAT_MARGIN


def heartbeat_due(last_bar_time: object, now: object, schedule_interval_seconds: float | str,
                  grace: float | None = None) -> bool:
    """Whether the runner has been silent too long: a bar that closed more than ``grace``
    seconds ago during market hours has not been processed.

    A run with a bar every ``interval`` seconds is due when, with the market open, no bar was
    processed for longer than ``interval + grace``; nights, weekends and holidays do not count,
    since the XNYS bar schedule has no bars then. Bars after a half day's early close do not
    exist either.

    Parameters
    ----------
    last_bar_time : timestamp-like or None
        Close label of the last processed bar (tz-aware); None when none was processed yet,
        which is due whenever the market is open (pass the run's start time to allow warm-up).
    now : timestamp-like
        The current time (tz-aware).
    schedule_interval_seconds : float or str
        Bar length: 60, 300, 900, 1800, 3600 or 86400 seconds, or the interval name
        (``"1Min"`` ... ``"1Day"``).
    grace : float, optional
        Seconds allowed after a bar close before it counts as missing (settle time, data
        delay), >= 0; default :func:`default_grace` of the interval.

    Returns
    -------
    bool
        True only while the market is open and a bar is overdue.
    """
    from live.clock import BarSchedule, session_state

    interval = _interval_name(schedule_interval_seconds)
    if grace is None:
        grace = default_grace(interval)
    if not (isinstance(grace, int | float) and math.isfinite(grace) and grace >= 0):
        raise ConfigError(f"heartbeat grace {grace!r} is invalid; expected seconds >= 0.")
    now_t = _utc(now, "now")
    if session_state(now_t) != "open":
        return False
    deadline = now_t - pd.Timedelta(seconds=float(grace))
    if last_bar_time is None:
        # nothing processed yet: due when any bar closed since the session began + grace
        last_t = now_t - pd.Timedelta(days=7)
    else:
        last_t = _utc(last_bar_time, "last bar time")
    if deadline <= last_t:
        return False
    return len(BarSchedule(interval).closes_between(last_t, deadline)) > 0


def _interval_name(value: float | str) -> str:
    if isinstance(value, str):
        if value in INTERVAL_SECONDS.values():
            return value
    elif isinstance(value, int | float) and float(value) in INTERVAL_SECONDS:
        return INTERVAL_SECONDS[int(value)]
    allowed = ", ".join(f"{s} ({n})" for s, n in INTERVAL_SECONDS.items())
    raise ConfigError(f"bar interval {value!r} is not a schedule interval; expected one of "
                      f"{allowed} seconds, or the name.")


def judge(status: Mapping[str, Any], *, max_lag_seconds: float | None = None,
          interval: float | str | None = None, now: pd.Timestamp | None = None
          ) -> tuple[bool, list[str], float | None]:
    """Whether a run's status is healthy: ``(ok, reasons it is not, lag in seconds)``.

    Healthy means the kill switch is ACTIVE and, when ``max_lag_seconds`` is given, the last bar
    is recent: with ``interval`` the lag is judged by :func:`heartbeat_due` (market hours only,
    ``max_lag_seconds`` as the grace), otherwise the plain lag must not exceed it.
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    reasons: list[str] = []
    switch = status.get("kill_switch")
    if switch != "ACTIVE":
        reasons.append(f"kill switch is {switch}")
    last = status.get("last_bar")
    lag = status.get("lag_seconds")
    if lag is None and last:
        lag = (now - _utc(last, "last_bar")).total_seconds()
    if max_lag_seconds is not None:
        if interval is not None:
            if heartbeat_due(last or None, now, interval, max_lag_seconds):
                reasons.append(f"a {interval} bar is overdue by more than {max_lag_seconds:g} s "
                               f"(last bar {last})")
        elif lag is None:
            reasons.append("no bar processed yet")
        elif lag > max_lag_seconds:
            reasons.append(f"last bar {lag:.0f} s ago, more than {max_lag_seconds:g} s")
    return not reasons, reasons, lag


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


class HealthServer:
    """A tiny HTTP endpoint for external monitors, served from a daemon thread.

    ``GET /health`` answers ``{"ok": ..., "reasons": [...], "lag_seconds": ..., **status}`` with
    HTTP 200 when healthy (see :func:`judge`) and 503 otherwise (also when ``get_status``
    raises); ``GET /status`` answers the same JSON with 200 whenever the status could be read;
    anything else is 404.

    Parameters
    ----------
    get_status : callable
        Returns the run's status (``fw status --json`` fields: ``kill_switch``, ``last_bar``,
        optionally ``lag_seconds``...). Called once per request, from the server thread.
    host : str
        Interface to bind; loopback only unless ``allow_remote``.
    port : int
        TCP port; 0 picks a free one (see :attr:`url`).
    max_lag_seconds : float, optional
        Lag since the last bar above which ``ok`` is false; None does not judge the lag.
    interval : float or str, optional
        Bar interval; when given, the lag is judged with :func:`heartbeat_due` (market hours).
    allow_remote : bool
        Allow binding a non-loopback address (the status carries positions and P&L).
    clock : callable, optional
        Returns the current tz-aware time (tests).
    """

    def __init__(self, get_status: Callable[[], Mapping[str, Any]], host: str = "127.0.0.1",
                 port: int = 0, *, max_lag_seconds: float | None = None,
                 interval: float | str | None = None, allow_remote: bool = False,
                 clock: Callable[[], pd.Timestamp] | None = None) -> None:
        if host not in _LOOPBACK and not allow_remote:
            raise ConfigError(f"health endpoint host {host!r} is not a loopback address; "
                              "expected 127.0.0.1 (the status shows positions and P&L). Pass "
                              "allow_remote=True to expose it deliberately.")
        if not (isinstance(port, int) and 0 <= port <= 65535):
            raise ConfigError(f"health port {port!r} is invalid; expected 0..65535 (0 = any).")
        if max_lag_seconds is not None and not max_lag_seconds >= 0:
            raise ConfigError(f"max_lag_seconds {max_lag_seconds!r} is invalid; expected "
                              "seconds >= 0 or None.")
        if interval is not None:
            _interval_name(interval)
        self._get_status = get_status
        self._host, self._port = host, port
        self.max_lag_seconds, self.interval = max_lag_seconds, interval
        self._clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise ServiceError("the health server is not running; call start() first.")
        host, port = self._server.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in str(host) else host}:{port}"

    def start(self) -> HealthServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        handler = _handler_class(self)
        server_cls = _V6Server if ":" in self._host else http.server.ThreadingHTTPServer
        try:
            self._server = server_cls((self._host, self._port), handler)
        except OSError as exc:
            raise ServiceError(f"cannot serve health on {self._host}:{self._port}: {exc}. "
                               "Fix: choose another --health-port (0 = any free port).") from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fw-health",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def payload(self) -> tuple[bool, dict[str, Any]]:
        """``(readable, body)``: the JSON body both endpoints answer with."""
        try:
            status = dict(self._get_status())
        except Exception as exc:  # a monitor gets a 503 with the reason; logged too
            _log.warning("health status unavailable: %s", exc, exc_info=True)
            return False, {"ok": False, "reasons": [f"status unavailable: {exc}"]}
        try:
            ok, reasons, lag = judge(status, max_lag_seconds=self.max_lag_seconds,
                                     interval=self.interval, now=self._clock())
        except FwError as exc:  # e.g. a malformed last_bar: unhealthy, and say why
            _log.warning("health status not judged: %s", exc)
            return True, {**status, "ok": False, "reasons": [str(exc)]}
        return True, {**status, "ok": ok, "reasons": reasons, "lag_seconds": lag}


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _handler_class(health: HealthServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "fw-health"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path not in ("/health", "/status"):
                self._send(404, {"ok": False, "error": f"no such path {path!r}; "
                                 "use /health or /status"})
                return
            readable, body = health.payload()
            # /health judges the run; /status only fails when the status cannot be read
            healthy = body["ok"] if path == "/health" else readable
            self._send(200 if healthy else 503, body)

        def _send(self, code: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body, default=str, sort_keys=True).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # monitors poll every few seconds; keep their requests out of stderr
            _log.debug("health %s - " + format, self.address_string(), *args)

    return Handler
