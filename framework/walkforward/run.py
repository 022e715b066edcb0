"""Walk-forward optimization: search each in-sample window, trade the choice out of sample, stitch.

For every fold (see :mod:`framework.walkforward.splits`) the search picks the best parameters on
the training window (:mod:`framework.walkforward.search`); their targets over the fold's test
window are computed on ``bars[:test_end]`` (never more). The test-window targets of all folds are
stitched into one array over the span from the first test bar to the last (bars in gaps between
test windows, when ``step`` exceeds the test length, get target 0) and run through the engine
**once**, so cash and positions carry across fold boundaries. The stitched run is the
out-of-sample result; the folds table, the parameter schedule and the overfitting statistics
(:mod:`framework.walkforward.stats`) describe how it was obtained.
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import math
import pickle
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from framework import metrics
from framework.backtest import BacktestSpec, run_backtest
from framework.errors import ParameterError, unknown_name_message
from framework.portfolio import BacktestResult, Benchmark
from framework.registry import resolve_strategy
from framework.stepper import ScheduleEntry
from framework.strategy import Params, Strategy, compute_target
from framework.types import Bars
from framework.walkforward.executor import EXECUTORS, run_tasks
from framework.walkforward.objectives import Objective
from framework.walkforward.search import (
    Evaluation,
    InSample,
    SearchSpec,
    candidate_params,
    evaluate,
    optuna_search,
)
from framework.walkforward.splits import Fold, WindowSpec, make_folds, oos_span
from framework.walkforward.stats import (
    DeflatedSharpe,
    deflated_sharpe_ratio,
    parameter_stability,
    per_period_sharpe_columns,
    probability_of_backtest_overfitting,
    walk_forward_efficiency,
)


@dataclass(frozen=True)
class WalkForwardSpec:
    """Everything about a walk-forward run except the strategy, data and engine settings.

    Attributes
    ----------
    windows : WindowSpec
        Train/test/step lengths, rolling or anchored, purge and embargo.
    search : SearchSpec
        Search method, trials, seed, objective and ``min_trades``.
    executor : {"local", "serial", "ray"}
        Where folds run (``local`` = parallel processes, identical results to ``serial``).
    workers : int or None
        Processes for ``local``, CPUs of a local Ray instance (default: up to 2).
    address : str or None
        ``ray`` only: the cluster to join (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``);
        ``None`` starts a local Ray instance for the run.
    pbo_blocks : int
        CSCV blocks ``S`` for the probability of backtest overfitting (even).
    pbo_max_combinations : int or None
        ``None`` (default): PBO uses all ``C(S, S/2)`` splits of each fold (12,870 for 16
        blocks). A number: at most that many splits per fold, a seeded random subset (the same
        in every run), which is faster for very large grids and exact when there are fewer.
    """

    windows: WindowSpec = field(default_factory=WindowSpec)
    search: SearchSpec = field(default_factory=SearchSpec)
    executor: str = "local"
    workers: int | None = None
    pbo_blocks: int = 16
    address: str | None = None
    pbo_max_combinations: int | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ParameterError(unknown_name_message("executor", str(self.executor), EXECUTORS))
        if self.address is not None and (
            self.executor != "ray" or not isinstance(self.address, str) or not self.address.strip()
        ):
            raise ParameterError(
                f"address {self.address!r} needs executor='ray' and a Ray cluster address such "
                f"as '10.0.0.5:6379'; got executor={self.executor!r}. Pass --executor ray with "
                "--address, or drop --address."
            )
        if self.workers is not None and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise ParameterError(
                f"workers must be a positive integer or None; got {self.workers!r}."
            )
        if (
            isinstance(self.pbo_blocks, bool)
            or not isinstance(self.pbo_blocks, int)
            or (self.pbo_blocks < 2 or self.pbo_blocks % 2)
        ):
            raise ParameterError(
                f"pbo_blocks must be an even integer >= 2 (16 in the paper); got {self.pbo_blocks!r}."
            )
        limit = self.pbo_max_combinations
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ParameterError(
                f"pbo_max_combinations must be a positive integer or None (all splits); got "
                f"{limit!r}."
            )


@dataclass(frozen=True, eq=False)
class FoldTask:
    """One fold's work, sent to a worker process (bars are cut at the fold's test end)."""

    strategy: Strategy
    bars: Bars
    fold: Fold
    backtest: BacktestSpec
    periods_per_year: float
    base: Params
    candidates: list[Params] | None
    search: SearchSpec
    pbo_blocks: int
    pbo_max_combinations: int | None = None


@dataclass(frozen=True, eq=False)
class FoldOutcome:
    """What a fold's search chose and its in-sample numbers."""

    fold: Fold
    chosen: Params
    model: Any
    target: np.ndarray
    evaluation: Evaluation
    is_objective: float
    is_returns: np.ndarray
    n_eligible: int
    trial_sharpes: np.ndarray
    pbo: float
    note: str = ""


