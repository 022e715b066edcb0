"""Builders for tests against the fake Alpaca server: seeded bars, connections, a lockstep driver."""

from __future__ import annotations

import threading
import time

import pandas as pd

from framework.data import load_default
from framework.types import Bars
from live.alpaca import AlpacaBroker, AlpacaConnection, AlpacaSpec
from live.clock import BarSchedule
from live.command import run_paper
from live.ratelimit import RateLimiter
from live.state import Store
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
            "APCA_API_BASE_URL": fake.url, "APCA_API_DATA_URL": fake.url,
            "APCA_API_DATA_STREAM_URL": fake.data_stream_url}


def minute_seed(start: str, end: str, symbols=("SPY",), seed: int = 1) -> dict[str, pd.DataFrame]:
    """Random-walk 1-minute bars over the XNYS sessions in [start, end], as Alpaca sends them
    (indexed by the minute's start)."""
    import numpy as np

    closes = BarSchedule("1Min").closes_between(pd.Timestamp(start, tz="UTC"),
                                                pd.Timestamp(end, tz="UTC"))
    opens = closes - pd.Timedelta(minutes=1)
    rng = np.random.default_rng(seed)
    out = {}
    for k, symbol in enumerate(symbols):
        close = 200.0 * (1 + k) * np.exp(np.cumsum(rng.normal(0, 0.0008, len(opens))))
        open_ = np.r_[close[0], close[:-1]]
        out[symbol] = pd.DataFrame({
            "open": open_, "high": np.maximum(open_, close) * 1.0003,
            "low": np.minimum(open_, close) * 0.9997, "close": close,
            "volume": rng.integers(1_000, 50_000, len(opens)).astype(float)}, index=opens)
    return out


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` (wall clock) until true; fail the test with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


def drive(fake, store: Store, run_id: str, closes: pd.DatetimeIndex, alive,
          timeout: float = 60.0, on_dead=None) -> None:
    """Lockstep: move the fake's market time just past each close, then wait until the runner
    has committed that bar. ``alive()`` tells whether the runner still runs; when it died,
    ``on_dead()`` (if given) restarts it and the wait goes on, else the drive ends."""
    for close in closes:
        fake.clock.set(max(fake.clock.now(), close + pd.Timedelta(seconds=2)))
        while True:
            wait_for(lambda c=close: not alive() or last_bar(store, run_id) >= c.isoformat(),
                     timeout, f"bar {close}")
            if last_bar(store, run_id) >= close.isoformat():
                break
            if on_dead is None:
                return
            on_dead()


def last_bar(store: Store, run_id: str) -> str:
    return (store.run(run_id) or {}).get("last_bar") or ""


def warmup_end(fake, settle: float) -> pd.Timestamp:
    """The last close a run started now backfills (its warm-up ends there)."""
    settled = fake.clock.now() - pd.Timedelta(seconds=settle)
    return BarSchedule("1Day").closes_between(settled - pd.Timedelta(days=10), settled)[-1]


def run_session(fake, store, strategy, spec, closes, monkeypatch, reporter=None) -> dict:
    """Run ``fw paper --broker alpaca`` (``run_paper``) in a thread, driven in lockstep."""
    for name, value in environment(fake).items():
        monkeypatch.setenv(name, value)
    out: dict = {}

    def work():
        try:
            out["summary"] = run_paper(strategy, spec, store, reporter=reporter)
        except BaseException as exc:  # handed to the test thread below
            out["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    ready = warmup_end(fake, spec.settle or 0.0)
    wait_for(lambda: last_bar(store, spec.run_id) >= ready.isoformat() or not worker.is_alive(),
             60, "warm-up")
    drive(fake, store, spec.run_id, closes, worker.is_alive)
    worker.join(60)
    if "error" in out:
        raise out["error"]
    return out
