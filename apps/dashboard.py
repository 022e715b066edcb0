"""The ``fw dashboard`` Streamlit app: a read-only monitor of one paper run in the live store.

Run it with ``streamlit run apps/dashboard.py -- --db URL --run-id ID`` (what ``fw dashboard``
and :func:`apps.launch.launch` do). Tabs: Portfolio, Performance, Regime, Transaction Costs and
System Health.

Every number comes from :mod:`framework.paper_record` (:func:`paper_metrics`,
:func:`record_trips`, ...) and the report's own sections, formatted with the report's helpers,
so the dashboard shows the same value as ``fw report``, ``fw journal`` and ``fw readiness``.
Each tab is first built as plain data (a :class:`Panel`, testable without Streamlit) and then
drawn by one renderer; Streamlit is imported only when the page is drawn.

The app never writes run data. Opening the store runs its schema check and ``live.record``
creates its (empty) notes table on first read; a missing SQLite file is refused rather than
created.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from framework import metrics
from framework.errors import ConfigError, DataError, FwError, StrategyError
from framework.paper_metrics import (
    exposure_series,
    monthly_returns,
    paper_metrics,
    positions_over_time,
    uptime_detail,
)
from framework.paper_record import (
    PaperRecord,
    benchmark_returns,
    equity_returns,
    periods_per_year,
    record_trips,
)
from reports.paper_report import (
    Section,
    interval,
    money,
    num,
    pct,
    report_sections,
    trade_stat,
)
from reports.plots import naive_utc

TABS: tuple[str, ...] = ("Portfolio", "Performance", "Regime", "Transaction Costs", "System Health")
ROLLING_WINDOW = 63  # bars: about one quarter of daily bars
_NEW_YORK = "America/New_York"
_PERIOD_CODES = {"daily": "D", "weekly": "W-SUN", "monthly": "M", "quarterly": "Q"}
_COST_PERIODS = {"day": "D", "week": "W-SUN", "month": "M"}
_COST_KINDS = ("commission", "slippage", "impact")
_RECENT_ROWS = 15
# backslash-escaping ASCII punctuation is always literal in CommonMark; "$" would start LaTeX
_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|$~<>")


# -- what to show -----------------------------------------------------------------------------
@dataclass(frozen=True)
class DashboardSpec:
    """What the dashboard reads.

    Parameters
    ----------
    db : str, optional
        SQLAlchemy URL of the state store (None: ``FW_DB_URL``, else FW_HOME/state/fw.sqlite).
    run_id : str, optional
        The paper run (None: the latest run of the store).
    data_dir : Path, optional
        Folder of CSV bars for the SPY benchmark and market conditions (as ``fw report``).
    rolling_window : int
        Bars in the rolling Sharpe ratio window.
    """

    db: str | None = None
    run_id: str | None = None
    data_dir: Path | None = None
    rolling_window: int = ROLLING_WINDOW

    def __post_init__(self) -> None:
        if not isinstance(self.rolling_window, int) or self.rolling_window < 2:
            raise ConfigError(f"rolling_window {self.rolling_window!r} is not an integer >= 2; "
                              f"give e.g. --rolling-window {ROLLING_WINDOW}.")


def parse_args(argv: Sequence[str]) -> DashboardSpec:
    """The app's own arguments (those after ``--`` on the ``streamlit run`` line).

    Raises
    ------
    ConfigError
        Unknown arguments or a bad value, with the accepted usage.
    """
    parser = argparse.ArgumentParser(prog="apps/dashboard.py", add_help=False, exit_on_error=False)
    parser.add_argument("--db", default=None)
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--rolling-window", type=int, default=ROLLING_WINDOW)
    usage = "[--db URL] [--run-id ID] [--data-dir DIR] [--rolling-window BARS]"
    try:
        known, unknown = parser.parse_known_args(list(argv))
    except argparse.ArgumentError as exc:
        raise ConfigError(f"dashboard arguments: {exc}; expected {usage}.") from exc
    if unknown:
        raise ConfigError(f"unknown dashboard arguments {unknown}; expected {usage}.")
    return DashboardSpec(db=known.db or None, run_id=known.run_id or None,
                         data_dir=known.data_dir, rolling_window=known.rolling_window)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One read of the store: the record and everything derived from it once."""

    record: PaperRecord
    metrics: dict
    trips: pd.DataFrame
    sections: dict[str, Section]
    loaded_at: pd.Timestamp


