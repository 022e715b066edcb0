"""framework.paper_record: round trips and metrics of a real sim paper session (embedded GSPC)
and of generated fills."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework import metrics
from framework.errors import DataError
from framework.paper_metrics import (
    MIN_TRADES,
    bootstrap_ci,
    crash_count,
    losing_weeks_streak,
    monthly_returns,
    paper_metrics,
    session_counts,
    slippage_table,
)
from framework.paper_record import equity_returns, is_stop_order, record_trips, round_trips
from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.record import load_record
from live.state import Store
from strategies import REGISTRY

RUN = "paper-2y"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A sim paper session over two years of the embedded S&P 500 index (risk rules on)."""
    home = tmp_path_factory.mktemp("fw_home_paper_record")
    url = f"sqlite:///{home}/paper.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        spec = PaperSpec(run_id=RUN, start="2016-01-01", end="2017-12-31",
                         sets=("fast=3", "slow=8"), db=url)
        run_paper(resolve_strategy("sma_cross", REGISTRY), spec, Store(url))
    return url


@pytest.fixture(scope="module")
def record(db):
    return load_record(db, RUN)


def test_round_trips_reconcile_with_the_equity_curve_to_the_cent(record):
    trips = record_trips(record)
    change = record.equity["equity"].iloc[-1] - record.initial_cash
    assert len(trips) >= MIN_TRADES
    assert abs(trips["pnl"].sum() - change) < 0.005
    fills = record.fills
    assert trips["costs"].sum() == pytest.approx(
        (fills["commission"] + fills["slippage"] + fills["impact"]).sum(), abs=1e-6)
    assert trips["trade_id"].is_unique
    assert set(trips["exit_reason"]) <= {"signal", "open"} | {
        r for r in trips["exit_reason"] if r.startswith("risk:")}


@pytest.mark.parametrize("end", ["2016-03-09", "2016-07-15", "2017-02-28"])
def test_open_trades_are_marked_so_the_record_reconciles_at_any_end(db, end):
    record = load_record(db, RUN, end=end)
    trips = record_trips(record)
    change = record.equity["equity"].iloc[-1] - record.initial_cash
    assert record.equity.index[-1] <= pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    assert abs(trips["pnl"].sum() - change) < 0.005
    still_open = trips[trips["open"]]
    assert (still_open["exit_reason"] == "open").all()
    assert still_open["exit_time"].isna().all()


def test_paper_metrics_equal_framework_metrics_on_the_same_returns(record):
    m = paper_metrics(record)
    returns = equity_returns(record)
    closed = record_trips(record).query("~open")
    pnl = closed["pnl"].to_numpy()
    assert m["sharpe"] == metrics.sharpe(returns, 252.0)
    assert m["max_drawdown"] == metrics.max_drawdown(returns)
    assert m["period_return"] == metrics.total_return(returns)
    assert m["win_rate"] == metrics.win_rate(pnl)
    assert m["profit_factor"] == metrics.profit_factor(pnl)
    assert m["trades"] == len(closed) and m["too_few_trades"] is False
    assert m["period_return"] == pytest.approx(
        record.equity["equity"].iloc[-1] / record.initial_cash - 1.0, rel=1e-12)
    assert m["uptime"] == 1.0 and m["sessions_expected"] == len(record.equity)
    assert m["benchmark_label"].endswith("as SPY proxy")


def test_period_metrics_use_the_equity_before_the_period_as_base(record):
    m = paper_metrics(record, "2017-03-01", "2017-03-31")
    curve = record.equity["equity"]
    before = curve[curve.index < pd.Timestamp("2017-03-01", tz="UTC")].iloc[-1]
    last = curve[curve.index <= pd.Timestamp("2017-04-01", tz="UTC")].iloc[-1]
    assert m["period_return"] == pytest.approx(last / before - 1.0, rel=1e-12)
    assert m["cumulative_return"] == pytest.approx(last / record.initial_cash - 1.0, rel=1e-12)
    assert m["bars"] == 23 and m["sessions_expected"] == 23
    trips = record_trips(record)
    exits = trips["exit_time"]
    in_march = trips[(exits >= "2017-03-01") & (exits < "2017-04-01")]
    assert m["trades"] == len(in_march) and m["too_few_trades"] is True
    assert m["trade_pnl"] == pytest.approx(in_march["pnl"].sum())
    with pytest.raises(DataError, match="before its start"):
        paper_metrics(record, "2017-03-31", "2017-03-01")


def test_costs_and_slippage_of_the_sim_match_its_cost_model(record):
    m = paper_metrics(record)
    fills = record.fills
    assert m["costs"]["total"] == pytest.approx(
        (fills["commission"] + fills["slippage"] + fills["impact"]).sum())
    mean_equity = record.equity["equity"].mean()
    assert m["costs_pct_equity"] == pytest.approx(m["costs"]["total"] / mean_equity)
    # decision orders fill at the bar's open plus the modelled slippage and impact, exactly
    stops = set(record.orders.loc[is_stop_order(record.orders), "client_order_id"])
    decided = fills[~fills["client_order_id"].isin(stops)]
    realized, model, _ = slippage_table(decided, record.bars)
    assert realized == pytest.approx(model, abs=1e-6) and model > 0


def test_entries_carry_the_decision_and_market_conditions(record):
    trips = record_trips(record)
    first = trips.iloc[0]
    assert first["entry_target"] == 1.0 and "strategy target 1" in first["entry_reason"]
    assert '"fast"' in first["entry_features"] and '"slow"' in first["entry_features"]
    later = trips.iloc[5:]
    assert later["entry_regime"].isin(["BULL", "BEAR", "CHOPPY", "VOLATILE"]).all()
    assert (later["entry_vix"] > 0).all() and (later["entry_volatility"] > 0).all()


