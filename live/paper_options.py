"""``fw paper credit_spread --broker alpaca``: the session loop of the options paper runner.

:func:`run_options_paper` creates (or resumes) a run in the store and calls
:meth:`~live.options_runner.OptionsRunner.step` once per XNYS session, ``minutes_before_close``
minutes before its close, for ``sessions`` sessions or until ``should_stop()`` says so.
:func:`summary` reads the run's trades back from the stored book.

Time is injected: ``wait_until(t)`` blocks until market time ``t`` and returns the time to step
at (tests move the fake's clock there; the default sleeps on the wall clock). A halt
(:class:`~live.options_runner.OptionsHalted`) ends the loop with the run marked ``halted``; any
other error marks it ``interrupted`` and propagates: a restart resumes from the stored book.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pandas as pd

from framework.errors import ConfigError
from framework.options.backtest import CreditSpreadSpec
from live.alpaca_options import AlpacaOptions
from live.options_runner import BOOK_KEY, OptionsHalted, OptionsRunner
from live.state import Store

STRATEGY = "credit_spread"


def _sleep_until(when: pd.Timestamp) -> pd.Timestamp:
    """Wall-clock wait until ``when`` (UTC); returns the time it woke up."""
    while True:
        left = (when - pd.Timestamp.now(tz="UTC")).total_seconds()
        if left <= 0:
            return pd.Timestamp.now(tz="UTC")
        _time.sleep(min(left, 60.0))


def decision_times(after: pd.Timestamp, count: int, minutes_before_close: float = 10.0,
                   calendar: tuple | None = None) -> list[pd.Timestamp]:
    """Step times of the next ``count`` sessions whose close is after ``after``: each close
    minus the margin (13:00 closes of half days included). The first may already be past
    ``after`` (a restart just before the close steps at once, so an order stored but not sent
    by a crash is resolved on its own day)."""
    if calendar is None:
        from framework.data.calendars import xnys_sessions

        calendar = xnys_sessions()
    closes = pd.DatetimeIndex(pd.to_datetime(calendar[2], utc=True))
    upcoming = closes[closes > pd.Timestamp(after)] - pd.Timedelta(minutes=minutes_before_close)
    if len(upcoming) < count:
        raise ConfigError(f"the XNYS calendar has {len(upcoming)} sessions after {after}; "
                          f"{count} were asked for. Ask for fewer sessions.")
    return list(upcoming[:count])


def run_options_paper(spec: CreditSpreadSpec, store: Store, run_id: str, underlying: str,
                      iv_history: pd.Series, sessions: int, options: AlpacaOptions,
                      wait_until: Callable[[pd.Timestamp], pd.Timestamp] | None = None,
                      now: Callable[[], pd.Timestamp] | None = None,
                      should_stop: Callable[[], bool] | None = None, alerter=None,
                      dry_run: bool = False, rate: float = 0.0, div: float = 0.0,
                      minutes_before_close: float = 10.0) -> dict[str, Any]:
    """Run (or resume) the credit-spread strategy on Alpaca paper for ``sessions`` sessions.

    Parameters
    ----------
    spec : CreditSpreadSpec
        The rules for new entries (stored with the run; open spreads keep their own).
    store : Store
    run_id : str
        Created when new (strategy ``credit_spread``), resumed from its book otherwise.
    underlying : str
    iv_history : Series
        Daily ATM IV (decimals) before the run, for the IV rank.
    sessions : int
        Sessions to step through (>= 1).
    options : AlpacaOptions
    wait_until : callable, optional
        ``wait_until(t) -> step time``; default sleeps until ``t`` on the wall clock.
    now : callable, optional
        Current market time (where the session search starts); default the broker's clock.
    should_stop : callable, optional
        Checked before each session; True ends the loop (status ``stopped``).
    alerter, dry_run, rate, div
        Passed to :class:`~live.options_runner.OptionsRunner`.
    minutes_before_close : float
        How long before each close the step runs.

    Returns
    -------
    dict
        :func:`summary` of the run after the loop, plus ``steps`` (sessions stepped now) and
        ``status``.
    """
    if not isinstance(sessions, int) or sessions < 1:
        raise ConfigError(f"sessions must be a whole number >= 1; got {sessions!r}.")
    wait_until = wait_until or _sleep_until
    now = now or (lambda: broker_now(options))
    existing = store.run(run_id)
    if existing is None:
        store.create_run(run_id, STRATEGY, [underlying.upper()],
                         {"command": "paper", "strategy": STRATEGY, "broker": "alpaca",
                          "underlying": underlying.upper(), "spec": asdict(spec),
                          "dry_run": dry_run, "rate": rate, "div": div})
    else:
        store.update_run(run_id, status="running")
    runner = OptionsRunner(spec, options, store, run_id, underlying, iv_history,
                           alerter=alerter, dry_run=dry_run, rate=rate, div=div)
    store.event(run_id, "start", f"options paper on {underlying.upper()} at "
                                 f"{options.conn.spec.trading_host}: {spec.kind}, "
                                 f"{sessions} sessions{' (dry run)' if dry_run else ''}")
    steps, status = 0, "finished"
    try:
        for when in decision_times(now(), sessions, minutes_before_close):
            if should_stop is not None and should_stop():
                status = "stopped"
                break
            runner.step(wait_until(when))
            steps += 1
    except OptionsHalted:
        status = "halted"
    except BaseException:
        store.update_run(run_id, status="interrupted")
        raise
    store.update_run(run_id, status=status)
    return {**summary(store, run_id), "steps": steps, "status": status}


def broker_now(options: AlpacaOptions) -> pd.Timestamp:
    conn = options.conn
    clock = conn.read("GET /v2/clock", conn.trading.get_clock)
    return pd.Timestamp(clock.timestamp).tz_convert("UTC")


def summary(store: Store, run_id: str) -> dict[str, Any]:
    """Trades and open spreads of an options paper run, from its stored book.

    Returns
    -------
    dict
        ``trades``: one dict per closed spread (``id``, ``kind``, ``legs``, ``expiry``,
        ``entry_date``, ``exit_date``, ``contracts``, ``credit`` and ``debit`` per share,
        ``pnl`` dollars, ``reason``); ``open``: spreads still held or in flight; ``pnl``: the
        total of known trade P&L; ``n_trades``; ``halted``: the halt reason or None.
    """
    book = store.broker_state(run_id)
    if book is None or "spreads" not in book:
        raise ConfigError(f"run {run_id!r} has no options book in {store.url}; start it with "
                          f"run_options_paper (broker state {BOOK_KEY!r}).")
    trades, still_open = [], []
    for spread in book["spreads"]:
        legs = "; ".join(f"{leg['ratio'] * max(spread['closed_contracts'], spread['contracts']):+d}"
                         f" {leg['right']} {leg['strike']:g} {leg['expiry']}"
                         for leg in spread["legs"])
        if spread["status"] == "closed":
            trades.append({"id": spread["id"], "kind": spread["kind"], "legs": legs,
                           "expiry": spread["expiry"], "entry_date": spread["entry_date"],
                           "exit_date": spread["exit_date"],
                           "contracts": spread["closed_contracts"],
                           "credit": spread["entry_credit"], "debit": spread["exit_debit"],
                           "pnl": spread["pnl"], "reason": spread["exit_reason"]})
        elif spread["status"] in ("opening", "open", "closing"):
            still_open.append({"id": spread["id"], "status": spread["status"], "legs": legs,
                               "expiry": spread["expiry"], "entry_date": spread["entry_date"],
                               "contracts": spread["contracts"],
                               "credit": spread["entry_credit"]})
    known = [t["pnl"] for t in trades if t["pnl"] is not None]
    return {"run_id": run_id, "trades": trades, "open": still_open, "n_trades": len(trades),
            "pnl": float(sum(known)), "halted": book.get("halted")}
