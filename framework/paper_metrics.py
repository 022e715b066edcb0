"""Paper-trading metrics: every number ``fw report``, ``fw journal``, ``fw readiness`` and
``fw dashboard`` show, computed once from a :class:`~framework.paper_record.PaperRecord` so the
same metric has the same value everywhere. Return- and trade-based figures come from
:mod:`framework.metrics`, as for backtests; statistics of few trades carry bootstrap confidence
intervals and a "too few trades" flag.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from framework import metrics
from framework.errors import DataError
from framework.paper_record import (
    PaperRecord,
    benchmark_returns,
    check_fills,
    equity_returns,
    is_stop_order,
    periods_per_year,
    record_trips,
)
from framework.types import Bars

#: Fewer closed trades than this and trade statistics are flagged as not significant.
MIN_TRADES = 30
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601
CONFIDENCE = 0.95

#: Risk events that are a circuit breaker tripping (not the per-bar "still blocked" events).
BREAKER_KINDS: tuple[str, ...] = ("risk:drawdown_breaker", "risk:losses_breaker",
                                  "risk:daily_loss_limit")
#: Events that halt trading until a person looks (``live.runner`` / ``live.command``).
HALT_KINDS: tuple[str, ...] = ("halt", "reconcile_mismatch", "order_lost", "stale_data",
                               "clock_drift")
_LIFECYCLE = ("start", "recover", "finish")


# -- metrics --------------------------------------------------------------------------------------
def paper_metrics(record: PaperRecord, start: object = None, end: object = None) -> dict[str, Any]:
    """Every number reports, the journal and the readiness check show, for one period.

    Parameters
    ----------
    record : PaperRecord
    start, end : date-like, optional
        The period (inclusive; a date without time for ``end`` keeps that whole day). Default:
        the whole record. Cumulative figures run from the record's first bar to ``end``.

    Returns
    -------
    dict
        Period: ``start``, ``end``, ``bars``, ``period_return``, ``sharpe``, ``max_drawdown``,
        ``benchmark_return``, ``trades`` (round trips closed in the period), ``open_trades``,
        ``win_rate``, ``profit_factor``, ``trade_pnl``, ``costs`` (by kind and ``total``),
        ``costs_pct_equity``, slippage (``slippage_bps`` realized vs the bar open,
        ``model_slippage_bps``, ``slippage_vs_model_bps``), ``rebalances``, ``breaker_trips``,
        ``halts``, ``errors``, ``crashes``, ``uptime`` (``sessions_processed`` /
        ``sessions_expected``). Cumulative: ``cumulative_return``, ``cumulative_sharpe``,
        ``cumulative_max_drawdown``, ``months``, ``losing_weeks_streak`` (latest complete weeks
        in a row that lost money), ``unresolved_failures`` (list of str). Trade statistics have
        bootstrap intervals ``*_ci`` (``CONFIDENCE``, fixed seed) and ``too_few_trades`` is True
        under :data:`MIN_TRADES` closed trades.
    """
    lo, hi = _bounds(record, start, end)
    returns = equity_returns(record)
    upto = returns[returns.index <= hi]
    period = upto[upto.index >= lo]
    ppy = periods_per_year(returns.index)
    trips = record_trips(record)
    closed = trips[~trips["open"].astype(bool)]
    exits = pd.to_datetime(closed["exit_time"], utc=True)
    in_period = closed[(exits >= lo) & (exits <= hi)]
    pnl = in_period["pnl"].to_numpy(np.float64)
    out: dict[str, Any] = {"run_id": record.run_id, "start": lo, "end": hi, "bars": len(period)}
    out.update(_return_metrics(period, upto, ppy))
    bench = benchmark_returns(record, period.index)
    out["benchmark_return"] = metrics.total_return(bench) if bench is not None and len(bench) else math.nan
    out["benchmark_label"] = record.benchmark_label
    out.update(_trade_metrics(pnl, period.to_numpy(np.float64), ppy))
    out["open_trades"] = int(trips["open"].astype(bool).sum())
    out.update(_cost_metrics(record, lo, hi, record.equity.loc[period.index, "equity"]))
    out.update(_health_metrics(record, lo, hi))
    out["losing_weeks_streak"] = losing_weeks_streak(upto)
    return out


def _bounds(record: PaperRecord, start: object, end: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    index = record.equity.index
    lo = _utc(start) if start is not None else (index[0] if len(index) else pd.Timestamp(0, tz="UTC"))
    if end is None:
        hi = index[-1] if len(index) else pd.Timestamp.now(tz="UTC")
    else:
        hi = _utc(end)
        if hi == hi.normalize():
            hi = hi + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")  # a date means its whole day
    if hi < lo:
        raise DataError(f"period end {hi} is before its start {lo}; expected start <= end.")
    return lo, hi


def _utc(value: object) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{value!r} is not a date or time; expected e.g. 2024-03-31.") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _return_metrics(period: pd.Series, upto: pd.Series, ppy: float) -> dict[str, Any]:
    empty = math.nan
    return {
        "period_return": metrics.total_return(period) if len(period) else empty,
        "sharpe": metrics.sharpe(period, ppy),
        "sharpe_ci": bootstrap_ci(period.to_numpy(np.float64), _sharpe_rows(ppy)),
        "max_drawdown": metrics.max_drawdown(period) if len(period) else empty,
        "cumulative_return": metrics.total_return(upto) if len(upto) else empty,
        "cumulative_sharpe": metrics.sharpe(upto, ppy),
        "cumulative_max_drawdown": metrics.max_drawdown(upto) if len(upto) else empty,
        "months": _months(upto.index),
        "periods_per_year": ppy,
    }


def _months(index: pd.DatetimeIndex) -> float:
    """Length of the record in months (30.44 days each)."""
    if len(index) < 2:
        return 0.0
    return float((index[-1] - index[0]) / pd.Timedelta(days=365.25 / 12))


def _trade_metrics(pnl: np.ndarray, returns: np.ndarray, ppy: float) -> dict[str, Any]:
    return {
        "trades": int(pnl.size),
        "trade_pnl": float(pnl.sum()),
        "win_rate": metrics.win_rate(pnl),
        "win_rate_ci": bootstrap_ci(pnl, _win_rate_rows),
        "profit_factor": metrics.profit_factor(pnl),
        "profit_factor_ci": bootstrap_ci(pnl, _profit_factor_rows),
        "expectancy": metrics.expectancy(pnl),
        "too_few_trades": bool(pnl.size < MIN_TRADES),
        "min_trades": MIN_TRADES,
    }


# -- bootstrap ------------------------------------------------------------------------------------
def bootstrap_ci(values: np.ndarray, statistic, n_resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` (rows of a 2-D array -> 1-D array).

    Resamples with replacement with a fixed seed, so the same record gives the same interval.
    ``(nan, nan)`` with fewer than two values. Undefined resamples (nan) are left out; the
    quantiles are order statistics (no interpolation), so an infinite profit factor is kept.
    """
    values = np.asarray(values, np.float64)
    if values.size < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    samples = values[rng.integers(0, values.size, size=(n_resamples, values.size))]
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = np.asarray(statistic(samples), np.float64)
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail], method="inverted_cdf")
    return (float(low), float(high))


