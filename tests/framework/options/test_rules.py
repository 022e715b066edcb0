"""Tests of framework.options.rules: the backtest's credit-spread rules on an option chain.

Scenario tables pin exit_reason, entry_gate, pick_expiry and size_contracts by hand; a property
test checks exit_reason against the backtest's own rule; the parity test runs the backtest and
checks that build_entry picks, on each day's synthetic chain, the contracts the backtest opened.
"""

from __future__ import annotations

import math
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.data.calendars import xnys_sessions
from framework.errors import ConfigError, DataError
from framework.options.backtest import CreditSpreadSpec, _Simulation, backtest_options
from framework.options.chains import CHAIN_COLUMNS, OptionChain
from framework.options.ivrank import iv_rank
from framework.options.legs import Leg, OptionPosition
from framework.options.occ import occ_code
from framework.options.rules import (
    atm_iv_30,
    build_entry,
    closing_debit,
    entry_credit,
    entry_gate,
    exit_reason,
    iv_rank_today,
    max_loss_per_contract,
    pick_expiry,
    sessions_since,
    size_contracts,
    wing_width,
)
from framework.options.synthetic import DEFAULT_SPEC, synthetic_chain

SESSIONS = xnys_sessions()[0]
TODAY = date(2024, 3, 1)
EXPIRY = date(2024, 3, 29)
SPEC = CreditSpreadSpec(take_profit=0.5, stop_multiple=2.0, exit_dte=21)


# -- exit_reason --------------------------------------------------------------------------
@pytest.mark.parametrize(("credit", "debit", "dte", "spec", "expected"), [
    (1.00, 0.50, 30, SPEC, "take_profit"),          # debit == (1 - 0.5) x credit: inclusive
    (1.00, 0.51, 30, SPEC, None),
    (1.00, 3.00, 30, SPEC, "stop"),                 # loss 2.00 == 2 x credit: inclusive
    (1.00, 2.99, 30, SPEC, None),
    (1.00, 0.80, 21, SPEC, "dte"),                  # DTE == exit_dte: inclusive
    (1.00, 0.80, 22, SPEC, None),
    (1.00, 0.40, 5, SPEC, "take_profit"),           # take profit is checked before DTE
    (1.00, 3.50, 5, SPEC, "stop"),                  # stop is checked before DTE
    (1.00, -0.05, 30, SPEC, "take_profit"),         # a negative debit (paid to close) still counts
    (1.00, 0.10, 30, SPEC.with_overrides({"take_profit": None}), None),
    (1.00, 9.00, 30, SPEC.with_overrides({"stop_multiple": None}), None),
    (1.00, 1.00, 0, SPEC.with_overrides({"exit_dte": 0, "take_profit": None,
                                          "stop_multiple": None}), "dte"),
    (0.40, 0.00, 30, SPEC.with_overrides({"take_profit": 1.0}), "take_profit"),  # tp 1: debit 0
    (0.40, 0.01, 30, SPEC.with_overrides({"take_profit": 1.0}), None),
    (0.50, 1.00, 30, SPEC.with_overrides({"stop_multiple": 1.0}), "stop"),
])
def test_exit_reason_table(credit, debit, dte, spec, expected):
    assert exit_reason(credit, debit, dte, spec) == expected


@given(credit=st.floats(0.01, 10.0), debit=st.floats(-1.0, 20.0), dte=st.integers(0, 60),
       tp=st.one_of(st.none(), st.floats(0.05, 1.0)), stop=st.one_of(st.none(),
                                                                    st.floats(0.1, 5.0)),
       exit_dte=st.integers(0, 29))
def test_exit_reason_is_the_backtests_rule(credit, debit, dte, tp, stop, exit_dte):
    spec = CreditSpreadSpec(take_profit=tp, stop_multiple=stop, exit_dte=exit_dte)
    position = SimpleNamespace(spec=spec, credit=credit)
    assert exit_reason(credit, debit, dte, spec) == _Simulation._exit_reason(
        position, debit, dte, last=False)