def check_database(url: str) -> None:
    """Refuse an SQLite URL whose file does not exist (opening it would create an empty store).

    Raises
    ------
    ConfigError
        Unparsable URL, or no file at the SQLite path.
    """
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"{url!r} is not a database URL ({exc}); expected e.g. "
                          "sqlite:///path/fw.sqlite (--db or FW_DB_URL).") from exc
    path = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and path not in ("", ":memory:") \
            and not path.startswith("file:") and not Path(path).is_file():
        raise ConfigError(f"no state database at {path} (from {url!r}); expected the file a "
                          "`fw paper` session wrote. Check --db or FW_DB_URL.")


def load_snapshot(spec: DashboardSpec, now: pd.Timestamp | None = None) -> Snapshot:
    """Read the run out of the store and compute its metrics, trips and report sections.

    Parameters
    ----------
    spec : DashboardSpec
    now : Timestamp, optional
        The wall-clock time of the read (default: now, UTC); "the last 24 hours" end here.

    Raises
    ------
    ConfigError
        Missing database file, no runs, or an unknown run id (with the known ones).
    """
    from live.record import latest_run_id, load_record
    from live.state import Store, default_url

    url = spec.db or default_url()
    check_database(url)
    store = Store(url)
    try:
        run_id = spec.run_id or latest_run_id(store)
        record = load_record(store, run_id, data_dir=spec.data_dir)
    finally:
        store.close()
    sections = {s.title: s for s in report_sections(record, None, None)}
    loaded = pd.Timestamp.now(tz="UTC") if now is None else now
    return Snapshot(record, paper_metrics(record), record_trips(record), sections, loaded)


# -- panels: plain data, one per tab ----------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A key number: shown as a Streamlit metric whose label the tests find."""

    label: str
    value: str
    help: str | None = None


@dataclass(frozen=True)
class Chart:
    """A chart: ``data`` indexed by naive UTC time (or labels), one column per series."""

    title: str
    data: pd.DataFrame
    kind: str = "line"  # "line", "area" or "bar"


@dataclass(frozen=True)
class Table:
    """A table; ``static`` tables are plain HTML (text on the page), others a scrollable grid."""

    title: str
    data: pd.DataFrame
    static: bool = False


@dataclass(frozen=True)
class Panel:
    """Everything one tab shows, in order: warnings, metrics, charts, tables, notes."""

    title: str
    metrics: tuple[Metric, ...] = ()
    charts: tuple[Chart, ...] = ()
    tables: tuple[Table, ...] = ()
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def build_panels(snapshot: Snapshot, spec: DashboardSpec, model: str) -> list[Panel]:
    """The five tabs (:data:`TABS`) of ``snapshot``; ``model`` is :func:`model_health`'s text."""
    return [portfolio_panel(snapshot), performance_panel(snapshot, spec.rolling_window),
            regime_panel(snapshot), costs_panel(snapshot), health_panel(snapshot, model)]


def _section(snapshot: Snapshot, title: str) -> Section:
    if title not in snapshot.sections:
        raise DataError(f"the report has no section {title!r}; expected one of "
                        f"{sorted(snapshot.sections)} (reports.paper_report.report_sections).")
    return snapshot.sections[title]


def _last(series: pd.Series) -> float:
    return float(series.iloc[-1]) if len(series) else math.nan


