"""simulate_grid runs k portfolios on one asset; each column equals a simulate run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate, simulate_grid
from framework.errors import EngineError
from tests.framework.engine.generators import cost_specs, engine_specs, market
from tests.framework.engine.helpers import make_bars


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=market(max_assets=1), spec=engine_specs(), costs=cost_specs(), seed=st.integers(0, 99))
def test_each_grid_column_equals_simulate(data, spec, costs, seed):
    bars, target = data
    rng = np.random.default_rng(seed)
    targets = np.column_stack([target[:, 0], rng.permutation(target[:, 0]), np.zeros(len(bars))])
    grid = simulate_grid(bars, targets, spec, costs)
    assert grid.equity.shape == (bars.n_bars, 3)
    for c in range(3):
        single = simulate(bars, targets[:, c], spec, costs)
        np.testing.assert_array_equal(grid.equity[:, c], single.equity)
        assert grid.n_fills[c] == len(single.fills)
        assert grid.commission[c] == pytest.approx(single.costs["commission"], rel=1e-12, abs=1e-12)
        assert grid.slippage[c] == pytest.approx(single.costs["slippage"], rel=1e-12, abs=1e-12)
        assert grid.impact[c] == pytest.approx(single.costs["impact"], rel=1e-12, abs=1e-12)
        assert grid.impact_skipped_fills[c] == single.impact_skipped_fills
        assert grid.traded_value[c] == pytest.approx(single.traded_value.sum(), rel=1e-12)
        assert grid.bars_in_market[c] == int((single.gross_value > 0).sum())
    np.testing.assert_allclose(grid.returns[:, 0], single_returns(bars, targets[:, 0], spec, costs))


def single_returns(bars, target, spec, costs):
    return simulate(bars, target, spec, costs).returns.to_numpy()


def test_grid_rejects_a_universe_and_bad_shapes():
    bars = make_bars([[10.0, 20.0]] * 4)
    with pytest.raises(EngineError, match="one asset"):
        simulate_grid(bars, np.zeros((4, 2)))
    one = make_bars([10.0] * 4)
    with pytest.raises(EngineError, match=r"expected \(n_bars, k\) = \(4, k\)"):
        simulate_grid(one, np.zeros((5, 2)))
    with pytest.raises(EngineError, match="infinite"):
        simulate_grid(one, np.array([[0.0], [np.inf], [0.0], [0.0]]))


def test_grid_accepts_fortran_ordered_targets():
    bars = make_bars([10.0, 11.0, 12.0, 13.0, 12.0])
    targets = np.asfortranarray(np.array([[0, 1, 1, 0, 0], [1, 1, 0, 0, 1]], dtype=float).T)
    grid = simulate_grid(bars, targets, EngineSpec(), CostSpec.none())
    expected = [simulate(bars, targets[:, c], EngineSpec(), CostSpec.none()).equity for c in (0, 1)]
    np.testing.assert_array_equal(grid.equity, np.column_stack(expected))
