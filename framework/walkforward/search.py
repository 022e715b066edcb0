"""Parameter search on one in-sample window: grid, seeded random, or Optuna TPE.

In-sample evaluation of a combination: its targets are computed on ``bars[:train_end]`` (earlier
history is legitimate warm-up; learned strategies are first ``fit`` on the training window only),
then the engine runs on the training window alone and the objective scores the returns of the
bars that count (embargoed bars excluded, see :mod:`framework.walkforward.splits`).

Grid and random searches evaluate all their combinations in one vectorized pass: combinations are
grouped by their feature-stage values so features are computed once per group; for one asset the
targets are stacked into ``(n, k)`` columns and simulated by ``simulate_grid`` in chunks of bounded
memory; for a universe each combination runs through ``simulate``. A single-asset strategy that
declares ``feature_grid`` (see :class:`framework.strategy.Strategy`) skips the per-combination
loop: its features come stacked for a whole chunk of combinations (each distinct input computed
once, e.g. 77 moving averages for 1,482 window pairs) and ``target`` runs once per chunk, with
results identical to the loop's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.backtest import BacktestSpec
from framework.engine import simulate, simulate_grid
from framework.errors import FwError, ParameterError, StrategyError, unknown_name_message
from framework.strategy import (
    Params,
    Strategy,
    compute_features,
    finalize_target,
    initial_step_state,
    param_grid,
    raw_target,
    target_matrix,
)
from framework.types import Bars
from framework.walkforward.objectives import Objective, ObjectiveFunction, resolve_objective
from framework.walkforward.splits import Fold
from framework.walkforward.stats import per_period_sharpe_columns

SEARCH_METHODS: tuple[str, ...] = ("grid", "random", "optuna")
_DEFAULT_CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class SearchSpec:
    """How each fold searches the strategy's declared parameter space.

    Attributes
    ----------
    method : {"grid", "random", "optuna"}
        Every valid combination; ``trials`` combinations sampled without replacement (seeded,
        the same sample in every fold); or Optuna's TPE sampler (seeded) for ``trials`` trials.
    trials : int
        Combinations to evaluate for ``random`` and ``optuna`` (ignored by ``grid``).
    seed : int
        Seed of the random sample and of the TPE sampler.
    objective : str or callable
        ``sharpe`` (default), ``sortino``, ``calmar``, ``total_return`` or ``f(returns) -> float``.
    min_trades : int
        Combinations with fewer fills (executed orders) in the in-sample window are ineligible.
    max_chunk_bytes : int
        Memory bound of one stacked ``(n, k)`` float64 target block for ``simulate_grid``.
    """

    method: str = "grid"
    trials: int = 100
    seed: int = 0
    objective: str | ObjectiveFunction | Objective = "sharpe"
    min_trades: int = 0
    max_chunk_bytes: int = _DEFAULT_CHUNK_BYTES

    def __post_init__(self) -> None:
        if self.method not in SEARCH_METHODS:
            raise ParameterError(
                unknown_name_message("search method", str(self.method), SEARCH_METHODS)
            )
        for name, low in (("trials", 1), ("min_trades", 0), ("max_chunk_bytes", 8)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ParameterError(f"search {name} must be an integer >= {low}; got {value!r}.")
        object.__setattr__(self, "objective", resolve_objective(self.objective))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """In-sample results of the combinations one fold evaluated (column ``c`` = ``params[c]``).

    Attributes
    ----------
    params : list of Params
    scores : (k,) ndarray
        Objective values (``nan`` = undefined).
    n_fills : (k,) ndarray
        Fills (executed orders) in the training window.
    returns : (n_scored, k) ndarray
        Per-bar returns of the scored training bars: the matrix PBO is computed from.
    models : list
        Fitted models (``None`` entries for strategies without ``fit``).
    sharpes : (k,) ndarray, optional
        Per-period Sharpe ratio of each column of ``returns`` (computed once, reused by the
        objective, the trials table and the deflated Sharpe ratio).
    """

    params: list[Params]
    scores: np.ndarray
    n_fills: np.ndarray
    returns: np.ndarray
    models: list[Any] = field(default_factory=list)
    sharpes: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.params)

    def eligible(self, min_trades: int) -> np.ndarray:
        """True where a combination may be chosen: a defined score and enough fills."""
        return ~np.isnan(self.scores) & (self.n_fills >= min_trades)

    def best(self, min_trades: int) -> int | None:
        """Index of the best eligible combination (first in evaluation order on ties)."""
        ok = self.eligible(min_trades)
        if not ok.any():
            return None
        return int(np.argmax(np.where(ok, self.scores, -np.inf)))


def candidate_params(params_type: type[Params], base: Params, spec: SearchSpec) -> list[Params]:
    """The combinations a grid or random search evaluates, in grid order.

    Parameters without a search space keep their value from ``base``. A strategy with no space at
    all yields ``[base]``.
    """
    grid = param_grid(params_type, base)
    if not any(m.space for m in params_type.meta().values()):
        return [base]
    if not grid:
        raise ParameterError(
            f"{params_type.__name__} declares search spaces but no combination of them is valid "
            f"(with the fixed values {base.as_dict()}); widen the spaces or change --set values."
        )
    if spec.method == "random" and spec.trials < len(grid):
        rng = np.random.default_rng(spec.seed)
        picks = np.sort(rng.choice(len(grid), size=spec.trials, replace=False))
        return [grid[i] for i in picks]
    return grid


def target_from_features(
    strategy: Strategy, bars: Bars, feats: Mapping[str, np.ndarray], p: Params, model: Any = None
) -> np.ndarray:
    """``compute_target`` given precomputed features (same steps, same result)."""
    raw = target_matrix(strategy, raw_target(strategy, dict(feats), p, model), bars)
    step = getattr(strategy, "step_nb", None)
    if step is not None:
        from framework._steps_nb import run_steps_nb  # numba compile only for stepped strategies

        raw = run_steps_nb(
            step, np.ascontiguousarray(raw), initial_step_state(strategy, p, raw.shape[1])
        )
    return finalize_target(strategy, raw, bars, p)


def fit_model(strategy: Strategy, train: Bars, p: Params) -> Any:
    """``strategy.fit`` on ``train`` (``None`` for strategies without fit)."""
    return None if strategy.fit is None else strategy.fit(train, p)


def fit_window(strategy: Strategy, bars: Bars, fold: Fold, p: Params) -> Bars:
    """The bars ``fit`` sees for a fold: its training window, preceded (like the targets) by
    ``warmup(p)`` bars of earlier history so features are settled on the first training bar;
    nothing at or after ``train_end``."""
    first = max(0, fold.train_start - int(strategy.warmup(p)))
    return bars.iloc(slice(first, fold.train_end))


def fit_models(strategy: Strategy, bars: Bars, fold: Fold, candidates: Sequence[Params]) -> list[Any]:
    """One fitted model per candidate, fitting once per distinct combination of the parameters
    ``fit`` may read (stages ``"features"`` and ``"fit"``): a threshold grid shares one model."""
    if strategy.fit is None:
        return [None] * len(candidates)
    cache: dict[tuple, Any] = {}
    models = []
    for p in candidates:
        key = tuple((k, getattr(p, k)) for k, m in p.meta().items() if m.stage != "target")
        if key not in cache:
            cache[key] = fit_model(strategy, fit_window(strategy, bars, fold, p), p)
        models.append(cache[key])
    return models


@dataclass(frozen=True)
class InSample:
    """What one fold's in-sample evaluation needs besides the combinations."""

    strategy: Strategy
    bars: Bars
    fold: Fold
    backtest: BacktestSpec
    periods_per_year: float
    objective: Objective
    max_chunk_bytes: int = _DEFAULT_CHUNK_BYTES


