"""The walk-forward HTML report: one self-contained page per walk-forward run.

:func:`write_walkforward_report` presents a :class:`framework.walkforward.WalkForwardResult`:
what was run (strategy, data, windows, search, objective, fills, costs), the overfitting
statistics with a plain-language reading of each, the stitched out-of-sample equity against the
benchmark, the fold table, the chosen parameters over time, in-sample against out-of-sample
performance per fold, and in-sample objective heatmaps for two-parameter searches.

Reports never compute truth: every number comes from the result (its ``folds``, ``trials``,
``statistics``, ``deflated_sharpe``, ``parameter_stability`` and the stitched backtest's
``summary``). The only values derived here are presentational (growth-of-1 curves) and the
out-of-sample objective per fold, which is scored by the run's own objective object
(:mod:`framework.walkforward.objectives`, i.e. :mod:`framework.metrics`). Images are embedded as
base64 PNG; the page references no external file and nothing touches the network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import framework
from framework.clirun import describe_costs
from framework.errors import DataError
from reports.plots import (
    draw_heatmap,
    heatmap_ticks,
    img_tag,
    naive_utc,
    new_figure,
    plot_levels,
    quiet_plotting,
    spaced_ticks,
)

MAX_HEATMAP_FOLDS = 20
# Thresholds of the plain-language readings only (the numbers shown are the framework's):
WFE_GOOD = 0.5  # Pardo's rule of thumb for walk-forward efficiency
DSR_SIGNIFICANT = 0.95  # a one-sided 95% confidence that the Sharpe beats the trials' best
STABLE_MODE_FRACTION = 0.5  # the same value chosen in at least half the folds
STABLE_CV = 0.25  # or chosen values within about a quarter of their mean

_REQUIRED = ("backtest", "bars", "folds", "splits", "trials", "statistics", "deflated_sharpe",
             "parameter_stability", "spec", "n_trials")

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;margin:24px auto;
max-width:1280px;padding:0 16px;font-size:14px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f5f7}td.l,th.l{text-align:left}
.warn{border-left:5px solid #c00;background:#fdecea;padding:8px 14px;margin:12px 0}
.info{border-left:5px solid #09c;background:#f4f8fb;padding:8px 14px;margin:12px 0}
.reading{margin:2px 0 10px 0}.muted{color:#666}
"""


