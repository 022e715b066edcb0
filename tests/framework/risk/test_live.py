"""The one-bar live functions: same decisions as the engine, and restart idempotence."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from framework.risk import RiskSpec, RiskState
from framework.risk.inputs import risk_inputs
from framework.risk.live import (
    Account,
    check_stops,
    close_checks,
    decide_targets,
    flatten_orders,
    record_fill,
    resume,
)
from tests.framework.risk.generators import risk_market

CASH = 1000.0


def live_loop(bars, target, risk, regime, restart_at=None, decide_last=True):
    """Feed bars one by one (fills at the next open, no costs); optionally persist the state
    to JSON and restore it before bar ``restart_at``. Returns positions per bar, events."""
    inputs = risk_inputs(bars, risk, regime)
    n, m = bars.n_bars, bars.n_assets
    state = RiskState.new(m, CASH)
    pos, cash, marks = np.zeros(m), CASH, np.full(m, np.nan)
    last, pending = np.full(m, np.nan), np.full(m, np.nan)
    path, events = [], []
    for i in range(n):
        if i == restart_at:
            state = RiskState.from_dict(json.loads(json.dumps(state.to_dict())))
        o = bars.open[i]
        if not np.isnan(pending).all():
            equity = cash + sum(
                pos[j] * (o[j] if np.isfinite(o[j]) else marks[j])
                for j in range(m)
                if pos[j] != 0.0
            )
            for j in range(m):
                if np.isnan(pending[j]) or not np.isfinite(o[j]):
                    continue
                order = pending[j] * equity / o[j] - pos[j]
                if order != 0.0:
                    atr_value = inputs[6][i - 1, j]
                    state = record_fill(state, j, pos[j], pos[j] + order, o[j], 0.0, i, atr_value)
                    cash -= order * o[j]
                    pos[j] += order
                pending[j] = np.nan
        prices = (o, bars.high[i], bars.low[i], bars.close[i])
        exits, ev, state = check_stops(state, inputs, i, pos, prices)
        events += ev
        for j, price, _ in exits:
            state = record_fill(state, j, pos[j], 0.0, price, 0.0, i)
            cash += pos[j] * price
            pos[j] = 0.0
        marks = np.where(np.isfinite(bars.close[i]), bars.close[i], marks)
        equity = cash + sum(pos[j] * marks[j] for j in range(m) if pos[j] != 0.0)
        path.append(pos.copy())
        reason, ev, state = close_checks(state, inputs, i, equity, pos, bars.high[i], bars.low[i])
        events += ev
        if i == n - 1 and not decide_last:
            break  # the engine never receives the last bar's targets (nothing fills after)
        account = Account(pos.copy(), marks.copy(), cash, last)
        pending, last, ev, state = decide_targets(state, inputs, bars.close, target[i], i, account)
        events += ev
        if reason is not None:
            pending, state = flatten_orders(state, pos, pending, reason)
    return np.array(path), events, state


SPECS = [
    RiskSpec(max_position=0.5, stop="fixed", stop_pct=0.03),
    RiskSpec(stop="trailing", stop_pct=0.04, take_profit=0.05, max_gross=0.9),
    RiskSpec(
        stop="atr",
        atr_multiplier=1.0,
        atr_window=3,
        max_drawdown=0.05,
        cooldown_bars=2,
        daily_loss_limit=0.02,
        regime_overrides={1: {"max_position": 0.3}},
    ),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=risk_market(max_bars=30), which=st.integers(0, len(SPECS) - 1), cut=st.integers(1, 29))
def test_restart_idempotence(data, which, cut):
    bars, target, regime = data
    target = np.clip(np.nan_to_num(target, nan=0.0), 0.0, 1.0)  # long, weights <= 1
    whole, whole_events, whole_state = live_loop(bars, target, SPECS[which], regime)
    again, again_events, again_state = live_loop(bars, target, SPECS[which], regime, cut)
    np.testing.assert_array_equal(whole, again)
    assert whole_events == again_events
    np.testing.assert_array_equal(whole_state.assets, again_state.assets)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=risk_market(max_bars=30), which=st.integers(0, len(SPECS) - 1))
def test_live_functions_make_the_engine_decisions(data, which):
    bars, target, regime = data
    if np.isnan(bars.open).any() or np.isnan(bars.close).any():
        return  # the simple fill model of the loop has no halted-asset handling
    target = np.clip(np.nan_to_num(target, nan=0.0), 0.0, 1.0) / bars.n_assets
    path, events, _ = live_loop(bars, target, SPECS[which], regime, decide_last=False)
    engine = EngineSpec(initial_cash=CASH)
    sim = simulate(bars, target, engine, CostSpec.none(), SPECS[which], regime)
    np.testing.assert_allclose(path, sim.positions, rtol=1e-9, atol=1e-9)
    assert sorted(e[2] for e in events) == sorted(sim.risk_events["rule"])


def test_manual_resume():
    state = RiskState.new(1, 1000.0)
    state.portfolio[0] = 2.0  # HALTED
    events, new = resume(state, 5, 900.0)
    assert (state.breaker, new.breaker) == ("HALTED", "ACTIVE")
    assert events[0][2] == "breaker_resume"
    assert new.portfolio[2] == 900.0  # peak reset