def evaluate(ctx: InSample, candidates: Sequence[Params]) -> Evaluation:
    """Score every candidate on the fold's training window (see the module docstring)."""
    fold, strategy = ctx.fold, ctx.strategy
    history = ctx.bars.iloc(slice(0, fold.train_end))
    train = ctx.bars.iloc(slice(fold.train_start, fold.train_end))
    models = fit_models(strategy, ctx.bars, fold, candidates)
    n, k = train.n_bars, len(candidates)
    returns = np.empty((n, k))
    n_fills = np.zeros(k, dtype=np.int64)
    sink = _GridSink(train, ctx.backtest, returns, n_fills, ctx.max_chunk_bytes)
    if k and uses_feature_grid(strategy, history):
        # one stacked target pass per group sharing the target-stage values
        for members in _groups(candidates, "target").values():
            for chunk in _chunks(members, ctx.max_chunk_bytes, history.n_bars):
                stacked = stacked_targets(strategy, history, [candidates[c] for c in chunk])
                sink.add_columns(chunk, stacked[fold.train_start : fold.train_end])
    else:
        for members in _groups(candidates, "features").values():
            feats = compute_features(strategy, history, candidates[members[0]])
            for c in members:
                target = target_from_features(strategy, history, feats, candidates[c], models[c])
                window = target[fold.train_start : fold.train_end]
                if train.n_assets == 1:
                    sink.add(c, window[:, 0])
                    continue
                backtest = ctx.backtest
                sim = simulate(train, window, backtest.engine, backtest.costs, backtest.risk)
                returns[:, c] = sim.returns.to_numpy()
                n_fills[c] = len(sim.fills)
    sink.flush()
    scored = returns[fold.scored()]
    sharpes = per_period_sharpe_columns(scored)
    scores = ctx.objective.score_columns(scored, ctx.periods_per_year, sharpes)
    return Evaluation(list(candidates), scores, n_fills, scored, models, sharpes)


