"""The ``fw`` command line: the composition root.

This is the only framework module allowed to import ``strategies``, ``reports`` and ``live``, and it
does so lazily inside commands, so ``fw --help`` stays fast and the layers stay clean.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

import framework
from framework.errors import FwError

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=_CONTEXT)
@click.version_option(framework.__version__, prog_name="fw")
def main() -> None:
    """fw: backtest-first trading research.

    Write a strategy once; backtest it (single runs, walk-forward), check it for look-ahead, and
    paper-trade it unchanged. Data, state and results live under FW_HOME (default ~/.fw).

    \b
    Quick start:
      fw backtest --walk-forward                 # sma_cross on the embedded S&P 500 data
      fw backtest sma_cross --symbols SPY --data-dir ../shared/data/daily
      fw check sma_cross                         # look-ahead checks on real data
      fw data import ../shared/data/daily        # then: fw data list
    """


def _registry():
    from strategies import ALL_STRATEGIES  # lazy: the composition root is the only importer

    return ALL_STRATEGIES


def _strategy(spec: str):
    from framework.registry import resolve_strategy

    return resolve_strategy(spec, _registry())


def _split_symbols(values: Sequence[str]) -> list[str] | None:
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return out or None


def _default_out(strategy: str) -> Path:
    from framework.paths import home_subdir

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return home_subdir("runs") / f"{stamp}-{strategy.replace(':', '_').replace('/', '_')}"


class _FwCommand(click.Command):
    """Turns fw's own errors into one clean line and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FwError as exc:
            raise click.ClickException(str(exc)) from exc


@main.command(cls=_FwCommand)
@click.argument("strategy", required=False, default="sma_cross")
@click.option("--symbols", "-s", multiple=True, help="Symbols to trade (repeat or comma-separate). "
              "Default: SPY when the data has it, else the embedded S&P 500 index (GSPC).")
@click.option("--start", help="First bar date (ISO, e.g. 2010-01-01).")
@click.option("--end", help="Last bar date (ISO, inclusive).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Strategy parameter override, e.g. --set fast=20 (repeatable).")
@click.option("--fill", type=click.Choice(["next_open", "close"]), default="next_open", show_default=True,
              help="When a decision at bar i's close fills: next open (honest) or same close (optimistic).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Read DIR/SYMBOL.csv[.gz] directly instead of the data store.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default FW_HOME/runs/<time>-<strategy>).")
@click.option("--cost", "cost_sets", multiple=True, metavar="NAME=VALUE",
              help="Cost model override, e.g. --cost slippage_bps=2 (repeatable).")
@click.option("--no-costs", is_flag=True, help="Frictionless reference run (all costs zero).")
@click.option("--risk-off", is_flag=True, help="Run without the risk rules of config/trading_config.yaml.")
@click.option("--risk", "risk_sets", multiple=True, metavar="NAME=VALUE",
              help="Risk rule override, e.g. --risk max_position=0.5 or --risk stop=none (repeatable).")
@click.option("--initial-cash", type=float, default=None, help="Starting cash (default 100000).")
@click.option("--benchmark", default="SPY", show_default=True, help="Buy-and-hold benchmark symbol.")
@click.option("--no-tearsheet", is_flag=True, help="Skip the quantstats HTML tear sheet.")
@click.option("--walk-forward", is_flag=True, help="Walk-forward optimization with stitched out-of-sample results.")
@click.option("--train", default="3y", show_default=True, help="Walk-forward in-sample length (bars or 3y/18m/...).")
@click.option("--test", "test_len", default="1y", show_default=True, help="Walk-forward out-of-sample length.")
@click.option("--step", default=None, help="Walk-forward step (default: the test length).")
@click.option("--anchored", is_flag=True, help="Expanding in-sample windows instead of rolling.")
@click.option("--purge", default="0", show_default=True, help="Bars dropped between train and test.")
@click.option("--embargo", default="0", show_default=True, help="Bars dropped after each test window.")
@click.option("--search", type=click.Choice(["grid", "random", "optuna"]), default="grid", show_default=True)
@click.option("--trials", type=int, default=100, show_default=True, help="Trials for random/optuna search.")
@click.option("--objective", default="sharpe", show_default=True, help="sharpe|sortino|calmar|total_return")
@click.option("--executor", type=click.Choice(["local", "serial", "ray"]), default="local", show_default=True,
              help="Where folds run: local processes, this process, or a Ray cluster.")
