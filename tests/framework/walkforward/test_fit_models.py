"""Learned strategies in the walk-forward search: one fit per distinct non-target combination,
on the training window plus its warm-up, never on a bar at or after the window's end."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pytest

from framework import metrics
from framework.backtest import BacktestSpec
from framework.costs import CostSpec
from framework.strategy import Params, Strategy, param
from framework.types import Bars
from framework.walkforward import SearchSpec, WalkForwardSpec, WindowSpec, walk_forward
from framework.walkforward.objectives import resolve_objective
from framework.walkforward.search import (
    InSample,
    candidate_params,
    evaluate,
    fit_models,
    fit_window,
)
from framework.walkforward.splits import Fold
from tests.barsgen import make_bars
from tests.framework.walkforward.strategies_for_tests import SmallCross, SmallCrossParams


@dataclass(frozen=True)
class CountingParams(Params):
    window: int = param(5, space=(5, 12), stage="features", low=1)
    shift: float = param(0.0, space=(0.0, 0.01), stage="fit")
    scale: float = param(1.0, space=(0.5, 1.0, 2.0), stage="target", low=0.0)


@dataclass(frozen=True)
class Seen:
    """What one fit was given (the model the strategy returns)."""

    params: CountingParams
    first: object
    last: object
    n_bars: int
    level: float


class Counting(Strategy):
    """Long when the close is above the mean close of the bars ``fit`` saw (plus ``shift``).

    Every ``fit`` call is recorded on the instance (tests only: real strategies keep no state).
    """

    name = "counting"
    params_type = CountingParams

    def __init__(self) -> None:
        self.fits: list[Seen] = []

    def warmup(self, p: CountingParams) -> int:
        return 2 * p.window  # depends on a features parameter, as real warm-ups do

    def fit(self, bars: Bars, p: CountingParams) -> Seen:
        seen = Seen(p, bars.index[0], bars.index[-1], bars.n_bars,
                    float(np.nanmean(bars.close)) * (1.0 + p.shift))
        self.fits.append(seen)
        return seen

    def features(self, bars: Bars, p: CountingParams) -> dict[str, np.ndarray]:
        return {"close": bars.close}

    def target(self, features: Mapping[str, np.ndarray], p: CountingParams, model: Seen) -> np.ndarray:
        return (features["close"] > model.level).astype(float) * min(p.scale, 1.0)


def _non_target(p: Params) -> tuple:
    return tuple((k, getattr(p, k)) for k, m in p.meta().items() if m.stage != "target")


def _ctx(strategy, bars, fold):
    return InSample(strategy, bars, fold, BacktestSpec(costs=CostSpec.none()),
                    metrics.infer_periods_per_year(bars.index), resolve_objective("sharpe"))


BARS = make_bars(n=200, seed=3)


def test_evaluate_fits_once_per_distinct_non_target_combination():
    strategy = Counting()
    candidates = candidate_params(CountingParams, CountingParams(), SearchSpec())
    assert len(candidates) == 12  # 2 windows x 2 shifts x 3 scales
    found = evaluate(_ctx(strategy, BARS, Fold(0, 40, 120, 120, 160)), candidates)
    assert len(strategy.fits) == 4
    assert len({_non_target(s.params) for s in strategy.fits}) == 4
    # a scale (target-stage) grid shares one model; other combinations get their own
    assert len(found.models) == 12
    for p, model in zip(found.params, found.models, strict=True):
        assert _non_target(model.params) == _non_target(p)
        twins = [m for q, m in zip(found.params, found.models, strict=True)
                 if _non_target(q) == _non_target(p)]
        assert all(m is model for m in twins) and len(twins) == 3
    assert np.isfinite(found.scores).any()


def test_fit_models_without_fit_gives_no_models():
    fold = Fold(0, 0, 100, 100, 150)
    candidates = [SmallCrossParams(), SmallCrossParams(fast=3)]
    assert fit_models(SmallCross(), BARS, fold, candidates) == [None, None]


@pytest.mark.parametrize(
    ("window", "train_start", "train_end"),
    [(5, 40, 120), (12, 40, 120), (12, 10, 90), (5, 0, 60), (12, 24, 200)],
)
def test_fit_window_is_the_training_window_plus_exactly_the_warmup(window, train_start, train_end):
    strategy = Counting()
    p = CountingParams(window=window)
    fold = Fold(0, train_start, train_end, train_end, min(train_end + 20, BARS.n_bars))
    got = fit_window(strategy, BARS, fold, p)
    first = max(0, train_start - strategy.warmup(p))  # clipped at the first bar
    assert got.n_bars == train_end - first
    np.testing.assert_array_equal(got.close, BARS.close[first:train_end])
    assert got.index[0] == BARS.index[first] and got.index[-1] == BARS.index[train_end - 1]


def test_fits_never_see_a_bar_at_or_after_the_training_end():
    strategy = Counting()
    fold = Fold(0, 30, 110, 115, 160)  # a purge gap between train_end and test_start
    candidates = candidate_params(CountingParams, CountingParams(), SearchSpec())
    models = fit_models(strategy, BARS, fold, candidates)
    for model in models:
        assert model.last == BARS.index[fold.train_end - 1] < BARS.index[fold.train_end]
        assert model.first == BARS.index[fold.train_start - 2 * model.params.window]
        assert model.n_bars == fold.train_end - fold.train_start + 2 * model.params.window


def test_changing_bars_after_the_training_end_changes_no_model():
    fold = Fold(0, 30, 110, 110, 160)
    later = BARS.close.copy()
    later[fold.train_end:] *= 3.0
    changed = Bars(index=BARS.index, symbols=BARS.symbols, open=later, high=later * 1.01,
                   low=later * 0.99, close=later, volume=BARS.volume)
    candidates = [CountingParams(window=w) for w in (5, 12)]
    before = fit_models(Counting(), BARS, fold, candidates)
    after = fit_models(Counting(), changed, fold, candidates)
    assert [m.level for m in before] == [m.level for m in after]


def test_walk_forward_fits_each_fold_on_its_own_past_only():
    strategy = Counting()
    spec = WalkForwardSpec(windows=WindowSpec(train=60, test=30, purge=2),
                           search=SearchSpec(method="grid"), executor="serial")
    wf = walk_forward(strategy, BARS, None, spec, BacktestSpec(costs=CostSpec.none()))
    folds = wf.splits
    assert len(folds) >= 3
    # every fold fitted once per distinct (window, shift) and nothing else
    assert len(strategy.fits) == 4 * len(folds)
    for fold, entry in zip(folds, wf.schedule, strict=True):
        model = entry.model
        assert isinstance(model, Seen)
        assert model.last == BARS.index[fold.train_end - 1]
        assert model.last < BARS.index[fold.test_start]
        assert _non_target(model.params) == _non_target(entry.params)
