"""The one entry point the rest of fw uses to get bars: :func:`load_bars`.

Sources:

* ``"dir"`` - read ``DIR/SYMBOL.csv`` or ``DIR/SYMBOL.csv.gz`` (intraday: ``DIR/SYMBOL_5min.csv.gz``
  ...) directly, without importing; files are read in parallel threads and fully validated, but
  calendar-gap warnings are skipped (``fw data import`` reports them).
* ``"store"`` - the Parquet store under ``FW_HOME/data`` (``fw data import`` / ``fw data pull``).
* ``"default"`` - the embedded daily data from the ``arch`` package (``GSPC``, ``IXIC``, ``VIX``).
* ``"auto"`` - ``"dir"`` when ``data_dir`` is given; else the store when it holds every requested
  symbol (``symbols=None``: every stored symbol, if the store has any); else the embedded default
  when every requested symbol is embedded (``symbols=None``: all embedded symbols).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from framework.data.calendars import xnys_sessions
from framework.data.csv_files import is_csv_file, read_csv_bars, split_file_name
from framework.data.embedded import EMBEDDED_SYMBOLS, embedded_frame, embedded_info
from framework.data.frames import normalize_symbol, parse_timeframe
from framework.data.store import BarStore
from framework.errors import DataError, did_you_mean
from framework.types import Bars, SymbolInfo

SOURCES = ("auto", "dir", "store", "default")
_MAX_LISTED = 25


def load_bars(
    symbols: Sequence[str] | str | None = None,
    *,
    data_dir: str | Path | None = None,
    source: str = "auto",
    start: object = None,
    end: object = None,
    timeframe: str = "1d",
) -> Bars:
    """Load aligned bars for ``symbols`` from a folder, the store or the embedded default.

    Parameters
    ----------
    symbols : sequence of str or str, optional
        Tickers (case-insensitive; a leading ``^`` is dropped). None means every symbol of the
        chosen source.
    data_dir : str or Path, optional
        Folder of CSV files to read directly (implies ``source="dir"`` under ``"auto"``).
    source : {"auto", "dir", "store", "default"}
        Where to read from; see the module docstring for how ``"auto"`` decides.
    start, end : date-like, optional
        Keep bars whose close time falls in ``[start, end]``; a date without time for ``end``
        keeps that whole day.
    timeframe : str
        ``"1d"`` (default) or an intraday length such as ``"5min"``.

    Returns
    -------
    Bars
        Aligned on the union of close times (NaN where a symbol has no bar), with ``info`` per
        symbol (source, adjusted, adjustment basis).

    Raises
    ------
    DataError
        Unknown source or symbols (listing what is available, with did-you-mean and how to
        import), invalid files, or an empty date range.
    """
    tf = parse_timeframe(timeframe).name
    names = None if symbols is None else _names(symbols)
    chosen = _choose_source(names, data_dir, source, tf)
    if chosen == "dir":
        frames, info = _from_dir(names, Path(data_dir), tf)  # type: ignore[arg-type]
    elif chosen == "store":
        frames, info = _from_store(names, BarStore(), tf)
    else:
        frames, info = _from_default(names, tf)
    bars = Bars.from_frames(frames, info)
    return _between(bars, start, end)


def available_symbols(
    data_dir: str | Path | None = None, source: str = "auto", *, timeframe: str = "1d"
) -> list[str]:
    """Symbols that :func:`load_bars` can load with the same ``data_dir`` and ``source``.

    Under ``"auto"`` without ``data_dir`` this is the store's symbols plus the embedded ones.
    """
    tf = parse_timeframe(timeframe).name
    source = _check_source(source, data_dir)
    if source == "dir" or (source == "auto" and data_dir is not None):
        return sorted(_dir_files(Path(data_dir), tf))  # type: ignore[arg-type]
    stored = BarStore().symbols(tf)
    embedded = list(EMBEDDED_SYMBOLS) if tf == "1d" else []
    if source == "store":
        return stored
    if source == "default":
        return embedded
    return sorted(set(stored) | set(embedded))


def _names(symbols: Sequence[str] | str) -> list[str]:
    items = [symbols] if isinstance(symbols, str) else list(symbols)
    if not items:
        raise DataError("no symbols given; pass a list like ['SPY'] or None for all available.")
    names = [normalize_symbol(s) for s in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"symbols listed more than once: {duplicates}; list each symbol once.")
    return names


def _check_source(source: str, data_dir: str | Path | None) -> str:
    if source not in SOURCES:
        raise DataError(
            f"unknown data source {source!r}.{did_you_mean(source, SOURCES)} "
            f"Valid sources: {', '.join(SOURCES)}."
        )
    if source == "dir" and data_dir is None:
        raise DataError(
            "source='dir' needs data_dir (a folder of SYMBOL.csv[.gz] files); "
            "pass data_dir=... or --data-dir DIR."
        )
    return source


def _choose_source(names: list[str] | None, data_dir, source: str, tf: str) -> str:
    source = _check_source(source, data_dir)
    if source != "auto":
        return source
    if data_dir is not None:
        return "dir"
    stored = set(BarStore().symbols(tf))
    if names is None and stored:
        return "store"
    if names is not None and set(names) <= stored:
        return "store"
    if tf == "1d" and (names is None or set(names) <= set(EMBEDDED_SYMBOLS)):
        return "default"
    missing = [n for n in (names or []) if n not in stored]
    available = sorted(stored | (set(EMBEDDED_SYMBOLS) if tf == "1d" else set()))
    raise DataError(_unknown_message(missing, available, f"the store or embedded data ({tf})"))


def _unknown_message(missing: Sequence[str], available: Sequence[str], where: str) -> str:
    hints = "".join(did_you_mean(m, available) for m in missing[:3])
    shown = ", ".join(available[:_MAX_LISTED]) or "(none)"
    if len(available) > _MAX_LISTED:
        shown += f", ... ({len(available) - _MAX_LISTED} more)"
    return (
        f"unknown symbol(s) {list(missing)} in {where}.{hints} Available: {shown}. "
        "Import data with `fw data import PATH` (a CSV file or folder), pull it with "
        "`fw data pull SYMBOL --source yahoo`, or pass --data-dir DIR."
    )


def _dir_files(folder: Path, tf: str) -> dict[str, Path]:
    """Symbol -> file for ``folder``: ``SYM.csv[.gz]`` for daily, ``SYM_<tf>.csv[.gz]`` else."""
    if not folder.is_dir():
        raise DataError(
            f"data folder {str(folder)!r} does not exist; pass a folder of "
            "SYMBOL.csv or SYMBOL.csv.gz files."
        )
    wanted = None if tf == "1d" else tf
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not is_csv_file(path):
            continue
        stem, file_timeframe = split_file_name(path)
        if file_timeframe == wanted:
            found.setdefault(stem.upper().lstrip("^"), path)
    return found


def _from_dir(names: list[str] | None, folder: Path, tf: str):
    files = _dir_files(folder, tf)
    if names is None:
        names = sorted(files)
        if not names:
            raise DataError(
                f"no {tf} CSV files in {str(folder)!r}; expected SYMBOL.csv or "
                f"SYMBOL.csv.gz{'' if tf == '1d' else f' named SYMBOL_{tf}.csv.gz'}."
            )
    missing = [n for n in names if n not in files]
    if missing:
        raise DataError(_unknown_message(missing, sorted(files), f"folder {str(folder)!r}"))

    def read(name: str):
        return read_csv_bars(files[name], symbol=name, timeframe=tf, check_gaps=False)

    # Build the (cached) calendar once here: worker threads would otherwise race to build it.
    xnys_sessions()

    # Reading is I/O plus gzip and the C parser, which release the GIL, so threads help.
    workers = max(1, min(8, (os.cpu_count() or 1) * 2, len(names)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(read, names))
    frames = {r.symbol: r.frame for r in results}
    info = {r.symbol: r.info for r in results}
    return frames, info


def _from_store(names: list[str] | None, store: BarStore, tf: str):
    stored = store.symbols(tf)
    if names is None:
        names = stored
        if not names:
            raise DataError(
                f"the store at {str(store.folder)!r} holds no {tf} bars; import data "
                "with `fw data import PATH` or pull it with `fw data pull`."
            )
    missing = [n for n in names if n not in stored]
    if missing:
        raise DataError(_unknown_message(missing, stored, f"the store ({tf})"))

    def read(name: str):
        return store.read(name, tf)

    workers = max(1, min(8, (os.cpu_count() or 1) * 2, len(names)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(read, names))
    frames = {meta.symbol: frame for frame, meta in results}
    info: dict[str, SymbolInfo] = {meta.symbol: meta.symbol_info() for _, meta in results}
    return frames, info


def _from_default(names: list[str] | None, tf: str):
    if tf != "1d":
        raise DataError(
            f"the embedded default has daily bars only; got timeframe {tf!r}. "
            "Import intraday files with `fw data import PATH`."
        )
    names = list(EMBEDDED_SYMBOLS) if names is None else names
    missing = [n for n in names if n not in EMBEDDED_SYMBOLS]
    if missing:
        raise DataError(_unknown_message(missing, EMBEDDED_SYMBOLS, "the embedded default"))
    frames = {n: embedded_frame(n) for n in names}
    return frames, {n: embedded_info(n) for n in names}


def _between(bars: Bars, start: object, end: object) -> Bars:
    if start is None and end is None:
        return bars
    selected = bars.between(start, end)
    if selected.n_bars == 0:
        raise DataError(
            f"no bars between start={start!r} and end={end!r}; the data covers "
            f"{bars.index[0].date()} .. {bars.index[-1].date()}. Adjust the dates."
        )
    return selected


def frame_for(
    symbol: str, *, source: str = "auto", data_dir: str | Path | None = None, timeframe: str = "1d"
) -> pd.DataFrame:
    """One symbol's OHLCV frame (close-time index), for display and scripts."""
    return load_bars([symbol], source=source, data_dir=data_dir, timeframe=timeframe).to_frame(
        normalize_symbol(symbol)
    )
