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
from framework.engine import SimResult, simulate
from framework.strategy import compute_target
from framework.types import Bars
from strategies.sma_cross import SmaCross, SmaCrossParams

FAST, SLOW = 10, 50
TOLERANCE = 1e-9  # relative; agreement is ~1e-14 when the rules match


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
    report = Report("W1", f"{bars.symbols[0]}, {bars.n_bars:,} daily bars, SMA cross {FAST}/{SLOW}")
    fw_result = _time_fw(report, bars, spec)
    entries, exits, portfolio = _time_vectorbt(report, vbt, bars, spec)
    bt_value = _time_backtrader(report, bars, spec)
    fw_whole = fw_run(bars, whole_shares=True)
    vbt_whole = vbt_simulate(vbt, bars, entries, exits, whole=True)
    pairs = [
        (
            "final equity fw vs vectorbt (fractional shares)",
            portfolio.final_value(),
            fw_result.equity[-1],
        ),
        (
            "equity curve fw vs vectorbt, max over bars",
            portfolio.value().to_numpy(),
            fw_result.equity,
        ),
        ("final equity fw vs backtrader (whole shares)", bt_value, fw_whole.equity[-1]),
        (
            "final equity fw vs vectorbt (whole shares)",
            vbt_whole.final_value(),
            fw_whole.equity[-1],
        ),
    ]
    report.checks += [Check(what, relative_difference(a, b), TOLERANCE) for what, a, b in pairs]
    report.notes.append(
        f"fw fills: {len(fw_result.fills)}; final equity {fw_result.equity[-1]:,.2f}"
    )
    report.goal("backtrader", "end to end", 100.0)
    report.maybe_profile(spec, "fw end to end x20", lambda: [fw_run(bars) for _ in range(20)])
    return report


def _time_fw(report: Report, bars: Bars, spec: BenchSpec) -> SimResult:
    strategy, params = SmaCross(), SmaCrossParams(fast=FAST, slow=SLOW)
    note = "sma_cross features + target"
    target = report.run(
        "fw", "signals/targets", lambda: compute_target(strategy, bars, params), spec, note
    )
    note = "simulate (fills and trades tables included)"
    report.run(
        "fw", "simulation", lambda: simulate(bars, target, fw_engine(), fw_costs()), spec, note
    )
    return report.run("fw", "end to end", lambda: fw_run(bars), spec)


def _time_vectorbt(report: Report, vbt, bars: Bars, spec: BenchSpec) -> tuple:
    note = "vbt.MA x2 + ma_above/ma_below"
    entries, exits = report.run(
        "vectorbt", "signals/targets", lambda: vbt_signals(vbt, bars), spec, note
    )
    simulation = lambda: vbt_simulate(vbt, bars, entries, exits)  # noqa: E731
    report.run("vectorbt", "simulation", simulation, spec, "Portfolio.from_signals")
    end_to_end = lambda: vbt_simulate(vbt, bars, *vbt_signals(vbt, bars))  # noqa: E731
    portfolio = report.run("vectorbt", "end to end", end_to_end, spec, vbt_engine_note(vbt))
    return entries, exits, portfolio


def _time_backtrader(report: Report, bars: Bars, spec: BenchSpec) -> float:
    from benchmarks import bt_strategies

    frame = bt_strategies.bt_frame(bars, 0)
    note = "Cerebro(stdstats=False), whole shares"
    run = lambda: bt_strategies.run_sma_cross(frame, FAST, SLOW)  # noqa: E731
    return report.run("backtrader", "end to end", run, spec, note)
