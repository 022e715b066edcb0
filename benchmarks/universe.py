"""W3: a universe of ~480 symbols x ~6,000 daily bars with shared cash.

Strategy: the registered ``momentum`` strategy (top-N by trailing return, equal weight), fully
rebalanced at the first bar of each month. Its weights are scaled to ``gross`` (default 0.99)
and kept only on rebalance rows (NaN = "no decision" elsewhere), so that

- fw ``simulate`` with ``rebalance="every_bar"`` re-sizes every asset on those rows only, and
- vectorbt ``from_orders(size_type="targetpercent", cash_sharing=True, group_by=True,
  call_seq="auto")`` gets the same weights, shifted one bar, at the open.

The 1% cash buffer keeps every rebalance affordable after commissions, so neither engine has to
cut a buy; they differ on purpose there (fw scales all buys by one factor, vectorbt cuts the
last buy of its call sequence), which would make the equity comparison meaningless.
backtrader runs the same weights on a subset of full-history symbols (extrapolated linearly).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.common import (
    BenchSpec,
    Check,
    Report,
    Timing,
    full_history_symbols,
    fw_costs,
    fw_engine,
    measure,
    relative_difference,
    timed_once,
)
from benchmarks.peers import (
    import_backtrader,
    import_vectorbt,
    shift_down,
    vbt_engine_note,
    vbt_portfolio_options,
)
from framework.engine import SimResult, simulate
from framework.strategy import compute_features, compute_target
from framework.types import Bars
from strategies.momentum import CrossSectionalMomentum, MomentumParams

LOOKBACK, SKIP = 126, 21


def fw_weights(bars: Bars, top_n: int, gross: float) -> np.ndarray:
    """Momentum weights x ``gross`` on rebalance rows, NaN (no decision) on the others."""
    strategy = CrossSectionalMomentum()
    params = MomentumParams(lookback=LOOKBACK, skip=SKIP, top_n=top_n)
    weights = compute_target(strategy, bars, params)
    rebalance = compute_features(strategy, bars, params)["rebalance"] != 0
    return np.where(rebalance[:, None], gross * weights, np.nan)


def fw_simulate(bars: Bars, weights: np.ndarray, whole_shares: bool = False) -> SimResult:
    """fw's engine re-sizing every asset with a weight on the non-NaN rows only."""
    return simulate(bars, weights, fw_engine(whole_shares, rebalance="every_bar"), fw_costs())


def vbt_orders(bars: Bars, weights: np.ndarray) -> pd.DataFrame:
    """The weights as vectorbt target-percent orders at the next bar (NaN where no open)."""
    size = shift_down(weights, np.nan)
    size[np.isnan(bars.open)] = np.nan
    return pd.DataFrame(size, index=bars.index, columns=list(bars.symbols))


def vbt_simulate(vbt, bars: Bars, size: pd.DataFrame, close: pd.DataFrame, open_: pd.DataFrame):
    """Shared-cash ``from_orders`` of target percents at the open, sells first (auto order)."""
    return vbt.Portfolio.from_orders(
        close,
        size,
        size_type="targetpercent",
        direction="longonly",
        price=open_,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        **vbt_portfolio_options(vbt, "from_orders"),
    )


def run_universe(bars: Bars, spec: BenchSpec) -> Report:
    """Time W3 on ``bars`` (a universe) and check the shared-cash equity agrees."""
    vbt = import_vectorbt()
    top_n = min(spec.top_n, bars.n_assets)
    report = Report(
        "W3",
        f"{bars.n_assets} symbols x {bars.n_bars:,} daily bars, momentum "
        f"{LOOKBACK}/{SKIP} top {top_n} equal weight x {spec.gross:g}, monthly "
        "full rebalance, shared cash",
    )
    reps, cap = spec.repeats, spec.max_seconds
    timing, weights = measure(lambda: fw_weights(bars, top_n, spec.gross), reps, cap)
    report.add("fw", "signals/targets", timing, "momentum compute_target + rebalance rows")
    timing, result = measure(lambda: fw_simulate(bars, weights), reps, cap)
    report.add("fw", "simulation", timing, "simulate, rebalance='every_bar' on non-NaN rows")
    timing, _ = measure(lambda: fw_simulate(bars, fw_weights(bars, top_n, spec.gross)), reps, cap)
    report.add("fw", "end to end", timing)

    close, open_ = bars.frame("close"), bars.frame("open")
    timing, size = measure(lambda: vbt_orders(bars, weights), reps, cap)
    report.add("vectorbt", "order prep", timing, "fw's weights shifted into an order frame")
    timing, portfolio = measure(lambda: vbt_simulate(vbt, bars, size, close, open_), reps, cap)
    report.add("vectorbt", "simulation", timing, "from_orders targetpercent, cash_sharing")
    timing, _ = measure(
        lambda: vbt_simulate(vbt, bars, vbt_orders(bars, weights), close, open_), reps, cap
    )
    report.add(
        "vectorbt", "end to end", timing, vbt_engine_note(vbt) + "; momentum weights from fw"
    )

    _backtrader_subset(report, bars, spec)
    report.checks += [
        Check(
            "final equity fw vs vectorbt",
            relative_difference(portfolio.final_value(), result.equity[-1]),
            1e-9,
        ),
        Check(
            "equity curve fw vs vectorbt, max over bars",
            relative_difference(portfolio.value().to_numpy(), result.equity),
            1e-9,
        ),
    ]
    report.notes.append(f"fw fills: {len(result.fills):,}; final equity {result.equity[-1]:,.2f}")
    for stage in ("simulation", "end to end"):
        report.goal("vectorbt", stage, 10.0)
    report.maybe_profile(
        spec, "fw end to end", lambda: fw_simulate(bars, fw_weights(bars, top_n, spec.gross))
    )
    return report


def _backtrader_subset(report: Report, bars: Bars, spec: BenchSpec) -> None:
    """Time backtrader on a full-history subset, extrapolate by symbol count, check vs fw."""
    import_backtrader()
    from benchmarks import bt_strategies

    symbols = full_history_symbols(bars, min(spec.backtrader_symbols, bars.n_assets))
    subset = bars.select(symbols)
    top_n = max(1, min(5, len(symbols) // 4))
    weights = fw_weights(subset, top_n, spec.gross)
    frames = [bt_strategies.bt_frame(subset, j) for j in range(subset.n_assets)]
    took, value = timed_once(lambda: bt_strategies.run_target_weights(frames, weights))
    scale = bars.n_assets / subset.n_assets
    report.add(
        "backtrader",
        "simulation",
        Timing(float("nan"), took * scale, 1),
        f"{subset.n_assets} symbols timed ({took:.2f} s), x {scale:.1f} for "
        f"{bars.n_assets} symbols",
        extrapolated=True,
    )
    fw_whole = fw_simulate(subset, weights, whole_shares=True)
    report.checks.append(
        Check(
            f"final equity fw vs backtrader (whole shares), {subset.n_assets} symbols, top {top_n}",
            relative_difference(value, fw_whole.equity[-1]),
            1e-9,
        )
    )
