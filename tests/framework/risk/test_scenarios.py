"""Hand-computed scenarios, one small table per rule (no costs, cash 1000, next-open fills)."""

from __future__ import annotations

import numpy as np
import pytest

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate, simulate_grid
from framework.indicators import atr
from framework.risk import RiskSpec
from tests.framework.risk.helpers import ohlc_bars, rules, run

FLAT = [10.0] * 6


# -- risk off is the plain engine ---------------------------------------------------------
def test_risk_off_is_the_plain_engine():
    bars = ohlc_bars([10, 11, 9, 12, 8], low=[9, 8, 7, 6, 5])
    target = [1.0, 0.5, -0.5, 1.0, 0.0]
    plain = simulate(bars, np.array(target), EngineSpec(), CostSpec())
    off = simulate(bars, np.array(target), EngineSpec(), CostSpec(), RiskSpec.off())
    np.testing.assert_array_equal(plain.equity, off.equity)
    np.testing.assert_array_equal(plain.positions, off.positions)
    assert off.risk_events.empty
    assert set(off.trades["exit_reason"]) <= {"signal", "end_of_data"}


# -- exposure caps -------------------------------------------------------------------------
def test_max_position_caps_the_weight():
    res = run(ohlc_bars(FLAT), [1.0] * 6, max_position=0.3)
    assert res.positions[1, 0] == pytest.approx(30.0)  # 0.3 * 1000 / 10
    ev = res.risk_events.iloc[0]
    assert (ev["rule"], ev["bar"], ev["before"], ev["after"]) == ("max_position", 0, 1.0, 0.3)


@pytest.mark.parametrize(
    ("risk", "row", "expected"),
    [
        ({"max_gross": 0.8}, [0.5, 0.5, 0.0], [0.4, 0.4, 0.0]),
        ({"cash_buffer": 0.2}, [0.5, 0.5, 0.0], [0.4, 0.4, 0.0]),
        ({"max_positions": 1}, [0.2, 0.5, 0.1], [0.0, 0.5, 0.0]),
        ({"max_net": 0.3}, [0.6, -0.1, 0.0], [0.4, -0.1, 0.0]),
        (
            {"max_group": 0.4, "groups": {"S0": "tech", "S1": "tech"}},
            [0.3, 0.3, 0.3],
            [0.2, 0.2, 0.3],
        ),
    ],
)
def test_portfolio_caps(risk, row, expected):
    bars = ohlc_bars(np.full((3, 3), 10.0))
    res = run(bars, np.tile(row, (3, 1)), **risk)
    np.testing.assert_allclose(res.positions[1] * 10.0 / 1000.0, expected, atol=1e-12)


# -- stops ---------------------------------------------------------------------------------
def test_fixed_stop_exits_at_the_level_and_stays_flat():
    bars = ohlc_bars(FLAT, high=[10, 10.2, 10.1, 10, 10, 10], low=[10, 9.9, 9.6, 10, 10, 10])
    res = run(bars, [1.0] * 6, stop="fixed", stop_pct=0.03)
    np.testing.assert_allclose(res.equity, [1000, 1000, 970, 970, 970, 970])
    np.testing.assert_array_equal(res.positions[:, 0], [0, 100, 0, 0, 0, 0])
    trade = res.trades.iloc[0]
    assert (trade["exit_reason"], trade["exit_bar"]) == ("stop_loss", 2)
    assert trade["exit_price"] == pytest.approx(9.7)
    assert rules(res) == ["stop_loss"]


def test_reentry_waits_for_a_changed_target():
    bars = ohlc_bars(FLAT, low=[10, 9.9, 9.6, 10, 10, 10])
    res = run(bars, [1, 1, 1, 0, 1, 1], stop="fixed", stop_pct=0.03)
    np.testing.assert_allclose(res.positions[:, 0], [0, 100, 0, 0, 0, 97])


