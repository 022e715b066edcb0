"""The jitted kernels agree with the slow pure-Python reference on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from framework.engine import simulate
from framework.engine.reference import fifo_trades_reference, simulate_reference
from tests.framework.engine.generators import cost_specs, engine_specs, market

RTOL = 1e-9


def close_enough(actual, expected, scale):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=market(), spec=engine_specs(), costs=cost_specs())
def test_kernel_matches_reference(data, spec, costs):
    bars, target = data
    got = simulate(bars, target, spec, costs)
    ref = simulate_reference(
        bars.open.tolist(), bars.close.tolist(), bars.volume.tolist(), target, spec, costs
    )
    scale = spec.initial_cash
    close_enough(got.equity, ref["equity"], scale)
    close_enough(got.cash, ref["cash"], scale)
    close_enough(got.gross_value, ref["gross"], scale)
    close_enough(got.traded_value, ref["traded"], scale)
    close_enough(got.positions, np.array(ref["positions"]), scale)
    fills = got.fills
    assert len(fills) == len(ref["fills"])
    if ref["fills"]:
        expected = np.array(ref["fills"], dtype=float)
        assert fills["bar"].tolist() == [f[0] for f in ref["fills"]]
        assert fills["symbol"].tolist() == [bars.symbols[f[1]] for f in ref["fills"]]
        columns = ["qty", "price", "commission", "slippage_cost", "impact_cost"]
        close_enough(fills[columns].to_numpy(), expected[:, 2:], scale)
    for kind in ("commission", "slippage", "impact"):
        close_enough(got.costs[kind], ref["totals"][kind], scale)
    assert got.impact_skipped_fills == ref["totals"]["impact_skipped"]
    _check_trades(got, ref, bars)


def _check_trades(got, ref, bars):
    expected = fifo_trades_reference(ref["fills"], ref["marks"], bars.n_bars - 1)
    trades = got.trades
    assert len(trades) == len(expected)
    # the result is sorted by (entry_bar, symbol, exit_bar); sort the reference the same way
    key = [(t["entry_bar"], t["asset"], t["exit_bar"]) for t in expected]
    expected = [t for _, t in sorted(zip(key, expected, strict=True), key=lambda p: p[0])]
    if not expected:
        return
    assert trades["entry_bar"].tolist() == [t["entry_bar"] for t in expected]
    assert trades["exit_bar"].tolist() == [t["exit_bar"] for t in expected]
    assert trades["is_open"].tolist() == [t["is_open"] for t in expected]
    assert trades["symbol"].tolist() == [bars.symbols[t["asset"]] for t in expected]
    assert trades["side"].tolist() == ["long" if t["side"] > 0 else "short" for t in expected]
    for column in ("qty", "entry_price", "exit_price", "pnl"):
        close_enough(trades[column].to_numpy(), [t[column] for t in expected], 1e5)
