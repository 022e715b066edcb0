"""Tests for live.ratelimit.RateLimiter: sliding window, broker headers, 429 back-off, threads."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError
from live.ratelimit import RateLimiter

WALL0 = 1_764_000_000.0  # unix seconds at fake monotonic time 0


class FakeTime:
    """A monotonic clock, a wall clock WALL0 ahead of it, and a sleep that advances both."""

    def __init__(self) -> None:
        self.t, self.slept = 0.0, []

    def clock(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL0 + self.t

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.t += seconds

    def limiter(self, limit: int = 3, period: float = 10.0) -> RateLimiter:
        return RateLimiter(limit, period, clock=self.clock, sleep=self.sleep, wall=self.wall)


def assert_window(grants: list[float], limit: int, period: float) -> None:
    """No ``period``-long window holds more than ``limit`` grants."""
    grants = sorted(grants)
    for k in range(limit, len(grants)):
        assert grants[k] - grants[k - limit] >= period, (k, grants[k - limit], grants[k])


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(1, 6), period=st.floats(0.5, 30.0),
       gaps=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=40))
def test_never_more_than_limit_in_any_window_and_no_needless_wait(limit, period, gaps):
    fake = FakeTime()
    limiter = fake.limiter(limit, period)
    grants, arrival = [], 0.0
    for gap in gaps:
        arrival += gap
        fake.t = max(fake.t, arrival)  # the caller is busy until its previous request was granted
        asked = fake.t
        waited = limiter.acquire()
        grants.append(fake.t)
        assert waited == pytest.approx(fake.t - asked)
        # the earliest allowed moment: when the request `limit` back has aged out
        earliest = asked if len(grants) <= limit else max(asked, grants[-1 - limit] + period)
        assert fake.t == pytest.approx(earliest, abs=1e-5)
    assert_window(grants, limit, period)


def test_burst_then_wait():
    fake = FakeTime()
    limiter = fake.limiter(limit=3, period=10.0)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire() == pytest.approx(10.0)
    fake.t += 4.0
    assert limiter.acquire() == pytest.approx(0.0)  # requests 2 and 3 aged out at t=10
    assert limiter.acquire() == pytest.approx(0.0)
    assert limiter.acquire() == pytest.approx(6.0)  # t=14 -> t=20, when request 4 ages out


def test_zero_remaining_waits_until_reset():
    fake = FakeTime()
    limiter = fake.limiter(limit=100, period=60.0)
    limiter.acquire()
    limiter.observe({"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0",
                     "X-RateLimit-Reset": str(int(WALL0 + 12))})
    assert limiter.acquire() == pytest.approx(12.0)
    assert limiter.acquire() == 0.0  # the block is spent
    assert limiter.malformed_headers == 0


def test_headers_are_case_insensitive_and_remaining_quota_does_not_block():
    fake = FakeTime()
    limiter = fake.limiter()
    limiter.observe({"x-ratelimit-remaining": "5", "x-ratelimit-reset": str(WALL0 + 30)})
    assert limiter.acquire() == 0.0
    limiter.observe({"x-ratelimit-remaining": " 0 ", "X-RATELIMIT-RESET": f"{WALL0 + 2.5}"})
    assert limiter.acquire() == pytest.approx(2.5)


def test_a_reset_in_the_past_does_not_block():
    fake = FakeTime()
    limiter = fake.limiter()
    limiter.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(WALL0 - 5)})
    assert limiter.acquire() == 0.0
    assert limiter.malformed_headers == 0


def test_responses_without_rate_limit_headers_are_fine():
    fake = FakeTime()
    limiter = fake.limiter()
    limiter.observe({"Content-Type": "application/json"})
    assert limiter.acquire() == 0.0
    assert limiter.malformed_headers == 0


@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Remaining": "lots"},
    {"X-RateLimit-Remaining": "-3", "X-RateLimit-Reset": str(WALL0 + 30)},
    {"X-RateLimit-Remaining": "1.5"},
])
def test_malformed_remaining_is_ignored_and_counted(headers, caplog):
    fake = FakeTime()
    limiter = fake.limiter()
    with caplog.at_level(logging.WARNING, logger="live.ratelimit"):
        limiter.observe(headers)
    assert limiter.malformed_headers == 1
    assert "X-RateLimit-Remaining" in caplog.text
    assert limiter.acquire() == 0.0


@pytest.mark.parametrize("reset", [None, "soon", "nan", str((WALL0 + 30) * 1000)])  # ms, not s
def test_zero_remaining_with_unusable_reset_waits_for_the_window(reset, caplog):
    fake = FakeTime()
    limiter = fake.limiter(limit=5, period=10.0)
    fake.t = 1.0
    limiter.acquire()
    fake.t = 3.0
    headers = {"X-RateLimit-Remaining": "0"}
    if reset is not None:
        headers["X-RateLimit-Reset"] = reset
    with caplog.at_level(logging.WARNING, logger="live.ratelimit"):
        limiter.observe(headers)
    assert limiter.malformed_headers == 1
    assert "X-RateLimit-Reset" in caplog.text
    # the server says the quota is spent: wait until our oldest request (t=1) ages out
    assert limiter.acquire() == pytest.approx(8.0)


def test_429_with_retry_after():
    fake = FakeTime()
    limiter = fake.limiter()
    limiter.on_429(2.5)
    assert limiter.acquire() == pytest.approx(2.5)
    assert limiter.acquire() == 0.0


def test_429_without_retry_after_waits_until_the_window_frees():
    fake = FakeTime()
    limiter = fake.limiter(limit=10, period=10.0)
    for at in (0.0, 1.0, 2.0):
        fake.t = at
        limiter.acquire()
    fake.t = 5.0
    limiter.on_429()
    assert limiter.acquire() == pytest.approx(5.0)  # the t=0 request ages out at t=10
    # with none of our requests in the window, wait a whole period
    fake.t = 100.0
    limiter.on_429(None)
    assert limiter.acquire() == pytest.approx(10.0)


@pytest.mark.parametrize("retry_after", [-1.0, float("nan"), float("inf"), "later"])
def test_429_with_bad_retry_after_falls_back_and_counts(retry_after):
    fake = FakeTime()
    limiter = fake.limiter(limit=10, period=10.0)
    limiter.on_429(retry_after)
    assert limiter.malformed_headers == 1
    assert limiter.acquire() == pytest.approx(10.0)


def test_the_longest_block_wins():
    fake = FakeTime()
    limiter = fake.limiter(limit=10, period=60.0)
    limiter.on_429(20.0)
    limiter.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(WALL0 + 5)})
    assert limiter.acquire() == pytest.approx(20.0)


def test_threads_never_exceed_the_limit():
    limit, period, threads, each = 4, 0.05, 4, 8
    last_reading = threading.local()

    def clock() -> float:
        # the limiter reads the clock last when it grants, so this is each thread's grant time
        last_reading.value = time.monotonic()
        return last_reading.value

    limiter = RateLimiter(limit, period, clock=clock)
    grants, errors, lock = [], [], threading.Lock()

    def work():
        try:
            for _ in range(each):
                limiter.acquire()
                with lock:
                    grants.append(last_reading.value)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    assert errors == []
    assert len(grants) == threads * each
    assert_window(grants, limit, period)
    # 32 grants at 4 per window need at least 7 full windows after the first burst
    assert time.monotonic() - started >= (threads * each // limit - 1) * period


@pytest.mark.parametrize(("limit", "period", "match"), [
    (0, 60.0, "rate limit 0"),
    (2.5, 60.0, "rate limit 2.5"),
    (True, 60.0, "rate limit True"),
    (10, 0.0, "period 0.0"),
    (10, float("nan"), "period nan"),
])
def test_configuration_errors(limit, period, match):
    with pytest.raises(ConfigError, match=match):
        RateLimiter(limit, period)


def test_defaults_stay_below_alpaca():
    limiter = RateLimiter()
    assert limiter.limit == 180 and limiter.period == 60.0
