"""``fw parity``: compare a paper run with its backtest replay, write the report, gate on it.

``reports`` may not import ``live``, so :func:`make_parity_command` receives the computing
function from the composition root (``framework/cli.py``): ``compare(db, run_id)`` returns a
``live.parity.ParityResult`` (or anything with its DataFrames, ``summary`` and
``exceeds(**overrides)``), and ``latest_run_id(db)`` names the database's most recent run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from framework.errors import FwError

Compare = Callable[[str | None, str], Any]
LatestRun = Callable[[str | None], str]

_DB_HELP = "State database URL (default: FW_DB_URL, else sqlite under FW_HOME/state/fw.sqlite)."


class _ParityCommand(click.Command):
    """fw's own errors become one clean line and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FwError as exc:
            raise click.ClickException(str(exc)) from exc


def make_parity_command(compare: Compare, latest_run_id: LatestRun) -> click.Command:
    """The ``parity`` command bound to the composition root's parity computation.

    Parameters
    ----------
    compare : callable
        ``(db, run_id) -> ParityResult`` (``live.parity.compare_db`` with the strategy
        resolver); ``db`` is the ``--db`` URL or None.
    latest_run_id : callable
        ``db -> run id`` of the database's most recent run.

    Returns
    -------
    click.Command
    """

    @click.command(name="parity", cls=_ParityCommand)
    @click.option("--run-id", default=None,
                  help="Paper run to check (default: the latest run of the database).")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path),
                  help="Output folder (default FW_HOME/reports/<run>/parity).")
    @click.option("--max-price-bps", type=float, default=None, metavar="X",
                  help="Largest allowed mean |price difference| of matched fills, in bps "
                  "(default 5).")
    def parity(run_id: str | None, db: str | None, out: Path | None,
               max_price_bps: float | None) -> None:
        """Replay a paper run's recorded bars through the backtest and compare: decisions
        (must be identical), fills (time, price and quantity differences, unmatched fills with
        a likely reason) and costs (model vs realized). Writes parity.html, parity.md and
        parity.png.

        Exits 1 when a threshold is exceeded: any decision mismatch, mean |price diff| above
        --max-price-bps, |quantity diff| > 2% on more than 10% of the fills, or any unmatched
        fill.
        """
        run_id = run_id or latest_run_id(db)
        result = compare(db, run_id)
        breaches = result.exceeds(max_mean_price_bps=max_price_bps)
        folder = out or _default_out(run_id)
        from reports.parity_report import write_parity_report

        paths = write_parity_report(result, folder, breaches)
        _print_headline(result.summary)
        for name in ("html", "markdown", "plot"):
            click.echo(f"{name:>10}: {paths[name]}")
        if breaches:
            for line in breaches:
                click.echo(f"parity threshold exceeded: {line}", err=True)
            raise click.exceptions.Exit(1)
        click.echo("parity: within every threshold")

    return parity


def headline_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline numbers as (label, text) rows, as the terminal table shows them."""
    from reports.paper_report import money
    from reports.parity_report import bps, pct_points, seconds

    s = summary
    return [
        ("decisions identical", f"{s['decisions'] - s['decision_mismatches']:,} / "
                                f"{s['decisions']:,}"),
        ("decision mismatches", f"{s['decision_mismatches']:,}"),
        ("fill groups matched", f"{s['matched']:,}"),
        ("live only / backtest only", f"{s['live_only']:,} / {s['backtest_only']:,}"),
        ("mean |price diff|", bps(s["mean_abs_price_bps"])),
        ("max |price diff|", bps(s["max_abs_price_bps"])),
        ("mean |qty diff|", pct_points(s["mean_abs_qty_pct"])),
        ("max |qty diff|", pct_points(s["max_abs_qty_pct"])),
        ("mean |time diff|", seconds(s["mean_abs_time_s"])),
        ("costs model / realized", f"{money(s['model_cost'])} / {money(s['realized_cost'])}"),
        ("final equity live / backtest", f"{money(s['live_final_equity'])} / "
                                         f"{money(s['backtest_final_equity'])}"),
    ]


def _print_headline(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped or captured output: do not squeeze the table
    table = Table(title=f"parity: {summary['run_id']} ({summary['strategy']}, "
                        f"broker {summary['broker']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in headline_rows(summary):
        table.add_row(label, value)
    console.print(table)


def _default_out(run_id: str) -> Path:
    from framework.paths import home_subdir

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return home_subdir("reports") / safe / "parity"
