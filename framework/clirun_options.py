"""What ``fw backtest`` does for an options strategy (single run or ``--walk-forward``).

Loads the as-traded underlying and its vol level (:mod:`framework.options.inputs`), prepares the
synthetic-chain market once, runs the options backtester or its walk-forward, and writes the run
folder: ``summary.json``, ``equity.csv`` (equity, returns, open positions, dollars at risk, net
delta, benchmark returns), ``trades.csv`` (one row per spread with its legs), ``fills.csv`` (one
row per leg fill), ``run.json`` (parameters, every pricing assumption, data sources and hash,
git revision), the quantstats tear sheet against buy-and-hold of the benchmark (SPY by default),
``options.html`` (trade list with legs, exits, plots) and, walk-forward, ``folds.csv``,
``trials.csv`` and ``schedule.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

import framework
from framework import metrics
from framework.errors import DataError, ParameterError
from framework.options.backtest import (
    PERIODS_PER_YEAR,
    OptionsBacktestResult,
    prepare_market,
    run_options_backtest,
)
from framework.options.inputs import OptionsInputs, load_options_inputs, session_dates
from framework.options.risk import OptionsRisk
from framework.options.strategy import OptionsStrategy
from framework.portfolio import git_revision, write_json
from framework.strategy import make_params, parse_overrides
from framework.walkforward.command import spec_from_options
from framework.walkforward.options import OptionsWalkForwardResult, options_walk_forward

DEFAULT_CASH = 100_000.0
FILL_NOTE = ("Fills: decisions at each session's close filled at that close's model quotes (sell "
             "at the bid, buy at the ask). OPTIMISTIC next to fw's stock default (next open): "
             "the synthetic chain has closing quotes only")


def run_options_command(request: Any, write_tearsheet: Callable[..., Path] | None,
                        write_options_report: Callable[..., Path] | None = None
                        ) -> OptionsBacktestResult:
    """Run ``request`` (a :class:`framework.clirun.BacktestRequest` whose strategy is an
    :class:`OptionsStrategy`), write its files and print a summary; returns the (stitched)
    result."""
    strategy: OptionsStrategy = request.strategy
    _refuse_stock_options(request)
    params = make_params(strategy.params_type, parse_overrides(strategy.params_type, request.sets))
    symbols = list(request.symbols or [])
    if len(symbols) > 1:
        raise ParameterError(f"{strategy.name} trades options on one underlying; got --symbols "
                             f"{','.join(symbols)}. Pass one symbol, e.g. --symbols SPY.")
    inputs = load_options_inputs(symbols[0] if symbols else None, request.data_dir)
    chain_spec = inputs.chain_spec
    if request.no_costs:
        chain_spec = replace(chain_spec, spread_base=0.0, spread_frac=0.0,
                             spread_moneyness=0.0, commission_per_contract=0.0,
                             commission_min=0.0)
    market = prepare_market(inputs.closes, inputs.level, chain_spec, div=inputs.div,
                            underlying=inputs.underlying)
    cash = float(request.initial_cash or DEFAULT_CASH)
    risk, not_applied = OptionsRisk.from_risk_spec(_risk_spec(request))
    wf = wf_spec = None
    if request.walk_forward:
        wf_spec = spec_from_options(request.wf_options)
        wf = options_walk_forward(strategy, market, params, wf_spec, cash, request.start,
                                  request.end, risk)
        result = wf.backtest
    else:
        result = run_options_backtest(market, strategy.spec(params), cash, request.start,
                                      request.end, risk)
    bench, bench_name, bench_note = _benchmark(request.benchmark, request.data_dir,
                                               result.returns.index)
    notes = _notes(inputs, bench_name, bench_note, result, request.no_costs)
    notes.insert(2, "Risk rules on max loss: " + "; ".join(risk.describe())
                 + (f"; not applicable to spreads: {', '.join(not_applied)}" if not_applied
                    else ""))
    _add_benchmark_summary(result, bench)
    paths = _write(request, strategy, params, inputs, result, bench, wf, wf_spec, notes)
    title = _title(strategy, params, wf)
    if request.tearsheet and write_tearsheet is not None:
        paths["tearsheet"] = write_tearsheet(result.returns, bench, Path(request.out) /
                                             "tearsheet.html", title=f"fw: {title}",
                                             benchmark_title=bench_name, notes=notes)
    if write_options_report is not None:
        paths["options"] = write_options_report(result, Path(request.out) / "options.html",
                                                title=title, notes=notes, benchmark=bench,
                                                benchmark_title=bench_name,
                                                folds=wf.folds if wf is not None else None)
    _print(result, title, paths, wf)
    return result


def _refuse_stock_options(request: Any) -> None:
    """Stock-engine settings that mean nothing here are refused, not silently ignored."""
    if request.cost_sets:
        raise ParameterError(
            f"{request.strategy.name} runs on the options backtester, which has its own cost "
            "model (chain bid/ask spreads and per-contract commissions); --cost does not apply. "
            "Use --no-costs for mid fills without commissions.")
    if request.fill == "close":
        raise ParameterError(
            "--fill close is already the options backtester's only fill model (closing quotes); "
            "drop --fill.")


def _risk_spec(request: Any):
    """The YAML config's risk rules (``--risk-off``: none) with ``--risk name=value``."""
    from framework.config import load_config
    from framework.risk import RiskSpec
    from framework.risk.spec import parse_risk_overrides

    if request.risk_off:
        return RiskSpec.off()
    return RiskSpec.from_config(load_config()).with_overrides(
        parse_risk_overrides(request.risk_sets))


