"""Read a paper run out of the live store as a :class:`~framework.paper_record.PaperRecord`,
and keep the user's trade notes.

Notes live in a table of their own (``paper_notes``), created on first use on the store's engine
with its own SQLAlchemy metadata, so the store's versioned schema is left untouched.

The benchmark is SPY buy and hold: from the run's own bars when it trades SPY, else from the
data source (``--data-dir`` folder or the data store), else the embedded S&P 500 index labelled
as a proxy. Market conditions at trade entry (regime labels of the benchmark symbol, the VIX)
come from the same sources when they have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from framework.errors import ConfigError, DataError, unknown_name_message
from framework.paper_metrics import market_times
from framework.paper_record import PaperRecord, record_trips
from framework.types import Bars
from live.command import latest_run_id as _latest_run_id
from live.command import require_run
from live.state import Store, now_iso

_NOTES_META = sa.MetaData()
NOTES = sa.Table(
    "paper_notes", _NOTES_META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("trade_id", sa.String, nullable=False),
    sa.Column("time", sa.String, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)
BENCHMARK = "SPY"
_PROXY = "GSPC"
_ALL = 1_000_000_000  # "every row" for the store's latest-N readers


def open_store(store: Store | str | None) -> Store:
    """A :class:`Store` as given, or opened from a URL (None: the default database)."""
    return store if isinstance(store, Store) else Store(store)


def latest_run_id(store: Store | str | None) -> str:
    """The most recently created run of the database (a Store or a URL)."""
    return _latest_run_id(open_store(store))


# -- notes ----------------------------------------------------------------------------------------
def _notes_table(store: Store) -> sa.Table:
    NOTES.create(store.engine, checkfirst=True)
    return NOTES


def add_note(store: Store | str | None, run_id: str, trade_id: str, text: str) -> dict[str, Any]:
    """Attach a lesson to a round trip of run ``run_id``; returns the stored note.

    Raises
    ------
    ConfigError
        Unknown run, unknown trade id (with did-you-mean and the latest ids), or empty text.
    """
    store = open_store(store)
    if not str(text).strip():
        raise ConfigError("the note text is empty; write the lesson in quotes, e.g. "
                          "fw journal note GSPC-3.1 \"exited too early\".")
    record = load_record(store, run_id)
    known = record_trips(record)["trade_id"].tolist()
    if trade_id not in known:
        raise ConfigError(
            unknown_name_message("trade id", trade_id, known[-20:])
            + f" (run {run_id}; `fw journal --run-id {run_id}` lists them)"
        )
    row = {"run_id": run_id, "trade_id": trade_id, "time": now_iso(), "text": str(text).strip()}
    table = _notes_table(store)
    with store.engine.begin() as conn:
        conn.execute(sa.insert(table).values(**row))
    return row


def notes(store: Store, run_id: str) -> pd.DataFrame:
    """The run's notes: ``trade_id``, ``time`` (UTC), ``text``, oldest first."""
    table = _notes_table(store)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.trade_id, table.c.time, table.c.text).where(
            table.c.run_id == run_id).order_by(table.c.id)).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows], columns=["trade_id", "time", "text"])
    frame["time"] = _times(frame["time"])
    return frame


# -- the record -----------------------------------------------------------------------------------
def load_record(store: Store | str | None, run_id: str, start: object = None, end: object = None,
                *, data_dir: Path | None = None) -> PaperRecord:
    """The paper record of ``run_id`` as it stood at ``end``.

    Parameters
    ----------
    store : Store, str or None
        The state database (or its URL; None: the default).
    run_id : str
    start, end : date-like, optional
        Nothing after ``end`` is kept (a date means its whole day). Equity, decisions, events and
        errors before ``start`` are dropped; fills and orders are kept from the beginning so
        trades opened earlier still pair correctly. Cumulative figures start at the first kept
        equity snapshot: leave ``start`` empty for since-inception numbers.
    data_dir : Path, optional
        Folder of CSV files for the benchmark and market conditions (as ``fw paper --data-dir``).

    Returns
    -------
    PaperRecord
    """
    store = open_store(store)
    run = require_run(store, run_id)
    lo, hi = _window(start, end)
    symbols = list(run["symbols"])
    bars = store.load_bars(run_id, symbols)
    if hi is not None:
        bars = bars.iloc(slice(0, int((bars.index <= hi).sum())))
    orders = _upto(_orders(store, run_id), "bar_time", hi)
    replay = (run.get("config") or {}).get("broker", "sim") == "sim"
    events = _log(store.events(run_id, limit=_ALL), orders, replay)
    errors = _log(store.errors(run_id, limit=_ALL), orders, replay)
    benchmark, label, history = _benchmark(bars, data_dir)
    # the record ends at its last bar: later benchmark prints are not part of it
    last = hi if hi is not None else (bars.index[-1] if bars.n_bars else None)
    if benchmark is not None and last is not None:
        benchmark = benchmark[benchmark.index <= last]
    return PaperRecord(
        run=run,
        equity=_between(_equity(store, run_id), None, lo, hi),
        fills=_upto(_fills(store, run_id), "time", hi),
        orders=orders,
        decisions=_between(_decisions(store, run_id), "bar_time", lo, hi),
        events=_between(events, "market_time", lo, hi),
        errors=_between(errors, "market_time", lo, hi),
        bars=bars,
        benchmark=benchmark,
        benchmark_label=label,
        notes=notes(store, run_id),
        conditions=_conditions(history, bars, data_dir, last),
        spans=pd.DataFrame(store.spans(run_id), columns=["started_at", "last_beat_at"]),
    )


