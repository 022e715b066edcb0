"""Fault switches of the fake Alpaca server.

Tests flip these fields between calls; the servers consume the one-shot ones (``fail_next``,
``accept_then_fail``, ``hang_next``, ``storm_429``, ``force_outcome``, ``drop_trading_socket``,
``drop_data_at_bar``) through the ``take_*`` methods, which hold a lock so that concurrent request
threads never consume the same injected failure twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Faults:
    """Every switch defaults to "off"; see the module docstring for which ones are one-shot.

    REST: ``fail_next`` (statuses for the next requests, optionally only those whose path starts
    with ``fail_paths``), ``accept_then_fail`` (status or ``"drop"`` for the next order POST, after
    the order is recorded), ``hang_next``/``hang_seconds``, ``latency``, ``rate_limit_per_min``
    (0 disables), ``storm_429``, ``partial_fills``, ``force_outcome``, ``disappear``,
    ``partial_daily_bar``, ``sip_recent_forbidden``.
    Trading stream: ``drop_trading_socket``, ``duplicate_events``, ``reorder_events``,
    ``refuse_second_trading_connection``.
    Data stream: ``mute_data``, ``drop_data_at_bar`` (counted from when it is set; the SDK's
    reconnect then works normally), ``skip_minute`` (stream only: REST still serves the seeded
    bar, so a client can backfill the gap), ``late_updated_bars`` (needs an updatedBars
    subscription).
    """

    fail_next: list[int] = field(default_factory=list)
    fail_paths: str | None = None
    accept_then_fail: int | str | None = None
    hang_next: int = 0
    hang_seconds: float = 0.0
    latency: float = 0.0
    rate_limit_per_min: int = 200
    storm_429: int = 0
    partial_fills: list[float] | None = None
    force_outcome: str | None = None
    disappear: set[str] = field(default_factory=set)
    partial_daily_bar: bool = False
    sip_recent_forbidden: bool = False
    drop_trading_socket: bool = False
    duplicate_events: bool = False
    reorder_events: bool = False
    refuse_second_trading_connection: bool = False
    mute_data: bool = False
    drop_data_at_bar: int | None = None
    skip_minute: set[pd.Timestamp] = field(default_factory=set)
    late_updated_bars: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def take_fail(self, path: str) -> int | None:
        """Pop the next injected status when ``path`` matches ``fail_paths`` (or no filter)."""
        with self._lock:
            if not self.fail_next:
                return None
            if self.fail_paths and not path.startswith(self.fail_paths):
                return None
            return self.fail_next.pop(0)

    def take_hang(self) -> float:
        """Seconds the current request must hang (0 when no hang is pending)."""
        with self._lock:
            if self.hang_next <= 0:
                return 0.0
            self.hang_next -= 1
            return float(self.hang_seconds)

    def take_storm(self) -> bool:
        """True when the current request must be answered with 429 by the storm."""
        with self._lock:
            if self.storm_429 <= 0:
                return False
            self.storm_429 -= 1
            return True

    def take_accept_then_fail(self) -> int | str | None:
        """The pending accept-then-fail reply for an order POST, cleared once taken."""
        with self._lock:
            value, self.accept_then_fail = self.accept_then_fail, None
            return value

    def take_force_outcome(self) -> str | None:
        """The forced outcome for the order being accepted, cleared once taken."""
        with self._lock:
            value, self.force_outcome = self.force_outcome, None
            return value

    def take_drop_trading_socket(self) -> bool:
        """True once after a test set ``drop_trading_socket``."""
        with self._lock:
            value, self.drop_trading_socket = self.drop_trading_socket, False
            return value

    def take_drop_data_at_bar(self, pushed: int) -> bool:
        """True (and the knob cleared) when ``pushed`` bars reached ``drop_data_at_bar``."""
        with self._lock:
            if self.drop_data_at_bar is None or pushed < self.drop_data_at_bar:
                return False
            self.drop_data_at_bar = None
            return True