def run_fold(task: FoldTask) -> FoldOutcome:
    """Search the fold's training window, then compute the chosen targets on its test window."""
    fold, strategy = task.fold, task.strategy
    ctx = InSample(
        strategy,
        task.bars,
        fold,
        task.backtest,
        task.periods_per_year,
        task.search.objective,
        task.search.max_chunk_bytes,
    )
    if task.candidates is None:
        found = optuna_search(ctx, type(task.base), task.base, task.search)
    else:
        found = evaluate(ctx, task.candidates)
    best = found.best(task.search.min_trades)
    note = ""
    if best is None:
        note = (
            f"no eligible combination (objective undefined or fewer than "
            f"{task.search.min_trades} fills); kept the base parameters"
        )
        fallback = evaluate(ctx, [task.base])
        chosen, model = task.base, fallback.models[0]
        is_objective, is_returns = float(fallback.scores[0]), fallback.returns[:, 0]
    else:
        chosen, model = found.params[best], found.models[best]
        is_objective, is_returns = float(found.scores[best]), found.returns[:, best]
    target = compute_target(strategy, task.bars.iloc(slice(0, fold.test_end)), chosen, model)
    sharpes = found.sharpes if found.sharpes is not None else per_period_sharpe_columns(found.returns)
    pbo = math.nan
    if found.size >= 2 and found.returns.shape[0] >= task.pbo_blocks:
        pbo = probability_of_backtest_overfitting(
            found.returns, task.pbo_blocks, task.pbo_max_combinations
        ).pbo
    kept = Evaluation(found.params, found.scores, found.n_fills, found.returns)  # models dropped
    return FoldOutcome(
        fold,
        chosen,
        model,
        target[fold.test_start : fold.test_end],
        kept,
        is_objective,
        is_returns,
        int(found.eligible(task.search.min_trades).sum()),
        sharpes,
        pbo,
        note,
    )


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """Outcome of :func:`walk_forward`.

    Attributes
    ----------
    backtest : BacktestResult
        The stitched out-of-sample run (its ``summary`` includes the walk-forward statistics).
    bars : Bars
        The out-of-sample bars the stitched run covers.
    folds : DataFrame
        One row per fold: windows (first/last bar close times, inclusive), chosen ``param_*``
        values, in-sample objective and metrics, out-of-sample objective and metrics of the fold's
        slice of the stitched run, ``n_combinations``, ``n_eligible``, ``pbo`` and a ``note``.
    schedule : tuple of ScheduleEntry
        ``(effective_from = first test bar close time, params, model)`` per fold.
    splits : tuple of Fold
        The bar ranges of each fold.
    n_trials : int
        Combinations evaluated, summed over folds.
    in_sample_returns : tuple of ndarray
        Per fold, the ``(T, N)`` per-bar returns of its ``N`` trials on its scored training bars
        (the CSCV input of PBO).
    trials : DataFrame
        Every evaluated combination: ``fold``, ``param_*``, ``objective``, ``n_fills``,
        ``sharpe_per_period`` and ``chosen``.
    statistics : dict
        ``walk_forward_efficiency``, ``deflated_sharpe``, ``pbo``, ``n_folds``, ``n_trials``.
    deflated_sharpe : DeflatedSharpe
        The inputs and value of the deflated Sharpe ratio.
    parameter_stability : DataFrame
        See :func:`framework.walkforward.stats.parameter_stability`.
    spec : WalkForwardSpec
    notes : tuple of str
        Facts a reader must know (fallback folds, gaps).
    model_evaluation : ModelEvaluation or None
        Learned strategies that define ``predictions``: each fold's model scored on its own test
        window (:mod:`framework.ml.evaluation`); ``None`` otherwise.
    """

    backtest: BacktestResult
    bars: Bars
    folds: pd.DataFrame
    schedule: tuple[ScheduleEntry, ...]
    splits: tuple[Fold, ...]
    n_trials: int
    in_sample_returns: tuple[np.ndarray, ...]
    trials: pd.DataFrame
    statistics: dict[str, float | int]
    deflated_sharpe: DeflatedSharpe
    parameter_stability: pd.DataFrame
    spec: WalkForwardSpec
    notes: tuple[str, ...] = ()
    model_evaluation: Any = None