def portfolio_panel(snapshot: Snapshot) -> Panel:
    """Equity, cash, exposure, positions with weights, targets and drift, next rebalance."""
    record = snapshot.record
    section = _section(snapshot, "Portfolio status")
    rows = dict(section.rows)
    equity = _last(record.equity["equity"])
    exposure = exposure_series(record)
    held = positions_over_time(record)
    shares = held.iloc[-1] if len(held) else pd.Series(dtype=np.float64)
    when, why = next_rebalance(record)
    found = (
        Metric("equity", rows.get("equity", money(equity))),
        Metric("cash", rows.get("cash", "n/a")),
        Metric("P&L since start", money(equity - record.initial_cash),
               f"equity minus the initial cash of {money(record.initial_cash)}"),
        Metric("open positions", str(int((shares.abs() > 0).sum()))),
        Metric("gross exposure", pct(_last(exposure["gross"]))),
        Metric("net exposure", pct(_last(exposure["net"]))),
        Metric("next rebalance", when, why),
    )
    tables = ()
    if section.table is not None:
        tables = (Table("Positions: weight now vs the latest target weight",
                        section.table.set_index("symbol"), static=True),)
    close = record.bars.frame("close").ffill().reindex(held.index)
    value = (held * close).fillna(0.0)
    value.index = naive_utc(value.index)
    charts = (Chart("Exposure (fraction of equity)", _naive(exposure)),
              Chart("Position value by symbol ($)", value, "area"))
    notes = (f"next rebalance: {why}",
             "target = the latest accepted target weight (after the risk layer); drift = weight "
             "minus target.", *section.lines)
    return Panel("Portfolio", found, charts, tables, notes)


def next_rebalance(record: PaperRecord) -> tuple[str, str]:
    """When the risk layer next lets a target change trade: ``(short value, explanation)``.

    Derived from the run's rebalancing rule: a calendar trigger waits for the first session of
    the next period; a drift trigger for a weight to drift past its threshold; without a rule
    the portfolio follows every target change.
    """
    risk = (record.run.get("config") or {}).get("risk") or {}
    trigger = str(risk.get("rebalance_trigger", "none")) if risk.get("enabled", True) else "none"
    drift = f"a weight drifts more than {pct(risk.get('drift_threshold'), 1)} from its target"
    if not record.bars.n_bars:
        return "after the first bar", "the run has not processed a bar yet"
    if trigger in ("calendar", "combined") and record.bars.n_bars:
        frequency = str(risk.get("rebalance_frequency", "monthly"))
        day = next_period_session(record.bars.index[-1], frequency)
        when = str(day.date()) if day is not None else "beyond the exchange calendar"
        why = f"first session of the next {frequency} period ({trigger} trigger)"
        if trigger == "combined":
            why += f", or sooner when {drift}"
        return when, why + "; exits are never held back"
    if trigger == "drift":
        return "on drift", f"when {drift}; exits are never held back"
    return "on the next target change", "no rebalancing rule: every target change trades"


def next_period_session(last_bar: pd.Timestamp, frequency: str) -> pd.Timestamp | None:
    """The first XNYS session of the calendar period after the one holding ``last_bar``
    (New York dates), or None past the end of the calendar."""
    from framework.data.calendars import xnys_sessions
    from framework.data.frames import session_dates

    if frequency not in _PERIOD_CODES:
        raise ConfigError(f"rebalance frequency {frequency!r} is unknown; expected one of "
                          f"{', '.join(_PERIOD_CODES)}.")
    code = _PERIOD_CODES[frequency]
    today = session_dates(pd.DatetimeIndex([last_bar]))[0]
    sessions, _, _ = xnys_sessions()
    later = sessions[sessions > today]
    later = later[later.to_period(code) > today.to_period(code)]
    return later[0] if len(later) else None


def _naive(frame: pd.DataFrame | pd.Series) -> pd.DataFrame:
    out = frame.to_frame() if isinstance(frame, pd.Series) else frame.copy()
    out.index = naive_utc(out.index)
    return out


