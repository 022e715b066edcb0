"""Invariants of the risk layer on random bars, targets and rule combinations."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from framework.risk import RiskSpec
from framework.types import Bars
from tests.framework.engine.generators import cost_specs, engine_specs
from tests.framework.risk.generators import risk_market, risk_specs

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _prefix(bars: Bars, k: int) -> Bars:
    return Bars(
        index=bars.index[:k],
        symbols=bars.symbols,
        open=bars.open[:k],
        high=bars.high[:k],
        low=bars.low[:k],
        close=bars.close[:k],
        volume=bars.volume[:k],
    )


@SETTINGS
@given(
    data=risk_market(),
    spec=engine_specs(),
    costs=cost_specs(),
    risk=risk_specs(),
    cut=st.integers(1, 24),
)
def test_future_bars_never_change_past_risk_decisions(data, spec, costs, risk, cut):
    bars, target, regime = data
    k = min(cut, bars.n_bars)
    whole = simulate(bars, target, spec, costs, risk, regime)
    part = simulate(_prefix(bars, k), target[:k], spec, costs, risk, regime[:k])
    np.testing.assert_array_equal(whole.equity[:k], part.equity)
    np.testing.assert_array_equal(whole.positions[:k], part.positions)
    assert _events_before(whole, k - 1) == _events_before(part, k - 1)


def _events_before(result, bar):
    ev = result.risk_events
    ev = ev[ev["bar"] < bar]
    return list(zip(ev["bar"], ev["symbol"], ev["rule"], ev["after"], strict=True))


@SETTINGS
@given(
    data=risk_market(nan_free=True),
    risk_caps=st.tuples(
        st.sampled_from([0.2, 0.5]), st.sampled_from([0.6, 0.9]), st.sampled_from([1, 2])
    ),
)
def test_caps_are_never_exceeded(data, risk_caps):
    """Weights right after each bar's open fills stay within the caps (no costs: exactly; every
    bar re-sized, so price drift between fills does not count)."""
    bars, target, _ = data
    target = np.nan_to_num(target, nan=0.0)
    max_position, max_gross, max_positions = risk_caps
    risk = RiskSpec(max_position=max_position, max_gross=max_gross, max_positions=max_positions)
    engine = EngineSpec(initial_cash=1000.0, rebalance="every_bar")
    res = simulate(bars, target, engine, CostSpec.none(), risk)
    fill_bars = np.unique(res.fills["bar"].to_numpy())
    for i in fill_bars:
        equity = res.cash[i] + (res.positions[i] * bars.open[i]).sum()
        weights = res.positions[i] * bars.open[i] / equity
        assert np.abs(weights).max() <= max_position + 1e-9
        assert np.abs(weights).sum() <= max_gross + 1e-9
        assert (np.abs(weights) > 1e-12).sum() <= max_positions


@SETTINGS
@given(data=risk_market(), costs=cost_specs())
def test_halting_stops_new_risk(data, costs):
    bars, target, _ = data
    risk = RiskSpec(max_drawdown=0.02, drawdown_action="halt", cooldown_bars=1000)
    res = simulate(bars, target, EngineSpec(initial_cash=1000.0), costs, risk)
    trips = res.risk_events[res.risk_events["rule"] == "drawdown_breaker"]
    if trips.empty:
        return
    trip = int(trips["bar"].iloc[0])
    # after the trip positions only shrink toward flat (a flatten may wait for a price or be
    # spread over bars by the volume cap), never grow or flip
    held = np.abs(res.positions[trip:])
    assert np.all(held[1:] <= held[:-1] * (1 + 1e-12))
    assert np.all(res.positions[trip:] * res.positions[trip] >= 0.0)
