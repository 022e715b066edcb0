"""W1: one symbol, SMA cross 10/50, through fw, vectorbt and backtrader.

fw runs the registered ``sma_cross`` strategy (``compute_target``) and ``simulate``. vectorbt
computes its own moving averages (``vbt.MA``) and level signals (fast above / below slow, which
is what fw's latch holds), zeroes the warm-up rows fw zeroes, shifts them one bar and runs
``Portfolio.from_signals`` at the open. backtrader runs :class:`~benchmarks.bt_strategies.
SmaCrossBt`. Fractional shares for fw vs vectorbt; whole shares for the backtrader check.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import (
    BenchSpec,
    Check,
    Report,
    fw_costs,
    fw_engine,
    measure,
    relative_difference,
)
from benchmarks.peers import (
    import_backtrader,
    import_vectorbt,
    series,
    shift_down,
    vbt_engine_note,
    vbt_portfolio_options,
)
from framework.engine import simulate
from framework.strategy import compute_target
from framework.types import Bars
from strategies.sma_cross import SmaCross, SmaCrossParams

FAST, SLOW = 10, 50


def fw_run(bars: Bars, whole_shares: bool = False):
    """fw end to end: features and targets of ``sma_cross`` 10/50, then the engine."""
    target = compute_target(SmaCross(), bars, SmaCrossParams(fast=FAST, slow=SLOW))
    return simulate(bars, target, fw_engine(whole_shares), fw_costs())


def vbt_signals(
    vbt, bars: Bars, fast: int = FAST, slow: int = SLOW
) -> tuple[np.ndarray, np.ndarray]:
    """Entries/exits as vectorbt users write them, aligned with fw's timing (shifted one bar)."""
    close = series(bars, "close")
    fast_ma = vbt.MA.run(close, fast)
    slow_ma = vbt.MA.run(close, slow)
    entries = fast_ma.ma_above(slow_ma).to_numpy().copy()
    exits = fast_ma.ma_below(slow_ma).to_numpy().copy()
    entries[:slow] = exits[:slow] = False  # fw's warm-up: no decision before bar `slow`
    return shift_down(entries, False), shift_down(exits, False)


def vbt_simulate(vbt, bars: Bars, entries: np.ndarray, exits: np.ndarray, whole: bool = False):
    """``Portfolio.from_signals`` all-in at the open (whole shares with ``whole``)."""
    extra = {"size_granularity": 1.0} if whole else {}
    return vbt.Portfolio.from_signals(
        series(bars, "close"),
        entries,
        exits,
        price=series(bars, "open"),
        **vbt_portfolio_options(vbt),
        **extra,
    )


def run_single(bars: Bars, spec: BenchSpec) -> Report:
    """Time W1 on ``bars`` (one symbol) and check final equities agree."""
    vbt = import_vectorbt()
    import_backtrader()
    from benchmarks import bt_strategies

    report = Report("W1", f"{bars.symbols[0]}, {bars.n_bars:,} daily bars, SMA cross {FAST}/{SLOW}")
    strategy, params = SmaCross(), SmaCrossParams(fast=FAST, slow=SLOW)
    timing, target = measure(
        lambda: compute_target(strategy, bars, params), spec.repeats, spec.max_seconds
    )
    report.add("fw", "signals/targets", timing, "sma_cross features + target")
    timing, _ = measure(
        lambda: simulate(bars, target, fw_engine(), fw_costs()), spec.repeats, spec.max_seconds
    )
    report.add("fw", "simulation", timing, "simulate (fills and trades tables included)")
    timing, fw_result = measure(lambda: fw_run(bars), spec.repeats, spec.max_seconds)
    report.add("fw", "end to end", timing)

    timing, (entries, exits) = measure(
        lambda: vbt_signals(vbt, bars), spec.repeats, spec.max_seconds
    )
    report.add("vectorbt", "signals/targets", timing, "vbt.MA x2 + ma_above/ma_below")
    timing, _ = measure(
        lambda: vbt_simulate(vbt, bars, entries, exits), spec.repeats, spec.max_seconds
    )
    report.add("vectorbt", "simulation", timing, "Portfolio.from_signals")
    timing, portfolio = measure(
        lambda: vbt_simulate(vbt, bars, *vbt_signals(vbt, bars)), spec.repeats, spec.max_seconds
    )
    report.add("vectorbt", "end to end", timing, vbt_engine_note(vbt))

    frame = bt_strategies.bt_frame(bars, 0)
    timing, bt_value = measure(
        lambda: bt_strategies.run_sma_cross(frame, FAST, SLOW), spec.repeats, spec.max_seconds
    )
    report.add("backtrader", "end to end", timing, "Cerebro(stdstats=False), whole shares")

    fw_whole = fw_run(bars, whole_shares=True)
    vbt_whole = vbt_simulate(vbt, bars, entries, exits, whole=True)
    report.checks += [
        Check(
            "final equity fw vs vectorbt (fractional shares)",
            relative_difference(portfolio.final_value(), fw_result.equity[-1]),
            1e-9,
        ),
        Check(
            "equity curve fw vs vectorbt, max over bars",
            relative_difference(portfolio.value().to_numpy(), fw_result.equity),
            1e-9,
        ),
        Check(
            "final equity fw vs backtrader (whole shares)",
            relative_difference(bt_value, fw_whole.equity[-1]),
            1e-9,
        ),
        Check(
            "final equity fw vs vectorbt (whole shares)",
            relative_difference(vbt_whole.final_value(), fw_whole.equity[-1]),
            1e-9,
        ),
    ]
    report.notes.append(
        f"fw fills: {len(fw_result.fills)}; final equity {fw_result.equity[-1]:,.2f}"
    )
    report.goal("backtrader", "end to end", 100.0)
    report.maybe_profile(spec, "fw end to end", lambda: [fw_run(bars) for _ in range(20)])
    return report
