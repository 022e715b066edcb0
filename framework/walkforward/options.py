"""Walk-forward optimization of an options strategy on the options backtester.

The same protocol as :func:`framework.walkforward.run.walk_forward`, on the options backtester
instead of the stock engine: folds from :func:`~framework.walkforward.splits.make_folds` over the
trading days; in each fold every candidate parameter set (grid or seeded random sample of the
strategy's declared spaces) runs on the training window alone, starting flat, and the objective
scores its daily returns; the best eligible set (at least ``min_trades`` closed trades) governs
the fold's test window. The chosen specs become one
:class:`~framework.options.backtest.CreditSpreadSchedule` and the out-of-sample result is **one**
run over all test windows, so cash and open spreads carry across fold boundaries (a spread keeps
the exit rules it was opened with). The IV rank reads the history before each window, which is
past data. PBO, the deflated Sharpe ratio and walk-forward efficiency use the shared
implementations in :mod:`framework.walkforward.stats`.

Optuna search is not offered here (options runs are cheap enough for a grid, and the seeded
random sample caps large spaces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework import metrics
from framework.errors import ParameterError
from framework.options.backtest import (
    PERIODS_PER_YEAR,
    CreditSpreadSchedule,
    OptionsBacktestResult,
    OptionsMarket,
    run_options_backtest,
    trading_window,
)
from framework.options.risk import OptionsRisk
from framework.options.strategy import OptionsStrategy
from framework.strategy import Params
from framework.walkforward.executor import run_tasks
from framework.walkforward.run import WalkForwardSpec
from framework.walkforward.search import candidate_params
from framework.walkforward.splits import Fold, make_folds
from framework.walkforward.stats import (
    deflated_sharpe_ratio,
    parameter_stability,
    per_period_sharpe_columns,
    probability_of_backtest_overfitting,
    walk_forward_efficiency,
)


@dataclass(frozen=True, eq=False)
class OptionsFoldTask:
    """One fold's search, sent to a worker process."""

    strategy: OptionsStrategy
    market: OptionsMarket
    days: pd.DatetimeIndex
    fold: Fold
    candidates: list[Params]
    base: Params
    spec: WalkForwardSpec
    initial_cash: float
    risk: OptionsRisk | None = None


@dataclass(frozen=True, eq=False)
class OptionsFoldOutcome:
    fold: Fold
    chosen: Params
    scores: np.ndarray
    n_trades: np.ndarray
    returns: np.ndarray
    best_returns: np.ndarray
    n_eligible: int
    pbo: float
    note: str = ""


@dataclass(frozen=True, eq=False)
class OptionsWalkForwardResult:
    """Outcome of :func:`options_walk_forward`.

    Attributes
    ----------
    backtest : OptionsBacktestResult
        The stitched out-of-sample run (its ``summary`` includes the walk-forward statistics).
    folds : DataFrame
        One row per fold: windows, chosen ``param_*``, in-sample and out-of-sample metrics,
        ``n_combinations``, ``n_eligible``, ``pbo``, ``note``.
    schedule : CreditSpreadSchedule
        The chosen spec per test window.
    chosen : tuple of Params
        The chosen parameter set per fold.
    trials : DataFrame
        Every evaluated combination per fold with its objective and trade count.
    statistics : dict
        ``walk_forward_efficiency``, ``deflated_sharpe``, ``pbo``, ``n_folds``, ``n_trials``.
    parameter_stability : DataFrame
    notes : tuple of str
    """

    backtest: OptionsBacktestResult
    folds: pd.DataFrame
    schedule: CreditSpreadSchedule
    chosen: tuple[Params, ...]
    trials: pd.DataFrame
    statistics: dict[str, float | int]
    parameter_stability: pd.DataFrame
    notes: tuple[str, ...]


