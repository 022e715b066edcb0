"""``options.html``: the trade list of an options backtest with its legs, exits and plots.

The quantstats tear sheet compares returns with the benchmark; this page shows what a premium
seller needs besides: every spread with its legs, credit, exit debit, P&L and exit reason, the
P&L by exit reason and by structure, the equity against buy-and-hold, the dollars at risk over
time and, for walk-forward runs, the chosen parameters per fold.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import framework
from reports.plots import img_tag, new_figure, quiet_plotting

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;font-size:13px}"
    "th{background:#f3f3f3}td.l,th.l{text-align:left}"
    ".notes li{margin:2px 0}.warn{background:#fff4ce;border:1px solid #e0c060;padding:8px}"
    ".muted{color:#888}"
)
_TRADE_COLUMNS = (("trade_id", "#"), ("entry_date", "entry"), ("exit_date", "exit"),
                  ("kind", "structure"), ("legs", "legs"), ("contracts", "contracts"),
                  ("credit", "credit"), ("exit_debit", "exit debit"), ("pnl", "P&L $"),
                  ("exit_reason", "exit"), ("days_held", "days"),
                  ("iv_rank_at_entry", "IV rank"), ("short_deltas", "short delta"))


def write_options_report(result: Any, path: str | Path, *, title: str,
                         notes: Sequence[str] = (), benchmark: pd.Series | None = None,
                         benchmark_title: str = "benchmark",
                         folds: pd.DataFrame | None = None) -> Path:
    """Write the options run page.

    Parameters
    ----------
    result : OptionsBacktestResult
        ``equity``, ``returns``, ``positions``, ``trades``, ``summary``.
    path : str or Path
        Output HTML file (parents created).
    title : str
        Page heading.
    notes : sequence of str
        Facts the reader must see (fill model, sources, benchmark).
    benchmark : Series, optional
        Benchmark daily returns on the run's dates.
    benchmark_title : str
        Its name.
    folds : DataFrame, optional
        Walk-forward folds (windows, chosen ``param_*``, in/out-of-sample metrics).
    """
    trades = result.trades
    with quiet_plotting():
        sections = [
            ("Notes", _notes(notes)),
            ("Summary", _summary(result.summary)),
            ("Equity vs " + benchmark_title, _equity_plot(result, benchmark, benchmark_title)),
            ("Dollars at risk and open positions", _risk_plot(result.positions)),
            ("P&L by exit reason", _group(trades, "exit_reason")),
            ("P&L by structure", _group(trades, "kind")),
        ]
        if folds is not None and len(folds):
            sections.append(("Walk-forward folds", _folds(folds)))
        sections.append((f"Trades ({len(trades)})", _trade_table(trades)))
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}\n" for h, content in sections)
    page = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>"
            f"<h1>{html.escape(title)}</h1>{body}"
            f'<p class="muted">fw {html.escape(framework.__version__)}</p></body></html>\n')
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _notes(notes: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return f'<div class="warn"><ul class="notes">{items}</ul></div>'


def _summary(summary: dict) -> str:
    rows = []
    for key, value in summary.items():
        rows.append(f'<tr><th class="l">{html.escape(key)}</th><td>{_fmt(key, value)}</td></tr>')
    return f"<table>{''.join(rows)}</table>"


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, float | np.floating):
        if value != value:
            return "n/a"
        pct = any(w in key for w in ("return", "cagr", "drawdown", "win_rate", "exposure",
                                     "volatility"))
        return f"{value:.2%}" if pct else f"{value:,.2f}"
    return html.escape(str(value))


def _equity_plot(result: Any, benchmark: pd.Series | None, name: str) -> str:
    fig = new_figure(9, 3.2)
    ax = fig.subplots()
    growth = (1 + result.returns).cumprod()
    ax.plot(growth.index, growth.to_numpy(), label="strategy", lw=1.2)
    if benchmark is not None:
        ax.plot(benchmark.index, (1 + benchmark).cumprod().to_numpy(), label=name, lw=1.0,
                alpha=0.8)
    ax.set_ylabel("growth of $1")
    ax.set_yscale("log")
    ax.legend(loc="upper left")
    return img_tag(fig, "equity against the benchmark")


def _risk_plot(positions: pd.DataFrame) -> str:
    fig = new_figure(9, 2.6)
    ax = fig.subplots()
    ax.fill_between(positions.index, positions["max_loss"].to_numpy(), step="post", alpha=0.4,
                    label="max loss of open spreads ($)")
    ax.set_ylabel("$ at risk")
    twin = ax.twinx()
    twin.step(positions.index, positions["open_positions"].to_numpy(), where="post", color="k",
              lw=0.6, label="open positions")
    twin.set_ylabel("open")
    ax.legend(loc="upper left")
    return img_tag(fig, "dollars at risk and open positions")


def _group(trades: pd.DataFrame, by: str) -> str:
    if trades.empty:
        return "<p>No trades.</p>"
    grouped = trades.groupby(by)["pnl"].agg(["count", "sum", "mean"])
    grouped["win rate"] = trades.assign(win=trades["pnl"] > 0).groupby(by)["win"].mean()
    rows = "".join(
        f'<tr><td class="l">{html.escape(str(k))}</td><td>{int(r["count"])}</td>'
        f'<td>{r["sum"]:,.0f}</td><td>{r["mean"]:,.1f}</td><td>{r["win rate"]:.0%}</td></tr>'
        for k, r in grouped.iterrows())
    return (f'<table><tr><th class="l">{html.escape(by)}</th><th>trades</th><th>P&amp;L $</th>'
            f"<th>mean $</th><th>win rate</th></tr>{rows}</table>")


def _folds(folds: pd.DataFrame) -> str:
    keep = [c for c in folds.columns if c in ("fold", "test_start", "test_end", "is_sharpe",
                                              "oos_sharpe", "oos_total_return", "note")
            or c.startswith("param_")]
    frame = folds[keep]
    head = "".join(f"<th>{html.escape(c.removeprefix('param_'))}</th>" for c in keep)
    rows = "".join("<tr>" + "".join(f"<td>{_fmt(c, v)}</td>" for c, v in row.items()) + "</tr>"
                   for _, row in frame.iterrows())
    return f"<table><tr>{head}</tr>{rows}</table>"


def _trade_table(trades: pd.DataFrame) -> str:
    if trades.empty:
        return "<p>No trades: the entry gates never opened (see the IV rank threshold).</p>"
    head = "".join(f'<th class="{"l" if key == "legs" else ""}">{html.escape(label)}</th>'
                   for key, label in _TRADE_COLUMNS)
    rows = []
    for _, t in trades.iterrows():
        cells = []
        for key, _label in _TRADE_COLUMNS:
            value = t[key]
            if isinstance(value, pd.Timestamp):
                text = str(value.date())
            elif key in ("credit", "exit_debit"):
                text = f"{value:.2f}"
            elif key == "pnl":
                text = f"{value:,.0f}"
            elif key == "iv_rank_at_entry":
                text = "n/a" if value != value else f"{value:.2f}"
            else:
                text = html.escape(str(value))
            cells.append(f'<td class="{"l" if key == "legs" else ""}">{text}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