def write_walkforward_report(wf_result: Any, path: str | Path) -> Path:
    """Write the walk-forward report of ``wf_result`` to one self-contained HTML file.

    Parameters
    ----------
    wf_result : WalkForwardResult
        What :func:`framework.walkforward.walk_forward` returned.
    path : str or Path
        Output HTML file; missing parent folders are created.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        When ``wf_result`` is not a walk-forward result or has no folds.
    """
    _check_result(wf_result)
    wf = wf_result
    with quiet_plotting():
        sections = [
            ("run", "Run", _run_section(wf)),
            ("statistics", "Overfitting statistics", _statistics_section(wf)),
            ("equity", "Stitched out-of-sample equity vs benchmark", _equity_section(wf)),
            ("folds", "Folds", _fold_table(wf)),
            ("parameters", "Chosen parameters over time", _parameters_section(wf)),
            ("decay", "In-sample vs out-of-sample", _decay_section(wf)),
            ("heatmaps", "Parameter heatmaps", _heatmap_section(wf)),
        ]
    title = f"Walk-forward report: {wf.backtest.strategy}"
    body = "".join(
        f'<section id="{key}"><h2>{html.escape(heading)}</h2>{content}</section>\n'
        for key, heading, content in sections
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>{_fill_banner(wf)}{body}"
        f'<p class="muted">fw {html.escape(framework.__version__)}</p>\n</body></html>\n'
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def _check_result(wf: Any) -> None:
    missing = [name for name in _REQUIRED if not hasattr(wf, name)]
    if missing:
        raise DataError(
            f"write_walkforward_report needs a WalkForwardResult; got {type(wf).__name__} "
            f"(missing {', '.join(missing)}). Pass what framework.walkforward.walk_forward returns."
        )
    if len(wf.folds) == 0 or len(wf.splits) == 0:
        raise DataError(
            "the walk-forward result has no folds; nothing to report. Run walk_forward on data "
            "long enough for at least one train + test window."
        )


# -- formatting ----------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones, so ``10`` prints as ``10``, not ``np.int64(10)``."""
    return value.item() if isinstance(value, np.generic) else value


def _esc(value: Any) -> str:
    return html.escape(str(_plain(value)))


def _ratio(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, bool | np.bool_ | str):
        return str(value)
    return f"{float(value):.{digits}f}"


def _pct(value: Any) -> str:
    if value is None or not np.isfinite(value):
        return _ratio(value)
    return f"{float(value):.1%}"


def _time_formatter(times: Sequence[pd.Timestamp]) -> Any:
    """Dates for daily bars (all closes share one time of day), date and time otherwise."""
    stamps = pd.DatetimeIndex(times)
    daily = len(set(stamps.time)) <= 1
    return (lambda t: t.strftime("%Y-%m-%d")) if daily else (lambda t: t.strftime("%Y-%m-%d %H:%M"))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1,
           table_id: str = "") -> str:
    """An HTML table; cells are already-escaped strings; the first ``left`` columns align left."""
    def cells(tag: str, values: Sequence[str]) -> str:
        return "".join(
            f'<{tag}{" class=l" if i < left else ""}>{v}</{tag}>' for i, v in enumerate(values)
        )
    head = f"<thead><tr>{cells('th', header)}</tr></thead>"
    body = "".join(f"<tr>{cells('td', row)}</tr>" for row in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}>{head}<tbody>{body}</tbody></table>"


def _param_names(wf: Any) -> list[str]:
    return [c[len("param_"):] for c in wf.folds.columns if c.startswith("param_")]


def _searched(wf: Any) -> list[str]:
    """Parameters the search actually varied (more than one value among the trials)."""
    return [
        name for name in _param_names(wf)
        if f"param_{name}" in wf.trials.columns and wf.trials[f"param_{name}"].nunique() > 1
    ]


# -- header ----------------------------------------------------------------------------------------
def _fill_banner(wf: Any) -> str:
    sim = wf.backtest.sim
    if sim.optimistic_fill:
        return (
            '<div class="warn" id="optimistic-fill"><strong>Optimistic fills (fill=close).</strong> '
            "Every decision is filled at the close of the bar it was computed on, a price only "
            "known once that bar is over. In-sample scores and the stitched out-of-sample result "
            "overstate what could have been traded; rerun with fill=next_open before trusting "
            "them.</div>"
        )
    return (
        '<div class="info">Fills: decided at each bar\'s close, filled at the next bar\'s open '
        "(fill=next_open).</div>"
    )