def options_walk_forward(
    strategy: OptionsStrategy,
    market: OptionsMarket,
    params: Params | None = None,
    spec: WalkForwardSpec | None = None,
    initial_cash: float = 100_000.0,
    start: object = None,
    end: object = None,
    risk: OptionsRisk | None = None,
) -> OptionsWalkForwardResult:
    """Walk-forward optimize ``strategy`` on ``market`` and run the stitched out-of-sample test.

    Parameters
    ----------
    strategy : OptionsStrategy
        Its ``Params`` declare the search spaces; ``strategy.spec(p)`` gives the rules.
    market : OptionsMarket
        From :func:`framework.options.backtest.prepare_market`.
    params : Params, optional
        Values of the parameters without a search space (default: the defaults).
    spec : WalkForwardSpec, optional
        Windows and search (``grid`` or ``random``); ``executor``/``workers`` as for stocks.
    initial_cash : float
        Starting equity of every run.
    start, end : date-like, optional
        The span cut into folds (default: every day with a vol level).
    risk : OptionsRisk, optional
        Risk rules of every in-sample and out-of-sample run.

    Raises
    ------
    ParameterError
        Optuna search, a step longer than the test window, or too little data for one fold.
    """
    spec = spec or WalkForwardSpec()
    params = params or strategy.default_params()
    if spec.search.method == "optuna":
        raise ParameterError(
            "options walk-forward searches by grid or seeded random sample; got --search optuna. "
            "Use --search grid (default) or --search random --trials N.")
    if not isinstance(params, strategy.params_type):
        raise ParameterError(f"params are {type(params).__name__}; {strategy.name} expects "
                             f"{strategy.params_type.__name__}.")
    lo, hi = trading_window(market, start, end)
    days = market.days[lo:hi]
    folds = make_folds(days, spec.windows)
    if any(b.test_start != a.test_end for a, b in zip(folds, folds[1:], strict=False)):
        raise ParameterError(
            f"options walk-forward needs test windows that touch (--step equal to --test); got "
            f"step {spec.windows.step} with test {spec.windows.test}. Drop --step.")
    candidates = candidate_params(type(params), params, spec.search)
    tasks = [OptionsFoldTask(strategy, market, days, f, candidates, params, spec,
                             float(initial_cash), risk) for f in folds]
    outcomes: list[OptionsFoldOutcome] = run_tasks(
        run_options_fold, tasks, spec.executor, spec.workers,
        description="options walk-forward folds", address=spec.address)
    schedule = CreditSpreadSchedule(tuple(
        (days[o.fold.test_start], strategy.spec(o.chosen)) for o in outcomes))
    first, last = days[folds[0].test_start], days[folds[-1].test_end - 1]
    result = run_options_backtest(market, schedule, initial_cash, first, last, risk)
    return _assemble(result, days, outcomes, schedule, candidates)


def run_options_fold(task: OptionsFoldTask) -> OptionsFoldOutcome:
    """Run every candidate on the fold's training window and choose the best eligible one."""
    f, days = task.fold, task.days
    train_first, train_last = days[f.train_start], days[f.train_end - 1]
    search = task.spec.search
    scored = f.scored()
    k = len(task.candidates)
    scores, n_trades = np.full(k, np.nan), np.zeros(k, dtype=np.int64)
    returns = np.zeros((int(scored.sum()), k))
    for c, p in enumerate(task.candidates):
        run = run_options_backtest(task.market, task.strategy.spec(p), task.initial_cash,
                                   train_first, train_last, task.risk)
        r = run.returns.to_numpy()[scored]
        returns[:, c] = r
        scores[c] = search.objective.score(r, PERIODS_PER_YEAR)
        n_trades[c] = int(run.summary["n_trades"])
    eligible = np.isfinite(scores) & (n_trades >= search.min_trades)
    note = ""
    if eligible.any():
        best = int(np.flatnonzero(eligible)[np.argmax(scores[eligible])])
        chosen, best_returns = task.candidates[best], returns[:, best]
    else:
        note = (f"no eligible combination (objective undefined or fewer than "
                f"{search.min_trades} trades); kept the base parameters")
        chosen = task.base
        base_run = run_options_backtest(task.market, task.strategy.spec(chosen),
                                        task.initial_cash, train_first, train_last, task.risk)
        best_returns = base_run.returns.to_numpy()[scored]
    pbo = math.nan
    if k >= 2 and returns.shape[0] >= task.spec.pbo_blocks:
        pbo = probability_of_backtest_overfitting(
            returns, task.spec.pbo_blocks, task.spec.pbo_max_combinations).pbo
    return OptionsFoldOutcome(f, chosen, scores, n_trades, returns, best_returns,
                              int(eligible.sum()), pbo, note)


