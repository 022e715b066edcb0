"""``fw paper --broker alpaca``: the runner on an Alpaca paper account with live bars.

Startup is recovery, as for the simulated broker, plus the checks a remote broker needs: the
local clock against the broker's (drift halts), the broker's trading calendar against XNYS
(differences are recorded and alerted), and the resolved host, stated loudly. The session then
waits for each bar close of the chosen interval (:class:`~live.alpaca_feed.AlpacaFeed`), trades
the latest bar, and ends on SIGTERM/SIGINT (after finishing the bar in hand) or after
``--max-bars``. Stale data and clock drift halt the run (kill switch HALTED, event, alert); a
broker that stays unreachable ends the session with an error: restarting resumes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from framework.errors import BrokerError, StorageError
from framework.risk import RiskSpec
from framework.strategy import Strategy
from live.alpaca import AlpacaBroker, AlpacaConnection, AlpacaSpec, alpaca_keys
from live.alpaca_feed import AlpacaFeed, LiveFeedSpec, StaleDataError
from live.broker import BrokerUnavailableError
from live.clock import ClockDriftError, SyncedClock, check_broker_calendar
from live.runner import Runner, RunnerSpec
from live.state import Store
from live.uptime import Heartbeat

# orders are sized on 99% of the target: the fill comes at the next open, and Alpaca rejects a
# buy beyond buying power (HTTP 403) rather than trimming it as the backtest engine does
SIZE_BUFFER = 0.01
DATA_STREAM_URL_VARIABLE = "APCA_API_DATA_STREAM_URL"


def connect(environ: Mapping[str, str] | None = None) -> AlpacaConnection:
    """An Alpaca connection from the environment (keys, URL overrides) and the config's
    ``broker.max_requests_per_min``."""
    from framework.config import load_config

    env = os.environ if environ is None else environ
    broker = load_config().broker
    spec = AlpacaSpec.from_environment(env, max_requests_per_min=broker.max_requests_per_min,
                                       timeout=broker.request_timeout)
    return AlpacaConnection(spec, alpaca_keys(env))


def fills_since(store: Store, run_id: str, now: pd.Timestamp) -> pd.Timestamp:
    """Where the run's fills can start: its first order's decision bar (market time, so it
    holds for a broker whose clock is not ours), else now; earlier fills are not the run's."""
    times = [o["bar_time"] for o in store.orders(run_id)]
    first = pd.Timestamp(min(times)) if times else pd.Timestamp(now)
    return min(first, pd.Timestamp(now)) - pd.Timedelta(minutes=5)


def broker_for_run(store: Store, run: Mapping[str, Any]) -> AlpacaBroker:
    """The Alpaca broker of a stored run (for ``fw halt``)."""
    broker = AlpacaBroker(run["symbols"], connect())
    broker.since = fills_since(store, run["run_id"], broker.clock())
    return broker


def run_alpaca(strategy: Strategy, spec, store: Store, run_id: str,
               existing: Mapping[str, Any] | None, schedule, params_config: Mapping[str, Any],
               risk: RiskSpec, alerter, progress, reporter=None, watch=None) -> int:
    """Create or resume ``run_id`` on Alpaca paper and trade until stopped; returns the number
    of bars processed in this session."""
    from live.command import _git_revision, wants_regimes

    conn = connect()
    symbols = tuple(spec.symbols or (existing["symbols"] if existing else ("SPY",)))
    broker = AlpacaBroker(symbols, conn)
    clock = SyncedClock(reference=broker.clock, max_drift=spec.max_clock_drift)
    clock.sync()
    clock.check()
    now = clock.now()
    broker.since = fills_since(store, run_id, now)
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
        "broker": "alpaca", "broker_host": conn.spec.trading_host, "feed": conn.spec.feed,
        "interval": spec.interval, "initial_cash": initial_cash, "risk": risk.to_dict(),
        "size_buffer": SIZE_BUFFER,
        "dry_run": spec.dry_run, "git_revision": _git_revision(),
    }
    runner.start(config)
    store.event(run_id, "broker",
                f"alpaca PAPER account at {conn.spec.trading_host} (market data "
                f"{conn.spec.data_url or 'https://data.alpaca.markets'}, feed {conn.spec.feed}); "
                f"clock offset {clock.offset:+.3f} s")
    _check_calendar(runner, broker, now)
    stop, feed_spec, last = resume_session(strategy, spec, store, run_id, existing, runner,
                                           broker, schedule)
    stream = _bar_stream(symbols, conn) if spec.interval == "1Min" else None
    feed = AlpacaFeed(symbols, conn, clock, feed_spec, after=last,
                      on_event=lambda kind, message: store.event(run_id, kind, message),
                      should_stop=stop, stream=stream)
    writable = True
    try:
        return drive_session(runner, feed, strategy, store, run_id, alerter, reporter,
                             progress(spec.max_bars) if progress is not None else None)
    except StorageError:
        writable = False  # nothing more may be written
        raise
    finally:
        if stream is not None:
            stream.stop()
            for error in (stream.errors[-5:] if writable else ()):
                runner._error("market-data stream error", str(error))


