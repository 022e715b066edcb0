"""Weekly / monthly (or any period's) paper-trading report: HTML, a Markdown twin, PNG plots.

Every number comes from :func:`framework.paper_metrics.paper_metrics` and
:func:`framework.paper_record.record_trips`; this module only lays them out. The HTML page and
the Markdown file are rendered from the same list of sections, so they show the same figures
with the same formatting. The quantstats tear sheet of the period's returns against the
benchmark is written beside them (``tearsheet.html``) and embedded in the page.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from framework.errors import ConfigError, DataError
from framework.paper_metrics import (
    exposure_series,
    monthly_returns,
    paper_metrics,
    positions_over_time,
    uptime_detail,
)
from framework.paper_record import PaperRecord, benchmark_returns, equity_returns, record_trips
from reports.plots import PNG_DPI, naive_utc, new_figure, quiet_plotting

PERIODS: tuple[str, ...] = ("weekly", "monthly")
PLOTS: tuple[str, ...] = ("equity", "drawdown", "monthly_returns", "exposure", "costs")
_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:24px auto;color:#333}"
        "table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;"
        "padding:4px 8px;font-size:13px}th{background:#f4f8fb;text-align:left}"
        "h2{border-bottom:2px solid #09c;padding-bottom:4px;margin-top:32px}"
        "img{max-width:100%}.note{color:#666;font-size:13px}")


@dataclass(frozen=True)
class Section:
    """One part of the report: label/value rows, an optional table and free lines."""

    title: str
    rows: tuple[tuple[str, str], ...] = ()
    table: pd.DataFrame | None = None
    lines: tuple[str, ...] = field(default_factory=tuple)


# -- periods ------------------------------------------------------------------------------------
def period_bounds(period: str, today: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last complete week or month before ``today``, as inclusive UTC bounds.

    A week runs Monday to Sunday; it is complete once its Friday session is over, so on a
    Saturday or Sunday the current week is reported, on other days the previous one. A month is
    complete once ``today`` is in the next month.

    Parameters
    ----------
    period : {"weekly", "monthly"}
    today : date-like
        The day the report is made (its time of day is ignored).

    Returns
    -------
    (start, end) : Timestamps, UTC; ``start`` at 00:00, ``end`` the last nanosecond of the
    period's last day.
    """
    day = pd.Timestamp(today)
    day = (day.tz_convert("UTC").tz_localize(None) if day.tzinfo else day).normalize()
    if period == "weekly":
        monday = day - pd.Timedelta(days=day.weekday())
        start = monday if day.weekday() >= 5 else monday - pd.Timedelta(days=7)
        stop = start + pd.Timedelta(days=7)
    elif period == "monthly":
        stop = day.replace(day=1)
        start = (stop - pd.Timedelta(days=1)).replace(day=1)
    else:
        raise ConfigError(f"unknown period {period!r}; expected one of {', '.join(PERIODS)} "
                          "(or give --start and --end).")
    return start.tz_localize("UTC"), (stop - pd.Timedelta(1, "ns")).tz_localize("UTC")


# -- formatting (shared by HTML and Markdown) ---------------------------------------------------
def pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None or not _finite(value) else f"{value:.{digits}%}"


def num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return "inf" if math.isinf(value) else f"{value:,.{digits}f}"


def money(value: float | None) -> str:
    return "n/a" if value is None or not _finite(value) else f"${value:,.2f}"


def interval(ci: tuple[float, float], fmt=num) -> str:
    return "n/a" if not all(_finite(x) or (isinstance(x, float) and math.isinf(x)) for x in ci) \
        else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def trade_stat(value: float, ci: tuple[float, float], m: dict, fmt=num) -> str:
    """A trade statistic with its bootstrap interval, flagged when there are too few trades."""
    text = f"{fmt(value)} (95% CI {interval(ci, fmt)})"
    if m["too_few_trades"]:
        text += f"; too few trades to be significant ({m['trades']} < {m['min_trades']})"
    return text


# -- sections -----------------------------------------------------------------------------------
def report_sections(record: PaperRecord, start: object, end: object) -> list[Section]:
    """The report's sections for ``[start, end]`` (what both the HTML and Markdown show)."""
    return _sections(record, paper_metrics(record, start, end), record_trips(record))


def _sections(record: PaperRecord, m: dict, trips: pd.DataFrame) -> list[Section]:
    return [
        _summary(record, m), _regime(record, m), _portfolio(record, m, trips),
        _activity(m, trips), _health(m), _notes(record, m, trips),
    ]


