"""Causal rebalancing loop and regime-driven method selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.errors import ParameterError
from framework.portfolio_opt import (
    OptimizerSpec,
    RegimeSpec,
    forward_fill,
    month_start,
    optimize,
    rebalance_weights,
    simple_returns,
)


def _prices(n: int = 400, m: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0.0004, 0.012, (n, m)), axis=0))


def test_month_start_flags_first_bar_of_each_month():
    index = pd.DatetimeIndex(["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02", "2024-03-01"],
                             tz="UTC")
    assert month_start(index).tolist() == [False, False, True, False, True]


def test_simple_returns_mark_missing_prices():
    close = np.array([[1.0, np.nan], [1.1, 2.0], [1.21, 2.2]])
    r = simple_returns(close)
    assert np.isnan(r[0]).all() and np.isnan(r[1, 1])
    np.testing.assert_allclose(r[2], [0.1, 0.1])


def test_rebalance_rows_use_only_their_trailing_window():
    returns = simple_returns(_prices())
    flags = np.zeros(len(returns), dtype=bool)
    flags[[10, 80, 81, 200, 399]] = True
    spec = OptimizerSpec(lookback=80)
    out = rebalance_weights(returns, flags, spec, method="min_variance")
    assert np.isnan(out[[10, 11, 79, 100]]).all()  # before a full window, and between rebalances
    for i in (80, 200, 399):
        np.testing.assert_array_equal(out[i], optimize(returns[i - 79 : i + 1], "min_variance", spec))
    # dropping early history or changing later returns changes nothing at or before a bar
    late = rebalance_weights(returns[50:], flags[50:], spec, method="min_variance")
    np.testing.assert_array_equal(late[200 - 50], out[200])
    changed = returns.copy()
    changed[201:] *= 3.0
    np.testing.assert_array_equal(rebalance_weights(changed, flags, spec, "min_variance")[:201], out[:201])


def test_forward_fill_holds_weights_until_next_rebalance():
    w = np.full((5, 2), np.nan)
    w[1] = [0.3, 0.7]
    w[3] = [1.0, 0.0]
    np.testing.assert_array_equal(forward_fill(w), [[0, 0], [0.3, 0.7], [0.3, 0.7], [1, 0], [1, 0]])


def test_regime_labels_choose_method_and_cash():
    returns = simple_returns(_prices(seed=1))
    flags = np.zeros(len(returns), dtype=bool)
    flags[[100, 150, 200, 250, 300]] = True
    labels = np.full(len(returns), np.nan)
    labels[[150, 200, 250, 300]] = [0, 1, 2, 3]
    spec = OptimizerSpec(lookback=60, max_weight=0.5)
    out = rebalance_weights(returns, flags, spec, labels=labels)
    expected = {100: ("min_variance", 0.0), 150: ("max_sharpe", 0.0), 200: ("min_variance", 0.0),
                250: ("risk_parity", 0.0), 300: ("min_variance", 0.15)}
    for i, (method, cash) in expected.items():
        ref = (1 - cash) * optimize(returns[i - 59 : i + 1], method, spec)
        np.testing.assert_allclose(out[i], ref, atol=1e-12)
    assert out[300].sum() == pytest.approx(0.85)


def test_regime_map_is_configurable_and_checked():
    custom = RegimeSpec(methods=("hrp", "equal_weight", "risk_parity", "min_variance"),
                        cash=(0.0, 0.5, 0.0, 0.2))
    assert custom.select(1) == ("equal_weight", 0.5)
    assert custom.select(float("nan")) == ("min_variance", 0.0)
    with pytest.raises(ParameterError, match="regime label 7"):
        custom.select(7)
    with pytest.raises(ParameterError, match="max_sharpe"):
        RegimeSpec(methods=("max_sharp", "min_variance", "risk_parity", "min_variance"))
    with pytest.raises(ParameterError, match="cash for VOLATILE"):
        RegimeSpec(cash=(0.0, 0.0, 0.0, 1.0))


def test_too_few_assets_for_the_cap_hold_cash():
    close = _prices(m=4)
    close[:300, 1:] = np.nan  # three assets listed late
    returns = simple_returns(close)
    flags = np.zeros(len(returns), dtype=bool)
    flags[[200, 399]] = True
    out = rebalance_weights(returns, flags, OptimizerSpec(lookback=60, max_weight=0.3), "max_sharpe")
    np.testing.assert_array_equal(out[200], [0.3, 0.0, 0.0, 0.0])
    assert out[399].sum() == pytest.approx(1.0) and out[399].max() <= 0.3 + 1e-9
