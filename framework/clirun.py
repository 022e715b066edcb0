"""What ``fw backtest`` and ``fw check`` do, kept apart from the click layer so it is testable.

Choosing data (``--data-dir``, the store, or the embedded default), the benchmark (SPY from the same
source; else the embedded S&P 500 index as a labelled proxy; else an equal-weight basket, named),
costs, and the files a run writes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.backtest import BacktestSpec, buy_and_hold, equal_weight_benchmark, run_backtest
from framework.costs import CostSpec
from framework.engine import EngineSpec
from framework.errors import DataError, ParameterError
from framework.portfolio import BacktestResult, Benchmark, write_run
from framework.risk import RiskSpec
from framework.risk.spec import parse_risk_overrides
from framework.strategy import Params, Strategy, make_params, parse_overrides
from framework.types import Bars

EMBEDDED_BENCHMARK = "GSPC"


@dataclass(frozen=True)
class BacktestRequest:
    """Everything ``fw backtest`` was asked to do, already parsed."""

    strategy: Strategy
    symbols: list[str] | None
    start: str | None
    end: str | None
    sets: tuple[str, ...]
    fill: str
    data_dir: Path | None
    out: Path
    cost_sets: tuple[str, ...] = ()
    no_costs: bool = False
    initial_cash: float | None = None
    benchmark: str = "SPY"
    tearsheet: bool = True
    walk_forward: bool = False
    wf_options: Mapping[str, Any] = field(default_factory=dict)
    risk_off: bool = False
    risk_sets: tuple[str, ...] = ()


def resolve_params(strategy: Strategy, sets: Sequence[str]) -> Params:
    """Defaults plus ``--set name=value`` overrides, validated."""
    return make_params(strategy.params_type, parse_overrides(strategy.params_type, sets))


def load_run_bars(symbols: list[str] | None, data_dir: Path | None, start, end,
                  timeframe: str = "1d") -> Bars:
    """Bars for a run: the named symbols, or SPY, or the embedded S&P 500 index; ``timeframe``
    ``"1d"`` or an intraday length (``"1min"``: files such as ``SPY_1min.csv.gz``)."""
    from framework.data import available_symbols, load_bars

    if symbols is None:
        if data_dir is not None:
            have = available_symbols(data_dir=data_dir)
            if "SPY" not in have:
                raise DataError(
                    f"{data_dir} has no SPY file; name the symbols to trade with --symbols "
                    f"(available: {', '.join(sorted(have)[:20])}{' ...' if len(have) > 20 else ''})."
                )
            symbols = ["SPY"]
        elif "SPY" in available_symbols(source="store"):
            symbols = ["SPY"]
        else:
            symbols = [EMBEDDED_BENCHMARK]
    bars = load_bars(symbols, data_dir=data_dir, start=start, end=end, timeframe=timeframe)
    if bars.n_bars < 2:
        raise DataError(
            f"no bars for {symbols} between {start or 'the start'} and {end or 'the end'}; "
            "widen --start/--end."
        )
    return bars


def resolve_benchmark(name: str, bars: Bars, data_dir: Path | None) -> Benchmark:
    """Buy-and-hold of ``name`` from the run's own data source, never downloaded."""
    from framework.data import load_bars

    if name in bars.symbols:
        return buy_and_hold(bars, name, bars.index)
    try:
        other = load_bars([name], data_dir=data_dir)
        return buy_and_hold(other, name, bars.index)
    except DataError:
        pass  # not in this source: fall through to the labelled substitutes below
    if data_dir is None:
        try:
            proxy = load_bars([EMBEDDED_BENCHMARK], source="default")
        except DataError:
            return equal_weight_benchmark(bars)
        info = proxy.info.get(EMBEDDED_BENCHMARK)
        note = (
            f"{name} is not in the data; using the S&P 500 price index (GSPC, no dividends) as "
            f"its proxy. Source: {info.source if info else 'embedded default'}."
        )
        bench = buy_and_hold(proxy, EMBEDDED_BENCHMARK, bars.index, note=note)
        return Benchmark(name=f"S&P 500 index (GSPC) as {name} proxy", returns=bench.returns, note=note)
    return equal_weight_benchmark(bars)