def _assemble(result: OptionsBacktestResult, days: pd.DatetimeIndex,
              outcomes: list[OptionsFoldOutcome], schedule: CreditSpreadSchedule,
              candidates: list[Params]) -> OptionsWalkForwardResult:
    oos = result.returns.to_numpy()
    span_start = outcomes[0].fold.test_start
    rows, is_annual, oos_annual = [], [], []
    for o in outcomes:
        f = o.fold
        fold_oos = oos[f.test_start - span_start: f.test_end - span_start]
        row = _fold_row(days, o, fold_oos)
        rows.append(row)
        is_annual.append(row["is_annual_return"])
        oos_annual.append(row["oos_annual_return"])
    n_trials = sum(o.scores.size for o in outcomes)
    variances = [np.var(s[np.isfinite(s)], ddof=1)
                 for s in (per_period_sharpe_columns(o.returns) for o in outcomes)
                 if np.isfinite(s).sum() >= 2]
    dsr = deflated_sharpe_ratio(oos, n_trials=max(n_trials, 1),
                                sharpe_variance=float(np.mean(variances)) if variances else 0.0)
    pbos = [o.pbo for o in outcomes if not math.isnan(o.pbo)]
    statistics: dict[str, float | int] = {
        "walk_forward_efficiency": walk_forward_efficiency(is_annual, oos_annual),
        "deflated_sharpe": dsr.dsr,
        "pbo": float(np.mean(pbos)) if pbos else math.nan,
        "n_folds": len(outcomes),
        "n_trials": int(n_trials),
    }
    result.summary.update(statistics)
    notes = tuple(f"fold {o.fold.number}: {o.note}" for o in outcomes if o.note)
    return OptionsWalkForwardResult(
        backtest=result,
        folds=pd.DataFrame(rows),
        schedule=schedule,
        chosen=tuple(o.chosen for o in outcomes),
        trials=_trials(outcomes, candidates),
        statistics=statistics,
        parameter_stability=parameter_stability([o.chosen.as_dict() for o in outcomes]),
        notes=notes,
    )


def _fold_row(days: pd.DatetimeIndex, o: OptionsFoldOutcome, oos: np.ndarray) -> dict:
    f, ppy = o.fold, PERIODS_PER_YEAR
    row = {
        "fold": f.number,
        "train_start": days[f.train_start].date(), "train_end": days[f.train_end - 1].date(),
        "test_start": days[f.test_start].date(), "test_end": days[f.test_end - 1].date(),
        "train_days": f.n_train, "test_days": f.n_test,
    }
    row.update({f"param_{k}": v for k, v in o.chosen.as_dict().items()})
    row.update(
        is_sharpe=metrics.sharpe(o.best_returns, ppy),
        is_total_return=metrics.total_return(o.best_returns),
        is_annual_return=metrics.cagr(o.best_returns, ppy),
        oos_sharpe=metrics.sharpe(oos, ppy),
        oos_total_return=metrics.total_return(oos),
        oos_annual_return=metrics.cagr(oos, ppy),
        oos_max_drawdown=metrics.max_drawdown(oos),
        n_combinations=int(o.scores.size),
        n_eligible=o.n_eligible,
        pbo=o.pbo,
        note=o.note,
    )
    return row


def _trials(outcomes: list[OptionsFoldOutcome], candidates: list[Params]) -> pd.DataFrame:
    params = pd.DataFrame([p.as_dict() for p in candidates]).add_prefix("param_")
    frames = []
    for o in outcomes:
        frame = params.copy()
        frame.insert(0, "fold", o.fold.number)
        frame["objective"] = o.scores
        frame["n_trades"] = o.n_trades
        frame["chosen"] = [p == o.chosen for p in candidates]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
