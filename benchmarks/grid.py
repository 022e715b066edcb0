"""W2: an SMA-cross grid of ~1,500 (fast, slow) pairs on one symbol.

fw: the moving average of each distinct window is computed once (``framework.indicators.sma``),
the ``sma_cross`` strategy's own ``target`` turns the stacked ``(n, k)`` fast/slow columns into
targets in one call, warm-up rows are zeroed per pair (as ``compute_target`` does), and one
``simulate_grid`` call runs every portfolio. Metrics: fw's walk-forward objective (Sharpe of each
column) vs vectorbt's ``Portfolio.sharpe_ratio()``. vectorbt: ``vbt.MA.run`` on the per-pair
window lists (it computes unique windows once), level signals, one ``from_signals`` over all
columns. backtrader: a sample of pairs, each its own ``Cerebro`` run, extrapolated linearly.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import (
    BenchSpec,
    Check,
    Report,
    Timing,
    describe_range,
    fw_costs,
    fw_engine,
    measure,
    relative_difference,
    timed_once,
)
from benchmarks.peers import (
    import_backtrader,
    import_vectorbt,
    series,
    shift_down,
    vbt_engine_note,
    vbt_portfolio_options,
    warmup_mask,
)
from framework.engine import GridResult, simulate_grid
from framework.indicators import sma
from framework.types import Bars
from framework.walkforward import resolve_objective
from strategies.sma_cross import SmaCross, SmaCrossParams

PERIODS_PER_YEAR = 252.0


def pair_arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """``(fast, slow)`` window arrays of the pairs, in grid order."""
    return (
        np.array([f for f, _ in pairs], dtype=np.int64),
        np.array([s for _, s in pairs], dtype=np.int64),
    )


def fw_grid_targets(bars: Bars, pairs: list[tuple[int, int]]) -> np.ndarray:
    """``(n, k)`` targets of ``sma_cross`` for every pair; features once per distinct window."""
    close = bars.close[:, 0]
    fast, slow = pair_arrays(pairs)
    averages = {int(w): sma(close, int(w)) for w in np.unique(np.concatenate([fast, slow]))}
    features = {
        "fast": np.column_stack([averages[int(w)] for w in fast]),
        "slow": np.column_stack([averages[int(w)] for w in slow]),
    }
    # the target stage reads only `short`; the windows live in the stacked features
    target = SmaCross().target(features, SmaCrossParams())
    target[warmup_mask(bars.n_bars, slow)] = 0.0
    return target


def fw_sharpes(returns: np.ndarray) -> np.ndarray:
    """Sharpe of each column with fw's walk-forward objective (what a search ranks by)."""
    return resolve_objective("sharpe").score_columns(returns, PERIODS_PER_YEAR)


def fw_end_to_end(bars: Bars, pairs: list[tuple[int, int]]) -> tuple[GridResult, np.ndarray]:
    """Targets, one ``simulate_grid`` call and the Sharpe of every pair."""
    grid = simulate_grid(bars, fw_grid_targets(bars, pairs), fw_engine(), fw_costs())
    return grid, fw_sharpes(grid.returns)