# -- the entry gate and sizing --------------------------------------------------------------
GATED = CreditSpreadSpec(iv_rank_min=0.5, max_open=2, entry_every_days=5)


@pytest.mark.parametrize(("rank", "open_count", "since", "spec", "ok", "words"), [
    (0.50, 0, None, GATED, True, "ok"),
    (0.49, 0, None, GATED, False, "iv_rank 0.490 below"),
    (math.nan, 0, None, GATED, False, "undefined"),
    (None, 0, None, GATED, False, "undefined"),
    (None, 0, None, GATED.with_overrides({"iv_rank_min": 0.0}), True, "ok"),  # gate off
    (0.90, 2, None, GATED, False, "max_open 2"),
    (0.90, 1, 4, GATED, False, "4 sessions since"),
    (0.90, 1, 5, GATED, True, "ok"),
    (0.10, 5, 0, GATED, False, "iv_rank"),  # the first failing rule is reported
])
def test_entry_gate_table(rank, open_count, since, spec, ok, words):
    passed, why = entry_gate(rank, open_count, since, spec)
    assert passed is ok and words in why


@pytest.mark.parametrize(("equity", "per_contract", "at_risk", "expected"), [
    (100_000.0, 450.0, 0.0, 4),       # floor(2000 / 450)
    (100_000.0, 2_500.0, 0.0, 1),     # 0 by the budget, but within 2 x budget: one contract
    (100_000.0, 4_100.0, 0.0, 0),     # beyond 2 x budget
    (10_000.0, 40.0, 9_900.0, 2),     # cut by the room left under equity
    (10_000.0, 40.0, 10_000.0, 0),
])
def test_size_contracts_table(equity, per_contract, at_risk, expected):
    assert size_contracts(SPEC, equity, per_contract, at_risk) == expected


def test_size_contracts_refuses_a_bad_max_loss():
    with pytest.raises(ConfigError, match="max loss per contract"):
        size_contracts(SPEC, 1e5, 0.0)


# -- expiry choice --------------------------------------------------------------------------
@pytest.mark.parametrize(("dtes", "expected"), [
    ([20, 33, 44, 60], 33),   # the window 30..45, middle 37.5: 33 is 4.5 away, 44 is 6.5
    ([34, 41], 34),           # both 3.5 away: the earlier
    ([29, 46], None),         # nothing inside the window
    ([30], 30), ([45], 45),   # the bounds are inside
])
def test_pick_expiry_table(dtes, expected):
    listed = [TODAY + pd.Timedelta(days=d) for d in dtes]
    picked = pick_expiry(reversed(listed), TODAY, SPEC)
    assert (None if picked is None else (picked - TODAY).days) == expected


# -- strikes on a hand-made chain -------------------------------------------------------------
def chain_of(rows, spot=100.0, snapshot="2024-03-01 21:00Z") -> OptionChain:
    """A chain from (right, strike, bid, ask, delta) rows expiring EXPIRY."""
    frame = pd.DataFrame([{
        "underlying": "SPY", "snapshot": pd.Timestamp(snapshot), "underlying_price": spot,
        "expiry": EXPIRY, "right": r, "strike": float(k), "bid": b, "ask": a, "last": np.nan,
        "volume": np.nan, "open_interest": np.nan, "iv": 0.2, "delta": d,
        "contract": occ_code("SPY", EXPIRY, r, k)} for r, k, b, a, d in rows])
    return OptionChain(frame[[*CHAIN_COLUMNS, "delta"]])


PUTS = [("P", 85, 0.10, 0.12, -0.05), ("P", 90, 0.30, 0.33, -0.15), ("P", 95, 0.90, 0.95, -0.25),
        ("P", 100, 2.00, 2.10, -0.50)]


def test_build_entry_puts_short_at_delta_and_wing_at_width():
    spec = CreditSpreadSpec(short_delta=0.15, width=5.0, dte_min=20, dte_max=40, exit_dte=7)
    position = build_entry(chain_of(PUTS), TODAY, spec)
    assert [(leg.right, leg.strike, leg.quantity, leg.premium) for leg in position.legs] == [
        ("P", 90.0, -1, 0.30), ("P", 85.0, 1, 0.12)]
    assert entry_credit(position) == pytest.approx(0.18)
    assert wing_width(position) == 5.0
    assert max_loss_per_contract(position) == pytest.approx((5.0 - 0.18) * 100)


def test_build_entry_ties_go_farther_out_and_wider():
    # |delta| 0.125 and 0.375 are exactly 0.125 from 0.25: the farther OTM strike wins; the wing
    # target lies exactly halfway between two strikes: the wider wing wins (binary-exact values)
    spec = CreditSpreadSpec(short_delta=0.25, width=5.0, dte_min=20, dte_max=40, exit_dte=7)
    puts = [("P", 80, 0.05, 0.07, -0.0625), ("P", 85, 0.08, 0.10, -0.09),
            ("P", 90, 0.20, 0.22, -0.10), ("P", 92.5, 0.30, 0.33, -0.125),
            ("P", 95, 0.60, 0.62, -0.375), ("P", 100, 2.0, 2.1, -0.5)]
    position = build_entry(chain_of(puts), TODAY, spec)
    assert [leg.strike for leg in position.legs] == [92.5, 85.0]  # target 87.5: 85 or 90
    calls = [("C", 100, 2.0, 2.1, 0.5), ("C", 105, 0.6, 0.62, 0.375),
             ("C", 107.5, 0.3, 0.33, 0.125), ("C", 110, 0.2, 0.22, 0.1),
             ("C", 115, 0.08, 0.1, 0.07)]
    position = build_entry(chain_of(calls), TODAY, spec.with_overrides({"kind": "bear_call"}))
    assert [leg.strike for leg in position.legs] == [107.5, 115.0]  # target 112.5: 110 or 115


def test_build_entry_iron_condor_has_both_sides_puts_first():
    calls = [("C", 100, 2.0, 2.1, 0.5), ("C", 105, 0.8, 0.85, 0.25), ("C", 110, 0.3, 0.33, 0.15),
             ("C", 115, 0.1, 0.12, 0.05)]
    spec = CreditSpreadSpec(kind="iron_condor", short_delta=0.15, width=5.0, dte_min=20,
                            dte_max=40, exit_dte=7)
    position = build_entry(chain_of(PUTS + calls), TODAY, spec)
    assert [(leg.right, leg.strike, leg.quantity) for leg in position.legs] == [
        ("P", 90.0, -1), ("P", 85.0, 1), ("C", 110.0, -1), ("C", 115.0, 1)]
    assert entry_credit(position) == pytest.approx(0.30 - 0.12 + 0.30 - 0.12)


@pytest.mark.parametrize(("rows", "spec_change"), [
    ([("P", 90, 0.30, 0.33, -0.15), ("P", 95, 0.9, 0.95, -0.25)], {}),  # no strike beyond
    (PUTS, {"dte_min": 40, "dte_max": 50, "exit_dte": 7}),                 # no expiry in window
    ([("P", 85, 0.40, 0.45, -0.05), ("P", 90, 0.30, 0.33, -0.15)], {}),  # wing dearer: no credit
])
def test_build_entry_returns_none_when_the_chain_offers_nothing(rows, spec_change):
    spec = CreditSpreadSpec(short_delta=0.15, width=5.0, dte_min=20, dte_max=40,
                            exit_dte=7).with_overrides(spec_change)
    assert build_entry(chain_of(rows), TODAY, spec) is None


def test_closing_debit_buys_shorts_at_the_ask_and_sells_wings_at_the_bid():
    position = OptionPosition("SPY", (Leg("P", 90, EXPIRY, -3, 0.3), Leg("P", 85, EXPIRY, 3, 0.12)))
    assert closing_debit(position, chain_of(PUTS)) == pytest.approx(0.33 - 0.10)
    missing = OptionPosition("SPY", (Leg("P", 70, EXPIRY, -1, 0.3), Leg("P", 65, EXPIRY, 1, 0.1)))
    with pytest.raises(DataError, match="no ask for P 70"):
        closing_debit(missing, chain_of(PUTS))


# -- IV rank and sessions -------------------------------------------------------------------
def test_iv_rank_today_appends_today_and_ignores_the_future():
    days = pd.bdate_range("2024-01-01", periods=10)
    history = pd.Series(np.linspace(0.10, 0.30, 10), index=days)
    today = days[5].date()  # history up to day 4 (0.10 .. 0.19) + today's 0.15
    rank = iv_rank_today(history, today, 0.15, window=6)
    expected = np.asarray(iv_rank(np.r_[history.to_numpy()[:5], 0.15], 6))[-1]
    assert rank == pytest.approx(expected) and 0 < rank < 1
    assert math.isnan(iv_rank_today(history.iloc[:2], today, 0.2, window=6))  # warm-up


def test_sessions_since_counts_sessions_not_days():
    assert sessions_since(None, "2024-07-08", SESSIONS) is None
    assert sessions_since("2024-07-03", "2024-07-05", SESSIONS) == 1  # 4 July is a holiday
    assert sessions_since("2024-07-01", "2024-07-08", SESSIONS) == 4


def test_atm_iv_30_reads_the_surface_at_the_month():
    chain = synthetic_chain("2024-03-01", 500.0, 0.18, DEFAULT_SPEC.with_overrides(
        {"iv_source": "atm"}), underlying="SPY", sessions=SESSIONS)
    assert atm_iv_30(chain, "2024-03-01") == pytest.approx(0.18, abs=0.01)


# -- parity with the backtest -------------------------------------------------------------------
PARITY_DAYS = SESSIONS[(SESSIONS >= "2024-01-02") & (SESSIONS <= "2024-02-02")]
RATE, DIV = 0.03, 0.01


@pytest.fixture(scope="module")
def parity_market():
    rng = np.random.default_rng(7)
    n = len(PARITY_DAYS)
    close = pd.Series(450 * np.exp(np.cumsum(rng.normal(0, 0.012, n))), index=PARITY_DAYS,
                      name="SPY")
    vix = pd.Series(14 + 6 * np.sin(np.arange(n) / 4.0), index=PARITY_DAYS)
    return close, vix


@pytest.mark.parametrize(("kind", "delta", "width"), [
    ("bull_put", 0.20, 5.0), ("bear_call", 0.25, 7.0), ("iron_condor", 0.16, 10.0)])
def test_build_entry_opens_what_the_backtest_opens(parity_market, kind, delta, width):
    close, vix = parity_market
    spec = CreditSpreadSpec(kind=kind, short_delta=delta, width=width, iv_rank_min=0.0,
                            max_open=100, entry_every_days=1, take_profit=None,
                            stop_multiple=None, exit_dte=0, risk_per_trade=0.01)
    result = backtest_options(close, vix, spec, rate=RATE, div=DIV)
    opened = result.fills[result.fills["action"] == "open"]
    by_day = opened.groupby("date")["symbol"].apply(sorted)
    credits = result.trades.set_index("entry_date")["credit"]
    assert len(by_day) == len(PARITY_DAYS) - 1  # an entry every day but the last
    for day in PARITY_DAYS[:-1]:
        chain = synthetic_chain(day.date(), close[day], vix[day], DEFAULT_SPEC, RATE, DIV,
                                underlying="SPY", sessions=SESSIONS)
        position = build_entry(chain, day.date(), spec)
        assert position is not None, day
        mine = sorted(occ_code("SPY", leg.expiry, leg.right, leg.strike) for leg in position.legs)
        assert mine == by_day[day], day
        assert entry_credit(position) == pytest.approx(credits[day], abs=1e-9)
