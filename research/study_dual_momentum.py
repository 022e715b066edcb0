"""Study: does dual momentum sector rotation beat SPY out of sample?

Walk-forward optimization of ``dual_momentum`` on the nine SPDR sector ETFs (XLB XLE XLF XLI XLK
XLP XLU XLV XLY, daily bars from ``/work/shared/data/daily``), benchmarked against SPY:
rolling 5-year in-sample windows, 2-year out-of-sample windows, grid search on the Sharpe ratio,
next-open fills and default costs. Writes into ``--out`` (default
``/tmp/fw-study-vol_target_trend``): ``tearsheet.html`` (stitched out-of-sample vs SPY buy and
hold), ``walkforward.html``, ``folds.csv``, ``summary.json`` and ``notes.md``; prints the notes.

Run: ``.venv/bin/python research/study_vol_target_trend.py [--out DIR] [--data-dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from framework import metrics
from framework.backtest import buy_and_hold
from framework.data.loading import load_bars
from framework.walkforward import SearchSpec, WalkForwardSpec, WindowSpec, walk_forward
from reports.tearsheet import write_tearsheet
from reports.walkforward import write_walkforward_report
from strategies import REGISTRY
from strategies.dual_momentum import SECTOR_ETFS

STRATEGY = "dual_momentum"
SYMBOL = "SPY"  # the benchmark
WINDOWS = WindowSpec(train="5y", test="2y")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/fw-study-{STRATEGY}"))
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data/daily"))
    args = parser.parse_args()
    bars = load_bars(list(SECTOR_ETFS), data_dir=args.data_dir)
    spy = load_bars([SYMBOL], data_dir=args.data_dir)
    strategy = REGISTRY[STRATEGY]()
    # two local worker processes: a universe grid simulates every candidate separately
    spec = WalkForwardSpec(windows=WINDOWS, search=SearchSpec(method="grid"), executor="local",
                           workers=2)
    wf = walk_forward(strategy, bars, spec=spec,
                      benchmark=buy_and_hold(spy, SYMBOL, bars.index))
    notes = study_notes(wf)
    write_outputs(args.out, wf, notes)
    print("\n".join(notes))
    print(f"\nwritten to {args.out}")


def study_notes(wf) -> list[str]:
    """Plain-language reading of the out-of-sample result (numbers from framework.metrics)."""
    s, ppy = wf.backtest.summary, wf.backtest.summary["periods_per_year"]
    bench = wf.backtest.benchmark.returns
    b_cagr, b_mdd = metrics.cagr(bench, ppy), metrics.max_drawdown(bench)
    b_sharpe = metrics.sharpe(bench, ppy)
    st = wf.statistics
    chosen = wf.folds.filter(like="param_").drop_duplicates()
    lines = [
        f"# {STRATEGY} walk-forward on the SPDR sector ETFs vs {SYMBOL} ({WINDOWS.describe()})",
        f"out of sample {s['start'][:10]} .. {s['end'][:10]}, {st['n_folds']} folds, "
        f"{st['n_trials']} trials",
        f"strategy: CAGR {s['cagr']:.2%}, Sharpe {s['sharpe']:.2f}, max drawdown "
        f"{s['max_drawdown']:.2%}, exposure {s['exposure']:.0%}, {s['n_trades']} trades",
        f"SPY buy and hold (same span): CAGR {b_cagr:.2%}, Sharpe {b_sharpe:.2f}, max drawdown "
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
        f"{s['exposure']:.0%} the absolute-momentum filter rarely moved the book to cash."
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


def write_outputs(out: Path, wf, notes: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result = wf.backtest
    write_tearsheet(result.returns, result.benchmark.returns, out / "tearsheet.html",
                    title=f"{STRATEGY} walk-forward out of sample (sector ETFs)",
                    benchmark_title=f"{SYMBOL} buy and hold",
                    notes=["stitched out-of-sample folds", "fills at next open, default costs",
                           WINDOWS.describe()])
    write_walkforward_report(wf, out / "walkforward.html")
    wf.folds.to_csv(out / "folds.csv", index=False)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=str))
    (out / "notes.md").write_text("\n".join(notes) + "\n")


if __name__ == "__main__":
    main()
