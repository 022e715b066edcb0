"""The ``fw data`` command group: import, list, show and pull bars.

The composition root wires it with ``main.add_command(data)``. Every fw error becomes a one-line
message and exit status 1 (``click.ClickException``), never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from framework.errors import FwError

F = TypeVar("F", bound=Callable[..., object])


def _clean_errors(command: F) -> F:
    """Turn FwError into a one-line ClickException (exit status 1)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except FwError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def _console() -> Console:
    # A wide console keeps table rows on one line when output is piped or captured.
    return Console(width=160, soft_wrap=True)


@click.group()
def data() -> None:
    """Import, inspect and download market data (the bar store under FW_HOME/data)."""


@data.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--symbol", default=None, help="Symbol to store a single file under.")
@click.option(
    "--timeframe", default=None, help="Bar length (1d, 1min, 5min...); default: inferred."
)
@_clean_errors
def import_command(paths: tuple[Path, ...], symbol: str | None, timeframe: str | None) -> None:
    """Validate CSV files (or folders of them) and store them as Parquet.

    Accepts date,open,high,low,close,adj_close,volume (gzip or not), Yahoo's
    Date,Open,High,Low,Close,Adj Close,Volume, and intraday timestamp,open,... files.
    A file that fails validation is reported and leaves the stored copy untouched.
    """
    from framework.data.importing import check_distinct_targets, collect_csv_files, import_csv

    files = collect_csv_files(paths)
    if symbol is None:
        check_distinct_targets(files)
    if symbol is not None and len(files) != 1:
        raise click.UsageError(
            f"--symbol names one file, but {len(files)} files were given; "
            "drop --symbol to use each file's name."
        )
    console = _console()
    table = Table(title="imported")
    for name in ("symbol", "timeframe", "rows", "first", "last", "adjusted", "warnings"):
        table.add_column(name)
    failures = []
    for path in files:
        try:
            result = import_csv(path, symbol=symbol, timeframe=timeframe)
        except FwError as exc:
            failures.append(str(exc))
            continue
        meta = result.meta
        table.add_row(
            meta.symbol,
            meta.timeframe,
            str(meta.rows),
            meta.first[:16],
            meta.last[:16],
            "yes" if meta.adjusted else "no",
            "; ".join(result.warnings) or "-",
        )
    if table.row_count:
        console.print(table)
    for message in failures:
        console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    if failures:
        raise click.ClickException(
            f"{len(failures)} of {len(files)} file(s) failed validation; "
            "the store keeps their previous versions."
        )


@data.command("list")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="List a folder of SYMBOL.csv[.gz] files instead of the store.",
)
@_clean_errors
def list_command(data_dir: Path | None) -> None:
    """List stored series: symbol, timeframe, first, last, rows, source, adjusted."""
    from framework.data.embedded import EMBEDDED_SYMBOLS
    from framework.data.loading import available_symbols
    from framework.data.store import BarStore

    console = _console()
    if data_dir is not None:
        names = available_symbols(data_dir=data_dir, source="dir")
        console.print(f"{len(names)} daily symbol(s) in {data_dir}: {', '.join(names) or '-'}")
        return
    store = BarStore()
    entries = store.entries()
    if not entries:
        console.print(
            f"the store at {store.folder} is empty. Embedded default symbols: "
            f"{', '.join(EMBEDDED_SYMBOLS)}. Import data with `fw data import PATH`."
        )
        return
    table = Table(title=f"bar store {store.folder}")
    for name in ("symbol", "timeframe", "first", "last", "rows", "source", "adjusted"):
        table.add_column(name)
    for meta in entries:
        table.add_row(
            meta.symbol,
            meta.timeframe,
            meta.first[:16],
            meta.last[:16],
            str(meta.rows),
            meta.source,
            "yes" if meta.adjusted else "no",
        )
    console.print(table)


@data.command("show")
@click.argument("symbol")
@click.option(
    "--tail",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Number of most recent bars to print.",
)
@click.option("--timeframe", default="1d", show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Read DIR/SYMBOL.csv[.gz] directly instead of the store.",
)
@_clean_errors
def show_command(symbol: str, tail: int, timeframe: str, data_dir: Path | None) -> None:
    """Show where SYMBOL's bars come from and its last bars."""
    from framework.data.loading import load_bars

    bars = load_bars([symbol], data_dir=data_dir, timeframe=timeframe)
    name = bars.symbols[0]
    info = bars.info.get(name)
    frame = bars.to_frame(name)
    console = _console()
    console.print(
        f"[bold]{name}[/bold] {timeframe}: {len(frame)} bars, "
        f"{frame.index[0].isoformat()} .. {frame.index[-1].isoformat()}",
        highlight=False,
    )
    if info is not None:
        console.print(
            f"source: {info.source}\nadjusted: {'yes' if info.adjusted else 'no'} ({info.note})",
            highlight=False,
            markup=False,
        )
    table = Table(title=f"last {min(tail, len(frame))} bars (labelled by close time, UTC)")
    for column in ("time", "open", "high", "low", "close", "volume"):
        table.add_column(column, justify="left" if column == "time" else "right")
    for stamp, row in frame.tail(tail).iterrows() if tail else []:
        prices = (f"{row[c]:.4f}" for c in ("open", "high", "low", "close"))
        table.add_row(stamp.isoformat(), *prices, f"{row['volume']:,.0f}")
    console.print(table)


@data.command("pull")
@click.argument("symbols", nargs=-1, required=True)
@click.option(
    "--source",
    "source",
    type=click.Choice(["yahoo", "alpaca"]),
    required=True,
    help="Remote provider.",
)
@click.option("--start", default=None, help="First date (YYYY-MM-DD); default: all history.")
@click.option("--end", default=None, help="Last date, inclusive; default: today.")
@click.option("--timeframe", default="1d", show_default=True)
@click.option("--full", is_flag=True, help="Download the whole range again and replace.")
@_clean_errors
def pull_command(
    symbols: tuple[str, ...],
    source: str,
    start: str | None,
    end: str | None,
    timeframe: str,
    full: bool,
) -> None:
    """Download bars for SYMBOLS into the store (only bars after the last stored one).

    Alpaca keys come from APCA_API_KEY_ID and APCA_API_SECRET_KEY.
    """
    from framework.data.pull import PullSpec, pull_symbols

    provider = _provider(source)
    spec = PullSpec(start=start, end=end, timeframe=timeframe, full=full)
    console = _console()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"pulling from {source}", total=len(symbols))
        results = pull_symbols(
            provider, symbols, spec, on_done=lambda result: progress.advance(task)
        )
    table = Table(title=f"pulled from {source}")
    for name in ("symbol", "action", "new rows", "rows", "first", "last", "notes"):
        table.add_column(name)
    for r in results:
        table.add_row(
            r.symbol,
            r.action,
            str(r.new_rows),
            str(r.rows),
            r.first[:16],
            r.last[:16],
            "; ".join(r.messages) or "-",
        )
    console.print(table, markup=False)
    failed = [r.symbol for r in results if r.action == "failed"]
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(results)} symbol(s) failed: "
            f"{', '.join(failed)} (see notes above)."
        )


def _provider(source: str):
    if source == "yahoo":
        from framework.data.yahoo import YahooProvider

        return YahooProvider()
    from framework.data.alpaca import AlpacaProvider

    return AlpacaProvider.from_environment()