def performance_panel(snapshot: Snapshot, window: int = ROLLING_WINDOW) -> Panel:
    """Return, Sharpe, drawdown and trade statistics; P&L vs the benchmark; rolling Sharpe."""
    record, m = snapshot.record, snapshot.metrics
    returns = equity_returns(record)
    found = (
        Metric("cumulative return", pct(m["cumulative_return"])),
        Metric("benchmark return", pct(m["benchmark_return"]), m["benchmark_label"]),
        Metric("Sharpe", num(m["cumulative_sharpe"]), f"95% CI {interval(m['sharpe_ci'])}"),
        Metric("max drawdown", pct(m["cumulative_max_drawdown"])),
        Metric("win rate", pct(m["win_rate"]), trade_stat(m["win_rate"], m["win_rate_ci"], m, pct)),
        Metric("profit factor", num(m["profit_factor"]),
               trade_stat(m["profit_factor"], m["profit_factor_ci"], m)),
        Metric("closed trades", str(m["trades"]), f"{m['open_trades']} still open"),
        Metric("expectancy per trade", money(m["expectancy"])),
    )
    warnings = ()
    if m["too_few_trades"]:
        warnings = (f"Too few trades to be significant ({m['trades']} < {m['min_trades']}): "
                    "read win rate and profit factor with their 95% intervals (hover them).",)
    pnl = pd.DataFrame({"strategy": record.equity["equity"] - record.initial_cash})
    bench = benchmark_returns(record, returns.index)
    if bench is not None:
        pnl["benchmark"] = record.initial_cash * ((1.0 + bench).cumprod() - 1.0)
    ppy = periods_per_year(returns.index)
    charts = (Chart("Cumulative P&L ($): strategy vs benchmark", _naive(pnl)),
              Chart(f"Rolling Sharpe ({window} bars)", _naive(rolling_sharpe(returns, window, ppy))),
              Chart("Drawdown", _naive(metrics.drawdown_series(returns)), "area"))
    monthly = monthly_returns(returns).map(lambda v: pct(v) if np.isfinite(v) else "")
    monthly.index = [str(y) for y in monthly.index]
    tables = (Table("Monthly returns", monthly, static=True),)
    notes = (f"benchmark: {m['benchmark_label']}", f"annualization: {num(ppy, 0)} bars per year")
    return Panel("Performance", found, charts, tables, notes, warnings)


def rolling_sharpe(returns: pd.Series, window: int, ppy: float) -> pd.Series:
    """:func:`framework.metrics.sharpe` over each trailing ``window`` of returns (nan before)."""
    values = returns.rolling(window, min_periods=window).apply(
        lambda x: metrics.sharpe(x, ppy), raw=True)
    values.name = "rolling Sharpe"
    return values


def regime_panel(snapshot: Snapshot) -> Panel:
    """Current regime and its history, the portfolio method and the adjustments applied."""
    record = snapshot.record
    rows = dict(_section(snapshot, "Regime analysis").rows)
    labels = _regime_labels(record)
    live_events = _kind(record.events, lambda k: k == "regime")
    method = rows.get("portfolio method", "n/a")
    tables = (Table("Adjustments applied by the risk rules", risk_adjustments(record)),)
    notes = (f"portfolio method: {method}", _regime_overrides_text(record),
             f"live regime classification: {len(live_events)} regime change event(s) recorded"
             if len(live_events) else "live regime classification: off for this run (no regime "
             "events recorded)")
    if labels.empty:
        return _regime_without_labels(record, live_events, method, tables, notes)
    spans = regime_spans(labels)
    current = spans.iloc[-1]
    found = (
        Metric("current regime", rows.get("current regime", str(labels.iloc[-1]))),
        Metric("in this regime since", str(current["from"])),
        Metric("regime changes", rows.get("changes in the period", str(len(spans) - 1))),
        Metric("method", str(record.run.get("strategy", "?")), method),
    )
    share = labels.value_counts().rename("bars").to_frame()
    charts = [Chart("Bars per regime over the record", share, "bar")]
    if record.conditions is not None and "vix" in record.conditions.columns:
        vix = record.conditions["vix"].dropna()
        vix = vix[vix.index >= record.equity.index[0]] if len(record.equity) else vix
        charts.append(Chart("VIX", _naive(vix)))
    history = Table("Regime history", spans.iloc[::-1].reset_index(drop=True))
    source = f"regime labels: framework.regime rules on {getattr(record.benchmark, 'name', '?')} " \
             f"({record.benchmark_label})"
    return Panel("Regime", found, tuple(charts), (history, *tables), (source, *notes))