def _summary(record: PaperRecord, m: dict) -> Section:
    rows = (
        ("period", f"{m['start'].date()} to {m['end'].date()} ({m['bars']} bars)"),
        ("period return", pct(m["period_return"])),
        ("benchmark return", f"{pct(m['benchmark_return'])} ({m['benchmark_label']})"),
        ("cumulative return", pct(m["cumulative_return"])),
        ("Sharpe", f"{num(m['sharpe'])} (95% CI {interval(m['sharpe_ci'])})"),
        ("max drawdown", pct(m["max_drawdown"])),
        ("cumulative max drawdown", pct(m["cumulative_max_drawdown"])),
        ("win rate", trade_stat(m["win_rate"], m["win_rate_ci"], m, pct)),
        ("profit factor", trade_stat(m["profit_factor"], m["profit_factor_ci"], m)),
        ("closed trades", str(m["trades"])),
    )
    return Section("Summary", rows, lines=(f"run {record.run_id}, strategy {record.run.get('strategy')}",))


def _regime(record: PaperRecord, m: dict) -> Section:
    config = record.run.get("config") or {}
    method = f"strategy targets of {record.run.get('strategy')} " + json.dumps(
        config.get("params") or {"schedule": "walk-forward"}, default=str)
    labels = None
    if record.conditions is not None and "regime" in record.conditions.columns:
        labels = record.conditions["regime"].dropna()
        labels = labels[labels.index <= m["end"]]
    if labels is None or labels.empty:
        return Section("Regime analysis", (("portfolio method", method),),
                       lines=("No regime labels or regime events exist for this run.",))
    before = labels.shift(1)
    changes = labels[(labels != before) & before.notna() & (labels.index >= m["start"])]
    table = pd.DataFrame({"date": [str(t.date()) for t in changes.index], "regime": list(changes)})
    rows = (("current regime", str(labels.iloc[-1])), ("changes in the period", str(len(changes))),
            ("portfolio method", method))
    return Section("Regime analysis", rows, table if len(table) else None)


def _portfolio(record: PaperRecord, m: dict, trips: pd.DataFrame) -> Section:
    equity = record.equity[record.equity.index <= m["end"]]
    if equity.empty:
        return Section("Portfolio status", lines=("No equity snapshot up to the period's end.",))
    held = positions_over_time(record)
    held = held[held.index <= m["end"]]
    close = record.bars.frame("close").ffill()
    last_equity, cash = float(equity["equity"].iloc[-1]), float(equity["cash"].iloc[-1])
    targets = _targets(record, m["end"])
    rows = []
    for symbol in record.bars.symbols:
        qty = float(held[symbol].iloc[-1]) if len(held) else 0.0
        price = float(close[symbol][close.index <= m["end"]].iloc[-1]) if len(held) else math.nan
        weight = qty * price / last_equity if last_equity else math.nan
        target = targets.get(symbol)
        rows.append({"symbol": symbol, "shares": num(qty, 4), "price": money(price),
                     "value": money(qty * price), "weight": pct(weight),
                     "target": pct(target), "drift": pct(weight - target if target is not None else None)})
    entered = trips[(trips["entry_time"] >= m["start"]) & (trips["entry_time"] <= m["end"])]
    size = (entered["entry_price"] * entered["qty"]).mean() if len(entered) else math.nan
    summary = (("equity", money(last_equity)), ("cash", money(cash)),
               ("average position size (entries in the period)",
                f"{money(size)} ({pct(size / last_equity if last_equity else math.nan)} of equity)"))
    return Section("Portfolio status", summary, pd.DataFrame(rows))


def _targets(record: PaperRecord, end) -> dict[str, float]:
    """Latest accepted target weight per symbol (what the runner traded toward)."""
    decisions = record.decisions
    if decisions.empty:
        return {}
    decisions = decisions[decisions["bar_time"] <= end]
    out = {}
    for symbol, rows in decisions.groupby("symbol"):
        accepted = rows["pending"].dropna()
        chosen = accepted if len(accepted) else rows["target"].dropna()
        if len(chosen):
            out[str(symbol)] = float(chosen.iloc[-1])
    return out


def _activity(m: dict, trips: pd.DataFrame) -> Section:
    costs = m["costs"]
    rows = (
        ("closed trades", str(m["trades"])), ("open trades", str(m["open_trades"])),
        ("rebalances (bars with orders)", str(m["rebalances"])), ("fills", str(m["fills"])),
        ("P&L of closed trades (after costs)", money(m["trade_pnl"])),
        ("transaction costs", f"{money(costs['total'])} ({pct(m['costs_pct_equity'], 3)} of equity)"),
        ("  commission / slippage / impact",
         f"{money(costs['commission'])} / {money(costs['slippage'])} / {money(costs['impact'])}"),
        ("average slippage vs bar open", f"{num(m['slippage_bps'])} bps"),
        ("cost model slippage", f"{num(m['model_slippage_bps'])} bps"),
        ("slippage vs model", f"{num(m['slippage_vs_model_bps'])} bps"),
    )
    closed = trips[~trips["open"].astype(bool)]
    closed = closed[(closed["exit_time"] >= m["start"]) & (closed["exit_time"] <= m["end"])]
    table = None
    if len(closed):
        table = pd.DataFrame({
            "trade": closed["trade_id"], "symbol": closed["symbol"],
            "entry": [str(t.date()) for t in closed["entry_time"]],
            "exit": [str(t.date()) for t in closed["exit_time"]],
            "P&L": [money(x) for x in closed["pnl"]], "costs": [money(x) for x in closed["costs"]],
            "exit reason": closed["exit_reason"],
        })
    return Section("Trading activity", rows, table)


