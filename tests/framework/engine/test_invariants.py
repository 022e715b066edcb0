"""Invariants of the simulation on random inputs (hypothesis)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from tests.framework.engine.generators import cost_specs, engine_specs, market

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=market(nan_closes=False), spec=engine_specs(), costs=cost_specs())
def test_cash_plus_positions_at_close_is_equity(data, spec, costs):
    bars, target = data
    res = simulate(bars, target, spec, costs)
    marked = res.cash + (res.positions * bars.close).sum(axis=1)
    np.testing.assert_allclose(res.equity, marked, rtol=1e-12, atol=1e-9 * spec.initial_cash)
    gross = np.abs(res.positions * bars.close).sum(axis=1)
    np.testing.assert_allclose(res.gross_value, gross, rtol=1e-12, atol=1e-9 * spec.initial_cash)


@SETTINGS
@given(data=market(), spec=engine_specs(long_only=True), costs=cost_specs())
def test_long_only_unlevered_cash_never_negative(data, spec, costs):
    # A commission larger than a sale's proceeds is the one way cash can dip below zero
    # without leverage (a margin debit, as at a broker): a minimum commission on a tiny sale,
    # or impact pricing a sale of 100x the bar volume near zero. Leave both out here.
    bars, target = data
    costs = costs.with_overrides(
        {"commission_min": 0.0, "impact_coef": min(costs.impact_coef, 0.1)}
    )
    res = simulate(bars, target, spec, costs)
    assert (res.positions >= 0).all()
    assert (res.cash >= -1e-9 * spec.initial_cash).all()


@st.composite
def cheaper_and_dearer(draw):
    """Two cost specs where every cost of the second is >= the first (proportional kinds only)."""
    low = draw(cost_specs())
    low = low.with_overrides({"impact_coef": 0.0, "max_participation": None})
    bumps = {}
    for name in ("commission_per_share", "commission_min", "commission_bps", "slippage_bps"):
        bumps[name] = getattr(low, name) + draw(st.sampled_from([0.0, 0.001, 1.0, 7.0]))
    if low.commission_max_pct is not None:
        bumps["commission_max_pct"] = draw(st.sampled_from([None, 1.0, 2.0]))
    return low, low.with_overrides(bumps)


@SETTINGS
@given(data=market(), costs=cheaper_and_dearer(), spec=engine_specs(long_only=True))
def test_higher_costs_never_raise_final_equity(data, costs, spec):
    # Whole shares can make a poorer account hold more cash through a crash, so the
    # claim is about fractional shares; impact (sqrt, cheaper for smaller orders) and the
    # participation cap (changes fill timing) are kept equal at zero / off.
    bars, target = data
    spec = EngineSpec(**{**spec.to_dict(), "whole_shares": False})
    low, high = costs
    cheap = simulate(bars, target, spec, low)
    dear = simulate(bars, target, spec, high)
    assert dear.equity[-1] <= cheap.equity[-1] * (1 + 1e-12) + 1e-9


@SETTINGS
@given(data=market(nan_prices=False, nan_closes=False, max_assets=1))
def test_constant_full_target_without_costs_is_buy_and_hold(data):
    bars, _ = data
    spec = EngineSpec(initial_cash=10_000.0)
    res = simulate(bars, np.ones(bars.n_bars), spec, CostSpec.none())
    first_open = bars.open[1, 0]
    expected = np.concatenate(([10_000.0], 10_000.0 * bars.close[1:, 0] / first_open))
    np.testing.assert_allclose(res.equity, expected, rtol=1e-12)
    assert len(res.fills) == 1


@SETTINGS
@given(data=market(), spec=engine_specs(), costs=cost_specs(), cut=st.integers(1, 24))
def test_prefix_invariance(data, spec, costs, cut):
    bars, target = data
    assume(cut < bars.n_bars)
    full = simulate(bars, target, spec, costs)
    part = simulate(bars.iloc(slice(0, cut)), target[:cut], spec, costs)
    for name in ("equity", "cash", "positions", "gross_value", "traded_value"):
        np.testing.assert_array_equal(getattr(part, name), getattr(full, name)[:cut])
    early = full.fills[full.fills["bar"] < cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.fills, early)


@SETTINGS
@given(data=market(), spec=engine_specs(), costs=cost_specs())
def test_trades_account_for_every_fill(data, spec, costs):
    bars, target = data
    res = simulate(bars, target, spec, costs)
    trades = res.trades
    # closed + open trade quantities per symbol reproduce the traded shares
    for j, symbol in enumerate(bars.symbols):
        fills = res.fills[res.fills["symbol"] == symbol]
        mine = trades[trades["symbol"] == symbol]
        traded = fills["qty"].abs().sum()
        dust = 1e-8 * max(1.0, traded)  # FIFO drops float residue below 1e-9 of a fill or lot
        opened = mine["qty"].sum() + mine.loc[~mine["is_open"], "qty"].sum()
        np.testing.assert_allclose(opened, traded, rtol=1e-9, atol=dust)
        still_open = mine.loc[mine["is_open"]]
        signed = (still_open["qty"] * np.where(still_open["side"] == "long", 1, -1)).sum()
        np.testing.assert_allclose(signed, res.positions[-1, j], rtol=1e-9, atol=dust)
    # with every position closed at the end, trade P&L sums to the change in equity
    if not trades["is_open"].any():
        np.testing.assert_allclose(
            trades["pnl"].sum(),
            res.equity[-1] - spec.initial_cash,
            rtol=1e-9,
            atol=1e-6 * spec.initial_cash,
        )


def test_cost_spec_generator_covers_every_field():
    # guard: a new CostSpec field must be added to the generators above
    assert {f.name for f in fields(CostSpec)} == {
        "commission_per_share",
        "commission_min",
        "commission_bps",
        "commission_max_pct",
        "slippage_bps",
        "impact_coef",
        "impact_window",
        "max_participation",
    }