def _win_rate_rows(samples: np.ndarray) -> np.ndarray:
    return (samples > 0.0).mean(axis=1)


def _profit_factor_rows(samples: np.ndarray) -> np.ndarray:
    gain = np.where(samples > 0.0, samples, 0.0).sum(axis=1)
    loss = -np.where(samples < 0.0, samples, 0.0).sum(axis=1)
    return np.where(loss > 0.0, gain / np.where(loss > 0.0, loss, 1.0),
                    np.where(gain > 0.0, np.inf, np.nan))


def _sharpe_rows(ppy: float):
    def rows(samples: np.ndarray) -> np.ndarray:
        std = samples.std(axis=1, ddof=1)
        constant = samples.max(axis=1) == samples.min(axis=1)
        return np.where(constant, np.nan, samples.mean(axis=1) / np.where(constant, 1.0, std)
                        * math.sqrt(ppy))

    return rows


# -- costs and slippage ---------------------------------------------------------------------------
def _cost_metrics(record: PaperRecord, lo, hi, equity: pd.Series) -> dict[str, Any]:
    fills = check_fills(record.fills) if not record.fills.empty else record.fills
    if not fills.empty:
        fills = fills[(fills["time"] >= lo) & (fills["time"] <= hi)]
    costs = {kind: float(fills[kind].sum()) if not fills.empty else 0.0
             for kind in ("commission", "slippage", "impact")}
    costs["total"] = sum(costs.values())
    mean_equity = float(equity.mean()) if len(equity) else math.nan
    realized, model, traded = slippage_table(fills, record.bars)
    orders = record.orders
    rebalances = 0
    if not orders.empty:
        decided = orders[~is_stop_order(orders)]
        decided = decided[(decided["bar_time"] >= lo) & (decided["bar_time"] <= hi)]
        rebalances = int(decided["bar_time"].nunique())
    return {
        "costs": costs,
        "costs_pct_equity": costs["total"] / mean_equity if mean_equity > 0 else math.nan,
        "fills": len(fills),
        "traded_value": traded,
        "turnover": traded / mean_equity if mean_equity > 0 else math.nan,
        "slippage_bps": realized,
        "model_slippage_bps": model,
        "slippage_vs_model_bps": realized - model,
        "rebalances": rebalances,
    }