def _health(m: dict) -> Section:
    rows = (
        ("uptime", f"{pct(m['uptime'], 1)} ({uptime_detail(m)})"),
        ("errors", str(m["errors"])), ("warnings", str(m["warnings"])),
        ("breaker trips", str(m["breaker_trips"])), ("halts", str(m["halts"])),
        ("crashes (restarts without a clean end)", str(m["crashes"])),
    )
    lines = tuple(f"unresolved: {x}" for x in m["unresolved_failures"]) or ("no unresolved failures",)
    return Section("System health", rows, lines=lines)


def _notes(record: PaperRecord, m: dict, trips: pd.DataFrame) -> Section:
    notes = record.notes
    if notes.empty:
        return Section("Notes", lines=("No notes yet (fw journal note TRADE_ID \"text\").",))
    touched = trips[((trips["entry_time"] >= m["start"]) & (trips["entry_time"] <= m["end"]))
                    | ((trips["exit_time"] >= m["start"]) & (trips["exit_time"] <= m["end"]))]
    mine = notes[notes["trade_id"].isin(touched["trade_id"])
                 | ((notes["time"] >= m["start"]) & (notes["time"] <= m["end"]))]
    if mine.empty:
        return Section("Notes", lines=("No notes for the trades of this period.",))
    table = pd.DataFrame({"trade": mine["trade_id"], "written": [str(t)[:19] for t in mine["time"]],
                          "note": mine["text"]})
    return Section("Notes", table=table)


