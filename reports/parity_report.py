"""The paper-vs-backtest parity report: ``parity.html``, ``parity.md`` and ``parity.png``.

The numbers come from a parity result computed in ``live.parity`` (``reports`` may not import
``live``): any object with the DataFrames ``decisions``, ``fills``, ``costs``, ``equity`` and
the dict ``summary`` of :class:`live.parity.ParityResult`. This module only lays them out; the
HTML page and the Markdown file are rendered from the same sections, so they show the same
figures with the same formatting.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reports.paper_report import Section, money, num, render_markdown
from reports.plots import PNG_DPI, naive_utc, new_figure, quiet_plotting

MAX_TABLE_ROWS = 500  # per table: a long intraday run would make a page nobody reads
_CSS = ("body{font-family:sans-serif;max-width:1200px;margin:24px auto;color:#333}"
        "table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;"
        "padding:4px 8px;font-size:13px}th{background:#f4f8fb;text-align:left}"
        "h2{border-bottom:2px solid #09c;padding-bottom:4px;margin-top:32px}"
        "img{max-width:100%}.note{color:#666;font-size:13px}.bad{color:#b00;font-weight:bold}"
        ".ok{color:#070;font-weight:bold}")


# -- sections -----------------------------------------------------------------------------------
def parity_sections(result: Any, breaches: Sequence[str] | None = None) -> list[Section]:
    """The report's sections (what both the HTML and the Markdown show).

    Parameters
    ----------
    result : ParityResult-like
    breaches : sequence of str, optional
        Threshold messages (``live.parity.exceeds``); None: no threshold section.
    """
    out = [_summary(result)]
    if breaches is not None:
        out.append(_thresholds(breaches))
    out += [_decisions(result), _fills(result), _unmatched(result), _costs(result)]
    return out


def _summary(result: Any) -> Section:
    s = result.summary
    decisions = (f"{s['decisions'] - s['decision_mismatches']:,} of {s['decisions']:,} "
                 "identical (bit for bit)")
    rows = (
        ("Run", f"{s['run_id']} ({s['strategy']}, broker {s['broker']})"),
        ("Bars", f"{s['bars']:,}: {s['start'][:10]} to {s['end'][:10]}; first traded "
                 f"{(s.get('first_traded_bar') or 'never')[:10]}"),
        ("Decisions", decisions),
        ("Fill groups", f"{s['matched']:,} matched; {s['live_only']:,} live only; "
                        f"{s['backtest_only']:,} backtest only"),
        ("Price difference", f"mean |diff| {bps(s['mean_abs_price_bps'])}, max "
                             f"{bps(s['max_abs_price_bps'])} (positive: live paid more)"),
        ("Quantity difference", f"mean |diff| {pct_points(s['mean_abs_qty_pct'])}, max "
                                f"{pct_points(s['max_abs_qty_pct'])}"),
        ("Time difference", f"mean |diff| {seconds(s['mean_abs_time_s'])}"),
        ("Costs", f"model {money(s['model_cost'])} ({bps(s['model_cost_bps'])}) vs realized "
                  f"{money(s['realized_cost'])} ({bps(s['realized_cost_bps'])})"),
        ("Final equity", f"live {money(s['live_final_equity'])} vs backtest "
                         f"{money(s['backtest_final_equity'])} "
                         f"({pct_points(s['equity_diff_pct'], signed=True)})"),
        ("Risk rules", "; ".join(s.get("risk") or ["off"])),
    )
    return Section("Summary", rows=rows, lines=tuple(s.get("notes") or ()))


def _thresholds(breaches: Sequence[str]) -> Section:
    if not breaches:
        return Section("Thresholds", lines=("Within every threshold.",))
    return Section("Thresholds", lines=tuple(f"EXCEEDED: {b}" for b in breaches))


def _decisions(result: Any) -> Section:
    frame = result.decisions
    bad = frame[~frame["match"].astype(bool)] if len(frame) else frame
    if bad.empty:
        return Section("Decisions", lines=(f"All {len(frame):,} stored decisions equal the "
                                           "backtest's targets bit for bit.",))
    table = pd.DataFrame({
        "bar": [_time(t) for t in bad["bar_time"]], "symbol": bad["symbol"],
        "live target": [_exact(v) for v in bad["live"]],
        "backtest target": [_exact(v) for v in bad["backtest"]],
    })
    return Section("Decisions", table=_cap(table),
                   lines=(f"{len(bad):,} of {len(frame):,} decisions differ from the backtest: "
                          "the timing contract says they must not (same bars in, same targets "
                          "out).", *_cap_note(table)))


def _fills(result: Any) -> Section:
    frame = result.fills
    matched = frame[frame["status"] == "matched"] if len(frame) else frame
    if matched.empty:
        return Section("Matched fills", lines=("No fill matched (same bar, symbol and side).",))
    table = pd.DataFrame({
        "bar": [_time(t) for t in matched["bar_time"]], "symbol": matched["symbol"],
        "side": matched["side"],
        "live qty": [num(v, 4) for v in matched["live_qty"]],
        "backtest qty": [num(v, 4) for v in matched["backtest_qty"]],
        "qty diff": [pct_points(v, signed=True) for v in matched["qty_diff_pct"]],
        "live price": [num(v, 4) for v in matched["live_price"]],
        "backtest price": [num(v, 4) for v in matched["backtest_price"]],
        "price diff": [bps(v, signed=True) for v in matched["price_diff_bps"]],
        "time diff": [seconds(v) for v in matched["time_diff_s"]],
    })
    return Section("Matched fills", table=_cap(table), lines=(
        "Fills grouped by fill bar, symbol and side; price diff positive = the live price was "
        "worse for the trader; time diff = first live fill minus the backtest's fill stamp (the "
        "fill bar's close label).", *_cap_note(table)))


def _unmatched(result: Any) -> Section:
    frame = result.fills
    rest = frame[frame["status"] != "matched"] if len(frame) else frame
    if rest.empty:
        return Section("Unmatched fills", lines=("None: every fill has a partner.",))
    table = pd.DataFrame({
        "bar": [_time(t) for t in rest["bar_time"]], "symbol": rest["symbol"],
        "side": rest["side"], "only in": rest["status"].str.replace("_only", "", regex=False),
        "qty": [num(a if _finite(a) else b, 4) for a, b in zip(rest["live_qty"],
                                                              rest["backtest_qty"], strict=True)],
        "price": [num(a if _finite(a) else b, 4)
                  for a, b in zip(rest["live_price"], rest["backtest_price"], strict=True)],
        "likely reason": rest["reason"],
    })
    return Section("Unmatched fills", table=_cap(table), lines=_cap_note(table))


def _costs(result: Any) -> Section:
    frame, s = result.costs, result.summary
    totals = (
        ("Model (backtest)", f"{money(s['model_cost'])} = {bps(s['model_cost_bps'])} of the "
                             "backtest's traded value"),
        ("Realized (live)", f"{money(s['realized_cost'])} = {bps(s['realized_cost_bps'])} of "
                            "the live traded value"),
        ("Difference", money(s["realized_cost"] - s["model_cost"])),
    )
    if frame.empty:
        return Section("Costs", rows=totals, lines=("No fills.",))
    table = pd.DataFrame({
        "bar": [_time(t) for t in frame["bar_time"]], "symbol": frame["symbol"],
        "side": frame["side"], "status": frame["status"],
        "model": [money(v) for v in frame["model_cost"]],
        "realized": [money(v) for v in frame["realized_cost"]],
        "diff": [money(v) for v in frame["cost_diff"]],
        "model bps": [bps(v) for v in frame["model_bps"]],
        "realized bps": [bps(v) for v in frame["realized_bps"]],
    })
    return Section("Costs", rows=totals, table=_cap(table), lines=(
        "Model: the backtest's commission, slippage and impact; realized: what the live broker "
        "recorded for the same fills.", *_cap_note(table)))


# -- formatting -----------------------------------------------------------------------------------
def bps(value: float | None, signed: bool = False) -> str:
    if not _finite(value):
        return "n/a"
    return f"{value:+.2f} bps" if signed else f"{value:.2f} bps"


def pct_points(value: float | None, signed: bool = False) -> str:
    """A value already in percent (2.0 means 2%)."""
    if not _finite(value):
        return "n/a"
    return f"{value:+.3f}%" if signed else f"{value:.3f}%"


def seconds(value: float | None) -> str:
    return "n/a" if not _finite(value) else f"{value:,.0f} s"


def _exact(value: float) -> str:
    return "none" if not _finite(value) else repr(float(value))


def _time(value: Any) -> str:
    stamp = pd.Timestamp(value)
    return stamp.isoformat() if stamp.hour or stamp.minute else str(stamp.date())


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _cap(table: pd.DataFrame) -> pd.DataFrame:
    return table.head(MAX_TABLE_ROWS)


def _cap_note(table: pd.DataFrame) -> tuple[str, ...]:
    if len(table) <= MAX_TABLE_ROWS:
        return ()
    return (f"Showing the first {MAX_TABLE_ROWS:,} of {len(table):,} rows.",)


# -- rendering and files ------------------------------------------------------------------------
def render_html(title: str, sections: Sequence[Section], plot: str | None) -> str:
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
        for line in section.lines:
            css = "bad" if line.startswith("EXCEEDED") else (
                "ok" if line.startswith("Within") else "note")
            parts.append(f"<p class='{css}'>{esc(line)}</p>")
    if plot:
        parts.append("<h2>Plots</h2>")
        parts.append(f"<p><img alt='parity' src='{esc(Path(plot).name)}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_parity_report(result: Any, out_dir: str | Path,
                        breaches: Sequence[str] | None = None) -> dict[str, Path]:
    """Write ``parity.html``, ``parity.md`` and ``parity.png`` into ``out_dir``.

    Parameters
    ----------
    result : ParityResult-like
        ``live.parity.compare_run``'s result (DataFrames ``decisions``, ``fills``, ``costs``,
        ``equity`` and the ``summary`` dict).
    out_dir : str or Path
        Created when missing.
    breaches : sequence of str, optional
        Threshold messages to show (``live.parity.exceeds``).

    Returns
    -------
    dict of str to Path
        ``html``, ``markdown`` and ``plot``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = result.summary
    title = f"fw parity report: {s['run_id']} ({s['strategy']}) vs its backtest replay"
    sections = parity_sections(result, breaches)
    paths = {"plot": write_parity_plot(result, out / "parity.png")}
    paths["markdown"] = out / "parity.md"
    paths["markdown"].write_text(render_markdown(title, sections, [str(paths["plot"])]),
                                 encoding="utf-8")
    paths["html"] = out / "parity.html"
    paths["html"].write_text(render_html(title, sections, str(paths["plot"])), encoding="utf-8")
    return paths


