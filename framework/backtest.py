"""Single-run backtests: strategy targets -> numba engine -> metrics, against a benchmark.

Decisions are taken at each bar's close and filled at the next bar's open by default, with costs
on; ``fill="close"`` is allowed but every summary it produces says ``optimistic_fill: true``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from framework import metrics
from framework.costs import CostSpec
from framework.engine import EngineSpec, SimResult, simulate
from framework.errors import DataError
from framework.portfolio import BacktestResult, Benchmark
from framework.risk import RiskSpec, event_counts
from framework.strategy import Params, Strategy, compute_target
from framework.types import Bars


@dataclass(frozen=True)
class BacktestSpec:
    """How to simulate: the engine rules, the cost model and the risk rules (off unless
    given; ``fw backtest`` builds them from the YAML config)."""

    engine: EngineSpec = field(default_factory=EngineSpec)
    costs: CostSpec = field(default_factory=CostSpec)
    risk: RiskSpec = field(default_factory=RiskSpec.off)


def buy_and_hold(bars: Bars, symbol: str, index: pd.DatetimeIndex, note: str = "") -> Benchmark:
    """Close-to-close returns of holding ``symbol``, aligned to ``index`` (0 before it trades)."""
    close = bars.frame("close")[symbol]
    aligned = close.reindex(close.index.union(index)).ffill().reindex(index)
    returns = aligned.pct_change().fillna(0.0)
    returns.name = symbol
    return Benchmark(name=symbol, returns=returns, note=note)


def equal_weight_benchmark(bars: Bars) -> Benchmark:
    """Daily-rebalanced equal weight of the traded symbols: the fallback when SPY is unavailable."""
    rets = bars.frame("close").ffill().pct_change()
    returns = rets.mean(axis=1, skipna=True).fillna(0.0)
    name = "equal-weight " + "+".join(bars.symbols[:5]) + ("..." if bars.n_assets > 5 else "")
    return Benchmark(name=name, returns=returns, note="SPY unavailable in this data source")


def run_backtest(
    strategy: Strategy,
    bars: Bars,
    params: Params | None = None,
    spec: BacktestSpec | None = None,
    benchmark: Benchmark | None = None,
    target: np.ndarray | None = None,
    regime: np.ndarray | None = None,
) -> BacktestResult:
    """Run one backtest and summarize it.

    Parameters
    ----------
    strategy : Strategy
        The strategy to run.
    bars : Bars
        Market data (must have at least two bars).
    params : Params, optional
        Strategy parameters; defaults to the strategy's defaults.
    spec : BacktestSpec, optional
        Engine and cost settings (defaults: next-open fills, default costs).
    benchmark : Benchmark, optional
        Buy-and-hold comparison aligned to ``bars.index``.
    target : ndarray, optional
        Precomputed targets (e.g. stitched walk-forward targets); computed when omitted.
    regime : ndarray, optional
        Causal regime label per bar, switching the risk rules' ``regime_overrides``.
    """
    if bars.n_bars < 2:
        raise DataError(
            f"backtest needs at least 2 bars; got {bars.n_bars}. Widen --start/--end or load more data."
        )
    params = params or strategy.default_params()
    spec = spec or BacktestSpec()
    if target is None:
        target = compute_target(strategy, bars, params)
    sim = simulate(bars, target, spec.engine, spec.costs, spec.risk, regime)
    summary = summarize_sim(sim, bars, benchmark)
    summary["strategy"] = strategy.name
    return BacktestResult(
        strategy=strategy.name,
        params=params,
        target=target,
        sim=sim,
        summary=summary,
        benchmark=benchmark,
        data_hash=bars.content_hash(),
    )


def summarize_sim(sim: SimResult, bars: Bars, benchmark: Benchmark | None) -> dict:
    """Metrics of an engine result (the keys of ``summary.json``) plus run facts."""
    ppy = metrics.infer_periods_per_year(bars.index)
    bench = benchmark.returns.to_numpy() if benchmark is not None else None
    summary = metrics.summarize(
        sim.returns.to_numpy(),
        bench,
        sim.trades,
        periods_per_year=ppy,
        gross_exposure=sim.exposure,
        traded_value=sim.traded_value,
        equity=sim.equity,
        costs=sim.costs,
    )
    summary.update(
        {
            "costs_by_kind": {k: float(v) for k, v in sim.costs.items()},
            "final_equity": float(sim.equity[-1]),
            "fill": "close" if sim.optimistic_fill else "next_open",
            "optimistic_fill": bool(sim.optimistic_fill),
            "benchmark": benchmark.name if benchmark is not None else None,
            "benchmark_note": benchmark.note if benchmark is not None else None,
            "start": bars.index[0].isoformat(),
            "end": bars.index[-1].isoformat(),
            "n_bars": int(bars.n_bars),
            "symbols": list(bars.symbols),
            "periods_per_year": float(ppy),
            "risk_rules": sim.risk_spec.describe(),
            "risk_events": event_counts(sim.risk_events),
        }
    )
    return summary