def _benchmark(name: str, data_dir: Path | None, days: pd.DatetimeIndex
               ) -> tuple[pd.Series | None, str, str]:
    """Buy-and-hold returns of ``name`` on the options run's session dates (total return from
    the dividend-adjusted file when there is one), else the embedded S&P 500 index as a proxy."""
    from framework.data import load_bars, load_default

    folders = [] if data_dir is None else [data_dir, data_dir / "daily", data_dir.parent / "daily"]
    for folder in folders:
        try:
            bars = load_bars([name], data_dir=folder)
        except DataError:
            continue
        return _on_days(bars, days), f"{name} buy-and-hold", ""
    bars = load_default(["GSPC"])
    note = (f"{name} is not in the data; the S&P 500 price index (GSPC, no dividends) stands in "
            "for it")
    return _on_days(bars, days), f"S&P 500 index (GSPC) as {name} proxy", note


def _on_days(bars, days: pd.DatetimeIndex) -> pd.Series:
    close = pd.Series(bars.close[:, 0], index=session_dates(bars.index))
    close = close[~close.index.duplicated()].reindex(days).ffill()
    returns = close.pct_change().fillna(0.0)
    returns.name = "benchmark"
    return returns


def _add_benchmark_summary(result: OptionsBacktestResult, bench: pd.Series | None) -> None:
    if bench is None:
        return
    b = bench.to_numpy()
    result.summary.update(
        benchmark_total_return=metrics.total_return(b),
        benchmark_cagr=metrics.cagr(b, PERIODS_PER_YEAR),
        benchmark_sharpe=metrics.sharpe(b, PERIODS_PER_YEAR),
        benchmark_max_drawdown=metrics.max_drawdown(b),
    )


def _notes(inputs: OptionsInputs, bench_name: str, bench_note: str,
           result: OptionsBacktestResult, no_costs: bool) -> list[str]:
    costs = ", ".join(f"{k} ${v:,.2f}" for k, v in result.costs.items())
    notes = [FILL_NOTE,
             "Costs: " + ("none (--no-costs: mid fills, no commission)" if no_costs else
                          "modelled bid/ask half-spread and per-contract commissions") +
             f" (totals: {costs})",
             "Prices: synthetic chain (European BSM on a modelled IV surface); see run.json "
             "'assumptions' for every modelling choice",
             *inputs.notes,
             f"Benchmark: {bench_name}" + (f". {bench_note}" if bench_note else ""),
             f"Run: {result.returns.index[0].date()} to {result.returns.index[-1].date()}, "
             f"data hash {inputs.data_hash[:12]}"]
    return notes