def test_gap_through_the_stop_fills_at_the_open():
    bars = ohlc_bars([10, 10, 9.5, 9.5], low=[10, 10, 9.4, 9.5])
    res = run(bars, [1.0] * 4, stop="fixed", stop_pct=0.03)
    assert res.trades.iloc[0]["exit_price"] == pytest.approx(9.5)
    assert res.equity[-1] == pytest.approx(950.0)


def test_stop_fill_pays_slippage():
    bars = ohlc_bars(FLAT, low=[10, 9.9, 9.6, 10, 10, 10])
    costs = CostSpec.none().with_overrides({"slippage_bps": 10.0})
    res = run(bars, [1.0] * 6, costs=costs, stop="fixed", stop_pct=0.03)
    fill = res.fills.iloc[1]
    entry = res.fills.iloc[0]["price"]
    assert fill["price"] == pytest.approx(entry * 0.97 * (1 - 0.001))


def test_trailing_stop_follows_the_highest_high():
    bars = ohlc_bars(
        [10, 10, 11.8, 11.8],
        high=[10, 12, 11.9, 11.8],
        low=[10, 9.8, 11.5, 11.8],
        close=[10, 11.8, 11.8, 11.8],
    )
    res = run(bars, [1.0] * 4, stop="trailing", stop_pct=0.03)
    trade = res.trades.iloc[0]
    assert (trade["exit_reason"], trade["exit_bar"]) == ("trailing_stop", 2)
    assert trade["exit_price"] == pytest.approx(12 * 0.97)


def test_atr_stop_uses_the_atr_known_at_entry():
    close = np.array([10, 10.5, 10.2, 10.4, 10.3, 10.6, 9.0, 9.0])
    high, low = close + 0.3, close - 0.3
    low[6] = 8.5
    bars = ohlc_bars(close, high=high, low=low, close=close)
    res = run(bars, [0, 0, 0, 1, 1, 1, 1, 1], stop="atr", atr_multiplier=1.0, atr_window=2)
    entry = bars.open[4, 0]  # decided at bar 3, filled at the open of bar 4
    level = entry - atr(high, low, close, 2)[3]
    trade = res.trades.iloc[0]
    assert trade["exit_reason"] == "atr_stop"
    assert trade["exit_price"] == pytest.approx(min(level, bars.open[trade["exit_bar"], 0]))


def test_take_profit_and_time_stop():
    bars = ohlc_bars([10, 10, 10.2, 10.2], high=[10, 10, 10.6, 10.2])
    res = run(bars, [1.0] * 4, take_profit=0.05)
    assert res.trades.iloc[0]["exit_price"] == pytest.approx(10.5)
    assert res.trades.iloc[0]["exit_reason"] == "take_profit"
    bars = ohlc_bars([10, 10, 11, 12, 13])
    res = run(bars, [1.0] * 5, time_stop_bars=2)
    trade = res.trades.iloc[0]
    assert (trade["exit_reason"], trade["exit_bar"], trade["exit_price"]) == ("time_stop", 3, 12)
    assert res.equity[-1] == pytest.approx(1200.0)


# -- breakers and the daily loss limit ------------------------------------------------------
def test_drawdown_breaker_halts_flattens_and_resumes():
    bars = ohlc_bars([10, 10, 8, 8, 8, 8, 8, 8])
    target = [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5]
    res = run(bars, target, max_drawdown=0.1, drawdown_action="halt", cooldown_bars=2)
    np.testing.assert_allclose(res.positions[:, 0], [0, 100, 100, 0, 0, 50, 50, 50])
    ev = res.risk_events
    trip = ev[ev["rule"] == "drawdown_breaker"].iloc[0]
    assert (trip["bar"], trip["after"]) == (2, 2.0)  # HALTED
    assert trip["detail"] == pytest.approx(0.2)
    assert list(ev[ev["rule"] == "breaker_resume"]["bar"]) == [4]
    assert res.trades.iloc[0]["exit_reason"] == "breaker"