def walk_forward(
    strategy: Strategy,
    bars: Bars,
    params: Params | None = None,
    spec: WalkForwardSpec | None = None,
    backtest: BacktestSpec | None = None,
    benchmark: Benchmark | None = None,
) -> WalkForwardResult:
    """Walk-forward optimize ``strategy`` on ``bars`` and run the stitched out-of-sample backtest.

    Parameters
    ----------
    strategy : Strategy
        The strategy; its ``Params`` declare the search spaces.
    bars : Bars
        All the data (the first training window starts at its first bar).
    params : Params, optional
        Base parameters: values of parameters without a search space (default: defaults).
    spec : WalkForwardSpec, optional
        Windows, search, executor.
    backtest : BacktestSpec, optional
        Engine and costs, used for in-sample evaluation and the stitched run alike.
    benchmark : Benchmark, optional
        Buy-and-hold comparison aligned to ``bars.index`` (sliced to the out-of-sample span).

    Returns
    -------
    WalkForwardResult
    """
    spec, backtest = spec or WalkForwardSpec(), backtest or BacktestSpec()
    params = params or strategy.default_params()
    if not isinstance(params, strategy.params_type):
        raise ParameterError(
            f"params are {type(params).__name__}; {strategy.name} expects "
            f"{strategy.params_type.__name__}."
        )
    folds = make_folds(bars.index, spec.windows)
    ppy = metrics.infer_periods_per_year(bars.index)
    candidates = (
        None
        if spec.search.method == "optuna"
        else candidate_params(type(params), params, spec.search)
    )
    if spec.executor == "local":
        _check_picklable(strategy, spec.search)
    tasks = [
        FoldTask(
            strategy,
            bars.iloc(slice(0, f.test_end)),
            f,
            backtest,
            ppy,
            params,
            candidates,
            spec.search,
            spec.pbo_blocks,
            spec.pbo_max_combinations,
        )
        for f in folds
    ]
    initializer, initargs = _worker_initializer(strategy)
    outcomes: list[FoldOutcome] = run_tasks(
        run_fold,
        tasks,
        spec.executor,
        spec.workers,
        initializer=initializer,
        initargs=initargs,
        address=spec.address,
    )
    span = oos_span(folds)
    stitched = np.zeros((span.stop - span.start, bars.n_assets))
    for o in outcomes:
        stitched[o.fold.test_start - span.start : o.fold.test_end - span.start] = o.target
    oos_bars = bars.iloc(span)
    bench = (
        None
        if benchmark is None
        else Benchmark(benchmark.name, benchmark.returns.iloc[span], benchmark.note)
    )
    result = run_backtest(strategy, oos_bars, outcomes[0].chosen, backtest, bench, target=stitched)
    return _assemble(strategy, bars, oos_bars, result, outcomes, spec, ppy, span)


def _worker_initializer(strategy: Strategy) -> tuple[Any, tuple]:
    """How a worker process gets the strategy's module when it cannot import it by name.

    Worker processes unpickle the strategy and its params by module name. A strategy loaded from
    a user's file (``path/to/file.py:Class``, see :mod:`framework.registry`) lives in a module
    no fresh process can import, so each worker loads that file first, under the same name.
    """
    cls = type(strategy)
    top = cls.__module__.partition(".")[0]
    if top == "__main__" or importlib.machinery.PathFinder.find_spec(top) is not None:
        return None, ()
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if path is None:
        return None, ()
    return load_strategy_file, (f"{path}:{cls.__name__}",)


def load_strategy_file(spec: str) -> None:
    """Worker initializer: load ``path/to/file.py:Class`` so its module is importable here."""
    resolve_strategy(spec, {})


def _check_picklable(strategy: Strategy, search: SearchSpec) -> None:
    try:
        pickle.dumps((strategy, search))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ParameterError(
            f"the strategy or objective cannot be sent to worker processes ({exc}); define them "
            "at module level (not a lambda or local function), or use executor='serial'."
        ) from exc


