"""A client-side request rate limiter that also obeys the broker's rate-limit headers.

Alpaca allows 200 requests per minute and reports the quota on every response in
``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (unix seconds). The
limiter keeps a sliding window of its own requests below a safety margin (180 per 60 s by
default), stops when the broker says the quota is spent until the reset time, and backs off after
an HTTP 429.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from framework.errors import ConfigError

_LOG = logging.getLogger(__name__)
_MIN_SLEEP = 1e-6  # guards against float rounding leaving a zero-length wait that never ends
_MAX_RESET_PERIODS = 10  # a reset further away than this many periods is not believable


class RateLimiter:
    """At most ``limit`` acquisitions in any ``period`` seconds; thread-safe.

    Parameters
    ----------
    limit : int
        Requests allowed per window (>= 1).
    period : float
        Window length in seconds (> 0).
    clock : callable returning float
        Monotonic seconds (window bookkeeping).
    sleep : callable
        Sleeps for the given seconds.
    wall : callable returning float
        Unix seconds, to read ``X-RateLimit-Reset``.

    Attributes
    ----------
    malformed_headers : int
        Rate-limit headers (or 429 retry hints) that could not be used.
    """

    def __init__(self, limit: int = 180, period: float = 60.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], float] = time.time) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"rate limit {limit!r} is invalid; expected an integer >= 1 "
                              "(requests per period)")
        if not (isinstance(period, int | float) and math.isfinite(period) and period > 0):
            raise ConfigError(f"rate-limit period {period!r} is invalid; expected seconds > 0")
        self.limit, self.period = limit, float(period)
        self._clock, self._sleep, self._wall = clock, sleep, wall
        self._times: deque[float] = deque()
        self._blocked_until = -math.inf
        self._lock = threading.Lock()
        self.malformed_headers = 0

    def acquire(self) -> float:
        """Block until one more request is allowed and count it.

        Returns
        -------
        float
            Seconds waited.
        """
        start = None
        while True:
            with self._lock:
                now = self._clock()
                start = now if start is None else start
                wait = self._wait_locked(now)
                if wait <= 0:
                    self._times.append(now)
                    return now - start
            # sleep outside the lock so other threads can observe headers meanwhile
            self._sleep(max(wait, _MIN_SLEEP))

    def _wait_locked(self, now: float) -> float:
        """Seconds until a request is allowed at ``now`` (<= 0: allowed). Caller holds the lock."""
        self._prune_locked(now)
        window = 0.0
        if len(self._times) >= self.limit:
            # the window is full by the prune's test; rounding may put the age-out time at `now`
            window = max(self._times[0] + self.period - now, _MIN_SLEEP)
        return max(window, self._blocked_until - now)

    def _prune_locked(self, now: float) -> None:
        # the same comparison as the invariant: a request counts while now - t < period
        while self._times and now - self._times[0] >= self.period:
            self._times.popleft()

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers (names are case-insensitive).

        When ``X-RateLimit-Remaining`` is 0 the next :meth:`acquire` waits until
        ``X-RateLimit-Reset``; if that is missing or unusable it waits until the window frees, as
        after a 429. Malformed values are counted in :attr:`malformed_headers`, logged and
        otherwise ignored.
        """
        lowered = {str(key).lower(): value for key, value in headers.items()}
        raw_remaining = lowered.get("x-ratelimit-remaining")
        if raw_remaining is None:
            return
        try:
            remaining = int(str(raw_remaining).strip())
        except ValueError:
            remaining = -1
        if remaining < 0:
            self._malformed(f"X-RateLimit-Remaining={raw_remaining!r} (expected an integer >= 0)")
            return
        if remaining > 0:
            return
        raw_reset = lowered.get("x-ratelimit-reset")
        wait = self._reset_wait(raw_reset)
        if wait is None:
            self._malformed(f"X-RateLimit-Reset={raw_reset!r} with no quota left (expected unix "
                            f"seconds within {_MAX_RESET_PERIODS * self.period:g} s); waiting "
                            "for the window to free instead")
            self._block_until_window_frees()
            return
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + wait)

    def _reset_wait(self, raw: object) -> float | None:
        """Seconds until the reset time, 0 when it has passed, ``None`` when unusable."""
        if raw is None:
            return None
        try:
            reset = float(str(raw).strip())
        except ValueError:
            return None
        wait = reset - self._wall()
        if not math.isfinite(wait) or wait > _MAX_RESET_PERIODS * self.period:
            return None
        return max(wait, 0.0)

    def on_429(self, retry_after: float | None = None) -> None:
        """Back off after HTTP 429 (too many requests).

        Parameters
        ----------
        retry_after : float, optional
            Seconds the server asked to wait (``Retry-After``). Without it (or when it is not a
            finite number >= 0) the next acquisition waits until the oldest request in the
            window ages out, or a whole period when the window is empty.
        """
        if retry_after is not None:
            try:
                seconds = float(retry_after)
            except (TypeError, ValueError):
                seconds = math.nan
            if math.isfinite(seconds) and seconds >= 0:
                with self._lock:
                    self._blocked_until = max(self._blocked_until, self._clock() + seconds)
                return
            self._malformed(f"Retry-After={retry_after!r} (expected seconds >= 0); waiting for "
                            "the window to free instead")
        self._block_until_window_frees()

    def _block_until_window_frees(self) -> None:
        with self._lock:
            now = self._clock()
            self._prune_locked(now)
            # the server counts requests we cannot see (other processes): with none of ours in
            # the window, only a whole period is sure to free one
            free_at = self._times[0] + self.period if self._times else now + self.period
            self._blocked_until = max(self._blocked_until, free_at)

    def _malformed(self, what: str) -> None:
        with self._lock:
            self.malformed_headers += 1
        _LOG.warning("ignoring unusable rate-limit header %s", what)
