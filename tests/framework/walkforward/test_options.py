"""Options walk-forward: choices come from in-sample runs only, and the stitched run is the
schedule of those choices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.errors import ParameterError
from framework.options.backtest import prepare_market, run_options_backtest
from framework.options.inputs import load_options_inputs
from framework.walkforward.options import options_walk_forward
from framework.walkforward.run import WalkForwardSpec
from framework.walkforward.search import SearchSpec
from framework.walkforward.splits import WindowSpec
from strategies.credit_spread import CreditSpread, CreditSpreadParams

START, END = "2003-01-01", "2007-12-31"


def _spec(**search) -> WalkForwardSpec:
    return WalkForwardSpec(windows=WindowSpec(train="1y", test="1y"),
                           search=SearchSpec(**search), executor="serial")


@pytest.fixture(scope="module")
def closes() -> tuple[pd.Series, object]:
    inputs = load_options_inputs()  # embedded S&P 500 / 10 as XSP, offline
    return inputs.closes, inputs


def _market(closes: pd.Series, inputs):
    return prepare_market(closes, None, inputs.chain_spec, div=inputs.div, underlying="XSP")


@pytest.fixture(scope="module")
def result(closes):
    return options_walk_forward(CreditSpread(), _market(*closes), spec=_spec(), start=START,
                                end=END)


def test_each_fold_chooses_the_in_sample_best(result, closes):
    """Re-run every candidate on each training window by hand: the chosen set has the best
    in-sample Sharpe ratio (ties: the first in grid order)."""
    market = _market(*closes)
    strategy = CreditSpread()
    grid = result.trials
    for fold in result.folds.itertuples():
        rows = grid[grid["fold"] == fold.fold]
        scores = []
        for _, row in rows.iterrows():
            values = {k.removeprefix("param_"): row[k] for k in rows.columns
                      if k.startswith("param_")}
            p = CreditSpreadParams(**{k: (int(v) if isinstance(v, np.integer) else v)
                                      for k, v in values.items()})
            run = run_options_backtest(market, strategy.spec(p), 100_000.0, fold.train_start,
                                       fold.train_end)
            from framework.metrics import sharpe
            scores.append(sharpe(run.returns.to_numpy(), 252.0))
        np.testing.assert_allclose(rows["objective"].to_numpy(), scores, equal_nan=True)
        best = int(np.nanargmax(scores))
        assert rows["chosen"].to_numpy().nonzero()[0].tolist() == [best]


def test_choices_ignore_the_future(result, closes):
    """Replace every close after the first fold's training window with a crash: the first
    fold's choice and in-sample numbers are unchanged (no look-ahead into the test window)."""
    series, inputs = closes
    first = result.folds.iloc[0]
    cut = pd.Timestamp(first["train_end"])
    crashed = series.copy()
    crashed[crashed.index > cut] *= 0.5
    other = options_walk_forward(CreditSpread(), _market(crashed, inputs), spec=_spec(),
                                 start=START, end=END)
    params = [c for c in result.folds.columns if c.startswith("param_")]
    pd.testing.assert_series_equal(other.folds.iloc[0][params], first[params])
    assert other.folds.iloc[0]["is_sharpe"] == first["is_sharpe"]
    assert not np.allclose(other.backtest.returns, result.backtest.returns)


def test_stitched_run_is_the_schedule_of_choices(result, closes):
    market = _market(*closes)
    again = run_options_backtest(market, result.schedule, 100_000.0,
                                 result.folds["test_start"].iloc[0],
                                 result.folds["test_end"].iloc[-1])
    pd.testing.assert_series_equal(again.equity, result.backtest.equity)
    assert [s for _, s in result.schedule.entries] == [CreditSpread().spec(p)
                                                        for p in result.chosen]
    assert result.statistics["n_folds"] == len(result.folds) == 4
    assert result.statistics["n_trials"] == 4 * 24
    assert 0.0 <= result.statistics["pbo"] <= 1.0


def test_random_sample_is_seeded_and_local_equals_serial(closes):
    market = _market(*closes)
    kwargs = dict(windows=WindowSpec(train="1y", test="1y"),
                  search=SearchSpec(method="random", trials=5, seed=3))
    a = options_walk_forward(CreditSpread(), market, spec=WalkForwardSpec(**kwargs,
                             executor="serial"), start=START, end=END)
    b = options_walk_forward(CreditSpread(), market, spec=WalkForwardSpec(**kwargs,
                             executor="local", workers=2), start=START, end=END)
    assert len(a.trials) == 5 * len(a.folds)
    pd.testing.assert_frame_equal(a.folds, b.folds)
    pd.testing.assert_series_equal(a.backtest.equity, b.backtest.equity)


def test_min_trades_falls_back_to_the_base_parameters(closes):
    market = _market(*closes)
    base = CreditSpreadParams(short_delta=0.16)
    r = options_walk_forward(CreditSpread(), market, base, _spec(min_trades=10_000),
                             start=START, end=END)
    assert (r.folds["n_eligible"] == 0).all()
    assert all(p == base for p in r.chosen)
    assert len(r.notes) == len(r.folds) and "kept the base parameters" in r.notes[0]


@pytest.mark.parametrize("spec, words", [
    (WalkForwardSpec(search=SearchSpec(method="optuna")), "--search optuna"),
    (WalkForwardSpec(windows=WindowSpec(train="1y", test="1y", step="2y"), executor="serial"),
     "Drop --step"),
])
def test_unsupported_settings_are_refused(closes, spec, words):
    with pytest.raises(ParameterError, match=words):
        options_walk_forward(CreditSpread(), _market(*closes), spec=spec, start=START, end=END)