# -- rendering ------------------------------------------------------------------------------------
def render_markdown(title: str, sections: Sequence[Section], plots: Sequence[str] = ()) -> str:
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        if section.rows:
            out += ["| | |", "|---|---|"] + [f"| {k} | {_md(v)} |" for k, v in section.rows] + [""]
        if section.table is not None:
            out += [_md_table(section.table), ""]
        out += [f"- {line}" for line in section.lines] + ([""] if section.lines else [])
    if plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(out)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(_md(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def render_html(title: str, sections: Sequence[Section], plots: Sequence[str],
                tearsheet: str | None) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{esc(section.title)}</h2>")
        if section.rows:
            parts.append("<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                                             for k, v in section.rows) + "</table>")
        if section.table is not None:
            parts.append(section.table.to_html(index=False, border=0, escape=True))
        parts += [f"<p class='note'>{esc(line)}</p>" for line in section.lines]
    parts.append("<h2>Plots</h2>")
    parts += [f"<p><img alt='{esc(Path(p).stem)}' src='{esc(Path(p).name)}'></p>" for p in plots]
    parts.append("<h2>Tear sheet</h2>")
    if tearsheet:
        name = esc(Path(tearsheet).name)
        parts.append(f"<p><a href='{name}'>open the tear sheet</a></p><iframe src='{name}' "
                     "style='width:100%;height:1400px;border:1px solid #ddd'></iframe>")
    else:
        parts.append("<p class='note'>No tear sheet: the period has fewer than two days of "
                     "returns.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_period_report(record: PaperRecord, start: object, end: object, out_dir: str | Path,
                        title: str) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, ``tearsheet.html`` and the PNG plots for a period.

    Parameters
    ----------
    record : PaperRecord
        The run, loaded through ``end`` (and from its beginning, for cumulative figures).
    start, end : date-like
        The period (inclusive).
    out_dir : str or Path
        Created when missing.
    title : str

    Returns
    -------
    dict of str to Path
        ``html``, ``markdown``, ``tearsheet`` (when the period has two or more days) and one
        entry per plot (:data:`PLOTS`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    m = paper_metrics(record, start, end)
    sections = _sections(record, m, record_trips(record))
    paths: dict[str, Path] = write_plots(record, m, out)
    tearsheet = _tearsheet(record, m, out / "tearsheet.html", title)
    if tearsheet is not None:
        paths["tearsheet"] = tearsheet
    plots = [str(paths[name]) for name in PLOTS if name in paths]
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(render_markdown(title, sections, plots), encoding="utf-8")
    paths["html"] = out / "report.html"
    paths["html"].write_text(render_html(title, sections, plots, str(tearsheet) if tearsheet else None),
                             encoding="utf-8")
    return paths


def _tearsheet(record: PaperRecord, m: dict, path: Path, title: str) -> Path | None:
    from reports.tearsheet import write_tearsheet

    returns = equity_returns(record)
    returns = returns[(returns.index >= m["start"]) & (returns.index <= m["end"])]
    if returns.index.normalize().nunique() < 2 or returns.nunique() < 2:
        return None  # quantstats needs two days and returns that vary (its regressions fail)
    bench = benchmark_returns(record, returns.index)
    notes = [f"Paper run {record.run_id} ({record.run.get('strategy')}), "
             f"{m['start'].date()} to {m['end'].date()}",
             f"Benchmark: {record.benchmark_label}",
             "Returns are the run's equity snapshots (fills at the broker, costs included)"]
    try:
        return write_tearsheet(returns, bench, path, title=title,
                               benchmark_title=record.benchmark_label if bench is not None else "none",
                               notes=notes)
    except DataError:
        # the benchmark misses some of the period's dates: show the strategy alone, say so
        notes.append("Benchmark left out: it does not cover every date of the period")
        return write_tearsheet(returns, None, path, title=title, benchmark_title="none", notes=notes)


# -- plots --------------------------------------------------------------------------------------
def write_plots(record: PaperRecord, m: dict, out: Path) -> dict[str, Path]:
    """The five PNG plots of the period (monthly returns and exposure over the whole record)."""
    returns = equity_returns(record)
    upto = returns[returns.index <= m["end"]]
    period = upto[upto.index >= m["start"]]
    paths = {}
    with quiet_plotting():
        drawers = {
            "equity": lambda ax: _plot_equity(ax, record, period),
            "drawdown": lambda ax: _plot_drawdown(ax, period),
            "monthly_returns": lambda ax: _plot_monthly(ax, upto),
            "exposure": lambda ax: _plot_exposure(ax, record, m),
            "costs": lambda ax: _plot_costs(ax, m),
        }
        for name, draw in drawers.items():
            figure = new_figure(8.0, 3.2 if name != "monthly_returns" else 3.6)
            draw(figure.add_subplot())
            paths[name] = out / f"{name}.png"
            figure.savefig(paths[name], format="png", dpi=PNG_DPI)
    return paths


def _plot_equity(ax, record: PaperRecord, period: pd.Series) -> None:
    growth = (1.0 + period).cumprod()
    ax.plot(naive_utc(period.index), growth.to_numpy(), label="strategy")
    bench = benchmark_returns(record, period.index)
    if bench is not None:
        ax.plot(naive_utc(bench.index), (1.0 + bench).cumprod().to_numpy(), label=record.benchmark_label)
    ax.set_title("Growth of 1 over the period: strategy vs benchmark")
    ax.legend(loc="upper left")


def _plot_drawdown(ax, period: pd.Series) -> None:
    from framework.metrics import drawdown_series

    if period.empty:
        ax.set_title("Drawdown (no bars in the period)")
        return
    dd = drawdown_series(period)
    ax.fill_between(naive_utc(dd.index), dd.to_numpy(), 0.0, color="#c44", alpha=0.5)
    ax.set_title("Drawdown over the period")


def _plot_monthly(ax, upto: pd.Series) -> None:
    table = monthly_returns(upto)
    grid = table.to_numpy(np.float64) if len(table) else np.full((1, 12), np.nan)
    finite = grid[np.isfinite(grid)]
    bound = float(np.abs(finite).max()) if finite.size else 0.01
    ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
    for (r, c), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(c, r, f"{value:.1%}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(12), [str(x) for x in range(1, 13)])
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    ax.set_title("Monthly returns (whole record)")
    ax.grid(False)


def _plot_exposure(ax, record: PaperRecord, m: dict) -> None:
    exposure = exposure_series(record)
    exposure = exposure[exposure.index <= m["end"]]
    ax.plot(naive_utc(exposure.index), exposure["gross"].to_numpy(), label="gross")
    ax.plot(naive_utc(exposure.index), exposure["net"].to_numpy(), label="net")
    ax.axvspan(naive_utc([m["start"]])[0], naive_utc([m["end"]])[0], color="#09c", alpha=0.08)
    ax.set_title("Exposure (fraction of equity; shaded: the period)")
    ax.legend(loc="upper left")


def _plot_costs(ax, m: dict) -> None:
    kinds = ("commission", "slippage", "impact")
    values = [m["costs"][k] for k in kinds]
    ax.bar(kinds, values, color=["#09c", "#f90", "#c44"])
    for x, value in enumerate(values):
        ax.text(x, value, money(value), ha="center", va="bottom", fontsize=8)
    ax.set_title(f"Transaction costs in the period: {money(m['costs']['total'])}")
