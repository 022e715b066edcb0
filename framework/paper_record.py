"""The paper-trading record as plain pandas objects and its round trips (metrics:
:mod:`framework.paper_metrics`).

A :class:`PaperRecord` is what a paper run left in the live store (loaded by ``live.record``),
with no database attached: reports, the trade journal and the readiness check all read it and
all take their numbers from :func:`framework.paper_metrics.paper_metrics` and
:func:`round_trips`, so the same metric
has the same value everywhere. The return- and trade-based figures themselves come from
:mod:`framework.metrics`, exactly as for backtests.

Conventions
-----------
- Times are tz-aware UTC. Events and errors carry ``time`` (wall clock of the write) and
  ``market_time`` (the bar being processed when they were written; for a replay the two differ).
- Round trips are FIFO lot slices, matched by the backtest engine's own matcher
  (:func:`framework.engine.trades.trades_frame`), so a paper trade and a backtest trade mean the
  same thing. ``pnl`` is after every cost: commissions are deducted, slippage and impact are
  inside the fill prices (the broker's convention). Open lots are marked at the last close.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from framework import metrics
from framework.engine import _layout as engine_layout
from framework.engine.trades import trades_frame
from framework.errors import DataError
from framework.types import Bars

_VOLATILITY_WINDOW = 20
_FLATTEN_PREFIX = "flatten:"

ROUND_TRIP_COLUMNS: tuple[str, ...] = (
    "trade_id", "symbol", "side", "qty", "entry_time", "exit_time", "entry_price", "exit_price",
    "pnl", "return", "costs", "commission", "slippage", "days_held", "open", "exit_reason",
    "entry_reason", "entry_target", "entry_features", "prediction", "entry_regime", "entry_vix",
    "entry_volatility", "entry_fill", "exit_fill",
)


@dataclass(frozen=True, eq=False)
class PaperRecord:
    """Everything a paper run recorded, as plain pandas objects.

    Attributes
    ----------
    run : dict
        ``run_id``, ``strategy``, ``symbols``, ``config``, ``kill_switch``, ``created_at``,
        ``last_bar`` (and whatever else the store keeps about the run).
    equity : DataFrame
        Indexed by bar close time (UTC): ``cash``, ``equity``.
    fills, orders, decisions, events, errors : DataFrame
        The store's tables; time columns parsed to UTC timestamps; events and errors with a
        ``market_time`` column.
    bars : Bars
        The run's bars.
    benchmark : Series or None
        Benchmark closes (SPY, or a labelled proxy) indexed by UTC close time.
    benchmark_label : str
        What the benchmark is, honestly (e.g. "S&P 500 index (GSPC) as SPY proxy").
    notes : DataFrame
        ``trade_id``, ``time``, ``text``: lessons entered by the user.
    conditions : DataFrame, optional
        Market conditions by UTC time (columns such as ``regime``, ``vix``), used at trade entry.
    spans : DataFrame, optional
        Health spans of the runner process (``started_at``, ``last_beat_at``; see
        :mod:`framework.uptime`): live runs measure uptime in market hours with them.
    """

    run: dict
    equity: pd.DataFrame
    fills: pd.DataFrame
    orders: pd.DataFrame
    decisions: pd.DataFrame
    events: pd.DataFrame
    errors: pd.DataFrame
    bars: Bars
    benchmark: pd.Series | None = None
    benchmark_label: str = "none"
    notes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["trade_id", "time", "text"]))
    conditions: pd.DataFrame | None = None
    spans: pd.DataFrame | None = None

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id", "?"))

    @property
    def initial_cash(self) -> float:
        """Starting cash of the run (config ``initial_cash``, default 100,000)."""
        return float((self.run.get("config") or {}).get("initial_cash", 100_000.0))


# -- returns ------------------------------------------------------------------------------------
def equity_returns(record: PaperRecord) -> pd.Series:
    """Simple returns per bar; the first is measured against the initial cash."""
    curve = record.equity["equity"].astype(np.float64)
    if curve.empty:
        return pd.Series(dtype=np.float64, index=pd.DatetimeIndex([], tz="UTC"), name="returns")
    before = curve.shift(1)
    before.iloc[0] = record.initial_cash
    returns = curve / before - 1.0
    returns.name = "returns"
    return returns


def benchmark_returns(record: PaperRecord, index: pd.DatetimeIndex | None = None) -> pd.Series | None:
    """Buy-and-hold returns of the benchmark on ``index`` (default: the equity's), or None.

    Closes are carried forward to the index (a bar without a benchmark print earns 0)."""
    if record.benchmark is None or record.benchmark.dropna().empty:
        return None
    index = record.equity.index if index is None else index
    closes = record.benchmark.dropna().astype(np.float64)
    aligned = closes.reindex(closes.index.union(index)).ffill()
    returns = aligned.pct_change().reindex(index).fillna(0.0)
    returns.name = "benchmark"
    return returns


def periods_per_year(index: pd.DatetimeIndex) -> float:
    """Annualization of ``index`` (252 for daily bars; 252 when it is too short to tell)."""
    return metrics.infer_periods_per_year(index) if len(index) >= 2 else metrics.TRADING_DAYS_PER_YEAR


# -- round trips --------------------------------------------------------------------------------
def round_trips(fills: pd.DataFrame, bars: Bars | None = None, *, orders: pd.DataFrame | None = None,
                decisions: pd.DataFrame | None = None, events: pd.DataFrame | None = None,
                conditions: pd.DataFrame | None = None) -> pd.DataFrame:
    """FIFO round trips of the fills, with their reasons and the conditions at entry.

    Parameters
    ----------
    fills : DataFrame
        ``execution_id, client_order_id, symbol, quantity, price, commission, slippage, impact,
        time`` in execution order (as stored).
    bars : Bars, optional
        The run's bars: open lots are marked at the last close (else the last fill price) and
        the volatility at entry is measured on them.
    orders, decisions, events : DataFrame, optional
        The run's tables, for the decision at entry and the reason of the exit.
    conditions : DataFrame, optional
        Market conditions by time (``regime``, ``vix``), read as of the entry decision.

    Returns
    -------
    DataFrame
        Columns :data:`ROUND_TRIP_COLUMNS`, sorted by entry then exit. ``trade_id`` is
        ``SYMBOL-N.K``: the K-th slice of the lot opened by the run's N-th fill; it never changes
        as more fills arrive (an open slice keeps its id when it closes).
    """
    fills = check_fills(fills)
    if fills.empty:
        return pd.DataFrame(columns=list(ROUND_TRIP_COLUMNS))
    symbols = tuple(dict.fromkeys(
        list(bars.symbols if bars is not None else ()) + list(fills["symbol"])))
    mark_time, marks = _marks(fills, bars, symbols)
    trips = _match(fills, symbols, marks, mark_time)
    trips = _with_costs(trips, fills)
    return _with_context(trips, fills, bars, orders, decisions, events, conditions)


def record_trips(record: PaperRecord) -> pd.DataFrame:
    """:func:`round_trips` of a record, with every table it can use."""
    return round_trips(record.fills, record.bars, orders=record.orders,
                       decisions=record.decisions, events=record.events,
                       conditions=record.conditions)


def check_fills(fills: pd.DataFrame) -> pd.DataFrame:
    need = ("execution_id", "client_order_id", "symbol", "quantity", "price", "commission",
            "slippage", "impact", "time")
    missing = [c for c in need if c not in fills.columns]
    if missing:
        raise DataError(f"fills lacks columns {missing}; expected {list(need)} (the store's fills "
                        "table, e.g. from live.record.load_record).")
    out = fills.reset_index(drop=True).copy()
    out["time"] = pd.to_datetime(out["time"], utc=True, format="ISO8601")
    return out


def _marks(fills: pd.DataFrame, bars: Bars | None, symbols: tuple[str, ...]):
    """Mark time and last known price per symbol (last close, else last fill price)."""
    last_fill = fills.groupby("symbol", sort=False)["price"].last()
    marks = np.array([float(last_fill.get(s, np.nan)) for s in symbols])
    mark_time = fills["time"].iloc[-1]
    if bars is not None and bars.n_bars:
        close = bars.frame("close").ffill()
        mark_time = max(mark_time, bars.index[-1])
        for j, s in enumerate(symbols):
            if s in close.columns and np.isfinite(close[s].iloc[-1]):
                marks[j] = float(close[s].iloc[-1])
    return mark_time, marks


def _match(fills: pd.DataFrame, symbols: tuple[str, ...], marks: np.ndarray, mark_time) -> pd.DataFrame:
    """The engine's FIFO matcher with every fill as its own "bar" (so each slice knows its fills)."""
    f = len(fills)
    fills_int = np.zeros((f, engine_layout.N_FILL_INT), np.int64)
    fills_int[:, engine_layout.F_BAR] = np.arange(f)
    fills_int[:, engine_layout.F_ASSET] = [symbols.index(s) for s in fills["symbol"]]
    fills_float = np.zeros((f, 5))
    fills_float[:, engine_layout.F_QTY] = fills["quantity"].to_numpy(np.float64)
    fills_float[:, engine_layout.F_PRICE] = fills["price"].to_numpy(np.float64)
    fills_float[:, engine_layout.F_COMMISSION] = fills["commission"].to_numpy(np.float64)
    index = pd.DatetimeIndex(list(fills["time"]) + [mark_time])
    trips = trades_frame(fills_int, fills_float, marks, index, symbols)
    trips["symbol"] = trips["symbol"].astype(str)
    trips["side"] = trips["side"].astype(str)
    return trips


def _with_costs(trips: pd.DataFrame, fills: pd.DataFrame) -> pd.DataFrame:
    """Ids, both legs' costs pro rata per share, returns and holding days."""
    qty = fills["quantity"].abs().to_numpy(np.float64)
    commission = fills["commission"].to_numpy(np.float64)
    friction = (fills["slippage"] + fills["impact"]).to_numpy(np.float64)
    entry, exit_, is_open = trips["entry_bar"].to_numpy(), trips["exit_bar"].to_numpy(), trips["is_open"].to_numpy()
    take = trips["qty"].to_numpy(np.float64)
    exit_safe = np.where(is_open, 0, exit_)
    share_in = take / qty[entry]
    share_out = np.where(is_open, 0.0, take / np.where(is_open, 1.0, qty[exit_safe]))
    out = pd.DataFrame({
        "symbol": trips["symbol"], "side": trips["side"], "qty": take,
        "entry_time": trips["entry_time"], "exit_time": trips["exit_time"],
        "entry_price": trips["entry_price"], "exit_price": trips["exit_price"],
        "pnl": trips["pnl"],
        "commission": share_in * commission[entry] + share_out * commission[exit_safe],
        "slippage": share_in * friction[entry] + share_out * friction[exit_safe],
        "open": is_open.astype(bool),
    })
    out["costs"] = out["commission"] + out["slippage"]
    value = out["entry_price"] * out["qty"]
    out["return"] = np.where(value > 0, out["pnl"] / value.where(value > 0, 1.0), np.nan)
    out["entry_fill"] = fills["execution_id"].to_numpy()[entry]
    out["exit_fill"] = np.where(is_open, None, fills["execution_id"].to_numpy()[exit_safe])
    out["_entry_row"], out["_exit_row"] = entry, np.where(is_open, -1, exit_)
    out["trade_id"] = _trade_ids(out["symbol"].to_numpy(), entry)
    return out


def _trade_ids(symbols: np.ndarray, entry_rows: np.ndarray) -> list[str]:
    """``SYMBOL-N.K``: the K-th slice (in exit order) of the lot opened by fill N (1-based)."""
    seen: dict[int, int] = {}
    out = []
    for symbol, row in zip(symbols, entry_rows, strict=True):
        seen[int(row)] = seen.get(int(row), 0) + 1
        out.append(f"{symbol}-{int(row) + 1}.{seen[int(row)]}")
    return out


def _with_context(trips, fills, bars, orders, decisions, events, conditions) -> pd.DataFrame:
    """Holding days, decision at entry, exit reason and market conditions at entry."""
    end = fills["time"].iloc[-1]
    if bars is not None and bars.n_bars:
        end = max(end, bars.index[-1])  # open lots are held until the last bar
    until = trips["exit_time"].where(~trips["open"], end)
    trips["days_held"] = (pd.to_datetime(until, utc=True) - trips["entry_time"]) / pd.Timedelta(days=1)
    order_info = _order_info(orders, events)
    decision_of = _decision_lookup(decisions)
    entry_cids = fills["client_order_id"].to_numpy()[trips["_entry_row"].to_numpy()]
    exit_rows = trips["_exit_row"].to_numpy()
    reasons, entry_reason, targets, features, predictions, decided = [], [], [], [], [], []
    for k, cid in enumerate(entry_cids):
        info = order_info.get(cid, {})
        bar_time = info.get("bar_time")
        decision = decision_of.get((bar_time, trips["symbol"].iat[k])) if bar_time is not None else None
        entry_reason.append(_reason_text(decision, info.get("rules", ()), cid))
        targets.append(None if decision is None else decision.get("target"))
        feats = _features(decision)
        features.append(json.dumps(feats) if feats else "")
        predictions.append(_prediction(feats))
        decided.append(bar_time if bar_time is not None else trips["entry_time"].iat[k])
        if exit_rows[k] < 0:
            reasons.append("open")
        else:
            exit_cid = fills["client_order_id"].iat[exit_rows[k]]
            reasons.append(_exit_reason(exit_cid, order_info.get(exit_cid, {})))
    trips["exit_reason"], trips["entry_reason"] = reasons, entry_reason
    trips["entry_target"], trips["entry_features"], trips["prediction"] = targets, features, predictions
    decided_at = pd.DatetimeIndex(pd.to_datetime(decided, utc=True))
    trips["entry_volatility"] = _volatility_at(bars, trips["symbol"], decided_at)
    for column in ("regime", "vix"):
        trips[f"entry_{column}"] = _as_of(conditions, column, decided_at)
    # open slices (exit row -1) sort after the closed slices of their lot
    exit_key = trips["_exit_row"].where(trips["_exit_row"] >= 0, np.iinfo(np.int64).max)
    ordered = trips.assign(_exit_key=exit_key).sort_values(["_entry_row", "_exit_key"], kind="stable")
    return ordered[list(ROUND_TRIP_COLUMNS)].reset_index(drop=True)


def _order_info(orders: pd.DataFrame | None, events: pd.DataFrame | None) -> dict[str, dict]:
    """Per client order id: the bar it was decided on and the risk rules that acted on it.

    Risk events are written just before the orders of their bar; an event belongs to the first
    order of its symbol created after it (and after the previous bar's orders)."""
    if orders is None or orders.empty:
        return {}
    stops = is_stop_order(orders).to_numpy()
    out = {str(o["client_order_id"]): {
        "bar_time": o["bar_time"], "rules": [],
        "stop_price": _finite(o.get("stop_price")) if stop else None}
        for o, stop in zip(orders.to_dict("records"), stops, strict=True)}
    if events is None or events.empty or "created_at" not in orders.columns:
        return out
    risk = events[events["kind"].astype(str).str.startswith("risk:")]
    batches = orders.sort_values("created_at").groupby("bar_time", sort=False)["created_at"].min()
    previous = batches.sort_values().shift(1)
    for o in orders.to_dict("records"):
        low = previous.get(o["bar_time"])
        mine = risk[(risk["time"] <= o["created_at"])
                    & (risk["message"].astype(str).str.startswith(f"{o['symbol']}:"))]
        if low is not None and not pd.isna(low):
            mine = mine[mine["time"] > low]
        out[str(o["client_order_id"])]["rules"] = [k.split(":", 1)[1] for k in mine["kind"]]
    return out


def is_stop_order(orders: pd.DataFrame) -> pd.Series:
    """Protective stop orders (a ``stop_price``, or a ``:stop`` client id), as opposed to the
    orders of a decision."""
    stop = orders["client_order_id"].astype(str).str.endswith(":stop")
    if "stop_price" in orders.columns:
        stop |= pd.to_numeric(orders["stop_price"], errors="coerce").notna()
    return stop


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _decision_lookup(decisions: pd.DataFrame | None) -> dict:
    if decisions is None or decisions.empty:
        return {}
    return {(r["bar_time"], r["symbol"]): r for r in decisions.to_dict("records")}


def _features(decision: Mapping | None) -> dict:
    if decision is None or not decision.get("features"):
        return {}
    try:
        value = json.loads(decision["features"])
    except (TypeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _prediction(features: Mapping[str, Any]) -> float | None:
    """A learned strategy's model output, when its features name one."""
    for name, value in features.items():
        if any(word in name.lower() for word in ("predict", "proba", "score")):
            return value if isinstance(value, int | float) else None
    return None


def _reason_text(decision: Mapping | None, rules, cid: str) -> str:
    if cid.startswith(_FLATTEN_PREFIX):
        return "fw halt --flatten"
    if decision is None:
        return "unknown (no decision recorded)"
    target, pending = decision.get("target"), decision.get("pending")
    text = f"strategy target {_fmt(target)}"
    if pending is not None and not _same(pending, target):
        text += f", traded to {_fmt(pending)}"
    if rules:
        text += " (risk: " + ", ".join(dict.fromkeys(rules)) + ")"
    return text


def _exit_reason(cid: str, info: Mapping) -> str:
    if cid.startswith(_FLATTEN_PREFIX):
        return "fw halt --flatten"
    if info.get("stop_price") is not None:
        return f"risk: stop order at {info['stop_price']:.4g}"
    rules = [r for r in info.get("rules", ()) if r]
    return "risk: " + ", ".join(dict.fromkeys(rules)) if rules else "signal"


def _fmt(value) -> str:
    return "none" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return bool(np.isclose(float(a), float(b), rtol=0, atol=1e-12))


def _volatility_at(bars: Bars | None, symbols: pd.Series, times: pd.DatetimeIndex) -> list:
    """Annualized 20-bar close-to-close volatility of the symbol as of each time."""
    if bars is None or not bars.n_bars:
        return [None] * len(times)
    close = bars.frame("close")
    vol = np.log(close).diff().rolling(_VOLATILITY_WINDOW).std() * math.sqrt(periods_per_year(bars.index))
    rows = bars.index.searchsorted(times, side="right") - 1
    out = []
    for symbol, row in zip(symbols, rows, strict=True):
        value = vol[symbol].iat[row] if row >= 0 and symbol in vol.columns else np.nan
        out.append(None if not np.isfinite(value) else float(value))
    return out


def _as_of(conditions: pd.DataFrame | None, column: str, times: pd.DatetimeIndex) -> list:
    if conditions is None or column not in conditions.columns or conditions.empty:
        return [None] * len(times)
    series = conditions[column].sort_index()
    rows = series.index.searchsorted(times, side="right") - 1
    return [None if r < 0 or pd.isna(series.iat[r]) else series.iat[r] for r in rows]
