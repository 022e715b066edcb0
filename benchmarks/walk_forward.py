"""W4: rolling walk-forward of the SMA grid, best pair by in-sample Sharpe, stitched out of sample.

fw: ``framework.walkforward.walk_forward`` with a grid search over the benchmark grid (a
``sma_cross`` subclass declaring it, :mod:`benchmarks.strategies`), timed with its default
``local`` executor (worker processes) and ``serial`` (one process). fw's run also computes its
overfitting statistics (PBO per fold, deflated Sharpe) and a per-trial table; the vectorbt version
does not, so the profile below says what those cost.

vectorbt: the same walk-forward as a plain loop: moving averages and level signals once over the
whole history (causal, so slicing them is legitimate), then per fold one ``from_signals`` over all
pairs on the training window, ``sharpe_ratio()``, best column; the chosen pairs' test-window
signals stitched into one ``from_signals`` run.
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import (
    BenchSpec,
    Check,
    Report,
    describe_range,
    fw_costs,
    fw_engine,
    measure,
    relative_difference,
)
from benchmarks.grid import pair_arrays
from benchmarks.peers import (
    import_vectorbt,
    series,
    shift_down,
    vbt_engine_note,
    vbt_portfolio_options,
    warmup_mask,
)
from benchmarks.strategies import (
    GRID_FAST,
    GRID_SLOW,
    QUICK_FAST,
    QUICK_SLOW,
    GridSmaCross,
    QuickSmaCross,
)
from framework.backtest import BacktestSpec
from framework.errors import FwError
from framework.types import Bars
from framework.walkforward import (
    SearchSpec,
    WalkForwardResult,
    WalkForwardSpec,
    WindowSpec,
    walk_forward,
)
from strategies.sma_cross import SmaCross

SERIAL = "walk-forward, 1 process"
NO_PBO = "walk-forward, 1 process, PBO skipped"
DEFAULT = "walk-forward, fw default executor"
STAGES = (SERIAL, NO_PBO, DEFAULT)


def benchmark_strategy(spec: BenchSpec) -> SmaCross:
    """The ``sma_cross`` subclass whose declared search space is ``spec``'s grid."""
    grids = {(GRID_FAST, GRID_SLOW): GridSmaCross, (QUICK_FAST, QUICK_SLOW): QuickSmaCross}
    cls = grids.get((tuple(spec.fast_windows), tuple(spec.slow_windows)))
    if cls is None:
        raise FwError(
            f"W4 has no strategy declaring the grid fast {describe_range(spec.fast_windows)}, "
            f"slow {describe_range(spec.slow_windows)}; expected the default or quick grid. "
            "Declare it in benchmarks/strategies.py or use the default windows."
        )
    return cls()


def rolling_folds(n_bars: int, train: int, test: int, step: int) -> list[tuple[int, int, int, int]]:
    """``(train_start, train_end, test_start, test_end)`` of rolling windows in bars."""
    folds, test_start = [], train
    while test_start < n_bars:
        folds.append((test_start - train, test_start, test_start, min(test_start + test, n_bars)))
        test_start += step
    return folds


def fw_walk_forward(
    bars: Bars, spec: BenchSpec, executor: str, pbo: bool = True
) -> WalkForwardResult:
    """fw's walk-forward; ``pbo=False`` asks for more CSCV blocks than any fold has bars, which
    is how fw skips the probability of backtest overfitting (to measure what it costs)."""
    windows = WindowSpec(train=spec.train, test=spec.test, step=spec.step)
    blocks = 16 if pbo else 2 * bars.n_bars
    wf_spec = WalkForwardSpec(
        windows=windows, search=SearchSpec(method="grid"), executor=executor, pbo_blocks=blocks
    )
    backtest = BacktestSpec(engine=fw_engine(), costs=fw_costs())
    return walk_forward(benchmark_strategy(spec), bars, None, wf_spec, backtest)