def test_consecutive_losses_only_allow_reductions():
    bars = ohlc_bars([10, 10, 9, 9, 9, 9])
    res = run(
        bars, [1, 0, 1, 1, 1, 1], consecutive_losses=1, losses_action="reduce", cooldown_bars=3
    )
    np.testing.assert_allclose(res.positions[:, 0], [0, 100, 0, 0, 0, 0])
    assert rules(res) == ["losses_breaker", "breaker_block", "breaker_resume"]


@pytest.mark.parametrize(("freq", "blocked"), [("h", True), ("D", False)])
def test_daily_loss_limit_blocks_the_rest_of_the_session(freq, blocked):
    bars = ohlc_bars([10, 10, 9, 9, 9, 9], freq=freq, start="2024-01-02 14:30")
    res = run(bars, [0.5, 0.5, 0.5, 1, 1, 1], daily_loss_limit=0.04)
    trip = res.risk_events.iloc[0]
    assert (trip["rule"], trip["bar"]) == ("daily_loss_limit", 2)
    assert trip["detail"] == pytest.approx(0.05)
    if blocked:  # decision at bar 3 is in the tripped session
        assert res.positions[4, 0] == 50.0
        assert "daily_loss_block" in rules(res)
    else:  # a new session: new risk is allowed again
        assert res.positions[4, 0] == pytest.approx(50 + (950 - 450) / 9)


def test_daily_flatten_closes_everything():
    bars = ohlc_bars([10, 10, 9, 9, 9, 9], freq="h", start="2024-01-02 14:30")
    res = run(bars, [0.5] * 6, daily_loss_limit=0.04, daily_flatten=True)
    np.testing.assert_allclose(res.positions[:, 0], [0, 50, 50, 0, 0, 0])
    assert res.trades.iloc[0]["exit_reason"] == "daily_loss_limit"


# -- rebalancing filters ---------------------------------------------------------------------
def test_min_trade_value_and_max_trades():
    res = run(ohlc_bars(FLAT), [0.5, 0.52, 0.52, 0.0, 0.0, 0.0], min_trade_value=50.0)
    np.testing.assert_allclose(res.positions[:, 0], [0, 50, 50, 50, 0, 0])  # exits pass
    assert rules(res) == ["min_trade_value"]
    bars = ohlc_bars(np.full((3, 3), 10.0))
    res = run(bars, np.tile([0.1, 0.3, 0.2], (3, 1)), max_trades_per_rebalance=2)
    np.testing.assert_allclose(res.positions[1], [0, 30, 20])
    assert rules(res) == ["max_trades"]


def test_calendar_filter_waits_for_the_new_month_but_exits_pass():
    bars = ohlc_bars([10.0] * 6, start="2024-01-29 21:00")  # Jan 29, 30, 31, Feb 1, 2, 3
    res = run(bars, [0, 1, 1, 1, 0, 0], rebalance_trigger="calendar", rebalance_frequency="monthly")
    np.testing.assert_allclose(res.positions[:, 0], [0, 0, 0, 0, 100, 0])
    assert rules(res) == ["calendar_filter"]


def test_drift_filter_trades_only_beyond_the_threshold():
    close = [10, 10, 11, 13, 13, 13]
    engine = EngineSpec(initial_cash=1000.0, rebalance="every_bar")
    res = run(
        ohlc_bars(close), [0.5] * 6, engine=engine, rebalance_trigger="drift", drift_threshold=0.1
    )
    # weight at close 11: 550/1050 = 0.524 (no trade); at 13: 650/1150 = 0.565 (no trade)
    assert len(res.fills) == 1
    res = run(
        ohlc_bars(close), [0.5] * 6, engine=engine, rebalance_trigger="drift", drift_threshold=0.05
    )
    assert len(res.fills) == 2  # 0.565 - 0.5 > 0.05 at bar 4