def resume_session(strategy: Strategy, spec, store: Store, run_id: str,
                   existing: Mapping[str, Any] | None, runner: Runner, broker, schedule):
    """What every live session does once its runner has started: mark a resumed run running,
    send flatten orders left pending, install the stop signal and size the feed (warm-up of a
    learned strategy included). Returns ``(stop, feed_spec, last_bar_or_None)``."""
    from framework.config import load_config
    from live.command import StopFlag, submit_pending_flatten

    if existing is not None:
        store.update_run(run_id, status="running")
    if not spec.dry_run:
        submit_pending_flatten(store, run_id, broker, runner.last_bar)
    stop = StopFlag()
    stop.install()
    poll = spec.poll if spec.poll is not None else float(load_config().trading.interval_seconds)
    warmup_bars = spec.warmup_bars
    if strategy.fit is not None:  # a learned strategy: its warm-up and retraining window
        from live.command import learned_history

        warmup_bars = max(warmup_bars, learned_history(strategy, schedule, spec) + 1)
    feed_spec = LiveFeedSpec(interval=spec.interval, warmup_bars=warmup_bars,
                             settle=spec.settle, poll=poll, max_wait=spec.max_wait,
                             max_bars=spec.max_bars)
    last = pd.Timestamp(runner.last_bar) if runner.last_bar else None
    return stop, feed_spec, last


def drive_session(runner: Runner, feed, strategy: Strategy, store: Store, run_id: str, alerter,
                  reporter, per_bar) -> int:
    """Trade ``feed`` through ``runner`` with the live session's duties (daily summary alert,
    period reports, health spans, the parity check at the end) and its error handling: stale
    data and clock drift halt the run; an unreachable broker ends the session (restart
    resumes it); a storage failure stops all writing. Returns the bars processed. Shared by
    every live broker's session (Alpaca, Webull)."""
    bar_schedule = feed.schedule

    def callback(n_bars: int, bar) -> None:
        if per_bar is not None:
            per_bar(n_bars, bar)
        if not bar.warmup and _closes_session(bar_schedule, bar.time):
            _daily_summary(store, run_id, alerter, bar.time)
            if reporter is not None:
                _period_reports(runner, reporter, bar_schedule, bar.time)

    writable = True
    heartbeat = Heartbeat(store, run_id, runner.healthy).start()
    try:
        return runner.run(feed, callback)
    except StaleDataError as exc:
        runner.halt("stale_data", str(exc))
        raise
    except ClockDriftError as exc:
        runner.halt("clock_drift", str(exc))
        raise
    except BrokerUnavailableError as exc:
        store.update_run(run_id, status="interrupted")
        runner._error("broker unavailable; session ended (restart resumes it)", str(exc))
        raise
    except StorageError:
        writable = False  # nothing more may be written; the caller alerts
        raise
    finally:
        heartbeat.stop("stopped" if writable else "storage failure")
        if writable:
            _parity_check(runner, strategy)