def _assemble(
    strategy: Strategy,
    bars: Bars,
    oos_bars: Bars,
    result: BacktestResult,
    outcomes: list[FoldOutcome],
    spec: WalkForwardSpec,
    ppy: float,
    span: slice,
) -> WalkForwardResult:
    oos_returns = result.returns.to_numpy()
    rows, is_annual, oos_annual = [], [], []
    for o in outcomes:
        f = o.fold
        oos = oos_returns[f.test_start - span.start : f.test_end - span.start]
        row = _fold_row(bars, o, oos, ppy, spec.search.objective)
        rows.append(row)
        is_annual.append(row["is_annual_return"])
        oos_annual.append(row["oos_annual_return"])
    n_trials = int(sum(o.evaluation.size for o in outcomes))
    dsr = _deflated_sharpe(oos_returns, outcomes, n_trials)
    pbos = [o.pbo for o in outcomes if not math.isnan(o.pbo)]
    statistics: dict[str, float | int] = {
        "walk_forward_efficiency": walk_forward_efficiency(is_annual, oos_annual),
        "deflated_sharpe": dsr.dsr,
        "pbo": float(np.mean(pbos)) if pbos else math.nan,
        "n_folds": len(outcomes),
        "n_trials": n_trials,
    }
    result.summary.update(statistics)
    notes = [f"fold {o.fold.number}: {o.note}" for o in outcomes if o.note]
    if any(
        b.fold.test_start > a.fold.test_end for a, b in zip(outcomes, outcomes[1:], strict=False)
    ):
        notes.append("step exceeds the test length: bars between test windows hold no position")
    result.extra["walk_forward"] = {**statistics, "notes": notes}
    schedule = tuple(
        ScheduleEntry(bars.index[o.fold.test_start], o.chosen, o.model) for o in outcomes
    )
    evaluation = _evaluate_models(strategy, bars, outcomes)
    if evaluation is not None:
        result.extra["model_evaluation"] = evaluation.to_dict()
    return WalkForwardResult(
        model_evaluation=evaluation,
        backtest=result,
        bars=oos_bars,
        folds=pd.DataFrame(rows),
        schedule=schedule,
        splits=tuple(o.fold for o in outcomes),
        n_trials=n_trials,
        in_sample_returns=tuple(o.evaluation.returns for o in outcomes),
        trials=_trials_frame(outcomes),
        statistics=statistics,
        deflated_sharpe=dsr,
        parameter_stability=parameter_stability([o.chosen.as_dict() for o in outcomes]),
        spec=spec,
        notes=tuple(notes),
    )


def _evaluate_models(strategy: Strategy, bars: Bars, outcomes: list[FoldOutcome]):
    """Out-of-sample scores of each fold's model, for learned strategies that can say what
    their model predicted (``predictions``); ``None`` for the others."""
    if strategy.fit is None or not callable(getattr(strategy, "predictions", None)):
        return None
    from framework.ml.evaluation import FoldModel, evaluate_folds

    folds = [FoldModel(o.fold.number, o.fold.test_start, o.fold.test_end, o.chosen, o.model)
             for o in outcomes if o.model is not None]
    return evaluate_folds(strategy, bars, folds) if folds else None


def _fold_row(
    bars: Bars, o: FoldOutcome, oos: np.ndarray, ppy: float, objective: Objective
) -> dict[str, Any]:
    f = o.fold
    row: dict[str, Any] = {
        "fold": f.number,
        "train_start": bars.index[f.train_start],
        "train_end": bars.index[f.train_end - 1],
        "test_start": bars.index[f.test_start],
        "test_end": bars.index[f.test_end - 1],
        "train_bars": f.n_train,
        "test_bars": f.n_test,
    }
    row.update({f"param_{k}": v for k, v in o.chosen.as_dict().items()})
    row.update(
        is_objective=o.is_objective,
        is_sharpe=metrics.sharpe(o.is_returns, ppy),
        is_total_return=metrics.total_return(o.is_returns),
        is_annual_return=metrics.cagr(o.is_returns, ppy),
        oos_objective=objective.score(oos, ppy),
        oos_sharpe=metrics.sharpe(oos, ppy),
        oos_total_return=metrics.total_return(oos),
        oos_annual_return=metrics.cagr(oos, ppy),
        oos_max_drawdown=metrics.max_drawdown(oos),
        n_combinations=o.evaluation.size,
        n_eligible=o.n_eligible,
        pbo=o.pbo,
        note=o.note,
    )
    return row


def _deflated_sharpe(
    oos_returns: np.ndarray, outcomes: list[FoldOutcome], n_trials: int
) -> DeflatedSharpe:
    """DSR of the stitched OOS returns; ``V[SR]`` is the mean within-fold variance of trial Sharpes.

    Trials compete only within their fold, so the dispersion that inflates the best Sharpe is
    the within-fold one (pooling folds would add the spread between market periods).
    """
    variances = [
        np.var(s[np.isfinite(s)], ddof=1)
        for s in (o.trial_sharpes for o in outcomes)
        if np.isfinite(s).sum() >= 2
    ]
    variance = float(np.mean(variances)) if variances else 0.0
    return deflated_sharpe_ratio(oos_returns, n_trials=max(n_trials, 1), sharpe_variance=variance)


def _trials_frame(outcomes: list[FoldOutcome]) -> pd.DataFrame:
    frames = []
    for o in outcomes:
        ev = o.evaluation
        # column by column: as_dict per combination (a deep copy) costs more than the search
        names = [f.name for f in dataclasses.fields(type(ev.params[0]))] if ev.params else []
        columns = {f"param_{k}": [getattr(p, k) for p in ev.params] for k in names}
        frame = pd.DataFrame(columns, index=pd.RangeIndex(len(ev.params)))
        frame.insert(0, "fold", o.fold.number)
        frame["objective"] = ev.scores
        frame["n_fills"] = ev.n_fills
        frame["sharpe_per_period"] = o.trial_sharpes
        frame["chosen"] = [p == o.chosen for p in ev.params]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