def test_bootstrap_is_deterministic_and_brackets_the_estimate(record):
    pnl = record_trips(record).query("~open")["pnl"].to_numpy()
    rows = lambda s: (s > 0).mean(axis=1)  # noqa: E731
    first, again = bootstrap_ci(pnl, rows), bootstrap_ci(pnl, rows)
    assert first == again
    assert first[0] <= metrics.win_rate(pnl) <= first[1]
    assert all(math.isnan(x) for x in bootstrap_ci(pnl[:1], rows))


# -- generated fills ------------------------------------------------------------------------------
def _fills(rows) -> pd.DataFrame:
    times = pd.date_range("2024-01-02 21:00", periods=len(rows), freq="D", tz="UTC")
    return pd.DataFrame({
        "execution_id": [f"x{i:04d}" for i in range(len(rows))],
        "client_order_id": [f"o{i:04d}" for i in range(len(rows))],
        "symbol": [r[0] for r in rows], "quantity": [float(r[1]) for r in rows],
        "price": [r[2] for r in rows], "commission": [r[3] for r in rows],
        "slippage": [r[4] for r in rows], "impact": [0.1 * r[4] for r in rows], "time": times,
    })


fill_rows = st.lists(st.tuples(
    st.sampled_from(["AAA", "BBB"]),
    st.integers(-40, 40).filter(bool),
    st.floats(10.0, 200.0),
    st.floats(0.0, 5.0),
    st.floats(0.0, 2.0),
), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(fill_rows)
def test_round_trip_pnl_is_the_cash_flow_plus_the_marked_position(rows):
    fills = _fills(rows)
    trips = round_trips(fills)
    marks = fills.groupby("symbol")["price"].last()
    held = fills.groupby("symbol")["quantity"].sum()
    expected = float(-(fills["quantity"] * fills["price"]).sum() - fills["commission"].sum()
                     + (held * marks).sum())
    assert trips["pnl"].sum() == pytest.approx(expected, abs=1e-6 * (1 + abs(expected)))
    total = (fills["commission"] + fills["slippage"] + fills["impact"]).sum()
    assert trips["costs"].sum() == pytest.approx(total, abs=1e-9 * (1 + total))
    assert trips["trade_id"].is_unique
    assert (trips["days_held"] >= 0).all()


@settings(max_examples=40, deadline=None)
@given(fill_rows, st.integers(1, 30))
def test_trade_ids_and_closed_trades_do_not_change_as_fills_arrive(rows, cut):
    fills = _fills(rows)
    before = round_trips(fills.iloc[:cut]).set_index("trade_id")
    after = round_trips(fills).set_index("trade_id")
    closed = before[~before["open"]]
    assert set(closed.index) <= set(after.index)
    pd.testing.assert_series_equal(closed["pnl"], after.loc[closed.index, "pnl"])


def test_round_trips_reject_a_table_without_fill_columns():
    with pytest.raises(DataError, match="lacks columns"):
        round_trips(pd.DataFrame({"symbol": ["A"]}))
    assert round_trips(_fills([]).iloc[:0]).empty


# -- helpers with hand-made inputs ----------------------------------------------------------------
def _daily(values: dict[str, float]) -> pd.Series:
    index = pd.DatetimeIndex([pd.Timestamp(d + " 21:00", tz="UTC") for d in values])
    return pd.Series(list(values.values()), index=index)


@pytest.mark.parametrize(("returns", "streak"), [
    # Mon 2024-03-04 .. Fri 03-22: weeks lose, lose, lose -> 3
    ({"2024-03-04": -0.01, "2024-03-11": -0.01, "2024-03-22": -0.01}, 3),
    ({"2024-03-04": -0.01, "2024-03-11": 0.02, "2024-03-22": -0.01}, 1),
    ({"2024-03-04": -0.01, "2024-03-15": -0.01, "2024-03-19": 0.05}, 2),  # last week incomplete
    ({"2024-03-04": 0.01}, 0),
])
def test_losing_weeks_streak_counts_the_latest_complete_weeks(returns, streak):
    assert losing_weeks_streak(_daily(returns)) == streak


def test_crashes_are_restarts_without_a_clean_finish():
    kinds = ["start", "risk:x", "finish", "recover", "recover", "finish", "recover", "halt", "recover"]
    events = pd.DataFrame({"id": range(len(kinds)), "kind": kinds,
                           "time": pd.date_range("2024-01-01", periods=len(kinds), tz="UTC")})
    assert crash_count(events) == 2
    assert crash_count(events.iloc[:0]) == 0


def test_session_counts_and_monthly_returns():
    index = pd.DatetimeIndex([pd.Timestamp(d, tz="UTC") for d in
                              ("2024-07-01 20:00", "2024-07-02 20:00", "2024-07-05 20:00")])
    # 2024-07-01..05: the 4th is a holiday, so 4 sessions, 3 processed
    assert session_counts(index, pd.Timestamp("2024-07-01", tz="UTC"),
                          pd.Timestamp("2024-07-31", tz="UTC")) == (3, 4)
    table = monthly_returns(_daily({"2024-01-31": 0.1, "2024-02-01": 0.1, "2024-02-02": -0.5}))
    assert table.loc[2024, 1] == pytest.approx(0.1)
    assert table.loc[2024, 2] == pytest.approx(1.1 * 0.5 - 1.0)
    assert np.isnan(table.loc[2024, 3])
