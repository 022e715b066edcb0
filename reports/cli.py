"""The click commands ``fw report``, ``fw journal`` (with ``fw journal note``) and ``fw readiness``.

``reports`` may not import ``live``, so :func:`make_commands` receives the store readers from the
composition root (``framework/cli.py``): ``load_record(db, run_id, start=None, end=None,
data_dir=None)``, ``add_note(db, run_id, trade_id, text)`` and ``latest_run_id(db)``, where
``db`` is the ``--db`` URL (None: the default database). Heavy modules load inside commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from framework.errors import FwError

RecordLoader = Callable[..., Any]
NoteWriter = Callable[[str | None, str, str, str], Any]
LatestRun = Callable[[str | None], str]

_DB_HELP = "State database URL (default: FW_DB_URL, else sqlite under FW_HOME/state/fw.sqlite)."
_RUN_HELP = "Paper run to read (default: the latest run of the database)."
_DATA_HELP = ("Folder of DIR/SYMBOL.csv[.gz] for the SPY benchmark and market conditions "
              "(default: the data store, else the embedded S&P 500 index as a labelled proxy).")


class _ReportCommand(click.Command):
    """fw's own errors become one clean line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FwError as exc:
            raise click.ClickException(str(exc)) from exc


class _ReportGroup(click.Group):
    """A group whose own callback (the journal listing) reports fw errors the same way."""

    command_class = _ReportCommand

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FwError as exc:
            raise click.ClickException(str(exc)) from exc


def make_commands(load_record: RecordLoader, add_note: NoteWriter,
                  latest_run_id: LatestRun) -> list[click.Command]:
    """The report commands, bound to the composition root's store readers.

    Parameters
    ----------
    load_record : callable
        ``(db, run_id, start=None, end=None, data_dir=None) -> PaperRecord``
        (``live.record.load_record``).
    add_note : callable
        ``(db, run_id, trade_id, text)`` (``live.record.add_note``).
    latest_run_id : callable
        ``db -> run id`` of the most recent run (``live.record.latest_run_id``).

    Returns
    -------
    list of click.Command
        ``report``, ``journal`` (a group with ``note``) and ``readiness``.
    """
    return [_report_command(load_record, latest_run_id),
            _journal_group(load_record, add_note, latest_run_id),
            _readiness_command(load_record, latest_run_id)]


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped or captured output: do not squeeze the tables
    return console


# -- fw report ------------------------------------------------------------------------------------
def _report_command(load_record: RecordLoader, latest_run_id: LatestRun) -> click.Command:
    @click.command(name="report", cls=_ReportCommand)
    @click.option("--period", type=click.Choice(["weekly", "monthly"]), default=None,
                  help="The last complete week (Monday-Sunday; complete once its Friday is over) "
                  "or calendar month.")
    @click.option("--start", help="First day of a custom period (ISO date; with --end).")
    @click.option("--end", help="Last day of a custom period (ISO date, inclusive; with --start).")
    @click.option("--today", default=None, metavar="DATE",
                  help="Pretend today is DATE when choosing --period (default: the day after the "
                  "run's last bar, or today if earlier; a replay's last week/month is its own).")
    @click.option("--run-id", default=None, help=_RUN_HELP)
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_HELP)
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                  help="Output folder (default FW_HOME/reports/<run>/<start>_<end>).")
    def report(period, start, end, today, run_id, db, data_dir, out) -> None:
        """Write the paper run's report for a period: report.html (with a quantstats tear sheet
        vs SPY buy and hold), report.md with the same numbers, and PNG plots.

        Sections: summary, regime analysis, portfolio status, trading activity (costs and
        slippage vs the cost model), system health and your journal notes. Choose the period
        with --period weekly|monthly or with --start and --end.
        """
        import pandas as pd

        from reports.paper_report import period_bounds, write_period_report

        run_id = run_id or latest_run_id(db)
        whole = None
        if period is not None and today is None:
            # the run's own time: a replay of 2016-2018 reports its last month, not today's
            whole = load_record(db, run_id, data_dir=data_dir)
            last = whole.run.get("last_bar")
            now = pd.Timestamp.now(tz="UTC")
            today = (min(_day_after_session(pd.Timestamp(last)), now) if last else now).date()
        lo, hi = _period(period, start, end, today, period_bounds)
        last = whole.run.get("last_bar") if whole is not None else None
        if whole is not None and last is not None and pd.Timestamp(last) <= hi:
            record = whole  # nothing after the period to cut
        else:
            record = load_record(db, run_id, None, hi, data_dir=data_dir)
        label = period or "custom"
        folder = out or _default_out(run_id, lo, hi)
        title = f"fw paper report: {run_id}, {label} {lo.date()} to {hi.date()}"
        paths = write_period_report(record, lo, hi, folder, title)
        click.echo(f"{title}")
        for name in ("html", "markdown", "tearsheet"):
            if name in paths:
                click.echo(f"{name:>10}: {paths[name]}")
        click.echo(f"{'plots':>10}: {folder}/*.png")

    return report


