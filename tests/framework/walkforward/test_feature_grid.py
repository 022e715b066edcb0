"""The stacked search path (``Strategy.feature_grid``) gives bit-for-bit the one-by-one results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import metrics
from framework.backtest import BacktestSpec
from framework.errors import StrategyError
from framework.indicators import ema
from framework.strategy import compute_target, param, param_grid
from framework.types import Bars
from framework.walkforward.objectives import resolve_objective
from framework.walkforward.search import (
    InSample,
    evaluate,
    stacked_targets,
    uses_feature_grid,
)
from framework.walkforward.splits import Fold
from strategies.sma_cross import SmaCross, SmaCrossParams
from tests.barsgen import bars_strategy, make_bars


@dataclass(frozen=True)
class TinyParams(SmaCrossParams):
    fast: int = param(3, space=(2, 3, 5, 9), stage="features", low=1)
    slow: int = param(12, space=(6, 12, 25), stage="features", low=2)
    short: bool = param(False, space=(False, True), stage="target")


class Tiny(SmaCross):
    """``sma_cross`` (with ``feature_grid``) over a small space including the short flag."""

    name = "tiny_cross"
    params_type = TinyParams


class TinyOneByOne(Tiny):
    """The same strategy without ``feature_grid``: the reference one-combination path."""

    feature_grid = None


def _with_missing_start(bars: Bars, k: int) -> Bars:
    """The first ``k`` closes missing (a symbol not yet trading)."""
    close = bars.close.copy()
    close[:k] = np.nan
    return Bars(bars.index, bars.symbols, bars.open, bars.high, bars.low, close, bars.volume)


def _ctx(strategy, bars: Bars, fold: Fold, chunk: int = 256 * 2**20) -> InSample:
    ppy = metrics.infer_periods_per_year(bars.index)
    return InSample(strategy, bars, fold, BacktestSpec(), ppy, resolve_objective("sharpe"), chunk)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars=bars_strategy(min_n=40, max_n=200, max_m=1), data=st.data())
def test_stacked_targets_equal_compute_target_column_by_column(bars, data):
    missing = data.draw(st.integers(0, 30), label="missing closes")
    bars = _with_missing_start(bars, missing)
    grid = param_grid(TinyParams)
    short = data.draw(st.booleans(), label="short")
    subset = data.draw(
        st.lists(st.sampled_from([p for p in grid if p.short == short]), min_size=1, max_size=12),
        label="combinations",
    )
    stacked = stacked_targets(Tiny(), bars, subset)
    assert stacked.shape == (bars.n_bars, len(subset))
    for c, p in enumerate(subset):
        np.testing.assert_array_equal(stacked[:, c], compute_target(Tiny(), bars, p)[:, 0])


@pytest.mark.parametrize("chunk", [256 * 2**20, 8 * 200 * 4 * 3])
def test_evaluate_with_feature_grid_equals_the_one_by_one_path(chunk):
    bars = _with_missing_start(make_bars(n=260, seed=21), 7)
    fold = Fold(0, 60, 200, 200, 260)
    candidates = param_grid(TinyParams)
    assert uses_feature_grid(Tiny(), bars) and not uses_feature_grid(TinyOneByOne(), bars)
    fast = evaluate(_ctx(Tiny(), bars, fold, chunk), candidates)
    slow = evaluate(_ctx(TinyOneByOne(), bars, fold), candidates)
    np.testing.assert_array_equal(fast.returns, slow.returns)
    np.testing.assert_array_equal(fast.n_fills, slow.n_fills)
    np.testing.assert_array_equal(fast.scores, slow.scores)
    np.testing.assert_array_equal(fast.sharpes, slow.sharpes)
    assert fast.params == slow.params


class EmaLike(Tiny):
    """Overrides ``features`` but inherits ``feature_grid``: the stacked SMAs would be wrong."""

    name = "ema_like"

    def features(self, bars: Bars, p: TinyParams) -> dict[str, np.ndarray]:
        return {"fast": ema(bars.close, p.fast), "slow": ema(bars.close, p.slow)}


class EmaLikeOneByOne(EmaLike):
    feature_grid = None


def test_feature_grid_is_not_used_where_columns_are_not_combinations():
    two = make_bars(n=60, m=2, seed=2)
    assert not uses_feature_grid(Tiny(), two)  # several assets: columns are symbols


def test_an_inherited_feature_grid_is_ignored_when_features_are_overridden():
    bars = make_bars(n=120, seed=8)
    assert not uses_feature_grid(EmaLike(), bars)
    fold = Fold(0, 20, 90, 90, 120)
    candidates = param_grid(TinyParams)
    found = evaluate(_ctx(EmaLike(), bars, fold), candidates)
    reference = evaluate(_ctx(EmaLikeOneByOne(), bars, fold), candidates)
    np.testing.assert_array_equal(found.returns, reference.returns)
    # and the EMA results really differ from the SMA ones the inherited feature_grid gives
    assert not np.array_equal(found.returns, evaluate(_ctx(Tiny(), bars, fold), candidates).returns)


class WrongShape(Tiny):
    name = "wrong_shape"

    def feature_grid(self, bars: Bars, params_list: Sequence[TinyParams]) -> dict:
        return {"fast": bars.close, "slow": bars.close}  # one column, not one per combination


class Pooled(Tiny):
    name = "pooled"

    def target(self, features: Mapping[str, np.ndarray], p: TinyParams) -> np.ndarray:
        # not column-wise: one position for all columns
        return (features["fast"] > features["slow"]).mean(axis=1, keepdims=True)


class Infinite(Tiny):
    name = "infinite"

    def target(self, features: Mapping[str, np.ndarray], p: TinyParams) -> np.ndarray:
        return np.full(features["fast"].shape, np.inf)


@pytest.mark.parametrize(
    ("strategy", "match"),
    [
        (WrongShape(), r"feature_grid\(\)\['fast'\] has shape \(80, 1\); expected \(80, 3\)"),
        (Pooled(), r"stacked features returned shape \(80, 1\); expected \(80, 3\)"),
        (Infinite(), "infinite weight"),
    ],
)
def test_bad_feature_grid_strategies_are_caught(strategy, match):
    bars = make_bars(n=80, seed=3)
    subset = [p for p in param_grid(TinyParams) if not p.short][:3]
    with pytest.raises(StrategyError, match=match):
        stacked_targets(strategy, bars, subset)
