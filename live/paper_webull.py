"""``fw paper --broker webull``: the runner on a Webull account (test environment by default).

The session is ``fw paper --broker alpaca``'s (:mod:`live.paper_alpaca`, whose helpers it
imports): startup is recovery, the broker's clock (Webull's HTTP ``Date`` header) is checked
against the local one, the resolved host and mode are stated loudly (a production host trades
REAL MONEY and is only reachable with ``broker.paper: false``), then each bar close of the
interval is read from Webull's market data (:func:`live.webull_feed.fetch_bars` inside the
Alpaca feed's pacing) and the latest bar is traded. What differs for Webull:

* a resumed run tells the broker its client ids (Webull ids are digests of them) and the fills
  already stored (the baseline from which fills are derived);
* there is no market-data websocket (REST only) and no calendar cross-check (Webull's trade
  calendar endpoint is not used; XNYS from exchange_calendars paces the feed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from framework.risk import RiskSpec
from framework.strategy import Strategy
from live.alpaca_feed import AlpacaFeed
from live.clock import SyncedClock
from live.paper_alpaca import SIZE_BUFFER, drive_session, fills_since, resume_session
from live.runner import Runner, RunnerSpec
from live.state import Store
from live.webull import WebullBroker, WebullConnection, WebullSpec, webull_credentials
from live.webull_feed import fetch_bars


def connect(environ: Mapping[str, str] | None = None) -> WebullConnection:
    """A Webull connection from the environment (credentials, endpoint) and the config's
    ``broker`` section (request budget, timeout, ``paper: false`` to allow production)."""
    from framework.config import load_config

    env = os.environ if environ is None else environ
    broker = load_config().broker
    spec = WebullSpec.from_environment(env, max_requests_per_min=broker.max_requests_per_min,
                                       timeout=broker.request_timeout, live=not broker.paper)
    return WebullConnection(spec, webull_credentials(env))


def run_broker(store: Store, run_id: str, symbols, conn: WebullConnection,
               now: pd.Timestamp) -> WebullBroker:
    """The run's broker, told what the store already knows (ids and recorded fills)."""
    broker = WebullBroker(symbols, conn)
    broker.remember(o["client_order_id"] for o in store.orders(run_id))
    broker.seed_fills(store.fills(run_id))
    broker.since = fills_since(store, run_id, now)
    return broker


def broker_for_run(store: Store, run: Mapping[str, Any]) -> WebullBroker:
    """The Webull broker of a stored run (for ``fw halt``)."""
    conn = connect()
    return run_broker(store, run["run_id"], run["symbols"], conn, conn.server_time())


def run_webull(strategy: Strategy, spec, store: Store, run_id: str,
               existing: Mapping[str, Any] | None, schedule, params_config: Mapping[str, Any],
               risk: RiskSpec, alerter, progress, reporter=None, watch=None) -> int:
    """Create or resume ``run_id`` on Webull and trade until stopped; returns the number of
    bars processed in this session."""
    from live.command import _git_revision, wants_regimes

    conn = connect()
    symbols = tuple(spec.symbols or (existing["symbols"] if existing else ("SPY",)))
    clock = SyncedClock(reference=conn.server_time, max_drift=spec.max_clock_drift)
    clock.sync()
    clock.check()
    now = clock.now()
    broker = run_broker(store, run_id, symbols, conn, now)
    account = broker.account()
    initial_cash = (float(existing["config"].get("initial_cash", account.equity)) if existing
                    else account.equity)
    runner = Runner(strategy, schedule, store, broker, symbols,
                    RunnerSpec(run_id=run_id, risk=risk, dry_run=spec.dry_run,
                               size_buffer=SIZE_BUFFER, regimes=wants_regimes(risk),
                               min_free_bytes=spec.min_free_bytes),
                    alerter=alerter, watch=watch)
    config = {
        "command": "paper", "strategy": strategy.name, **params_config, "symbols": list(symbols),
        "broker": "webull", "broker_host": conn.spec.host, "broker_mode": conn.spec.mode,
        "interval": spec.interval, "initial_cash": initial_cash, "risk": risk.to_dict(),
        "size_buffer": SIZE_BUFFER, "dry_run": spec.dry_run, "git_revision": _git_revision(),
    }
    runner.start(config)
    store.event(run_id, "broker", _mode_text(conn) + f"; clock offset {clock.offset:+.3f} s")
    stop, feed_spec, last = resume_session(strategy, spec, store, run_id, existing, runner,
                                           broker, schedule)
    feed = AlpacaFeed(symbols, conn, clock, feed_spec, after=last,
                      on_event=lambda kind, message: store.event(run_id, kind, message),
                      should_stop=stop, fetch=lambda *args: fetch_bars(conn, *args),
                      source=f"webull market data at {conn.spec.host}")
    return drive_session(runner, feed, strategy, store, run_id, alerter, reporter,
                         progress(spec.max_bars) if progress is not None else None)


def _mode_text(conn: WebullConnection) -> str:
    if conn.spec.is_production:
        return (f"!!! webull LIVE account {conn.account_id} at {conn.spec.host}: REAL MONEY "
                "(broker.paper: false) !!!")
    return (f"webull TEST environment at {conn.spec.host}, account {conn.account_id} (no real "
            "money; Webull has no paper account)")