def _regime_without_labels(record: PaperRecord, live_events: pd.DataFrame, method: str,
                           tables: tuple[Table, ...], notes: tuple[str, ...]) -> Panel:
    """The Regime tab when no labels cover the run's bars: the live events, if any, say it."""
    strategy = Metric("method", str(record.run.get("strategy", "?")), method)
    if len(live_events):
        # the runner writes "SYMBOL at TIME: OLD -> NEW"
        latest = live_events.sort_values("time").iloc[-1]
        current = str(latest["message"]).rsplit("-> ", 1)[-1].strip()
        found = (Metric("current regime", current),
                 Metric("in this regime since", _minute(latest["market_time"])),
                 Metric("regime changes", str(len(live_events))), strategy)
        return Panel("Regime", found, (), tables, notes)
    warning = ("Regime data is not available for this run: no regime labels cover its bars "
               "(they come from the benchmark, SPY or the embedded S&P 500 index) and no regime "
               "events were recorded.",)
    return Panel("Regime", (Metric("current regime", "not available"), strategy), (), tables,
                 notes, warning)


def _regime_labels(record: PaperRecord) -> pd.Series:
    """Regime label per bar over the record's span (empty when not available)."""
    if record.conditions is None or "regime" not in record.conditions.columns \
            or record.equity.empty:
        return pd.Series(dtype=object)
    labels = record.conditions["regime"].dropna()
    return labels[(labels.index >= record.equity.index[0])
                  & (labels.index <= record.equity.index[-1])]


def regime_spans(labels: pd.Series) -> pd.DataFrame:
    """Consecutive runs of the same label: ``regime``, ``from``, ``to`` (NY dates), ``bars``."""
    change = (labels != labels.shift(1)).cumsum()
    days = [t.date() for t in labels.index.tz_convert(_NEW_YORK)]
    frame = pd.DataFrame({"regime": labels.to_numpy(), "day": days, "run": change.to_numpy()})
    spans = frame.groupby("run", sort=True).agg(regime=("regime", "first"), start=("day", "first"),
                                                end=("day", "last"), bars=("day", "size"))
    return spans.rename(columns={"start": "from", "end": "to"}).reset_index(drop=True)


def risk_adjustments(record: PaperRecord) -> pd.DataFrame:
    """Risk events per rule: how often the rule changed a target, when last, and an example."""
    risk = _kind(record.events, lambda k: k.startswith("risk:"))
    columns = ["rule", "times", "last", "latest message"]
    if risk.empty:
        return pd.DataFrame(columns=columns)
    risk = risk.sort_values("market_time")
    grouped = risk.groupby(risk["kind"].str.slice(5), sort=True)
    return pd.DataFrame({
        "rule": list(grouped.groups),
        "times": grouped.size().to_numpy(),
        "last": [str(t)[:16] for t in grouped["market_time"].last()],
        "latest message": grouped["message"].last().astype(str).to_numpy(),
    }, columns=columns)


def _kind(table: pd.DataFrame, keep) -> pd.DataFrame:
    if table.empty:
        return table
    return table[[bool(keep(str(k))) for k in table["kind"]]]


