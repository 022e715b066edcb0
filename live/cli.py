"""The click commands ``fw paper``, ``fw status``, ``fw halt`` and ``fw resume``.

``live`` may not import ``strategies``, so :func:`make_commands` takes the composition root's
strategy resolver and returns the commands for ``framework/cli.py`` to register.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from framework.errors import FwError
from framework.strategy import Strategy

StrategyResolver = Callable[[str], Strategy]

_DB_HELP = "State database URL (default: FW_DB_URL, else sqlite under FW_HOME/state/fw.sqlite)."


class _LiveCommand(click.Command):
    """fw's own errors become one clean line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FwError as exc:
            raise click.ClickException(str(exc)) from exc


def make_commands(resolve_strategy: StrategyResolver,
                  reporter: Callable[..., Any] | None = None) -> list[click.Command]:
    """The live commands, bound to the composition root's strategy resolver.

    Parameters
    ----------
    resolve_strategy : callable
        ``name -> Strategy`` (registered name, path/file.py:Class or package.module:Class).
    reporter : callable, optional
        ``reporter(db_url, run_id, period, today) -> (path, headline)`` writes a paper run's
        weekly/monthly report (``reports`` renders it; ``live`` may not import it).

    Returns
    -------
    list of click.Command
        ``paper``, ``status``, ``halt``, ``resume``, ``backup`` and ``restore``.
    """
    return [_paper_command(resolve_strategy, reporter), _status_command(), _halt_command(),
            _resume_command(), _backup_command(), _restore_command()]


def _split_symbols(values) -> tuple[str, ...] | None:
    out = tuple(s.strip() for v in values for s in v.split(",") if s.strip())
    return out or None


def _drift(text: str) -> float | None:
    if str(text).strip().lower() in ("off", "none", "no"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise click.BadParameter(f"{text!r}; expected seconds >= 0 or 'off'.",
                                 param_hint="--max-clock-drift")
    return value


def _store(db: str | None):
    from live.state import Store

    return Store(db)


def _paper_command(resolve_strategy: StrategyResolver, reporter=None) -> click.Command:
    @click.command(name="paper", cls=_LiveCommand)
    @click.argument("strategy", required=False)
    @click.option("--symbols", "-s", multiple=True, help="Symbols (repeat or comma-separate). "
                  "Default: the resumed run's, else SPY, else the embedded S&P 500 index.")
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                  help="Replay DIR/SYMBOL.csv[.gz] instead of the data store.")
    @click.option("--start", help="First bar to replay (ISO date).")
    @click.option("--end", help="Last bar to replay (ISO date, inclusive).")
    @click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                  help="Strategy parameter override (repeatable).")
    @click.option("--schedule", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                  help="Walk-forward schedule.json: parameters change at each fold's start.")
    @click.option("--speed", type=float, default=None,
                  help="Replay pace in bars per second (default: as fast as possible).")
    @click.option("--dry-run", is_flag=True, help="Record decisions and intended orders; send nothing.")
    @click.option("--risk-off", is_flag=True, help="Ignore the risk rules of config/trading_config.yaml.")
    @click.option("--risk", "risk_sets", multiple=True, metavar="NAME=VALUE",
                  help="Risk rule override, e.g. --risk max_position=0.5 (repeatable).")
    @click.option("--max-positions", type=int, default=None,
                  help="At most this many open positions (a risk rule; same as "
                  "--risk max_positions=N).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--run-id", default=None,
                  help="Run name; an existing run is resumed (default: a new <strategy>-<time> run).")
    @click.option("--broker", type=click.Choice(["sim", "alpaca"]), default="sim", show_default=True,
                  help="sim: replay stored bars against the built-in simulated broker (offline). "
                  "alpaca: Alpaca PAPER account and live bars (keys in APCA_API_KEY_ID / "
                  "APCA_API_SECRET_KEY).")
    @click.option("--interval", default="1Day", show_default=True,
                  help="Live bar interval (alpaca): 1Min, 5Min, 15Min, 30Min, 1Hour or 1Day.")
    @click.option("--warmup-bars", type=int, default=300, show_default=True,
                  help="History loaded before a new run's first decision (alpaca).")
    @click.option("--max-bars", type=int, default=None,
                  help="End the session after this many traded bars (alpaca; default: run until "
                  "SIGTERM/Ctrl-C).")
    @click.option("--poll", type=float, default=None,
                  help="Seconds between clock checks while waiting for a bar close "
                  "(default: trading.interval_seconds of the config).")
    @click.option("--settle", type=float, default=None,
                  help="Seconds after a bar close before reading it (default 3 intraday, 120 daily).")
    @click.option("--max-wait", type=float, default=600.0, show_default=True,
                  help="Seconds to wait for a missing bar after its close: intraday bars are then "
                  "skipped, a missing daily bar halts the run (stale data).")
    @click.option("--no-reports", is_flag=True,
                  help="Do not write the weekly/monthly reports after a week's/month's last "
                  "session (alpaca).")
    @click.option("--max-clock-drift", default="5",
                  help="Seconds the local clock may differ from the broker's before trading halts; "
                  "'off' lets the broker's clock define market time.")
    def paper(strategy, symbols, data_dir, start, end, sets, schedule, speed, dry_run, risk_off,
              risk_sets, max_positions, db, run_id, broker, interval, warmup_bars, max_bars, poll, settle,
              max_wait, no_reports, max_clock_drift) -> None:
        """Paper-trade STRATEGY (default sma_cross); all state goes to the state database.

        With the default --broker sim, stored bars (--data-dir, --symbols, --start, --end) are
        replayed through the simulated broker, offline. With --broker alpaca the run trades an
        Alpaca paper account on live bars of --interval, waiting for each close on the XNYS
        calendar; it stops after --max-bars or on SIGTERM/Ctrl-C (after the bar in hand).

        Re-running with the same --run-id resumes the run from the database (recovery, then the
        bars not yet processed). `fw status`, `fw halt` and `fw resume` act on the run.
        """
        from live.command import PaperSpec, paper_strategy_name, run_paper

        if max_positions is not None:
            if max_positions < 1:
                raise click.BadParameter(f"{max_positions}; expected at least 1 position.",
                                         param_hint="--max-positions")
            risk_sets = (*risk_sets, f"max_positions={max_positions}")
        spec = PaperSpec(
            run_id=run_id, symbols=_split_symbols(symbols), data_dir=data_dir, start=start,
            end=end, sets=tuple(sets), schedule=schedule, speed=speed, dry_run=dry_run,
            risk_off=risk_off, risk_sets=tuple(risk_sets), db=db, broker=broker,
            interval=interval, warmup_bars=warmup_bars, max_bars=max_bars, poll=poll,
            settle=settle, max_wait=max_wait, max_clock_drift=_drift(max_clock_drift),
        )
        store = _store(db)
        strat = resolve_strategy(paper_strategy_name(spec, store, strategy))
        console = _console()
        with _ProgressBar(console) as bar:
            summary = run_paper(strat, spec, store, progress=bar.start,
                                reporter=None if no_reports else reporter)
        _print_summary(console, summary)

    return paper


