"""Options paper trading end to end: the real alpaca-py against the fake Alpaca options server.

Seeded daily SPY bars over the first half of 2025 drive the fake's quotes (synthetic smile,
fixed 5-point strikes so listed contracts stay listed); :func:`run_options_paper` steps once per
session 10 minutes before the close. Each path is built to force one kind of exit; the tests
check the reason, the P&L sign, the book in the store against the broker, and the recovery
paths (crash between store and submit, 504 after accept, partial fill, foreign position).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from framework.data.calendars import xnys_sessions
from framework.options.backtest import CreditSpreadSpec
from framework.options.legs import Leg, OptionPosition
from live.alpaca_options import AlpacaOptions
from live.options_runner import OptionsHalted, OptionsRunner
from live.paper_options import decision_times, run_options_paper, summary
from live.state import Store
from tests.live.alpaca_helpers import connection
from tests.live.fake_alpaca import FakeAlpaca
from tests.live.fake_alpaca.options import OptionsSpec

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")

START = "2025-01-06 14:00Z"  # before the open of the first session stepped
STRIKES = tuple(float(k) for k in range(300, 801, 5))
NO_HISTORY = pd.Series(dtype=float)
# up 0.2 %/day for 25 sessions (take profit), down 2 %/day for 8 (stops), then flat (DTE exits)
REGIMES = [0.002] * 25 + [-0.02] * 8 + [0.0] * 100
MANAGED = CreditSpreadSpec(dte_min=20, dte_max=30, iv_rank_min=0.0, take_profit=0.5,
                           stop_multiple=1.0, exit_dte=7, max_open=3, entry_every_days=5)
TO_EXPIRY = CreditSpreadSpec(dte_min=20, dte_max=30, iv_rank_min=0.0, take_profit=None,
                             stop_multiple=None, exit_dte=0, max_open=1, entry_every_days=1)


@functools.cache
def _days() -> pd.DatetimeIndex:
    days = xnys_sessions()[0]
    return days[(days >= "2025-01-02") & (days <= "2025-06-30")]


def spy_frame(returns, noise: float = 0.003, seed: int = 1) -> pd.DataFrame:
    """Daily SPY bars from 500 with the given daily log returns (cycled) plus seeded noise."""
    days = _days()
    rng = np.random.default_rng(seed)
    steps = np.resize(np.asarray(returns, dtype=float), len(days)) + rng.normal(0, noise, len(days))
    close = 500.0 * np.exp(np.cumsum(steps))
    open_ = np.r_[500.0, close[:-1]]
    index = pd.DatetimeIndex(days).tz_localize("America/New_York").tz_convert("UTC")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + 1.0,
                         "low": np.minimum(open_, close) - 1.0, "close": close,
                         "volume": 1e6}, index=index)


@contextmanager
def market(returns, **kwargs):
    bars = spy_frame(returns, **kwargs)
    with FakeAlpaca({"SPY": bars}, start=START, options=OptionsSpec(strikes=STRIKES)) as fake:
        fake.bars = bars
        yield fake


def options_for(fake) -> AlpacaOptions:
    return AlpacaOptions(connection(fake))


def to(fake):
    """``wait_until`` for the fake: move its market time to ``t`` (never backwards)."""
    def wait(t: pd.Timestamp) -> pd.Timestamp:
        fake.clock.set(max(t, fake.clock.now()))
        return fake.clock.now()
    return wait


def paper(fake, store, spec, sessions, run_id="r1", iv_history=NO_HISTORY, options=None, **kw):
    return run_options_paper(spec, store, run_id, "SPY", iv_history, sessions,
                             options or options_for(fake), wait_until=to(fake), **kw)


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def send(self, kind, title, body, level="info") -> None:
        self.sent.append((kind, title, body, level))


def held_at_broker(fake) -> dict[str, float]:
    return {s: q for s, q in fake.options.position_qty().items()}


def book_legs(store, run_id="r1") -> dict[str, float]:
    """Contracts the stored book says the account holds, per OCC symbol."""
    from framework.options.occ import occ_symbol

    out: dict[str, float] = {}
    for spread in store.broker_state(run_id)["spreads"]:
        if spread["status"] in ("open", "closing"):
            for leg in spread["legs"]:
                symbol = occ_symbol("SPY", leg["expiry"], leg["right"], leg["strike"])
                out[symbol] = out.get(symbol, 0) + leg["ratio"] * spread["contracts"]
    return out


def kinds(store, kind, run_id="r1") -> list[str]:
    return [e["message"] for e in store.events(run_id, limit=5000) if e["kind"] == kind]


# -- exits --------------------------------------------------------------------------------------
def test_take_profit_stop_and_dte_exits_from_live_quotes():
    store, alerts = Store("sqlite://"), Alerts()
    with market(REGIMES) as fake:
        out = paper(fake, store, MANAGED, 60, alerter=alerts)
        broker = held_at_broker(fake)
    assert out["status"] == "finished" and out["steps"] == 60 and out["halted"] is None
    by_reason: dict[str, list] = {}
    for trade in out["trades"]:
        by_reason.setdefault(trade["reason"], []).append(trade)
    assert {"take_profit", "stop", "dte"} <= set(by_reason)
    for trade in by_reason["take_profit"]:
        assert trade["debit"] <= 0.5 * trade["credit"] + 1e-9 and trade["pnl"] > 0
    for trade in by_reason["stop"]:
        assert trade["debit"] - trade["credit"] >= trade["credit"] - 1e-9 and trade["pnl"] < 0
    for trade in by_reason["dte"]:
        left = (pd.Timestamp(trade["expiry"]) - pd.Timestamp(trade["exit_date"])).days
        assert 0 < left <= 7
        assert trade["pnl"] == pytest.approx(
            (trade["credit"] - trade["debit"]) * 100 * trade["contracts"])
    entries = sorted(pd.Timestamp(t["entry_date"]) for t in out["trades"] + out["open"])
    gaps = [len(_days()[(_days() > a) & (_days() <= b)]) for a, b in zip(entries, entries[1:], strict=False)]
    assert min(gaps) >= MANAGED.entry_every_days  # at most one entry per 5 sessions
    # the stored book is what the broker holds, and every trade has its events and alerts
    assert book_legs(store) == broker
    assert len(kinds(store, "options_entry")) >= 2 * len(entries)
    assert sum("closed (" in m for m in kinds(store, "options_exit")) == len(out["trades"])
    assert sum(a[0] == "trade" for a in alerts.sent) >= len(out["trades"]) + len(entries)
    assert summary(store, "r1")["trades"] == out["trades"]


def test_expiry_out_of_the_money_keeps_the_credit():
    store = Store("sqlite://")
    with market([0.002]) as fake:
        out = paper(fake, store, TO_EXPIRY, 25)
        assert held_at_broker(fake) == book_legs(store)
    first = out["trades"][0]
    assert first["reason"] == "expiry" and first["exit_date"] == first["expiry"]
    assert first["debit"] == 0.0
    assert first["pnl"] == pytest.approx(first["credit"] * 100 * first["contracts"])
    assert first["pnl"] > 0


def test_assignment_settles_at_intrinsic_and_closes_the_delivered_shares():
    store = Store("sqlite://")
    with market([-0.0035], noise=0.0) as fake:
        out = paper(fake, store, TO_EXPIRY, 25)
        shares = fake.positions()
        bars = fake.bars
    first = out["trades"][0]
    assert first["reason"] == "assignment" and first["pnl"] < 0
    short = max(float(leg.split()[2]) for leg in first["legs"].split("; "))
    day = pd.Timestamp(first["expiry"]).tz_localize("America/New_York").tz_convert("UTC")
    settle = float(bars.loc[day, "close"])
    assert short - 5.0 < settle < short  # only the short put finished in the money
    assert first["debit"] == pytest.approx(short - settle)
    assert shares.get("SPY", 0.0) == 0.0  # the assigned shares were sold again
    assert any("shares delivered" in m for m in kinds(store, "options_settle"))


# -- the entry gate -----------------------------------------------------------------------------
@pytest.mark.parametrize(("rank_min", "entered"), [(0.5, False), (0.3, True)])
def test_iv_rank_gate_uses_the_history_with_todays_atm_iv(rank_min, entered):
    # history 0.10 .. 0.30; the fake quotes a flat 18 % ATM vol: a rank of about 0.4
    history = pd.Series(np.linspace(0.10, 0.30, 252),
                        index=pd.bdate_range(end="2025-01-03", periods=252))
    spec = MANAGED.with_overrides({"iv_rank_min": rank_min, "iv_rank_window": 252})
    store = Store("sqlite://")
    with market([0.0]) as fake:
        out = paper(fake, store, spec, 3, iv_history=history)
        orders = fake.options.orders()
    assert (len(out["open"]) == 1) is entered and (len(orders) == 1) is entered
    skips = kinds(store, "options_skip")
    if entered:
        assert all("sessions since the last entry" in m for m in skips)
    else:
        assert len(skips) == 3 and all("iv_rank 0.4" in m and "below" in m for m in skips)
    book = store.broker_state("r1")
    assert len(book["iv_seen"]) == 3  # today's ATM IV joins the history each session


# -- crash safety and unclear outcomes ------------------------------------------------------
def test_crash_between_store_and_submit_resumes_with_exactly_one_order():
    sessions = 12
    with market(REGIMES) as fake:
        plain = Store("sqlite://")
        paper(fake, plain, MANAGED, sessions)
        plain_orders = [o["client_order_id"] for o in fake.options.orders()]
    with market(REGIMES) as fake:
        store = Store("sqlite://")
        crashing = options_for(fake)
        stored = {}

        def killed(position, cid, **kwargs):
            stored.update(store.broker_state("r1"))
            raise RuntimeError("killed after the store write")

        crashing.submit_spread = killed
        with pytest.raises(RuntimeError, match="killed"):
            paper(fake, store, MANAGED, sessions, options=crashing)
        (spread,) = stored["spreads"]
        assert spread["status"] == "opening" and spread["open"]["state"] == "pending"
        assert fake.options.orders() == [] and store.run("r1")["status"] == "interrupted"
        out = paper(fake, store, MANAGED, sessions)  # a new process resumes the same session
        orders = [o["client_order_id"] for o in fake.options.orders()]
    assert orders.count(spread["open"]["cid"]) == 1
    assert orders == plain_orders
    assert store.broker_state("r1")["spreads"] == plain.broker_state("r1")["spreads"]
    assert out["trades"] == summary(plain, "r1")["trades"]


def test_a_504_after_accept_on_the_opening_order_is_resolved_by_lookup():
    store = Store("sqlite://")
    with market([0.0]) as fake:
        fake.faults.accept_then_fail = 504
        out = paper(fake, store, MANAGED, 1)
        posts = [r for r in fake.requests if r["method"] == "POST" and r["path"] == "/v2/orders"]
        orders = fake.options.orders()
        assert held_at_broker(fake) == book_legs(store)
    assert len(orders) == 1 and len(posts) == 1 and [r["status"] for r in posts] == [504]
    (spread,) = out["open"]
    assert spread["status"] == "open" and spread["contracts"] > 0


def test_partial_fill_opens_what_filled_and_the_rest_is_cancelled_next_session():
    store = Store("sqlite://")
    with market([0.0]) as fake:
        fake.faults.partial_fills = [0.5, 0.5]
        first = paper(fake, store, MANAGED, 1)
        fake.faults.partial_fills = None
        fake.clock.set("2025-01-06 21:30Z")  # after the close: the DAY order expired unfilled
        second = paper(fake, store, MANAGED, 1)
        (order,) = fake.options.orders()
        assert held_at_broker(fake) == book_legs(store)
    (pending,) = first["open"]
    wanted = pending["contracts"]
    assert pending["status"] == "opening" and wanted >= 2
    (spread,) = second["open"]
    assert spread["status"] == "open" and spread["contracts"] == round(wanted * 0.5)
    assert order["status"] in ("expired", "canceled") and float(order["filled_qty"]) < wanted


# -- reconciliation -----------------------------------------------------------------------------
def test_a_foreign_option_position_halts_the_run():
    store, alerts = Store("sqlite://"), Alerts()
    with market([0.0]) as fake:
        paper(fake, store, MANAGED, 1)
        options = options_for(fake)
        foreign = OptionPosition("SPY", (Leg("C", 560, "2025-02-21", -1, 0.0),
                                         Leg("C", 570, "2025-02-21", 1, 0.0)))
        options.submit_spread(foreign, "someone-else")
        out = paper(fake, store, MANAGED, 2, alerter=alerts)
        again = paper(fake, store, MANAGED, 1)
        orders = fake.options.orders()
    assert out["status"] == "halted" and out["steps"] == 0
    assert "SPY250221C00560000" in out["halted"] and "foreign" in out["halted"]
    assert again["status"] == "halted" and len(orders) == 2  # nothing traded once halted
    assert kinds(store, "halt") and any(a[0] == "halt" for a in alerts.sent)


def test_a_spread_closed_outside_the_runner_is_closed_in_the_book():
    store = Store("sqlite://")
    with market([0.0]) as fake:
        first = paper(fake, store, MANAGED, 1)
        (spread,) = first["open"]
        book = store.broker_state("r1")["spreads"][0]
        legs = tuple(Leg(leg["right"], leg["strike"], leg["expiry"],
                         -leg["ratio"] * spread["contracts"], 0.0) for leg in book["legs"])
        options_for(fake).submit_spread(OptionPosition("SPY", legs), "by-hand", intent="close")
        out = paper(fake, store, MANAGED, 1)
    (trade,) = out["trades"]
    assert trade["reason"] == "external" and trade["pnl"] is None
    assert any("no longer held" in m for m in kinds(store, "options_reconcile"))


def test_dry_run_decides_but_sends_nothing():
    store = Store("sqlite://")
    with market([0.0]) as fake:
        out = paper(fake, store, MANAGED, 2, dry_run=True)
        assert fake.options.orders() == []
    assert out["open"] == [] and out["trades"] == []
    assert any("dry run, not sent" in m for m in kinds(store, "options_entry"))


def test_a_restart_just_before_the_close_steps_that_session():
    after = pd.Timestamp("2025-01-06 20:55Z")  # 15:55 New York, the 15:50 step time is past
    assert decision_times(after, 1)[0] == pd.Timestamp("2025-01-06 20:50Z")
    with market([0.0]) as fake:
        runner = OptionsRunner(MANAGED, options_for(fake), Store("sqlite://"), "r1", "SPY",
                               NO_HISTORY)
        runner.book["halted"] = "test"
        with pytest.raises(OptionsHalted, match="halted: test"):
            runner.step(fake.clock.now())


def test_an_opening_order_left_unfilled_is_cancelled_at_the_next_step():
    # decided after the close (the order waits for the open); the next day SPY is up 1 %, the
    # credit shrank and the limit is no longer marketable: the runner cancels it
    store = Store("sqlite://")
    with market([0.01], noise=0.0) as fake:
        runner = OptionsRunner(MANAGED, options_for(fake), store, "r1", "SPY", NO_HISTORY)
        fake.clock.set("2025-01-06 21:30Z")
        runner.step(fake.clock.now())
        (spread,) = runner.spreads()
        assert spread["status"] == "opening" and spread["open"]["state"] == "sent"
        fake.clock.set("2025-01-07 20:50Z")
        runner.step(fake.clock.now())
        (order,) = fake.options.orders()
    assert order["status"] == "canceled" and float(order["filled_qty"]) == 0.0
    assert spread["status"] == "void"
    assert any("ended canceled unfilled" in m for m in kinds(store, "options_order"))