def _window(start, end) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    lo = None if start is None else _stamp(start)
    hi = None
    if end is not None:
        hi = _stamp(end)
        if hi == hi.normalize():
            hi = hi + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    if lo is not None and hi is not None and hi < lo:
        raise ConfigError(f"--end {end} is before --start {start}; expected start <= end.")
    return lo, hi


def _stamp(value: object) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{value!r} is not a date; expected e.g. 2024-03-31.") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _times(values) -> pd.Series:
    # "start" (a flatten order sent before any bar) is not a time: NaT
    return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601", errors="coerce")


def _between(frame: pd.DataFrame, column: str | None, lo, hi) -> pd.DataFrame:
    when = frame.index if column is None else frame[column]
    keep = np.ones(len(frame), bool)
    if lo is not None:
        keep &= np.asarray(when >= lo)
    if hi is not None:
        keep &= np.asarray(when <= hi)
    return frame[keep]


def _upto(frame: pd.DataFrame, column: str, hi) -> pd.DataFrame:
    return frame if hi is None else frame[(frame[column] <= hi) | frame[column].isna()]


def _equity(store: Store, run_id: str) -> pd.DataFrame:
    raw = store.equity(run_id)
    frame = pd.DataFrame({"cash": raw["cash"].astype(np.float64).to_numpy(),
                          "equity": raw["equity"].astype(np.float64).to_numpy()},
                         index=pd.DatetimeIndex(_times(raw["time"]), name="time"))
    return frame.sort_index()


def _fills(store: Store, run_id: str) -> pd.DataFrame:
    columns = ["execution_id", "client_order_id", "symbol", "quantity", "price", "commission",
               "slippage", "impact", "time"]
    frame = pd.DataFrame(store.fills(run_id))
    frame = frame.reindex(columns=columns) if not frame.empty else pd.DataFrame(columns=columns)
    frame["time"] = _times(frame["time"])
    return frame


def _orders(store: Store, run_id: str) -> pd.DataFrame:
    frame = pd.DataFrame(store.orders(run_id))
    if frame.empty:
        frame = pd.DataFrame(columns=["client_order_id", "bar_time", "symbol", "quantity",
                                      "status", "filled_quantity", "average_price",
                                      "created_at", "updated_at"])
    for column in ("bar_time", "created_at", "updated_at"):
        frame[column] = _times(frame[column])
    return frame.drop(columns=["run_id"], errors="ignore")


def _decisions(store: Store, run_id: str) -> pd.DataFrame:
    frame = store.decisions(run_id)
    if frame.empty:
        frame = pd.DataFrame(columns=["bar_time", "symbol", "target", "pending",
                                      "order_quantity", "features"])
    frame["bar_time"] = _times(frame["bar_time"])
    return frame.drop(columns=["run_id"], errors="ignore")


def _log(rows: list[dict], orders: pd.DataFrame, replay: bool) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["id", "time", "kind", "message", "detail"])
    frame["time"] = _times(frame["time"])
    frame["market_time"] = market_times(frame, orders, replay)
    return frame.drop(columns=["run_id"], errors="ignore")


# -- benchmark and market conditions ----------------------------------------------------------------
def _benchmark(bars: Bars, data_dir: Path | None) -> tuple[pd.Series | None, str, Bars | None]:
    """SPY closes (or a labelled proxy), its label, and the full history it came from."""
    if BENCHMARK in bars.symbols:
        return _closes(bars, BENCHMARK), "SPY buy and hold (the run's own bars)", None
    history = _load([BENCHMARK], data_dir=data_dir)
    if history is not None:
        info = history.info.get(BENCHMARK)
        return (_closes(history, BENCHMARK), f"SPY buy and hold ({info.source if info else 'data'})",
                history)
    label = "S&P 500 price index (GSPC, no dividends) as SPY proxy"
    if _PROXY in bars.symbols:
        return _closes(bars, _PROXY), label, _load([_PROXY], source="default")
    history = _load([_PROXY], source="default")
    if history is None:
        return None, "none (SPY not in the data and no embedded proxy)", None
    return _closes(history, _PROXY), label, history


def _load(symbols: list[str], **where) -> Bars | None:
    from framework.data import load_bars

    try:
        return load_bars(symbols, **where)
    except DataError:
        return None  # not in this source: the caller falls back to a labelled substitute


def _closes(bars: Bars, symbol: str) -> pd.Series:
    close = bars.frame("close")[symbol].dropna()
    close.name = symbol
    return close


def _conditions(history: Bars | None, bars: Bars, data_dir: Path | None, hi) -> pd.DataFrame | None:
    """Regime label of the benchmark symbol (full history, so the warm-up is behind it) and
    the VIX close, by time; None when neither is available."""
    from framework.regime import REGIME_NAMES, regime_labels

    columns = {}
    source = history
    if source is None:
        pick = BENCHMARK if BENCHMARK in bars.symbols else (_PROXY if _PROXY in bars.symbols else None)
        source = bars.select([pick]) if pick is not None else None
    vix = _load(["VIX"], data_dir=data_dir) if data_dir is not None else _load(["VIX"])
    if source is not None and source.n_bars:
        labels = regime_labels(source.select([source.symbols[0]]))[:, 0]
        names = [REGIME_NAMES[x] if x >= 0 else None for x in labels]
        columns["regime"] = pd.Series(names, index=source.index, dtype=object)
    if vix is not None and vix.n_bars:
        columns["vix"] = vix.frame("close")["VIX"]
    if not columns:
        return None
    frame = pd.DataFrame(columns)
    return frame[frame.index <= hi] if hi is not None else frame
