"""In-sample search: the true best on a hand-made case, grid == looping run_backtest, random,
optuna, objectives and constraints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framework import metrics
from framework.backtest import BacktestSpec, run_backtest
from framework.costs import CostSpec
from framework.errors import ParameterError
from framework.strategy import compute_features, compute_target, param_grid
from framework.types import Bars
from framework.walkforward.objectives import resolve_objective
from framework.walkforward.search import (
    InSample,
    SearchSpec,
    candidate_params,
    evaluate,
    optuna_search,
    target_from_features,
)
from framework.walkforward.splits import Fold
from tests.barsgen import make_bars
from tests.framework.walkforward.strategies_for_tests import (
    Level,
    LevelParams,
    SmallCross,
    SmallCrossParams,
)

FRICTIONLESS = BacktestSpec(costs=CostSpec.none())


def _trend_bars(n: int = 120, daily: float = 0.002) -> Bars:
    """A steady rise with small wiggles: long beats flat beats short."""
    bars = make_bars(n=n, seed=5, vol=0.001)
    close = 100.0 * np.exp(daily * np.arange(n))[:, None] * (bars.close / bars.close[0])
    return Bars(
        index=bars.index,
        symbols=bars.symbols,
        open=close.copy(),
        high=close * 1.001,
        low=close * 0.999,
        close=close,
        volume=bars.volume,
    )


def _ctx(strategy, bars, fold, objective="sharpe", spec=FRICTIONLESS, chunk=256 * 2**20):
    ppy = metrics.infer_periods_per_year(bars.index)
    return InSample(strategy, bars, fold, spec, ppy, resolve_objective(objective), chunk)


def test_search_picks_the_true_best_on_a_rising_market():
    # on a steady rise with no costs, total return grows with the long position: level 1.0 wins,
    # then 0.5, then flat (0), and short (-1) is worst
    bars = _trend_bars()
    fold = Fold(0, 20, 100, 100, 120)
    candidates = candidate_params(LevelParams, LevelParams(), SearchSpec())
    found = evaluate(_ctx(Level(), bars, fold, "total_return"), candidates)
    best = found.params[found.best(0)]
    assert best.level == 1.0
    by_level = {p.level: s for p, s in zip(found.params, found.scores, strict=True)}
    assert by_level[1.0] > by_level[0.5] > by_level[0.0] == 0.0 > by_level[-1.0]


def test_ties_go_to_the_first_combination_in_grid_order():
    # dummy changes nothing, so (level 1, dummy 3/1/2) tie exactly: the first in grid order wins
    bars = _trend_bars()
    candidates = candidate_params(LevelParams, LevelParams(), SearchSpec())
    found = evaluate(_ctx(Level(), bars, Fold(0, 0, 100, 100, 120), "total_return"), candidates)
    tied = [i for i, p in enumerate(found.params) if p.level == 1.0]
    assert len({found.scores[i] for i in tied}) == 1 and len(tied) == 3
    assert found.best(0) == tied[0] and found.params[tied[0]].dummy == 3


@pytest.mark.parametrize("objective", ["sharpe", "sortino", "calmar", "total_return"])
@pytest.mark.parametrize("n_assets", [1, 2])
def test_grid_equals_looping_run_backtest(objective, n_assets):
    bars = make_bars(n=260, m=n_assets, seed=21)
    fold = Fold(0, 60, 200, 200, 260)
    strategy, spec = SmallCross(), BacktestSpec()  # default costs on
    candidates = candidate_params(SmallCrossParams, SmallCrossParams(), SearchSpec())
    assert len(candidates) == len(param_grid(SmallCrossParams)) == 16  # 8 fast < slow pairs x short
    found = evaluate(_ctx(strategy, bars, fold, objective, spec), candidates)
    train = bars.iloc(slice(fold.train_start, fold.train_end))
    ppy = metrics.infer_periods_per_year(bars.index)
    for c, p in enumerate(candidates):
        target = compute_target(strategy, bars.iloc(slice(0, fold.train_end)), p)
        result = run_backtest(
            strategy, train, p, spec, target=target[fold.train_start : fold.train_end]
        )
        expected = resolve_objective(objective).score(result.returns.to_numpy(), ppy)
        if math.isnan(expected):
            assert math.isnan(found.scores[c])
        else:
            assert found.scores[c] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(
            found.returns[:, c], result.returns.to_numpy(), rtol=1e-9, atol=1e-12
        )
        assert found.n_fills[c] == len(result.sim.fills)


def test_chunked_grid_equals_one_block():
    bars = make_bars(n=200, seed=4)
    fold = Fold(0, 30, 150, 150, 200)
    candidates = candidate_params(SmallCrossParams, SmallCrossParams(), SearchSpec())
    whole = evaluate(_ctx(SmallCross(), bars, fold), candidates)
    chunked = evaluate(_ctx(SmallCross(), bars, fold, chunk=8 * 120 * 3), candidates)  # 3 columns
    np.testing.assert_array_equal(whole.returns, chunked.returns)
    np.testing.assert_array_equal(whole.n_fills, chunked.n_fills)


def test_target_from_features_equals_compute_target():
    bars = make_bars(n=150, m=2, seed=9)
    strategy = SmallCross()
    for p in param_grid(SmallCrossParams):
        feats = compute_features(strategy, bars, p)
        np.testing.assert_array_equal(
            target_from_features(strategy, bars, feats, p), compute_target(strategy, bars, p)
        )


def test_embargoed_bars_are_not_scored():
    bars = _trend_bars()
    fold = Fold(0, 20, 100, 100, 120, embargoed=((40, 50),))
    found = evaluate(_ctx(Level(), bars, fold, "total_return"), [LevelParams(level=1.0)])
    full = evaluate(
        _ctx(Level(), bars, Fold(0, 20, 100, 100, 120), "total_return"), [LevelParams(level=1.0)]
    )
    assert found.returns.shape == (70, 1)
    np.testing.assert_array_equal(
        found.returns[:, 0], np.delete(full.returns[:, 0], np.arange(20, 30))
    )


def test_min_trades_makes_quiet_combinations_ineligible():
    bars = _trend_bars()
    candidates = [LevelParams(level=0.0), LevelParams(level=0.5), LevelParams(level=1.0)]
    found = evaluate(_ctx(Level(), bars, Fold(0, 0, 100, 100, 120), "total_return"), candidates)
    # constant levels trade once (the entry); flat never trades
    assert list(found.n_fills) == [0, 1, 1]
    assert found.best(min_trades=1) == 2 and found.best(min_trades=2) is None
    assert list(found.eligible(1)) == [False, True, True]


def test_user_objective_callable():
    bars = _trend_bars()
    candidates = candidate_params(LevelParams, LevelParams(), SearchSpec())

    def most_negative_mean(returns: np.ndarray) -> float:
        return -float(np.mean(returns))

    found = evaluate(_ctx(Level(), bars, Fold(0, 0, 100, 100, 120), most_negative_mean), candidates)
    assert found.params[found.best(0)].level == -1.0


def test_random_search_samples_without_replacement_in_grid_order():
    grid = param_grid(SmallCrossParams)
    spec = SearchSpec(method="random", trials=5, seed=3)
    picks = candidate_params(SmallCrossParams, SmallCrossParams(), spec)
    assert len(picks) == len(set(picks)) == 5 and all(p in grid for p in picks)
    assert [grid.index(p) for p in picks] == sorted(grid.index(p) for p in picks)
    assert picks == candidate_params(SmallCrossParams, SmallCrossParams(), spec)
    assert picks != candidate_params(
        SmallCrossParams, SmallCrossParams(), SearchSpec(method="random", trials=5, seed=4)
    )
    assert (
        candidate_params(
            SmallCrossParams, SmallCrossParams(), SearchSpec(method="random", trials=99)
        )
        == grid
    )


def test_optuna_search_is_seeded_and_evaluates_distinct_valid_combinations():
    pytest.importorskip("optuna")
    bars = make_bars(n=220, seed=2)
    ctx = _ctx(SmallCross(), bars, Fold(0, 30, 180, 180, 220))
    spec = SearchSpec(method="optuna", trials=6, seed=1)
    first = optuna_search(ctx, SmallCrossParams, SmallCrossParams(), spec)
    again = optuna_search(ctx, SmallCrossParams, SmallCrossParams(), spec)
    assert first.size == 6 and len(set(first.params)) == 6
    assert all(p.fast < p.slow for p in first.params)
    assert first.params == again.params
    np.testing.assert_array_equal(first.scores, again.scores)
    # each trial scores as the grid evaluation of the same combination does
    grid = evaluate(ctx, first.params)
    np.testing.assert_array_equal(first.scores, grid.scores)


def test_optuna_stops_when_the_valid_grid_is_exhausted():
    pytest.importorskip("optuna")
    bars = make_bars(n=220, seed=2)
    ctx = _ctx(SmallCross(), bars, Fold(0, 30, 180, 180, 220))
    found = optuna_search(
        ctx, SmallCrossParams, SmallCrossParams(), SearchSpec(method="optuna", trials=50)
    )
    assert found.size == 16  # every valid combination, once


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(method="grd"), "Did you mean 'grid'"),
        (dict(trials=0), "trials must be an integer >= 1"),
        (dict(min_trades=-1), "min_trades"),
        (dict(objective="sharp"), "Did you mean 'sharpe'"),
        (dict(objective=42), "callable"),
    ],
)
def test_bad_search_specs(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        SearchSpec(**kwargs)


def test_objective_returning_garbage_is_reported():
    objective = resolve_objective(lambda r: "high")
    with pytest.raises(ParameterError, match="must return a number"):
        objective.score(np.zeros(5), 252.0)
