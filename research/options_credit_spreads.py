"""Selling SPY credit spreads / iron condors on a synthetic chain, 2007 onwards, vs buy-and-hold.

Question: how does the issue-#10 strategy (sell 30-45 DTE 0.20-delta spreads when IV rank >= 0.5,
take profit at 50 % of the credit, stop at 2x the credit, close at 21 DTE, at most 3 open, 2 % of
equity at risk per position) do on SPY since 2007, next to holding SPY?

Data (real): ``<data-dir>/daily_unadjusted/SPY.csv.gz`` closes as traded (strikes live on that
scale; the file ends 2025-09-25, so the run does too), ``daily/VIX.csv.gz`` for the chain's vol
level and IV rank, ``daily/SPY.csv.gz`` (total-return adjusted) for the buy-and-hold benchmark.
The dividend yield fed to the option model is SPY's trailing 252-session yield, measured from the
``adj_close / close`` ratio of ``daily_unadjusted`` (causal: it uses the past year only). The
rate is 0 (no rate history in the data set), and cash earns nothing: the strategy is compared
with a benchmark that keeps its dividends, so the gap is if anything overstated against it.

Options are priced by ``framework.options.synthetic`` (fit on one 2025 SPY snapshot); every
modelling choice of the backtest is printed from ``result.assumptions``. The numbers are a
model's, not a record of fills, and no parameter here was tuned on this data.

Run: ``.venv/bin/python -m research.options_credit_spreads --data-dir ../shared/data``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from framework.metrics import cagr, max_drawdown, sharpe
from framework.options.backtest import CreditSpreadSpec, prepare_market, run_options_backtest
from framework.options.synthetic import DEFAULT_SPEC

VARIANTS = {
    "bull_put (defaults)": CreditSpreadSpec(),
    "bear_call (defaults)": CreditSpreadSpec(kind="bear_call"),
    "iron_condor (defaults)": CreditSpreadSpec(kind="iron_condor"),
    "bull_put, no IV-rank gate": CreditSpreadSpec(iv_rank_min=0.0),
    "iron_condor, no IV-rank gate": CreditSpreadSpec(kind="iron_condor", iv_rank_min=0.0),
}


def read(data_dir: Path, folder: str, symbol: str) -> pd.DataFrame:
    return pd.read_csv(data_dir / folder / f"{symbol}.csv.gz", index_col="date", parse_dates=True)


def trailing_dividend_yield(raw: pd.DataFrame, sessions: int = 252) -> pd.Series:
    """Continuous trailing yield from the growth of the dividend factor adj_close / close."""
    factor = raw["adj_close"] / raw["close"]
    years = sessions / 252.0
    return (np.log(factor / factor.shift(sessions)) / years).dropna().clip(lower=0.0)


def row(name: str, returns: pd.Series, extra: str = "") -> str:
    return (f"  {name:30s} {cagr(returns, 252):7.2%} {sharpe(returns, 252):7.2f} "
            f"{max_drawdown(returns):8.2%} {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--start", default="2007-01-01")
    parser.add_argument("--end", default=None)
    args = parser.parse_args()

    raw = read(args.data_dir, "daily_unadjusted", "SPY")
    vix = read(args.data_dir, "daily", "VIX")["close"]
    adjusted = read(args.data_dir, "daily", "SPY")["close"]
    div = trailing_dividend_yield(raw)
    began = time.perf_counter()
    market = prepare_market(raw["close"].rename("SPY"), vix, DEFAULT_SPEC, rate=0.0, div=div)
    print(f"market prepared in {time.perf_counter() - began:.2f} s "
          f"({len(market.days)} sessions, trailing dividend yield median {div.median():.2%})")

    results = {}
    for name, spec in VARIANTS.items():
        began = time.perf_counter()
        results[name] = run_options_backtest(market, spec, 100_000.0, args.start, args.end)
        print(f"  {name:30s} ran in {time.perf_counter() - began:.2f} s")

    first = next(iter(results.values()))
    window = first.equity.index
    bench = adjusted.reindex(window).pct_change().fillna(0.0)
    print(f"\nwindow {first.assumptions['window']} ({len(window)} sessions)")
    print(f"  {'':30s} {'CAGR':>7s} {'Sharpe':>7s} {'max DD':>8s} {'win':>6s} {'trades':>6s} "
          f"{'days':>5s} {'at risk':>7s} {'costs $':>8s}")
    print(row("SPY buy-and-hold (total ret.)", bench))
    for name, result in results.items():
        s = result.summary
        costs = result.costs["commissions"] + result.costs["spread_paid"]
        extra = (f"{s['win_rate']:6.1%} {s['n_trades']:6d} {s['avg_days_held']:5.1f} "
                 f"{s['exposure']:7.2%} {costs:8.0f}")
        print(row(name, result.returns, extra))

    # diagnostic: the same runs on a chain without costs (zero spread and commission) tell how
    # much of the result is the cost of trading and how much the model's premium itself
    free = DEFAULT_SPEC.with_overrides({"spread_base": 0.0, "spread_frac": 0.0,
                                        "spread_moneyness": 0.0, "tick": 1e-6,
                                        "round_to_tick": False, "commission_per_contract": 0.0,
                                        "commission_min": 0.0})
    free_market = prepare_market(raw["close"].rename("SPY"), vix, free, rate=0.0, div=div)
    print("  without costs (mid fills, no commission) - a diagnostic, not a tradable result:")
    for name, spec in VARIANTS.items():
        result = run_options_backtest(free_market, spec, 100_000.0, args.start, args.end)
        s = result.summary
        print(row(name, result.returns, f"{s['win_rate']:6.1%} {s['n_trades']:6d}"))

    print("\nexit reasons:")
    for name, result in results.items():
        counts = result.trades["exit_reason"].value_counts().to_dict()
        print(f"  {name:30s} {counts}")
    print("\nP&L by year ($, defaults bull_put):")
    trades = first.trades
    by_year = trades.groupby(trades["exit_date"].dt.year)["pnl"].agg(["count", "sum"])
    print("  " + "  ".join(f"{y}: {int(r['sum']):+d} ({int(r['count'])})"
                           for y, r in by_year.iterrows()))
    worst = trades.nsmallest(3, "pnl")[["entry_date", "exit_date", "legs", "pnl", "exit_reason"]]
    print("\nworst three trades (defaults bull_put):")
    print(worst.to_string(index=False))
    print("\nassumptions:")
    for key, value in first.assumptions.items():
        if key not in ("chain_spec", "strategy"):
            print(f"  {key}: {value}")
    print(f"  strategy: {first.assumptions['strategy']}")


if __name__ == "__main__":
    main()
