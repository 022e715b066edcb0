"""The trade journal: every round trip of a paper run with why it was opened and closed.

Rows come from :func:`framework.paper_record.record_trips` (one implementation for the journal,
the reports and the readiness check); the user's notes are joined by trade id. Totals use
:mod:`framework.metrics`, so an unfiltered journal's totals equal ``paper_metrics`` of the whole
record.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from framework import metrics
from framework.errors import ConfigError, DataError, unknown_name_message
from framework.paper_record import PaperRecord, record_trips

#: Journal columns in display / CSV order.
JOURNAL_COLUMNS: tuple[str, ...] = (
    "trade_id", "symbol", "side", "qty", "entry_time", "entry_price", "exit_time", "exit_price",
    "days_held", "pnl", "return", "costs", "commission", "slippage", "open", "entry_reason",
    "exit_reason", "entry_target", "entry_regime", "entry_vix", "entry_volatility",
    "prediction", "entry_features", "notes",
)
_TIME_COLUMNS = ("entry_time", "exit_time")


def journal_table(record: PaperRecord, symbol: str | None = None,
                  since: object = None) -> pd.DataFrame:
    """The journal rows, optionally for one symbol and for trades active since a date.

    Parameters
    ----------
    record : PaperRecord
    symbol : str, optional
        Only this symbol (case-insensitive).
    since : date-like, optional
        Trades entered, exited or still open on or after this date.

    Returns
    -------
    DataFrame
        Columns :data:`JOURNAL_COLUMNS`, oldest entry first.
    """
    trips = record_trips(record)
    notes = record.notes.groupby("trade_id")["text"].agg(" | ".join) if len(record.notes) else {}
    trips["notes"] = [notes.get(t, "") for t in trips["trade_id"]] if len(notes) else ""
    if symbol is not None:
        known = sorted(set(record.bars.symbols) | set(trips["symbol"]))
        match = [s for s in known if s.upper() == symbol.upper()]
        if not match:
            raise ConfigError(unknown_name_message("symbol", symbol, known))
        trips = trips[trips["symbol"] == match[0]]
    if since is not None:
        start = _since(since)
        active = (trips["entry_time"] >= start) | trips["open"].astype(bool) \
            | (pd.to_datetime(trips["exit_time"], utc=True) >= start)
        trips = trips[active]
    return trips.reindex(columns=list(JOURNAL_COLUMNS)).reset_index(drop=True)


def _since(value: object) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--since {value!r} is not a date; expected e.g. 2024-03-01.") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def journal_totals(table: pd.DataFrame) -> dict[str, float | int]:
    """Closed trades, their P&L and costs, win rate and profit factor (``framework.metrics``),
    and how many trades are still open."""
    closed = table[~table["open"].astype(bool)] if len(table) else table
    pnl = closed["pnl"].to_numpy(dtype=float) if len(closed) else []
    return {
        "trades": len(closed),
        "open_trades": len(table) - len(closed),
        "pnl": float(sum(pnl)),
        "costs": float(closed["costs"].sum()) if len(closed) else 0.0,
        "win_rate": metrics.win_rate(pnl),
        "profit_factor": metrics.profit_factor(pnl),
    }


def write_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the journal as CSV (ISO times in UTC, empty cells for missing values)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = table.copy()
    for column in _TIME_COLUMNS:
        frame[column] = [t.isoformat() if isinstance(t, pd.Timestamp) and not pd.isna(t) else ""
                         for t in frame[column]]
    frame.to_csv(out, index=False)
    return out


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a journal CSV written by :func:`write_csv` back into journal dtypes."""
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""],
                            dtype={"trade_id": str, "symbol": str, "side": str, "notes": str,
                                   "entry_reason": str, "exit_reason": str, "entry_features": str})
    except (OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read journal CSV {path}: {exc}. Expected a file written by "
                        "fw journal --csv.") from exc
    missing = [c for c in JOURNAL_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path} lacks journal columns {missing}; expected a file written by "
                        "fw journal --csv.")
    for column in _TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["open"] = frame["open"].astype(str).str.lower() == "true"
    for column in ("notes", "entry_features", "entry_regime"):
        frame[column] = frame[column].fillna("")
    return frame[list(JOURNAL_COLUMNS)]


def display_rows(table: pd.DataFrame) -> list[dict[str, str]]:
    """Short text per trade for a terminal table."""
    rows = []
    for r in table.to_dict("records"):
        rows.append({
            "trade": r["trade_id"], "symbol": r["symbol"], "side": r["side"],
            "entry": _when(r["entry_time"]), "exit": "open" if r["open"] else _when(r["exit_time"]),
            "days": f"{r['days_held']:.0f}", "P&L": f"${r['pnl']:,.2f}",
            "return": _pct(r["return"]), "costs": f"${r['costs']:,.2f}",
            "entry reason": str(r["entry_reason"]), "exit reason": str(r["exit_reason"]),
            "regime": str(r["entry_regime"] or ""), "note": str(r["notes"] or ""),
        })
    return rows


def _when(value) -> str:
    return "" if value is None or pd.isna(value) else str(pd.Timestamp(value).date())


def _pct(value) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2%}"