def build_spec(request: BacktestRequest) -> BacktestSpec:
    """Engine and cost settings from the request (defaults: next-open fills, costs on)."""
    costs = CostSpec.none() if request.no_costs else CostSpec()
    if request.cost_sets:
        overrides = {}
        for pair in request.cost_sets:
            if "=" not in pair:
                raise ParameterError(f"--cost expects name=value; got {pair!r} (e.g. --cost slippage_bps=2).")
            key, raw = (s.strip() for s in pair.split("=", 1))
            overrides[key] = None if raw.lower() == "none" else _float(key, raw)
        costs = costs.with_overrides(overrides)
    engine_kwargs: dict[str, Any] = {"fill": request.fill}
    if request.initial_cash is not None:
        engine_kwargs["initial_cash"] = request.initial_cash
    return BacktestSpec(engine=EngineSpec(**engine_kwargs), costs=costs, risk=build_risk(request))


def build_risk(request: BacktestRequest) -> RiskSpec:
    """The YAML config's risk rules (``--risk-off``: none), with ``--risk name=value``."""
    if request.risk_off:
        return RiskSpec.off()
    from framework.config import load_config

    risk = RiskSpec.from_config(load_config())
    return risk.with_overrides(parse_risk_overrides(request.risk_sets))


def _float(key: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ParameterError(f"--cost {key} expects a number; got {raw!r}.") from None


def describe_costs(costs: CostSpec) -> str:
    """One line naming every cost setting, e.g. for the tear sheet's notes."""
    c = costs.to_dict()
    if all(not v for k, v in c.items() if k not in ("impact_window", "commission_max_pct")):
        return "none (frictionless reference run)"
    cap = c["max_participation"]
    return (
        f"commission ${c['commission_per_share']}/share (min ${c['commission_min']}) + "
        f"{c['commission_bps']} bps; slippage {c['slippage_bps']} bps; square-root impact "
        f"coefficient {c['impact_coef']} ({c['impact_window']}-bar volatility); participation "
        + (f"cap {cap:.0%} of bar volume" if cap else "uncapped")
    )


def run_notes(result: BacktestResult, bars: Bars, spec: BacktestSpec) -> list[str]:
    """Plain statements every report of this run must show."""
    fill = (
        "Fills: same-bar close (OPTIMISTIC: assumes trading at the price the decision saw)"
        if result.sim.optimistic_fill
        else "Fills: decision at each bar's close, filled at the next bar's open"
    )
    costs = ", ".join(f"{k} ${v:,.2f}" for k, v in result.sim.costs.items())
    notes = [fill, f"Costs: {describe_costs(spec.costs)} (totals: {costs})"]
    notes.append("Risk rules: " + "; ".join(spec.risk.describe()))
    for sym in bars.symbols:
        info = bars.info.get(sym)
        if info is not None:
            notes.append(f"Data {sym}: {info.source}" + (f" ({info.note})" if info.note else ""))
    if result.benchmark is not None:
        notes.append(f"Benchmark: {result.benchmark.name}" + (f". {result.benchmark.note}" if result.benchmark.note else ""))
    notes.append(f"Run: {bars.index[0].date()} to {bars.index[-1].date()}, data hash {result.data_hash[:12]}")
    return notes


TearsheetWriter = Callable[..., Path]


def run_backtest_command(
    request: BacktestRequest,
    write_tearsheet: TearsheetWriter | None,
    write_walkforward_report: Callable[..., Path] | None = None,
    write_model_report: Callable[..., Path] | None = None,
    write_options_report: Callable[..., Path] | None = None,
) -> BacktestResult:
    """Load data, run (single or walk-forward), write files and print the summary table.

    The report writers live in ``reports/`` (which this layer may not import); the command line
    passes them in. An options strategy runs on the options backtester
    (:mod:`framework.clirun_options`) and returns its ``OptionsBacktestResult``.
    """
    from framework.options.strategy import OptionsStrategy

    if isinstance(request.strategy, OptionsStrategy):
        from framework.clirun_options import run_options_command

        return run_options_command(request, write_tearsheet, write_options_report)
    params = resolve_params(request.strategy, request.sets)
    bars = load_run_bars(request.symbols, request.data_dir, request.start, request.end)
    benchmark = resolve_benchmark(request.benchmark, bars, request.data_dir)
    spec = build_spec(request)
    if request.walk_forward:
        from framework.walkforward.command import run_walk_forward_command

        return run_walk_forward_command(
            request, bars, params, spec, benchmark, write_tearsheet, write_walkforward_report,
            write_outputs=write_outputs, write_model_report=write_model_report,
        )
    regime = regime_series(bars, request.benchmark, request.data_dir) if spec.risk.regime_overrides else None
    result = run_backtest(request.strategy, bars, params, spec, benchmark, regime=regime)
    write_outputs(request, result, bars, spec, write_tearsheet)
    return result


def regime_series(bars: Bars, benchmark: str, data_dir: Path | None):
    """Causal regime labels per bar (config/regimes.yaml) of the benchmark symbol when it is
    traded, else the first symbol; VIX from the same data source when it has one."""
    from framework.data import load_bars
    from framework.regime import regime_labels

    symbol = benchmark if benchmark in bars.symbols else bars.symbols[0]
    try:
        vix = load_bars(["VIX"], data_dir=data_dir)
    except DataError:
        vix = None  # regime rules fall back to realized volatility (see config/regimes.yaml)
    return regime_labels(bars.select([symbol]), vix=vix)[:, 0]


def write_outputs(request, result: BacktestResult, bars: Bars, spec: BacktestSpec,
                  write_tearsheet: TearsheetWriter | None, extra_info: Mapping[str, Any] | None = None) -> dict:
    """Write the run files (+ tear sheet) and print the summary."""
    notes = run_notes(result, bars, spec)
    run_info = {
        "command": "backtest",
        "symbols": list(bars.symbols),
        "start": bars.index[0].isoformat(),
        "end": bars.index[-1].isoformat(),
        "engine": dataclasses.asdict(spec.engine),
        "costs": spec.costs.to_dict(),
        "risk": spec.risk.to_dict(),
        "data_sources": {s: i.__dict__ for s, i in bars.info.items()},
        "benchmark": result.benchmark.name if result.benchmark else None,
        "notes": notes,
        **dict(extra_info or {}),
    }
    paths = write_run(result, request.out, run_info)
    if request.tearsheet and write_tearsheet is not None:
        paths["tearsheet"] = write_tearsheet(
            result.returns,
            result.benchmark.returns if result.benchmark else None,
            request.out / "tearsheet.html",
            title=f"fw: {run_title(result)}",
            benchmark_title=result.benchmark.name if result.benchmark else "none",
            notes=notes,
        )
    print_summary(result, paths)
    return paths


def run_title(result: BacktestResult) -> str:
    """``sma_cross {'fast': 10, ...}``, or for walk-forward runs the fold count instead."""
    wf = result.extra.get("walk_forward")
    if wf:
        return (
            f"{result.strategy} walk-forward, stitched out-of-sample "
            f"({wf.get('n_folds', '?')} folds; chosen params in folds.csv)"
        )
    return f"{result.strategy} {result.params.as_dict()}"


def print_summary(result: BacktestResult, paths: Mapping[str, Path]) -> None:
    """A compact table of the headline numbers and where the files are."""
    from rich.console import Console
    from rich.table import Table

    s = result.summary
    table = Table(title=run_title(result), show_header=True)
    table.add_column("metric")
    table.add_column("strategy", justify="right")
    table.add_column("benchmark", justify="right")
    rows = [
        ("total return", _pct(s.get("total_return")), _pct(s.get("benchmark_total_return"))),
        ("CAGR", _pct(s.get("cagr")), ""),
        ("Sharpe", _num(s.get("sharpe")), _num(s.get("benchmark_sharpe"))),
        ("Sortino", _num(s.get("sortino")), ""),
        ("max drawdown", _pct(s.get("max_drawdown")), ""),
        ("trades", str(s.get("n_trades")), ""),
        ("win rate", _pct(s.get("win_rate")), ""),
        ("exposure", _pct(s.get("exposure")), ""),
        ("total costs", f"${s.get('total_costs', 0):,.2f}", ""),
        ("alpha / beta", f"{_num(s.get('alpha'))} / {_num(s.get('beta'))}", ""),
    ]
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    if result.sim.optimistic_fill:
        console.print("[yellow]fill=close is optimistic: it trades at the price the decision saw.[/]")
    rules = s.get("risk_rules") or []
    events = s.get("risk_events") or {}
    console.print(
        "risk rules: " + ("; ".join(rules) if rules else "off")
        + ("  |  events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items())) if events else "")
        + ("  (see config/trading_config.yaml; --risk-off or --risk NAME=VALUE to change)" if rules else "")
    )
    for name, path in paths.items():
        console.print(f"{name:>10}: {path}")


def _pct(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.2%}"


def _num(value: Any) -> str:
    return "n/a" if value is None or value != value else f"{value:.2f}"