def _status_command() -> click.Command:
    @click.command(name="status", cls=_LiveCommand)
    @click.option("--run-id", default=None, help="Run to show (default: the latest).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--json", "as_json", is_flag=True,
                  help="Print machine-readable JSON (for monitors): the same fields plus the "
                  "broker, the last error and the lag since the last bar.")
    def status(run_id, db, as_json) -> None:
        """Show a paper run: parameters, positions, cash, equity and P&L, kill switch and risk
        state, latest events and errors."""
        from live.command import latest_run_id, run_status

        store = _store(db)
        state = run_status(store, run_id or latest_run_id(store))
        if as_json:
            click.echo(_status_json(state, store))
        else:
            _print_status(_console(), state)

    return status


def _halt_command() -> click.Command:
    @click.command(name="halt", cls=_LiveCommand)
    @click.option("--run-id", default=None, help="Run to halt (default: the latest).")
    @click.option("--flatten", is_flag=True,
                  help="Also close every position at the next bar (when fw paper next runs).")
    @click.option("--db", default=None, help=_DB_HELP)
    def halt(run_id, flatten, db) -> None:
        """Stop a paper run from trading: kill switch HALTED, open orders canceled."""
        from live.command import halt_run, latest_run_id

        store = _store(db)
        run_id = run_id or latest_run_id(store)
        canceled = halt_run(store, run_id, flatten)
        click.echo(f"run {run_id}: HALTED; canceled {len(canceled)} open order(s)"
                   + ("; positions will be closed at the next bar" if flatten else "")
                   + ". `fw resume` trades again.")

    return halt


def _resume_command() -> click.Command:
    @click.command(name="resume", cls=_LiveCommand)
    @click.option("--run-id", default=None, help="Run to resume (default: the latest).")
    @click.option("--db", default=None, help=_DB_HELP)
    def resume(run_id, db) -> None:
        """Let a halted paper run trade again (kill switch ACTIVE)."""
        from live.command import latest_run_id, resume_run

        store = _store(db)
        run_id = run_id or latest_run_id(store)
        breaker = resume_run(store, run_id)
        click.echo(f"run {run_id}: ACTIVE.")
        if breaker is not None:
            click.echo(f"note: the risk rules' circuit breaker is {breaker}; it still limits "
                       "trading until its own conditions clear.")

    return resume


