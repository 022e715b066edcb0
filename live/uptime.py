"""The heartbeat of a runner process: health spans in the state store, from a daemon thread.

The spans are what :func:`framework.uptime.market_uptime` turns into uptime (healthy market-hours
time versus market-hours time).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pandas as pd

from framework.uptime import SpanStore, Uptime, UptimeSpec, iso_utc, market_uptime

__all__ = ["Heartbeat", "SpanStore", "Uptime", "UptimeSpec", "market_uptime"]
_log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# the heartbeat


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


class Heartbeat:
    """Keeps the health spans of one runner process in the store, from a daemon thread.

    Each beat asks ``is_healthy()``: healthy extends the open span (or opens one when none is
    open); unhealthy closes the open span with reason ``"unhealthy"`` at the last healthy beat,
    so time known to be unhealthy is never counted. A health check that raises counts as
    unhealthy. Errors of a beat (the store's included) are logged with ``logging.exception`` and
    kept in :attr:`last_error`; they never end the thread and never reach the runner, which
    notices a broken store (full disk...) through its own writes.

    Parameters
    ----------
    store : SpanStore
        ``open_span``, ``extend_span`` and ``close_span`` as in ``live.state.Store``.
    run_id : str
        The run whose spans these are.
    is_healthy : callable
        ``() -> bool``; false when the runner is halted by a fault, its feed is stale, ...
    spec : UptimeSpec, optional
        ``beat_seconds`` between beats; ``UptimeSpec()`` when omitted.
    clock : callable
        ``() -> pandas.Timestamp`` (tz-aware); tests pass a fake.

    Attributes
    ----------
    last_error : Exception or None
        The latest error of a beat or of ``stop`` (kept after later beats succeed).
    failures : int
        How many beats (or stops) failed so far.

    Examples
    --------
    >>> with Heartbeat(store, run_id, runner.healthy):  # doctest: +SKIP
    ...     runner.run()
    """

    def __init__(
        self,
        store: SpanStore,
        run_id: str,
        is_healthy: Callable[[], bool],
        spec: UptimeSpec | None = None,
        clock: Callable[[], pd.Timestamp] = _utc_now,
    ) -> None:
        self.store, self.run_id = store, run_id
        self.spec = spec if spec is not None else UptimeSpec()
        self._is_healthy, self._clock = is_healthy, clock
        self._lock = threading.Lock()  # one beat at a time: the thread's, beat() and stop()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._span_id: int | None = None
        self._last_beat_at: str | None = None
        self.last_error: BaseException | None = None
        self.failures = 0

    @property
    def span_id(self) -> int | None:
        """Id of the open span, ``None`` while no span is open."""
        return self._span_id

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Heartbeat:
        """Beat once (opening a span if healthy) and start the background thread; idempotent."""
        if self.running:
            return self
        self.beat()
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"fw-heartbeat-{self.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def beat(self) -> None:
        """Perform one beat now (the thread calls this every ``beat_seconds``)."""
        with self._lock:
            try:
                healthy = bool(self._is_healthy())
            except Exception as exc:
                self._record(exc, "health check")
                healthy = False
            try:
                if healthy:
                    self._extend_or_open()
                elif self._span_id is not None:
                    self._close(self._last_beat_at, "unhealthy")
            except Exception as exc:
                self._record(exc, "beat")

    def stop(self, reason: str = "stopped") -> None:
        """Stop the thread, then extend the open span to now and close it with ``reason``."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._thread = None
        with self._lock:
            if self._span_id is None:
                return
            try:
                at = self._now()
                self.store.extend_span(self._span_id, at)
                self._close(at, reason)
            except Exception as exc:
                self._span_id = None  # the store keeps it as a span that ended at its last beat
                self._record(exc, "stop")

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        self.stop("stopped" if exc_type is None else "error")

    # -- internals ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.wait(self.spec.beat_seconds):
            self.beat()

    def _now(self) -> str:
        return iso_utc(self._clock(), "heartbeat clock time")

    def _extend_or_open(self) -> None:
        at = self._now()
        if self._span_id is None:
            self._span_id = int(self.store.open_span(self.run_id, at))
        else:
            self.store.extend_span(self._span_id, at)
        self._last_beat_at = at

    def _close(self, at: str | None, reason: str) -> None:
        span_id, self._span_id = self._span_id, None
        # forget the span even if closing fails: a later healthy beat must open a new span rather
        # than extend this one across the unhealthy time
        if span_id is not None:
            self.store.close_span(span_id, at if at is not None else self._now(), reason)

    def _record(self, exc: Exception, during: str) -> None:
        self.last_error = exc
        self.failures += 1
        _log.exception(
            "heartbeat of run %s: %s failed (%s: %s); uptime may be under-counted until it "
            "recovers", self.run_id, during, type(exc).__name__, exc,
        )