def vbt_grid_signals(
    vbt, bars: Bars, pairs: list[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Shifted level entries/exits ``(n, k)`` for every pair, from vectorbt's indicators."""
    close = series(bars, "close")
    fast, slow = pair_arrays(pairs)
    fast_ma = vbt.MA.run(close, list(fast), short_name="fast")
    slow_ma = vbt.MA.run(close, list(slow), short_name="slow")
    warm = warmup_mask(bars.n_bars, slow)
    entries = fast_ma.ma_above(slow_ma).to_numpy() & ~warm
    exits = fast_ma.ma_below(slow_ma).to_numpy() & ~warm
    return shift_down(entries, False), shift_down(exits, False)


def vbt_grid_portfolio(vbt, bars: Bars, entries: np.ndarray, exits: np.ndarray):
    """One ``from_signals`` over all pair columns, all-in at the open."""
    return vbt.Portfolio.from_signals(
        series(bars, "close"),
        entries,
        exits,
        price=series(bars, "open"),
        **vbt_portfolio_options(vbt),
    )


def vbt_end_to_end(vbt, bars: Bars, pairs: list[tuple[int, int]]):
    """Signals, one ``from_signals`` and ``sharpe_ratio()`` of every column."""
    portfolio = vbt_grid_portfolio(vbt, bars, *vbt_grid_signals(vbt, bars, pairs))
    return portfolio, portfolio.sharpe_ratio()


def run_grid(bars: Bars, spec: BenchSpec) -> Report:
    """Time W2 on ``bars`` (one symbol) and check every pair's final equity agrees."""
    vbt = import_vectorbt()
    pairs = spec.pairs()
    fast, slow = pair_arrays(pairs)
    title = (
        f"{bars.symbols[0]}, {bars.n_bars:,} bars, SMA grid of {len(pairs):,} pairs (fast "
        f"{describe_range(spec.fast_windows)}, slow {describe_range(spec.slow_windows)}, "
        f"fast < slow; {np.unique(np.concatenate([fast, slow])).size} distinct windows)"
    )
    report = Report("W2", title)
    reps, cap = spec.repeats, spec.max_seconds

    timing, targets = measure(lambda: fw_grid_targets(bars, pairs), reps, cap)
    report.add("fw", "signals/targets", timing, "sma once per window + sma_cross.target on (n, k)")
    timing, grid = measure(lambda: simulate_grid(bars, targets, fw_engine(), fw_costs()), reps, cap)
    report.add("fw", "simulation", timing, "one simulate_grid call (parallel over columns)")
    timing, fw_scores = measure(lambda: fw_sharpes(grid.returns), reps, cap)
    report.add("fw", "metrics", timing, "Sharpe per column (walk-forward objective)")
    timing, _ = measure(lambda: fw_end_to_end(bars, pairs), reps, cap)
    report.add("fw", "end to end", timing)

    timing, (entries, exits) = measure(lambda: vbt_grid_signals(vbt, bars, pairs), reps, cap)
    report.add("vectorbt", "signals/targets", timing, "vbt.MA.run x2 + ma_above/ma_below")
    timing, portfolio = measure(lambda: vbt_grid_portfolio(vbt, bars, entries, exits), reps, cap)
    report.add("vectorbt", "simulation", timing, "one Portfolio.from_signals over all columns")
    # replace() gives a fresh instance: vectorbt caches metrics per portfolio object
    timing, vbt_scores = measure(lambda: portfolio.replace().sharpe_ratio(), reps, cap)
    report.add("vectorbt", "metrics", timing, "Portfolio.sharpe_ratio() (uncached)")
    timing, _ = measure(lambda: vbt_end_to_end(vbt, bars, pairs), reps, cap)
    report.add("vectorbt", "end to end", timing, vbt_engine_note(vbt))

    _backtrader_sample(report, bars, pairs, spec)
    best_fw = int(np.nanargmax(fw_scores))
    best_vbt = int(np.nanargmax(np.asarray(vbt_scores, dtype=np.float64)))
    report.checks += [
        Check(
            f"final equity fw vs vectorbt, max over {len(pairs):,} pairs",
            relative_difference(portfolio.final_value().to_numpy(), grid.equity[-1]),
            1e-9,
        ),
        Check(
            "best pair by Sharpe differs between fw and vectorbt (0 = same pair)",
            float(best_fw != best_vbt),
            0.0,
        ),
    ]
    report.notes.append(
        f"best pair by Sharpe: fast={fast[best_fw]}, slow={slow[best_fw]} "
        f"(fw Sharpe {fw_scores[best_fw]:.3f}, 252 periods/year)"
    )
    for stage in ("simulation", "end to end"):
        report.goal("vectorbt", stage, 10.0)
    report.maybe_profile(spec, "fw end to end", lambda: fw_end_to_end(bars, pairs))
    return report


def _backtrader_sample(
    report: Report, bars: Bars, pairs: list[tuple[int, int]], spec: BenchSpec
) -> None:
    """Time a spread-out sample of pairs in backtrader, extrapolate, check against fw."""
    import_backtrader()
    from benchmarks import bt_strategies

    count = max(1, min(spec.backtrader_pairs, len(pairs)))
    picks = np.unique(np.linspace(0, len(pairs) - 1, count).round().astype(int))
    frame = bt_strategies.bt_frame(bars, 0)
    seconds, values = 0.0, []
    for c in picks:
        took, value = timed_once(lambda c=c: bt_strategies.run_sma_cross(frame, *pairs[c]))
        seconds += took
        values.append(value)
    per_pair = seconds / len(picks)
    report.add(
        "backtrader",
        "end to end",
        Timing(float("nan"), per_pair * len(pairs), len(picks)),
        f"{len(picks)} of {len(pairs):,} pairs timed ({seconds:.2f} s, "
        f"{per_pair * 1e3:.0f} ms/pair), scaled to all pairs",
        extrapolated=True,
    )
    whole = simulate_grid(
        bars,
        fw_grid_targets(bars, [pairs[c] for c in picks]),
        fw_engine(whole_shares=True),
        fw_costs(),
    )
    report.checks.append(
        Check(
            f"final equity fw vs backtrader (whole shares), {len(picks)} pairs",
            relative_difference(np.array(values), whole.equity[-1]),
            1e-9,
        )
    )