@click.option("--address", default=None, help="Ray cluster to join (HOST:PORT from `ray start --head`, "
              "ray://HOST:10001 or auto); default: a local Ray instance. Needs --executor ray.")
def backtest(strategy: str, symbols, start, end, sets, fill, data_dir, out, cost_sets, no_costs,
             risk_off, risk_sets, initial_cash, benchmark, no_tearsheet, walk_forward,
             **wf_options) -> None:
    """Backtest STRATEGY (default sma_cross) and write results with a tear sheet vs SPY.

    STRATEGY is a registered name (see `fw strategies`), path/to/file.py:ClassName or
    package.module:ClassName. Writes summary.json, equity.csv, trades.csv, run.json and
    tearsheet.html into --out.
    """
    from framework.clirun import BacktestRequest, run_backtest_command

    request = BacktestRequest(
        strategy=_strategy(strategy), symbols=_split_symbols(symbols), start=start, end=end,
        sets=tuple(sets), fill=fill, data_dir=data_dir, out=out or _default_out(strategy),
        cost_sets=tuple(cost_sets), no_costs=no_costs, initial_cash=initial_cash,
        benchmark=benchmark, tearsheet=not no_tearsheet, walk_forward=walk_forward,
        wf_options=wf_options, risk_off=risk_off, risk_sets=tuple(risk_sets),
    )
    walkforward_writer = model_writer = None
    if walk_forward:
        from reports.model_report import write_model_report
        from reports.walkforward import write_walkforward_report

        walkforward_writer, model_writer = write_walkforward_report, write_model_report
    from reports.options_report import write_options_report

    run_backtest_command(request, _tearsheet_writer() if not no_tearsheet else None, walkforward_writer,
                         model_writer, write_options_report)


def _tearsheet_writer():
    from reports.tearsheet import write_tearsheet  # lazy: quantstats is slow to import

    return write_tearsheet


@main.command(cls=_FwCommand)
@click.argument("strategy")
@click.option("--symbols", "-s", multiple=True, help="Symbols (default SPY, else embedded GSPC).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--start", help="First bar date (ISO).")
@click.option("--end", help="Last bar date (ISO, inclusive).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE")
def check(strategy: str, symbols, data_dir, start, end, sets) -> None:
    """Run the look-ahead checks on STRATEGY over real data; exit 1 when a check fails.

    Checks prefix invariance, future blindness, live stepper = vectorized and warm-up
    sensitivity, and names the feature, bar and size of any difference.
    """
    from framework.clirun import load_run_bars, resolve_params
    from framework.lookahead import check_strategy

    strat = _strategy(strategy)
    params = resolve_params(strat, sets)
    bars = load_run_bars(_split_symbols(symbols), data_dir, start, end)
    report = check_strategy(strat, bars, params)
    click.echo(report.format())
    if not report.ok:
        sys.exit(1)


@main.command(name="strategies")
def list_strategies() -> None:
    """List the registered strategies with their parameters."""
    for name, cls in sorted(_registry().items()):
        strat = cls()
        click.echo(f"{name:<14} {strat.describe()}")
        for pname, meta in cls.params_type.meta().items():
            default = getattr(cls.params_type(), pname)
            space = f" space={list(meta.space)}" if meta.space else ""
            click.echo(f"    {pname}={default!r} [{meta.stage}]{space}  {meta.doc}")


def _register_groups() -> None:
    from framework.cli_config import config
    from framework.cli_data import data
    from framework.cli_regime import regime

    main.add_command(data)
    main.add_command(config)
    main.add_command(regime)


_register_groups()