def write_parity_plot(result: Any, path: Path) -> Path:
    """Three panels: live vs backtest equity, per-fill price difference (bps) and quantity
    difference (%) of the matched fills."""
    fills = result.fills
    matched = fills[fills["status"] == "matched"] if len(fills) else fills
    with quiet_plotting():
        figure = new_figure(8.0, 8.0)
        axes = figure.subplots(3, 1)
        _plot_equity(axes[0], result.equity)
        _plot_diffs(axes[1], matched, "price_diff_bps", "Price difference per matched fill (bps, "
                    "+ = live worse; green buy, red sell)")
        _plot_diffs(axes[2], matched, "qty_diff_pct", "Quantity difference per matched fill "
                    "(%, live vs backtest)")
        figure.savefig(path, format="png", dpi=PNG_DPI)
    return path


def _plot_equity(ax, equity: pd.DataFrame) -> None:
    if equity.empty:
        ax.set_title("Equity (no bars)")
        return
    times = naive_utc(equity.index)
    ax.plot(times, equity["backtest"].to_numpy(), label="backtest replay", color="#888")
    ax.plot(times, equity["live"].to_numpy(), label="live", color="#09c", linestyle="--")
    ax.set_title("Equity: live vs backtest replay")
    ax.legend(loc="upper left")


def _plot_diffs(ax, matched: pd.DataFrame, column: str, title: str) -> None:
    ax.set_title(title if not matched.empty else f"{title}: no matched fills")
    if matched.empty:
        return
    times = naive_utc(pd.DatetimeIndex(matched["bar_time"]))
    colors = ["#2a7" if side == "buy" else "#c44" for side in matched["side"]]
    ax.axhline(0.0, color="#999", linewidth=0.8)
    ax.scatter(times, matched[column].to_numpy(), c=colors, s=14)