def vbt_walk_forward(vbt, bars: Bars, spec: BenchSpec) -> tuple[list[int], object]:
    """The plain-loop vectorbt walk-forward: chosen column per fold and the stitched portfolio."""
    pairs = spec.pairs()
    fast, slow = pair_arrays(pairs)
    close, open_ = series(bars, "close"), series(bars, "open")
    fast_ma = vbt.MA.run(close, list(fast), short_name="fast")
    slow_ma = vbt.MA.run(close, list(slow), short_name="slow")
    warm = warmup_mask(bars.n_bars, slow)
    above = fast_ma.ma_above(slow_ma).to_numpy() & ~warm
    below = fast_ma.ma_below(slow_ma).to_numpy() & ~warm
    options = vbt_portfolio_options(vbt)
    folds = rolling_folds(bars.n_bars, spec.train, spec.test, spec.step)
    chosen = []
    for train_start, train_end, _, _ in folds:
        rows = slice(train_start, train_end)
        portfolio = vbt.Portfolio.from_signals(
            close.iloc[rows],
            shift_down(above[rows], False),
            shift_down(below[rows], False),
            price=open_.iloc[rows],
            **options,
        )
        sharpe = np.asarray(portfolio.sharpe_ratio(), dtype=np.float64)
        chosen.append(int(np.argmax(np.where(np.isfinite(sharpe), sharpe, -np.inf))))
    span = slice(folds[0][2], folds[-1][3])
    entries = np.zeros(span.stop - span.start, dtype=bool)
    exits = np.zeros_like(entries)
    for (_, _, test_start, test_end), column in zip(folds, chosen, strict=True):
        local = slice(test_start - span.start, test_end - span.start)
        entries[local] = above[test_start:test_end, column]
        exits[local] = below[test_start:test_end, column]
    stitched = vbt.Portfolio.from_signals(
        close.iloc[span],
        shift_down(entries, False),
        shift_down(exits, False),
        price=open_.iloc[span],
        **options,
    )
    return chosen, stitched


def run_walk_forward(bars: Bars, spec: BenchSpec) -> Report:
    """Time W4 on ``bars`` (one symbol); check fold choices and stitched equity agree."""
    vbt = import_vectorbt()
    pairs = spec.pairs()
    folds = rolling_folds(bars.n_bars, spec.train, spec.test, spec.step)
    report = Report(
        "W4",
        f"{bars.symbols[0]}, {bars.n_bars:,} bars, rolling walk-forward train "
        f"{spec.train} / test {spec.test} / step {spec.step} ({len(folds)} folds) "
        f"x {len(pairs):,} SMA pairs, best by Sharpe, stitched out of sample",
    )
    reps, cap = spec.repeats, spec.max_seconds
    timing, result = measure(lambda: fw_walk_forward(bars, spec, "serial"), reps, cap)
    report.add("fw", SERIAL, timing, "executor='serial', grid search, PBO + DSR included")
    timing, _ = measure(lambda: fw_walk_forward(bars, spec, "serial", pbo=False), reps, cap)
    report.add("fw", NO_PBO, timing, "as above without the PBO statistic")
    timing, _ = measure(lambda: fw_walk_forward(bars, spec, "local"), reps, cap)
    report.add("fw", DEFAULT, timing, "executor='local' (worker processes, up to 2)")
    timing, (chosen, stitched) = measure(lambda: vbt_walk_forward(vbt, bars, spec), reps, cap)
    for stage in STAGES:
        report.add("vectorbt", stage, timing, vbt_engine_note(vbt) + ", plain loop, 1 process")

    fw_chosen = list(zip(result.folds["param_fast"], result.folds["param_slow"], strict=True))
    vbt_chosen = [pairs[c] for c in chosen]
    fw_bounds = [(f.train_start, f.train_end, f.test_start, f.test_end) for f in result.splits]
    report.checks += [
        Check(
            "fold windows differ between fw and the vectorbt loop (0 = same)",
            float(fw_bounds != folds),
            0.0,
        ),
        Check(
            "folds whose chosen pair differs (fw vs vectorbt)",
            float(sum(a != b for a, b in zip(fw_chosen, vbt_chosen, strict=True))),
            0.0,
        ),
        Check(
            "stitched out-of-sample final equity fw vs vectorbt",
            relative_difference(stitched.final_value(), result.backtest.sim.equity[-1]),
            1e-9,
        ),
    ]
    report.notes.append(
        "chosen (fast, slow) per fold: " + ", ".join(f"{int(a)}/{int(b)}" for a, b in fw_chosen)
    )
    for stage in (SERIAL, DEFAULT):
        report.goal("vectorbt", stage, 10.0)
    report.maybe_profile(
        spec,
        "fw walk_forward (serial)",
        lambda: fw_walk_forward(bars, spec, "serial"),
        "cumulative",
    )
    return report