def _run_section(wf: Any) -> str:
    bt, spec = wf.backtest, wf.spec
    folds, summary, search = wf.folds, bt.summary, spec.search
    fmt = _time_formatter([folds["train_start"].iloc[0], folds["test_end"].iloc[-1]])
    searched = _searched(wf)
    base = wf.schedule[0].params.as_dict() if wf.schedule else {}
    fixed = ", ".join(f"{k}={v!r}" for k, v in base.items() if k not in searched)
    method = search.method + ("" if search.method == "grid" else f" ({search.trials} trials)")
    low, high = int(folds["n_combinations"].min()), int(folds["n_combinations"].max())
    per_fold = f"{low}" if low == high else f"{low} to {high}"
    costs = ", ".join(f"{k} ${v:,.2f}" for k, v in bt.sim.costs.items())
    bench = bt.benchmark
    rows = [
        ("Strategy", _esc(bt.strategy)),
        ("Symbols", _esc(", ".join(wf.bars.symbols))),
        ("Data span", _esc(f"{fmt(folds['train_start'].iloc[0])} to "
                           f"{fmt(folds['test_end'].iloc[-1])} (first training bar to last test bar)")),
        ("Out-of-sample span", _esc(f"{fmt(folds['test_start'].iloc[0])} to "
                                    f"{fmt(folds['test_end'].iloc[-1])}, {summary['n_bars']} bars")),
        ("Folds", _esc(f"{len(folds)}: {spec.windows.describe()}")),
        ("Search", _esc(f"{method}, seed {search.seed}, min_trades {search.min_trades}; "
                        f"searched: {', '.join(searched) or 'nothing (no search space)'}")),
        ("Trials", _esc(f"{wf.n_trials} combinations evaluated in total ({per_fold} per fold)")),
        ("Objective", _esc(search.objective.name)),
        ("Fixed parameters", _esc(fixed or "none")),
        ("Fill rule", _esc(summary.get("fill", "close" if bt.sim.optimistic_fill else "next_open"))
         + (" <strong>(OPTIMISTIC)</strong>" if bt.sim.optimistic_fill else "")),
        ("Costs", _esc(f"{describe_costs(bt.sim.cost_spec)}; totals out of sample: {costs}")),
        ("Initial cash", _esc(f"{bt.sim.initial_cash:,.2f}")),
        ("Benchmark", _esc("none" if bench is None
                           else bench.name + (f" ({bench.note})" if bench.note else ""))),
        ("Data hash", _esc(bt.data_hash[:16])),
    ]
    out = _table(["Item", "Value"], rows, left=2, table_id="run-table")
    notes = list(getattr(wf, "notes", ()))
    if notes:
        items = "".join(f"<li>{_esc(n)}</li>" for n in notes)
        out += f'<div class="info" id="notes"><strong>Notes</strong><ul>{items}</ul></div>'
    return out


# -- overfitting statistics --------------------------------------------------------------------
def wfe_reading(value: float) -> str:
    """One plain sentence reading a walk-forward efficiency.

    Parameters
    ----------
    value : float
        ``statistics["walk_forward_efficiency"]`` of a walk-forward result (``nan`` = undefined).

    Returns
    -------
    str
        The value, what it means, and how it compares with Pardo's 0.5 rule of thumb.
    """
    if not np.isfinite(value):
        return ("WFE n/a: not defined, because the mean in-sample annualized return was not "
                "positive (or no fold had both returns), so there is no gain to carry over.")
    text = (f"WFE {value:.2f}: out of sample kept {value:.0%} of the in-sample annualized "
            "return (means over folds); ")
    if value < 0:
        return text + "the out-of-sample periods lost money while the in-sample ones made money."
    if value >= WFE_GOOD:
        return text + f"at or above Pardo's {WFE_GOOD} rule of thumb, so most of the edge carried over."
    return text + (f"below Pardo's {WFE_GOOD} rule of thumb, so much of the in-sample "
                   "performance did not carry over.")


def dsr_reading(value: float, dsr: Any) -> str:
    """One plain sentence reading a deflated Sharpe ratio.

    Parameters
    ----------
    value : float
        ``statistics["deflated_sharpe"]`` (``nan`` = undefined).
    dsr : DeflatedSharpe
        Its inputs (``wf.deflated_sharpe``): the per-bar Sharpe, the expected maximum Sharpe of
        the trials and their number are quoted.

    Returns
    -------
    str
    """
    if not np.isfinite(value):
        return ("Deflated Sharpe n/a: not defined for these returns (fewer than 2 bars, no "
                "dispersion, or a degenerate distribution).")
    text = (f"Deflated Sharpe {value:.2f}: the probability that the true Sharpe ratio of the "
            f"stitched out-of-sample returns ({dsr.sharpe:.3f} per bar) exceeds the best one "
            f"expected from {dsr.n_trials} unskilled trials ({dsr.expected_max_sharpe:.3f} per bar) "
            f"is {value:.0%}; ")
    if value >= DSR_SIGNIFICANT:
        return text + f"at or above {DSR_SIGNIFICANT}, the performance survives the number of trials."
    return text + (f"below {DSR_SIGNIFICANT}, so it is not significant once the number of trials "
                   "is accounted for.")