def _status_json(state: Mapping[str, Any], store) -> str:
    import json
    from datetime import UTC, datetime

    run = store.run(state["run_id"])
    last = state.get("last_bar")
    lag = None
    if last:
        lag = (datetime.now(UTC) - datetime.fromisoformat(str(last))).total_seconds()
    errors = state.get("errors") or []
    payload = {**state, "broker": (run or {}).get("config", {}).get("broker", "sim"),
               "lag_seconds": lag, "last_error": errors[0] if errors else None,
               "updated_at": (run or {}).get("updated_at")}
    return json.dumps(payload, default=str, indent=2, sort_keys=True)


def _backup_command() -> click.Command:
    @click.command(name="backup", cls=_LiveCommand)
    @click.option("--to", "to_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="New or empty folder for the backup (default: FW_HOME/backups/<UTC time>, "
                  "where the newest 14 are kept).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--no-models", is_flag=True, help="Leave out the model registry FW_HOME/models.")
    def backup(to_dir, db, no_models) -> None:
        """Back up the state database (consistent, safe while fw paper runs) and the model
        registry into a folder with a manifest of sha256 hashes."""
        from live.backup import backup_store

        for line in backup_store(db, to_dir, include_models=not no_models).lines():
            click.echo(line)

    return backup


def _restore_command() -> click.Command:
    @click.command(name="restore", cls=_LiveCommand)
    @click.argument("backup_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--yes", is_flag=True,
                  help="Really restore (default: a dry run that only shows what would change).")
    def restore(backup_dir, db, yes) -> None:
        """Check BACKUP_DIR (manifest, hashes) and show what restoring it would change; with
        --yes, set the current database aside as <db>.before-restore-<time> and restore.
        Stop the runner first."""
        from live.backup import restore_store

        for line in restore_store(backup_dir, db, dry_run=not yes).lines():
            click.echo(line)

    return restore


# -- output ----------------------------------------------------------------------------------------
def _console():
    from rich.console import Console

    return Console()


class _ProgressBar:
    """A rich progress bar over the replayed bars (silent when stdout is not a terminal)."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
            console=console, disable=not console.is_terminal,
        )
        self._task = None

    def __enter__(self) -> _ProgressBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.__exit__(*exc)

    def start(self, total: int) -> Callable[[int, Any], None]:
        self._task = self._progress.add_task("", total=total)

        def advance(_n_bars: int, bar) -> None:
            self._progress.update(self._task, advance=1, description=str(bar.time.date()))

        return advance


def _print_summary(console, s) -> None:
    from rich.table import Table

    title = f"paper run {s.run_id} ({s.strategy}{', resumed' if s.resumed else ''}" \
            f"{', DRY RUN: nothing sent' if s.dry_run else ''})"
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rows = [
        ("bars processed", f"{s.new_bars} new, {s.total_bars} in the run"),
        ("orders", f"{s.orders}" + (" (intended only)" if s.dry_run else "")),
        ("fills", str(s.fills)),
        ("final equity", f"${s.equity:,.2f}"),
        ("return", f"{s.total_return:.2%} on ${s.initial_cash:,.0f}"),
        ("costs", f"${s.costs:,.2f}"),
        ("kill switch", s.kill_switch + (f" (risk breaker {s.risk_breaker})" if s.risk_breaker else "")),
        ("database", s.db_url),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"`fw status --run-id {s.run_id}` shows positions and events.")


def _print_status(console, st: Mapping[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"run {st['run_id']} ({st['strategy']}, {st['status']})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    positions = ", ".join(f"{s} {q:g}" for s, q in sorted(st["positions"].items())) or "flat"
    risk = st["kill_switch"] + (f" (risk breaker {st['risk_breaker']})" if st["risk_breaker"] else "")
    rows = [
        ("parameters", str(st["parameters"])), ("symbols", ", ".join(st["symbols"])),
        ("started", str(st["started"])), ("last bar", str(st["last_bar"])),
        ("bars", str(st["bars"])), ("positions", positions), ("cash", f"${st['cash']:,.2f}"),
        ("equity", f"${st['equity']:,.2f}"),
        ("P&L", f"${st['pnl']:,.2f} ({st['return']:.2%} on ${st['initial_cash']:,.0f})"),
        ("orders", f"{st['orders']} ({st['open_orders']} open)" + (" dry run" if st["dry_run"] else "")),
        ("fills", f"{st['fills']} (costs ${st['costs']:,.2f})"), ("kill switch", risk),
        ("risk rules", st["risk"]), ("database", st["db_url"]),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print("latest events:")
    for e in st["events"]:
        console.print(f"  {e['time'][:19]}  {e['kind']:<18} {e['message']}", markup=False)
    if st["errors"]:
        console.print("latest errors:")
        for e in st["errors"]:
            console.print(f"  {e['time'][:19]}  {e['message']}: {e['detail']}", markup=False)