def _day_after_session(last_bar):
    """The day the run's period is judged from: the day after its last bar, or the 1st of the
    next month when that bar was the month's last XNYS session (the month is then complete)."""
    import pandas as pd

    from framework.data.calendars import xnys_sessions

    day = last_bar.tz_convert("America/New_York").tz_localize(None).normalize()
    sessions = xnys_sessions()[0]
    later = sessions[sessions > day]
    following = day + pd.Timedelta(days=1)
    if len(later) and (later[0].year, later[0].month) != (day.year, day.month):
        following = (day + pd.offsets.MonthBegin(1)).normalize()
    return following.tz_localize("UTC")


def _period(period, start, end, today, period_bounds):
    import pandas as pd

    if period is not None and (start or end):
        raise click.UsageError("give either --period or --start/--end, not both.")
    if period is not None:
        return period_bounds(period, today or pd.Timestamp.now(tz="UTC").date())
    if not (start and end):
        raise click.UsageError("choose the period: --period weekly|monthly, or --start DATE "
                               "--end DATE.")
    try:
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(f"{start!r} / {end!r}: expected ISO dates such as 2024-03-31 "
                                 f"({exc}).", param_hint="--start/--end") from exc
    lo = lo.tz_localize("UTC") if lo.tzinfo is None else lo.tz_convert("UTC")
    hi = hi.tz_localize("UTC") if hi.tzinfo is None else hi.tz_convert("UTC")
    if hi == hi.normalize():
        hi = hi + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    if hi < lo:
        raise click.BadParameter(f"--end {end} is before --start {start}.", param_hint="--end")
    return lo, hi


def _default_out(run_id: str, lo, hi) -> Path:
    from framework.paths import home_subdir

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return home_subdir("reports") / safe / f"{lo.date()}_{hi.date()}"


# -- fw journal -----------------------------------------------------------------------------------
def _journal_group(load_record: RecordLoader, add_note: NoteWriter,
                   latest_run_id: LatestRun) -> click.Group:
    @click.group(name="journal", cls=_ReportGroup, invoke_without_command=True)
    @click.option("--run-id", default=None, help=_RUN_HELP)
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--symbol", default=None, help="Only this symbol's trades.")
    @click.option("--since", default=None, metavar="DATE",
                  help="Only trades entered, exited or still open on or after DATE.")
    @click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Also write every column of the listed trades to this CSV file.")
    @click.pass_context
    def journal(ctx, run_id, db, symbol, since, csv_path) -> None:
        """List the paper run's trades: entry and exit, the decision's reason and features,
        the risk rule that cut or closed it, market conditions at entry (regime, VIX,
        volatility), costs, slippage, P&L, days held and your notes.

        `fw journal note TRADE_ID "text"` adds a lesson to a trade.
        """
        if ctx.invoked_subcommand is not None:
            return
        from reports.journal import display_rows, journal_table, journal_totals, write_csv

        run_id = run_id or latest_run_id(db)
        table = journal_table(load_record(db, run_id), symbol=symbol, since=since)
        _print_journal(_console(), run_id, display_rows(table), journal_totals(table))
        if csv_path is not None:
            click.echo(f"wrote {len(table)} trade(s) to {write_csv(table, csv_path)}")

    @journal.command(name="note")
    @click.argument("trade_id")
    @click.argument("text")
    @click.option("--run-id", default=None, help=_RUN_HELP)
    @click.option("--db", default=None, help=_DB_HELP)
    def note(trade_id, text, run_id, db) -> None:
        """Add a note (a lesson) to trade TRADE_ID of the run; it shows in the journal and in
        the reports."""
        run_id = run_id or latest_run_id(db)
        add_note(db, run_id, trade_id, text)
        click.echo(f"note added to {trade_id} (run {run_id}).")

    return journal