def pbo_reading(value: float) -> str:
    """One plain sentence reading a probability of backtest overfitting.

    Parameters
    ----------
    value : float
        ``statistics["pbo"]``: the mean over folds of each training window's CSCV PBO
        (``nan`` when no fold could compute it).

    Returns
    -------
    str
        Read as likely overfit from 0.5 up (the in-sample choice does no better than chance).
    """
    if not np.isfinite(value):
        return ("PBO n/a: not computed (each fold needs at least 2 combinations and at least "
                "pbo_blocks scored training bars).")
    text = (f"PBO {value:.2f}: the in-sample best configuration ranks at or below the median out "
            f"of sample in {value:.0%} of the CSCV splits of the training windows (mean over "
            "folds), ")
    if value >= 0.5:
        return text + "so the selection is likely overfit (no better than picking at random)."
    return text + "so the in-sample choice tends to hold up out of sample (lower is better)."


def stability_reading(name: str, row: pd.Series, n_folds: int) -> str:
    """One plain sentence on how stable one chosen parameter was across folds.

    Parameters
    ----------
    name : str
        Parameter name.
    row : Series
        Its row of ``wf.parameter_stability`` (``mode``, ``mode_fraction``, ``n_distinct``,
        ``cv``).
    n_folds : int
        Number of folds (one fold cannot show stability).

    Returns
    -------
    str
        Stable when the mode was chosen in at least half the folds or the coefficient of
        variation is at most 0.25; unstable otherwise.
    """
    text = (f"{name}: value {_plain(row['mode'])} chosen in {row['mode_fraction']:.0%} of folds, "
            f"{int(row['n_distinct'])} distinct value(s)")
    cv = row["cv"]
    if np.isfinite(cv):
        text += f", coefficient of variation {cv:.2f}"
    if n_folds < 2:
        return text + "; a single fold says nothing about stability."
    if row["mode_fraction"] >= STABLE_MODE_FRACTION or (np.isfinite(cv) and cv <= STABLE_CV):
        return text + "; stable: the optimum stays put from fold to fold."
    return text + "; unstable: the optimum moves from fold to fold, a sign of fitting noise."


def _statistics_section(wf: Any) -> str:
    stats, dsr = wf.statistics, wf.deflated_sharpe
    n_folds = len(wf.folds)
    searched = _searched(wf)
    stability = wf.parameter_stability
    parts = [
        _stat_block("wfe", "Walk-forward efficiency", wfe_reading(stats["walk_forward_efficiency"])),
        _stat_block("dsr", "Deflated Sharpe ratio", dsr_reading(stats["deflated_sharpe"], dsr)),
        _stat_block("pbo", "Probability of backtest overfitting", pbo_reading(stats["pbo"])),
    ]
    readings = [stability_reading(name, stability.loc[name], n_folds)
                for name in searched if name in stability.index]
    if not readings:
        readings = ["Parameter stability n/a: no parameter was searched."]
    parts.insert(1, _stat_block("stability", "Parameter stability", *readings))
    rows = [
        [_esc(name), _esc(r["mode"]), _pct(r["mode_fraction"]), _esc(int(r["n_distinct"])),
         _ratio(r["mean"]), _ratio(r["std"]), _ratio(r["cv"])]
        for name, r in stability.iterrows()
    ]
    parts.append("<h3>Parameter stability</h3>" + _table(
        ["Parameter", "Mode", "Mode share", "Distinct", "Mean", "Std", "CV"], rows,
        table_id="stability-table"))
    dsr_rows = [
        ["Deflated Sharpe ratio", _ratio(dsr.dsr, 3)],
        ["Out-of-sample Sharpe (per bar)", _ratio(dsr.sharpe, 4)],
        ["Expected max Sharpe of the trials (per bar)", _ratio(dsr.expected_max_sharpe, 4)],
        ["Variance of trial Sharpes (within folds)", _ratio(dsr.sharpe_variance, 6)],
        ["Trials", _esc(dsr.n_trials)],
        ["Bars", _esc(dsr.n_periods)],
        ["Skewness / kurtosis", f"{_ratio(dsr.skewness)} / {_ratio(dsr.kurtosis)}"],
    ]
    parts.append("<h3>Deflated Sharpe inputs</h3>" + _table(["Input", "Value"], dsr_rows))
    return "".join(parts)


