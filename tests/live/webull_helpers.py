"""Builders for tests against the fake Webull server: the fake, connections, the environment
that points ``fw`` at it, and a ready broker for the shared broker-contract suite."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from framework.types import Bars
from live.clock import BarSchedule
from live.ratelimit import RateLimiter
from live.webull import WebullBroker, WebullConnection, WebullCredentials, WebullSpec
from tests.live.alpaca_helpers import VirtualTime, daily_seed
from tests.live.fake_webull import ACCOUNT_ID, APP_KEY, APP_SECRET, CA_FILE, FakeWebull

CREDENTIALS = WebullCredentials(APP_KEY, APP_SECRET, ACCOUNT_ID)


def fake_for(bars: Bars | dict[str, pd.DataFrame], start: str | pd.Timestamp,
             cash: float = 100_000.0, **kw) -> FakeWebull:
    """A daily-bar fake seeded from close-labelled ``Bars`` (or ready Alpaca-style seeds)."""
    seed = bars if isinstance(bars, dict) else daily_seed(bars)
    return FakeWebull(seed, timeframe="1Day", start=start, cash=cash, **kw)


def environment(fake: FakeWebull) -> dict[str, str]:
    """Environment variables that point fw at ``fake``."""
    return {"WEBULL_APP_KEY": APP_KEY, "WEBULL_APP_SECRET": APP_SECRET,
            "WEBULL_ACCOUNT_ID": ACCOUNT_ID, "WEBULL_API_ENDPOINT": fake.endpoint,
            "WEBULL_API_CA_BUNDLE": CA_FILE, "WEBULL_REGION": "us"}


def spec_for(fake: FakeWebull, **spec) -> WebullSpec:
    base = {"endpoint": fake.endpoint, "ca_bundle": CA_FILE, "timeout": 2.0, "backoff": 0.01,
            "max_requests_per_min": 100_000, "token_wait": 2, "token_poll": 1}
    return WebullSpec(**{**base, **spec})


def connection(fake: FakeWebull, home: Path, time_source: VirtualTime | None = None,
               initialize: bool = True, **spec) -> WebullConnection:
    """A connection to ``fake`` whose retry and rate-limit waits run on virtual time; the
    token file goes to ``home/webull``."""
    built = spec_for(fake, **spec)
    virtual = time_source or VirtualTime()
    limiter = RateLimiter(limit=built.max_requests_per_min, period=60.0, clock=virtual.clock,
                          sleep=virtual.sleep)
    return WebullConnection(built, CREDENTIALS, limiter=limiter, sleep=virtual.sleep,
                            home=Path(home), initialize=initialize)


def broker_for(fake: FakeWebull, home: Path, symbols=("SPY",),
               time_source: VirtualTime | None = None, **spec) -> WebullBroker:
    return WebullBroker(symbols, connection(fake, home, time_source, **spec))


def advance_session(fake: FakeWebull) -> pd.Timestamp:
    """Move the fake's market time just past the next XNYS session close (orders sent before
    it fill at that session's open); returns the new market time."""
    now = fake.clock.now()
    close = BarSchedule("1Day").next_close(now)
    fake.clock.set(close + pd.Timedelta(seconds=2))
    return fake.clock.now()


@contextlib.contextmanager
def webull_contract_broker(tmp_path: Path, bars: Bars | dict[str, pd.DataFrame],
                           start: str | pd.Timestamp, cash: float = 100_000.0
                           ) -> Iterator[tuple[WebullBroker, Callable[[], pd.Timestamp],
                                               FakeWebull]]:
    """A :class:`WebullBroker` on a running fake, ``advance()`` (one session forward) and the
    fake (its ``faults`` force partial fills in the contract suite).

    Yields
    ------
    (broker, advance, fake)
        ``advance() -> pandas.Timestamp`` moves market time past the next session close and
        returns it; the broker trades the seeded symbols.
    """
    with fake_for(bars, start, cash) as fake:
        fake.faults.rate_limit_per_min = 0
        symbols = tuple(sorted(fake.market.series))
        broker = broker_for(fake, Path(tmp_path) / "fw-home", symbols)
        yield broker, lambda: advance_session(fake), fake


def run_session(fake: FakeWebull, store, strategy, spec, closes, monkeypatch, home: Path,
                reporter=None) -> dict:
    """Run ``fw paper --broker webull`` (``run_paper``) in a thread, driven in lockstep like
    :func:`tests.live.alpaca_helpers.run_session`; the token file goes under ``home``."""
    from tests.live import alpaca_helpers

    monkeypatch.setenv("FW_HOME", str(home))
    for name, value in environment(fake).items():
        monkeypatch.setenv(name, value)
    # alpaca_helpers.run_session sets the Alpaca variables from its ``environment``; the
    # Webull fake needs none of them, so an empty mapping is patched in for the call
    monkeypatch.setattr(alpaca_helpers, "environment", lambda _fake: {})
    return alpaca_helpers.run_session(fake, store, strategy, spec, closes, monkeypatch,
                                      reporter=reporter)
