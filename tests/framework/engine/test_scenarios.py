"""Hand-worked scenarios: 3-6 bars each, expected numbers derived by hand in the comments."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from tests.framework.engine.helpers import make_bars, no_costs

NAN = np.nan
CASH = EngineSpec(initial_cash=1000.0)


def approx(value):
    return pytest.approx(value, rel=1e-12, abs=1e-9)


# -- timing ------------------------------------------------------------------------------------
def test_next_open_fills_at_the_following_open():
    bars = make_bars([10, 11, 12, 13], close=[10.5, 11.5, 12.5, 13.5])
    res = simulate(bars, [1, 1, 0, 0], CASH, CostSpec.none())
    # target[0] = 1 fills at open[1] = 11 with all 1000; target[2] = 0 sells at open[3] = 13
    assert list(res.fills["bar"]) == [1, 3]
    assert list(res.fills["price"]) == [11.0, 13.0]
    shares = 1000 / 11
    assert res.fills["qty"].tolist() == approx([shares, -shares])
    assert res.equity.tolist() == approx([1000, shares * 11.5, shares * 12.5, shares * 13])
    assert res.optimistic_fill is False


def test_close_fill_is_same_bar_and_flagged_optimistic():
    bars = make_bars([10, 11, 12, 13], close=[10.5, 11.5, 12.5, 13.5])
    res = simulate(bars, [1, 1, 0, 0], EngineSpec(initial_cash=1000.0, fill="close"), no_costs())
    # buys at close[0] = 10.5, sells at close[2] = 12.5
    shares = 1000 / 10.5
    assert list(res.fills["bar"]) == [0, 2]
    assert list(res.fills["price"]) == [10.5, 12.5]
    assert res.equity.tolist() == approx([1000, shares * 11.5, shares * 12.5, shares * 12.5])
    assert res.optimistic_fill is True


def test_target_on_last_bar_is_never_filled():
    bars = make_bars([10, 11, 12, 13])
    res = simulate(bars, [0, 0, 0, 1], CASH, no_costs())
    assert res.fills.empty
    assert res.equity.tolist() == [1000.0] * 4
    # the same target with fill="close" does fill, on that last bar
    closed = simulate(bars, [0, 0, 0, 1], EngineSpec(initial_cash=1000.0, fill="close"))
    assert list(closed.fills["bar"]) == [3]


# -- commissions -------------------------------------------------------------------------------
def test_per_share_commission_with_minimum():
    costs = no_costs(commission_per_share=0.005, commission_min=1.0)
    spec = EngineSpec(initial_cash=10_000.0, whole_shares=True)
    bars = make_bars([10.0] * 4)
    res = simulate(bars, [0.02, 0.5, 0.5, 0.5], spec, costs)
    # bar 1: 0.02 * 10000 / 10 = 20 shares, 20 * 0.005 = 0.10 -> minimum 1.00
    # bar 2: equity = (10000 - 200 - 1) + 200 = 9999; 0.5 * 9999 / 10 - 20 = 479.95 -> 479 shares,
    #        479 * 0.005 = 2.395 (above the minimum)
    assert res.fills["qty"].tolist() == [20.0, 479.0]
    assert res.fills["commission"].tolist() == approx([1.0, 2.395])
    assert res.cash[-1] == approx(10_000 - 200 - 1 - 4790 - 2.395)
    assert res.costs["commission"] == approx(3.395)


def test_commission_cap_beats_minimum_on_cheap_shares():
    costs = no_costs(commission_per_share=0.005, commission_min=1.0, commission_max_pct=1.0)
    bars = make_bars([0.5] * 3)
    res = simulate(bars, [0.05, 0.05, 0.05], CASH, costs)
    # 0.05 * 1000 / 0.5 = 100 shares worth 50: per share 0.50 -> minimum 1.00 -> cap 1% = 0.50
    assert res.fills["qty"].tolist() == approx([100.0])
    assert res.fills["commission"].tolist() == approx([0.5])


def test_bps_commission_on_both_sides():
    costs = no_costs(commission_bps=10.0)
    bars = make_bars([10, 10, 12, 12])
    res = simulate(bars, [0.5, 0.5, 0, 0], CASH, costs)
    # buy 50 at 10: fee 0.1% * 500 = 0.5; sell 50 at 12: fee 0.1% * 600 = 0.6
    assert res.fills["qty"].tolist() == approx([50.0, -50.0])
    assert res.fills["commission"].tolist() == approx([0.5, 0.6])
    assert res.cash[-1] == approx(1000 - 500 - 0.5 + 600 - 0.6)
    assert res.trades["pnl"].tolist() == approx([100 - 1.1])


# -- slippage and impact -----------------------------------------------------------------------
def test_slippage_is_adverse_for_buys_and_sells():
    costs = no_costs(slippage_bps=100.0)  # 1%
    bars = make_bars([10, 10, 12, 12])
    res = simulate(bars, [0.5, 0.5, 0, 0], CASH, costs)
    # size at the quoted price: 500 / 10 = 50 shares; buy at 10.10, sell at 12 * 0.99 = 11.88
    assert res.fills["price"].tolist() == approx([10.1, 11.88])
    assert res.fills["slippage_cost"].tolist() == approx([5.0, 6.0])
    assert res.cash[-1] == approx(1000 - 505 + 594)
    assert res.costs["slippage"] == approx(11.0)


def test_impact_uses_only_returns_before_the_fill_bar():
    closes = [100.0, 101.0, 99.0, 102.0, 103.0]
    volume = [1000.0] * 5
    costs = no_costs(impact_coef=0.5, impact_window=20)
    target = [0, 0, 0.1, 0.1, 0.1]
    bars = make_bars(closes, close=closes, volume=volume)
    res = simulate(bars, target, CASH, costs)
    # fill at open[3] = 102: 0.1 * 1000 / 102 shares; sigma from returns of closes 0..2 only
    shares = 100 / 102
    sigma = statistics.stdev([101 / 100 - 1, 99 / 101 - 1])
    impact = 0.5 * sigma * math.sqrt(shares / 1000)
    assert res.fills["price"].tolist() == approx([102 * (1 + impact)])
    assert res.fills["impact_cost"].tolist() == approx([shares * 102 * impact])
    # changing the fill bar's own close must not change the fill
    moved = make_bars(closes, close=[100.0, 101.0, 99.0, 150.0, 103.0], volume=volume)
    assert simulate(moved, target, CASH, costs).fills["price"].tolist() == approx(
        [102 * (1 + impact)]
    )


def test_impact_skipped_and_counted_without_volume():
    costs = no_costs(impact_coef=0.5)
    bars = make_bars([100, 101, 99, 102, 103], volume=[NAN, NAN, NAN, NAN, 0.0])
    res = simulate(bars, [0, 0, 0.1, -0.1, -0.1], CASH, costs)
    assert len(res.fills) == 2
    assert res.fills["impact_cost"].tolist() == [0.0, 0.0]
    assert res.impact_skipped_fills == 2


# -- participation -----------------------------------------------------------------------------
def test_participation_cap_carries_the_rest_over_two_bars():
    costs = no_costs(max_participation=0.5)
    bars = make_bars([10.0] * 5, volume=[30.0] * 5)
    res = simulate(bars, [0.4, 0.4, 0.4, 0.4, 0.4], CASH, costs)
    # 0.4 * 1000 / 10 = 40 shares, at most 0.5 * 30 = 15 per bar: 15, 15, then the last 10
    assert list(res.fills["bar"]) == [1, 2, 3]
    assert res.fills["qty"].tolist() == approx([15.0, 15.0, 10.0])
    assert res.positions[:, 0].tolist() == approx([0, 15, 30, 40, 40])


def test_new_target_supersedes_the_unfilled_rest():
    costs = no_costs(max_participation=0.5)
    bars = make_bars([10.0] * 5, volume=[30.0] * 5)
    res = simulate(bars, [0.4, 0.0, 0.0, 0.0, 0.0], CASH, costs)
    # bar 1 buys 15 of 40; target 0 (decided at bar 1) replaces the rest: bar 2 sells the 15
    assert res.fills["qty"].tolist() == approx([15.0, -15.0])
    assert res.positions[-1, 0] == 0.0


# -- cash, rotation, sizing --------------------------------------------------------------------
def test_sells_before_buys_free_cash_for_a_rotation():
    # B is the first column, so processing in column order would buy B before selling A
    opens = [[20.0, 10.0], [20.0, 10.0], [20.0, 10.0], [20.0, 10.0]]
    bars = make_bars(opens, symbols=["B", "A"])
    target = [[0, 1], [1, 0], [1, 0], [1, 0]]
    res = simulate(bars, target, CASH, no_costs())
    # bar 1: 100 shares of A; bar 2: sell 100 A (1000 cash), then buy 1000 / 20 = 50 B
    assert res.positions.tolist()[2] == approx([50.0, 0.0])
    fills = res.fills[res.fills["bar"] == 2]
    assert fills["symbol"].tolist() == ["A", "B"]


def test_cash_floor_scales_a_buy_to_what_cash_pays_for():
    costs = no_costs(commission_bps=10.0)  # 0.1% per side
    bars = make_bars([10.0] * 3)
    frac = simulate(bars, [1, 1, 1], CASH, costs)
    # shares * 10 * 1.001 = 1000 -> 99.9000999 shares, cash ends at ~0 (never below)
    assert frac.fills["qty"].tolist() == approx([1000 / 10.01])
    assert frac.cash[-1] == approx(0.0)
    whole = simulate(bars, [1, 1, 1], EngineSpec(initial_cash=1000.0, whole_shares=True), costs)
    # floor(99.9) = 99 shares: 990 + 0.99 fee, 9.01 left
    assert whole.fills["qty"].tolist() == [99.0]
    assert whole.cash[-1] == approx(9.01)


def test_whole_shares_floor_toward_zero_both_ways():
    bars = make_bars([30.0] * 4)
    spec = EngineSpec(initial_cash=1000.0, whole_shares=True)
    res = simulate(bars, [1, 0.5, 0.5, 0.5], spec, no_costs())
    # buy 1000 / 30 = 33.3 -> 33; then 0.5 * 1000 / 30 - 33 = -16.3 -> sell 16 (toward zero)
    assert res.fills["qty"].tolist() == [33.0, -16.0]
    assert res.positions[-1, 0] == 17.0


def test_nan_price_delays_the_fill_and_marks_at_last_close():
    opens = [10.0, NAN, NAN, 12.0, 13.0]
    closes = [10.0, NAN, 11.0, 12.5, NAN]
    bars = make_bars(opens, close=closes)
    res = simulate(bars, [0.5, 0.5, 0.5, 0.5, 0.5], CASH, no_costs())
    # no open on bars 1 and 2: the order waits and fills at open[3] = 12 for 500 / 12 shares
    assert list(res.fills["bar"]) == [3]
    shares = 500 / 12
    # bar 4 has no close: marked at the last known close 12.5
    assert res.equity.tolist() == approx(
        [1000, 1000, 1000, 500 + shares * 12.5, 500 + shares * 12.5]
    )


def test_short_sale_and_cover_pnl():
    bars = make_bars([10, 10, 9, 8, 8])
    res = simulate(bars, [-0.5, -0.5, 0, 0, 0], CASH, no_costs())
    # sell 50 at 10 (cash 1500), cover 50 at open[3] = 8 (cash 1100): +100
    assert res.fills["qty"].tolist() == approx([-50.0, 50.0])
    assert res.cash[-1] == approx(1100.0)
    assert res.equity[2] == approx(1500 - 50 * 9)
    trade = res.trades.iloc[0]
    assert (trade["side"], trade["entry_price"], trade["exit_price"]) == ("short", 10.0, 8.0)
    assert trade["pnl"] == approx(100.0)
    assert trade["return_pct"] == approx(20.0)


def test_allow_short_false_clips_negative_targets():
    bars = make_bars([10.0] * 4)
    res = simulate(bars, [-0.5, -0.5, 0.5, 0.5], EngineSpec(initial_cash=1000.0, allow_short=False))
    assert (res.positions >= 0).all()
    assert list(res.fills["bar"]) == [3]


def test_max_leverage_bounds_gross_exposure():
    bars = make_bars([10.0] * 3)
    res = simulate(bars, [3, 3, 3], EngineSpec(initial_cash=1000.0, max_leverage=2.0), no_costs())
    # target 3x is cut to gross = 2 * equity: 200 shares, cash -1000
    assert res.positions[-1, 0] == approx(200.0)
    assert res.cash[-1] == approx(-1000.0)


# -- rebalancing -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rebalance", "expected_fills"),
    [("on_change", [50.0]), ("every_bar", [50.0, -12.5])],
)
def test_rebalance_on_change_drifts_every_bar_resizes(rebalance, expected_fills):
    bars = make_bars([10, 10, 20, 20], close=[10, 20, 20, 20])
    spec = EngineSpec(initial_cash=1000.0, rebalance=rebalance)
    res = simulate(bars, [0.5, 0.5, 0.5, np.nan], spec, no_costs())
    # bar 1: 50 shares at 10; price doubles. every_bar at open[2] = 20: equity 1500, want 37.5
    # (sell 12.5); at open[3] the position already has its weight, so no order
    assert res.fills["qty"].tolist() == approx(expected_fills)


def test_nan_target_means_no_opinion():
    bars = make_bars([10, 10, 20, 20])
    res = simulate(
        bars, [0.5, NAN, NAN, NAN], EngineSpec(initial_cash=1000.0, rebalance="every_bar")
    )
    assert len(res.fills) == 1


def test_open_trade_reported_at_the_end():
    bars = make_bars([10, 10, 11, 12], close=[10, 10, 11, 12.5])
    res = simulate(bars, [1, 1, 1, 1], CASH, no_costs())
    trade = res.trades.iloc[0]
    assert bool(trade["is_open"])
    assert pd.isna(trade["exit_time"])
    assert trade["exit_price"] == 12.5
    assert trade["pnl"] == approx(100 * 2.5)
    assert trade["bars_held"] == 2


def test_competing_buys_are_scaled_by_one_factor():
    bars = make_bars([[10.0, 20.0]] * 3, symbols=["A", "B"])
    res = simulate(bars, [[0.6, 0.9], [0.6, 0.9], [0.6, 0.9]], CASH, no_costs())
    # 600 + 900 = 1500 wanted from 1000 cash: both shrink by 2/3 -> 400 of A, 600 of B
    assert res.fills["qty"].tolist() == approx([40.0, 30.0])
    assert res.cash[-1] == approx(0.0)
    # the same portfolio with the columns swapped gets the same fills
    swapped = simulate(
        make_bars([[20.0, 10.0]] * 3, symbols=["B", "A"]), [[0.9, 0.6]] * 3, CASH, no_costs()
    )
    assert sorted(swapped.fills["qty"].tolist()) == approx([30.0, 40.0])


def test_many_carried_fills_are_all_recorded():
    # 100 assets whose orders trickle in at 10 shares a bar: more fills than the first guess
    # of buffer room, which makes the wrapper re-run with the exact count
    m, n = 100, 12
    bars = make_bars(np.full((n, m), 10.0), volume=np.full((n, m), 100.0))
    target = np.full((n, m), 0.005)  # 0.005 * 1e6 / 10 = 500 shares each, 10 per bar
    spec = EngineSpec(initial_cash=1e6)
    res = simulate(bars, target, spec, no_costs(max_participation=0.1))
    assert len(res.fills) == m * (n - 1)
    assert res.fills["qty"].tolist() == [10.0] * (m * (n - 1))
    assert res.positions[-1].tolist() == [10.0 * (n - 1)] * m


def test_returns_exposure_and_turnover():
    bars = make_bars([10, 10, 11, 11], close=[10, 10, 11, 12])
    res = simulate(bars, [1, 1, 0, 0], CASH, no_costs())
    # buy 100 at open[1] = 10, sell 100 at open[3] = 11
    assert res.returns.tolist() == approx([0.0, 0.0, 0.1, 0.0])
    assert res.returns.index.equals(bars.index)
    assert res.exposure.tolist() == approx([0.0, 1.0, 1.0, 0.0])
    assert res.turnover.tolist() == approx([0.0, 1.0, 0.0, 1.0])
    assert res.costs == {"commission": 0.0, "slippage": 0.0, "impact": 0.0}