def _stat_block(key: str, name: str, *readings: str) -> str:
    lines = "".join(f'<p class="reading">{_esc(r)}</p>' for r in readings)
    return f'<div class="stat" id="stat-{key}"><strong>{_esc(name)}</strong>{lines}</div>'


# -- stitched equity ---------------------------------------------------------------------------
_SUMMARY_ROWS = (
    ("total_return", "Total return", _pct),
    ("cagr", "CAGR", _pct),
    ("annual_volatility", "Annual volatility", _pct),
    ("sharpe", "Sharpe", _ratio),
    ("sortino", "Sortino", _ratio),
    ("max_drawdown", "Max drawdown", _pct),
    ("n_trades", "Trades", lambda v: _esc(v)),
    ("exposure", "Mean exposure", _pct),
    ("total_costs", "Total costs", lambda v: _esc(f"${v:,.2f}")),
    ("benchmark_total_return", "Benchmark total return", _pct),
    ("benchmark_sharpe", "Benchmark Sharpe", _ratio),
    ("alpha", "Alpha", _ratio),
    ("beta", "Beta", _ratio),
)


def _equity_section(wf: Any) -> str:
    bt = wf.backtest
    sim = bt.sim
    times = naive_utc(sim.index)
    fig = new_figure(11, 4)
    ax = fig.add_subplot()
    ax.plot(times, np.asarray(sim.equity) / sim.initial_cash, color="#1f77b4",
            label=f"{bt.strategy} (stitched out of sample)")
    if bt.benchmark is not None:
        growth = np.cumprod(1.0 + bt.benchmark.returns.to_numpy(dtype=np.float64))
        ax.plot(times, growth, color="#888888", label=f"{bt.benchmark.name} buy and hold")
    for start in naive_utc(wf.folds["test_start"])[1:]:
        ax.axvline(start, color="#cccccc", linewidth=0.8, linestyle=":")
    ax.set_ylabel("growth of 1")
    ax.set_title("Out-of-sample equity (dotted lines: fold boundaries)")
    ax.legend(loc="upper left")
    rows = [[_esc(label), fmt(bt.summary[key])] for key, label, fmt in _SUMMARY_ROWS
            if key in bt.summary and bt.summary[key] is not None]
    note = "" if bt.benchmark is not None else '<p class="muted">No benchmark was given.</p>'
    return (img_tag(fig, "stitched out-of-sample equity vs benchmark") + note
            + _table(["Metric (stitched out of sample)", "Value"], rows, table_id="summary-table"))


# -- fold table --------------------------------------------------------------------------------
def _oos_objective(wf: Any) -> list[float]:
    """The objective of each fold's slice of the stitched run (scored by the run's objective)."""
    if "oos_objective" in wf.folds.columns:
        return [float(v) for v in wf.folds["oos_objective"]]
    returns = wf.backtest.returns.to_numpy(dtype=np.float64)
    offset = wf.splits[0].test_start
    ppy = float(wf.backtest.summary["periods_per_year"])
    objective = wf.spec.search.objective
    return [objective.score(returns[f.test_start - offset : f.test_end - offset], ppy)
            for f in wf.splits]