def _bar_stream(symbols, conn: AlpacaConnection):
    """The market-data websocket for 1-minute bars (one per process: Alpaca allows a single
    connection per account); ``APCA_API_DATA_STREAM_URL`` may point it elsewhere."""
    from live.alpaca_stream import BarStream

    url = os.environ.get(DATA_STREAM_URL_VARIABLE) or None
    stream = BarStream(symbols, *alpaca_keys(), url=url, feed=conn.spec.feed)
    stream.start()
    return stream


def _parity_check(runner: Runner, strategy: Strategy) -> None:
    """At the end of a session, replay the run through the backtest (``fw parity``): an event
    with the headline numbers, and an alert when a divergence threshold is exceeded."""
    from live.parity import compare_run

    if not runner.store.fills(runner.run_id):
        return
    try:
        result = compare_run(runner.store, runner.run_id, strategy)
    except Exception as exc:  # a failing check must not hide how the session ended
        runner._error("parity check failed", f"{type(exc).__name__}: {exc}")
        return
    stats, breaches = result.divergence(), result.exceeds()
    runner.store.event(runner.run_id, "parity",
                       f"{stats['matched']} fills matched, {stats['unmatched']} unmatched, "
                       f"mean |price diff| {stats['mean_abs_price_bps']:.2f} bps, "
                       f"{stats['decision_mismatches']} decision mismatches")
    if breaches:
        runner._alert("error", f"{runner.run_id}: paper and backtest diverge",
                      "; ".join(breaches) + " (`fw parity` shows the details)", "warning")


def _closes_session(schedule, close: pd.Timestamp) -> bool:
    """Whether ``close`` is the last bar of its session (every daily bar is)."""
    nxt = schedule.next_close(close)
    return schedule.interval == "1Day" or nxt.tz_convert("America/New_York").date() != \
        close.tz_convert("America/New_York").date()


def _daily_summary(store: Store, run_id: str, alerter, close: pd.Timestamp) -> None:
    from live.alerts import format_daily_summary

    title, body = format_daily_summary(store.run(run_id), store.equity(run_id),
                                       store.fills(run_id),
                                       store.events(run_id, limit=500) + store.errors(run_id, 100),
                                       day=close.tz_convert("UTC").date())
    alerter.send("summary", title, body)


def _period_reports(runner: Runner, reporter, schedule, close: pd.Timestamp) -> None:
    """After a week's (month's) last session, write its report and alert where it is."""
    here = close.tz_convert("America/New_York")
    after = schedule.next_close(close).tz_convert("America/New_York")
    due = []
    if after.isocalendar()[:2] != here.isocalendar()[:2]:
        due.append(("weekly", (here + pd.Timedelta(days=5 - here.weekday())).date()))  # Saturday
    if (after.year, after.month) != (here.year, here.month):
        due.append(("monthly", (here + pd.offsets.MonthBegin(1)).date()))
    for period, today in due:
        try:
            path, headline = reporter(runner.store.url, runner.run_id, period, today)
        except Exception as exc:  # a report must never stop trading; the error is recorded
            runner._error(f"{period} report failed", f"{type(exc).__name__}: {exc}")
            continue
        runner.store.event(runner.run_id, "report", f"{period} report: {path}")
        runner._alert("summary", f"{runner.run_id}: {period} report", f"{headline}\n{path}")


def _check_calendar(runner: Runner, broker: AlpacaBroker, now: pd.Timestamp) -> None:
    """Compare the broker's trading days around now with XNYS; record any difference."""
    try:
        rows = broker.calendar(now - pd.Timedelta(days=7), now + pd.Timedelta(days=14))
    except BrokerError as exc:
        runner._error("broker calendar unreadable", str(exc))
        return
    problems = check_broker_calendar(rows)
    if problems:
        text = "; ".join(problems[:5])
        runner.store.event(runner.run_id, "calendar_mismatch",
                           f"the broker's calendar differs from XNYS: {text}")
        runner._alert("error", f"{runner.run_id}: broker calendar differs from XNYS", text,
                      "warning")