def _write(request: Any, strategy: OptionsStrategy, params, inputs: OptionsInputs,
           result: OptionsBacktestResult, bench: pd.Series | None,
           wf: OptionsWalkForwardResult | None, wf_spec, notes: list[str]) -> dict[str, Path]:
    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.{ext}" for name, ext in
             (("summary", "json"), ("equity", "csv"), ("trades", "csv"), ("fills", "csv"),
              ("run", "json"))}
    write_json(paths["summary"], result.summary)
    equity = pd.concat([result.equity, result.returns, result.positions], axis=1)
    if bench is not None:
        equity["benchmark_returns"] = bench.to_numpy()
    equity.index.name = "date"
    equity.to_csv(paths["equity"])
    result.trades.to_csv(paths["trades"], index=False)
    result.fills.to_csv(paths["fills"], index=False)
    info: dict[str, Any] = {
        "command": "backtest --walk-forward" if wf is not None else "backtest",
        "strategy": strategy.name,
        "params": params.as_dict(),
        "underlying": inputs.underlying,
        "data_dir": str(request.data_dir) if request.data_dir else "embedded default",
        "data_hash": inputs.data_hash,
        "fw_version": framework.__version__,
        "git_revision": git_revision(),
        "optimistic_fill": True,
        "risk_events": result.risk_events,
        "notes": notes,
        "assumptions": result.assumptions,
    }
    if wf is not None:
        info["walk_forward"] = {
            "windows": wf_spec.windows.describe(), "search": wf_spec.search.method,
            "trials": wf_spec.search.trials, "seed": wf_spec.search.seed,
            "objective": wf_spec.search.objective.name, "min_trades": wf_spec.search.min_trades,
            **wf.statistics, "notes": list(wf.notes)}
        wf.folds.to_csv(out / "folds.csv", index=False)
        wf.trials.to_csv(out / "trials.csv", index=False)
        write_json(out / "schedule.json", {"strategy": strategy.name,
                                           "entries": wf.schedule.to_dict()})
        paths.update(folds=out / "folds.csv", trials=out / "trials.csv",
                     schedule=out / "schedule.json")
    write_json(paths["run"], info)
    return paths


def _title(strategy: OptionsStrategy, params, wf: OptionsWalkForwardResult | None) -> str:
    if wf is not None:
        return (f"{strategy.name} walk-forward, stitched out-of-sample "
                f"({wf.statistics['n_folds']} folds; chosen params in folds.csv)")
    return f"{strategy.name} {params.as_dict()}"


def _print(result: OptionsBacktestResult, title: str, paths: Mapping[str, Path],
           wf: OptionsWalkForwardResult | None) -> None:
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    table = Table(title=title)
    for column in ("metric", "strategy", "benchmark"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    rows = [("total return", _pct(s.get("total_return")), _pct(s.get("benchmark_total_return"))),
            ("CAGR", _pct(s.get("cagr")), _pct(s.get("benchmark_cagr"))),
            ("Sharpe", _num(s.get("sharpe")), _num(s.get("benchmark_sharpe"))),
            ("max drawdown", _pct(s.get("max_drawdown")), _pct(s.get("benchmark_max_drawdown"))),
            ("trades", str(s.get("n_trades")), ""),
            ("win rate", _pct(s.get("win_rate")), ""),
            ("avg days held", _num(s.get("avg_days_held")), ""),
            ("mean at risk / equity", _pct(s.get("exposure")), ""),
            ("total costs", f"${s.get('total_costs', 0):,.2f}", "")]
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print("[yellow]options fills are at closing model quotes (optimistic); prices come "
                  "from a synthetic chain, not recorded quotes.[/]")
    if wf is not None:
        st = wf.statistics
        console.print(f"walk-forward: {st['n_folds']} folds, {st['n_trials']} trials; efficiency "
                      f"{_num(st['walk_forward_efficiency'])}, deflated Sharpe "
                      f"{_num(st['deflated_sharpe'])}, PBO {_num(st['pbo'])}")
        for note in wf.notes:
            console.print(f"[yellow]note:[/] {note}")
    events = result.risk_events
    console.print("risk events: " + (", ".join(f"{k} {v}" for k, v in sorted(events.items()))
                                     if events else "none"))
    for name, path in paths.items():
        console.print(f"{name:>10}: {path}")


def _pct(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.2%}"


def _num(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.2f}"