def _regime_overrides_text(record: PaperRecord) -> str:
    overrides = ((record.run.get("config") or {}).get("risk") or {}).get("regime_overrides") or {}
    if not overrides:
        return "regime overrides of the risk rules: none configured"
    return "regime overrides of the risk rules: " + "; ".join(
        f"label {label}: {values}" for label, values in dict(overrides).items())


def costs_panel(snapshot: Snapshot) -> Panel:
    """Costs in total, by kind, per fill and per trade, over time; turnover; slippage vs model."""
    m, trips, record = snapshot.metrics, snapshot.trips, snapshot.record
    costs = m["costs"]
    closed = trips[~trips["open"].astype(bool)] if len(trips) else trips
    per_trade = float(closed["costs"].mean()) if len(closed) else math.nan
    found = (
        Metric("total costs", money(costs["total"]),
               f"{pct(m['costs_pct_equity'], 3)} of mean equity"),
        Metric("costs % of equity", pct(m["costs_pct_equity"], 3)),
        Metric("commission", money(costs["commission"])),
        Metric("slippage", money(costs["slippage"])),
        Metric("market impact", money(costs["impact"])),
        Metric("fills", str(m["fills"])),
        Metric("cost per fill", money(costs["total"] / m["fills"] if m["fills"] else math.nan)),
        Metric("cost per closed trade", money(per_trade),
               "both legs' costs of each closed round trip, averaged"),
        Metric("turnover", _unit(m["turnover"], "x"), "traded value over mean equity"),
        Metric("slippage vs model", _unit(m["slippage_vs_model_bps"], " bps"),
               f"realized {num(m['slippage_bps'])} bps vs bar open; cost model "
               f"{num(m['model_slippage_bps'])} bps"),
    )
    monthly = costs_by_period(record.fills, "month")
    charts = (Chart("Costs per month by kind ($)", monthly[list(_COST_KINDS)], "bar"),
              Chart("Costs per week, by its Monday ($)",
                    costs_by_period(record.fills, "week")[["total"]], "bar"),
              Chart("Costs per day with fills ($)", costs_by_period(record.fills, "day")[["total"]],
                    "bar"))
    per_trip = pd.DataFrame({
        "trade": trips["trade_id"], "symbol": trips["symbol"],
        "entry": [str(t)[:10] for t in trips["entry_time"]],
        "exit": ["open" if o else str(t)[:10] for t, o in zip(trips["exit_time"], trips["open"],
                                                             strict=True)],
        "commission": trips["commission"], "slippage + impact": trips["slippage"],
        "costs": trips["costs"], "P&L": trips["pnl"],
    })
    tables = (Table("Costs per month ($)", monthly.round(2).reset_index()),
              Table("Costs per trade ($)", per_trip.round(2)))
    notes = ("slippage and impact are inside the fill prices; commissions are charged apart. "
             "Costs per trade split each fill's costs pro rata over the round trips it belongs to.",)
    return Panel("Transaction Costs", found, charts, tables, notes)


def _unit(value: float, unit: str) -> str:
    text = num(value)
    return text if text == "n/a" else text + unit


def costs_by_period(fills: pd.DataFrame, period: str) -> pd.DataFrame:
    """Commission, slippage, impact and their total per New York day, week or month.

    Parameters
    ----------
    fills : DataFrame
        The record's fills (``commission``, ``slippage``, ``impact``, ``time`` in UTC).
    period : {"day", "week", "month"}

    Returns
    -------
    DataFrame
        Indexed by the period's label (the day, the Monday of the week, or ``YYYY-MM``), periods
        without fills left out; the totals add up to the fills' total costs.
    """
    if period not in _COST_PERIODS:
        raise ConfigError(f"cost period {period!r} is unknown; expected one of "
                          f"{', '.join(_COST_PERIODS)}.")
    columns = [*_COST_KINDS, "total"]
    if fills.empty:
        return pd.DataFrame(columns=columns, dtype=np.float64)
    times = pd.DatetimeIndex(pd.to_datetime(fills["time"], utc=True))
    local = times.tz_convert(_NEW_YORK).tz_localize(None)
    spans = local.to_period(_COST_PERIODS[period])
    keys = spans.strftime("%Y-%m") if period == "month" else spans.start_time.strftime("%Y-%m-%d")
    frame = fills[list(_COST_KINDS)].astype(np.float64).groupby(np.asarray(keys), sort=True).sum()
    frame["total"] = frame[list(_COST_KINDS)].sum(axis=1)
    frame.index.name = period
    return frame[columns]