def slippage_table(fills: pd.DataFrame, bars: Bars | None) -> tuple[float, float, float]:
    """Value-weighted slippage in bps against the open of the fill's bar, realized and modeled.

    Realized: ``(price - open) * quantity`` (paid when positive); modeled: the broker's
    ``slippage + impact`` of the same fills. Returns ``(realized_bps, model_bps, traded_value)``;
    nan when no fill can be placed on a bar.
    """
    if fills.empty or bars is None or not bars.n_bars:
        return (math.nan, math.nan, float((fills["quantity"].abs() * fills["price"]).sum())
                if not fills.empty else 0.0)
    times = pd.DatetimeIndex(pd.to_datetime(fills["time"], utc=True))
    rows = bars.index.searchsorted(times, side="left")  # the bar whose close is at/after the fill
    opens = bars.frame("open")
    ref = np.array([opens[s].iat[r] if r < bars.n_bars and s in opens.columns else np.nan
                    for s, r in zip(fills["symbol"], rows, strict=True)])
    qty = fills["quantity"].to_numpy(np.float64)
    ok = np.isfinite(ref) & (ref > 0)
    traded = float((np.abs(qty) * fills["price"].to_numpy(np.float64)).sum())
    base = float((np.abs(qty[ok]) * ref[ok]).sum())
    if not base > 0:
        return (math.nan, math.nan, traded)
    realized = float(((fills["price"].to_numpy(np.float64)[ok] - ref[ok]) * qty[ok]).sum())
    model = float((fills["slippage"] + fills["impact"]).to_numpy(np.float64)[ok].sum())
    return (realized / base * 1e4, model / base * 1e4, traded)


# -- system health --------------------------------------------------------------------------------
def _health_metrics(record: PaperRecord, lo, hi) -> dict[str, Any]:
    events = _in_window(record.events, lo, hi)
    errors = _in_window(record.errors, lo, hi)
    kinds = events["kind"].astype(str) if not events.empty else pd.Series(dtype=str)
    processed, expected = session_counts(record.equity.index, lo, hi)
    return {
        "breaker_trips": int(kinds.isin(BREAKER_KINDS).sum()),
        "halts": int(kinds.isin(HALT_KINDS).sum()),
        "errors": len(errors),
        "warnings": int(kinds.isin(("order_expired", "order_vanished", "foreign_fill")).sum()),
        "crashes": crash_count(record.events, lo, hi),
        "sessions_processed": processed,
        "sessions_expected": expected,
        **_uptime(record, lo, hi, processed / expected if expected else math.nan),
        "unresolved_failures": unresolved_failures(record),
    }