def _fold_table(wf: Any) -> str:
    folds, names = wf.folds, _param_names(wf)
    fmt = _time_formatter(list(folds["train_start"]) + list(folds["test_end"]))
    objective = _esc(wf.spec.search.objective.name)
    # With the Sharpe objective the objective columns are the Sharpe columns: show them once.
    sharpe_is_objective = objective == "sharpe"
    metric_names = ["Sharpe (objective)"] if sharpe_is_objective else [objective, "Sharpe"]
    header = (["Fold", "Train", "Test"] + [_esc(n) for n in names]
              + [f"IS {m}" for m in metric_names] + ["IS ann. return"]
              + [f"OOS {m}" for m in metric_names]
              + ["OOS ann. return", "OOS total return", "OOS max DD", "Combinations (eligible)",
                 "PBO", "Note"])
    rows = []
    for (_, r), oos_obj in zip(folds.iterrows(), _oos_objective(wf), strict=True):
        is_metrics = [_ratio(r["is_objective"])] + ([] if sharpe_is_objective else [_ratio(r["is_sharpe"])])
        oos_metrics = [_ratio(oos_obj)] + ([] if sharpe_is_objective else [_ratio(r["oos_sharpe"])])
        rows.append(
            [_esc(r["fold"]),
             _esc(f"{fmt(r['train_start'])} to {fmt(r['train_end'])} ({r['train_bars']})"),
             _esc(f"{fmt(r['test_start'])} to {fmt(r['test_end'])} ({r['test_bars']})")]
            + [_esc(r[f"param_{n}"]) for n in names]
            + is_metrics + [_pct(r["is_annual_return"])] + oos_metrics
            + [_pct(r["oos_annual_return"]), _pct(r["oos_total_return"]),
               _pct(r["oos_max_drawdown"]), _esc(f"{r['n_combinations']} ({r['n_eligible']})"),
               _ratio(r["pbo"]), _esc(r.get("note", "") or "")]
        )
    caption = (
        '<p class="muted">Windows show first and last bar close times (inclusive) and bar counts. '
        "IS = the chosen parameters on the training window; OOS = the fold's slice of the "
        "stitched out-of-sample run. PBO per fold is computed on its training window.</p>"
    )
    return caption + _table(header, rows, left=3 + len(names), table_id="fold-table")


# -- chosen parameters over time ------------------------------------------------------------------
def _parameters_section(wf: Any) -> str:
    searched = _searched(wf)
    if not searched:
        return '<p class="muted">No parameter was searched: every fold used the same values.</p>'
    folds = wf.folds
    edges = np.append(naive_utc(folds["test_start"]), naive_utc(folds["test_end"].iloc[-1:]))
    fig = new_figure(11, 1.2 + 1.6 * len(searched))
    axes = fig.subplots(len(searched), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, searched, strict=True):
        levels, labels = plot_levels(folds[f"param_{name}"])
        ax.step(edges, np.append(levels, levels[-1]), where="post", color="#1f77b4")
        ax.plot(edges[:-1], levels, "o", color="#1f77b4", markersize=3)
        ax.set_ylabel(name)
        if labels is not None:
            ax.set_yticks(range(len(labels)), labels)
    axes[0].set_title("Chosen value per test window (each value holds from its fold's first test bar)")
    return img_tag(fig, "chosen parameters over time")


# -- in-sample vs out-of-sample ------------------------------------------------------------------
def _decay_section(wf: Any) -> str:
    folds = wf.folds
    x = np.arange(len(folds))
    fig = new_figure(11, 3.6)
    left, right = fig.subplots(1, 2)
    width = 0.4
    for ax, column, label, scale in ((left, "sharpe", "Sharpe (annualized)", 1.0),
                                     (right, "annual_return", "annualized return, %", 100.0)):
        ax.bar(x - width / 2, folds[f"is_{column}"].to_numpy(dtype=float) * scale, width,
               label="in sample", color="#9ecae1")
        ax.bar(x + width / 2, folds[f"oos_{column}"].to_numpy(dtype=float) * scale, width,
               label="out of sample", color="#1f77b4")
        ax.axhline(0.0, color="#444444", linewidth=0.8)
        ax.set_xticks(x[spaced_ticks(len(x), 12)], folds["fold"].to_numpy()[spaced_ticks(len(x), 12)])
        ax.set_xlabel("fold")
        ax.set_ylabel(label)
        ax.legend(loc="best")
    wfe = wf.statistics["walk_forward_efficiency"]
    left.set_title("Sharpe per fold: chosen parameters in sample vs out of sample")
    right.set_title(f"Annualized return per fold (walk-forward efficiency {_ratio(wfe)})")
    return img_tag(fig, "in-sample vs out-of-sample per fold") + (
        f'<p class="reading" id="decay-wfe">{_esc(wfe_reading(wfe))}</p>')