def health_panel(snapshot: Snapshot, model: str) -> Panel:
    """Uptime, last trade, errors in the last 24 hours, halts, breaker trips, model health."""
    m, record = snapshot.metrics, snapshot.record
    recent = errors_since(record.errors, snapshot.loaded_at - pd.Timedelta(hours=24))
    run = record.run
    found = (
        Metric("uptime", pct(m["uptime"], 1), uptime_detail(m)),
        Metric("sessions processed", f"{m['sessions_processed']} of {m['sessions_expected']}"),
        Metric("run status", str(run.get("status", "?")), f"kill switch {run.get('kill_switch')}"),
        Metric("kill switch", str(run.get("kill_switch", "?"))),
        Metric("last bar (UTC)", _minute(run.get("last_bar"), zone=False)),
        Metric("last successful trade (UTC)", "none yet" if record.fills.empty else
               _minute(pd.to_datetime(record.fills["time"], utc=True).max(), zone=False),
               last_trade(record.fills)),
        Metric("errors in the last 24 hours", str(len(recent)),
               f"wall clock, until {_minute(snapshot.loaded_at)}"),
        Metric("errors (whole run)", str(m["errors"])),
        Metric("halts", str(m["halts"])),
        Metric("breaker trips", str(m["breaker_trips"])),
        Metric("crashes", str(m["crashes"]), "restarts that followed no clean finish"),
        Metric("model health", model),
    )
    warnings = tuple(f"unresolved: {x}" for x in m["unresolved_failures"])
    tables = (Table("Recent events", _log_rows(_latest(record.events), ("kind", "message"))),
              Table("Recent errors", _log_rows(_latest(record.errors), ("message", "detail"))))
    notes = ("no unresolved failures",) if not warnings else ()
    return Panel("System Health", found, (), tables, notes, warnings)


def errors_since(errors: pd.DataFrame, since: pd.Timestamp) -> pd.DataFrame:
    """Errors written (wall clock) at or after ``since``."""
    if errors.empty:
        return errors
    return errors[pd.to_datetime(errors["time"], utc=True) >= since]


def _latest(table: pd.DataFrame) -> pd.DataFrame:
    """The newest rows first (by id: several rows can share a wall-clock time)."""
    order = "id" if "id" in table.columns else "time"
    return table.sort_values(order, ascending=False).head(_RECENT_ROWS)


def last_trade(fills: pd.DataFrame) -> str:
    """The latest fill as ``YYYY-MM-DD HH:MM UTC SYMBOL buy|sell QTY @ PRICE`` (or "none yet")."""
    if fills.empty:
        return "none yet"
    times = pd.to_datetime(fills["time"], utc=True)
    row = fills.iloc[int(np.argmax(times.to_numpy()))]
    side = "buy" if float(row["quantity"]) > 0 else "sell"
    return (f"{_minute(times.max())} {row['symbol']} {side} {num(abs(float(row['quantity'])), 4)}"
            f" @ {num(float(row['price']))}")


def _minute(value, zone: bool = True) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M" + (" UTC" if zone else ""))