def _print_journal(console, run_id: str, rows: list[dict[str, str]], totals: dict) -> None:
    from rich.table import Table

    from reports.paper_report import money, num, pct

    table = Table(title=f"trade journal: run {run_id}")
    columns = ("trade", "symbol", "side", "entry", "exit", "days", "P&L", "return", "costs",
               "exit reason", "entry reason", "regime", "note")
    for column in columns:
        table.add_column(column, justify="right" if column in ("days", "P&L", "return", "costs") else "left")
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    console.print(table)
    console.print(
        f"{totals['trades']} closed trade(s), P&L {money(totals['pnl'])} after costs "
        f"{money(totals['costs'])}; win rate {pct(totals['win_rate'])}, profit factor "
        f"{num(totals['profit_factor'])}; {totals['open_trades']} open", markup=False)


# -- fw readiness ---------------------------------------------------------------------------------
def _readiness_command(load_record: RecordLoader, latest_run_id: LatestRun) -> click.Command:
    @click.command(name="readiness", cls=_ReportCommand)
    @click.option("--run-id", default=None, help=_RUN_HELP)
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help=_DATA_HELP)
    @click.option("--criterion", "criteria", multiple=True, metavar="NAME=VALUE",
                  help="Override a threshold, e.g. --criterion min_sharpe=1.5 (repeatable; names: "
                  "min_months, min_win_rate, min_sharpe, max_drawdown, min_profit_factor, "
                  "min_uptime, flag_win_rate, flag_after_trades, flag_losing_weeks, "
                  "flag_drawdown, max_breaker_trips, max_crashes).")
    @click.pass_context
    def readiness(ctx, run_id, db, data_dir, criteria) -> None:
        """Judge the paper run against go-live criteria and red flags; exit code 1 when it is
        not ready.

        Defaults: at least 3 months of paper trading, win rate >= 60%, Sharpe > 1, max drawdown
        < 20%, profit factor > 1.5, no unresolved failures, uptime > 95%; red flags: win rate
        < 40% after 30 trades, two losing weeks running, drawdown > 25%, repeated breaker
        trips, frequent crashes. Trade statistics on fewer than 30 trades do not pass; their
        95% bootstrap interval is shown.
        """
        from reports.readiness import ReadinessSpec, evaluate, is_ready, parse_overrides

        spec = ReadinessSpec().with_overrides(parse_overrides(criteria))
        run_id = run_id or latest_run_id(db)
        rows = evaluate(load_record(db, run_id, data_dir=data_dir), spec)
        _print_readiness(_console(), run_id, rows, is_ready(rows))
        if not is_ready(rows):
            ctx.exit(1)

    return readiness


def _print_readiness(console, run_id: str, rows, ready: bool) -> None:
    from rich.table import Table

    table = Table(title=f"go-live readiness: run {run_id}")
    for column in ("check", "kind", "measured", "threshold", "result", "note"):
        table.add_column(column)
    for row in rows:
        result = "PASS" if row.passed else ("FLAG" if row.kind == "red flag" else "FAIL")
        style = "green" if row.passed else "red"
        table.add_row(row.name, row.kind, row.measured, row.threshold,
                      f"[{style}]{result}[/{style}]", row.note)
    console.print(table)
    console.print("[bold green]READY[/] for live trading" if ready
                  else "[bold red]NOT READY[/]: see the FAIL/FLAG rows")