# -- parameter heatmaps ------------------------------------------------------------------------
def heatmap_folds(fold_numbers: Sequence[int], most: int = MAX_HEATMAP_FOLDS) -> list[int]:
    """The folds to draw: all of them, or ``most`` evenly spaced ones including first and last.

    Parameters
    ----------
    fold_numbers : sequence of int
        Fold numbers in time order.
    most : int
        Largest number of panels (at least 2).

    Returns
    -------
    list of int
        A subsequence of ``fold_numbers``.
    """
    numbers = list(fold_numbers)
    return [numbers[i] for i in spaced_ticks(len(numbers), most)]


def _objective_grid(trials: pd.DataFrame, names: Sequence[str], axes_values: Sequence[list]
                    ) -> tuple[np.ndarray, tuple[int, int] | None]:
    """One fold's in-sample objectives on the (row, column) grid, and the chosen cell."""
    lookup = [{v: i for i, v in enumerate(values)} for values in axes_values]
    grid = np.full((len(axes_values[0]), len(axes_values[1])), np.nan)
    rows = trials[f"param_{names[0]}"].map(lookup[0]).to_numpy(dtype=np.int64)
    cols = trials[f"param_{names[1]}"].map(lookup[1]).to_numpy(dtype=np.int64)
    grid[rows, cols] = trials["objective"].to_numpy(dtype=np.float64)
    chosen = np.flatnonzero(trials["chosen"].to_numpy(dtype=bool))
    cell = (int(rows[chosen[0]]), int(cols[chosen[0]])) if chosen.size else None
    return grid, cell


def _heatmap_section(wf: Any) -> str:
    searched, trials = _searched(wf), wf.trials
    if len(searched) != 2:
        return ('<p class="muted">Heatmaps are drawn for searches over exactly two parameters; '
                f"this run searched {len(searched)} ({_esc(', '.join(searched) or 'none')}).</p>")
    import matplotlib

    axes_values = [sorted(trials[f"param_{n}"].unique()) for n in searched]
    shown = heatmap_folds(wf.folds["fold"].tolist())
    # Viridis, grey where a combination was not evaluated, is invalid or has no score.
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e6e6e6")
    n_cols = min(5, len(shown))
    n_rows = math.ceil(len(shown) / n_cols)
    fig = new_figure(2.4 * n_cols, 2.3 * n_rows)
    grid_axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for k, ax in enumerate(grid_axes.flat):
        if k >= len(shown):
            ax.set_visible(False)
            continue
        grid, cell = _objective_grid(trials[trials["fold"] == shown[k]], searched, axes_values)
        draw_heatmap(ax, grid, cell, cmap)
        ax.set_title(f"fold {shown[k]}" + ("" if cell else " (choice off the grid)")
                     + f"\n{_range_label(grid)}", fontsize=8)
        heatmap_ticks(ax, axes_values, searched, k % n_cols == 0, k + n_cols >= len(shown))
    name = _esc(wf.spec.search.objective.name)
    caption = (
        f'<p class="muted">In-sample {name} of every evaluated combination, one panel per fold. '
        f"Colours are scaled per fold (yellow = the fold's highest {name}, range in each title) so "
        "the shape of each landscape shows: a chosen cell (star) on a broad plateau is more "
        "trustworthy than an isolated peak. Grey cells were not evaluated, are invalid or have an "
        f"undefined objective. Showing {len(shown)} of {len(wf.folds)} folds.</p>"
    )
    return caption + img_tag(fig, "in-sample objective heatmaps per fold")


def _range_label(grid: np.ndarray) -> str:
    finite = grid[np.isfinite(grid)]
    return f"{finite.min():.2f} to {finite.max():.2f}" if finite.size else "no defined score"