def _log_rows(table: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = pd.DataFrame({"time": [_minute(t) for t in table.get("time", [])],
                        "market time": [_minute(t) for t in table.get("market_time", [])]})
    for column in columns:
        out[column] = table[column].astype(str).to_numpy() if column in table else ""
    return out


def model_health(record: PaperRecord, trips: pd.DataFrame, learned: bool | None,
                 why: str = "") -> str:
    """One line on the run's learned model: "no learned model" for rule-based strategies.

    ``learned`` is whether the strategy has a ``fit`` step (None: the strategy could not be
    resolved, ``why`` says why).
    """
    name = str(record.run.get("strategy", "?"))
    if learned is None:
        return f"unknown ({why or f'strategy {name} not found'})"
    if not learned:
        return "no learned model"
    predictions = trips["prediction"].notna().sum() if "prediction" in trips else 0
    source = "walk-forward schedule" if (record.run.get("config") or {}).get("schedule") \
        else "latest fit"
    return f"learned model ({source}); predictions on {predictions} of {len(trips)} entries"


def strategy_is_learned(name: str) -> tuple[bool | None, str]:
    """Whether the registered strategy ``name`` has a ``fit`` step; (None, why) when unknown."""
    from framework.registry import resolve_strategy
    from strategies import REGISTRY  # lazy: apps are composition roots, like framework.cli

    try:
        strategy = resolve_strategy(name, REGISTRY)
    except StrategyError as exc:
        return None, str(exc).split(".")[0]
    return strategy.fit is not None, ""


# -- drawing ----------------------------------------------------------------------------------
def plain_markdown(text: str) -> str:
    """``text`` with Markdown (and "$" LaTeX) syntax escaped, to show as written."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))


def render_panel(st, panel: Panel, per_row: int = 4) -> None:
    """Draw one panel with Streamlit module ``st`` (inside its tab)."""
    for text in panel.warnings:
        st.warning(plain_markdown(text))
    for start in range(0, len(panel.metrics), per_row):
        columns = st.columns(per_row)
        for column, metric in zip(columns, panel.metrics[start:start + per_row], strict=False):
            column.metric(plain_markdown(metric.label), metric.value,
                          help=plain_markdown(metric.help) if metric.help else None)
    draw = {"line": st.line_chart, "area": st.area_chart, "bar": st.bar_chart}
    for chart in panel.charts:
        st.markdown(f"**{plain_markdown(chart.title)}**")
        if chart.data.dropna(how="all").empty:
            st.caption("nothing to plot yet")
        else:
            draw[chart.kind](chart.data)
    for table in panel.tables:
        st.markdown(f"**{plain_markdown(table.title)}**")
        if table.data.empty:
            st.caption("none")
        elif table.static:
            st.table(table.data)
        else:
            st.dataframe(table.data, hide_index=True)
    for note in panel.notes:
        st.caption(plain_markdown(note))


def main(argv: Sequence[str] | None = None) -> None:
    """The Streamlit page: a header, a reload button and the five tabs."""
    import streamlit as st

    st.set_page_config(page_title="fw dashboard", layout="wide")
    st.title("fw dashboard")
    try:
        spec = parse_args(sys.argv[1:] if argv is None else argv)
        snapshot = load_snapshot(spec)
        learned, why = strategy_is_learned(str(snapshot.record.run.get("strategy", "")))
        panels = build_panels(snapshot, spec, model_health(snapshot.record, snapshot.trips,
                                                           learned, why))
    except FwError as exc:
        st.error(plain_markdown(f"cannot show the dashboard: {exc}"))
        st.stop()
        return
    record = snapshot.record
    st.caption(plain_markdown(
        f"run {record.run_id} · strategy {record.run.get('strategy')} · broker "
        f"{(record.run.get('config') or {}).get('broker', '?')} · {len(record.equity)} bars to "
        f"{_minute(record.run.get('last_bar'))} · read-only view, loaded "
        f"{_minute(snapshot.loaded_at)}"))
    st.button("Reload from the store")  # a click reruns the script, which reads the store anew
    for tab, panel in zip(st.tabs([p.title for p in panels]), panels, strict=True):
        with tab:
            render_panel(st, panel)


if __name__ == "__main__":
    main()
