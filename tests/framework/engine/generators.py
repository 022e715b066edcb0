"""Hypothesis strategies for random bars, targets and specs (shared by the property tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from framework.costs import CostSpec
from framework.engine import EngineSpec
from tests.framework.engine.helpers import make_bars

WEIGHTS = [np.nan, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5]
VOLUMES = [np.nan, 0.0, 40.0, 1_000.0, 1e6]


@st.composite
def market(draw, max_bars=25, max_assets=3, nan_prices=True, nan_closes=True):
    """Random walk prices (with some NaN cells), volumes, and sticky random targets."""
    n = draw(st.integers(2, max_bars))
    m = draw(st.integers(1, max_assets))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.05, (n, m)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.02, (n, m)))
    volume = rng.choice(VOLUMES, size=(n, m))
    if nan_prices:
        open_[rng.random((n, m)) < 0.1] = np.nan
    if nan_closes:
        close[rng.random((n, m)) < 0.1] = np.nan
    # sticky targets: mostly repeat the previous row so on_change has unchanged stretches
    target = rng.choice(WEIGHTS, size=(n, m))
    keep = rng.random((n, m)) < 0.5
    for i in range(1, n):
        target[i, keep[i]] = target[i - 1, keep[i]]
    return make_bars(open_, close=close, volume=volume), target


@st.composite
def engine_specs(draw, long_only=False):
    return EngineSpec(
        initial_cash=draw(st.sampled_from([1_000.0, 100_000.0])),
        fill=draw(st.sampled_from(["next_open", "close"])),
        rebalance=draw(st.sampled_from(["on_change", "every_bar"])),
        whole_shares=draw(st.booleans()),
        allow_short=False if long_only else draw(st.booleans()),
        max_leverage=1.0 if long_only else draw(st.sampled_from([0.5, 1.0, 2.0])),
    )


@st.composite
def cost_specs(draw):
    return CostSpec(
        commission_per_share=draw(st.sampled_from([0.0, 0.005, 0.05])),
        commission_min=draw(st.sampled_from([0.0, 1.0])),
        commission_bps=draw(st.sampled_from([0.0, 10.0])),
        commission_max_pct=draw(st.sampled_from([None, 1.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0, 50.0])),
        impact_coef=draw(st.sampled_from([0.0, 0.1, 1.0])),
        impact_window=draw(st.sampled_from([2, 5])),
        max_participation=draw(st.sampled_from([None, 0.1, 0.5])),
    )