# -- sizing ----------------------------------------------------------------------------------
def test_fixed_fraction_and_declared_kelly():
    res = run(ohlc_bars(FLAT), [1.0] * 6, sizing="fixed_fraction", sizing_fraction=0.5)
    assert res.positions[1, 0] == pytest.approx(50.0)
    assert rules(res) == ["sizing"]
    res = run(
        ohlc_bars(FLAT),
        [1.0] * 6,
        sizing="kelly",
        sizing_fraction=0.5,
        kelly_win_rate=0.6,
        kelly_payoff=1.0,
    )
    assert res.positions[1, 0] == pytest.approx(10.0)  # 0.5 * (0.6 - 0.4 / 1) = 0.1


def test_volatility_target_and_atr_risk():
    close = np.array([10, 10.5, 10.2, 10.8, 10.4, 10.6, 10.6])
    bars = ohlc_bars(close, high=close + 0.2, low=close - 0.2)
    res = run(
        bars,
        [1.0] * 7,
        sizing="volatility_target",
        target_volatility=0.2,
        volatility_window=3,
        periods_per_year=252.0,
    )
    returns = close[3:6] / close[2:5] - 1.0  # the 3 returns ending at decision bar 5
    weight = min(1.0, 0.2 / (returns.std(ddof=1) * np.sqrt(252.0)))
    assert res.positions[6, 0] * close[6] / res.equity[5] == pytest.approx(weight, rel=1e-9)
    res = run(
        bars,
        [1.0] * 7,
        sizing="atr_risk",
        risk_per_trade=0.01,
        atr_risk_multiplier=2.0,
        atr_window=2,
    )
    a = atr(close + 0.2, close - 0.2, close, 2)[2]  # first ATR known at decision bar 2
    weight = 0.01 * close[2] / (2.0 * a)
    assert res.positions[3, 0] * close[3] / res.equity[2] == pytest.approx(weight, rel=1e-9)


# -- regime hooks ----------------------------------------------------------------------------
def test_regime_overrides_switch_the_cap():
    regime = np.array([1, 1, 0, 0, 0, 0])
    res = run(
        ohlc_bars(FLAT),
        [1.0] * 6,
        regime=regime,
        max_position=0.5,
        regime_overrides={1: {"max_position": 0.2}},
    )
    np.testing.assert_allclose(res.positions[:, 0], [0, 20, 20, 50, 50, 50])


def test_grid_columns_equal_single_runs_with_risk_on():
    close = np.array([10, 10.4, 9.6, 9.9, 10.8, 10.2, 9.5, 10.1])
    bars = ohlc_bars(close, high=close * 1.02, low=close * 0.97)
    targets = np.array([[1, 1, 1, 0, 1, 1, 1, 1], [0.5] * 8, [1, 0, 1, 0, 1, 0, 1, 0]]).T
    risk = RiskSpec(stop="trailing", stop_pct=0.03, max_position=0.6, max_drawdown=0.05)
    grid = simulate_grid(bars, targets, EngineSpec(), CostSpec(), risk)
    for c in range(3):
        one = simulate(bars, targets[:, c], EngineSpec(), CostSpec(), risk)
        np.testing.assert_array_equal(grid.equity[:, c], one.equity)
        assert grid.risk_events[c] == len(one.risk_events)


def test_rebalance_events_report_turnover_and_costs():
    from framework.risk.events import rebalance_events

    bars = ohlc_bars(np.full((4, 2), 10.0))
    costs = CostSpec.none().with_overrides({"commission_bps": 10.0})
    res = run(bars, [[0.5, 0.3]] * 2 + [[0.2, 0.3]] * 2, costs=costs)
    table = rebalance_events(res)
    assert table["bar"].tolist() == [1, 3]
    assert table["n_trades"].tolist() == [2, 1]
    assert table["turnover"].iloc[0] == pytest.approx(0.8)
    assert table["costs"].iloc[0] == pytest.approx(0.8 * 1000 * 0.001)