def _uptime(record: PaperRecord, lo, hi, coverage: float) -> dict[str, Any]:
    """Uptime of the period: healthy market-hours time of the runner's health spans over
    market-hours time (live runs), else the share of expected sessions processed (a replay has
    no wall-clock health to measure)."""
    from framework.uptime import market_uptime

    spans = record.spans
    if spans is None or spans.empty:
        return {"uptime": coverage, "uptime_basis": "sessions processed"}
    first = pd.to_datetime(spans["started_at"], utc=True, format="ISO8601").min()
    start = max(pd.Timestamp(lo), first)
    if not pd.Timestamp(hi) > start:
        return {"uptime": math.nan, "uptime_basis": "market hours"}
    measured = market_uptime(spans.to_dict("records"), start, pd.Timestamp(hi))
    return {"uptime": measured.ratio, "uptime_basis": "market hours",
            "uptime_hours": measured.healthy_seconds / 3600.0,
            "market_hours": measured.market_seconds / 3600.0,
            "longest_outage_hours": measured.longest_gap_seconds / 3600.0}


def uptime_detail(metrics: dict[str, Any]) -> str:
    """What the ``uptime`` figure of :func:`paper_metrics` measured, for people."""
    if metrics.get("uptime_basis") == "market hours":
        if "uptime_hours" not in metrics:
            return "no market hours of this period after the runner's first health span"
        return (f"runner healthy {metrics['uptime_hours']:.1f} of {metrics['market_hours']:.1f} "
                f"market hours; longest outage {metrics['longest_outage_hours']:.1f} h")
    return (f"{metrics['sessions_processed']} of {metrics['sessions_expected']} sessions "
            "processed")


def _in_window(table: pd.DataFrame, lo, hi) -> pd.DataFrame:
    if table.empty:
        return table
    column = "market_time" if "market_time" in table.columns else "time"
    when = pd.to_datetime(table[column], utc=True)
    return table[(when >= lo) & (when <= hi)]


def crash_count(events: pd.DataFrame, lo=None, hi=None) -> int:
    """Restarts that followed no clean end: a ``recover`` event whose previous lifecycle event
    (``start`` / ``recover`` / ``finish``) is not a ``finish``."""
    if events.empty:
        return 0
    life = events[events["kind"].isin(_LIFECYCLE)].sort_values("id" if "id" in events else "time")
    kinds = life["kind"].tolist()
    crashed = [i for i in range(1, len(kinds)) if kinds[i] == "recover" and kinds[i - 1] != "finish"]
    if lo is None and hi is None:
        return len(crashed)
    window = _in_window(life.iloc[crashed], lo, hi) if crashed else life.iloc[[]]
    return len(window)


def unresolved_failures(record: PaperRecord) -> list[str]:
    """What still needs a person: a halted kill switch, lost or unsent orders."""
    out = []
    if str(record.run.get("kill_switch", "ACTIVE")) == "HALTED":
        out.append("kill switch HALTED (see fw status; fw resume when resolved)")
    if not record.orders.empty:
        lost = record.orders[record.orders["status"] == "lost"]
        if len(lost):
            out.append(f"{len(lost)} order(s) lost by the broker: "
                       + ", ".join(lost["client_order_id"].astype(str).head(3)))
    return out


