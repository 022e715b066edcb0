"""The bar loop skips the decision and order stages on quiet bars; skipping changes nothing.

Quiet bars are those whose decision row repeats the previous one while nothing is pending (and,
with the risk layer on, no exit rule can fire). Two ways to pin that the shortcut is exact:

- a repeated row and a row of NaN ("no opinion") ask for the same thing, but only the repeated
  row is recognized as quiet; the NaN row goes through the full decision stage. The results
  must be identical bit for bit;
- every column of a grid equals ``simulate`` of that column exactly, risk on or off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate, simulate_grid
from framework.risk import RiskSpec
from framework.types import Bars
from tests.framework.engine.generators import cost_specs, engine_specs
from tests.framework.risk.generators import risk_market, risk_specs

# risk rule sets under which a NaN row and a repeated row are the same decision (no sizing
# that moves with the data, no caps or breakers that re-decide a held target)
SAME_DECISION_RISKS = [
    None,
    RiskSpec(),
    RiskSpec(stop="trailing", stop_pct=0.04),
    RiskSpec(stop="fixed", stop_pct=0.03, take_profit=0.05),
    RiskSpec(time_stop_bars=7),
    RiskSpec(sizing="fixed_fraction", sizing_fraction=0.5),
]


def walk_bars(n: int, seed: int) -> Bars:
    """One asset, daily, a random walk with highs/lows wide enough for stops to trigger."""
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.fmax(open_, close) * (1.0 + rng.uniform(0, 0.03, n))
    low = np.fmin(open_, close) * (1.0 - rng.uniform(0, 0.03, n))
    return Bars(
        index=pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC"),
        symbols=("X",),
        open=open_.reshape(-1, 1),
        high=high.reshape(-1, 1),
        low=low.reshape(-1, 1),
        close=close.reshape(-1, 1),
        volume=rng.uniform(1e5, 1e6, (n, 1)),
    )


def sticky_targets(n: int, k: int, seed: int) -> np.ndarray:
    """``(n, k)`` targets that change rarely (long quiet stretches, like a parameter grid)."""
    rng = np.random.default_rng(seed)
    choices = np.array([0.0, 0.5, 1.0, -0.5])
    targets = np.empty((n, k))
    targets[0] = rng.choice(choices, k)
    for i in range(1, n):
        switch = rng.random(k) < 0.05
        targets[i] = np.where(switch, rng.choice(choices, k), targets[i - 1])
    return targets


def repeats_as_nan(target: np.ndarray) -> np.ndarray:
    """The same decisions with every repeated value replaced by NaN (no opinion)."""
    out = target.copy()
    out[1:][target[1:] == target[:-1]] = np.nan
    return out


@pytest.mark.parametrize("risk", SAME_DECISION_RISKS)
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_quiet_bars_equal_the_full_decision_stage(risk, fill):
    bars = walk_bars(400, seed=3)
    spec = EngineSpec(fill=fill, allow_short=True)
    targets = sticky_targets(400, 4, seed=5)
    for c in range(targets.shape[1]):
        fast = simulate(bars, targets[:, c], spec, CostSpec(), risk)
        full = simulate(bars, repeats_as_nan(targets[:, c]), spec, CostSpec(), risk)
        np.testing.assert_array_equal(fast.equity, full.equity)
        np.testing.assert_array_equal(fast.positions, full.positions)
        pd.testing.assert_frame_equal(fast.fills, full.fills)
        assert fast.fills.shape[0] > 0  # the scenario trades


@pytest.mark.parametrize("risk", SAME_DECISION_RISKS)
def test_grid_columns_equal_simulate_exactly_on_a_long_sticky_grid(risk):
    bars = walk_bars(600, seed=11)
    spec = EngineSpec(allow_short=True)
    # C-ordered with more columns than one block, so blocks and a partial block both run
    targets = np.ascontiguousarray(sticky_targets(600, 37, seed=13))
    grid = simulate_grid(bars, targets, spec, CostSpec(), risk)
    for c in range(targets.shape[1]):
        single = simulate(bars, targets[:, c], spec, CostSpec(), risk)
        np.testing.assert_array_equal(grid.equity[:, c], single.equity)
        assert grid.n_fills[c] == len(single.fills)
        assert grid.bars_in_market[c] == int((single.gross_value > 0).sum())
        assert grid.risk_events[c] == len(single.risk_events)
    fortran = simulate_grid(bars, np.asfortranarray(targets), spec, CostSpec(), risk)
    np.testing.assert_array_equal(fortran.equity, grid.equity)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=risk_market(max_assets=1),
    spec=engine_specs(),
    costs=cost_specs(),
    risk=risk_specs(m=1),
    seed=st.integers(0, 99),
)
def test_grid_columns_equal_simulate_with_risk_on(data, spec, costs, risk, seed):
    bars, target, regime = data
    rng = np.random.default_rng(seed)
    targets = np.column_stack([target[:, 0], rng.permutation(target[:, 0]), np.zeros(len(bars))])
    grid = simulate_grid(bars, targets, spec, costs, risk, regime)
    for c in range(3):
        single = simulate(bars, targets[:, c], spec, costs, risk, regime)
        np.testing.assert_array_equal(grid.equity[:, c], single.equity)
        assert grid.n_fills[c] == len(single.fills)
        assert grid.risk_events[c] == len(single.risk_events)
        assert grid.bars_in_market[c] == int((single.gross_value > 0).sum())
