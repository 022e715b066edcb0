"""Params validation, overrides with did-you-mean, grids and target finalization."""

from __future__ import annotations

import numpy as np
import pytest

from framework.errors import ParameterError, StrategyError
from framework.strategy import Strategy, compute_target, make_params, param_grid, parse_overrides
from strategies.momentum import CrossSectionalMomentum, MomentumParams
from strategies.sma_cross import SmaCross, SmaCrossParams
from tests.barsgen import make_bars


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["fats=10"], "unknown parameter 'fats'. Did you mean 'fast'?"),
        (["fast"], "expects name=value"),
        (["fast=ten"], "expects a int"),
        (["short=maybe"], "expects a bool"),
    ],
)
def test_bad_overrides_give_clear_errors(pairs, message):
    with pytest.raises(ParameterError, match=message.replace("?", r"\?").replace("(", r"\(")):
        parse_overrides(SmaCrossParams, pairs)


def test_overrides_are_typed():
    values = parse_overrides(SmaCrossParams, ["fast=20", "slow=100", "short=true"])
    assert values == {"fast": 20, "slow": 100, "short": True}
    assert make_params(SmaCrossParams, values).slow == 100


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"fast": 50, "slow": 20}, "needs fast < slow"),
        ({"fast": 0}, "below its minimum"),
        ({"slow": 5000}, "above its maximum"),
        ({"fast": 2.5}, "must be an integer"),
    ],
)
def test_invalid_values_are_rejected(values, message):
    with pytest.raises(ParameterError, match=message):
        make_params(SmaCrossParams, values)


def test_grid_skips_invalid_combinations():
    grid = param_grid(SmaCrossParams)
    assert grid and all(p.fast < p.slow for p in grid)
    assert len(grid) == len({(p.fast, p.slow) for p in grid})
    assert len(param_grid(MomentumParams)) == 4 * 2 * 5


def test_single_asset_strategy_splits_equity_across_symbols():
    bars = make_bars(n=300, m=4, seed=3)
    target = compute_target(SmaCross(), bars, SmaCrossParams(fast=5, slow=20))
    assert set(np.unique(target)) <= {0.0, 0.25}
    assert (target[:20] == 0).all()  # warm-up


def test_universe_weights_sum_to_at_most_one():
    bars = make_bars(n=400, m=6, seed=4)
    target = compute_target(CrossSectionalMomentum(), bars, MomentumParams(top_n=2))
    assert np.all(target.sum(axis=1) <= 1 + 1e-12)
    assert target[-1].sum() == pytest.approx(1.0)


def test_wrong_target_shape_is_a_strategy_error():
    class Broken(SmaCross):
        name = "broken"

        def target(self, features, p):
            return np.zeros(3)

    with pytest.raises(StrategyError, match="expected"):
        compute_target(Broken(), make_bars(n=50), SmaCrossParams())


def test_missing_methods_say_what_to_implement():
    with pytest.raises(NotImplementedError, match="features"):
        Strategy().features(make_bars(n=5), None)