def _groups(candidates: Sequence[Params], stage: str) -> dict[tuple, list[int]]:
    """Candidate indexes grouped by the values of their ``stage`` parameters (first-seen order)."""
    if not candidates:
        return {}
    names = [k for k, m in type(candidates[0]).meta().items() if m.stage == stage]
    groups: dict[tuple, list[int]] = {}
    for c, p in enumerate(candidates):
        groups.setdefault(tuple((k, getattr(p, k)) for k in names), []).append(c)
    return groups


def _chunks(members: list[int], max_bytes: int, n_rows: int) -> list[list[int]]:
    # a chunk's stacked features and targets (a few float64 (n_rows, width) arrays) live together
    width = max(1, max_bytes // (4 * 8 * max(n_rows, 1)))
    return [members[i : i + width] for i in range(0, len(members), width)]


def uses_feature_grid(strategy: Strategy, bars: Bars) -> bool:
    """Whether the stacked fast path applies: the strategy declares ``feature_grid`` (see
    :class:`framework.strategy.Strategy`), trades one asset, and has no ``fit`` or ``step_nb``.

    A subclass that overrides ``features`` or ``target`` but inherits ``feature_grid`` would
    get its parent's stacked features, so ``feature_grid`` must be defined by the class that
    defines both, or by a subclass of it.
    """
    if getattr(strategy, "feature_grid", None) is None:
        return False
    grid_owner = _owner(type(strategy), "feature_grid")
    return (
        all(issubclass(grid_owner, _owner(type(strategy), n)) for n in ("features", "target"))
        and bars.n_assets == 1
        and not strategy.universe
        and strategy.fit is None
        and getattr(strategy, "step_nb", None) is None
    )


def _owner(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO whose body defines attribute ``name``."""
    return next(c for c in cls.__mro__ if name in vars(c))


def stacked_targets(strategy: Strategy, bars: Bars, params_list: Sequence[Params]) -> np.ndarray:
    """Targets of many combinations on one asset as ``(n_bars, len(params_list))`` columns.

    The combinations must share their target-stage values. Column ``c`` equals
    ``compute_target(strategy, bars, params_list[c])[:, 0]`` bit for bit: the strategy's
    ``feature_grid`` stacks each combination's features as one column (computing each distinct
    feature once), its ``target`` runs once on the stacked columns (single-asset rules treat
    columns independently), and warm-up and missing closes are applied per column as
    :func:`framework.strategy.finalize_target` does.
    """
    shape = (bars.n_bars, len(params_list))
    feats = strategy.feature_grid(bars, list(params_list))
    if not isinstance(feats, Mapping):
        raise StrategyError(
            f"{strategy.name}.feature_grid must return a dict of arrays; got {type(feats).__name__}."
        )
    for key, value in feats.items():
        if np.shape(value) != shape:
            raise StrategyError(
                f"{strategy.name}.feature_grid()[{key!r}] has shape {np.shape(value)}; expected "
                f"{shape} (bars x combinations)."
            )
    # features and target are private to this call, so the target may be zeroed in place
    target = np.asarray(raw_target(strategy, dict(feats), params_list[0]), dtype=np.float64)
    if not target.flags.writeable:
        target = target.copy()
    if target.shape != shape:
        raise StrategyError(
            f"{strategy.name}.target on stacked features returned shape {target.shape}; "
            f"expected {shape}. Declare feature_grid only for column-wise target rules."
        )
    if np.isinf(target).any():
        raise StrategyError(f"{strategy.name}.target returned an infinite weight.")
    for c, p in enumerate(params_list):
        warm = int(strategy.warmup(p))
        if warm < 0:
            raise StrategyError(f"{strategy.name}.warmup returned {warm}; it must be >= 0.")
        target[:warm, c] = 0.0
    target[np.isnan(bars.close[:, 0])] = 0.0
    return target


class _GridSink:
    """Collects single-asset target columns and simulates them in bounded-memory chunks."""

    def __init__(
        self,
        train: Bars,
        spec: BacktestSpec,
        returns: np.ndarray,
        n_fills: np.ndarray,
        max_bytes: int,
    ) -> None:
        self.train, self.spec, self.returns, self.n_fills = train, spec, returns, n_fills
        n = max(train.n_bars, 1)
        self.width = max(1, min(returns.shape[1], max_bytes // (8 * n)))
        # Fortran order: each column is contiguous, as simulate_grid reads them
        self.block = np.empty((train.n_bars, self.width), order="F")
        self.columns: list[int] = []

    def add_columns(self, columns: Sequence[int], targets: np.ndarray) -> None:
        """Add the ``(n, len(columns))`` target columns (one per entry of ``columns``)."""
        start = 0
        while start < len(columns):
            used = len(self.columns)
            take = min(self.width - used, len(columns) - start)
            # one block assignment (not a column at a time): it transposes C-ordered input fast
            self.block[:, used : used + take] = targets[:, start : start + take]
            self.columns.extend(columns[start : start + take])
            start += take
            if len(self.columns) == self.width:
                self.flush()

    def add(self, column: int, target: np.ndarray) -> None:
        self.block[:, len(self.columns)] = target
        self.columns.append(column)
        if len(self.columns) == self.width:
            self.flush()

    def flush(self) -> None:
        if not self.columns:
            return
        used = len(self.columns)
        # in-sample scoring applies the same risk rules as the stitched out-of-sample run
        grid = simulate_grid(
            self.train, self.block[:, :used], self.spec.engine, self.spec.costs, self.spec.risk
        )
        self.returns[:, self.columns] = grid.returns
        self.n_fills[self.columns] = grid.n_fills
        self.columns = []


def optuna_search(
    ctx: InSample, params_type: type[Params], base: Params, spec: SearchSpec
) -> Evaluation:
    """Seeded TPE over the declared spaces; each distinct valid combination is evaluated once.

    Invalid combinations (``Params.check`` fails) and ineligible ones are reported to Optuna as
    failed trials. Stops after ``spec.trials`` distinct combinations, when the valid grid is
    exhausted, or after ``20 * trials`` proposals.
    """
    optuna = _import_optuna()
    names = [k for k, m in params_type.meta().items() if m.space]
    if not names:
        return evaluate(ctx, [base])
    n_valid = len(param_grid(params_type, base))
    goal = min(spec.trials, n_valid)
    sampler = optuna.samplers.TPESampler(seed=spec.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    seen: dict[tuple, Evaluation] = {}
    order: list[tuple] = []
    for _ in range(20 * spec.trials):
        if len(order) >= goal:
            break
        trial = study.ask()
        values = {k: trial.suggest_categorical(k, list(params_type.meta()[k].space)) for k in names}
        try:
            p = base.replace(**values)
        except ParameterError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        key = tuple(sorted(p.as_dict().items()))
        if key not in seen:
            seen[key] = evaluate(ctx, [p])
            order.append(key)
        one = seen[key]
        if one.eligible(spec.min_trades)[0]:
            study.tell(trial, _finite(float(one.scores[0])))
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return _concat([seen[key] for key in order])


def _finite(value: float) -> float:
    # Optuna rejects infinite objective values; +inf (Sortino without a loss) is "very good".
    return 1e300 if value == math.inf else value


def _concat(parts: list[Evaluation]) -> Evaluation:
    returns = np.hstack([e.returns for e in parts])
    return Evaluation(
        params=[p for e in parts for p in e.params],
        scores=np.concatenate([e.scores for e in parts]),
        n_fills=np.concatenate([e.n_fills for e in parts]),
        returns=returns,
        models=[m for e in parts for m in e.models],
        # recomputed on the whole matrix: numpy's column reductions round differently from
        # those of single columns, and these ratios must not depend on the search method
        sharpes=per_period_sharpe_columns(returns),
    )


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise FwError(
            "--search optuna needs the optuna package, which is not installed. Install the ml "
            "extra (pip install 'fw[ml]') or pip install optuna; or use --search grid/random."
        ) from exc
    # Optuna logs one INFO line per trial; a walk-forward runs thousands of trials.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna
