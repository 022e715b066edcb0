"""Tests of framework.options.backtest: exit reasons, P&L arithmetic, gates, causality, schedule,
agreement with a slow full-chain reference, and a real-data run."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.calendars import xnys_sessions
from framework.errors import ConfigError, DataError
from framework.metrics import summarize
from framework.options.backtest import (
    EXIT_REASONS,
    CreditSpreadSchedule,
    CreditSpreadSpec,
    backtest_options,
    prepare_market,
    run_options_backtest,
)
from framework.options.bsm import bsm_greeks, bsm_price
from framework.options.ivrank import iv_rank
from framework.options.synthetic import (
    DEFAULT_SPEC,
    anchor_atm_iv,
    listed_expiries,
    synthetic_chain,
)

SESSIONS = xnys_sessions()[0]
DAYS = SESSIONS[(SESSIONS >= "2024-01-02") & (SESSIONS <= "2024-12-31")]
VOL = 0.20
# A flat-vol world: no skew, no term structure (long run = the level), one-tick spreads, so a
# quote is BSM at 20 % rounded out to the cent and the tests can price it by hand.
FLAT = DEFAULT_SPEC.with_overrides({
    "iv_source": "atm", "skew_put_slope": 0.0, "skew_call_slope": 0.0,
    "term_long_run": VOL, "spread_base": 0.0, "spread_frac": 0.0, "spread_moneyness": 0.0,
})
HOLD = {"take_profit": None, "stop_multiple": None, "exit_dte": 0, "iv_rank_min": 0.0}


def path(kind: str, n: int = 80, start: float = 100.0) -> pd.Series:
    steps = {"flat": 1.0, "rising": 1.003, "falling": 0.99, "slow_fall": 0.995}[kind]
    return pd.Series(start * steps ** np.arange(n), index=DAYS[:n], name="SPY")


def flat_world(closes: pd.Series, vol: float = VOL) -> pd.Series:
    return pd.Series(vol, index=closes.index)


def run_flat(closes, spec, **kwargs):
    return backtest_options(closes, flat_world(closes), spec, FLAT, **kwargs)


def flat_quote(spot, strike, dte, call):
    """(bid, ask) of the flat world by hand: BSM at 20 %, half a cent out, rounded to the cent."""
    price = float(bsm_price(spot, strike, dte / 365.0, 0.0, 0.0, VOL, call))
    bid = math.floor(round((max(price - 0.005, 0.0)) / 0.01 + 1e-9, 9)) * 0.01
    ask = max(math.ceil(round((price + 0.005) / 0.01 - 1e-9, 9)), 1) * 0.01
    return round(bid, 10), round(ask, 10)


def trade_fills(result, trade_id):
    return result.fills[result.fills["trade_id"] == trade_id]


def check_pnl_arithmetic(result) -> None:
    """pnl = (credit - exit debit) x 100 x contracts - commissions, with every part from fills."""
    for trade in result.trades.itertuples():
        fills = trade_fills(result, trade.trade_id)
        opening = fills[fills["action"] == "open"]
        closing = fills[fills["action"] != "open"]
        credit = -(opening["quantity"] * opening["price"]).sum() / trade.contracts
        debit = (closing["quantity"] * closing["price"]).sum() / trade.contracts
        assert credit == pytest.approx(trade.credit, abs=1e-9)
        assert debit == pytest.approx(trade.exit_debit, abs=1e-9)
        assert fills["commission"].sum() == pytest.approx(trade.commissions, abs=1e-9)
        expected = (trade.credit - trade.exit_debit) * 100 * trade.contracts - trade.commissions
        assert trade.pnl == pytest.approx(expected, abs=1e-6)
    final = result.equity.iloc[-1]
    assert final == pytest.approx(100_000 + result.trades["pnl"].sum(), abs=1e-6)


# -- hand scenarios ----------------------------------------------------------------------------

SCENARIOS = [
    # name, path, spec overrides, expected reason of the first trade
    ("take_profit", "flat", {**HOLD, "take_profit": 0.25}, "take_profit"),
    ("stop", "falling", {**HOLD, "stop_multiple": 1.0}, "stop"),
    ("dte", "flat", {**HOLD, "exit_dte": 21}, "dte"),
    ("expiry", "rising", HOLD, "expiry"),
    ("assignment", "slow_fall", HOLD, "assignment"),
    ("bear_call_stop", "rising", {**HOLD, "kind": "bear_call", "stop_multiple": 0.5}, "stop"),
    ("condor_expiry", "flat", {**HOLD, "kind": "iron_condor"}, "expiry"),
]


@pytest.mark.parametrize(("name", "kind", "overrides", "reason"), SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_exit_reasons_and_pnl(name, kind, overrides, reason):
    closes = path(kind)
    spec = CreditSpreadSpec(**{"max_open": 1, **overrides})
    result = run_flat(closes, spec)
    first = result.trades.iloc[0]
    assert first["exit_reason"] == reason
    assert first["entry_date"] == closes.index[0]
    check_pnl_arithmetic(result)
    assert set(result.trades["exit_reason"]) <= set(EXIT_REASONS)


def test_bull_put_entry_by_hand():
    """Strikes, credit, sizing and exit debits recomputed with plain BSM in the flat world."""
    closes = path("flat")
    spec = CreditSpreadSpec(**{**HOLD, "take_profit": 0.25, "max_open": 1})
    result = run_flat(closes, spec)
    trade = result.trades.iloc[0]
    dte = trade["dte_at_entry"]
    assert dte == 38  # Fridays 31, 38 and 45 days out: 38 is nearest the window's middle
    strikes = np.arange(60.0, 101.0)
    delta = bsm_greeks(100.0, strikes, dte / 365.0, 0.0, 0.0, VOL, False).delta
    short = strikes[np.argmin(np.abs(np.abs(delta) - 0.20))]
    bid, _ = flat_quote(100.0, short, dte, False)
    _, ask = flat_quote(100.0, short - 5, dte, False)
    assert trade["legs"].startswith(f"-{trade['contracts']} P {short:g} ")
    assert trade["credit"] == pytest.approx(bid - ask, abs=1e-9)
    per_contract = (5.0 - trade["credit"]) * 100
    assert trade["contracts"] == math.floor(0.02 * 100_000 / per_contract)
    assert trade["max_loss"] == pytest.approx(per_contract * trade["contracts"])
    deltas = bsm_greeks(100.0, np.array([short, short - 5]), dte / 365.0, 0.0, 0.0, VOL,
                        False).delta
    expected_delta = trade["contracts"] * 100 * (deltas[1] - deltas[0])  # short put: + delta
    assert result.positions["net_delta"].iloc[0] == pytest.approx(expected_delta, rel=1e-9)
    assert result.positions["max_loss"].iloc[0] == trade["max_loss"]
    # take profit: the first close where the executable debit <= 75 % of the credit
    expiry = trade["expiry"]
    for day in closes.index[1:]:
        left = (expiry - day).days
        debit = flat_quote(100.0, short, left, False)[1] - flat_quote(100.0, short - 5, left,
                                                                      False)[0]
        if debit <= 0.75 * trade["credit"] + 1e-12:
            assert day == trade["exit_date"]
            assert trade["exit_debit"] == pytest.approx(debit, abs=1e-9)
            break
    else:
        pytest.fail("the hand loop never reached the take-profit debit")


def test_expiry_and_assignment_settle_at_intrinsic():
    closes = path("slow_fall")
    result = run_flat(closes, CreditSpreadSpec(**{**HOLD, "max_open": 1}))
    trade = result.trades.iloc[0]
    spot = closes[closes.index <= trade["expiry"]].iloc[-1]
    short = float(trade["legs"].split()[2])
    expected = min(max(short - spot, 0.0), 5.0)  # put spread: intrinsic difference
    assert spot < short - 5  # both legs finished in the money
    assert trade["exit_debit"] == pytest.approx(expected)
    fills = trade_fills(result, trade["trade_id"])
    settled = fills[fills["action"] != "open"]
    assert sorted(settled["action"]) == ["assign", "exercise"]
    n = trade["contracts"]
    fee = FLAT.commission(n)
    assert settled["commission"].sum() == pytest.approx(2 * fee)
    expected_pnl = (trade["credit"] - 5.0) * 100 * n - FLAT.commission(2 * n) - 2 * fee
    assert trade["pnl"] == pytest.approx(expected_pnl)
    # rising path: everything expires worthless, no settlement commission
    result = run_flat(path("rising"), CreditSpreadSpec(**{**HOLD, "max_open": 1}))
    trade = result.trades.iloc[0]
    assert trade["exit_reason"] == "expiry" and trade["exit_debit"] == 0
    assert trade["pnl"] == pytest.approx(trade["credit"] * 100 * trade["contracts"]
                                         - FLAT.commission(2 * trade["contracts"]))


def test_end_of_window_closes_open_positions():
    closes = path("flat", n=20)
    result = run_flat(closes, CreditSpreadSpec(**{**HOLD, "max_open": 2}))
    assert (result.trades["exit_reason"] == "end").all()
    assert (result.trades["exit_date"] == closes.index[-1]).all()
    assert result.positions["open_positions"].iloc[-1] == 0
    check_pnl_arithmetic(result)


def test_max_open_and_entry_spacing():
    closes = path("flat", n=120)
    spec = CreditSpreadSpec(**{**HOLD, "max_open": 3, "entry_every_days": 5})
    result = run_flat(closes, spec)
    trades = result.trades.sort_values("entry_date")
    positions = result.positions["open_positions"]
    assert positions.max() == 3
    entry_index = closes.index.get_indexer(trades["entry_date"])
    assert (np.diff(entry_index) >= 5).all()
    assert list(entry_index[:3]) == [0, 5, 10]  # flat vol: every gate passes on time
    # the fourth waits for the first to expire
    first_exit = closes.index.get_loc(trades["exit_date"].iloc[0])
    assert entry_index[3] == first_exit


def test_sizing_by_risk_per_trade():
    closes = path("flat", n=30)
    base = run_flat(closes, CreditSpreadSpec(**{**HOLD, "max_open": 1})).trades.iloc[0]
    per_contract = base["max_loss"] / base["contracts"]
    for ratio, expected in ((3.7, 3), (0.6, 1), (0.4, 0)):
        cash = ratio * per_contract / 0.02
        result = run_flat(closes, CreditSpreadSpec(**{**HOLD, "max_open": 1}), initial_cash=cash)
        trades = result.trades
        got = int(trades["contracts"].iloc[0]) if len(trades) else 0
        assert got == expected, ratio


def test_margin_caps_total_max_loss():
    closes = path("flat", n=60)
    result = run_flat(closes, CreditSpreadSpec(**{**HOLD, "risk_per_trade": 0.8}))
    # checked before the fill: the day's close equity is lower by the entry costs only
    assert (result.positions["max_loss"] <= 1.01 * result.equity).all()
    assert result.positions["max_loss"].max() > 0.95 * result.equity.max()
    trades = result.trades.sort_values("entry_date")
    first, second = trades["contracts"].iloc[:2]
    per_contract = trades["max_loss"].iloc[1] / second
    assert second < math.floor(0.8 * 0.99 * 100_000 / per_contract)  # cut to fit the margin


def varying_level(n: int, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    wave = 0.2 + 0.08 * np.sin(np.arange(n) / 6.0) + rng.normal(0, 0.005, n)
    return pd.Series(wave, index=DAYS[:n])


def test_iv_rank_gate():
    closes = path("flat", n=150)
    level = varying_level(150)
    spec = CreditSpreadSpec(**{**HOLD, "iv_rank_min": 0.6, "iv_rank_window": 20, "max_open": 5,
                               "exit_dte": 21})
    result = backtest_options(closes, level, spec, FLAT)
    rank = iv_rank(level, 20)
    assert len(result.trades) >= 3
    for trade in result.trades.itertuples():
        assert rank[trade.entry_date] >= 0.6
        assert trade.iv_rank_at_entry == pytest.approx(rank[trade.entry_date])
    assert result.trades["entry_date"].min() >= DAYS[19]  # nothing during the warm-up
    ungated = backtest_options(closes, level, spec.with_overrides({"iv_rank_min": 0.0}), FLAT)
    assert len(ungated.trades) > len(result.trades)


@settings(max_examples=8, deadline=None)
@given(cut=st.integers(5, 100), seed=st.integers(0, 1000))
def test_causality(cut, seed):
    """Changing prices and vols after day d changes nothing entered or recorded up to d."""
    rng = np.random.default_rng(seed)
    closes = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.012, 120))), index=DAYS[:120])
    level = varying_level(120, seed)
    spec = CreditSpreadSpec(iv_rank_min=0.3, iv_rank_window=10, exit_dte=7, dte_min=20,
                            dte_max=40, entry_every_days=2)
    base = backtest_options(closes, level, spec, FLAT)
    shocked_closes, shocked_level = closes.copy(), level.copy()
    shocked_closes.iloc[cut + 1:] *= 0.8
    shocked_level.iloc[cut + 1:] *= 1.5
    shocked = backtest_options(shocked_closes, shocked_level, spec, FLAT)
    day = closes.index[cut]
    cols = ["entry_date", "legs", "contracts", "credit", "max_loss"]
    before = base.trades[base.trades["entry_date"] <= day][cols].reset_index(drop=True)
    after = shocked.trades[shocked.trades["entry_date"] <= day][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_series_equal(base.equity[:day], shocked.equity[:day])
    done = base.trades[base.trades["exit_date"] <= day].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        done, shocked.trades[shocked.trades["exit_date"] <= day].reset_index(drop=True))


def test_schedule_applies_to_new_entries_only():
    closes = path("flat", n=120)
    hold = CreditSpreadSpec(**{**HOLD, "max_open": 4})
    quick = CreditSpreadSpec(kind="bear_call", iv_rank_min=0.0, take_profit=0.05, exit_dte=21,
                             max_open=4)
    switch = closes.index[12]
    schedule = CreditSpreadSchedule(((closes.index[0], hold), (switch, quick)))
    result = run_flat(closes, schedule)
    trades = result.trades
    old = trades[trades["entry_date"] < switch]
    new = trades[trades["entry_date"] >= switch]
    assert len(old) == 3 and len(new) >= 1
    assert (old["kind"] == "bull_put").all() and (old["spec_index"] == 0).all()
    assert (new["kind"] == "bear_call").all() and (new["spec_index"] == 1).all()
    # opened under "hold": still held to expiry after the switch (quick would take 5 % profit)
    assert set(old["exit_reason"]) == {"expiry"}
    assert (new["exit_reason"].isin(["take_profit", "dte", "end"])).all()
    # a schedule starting later: no entries before its first date
    late = run_flat(closes, [(closes.index[30], hold)])
    assert late.trades["entry_date"].min() == closes.index[30]
    assert late.equity[:closes.index[29]].eq(100_000).all()


def test_dated_rate_and_realized_vol_source():
    closes = path("flat", n=60)
    rates = pd.Series([0.0, 0.05], index=[DAYS[0], DAYS[20]])
    market = prepare_market(closes, flat_world(closes), FLAT, rate=rates, div=0.01)
    assert (market.rate[:20] == 0.0).all() and (market.rate[20:] == 0.05).all()
    assert (market.div == 0.01).all()
    rng = np.random.default_rng(5)
    walk = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 90))), index=DAYS[:90],
                     name="XYZ")
    realized = DEFAULT_SPEC.with_overrides({"iv_source": "realized"})
    result = backtest_options(walk, None, CreditSpreadSpec(iv_rank_min=0.0), realized)
    assert result.equity.index[0] == DAYS[realized.rv_window]  # first full realised window
    assert result.fills["symbol"].str.startswith("XYZ").all() and len(result.trades) > 0
    with pytest.raises(ConfigError, match="realized"):
        backtest_options(walk, flat_world(walk), CreditSpreadSpec(), realized)


def test_listed_expiries_match_synthetic():
    closes = path("flat", n=250)
    market = prepare_market(closes, flat_world(closes), FLAT)
    for i in (0, 50, 55, 58, 120, 200):  # includes the week of Good Friday 2024-03-29
        day = closes.index[i].date()
        expected = [(e - day).days for e in listed_expiries(day, FLAT, SESSIONS)]
        assert list(market.listed_dte(i)) == expected


# -- slow reference: a full synthetic chain per day ----------------------------------------------

REF_CHAIN = DEFAULT_SPEC.with_overrides({"weekly_max_days": 30, "monthly_max_days": 30,
                                         "range_sd_put": 12.0, "range_sd_call": 12.0})


def _ref_choose(frame, day, spot, spec, rate, div):
    expiries = sorted(set(frame["expiry"]))
    listed = [(abs(2 * (e - day).days - spec.dte_min - spec.dte_max), e) for e in expiries
              if spec.dte_min <= (e - day).days <= spec.dte_max]
    if not listed:
        return None
    expiry = min(listed)[1]
    t = (expiry - day).days / 365.0
    sides = {"bull_put": ["P"], "bear_call": ["C"], "iron_condor": ["P", "C"]}[spec.kind]
    legs = []
    for right in sides:
        rows = frame[(frame["expiry"] == expiry) & (frame["right"] == right)]
        rows = rows.sort_values("strike", ascending=right == "P")
        deltas = bsm_greeks(spot, rows["strike"].to_numpy(), t, rate, div, rows["iv"].to_numpy(),
                            right == "C").delta
        errors = [abs(abs(d) - spec.short_delta) for d in deltas]
        short = min(range(len(errors)), key=lambda j: (errors[j], j))
        if short == 0:
            return None
        strikes = rows["strike"].to_numpy()
        target = strikes[short] + (spec.width if right == "C" else -spec.width)
        wing = min(range(short), key=lambda j: (abs(strikes[j] - target), j))
        legs += [(right, strikes[short], -1), (right, strikes[wing], 1)]
    return expiry, legs


def reference_backtest(closes, vix, spec, chain_spec, cash=100_000.0):
    """Plain loop over a full synthetic chain per day; the same rules as the fast path."""
    atm = pd.Series([anchor_atm_iv(v, chain_spec) for v in vix], index=vix.index)
    ranks = iv_rank(atm, spec.iv_rank_window)
    mult, positions, trades, equity = 100, [], [], []
    last_entry = -999
    for i, stamp in enumerate(closes.index):
        day, spot, last = stamp.date(), closes.iloc[i], i == len(closes) - 1
        frame = synthetic_chain(day, spot, vix.iloc[i], chain_spec, 0.0, 0.0,
                                sessions=SESSIONS).frame
        book = {(r.expiry, r.right, r.strike): (r.bid, r.ask)
                for r in frame[["expiry", "right", "strike", "bid", "ask"]].itertuples()}
        for pos in list(positions):
            if day >= pos["expiry"]:
                at = closes[closes.index <= pd.Timestamp(pos["expiry"])].iloc[-1]
                value = sum(q * max((at - k) if r == "C" else (k - at), 0.0)
                            for r, k, q in pos["legs"])
                fees = sum(chain_spec.commission(pos["n"]) for r, k, q in pos["legs"]
                           if max((at - k) if r == "C" else (k - at), 0.0) > 0)
                cash += value * pos["n"] * mult - fees
                positions.remove(pos)
                trades.append((pos["entry"], stamp, pos["credit"], -value, pos["fees"] + fees))
                continue
            quotes = [book[(pos["expiry"], r, k)] for r, k, q in pos["legs"]]
            pos["mark"] = sum(q * (b + a) / 2 for (r, k, q), (b, a) in
                              zip(pos["legs"], quotes, strict=True))
            debit = sum(a if q < 0 else -b for (r, k, q), (b, a) in
                        zip(pos["legs"], quotes, strict=True))
            dte = (pos["expiry"] - day).days
            if (debit <= (1 - spec.take_profit) * pos["credit"]
                    or debit - pos["credit"] >= spec.stop_multiple * pos["credit"]
                    or dte <= spec.exit_dte or last):
                fee = chain_spec.commission(pos["n"] * len(pos["legs"]))
                cash -= debit * pos["n"] * mult + fee
                positions.remove(pos)
                trades.append((pos["entry"], stamp, pos["credit"], debit, pos["fees"] + fee))
        rank = ranks.iloc[i]
        gate = spec.iv_rank_min == 0 or rank >= spec.iv_rank_min
        if not last and len(positions) < spec.max_open and i - last_entry >= spec.entry_every_days \
                and gate:
            choice = _ref_choose(frame, day, spot, spec, 0.0, 0.0)
            if choice is not None:
                expiry, legs = choice
                quotes = [book[(expiry, r, k)] for r, k, q in legs]
                credit = sum(b if q < 0 else -a for (r, k, q), (b, a) in
                             zip(legs, quotes, strict=True))
                width = max(abs(legs[j][1] - legs[j + 1][1]) for j in range(0, len(legs), 2))
                per = (width - credit) * mult
                equity_now = cash + sum(p["mark"] * p["n"] for p in positions) * mult
                n = math.floor(spec.risk_per_trade * equity_now / per)
                if n == 0 and per <= 2 * spec.risk_per_trade * equity_now:
                    n = 1
                n = min(n, math.floor((equity_now - sum(p["max_loss"] for p in positions)) / per))
                if credit > 0 and per > 0 and n > 0:
                    fee = chain_spec.commission(n * len(legs))
                    cash += credit * n * mult - fee
                    positions.append({
                        "entry": stamp, "expiry": expiry, "legs": legs, "n": n, "fees": fee,
                        "credit": credit, "max_loss": per * n,
                        "mark": sum(q * (b + a) / 2 for (r, k, q), (b, a) in
                                    zip(legs, quotes, strict=True))})
                    last_entry = i
        equity.append(cash + sum(p["mark"] * p["n"] for p in positions) * mult)
    return trades, pd.Series(equity, index=closes.index)


def test_fast_path_agrees_with_full_chain_reference():
    n = 45
    rng = np.random.default_rng(11)
    closes = pd.Series(110 * np.exp(np.cumsum(rng.normal(0, 0.012, n))), index=DAYS[:n],
                       name="SPY")
    vix = pd.Series(18 + 6 * np.sin(np.arange(n) / 4.0), index=closes.index)
    checked, reasons = 0, set()
    for spec in (
        CreditSpreadSpec(dte_min=10, dte_max=20, exit_dte=3, iv_rank_window=5, iv_rank_min=0.4,
                         entry_every_days=2, take_profit=0.4, stop_multiple=1.0),
        CreditSpreadSpec(kind="iron_condor", dte_min=8, dte_max=25, exit_dte=0,
                         iv_rank_window=5, iv_rank_min=0.0, entry_every_days=3,
                         short_delta=0.3, width=3.0, take_profit=0.6, stop_multiple=0.8),
        CreditSpreadSpec(kind="bear_call", dte_min=5, dte_max=12, exit_dte=0, iv_rank_window=5,
                         iv_rank_min=0.0, entry_every_days=1, short_delta=0.4, width=2.0,
                         take_profit=1.0, stop_multiple=50.0, max_open=2),
    ):
        fast = backtest_options(closes, vix, spec, REF_CHAIN)
        trades, equity = reference_backtest(closes, vix, spec, REF_CHAIN)
        got = fast.trades.sort_values(["entry_date", "exit_date"])
        trades = sorted(trades, key=lambda row: (row[0], row[1]))
        assert len(got) == len(trades) > 0
        for row, (entry, exit_, credit, debit, fees) in zip(got.itertuples(), trades,
                                                            strict=True):
            assert (row.entry_date, row.exit_date) == (entry, exit_)
            assert row.credit == pytest.approx(credit, abs=1e-9)
            assert row.exit_debit == pytest.approx(debit, abs=1e-9)
            assert row.commissions == pytest.approx(fees, abs=1e-9)
        np.testing.assert_allclose(fast.equity.to_numpy(), equity.to_numpy(), atol=1e-6)
        checked += len(got)
        reasons |= set(got["exit_reason"])
    assert checked >= 20
    assert {"take_profit", "stop", "dte", "end"} <= reasons
    assert reasons & {"expiry", "assignment"}


def test_summary_matches_framework_metrics():
    rng = np.random.default_rng(2)
    closes = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.012, 150))), index=DAYS[:150])
    result = backtest_options(closes, varying_level(150), CreditSpreadSpec(iv_rank_min=0.0,
                              iv_rank_window=10), FLAT)
    trades = result.trades.rename(columns={"entry_date": "entry_time", "exit_date": "exit_time"})
    at_risk = result.positions["max_loss"] / result.equity
    expected = summarize(result.returns, None, trades, periods_per_year=252,
                         gross_exposure=at_risk, costs=result.costs)
    assert len(result.trades) > 5
    for key, value in result.summary.items():
        assert value == pytest.approx(expected[key], rel=1e-12, nan_ok=True), key


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"kind": "straddle"}, {"short_delta": 0.6}, {"width": 0}, {"dte_max": 20},
    {"exit_dte": 30}, {"take_profit": 1.5}, {"stop_multiple": -1}, {"max_open": 0},
    {"risk_per_trade": 0}, {"iv_rank_min": 2.0}, {"entry_every_days": 1.5},
])
def test_spec_validation(bad):
    with pytest.raises(ConfigError):
        CreditSpreadSpec(**bad)


def test_schedule_and_input_validation():
    spec = CreditSpreadSpec()
    with pytest.raises(ConfigError, match="increasing"):
        CreditSpreadSchedule((("2024-02-01", spec), ("2024-01-01", spec)))
    with pytest.raises(ConfigError, match="CreditSpreadSpec"):
        CreditSpreadSchedule((("2024-02-01", {"kind": "bull_put"}),))
    closes = path("flat", n=30)
    gap = flat_world(closes).drop(closes.index[10:25])
    with pytest.raises(DataError, match="no vol level"):
        backtest_options(closes, gap, spec, FLAT)
    with pytest.raises(ConfigError, match="initial_cash"):
        run_flat(closes, spec, initial_cash=0)
    assert spec.with_overrides({"width": 10}).width == 10.0
    assert CreditSpreadSpec().to_dict()["kind"] == "bull_put"


# -- real data ---------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_spy_2007_onwards(shared_data):
    spy = pd.read_csv(shared_data / "daily_unadjusted" / "SPY.csv.gz", index_col="date",
                      parse_dates=True)["close"].rename("SPY")
    vix = pd.read_csv(shared_data / "daily" / "VIX.csv.gz", index_col="date",
                      parse_dates=True)["close"]
    market = prepare_market(spy, vix, DEFAULT_SPEC, rate=0.0, div=0.015)
    run_options_backtest(market, CreditSpreadSpec(), start="2007-01-01", end="2007-03-01")
    began = time.perf_counter()
    result = run_options_backtest(market, CreditSpreadSpec(), start="2007-01-01")
    elapsed = time.perf_counter() - began
    assert elapsed < 10.0  # ~1 s on the dev machine; generous for slow CI
    summary = result.summary
    assert summary["n_trades"] > 50
    assert np.isfinite(result.equity).all() and (result.equity > 0).all()
    assert set(result.trades["exit_reason"]) <= set(EXIT_REASONS)
    assert (result.positions["max_loss"] <= result.equity + 1e-6).all()
    assert (result.positions["open_positions"] <= 3).all()
    for key in ("cagr", "sharpe", "max_drawdown", "win_rate", "avg_days_held"):
        assert np.isfinite(summary[key])
    strikes = result.trades["legs"].str.split().str[2].astype(float)
    spots = result.trades["entry_spot"]
    assert ((strikes / spots) < 1.0).all()  # short puts below the unadjusted spot
    check_pnl_arithmetic(result)
