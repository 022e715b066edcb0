"""Shared machinery of the walk-forward studies in this folder: run, read, write.

Each ``study_*.py`` script states its question, data and windows as a :class:`Study` and calls
:func:`run_study`; the reading of the result (notes) and the files written are the same for all.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

from framework import metrics
from framework.backtest import buy_and_hold
from framework.data.loading import load_bars
from framework.walkforward import SearchSpec, WalkForwardSpec, WindowSpec, walk_forward
from reports.tearsheet import write_tearsheet
from reports.walkforward import write_walkforward_report
from strategies import REGISTRY


@dataclass(frozen=True)
class Study:
    """One walk-forward study: strategy, symbols traded, benchmark, windows and executor."""

    strategy: str
    symbols: tuple[str, ...]
    universe: str
    windows: WindowSpec
    exposure_comment: str
    benchmark: str = "SPY"
    executor: str = "serial"
    workers: int | None = None


def run_study(study: Study, doc: str) -> None:
    """Parse ``--out``/``--data-dir``, run the walk-forward, write the files, print the notes."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/fw-study-{study.strategy}"))
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data/daily"))
    args = parser.parse_args()
    bars = load_bars(list(study.symbols), data_dir=args.data_dir)
    bench = bars if study.benchmark in bars.symbols else load_bars([study.benchmark], data_dir=args.data_dir)
    spec = WalkForwardSpec(windows=study.windows, search=SearchSpec(method="grid"),
                           executor=study.executor, workers=study.workers)
    wf = walk_forward(REGISTRY[study.strategy](), bars, spec=spec,
                      benchmark=buy_and_hold(bench, study.benchmark, bars.index))
    notes = study_notes(wf, study)
    write_outputs(args.out, wf, notes, study)
    print("\n".join(notes))
    print(f"\nwritten to {args.out}")


def study_notes(wf, study: Study) -> list[str]:
    """Plain-language reading of the out-of-sample result (numbers from framework.metrics)."""
    s, ppy = wf.backtest.summary, wf.backtest.summary["periods_per_year"]
    bench = wf.backtest.benchmark.returns
    b_cagr, b_mdd = metrics.cagr(bench, ppy), metrics.max_drawdown(bench)
    b_sharpe = metrics.sharpe(bench, ppy)
    st = wf.statistics
    chosen = wf.folds.filter(like="param_").drop_duplicates()
    lines = [
        f"# {study.strategy} walk-forward on {study.universe} vs {study.benchmark} "
        f"({study.windows.describe()})",
        f"out of sample {s['start'][:10]} .. {s['end'][:10]}, {st['n_folds']} folds, "
        f"{st['n_trials']} trials",
        f"strategy: CAGR {s['cagr']:.2%}, Sharpe {s['sharpe']:.2f}, max drawdown "
        f"{s['max_drawdown']:.2%}, exposure {s['exposure']:.0%}, {s['n_trades']} trades",
        f"{study.benchmark} buy and hold (same span): CAGR {b_cagr:.2%}, Sharpe {b_sharpe:.2f}, max drawdown "
        f"{b_mdd:.2%}",
        f"walk-forward efficiency {st['walk_forward_efficiency']:.2f}, deflated Sharpe "
        f"{st['deflated_sharpe']:.2f}, PBO {st['pbo']:.2f}",
        f"distinct parameter sets chosen: {len(chosen)}",
        "",
        "## Reading",
    ]
    lines.append(
        "Risk-adjusted: the strategy's out-of-sample Sharpe is "
        + ("above" if s["sharpe"] > b_sharpe else "not above")
        + f" buy and hold ({s['sharpe']:.2f} vs {b_sharpe:.2f})"
        + ("; the difference is under 0.1, so no meaningful edge either way."
           if abs(s["sharpe"] - b_sharpe) < 0.1 else ".")
    )
    lines.append(
        "Drawdown: "
        + ("shallower" if s["max_drawdown"] > b_mdd else "not shallower")
        + f" than buy and hold ({s['max_drawdown']:.1%} vs {b_mdd:.1%})."
    )
    lines.append(
        "Return: "
        + ("higher" if s["cagr"] > b_cagr else "lower")
        + f" CAGR than buy and hold ({s['cagr']:.2%} vs {b_cagr:.2%}); with exposure "
        f"{s['exposure']:.0%} {study.exposure_comment}"
    )
    lines.append(_overfitting_reading(st))
    return lines


def _overfitting_reading(st: dict) -> str:
    pbo, dsr = st["pbo"], st["deflated_sharpe"]
    parts = []
    if not math.isnan(pbo):
        if pbo < 0.4:
            parts.append("PBO below 0.4: in-sample winners tended to stay above the median out "
                         "of sample")
        elif pbo < 0.5:
            parts.append("PBO just below 0.5: the in-sample choice was barely better than a coin "
                         "flip out of sample")
        else:
            parts.append("PBO at or above 0.5: the in-sample choice was no better than a coin "
                         "flip out of sample (overfitting)")
    if not math.isnan(dsr):
        parts.append("deflated Sharpe above 0.95: the Sharpe survives the number of trials"
                     if dsr > 0.95 else "deflated Sharpe at or below 0.95: after correcting for "
                     "the trials, the Sharpe is not statistically convincing")
    return "Overfitting: " + "; ".join(parts) + "." if parts else "Overfitting: not measurable."


def write_outputs(out: Path, wf, notes: list[str], study: Study) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result = wf.backtest
    write_tearsheet(result.returns, result.benchmark.returns, out / "tearsheet.html",
                    title=f"{study.strategy} walk-forward out of sample ({study.universe})",
                    benchmark_title=f"{study.benchmark} buy and hold",
                    notes=["stitched out-of-sample folds", "fills at next open, default costs",
                           study.windows.describe()])
    write_walkforward_report(wf, out / "walkforward.html")
    wf.folds.to_csv(out / "folds.csv", index=False)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str))
    (out / "notes.md").write_text("\n".join(notes) + "\n")
