"""Builders for tests against the fake Alpaca server: seeded bars, connections, a lockstep driver."""

from __future__ import annotations

import time

import pandas as pd

from framework.data import load_default
from framework.types import Bars
from live.alpaca import AlpacaBroker, AlpacaConnection, AlpacaSpec
from live.ratelimit import RateLimiter
from tests.live.fake_alpaca import KEY, SECRET, FakeAlpaca


def daily_seed(bars: Bars) -> dict[str, pd.DataFrame]:
    """Alpaca-style daily bars (``t`` = midnight New York of the session) from close-labelled
    bars."""
    dates = bars.index.tz_convert("America/New_York").normalize()
    out = {}
    for j, symbol in enumerate(bars.symbols):
        frame = pd.DataFrame({name: getattr(bars, name)[:, j] for name in
                              ("open", "high", "low", "close", "volume")},
                             index=pd.DatetimeIndex(dates).tz_convert("UTC"))
        out[symbol] = frame.dropna()
    return out


def spy_bars(start: str = "2014-01-01", end: str = "2016-12-31") -> Bars:
    """The embedded S&P 500 index (offline), named SPY, for the fake to serve."""
    gspc = load_default(["GSPC"]).between(start, end)
    return Bars(index=gspc.index, symbols=("SPY",), open=gspc.open, high=gspc.high,
                low=gspc.low, close=gspc.close, volume=gspc.volume)


def fake_for(bars: Bars, start: str | pd.Timestamp, cash: float = 100_000.0) -> FakeAlpaca:
    return FakeAlpaca(daily_seed(bars), timeframe="1Day", start=start, cash=cash)


class VirtualTime:
    """A monotonic clock that only moves when something sleeps on it (waits cost no time)."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def connection(fake: FakeAlpaca, time_source: VirtualTime | None = None,
               **spec) -> AlpacaConnection:
    """A connection to ``fake`` whose retry and rate-limit waits run on virtual time."""
    spec = {"trading_url": fake.url, "data_url": fake.url, "timeout": 2.0, "backoff": 0.01,
            "max_requests_per_min": 180, **spec}
    virtual = time_source or VirtualTime()
    limiter = RateLimiter(limit=spec["max_requests_per_min"], period=60.0,
                          clock=virtual.clock, sleep=virtual.sleep)
    return AlpacaConnection(AlpacaSpec(**spec), (KEY, SECRET), limiter=limiter,
                            sleep=virtual.sleep)


def broker_for(fake: FakeAlpaca, symbols=("SPY",), time_source: VirtualTime | None = None,
               **spec) -> AlpacaBroker:
    return AlpacaBroker(symbols, connection(fake, time_source, **spec))


def environment(fake: FakeAlpaca) -> dict[str, str]:
    """Environment variables that point fw at ``fake``."""
    return {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET,
            "APCA_API_BASE_URL": fake.url, "APCA_API_DATA_URL": fake.url}


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` (wall clock) until true; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)