def _period_report(db_url: str, run_id: str, period: str, today) -> tuple[str, str]:
    """Write a paper run's weekly/monthly report under FW_HOME/reports; returns (path,
    headline). Called by live sessions (``live`` cannot import ``reports`` itself)."""
    from framework.paper_metrics import paper_metrics
    from framework.paths import home_subdir
    from live.record import load_record
    from reports.paper_report import period_bounds, write_period_report

    start, end = period_bounds(period, today)
    record = load_record(db_url, run_id)
    out = home_subdir("reports") / run_id / f"{period}-{start.date()}"
    paths = write_period_report(record, start, end, out, f"{run_id}: {period} report")
    stats = paper_metrics(record, start, end)
    headline = (f"{period} {start.date()}..{end.date()}: return "
                f"{stats.get('period_return', float('nan')):+.2%}, Sharpe "
                f"{stats.get('sharpe', float('nan')):.2f}, trades {stats.get('trades', 0)}")
    html = paths.get("html") if isinstance(paths, dict) else out / "report.html"
    return str(html), headline


def _register_live() -> None:
    from live.broker_cli import make_broker_group
    from live.cli import make_commands  # click + framework only; live.command loads inside commands

    for command in make_commands(_strategy, _period_report):
        main.add_command(command)
    main.add_command(make_broker_group())


_register_live()


def _register_reports() -> None:
    """``fw report``, ``fw journal`` and ``fw readiness``: reports render what live loads (the two
    packages stay independent; the loaders are imported only when a command runs)."""
    from reports.cli import make_commands as report_commands

    def load_record(*args, **kwargs):
        from live.record import load_record as load

        return load(*args, **kwargs)

    def add_note(*args, **kwargs):
        from live.record import add_note as add

        return add(*args, **kwargs)

    def latest_run_id(db):
        from live.record import latest_run_id as latest

        return latest(db)

    for command in report_commands(load_record, add_note, latest_run_id):
        main.add_command(command)


_register_reports()


def _register_parity() -> None:
    """``fw parity``: live computes the paper-vs-backtest comparison, reports renders it."""
    from reports.parity_cli import make_parity_command

    def compare(db, run_id):
        from live.parity import compare_db

        return compare_db(db, run_id, _strategy)

    def latest_run_id(db):
        from live.record import latest_run_id as latest

        return latest(db)

    main.add_command(make_parity_command(compare, latest_run_id))


_register_parity()


def _register_ml() -> None:
    """``fw ml``: training and the registry (framework), paper-trading comparisons (live)."""
    from framework.cli_ml import make_ml_group

    def live_accuracy(strategy, version):
        from live.ml_watch import live_accuracy_lines

        return live_accuracy_lines(strategy, version)

    group = make_ml_group(_strategy, live_accuracy)

    from live.ml_cli import add_live_ml_commands  # lazy inside commands: see live/ml_cli.py

    add_live_ml_commands(group, _strategy)
    main.add_command(group)


_register_ml()


def _register_options() -> None:
    """``fw options``: chains, prices and multi-leg strategies (framework.options)."""
    from framework.cli_options import make_options_group

    main.add_command(make_options_group())


_register_options()


@main.command(cls=_FwCommand)
@click.option("--db", default=None,
              help="State database URL (default: FW_DB_URL, else sqlite under FW_HOME/state/fw.sqlite).")
@click.option("--run-id", default=None, help="Paper run to show (default: the latest run).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of DIR/SYMBOL.csv[.gz] for the SPY benchmark and market conditions.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to bind; 127.0.0.1 keeps the dashboard on this machine.")
@click.option("--browser/--no-browser", default=False, show_default=True,
              help="Open a browser tab when the server is up.")
def dashboard(db, run_id, data_dir, port, address, browser) -> None:
    """Serve the monitoring dashboard of a paper run (Streamlit; `pip install 'fw[dashboard]'`).

    Tabs: Portfolio, Performance, Regime, Transaction Costs, System Health. The numbers are
    those of fw report / journal / readiness. Ctrl+C stops it.
    """
    from apps.launch import launch, resolve_run, wait_ready  # lazy: streamlit is optional

    db, run_id = resolve_run(db, run_id)
    process = launch(db, run_id, port=port, address=address, headless=not browser,
                     data_dir=data_dir)
    url = f"http://{address}:{port}"
    try:
        wait_ready(url, 60, process=process)
        click.echo(f"fw dashboard of run {run_id}: {url}  (Ctrl+C to stop)")
        process.wait()
    except KeyboardInterrupt:
        click.echo("stopping the dashboard")
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
