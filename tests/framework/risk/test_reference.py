"""With the risk layer on, the jitted kernel agrees with the slow reference on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings

from framework.engine import simulate
from framework.engine.reference import simulate_reference
from framework.risk.events import EXIT_REASONS, RULE_NAMES
from framework.risk.inputs import risk_inputs
from framework.risk.reference import RiskReference
from tests.framework.engine.generators import cost_specs, engine_specs
from tests.framework.risk.generators import risk_market, risk_specs

RTOL = 1e-9


def close_enough(actual, expected, scale):
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=risk_market(), spec=engine_specs(), costs=cost_specs(), risk=risk_specs())
def test_kernel_matches_reference_with_risk_on(data, spec, costs, risk):
    bars, target, regime = data
    got = simulate(bars, target, spec, costs, risk, regime)
    twin = RiskReference(risk_inputs(bars, risk, regime), bars.n_assets, spec.initial_cash)
    ref = simulate_reference(
        bars.open.tolist(), bars.close.tolist(), bars.volume.tolist(), target, spec, costs, twin
    )
    scale = spec.initial_cash
    close_enough(got.equity, ref["equity"], scale)
    close_enough(got.cash, ref["cash"], scale)
    close_enough(got.positions, np.array(ref["positions"]), scale)
    close_enough(got.traded_value, ref["traded"], scale)
    assert got.fills["bar"].tolist() == [f[0] for f in ref["fills"]]
    if ref["fills"]:
        columns = ["qty", "price", "commission", "slippage_cost", "impact_cost"]
        expected = np.array(ref["fills"], dtype=float)[:, 2:]
        close_enough(got.fills[columns].to_numpy(), expected, scale)
    events = got.risk_events
    assert len(events) == len(twin.events)
    assert events["rule"].tolist() == [RULE_NAMES[e[2]] for e in twin.events]
    assert events["bar"].tolist() == [e[0] for e in twin.events]
    if twin.events:
        nums = np.array([e[3:] for e in twin.events], dtype=float)
        close_enough(events[["before", "after", "detail"]].to_numpy(float), nums, scale)
    closed = got.trades[~got.trades["is_open"]]
    assert set(closed["exit_reason"]) <= {EXIT_REASONS[r] for r in ref["reasons"]}