def session_counts(index: pd.DatetimeIndex, lo, hi) -> tuple[int, int]:
    """(XNYS sessions with a processed bar, XNYS sessions expected) within the record's span
    clipped to ``[lo, hi]``; bars outside the calendar do not count."""
    if len(index) == 0:
        return (0, 0)
    from framework.data.calendars import xnys_sessions
    from framework.data.frames import session_dates

    # the period's bounds are calendar dates; a bar's session is its New York date
    first = max(_naive_day(lo), session_dates(index[:1])[0])
    last = min(_naive_day(hi), session_dates(index[-1:])[0])
    if last < first:
        return (0, 0)
    sessions, _, _ = xnys_sessions()
    expected = sessions[(sessions >= first) & (sessions <= last)]
    done = pd.DatetimeIndex(session_dates(index)).unique()
    return (int(done.isin(expected).sum()), len(expected))


def _naive_day(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.tz_convert("UTC").tz_localize(None).normalize()


def losing_weeks_streak(returns: pd.Series) -> int:
    """Latest complete calendar weeks (Monday-Sunday, New York) in a row that lost money.

    The week in progress (the one holding the last bar, unless that bar is a Friday or later)
    does not count."""
    if returns.empty:
        return 0
    local = returns.copy()
    # naive New York time: weeks are calendar weeks there (and to_period wants no tz)
    local.index = local.index.tz_convert("America/New_York").tz_localize(None)
    weekly = (1.0 + local).groupby(local.index.to_period("W-SUN")).prod() - 1.0
    if local.index[-1].weekday() < 4:
        weekly = weekly.iloc[:-1]  # the last week has not had its Friday yet
    streak = 0
    for value in weekly.iloc[::-1]:
        if value < 0.0:
            streak += 1
        else:
            break
    return streak


def market_times(table: pd.DataFrame, orders: pd.DataFrame, replay: bool) -> pd.Series:
    """The market time of each event/error row: its wall time for a live run; for a replay
    (wall time far from the bars) the bar of the latest order written at or before it."""
    if table.empty:
        return pd.Series([], dtype="datetime64[ns, UTC]")
    wall = pd.to_datetime(table["time"], utc=True)
    if not replay or orders.empty or "created_at" not in orders.columns:
        return wall
    made = orders.sort_values("created_at")
    created = pd.DatetimeIndex(made["created_at"])
    rows = created.searchsorted(pd.DatetimeIndex(wall), side="right") - 1
    bar_times = made["bar_time"].to_numpy()
    first = made["bar_time"].min()
    return pd.Series([bar_times[r] if r >= 0 else first for r in rows], index=table.index,
                     dtype="datetime64[ns, UTC]")


# -- positions over time ------------------------------------------------------------------------
def positions_over_time(record: PaperRecord) -> pd.DataFrame:
    """Shares held per symbol after each bar (fills up to the bar's close time)."""
    index = record.bars.index
    symbols = list(record.bars.symbols)
    out = pd.DataFrame(0.0, index=index, columns=symbols)
    if record.fills.empty or not len(index):
        return out
    fills = check_fills(record.fills)
    rows = index.searchsorted(pd.DatetimeIndex(fills["time"]), side="left")
    for symbol, row, qty in zip(fills["symbol"], rows, fills["quantity"], strict=True):
        if row < len(index) and symbol in out.columns:
            out.iloc[row, out.columns.get_loc(symbol)] += float(qty)
    return out.cumsum()


def exposure_series(record: PaperRecord) -> pd.DataFrame:
    """Gross and net exposure (position value over equity) at each equity snapshot."""
    held = positions_over_time(record)
    close = record.bars.frame("close").ffill().reindex(held.index)
    value = (held * close).fillna(0.0)
    equity = record.equity["equity"].reindex(held.index)
    frame = pd.DataFrame({"gross": value.abs().sum(axis=1) / equity,
                          "net": value.sum(axis=1) / equity})
    return frame.loc[frame.index.isin(record.equity.index)]


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded returns per calendar month (New York), years as rows and 1..12 as columns."""
    if returns.empty:
        return pd.DataFrame(columns=range(1, 13), dtype=np.float64)
    local = returns.copy()
    local.index = local.index.tz_convert("America/New_York").tz_localize(None)
    grouped = (1.0 + local).groupby([local.index.year, local.index.month]).prod() - 1.0
    table = grouped.unstack(level=1).reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table
