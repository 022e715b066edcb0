"""Smoke test of the benchmark code paths on a few hundred synthetic bars.

Every workload runs with quick settings and must report fw and its peers agreeing on final
equity; no timing is asserted (performance is measured by ``python -m benchmarks.run``, never in
tests). A known-bad comparison (vectorbt without the one-bar shift) must be caught.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.common import (
    BenchSpec,
    Report,
    describe_range,
    load_symbol,
    load_universe,
    relative_difference,
)
from benchmarks.run import main, selected
from benchmarks.strategies import QUICK_FAST, QUICK_SLOW
from framework.errors import DataError, FwError
from framework.walkforward import WindowSpec, make_folds
from tests.barsgen import make_bars

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> BenchSpec:
    return BenchSpec(
        data_dir=tmp_path_factory.mktemp("no_data"),
        repeats=1,
        max_seconds=1.0,
        fast_windows=QUICK_FAST,
        slow_windows=QUICK_SLOW,
        backtrader_pairs=2,
        top_n=3,
        backtrader_symbols=4,
        train=120,
        test=60,
        step=60,
        cold_repeats=1,
        profile=False,
    )


def assert_agrees(report: Report, peers: set[str]) -> None:
    """Every check passed, and fw plus each peer has at least one timed row."""
    failed = [(c.what, c.value) for c in report.checks if not c.passed]
    assert not failed, failed
    assert report.checks
    engines = {row.engine for row in report.rows}
    assert {"fw", *peers} <= engines
    assert all(row.timing.best > 0 for row in report.rows)


def test_single_symbol_agrees_with_vectorbt_and_backtrader(spec: BenchSpec) -> None:
    from benchmarks.single import run_single

    report = run_single(make_bars(n=400, seed=1), spec)
    assert_agrees(report, {"vectorbt", "backtrader"})
    assert len(report.checks) == 4
    assert [g.description for g in report.goals] == [
        "fw >= 100x faster than backtrader (end to end)"
    ]


def test_grid_agrees_on_every_pair(spec: BenchSpec) -> None:
    from benchmarks.grid import fw_grid_targets, run_grid

    bars = make_bars(n=300, seed=2)
    report = run_grid(bars, spec)
    assert_agrees(report, {"vectorbt", "backtrader"})
    backtrader = [r for r in report.rows if r.engine == "backtrader"]
    assert backtrader and all(r.extrapolated for r in backtrader)
    # grid targets equal the strategy's own compute_target, pair by pair
    from framework.strategy import compute_target
    from strategies.sma_cross import SmaCross, SmaCrossParams

    targets = fw_grid_targets(bars, spec.pairs())
    for c in (0, len(spec.pairs()) - 1):
        fast, slow = spec.pairs()[c]
        single = compute_target(SmaCross(), bars, SmaCrossParams(fast=fast, slow=slow))
        np.testing.assert_array_equal(targets[:, c], single[:, 0])


def test_universe_agrees_with_shared_cash(spec: BenchSpec) -> None:
    from benchmarks.universe import run_universe

    report = run_universe(make_bars(n=400, m=8, seed=3), spec)
    assert_agrees(report, {"vectorbt", "backtrader"})


def test_walk_forward_agrees_on_choices_and_stitched_equity(spec: BenchSpec) -> None:
    from benchmarks.walk_forward import run_walk_forward

    report = run_walk_forward(make_bars(n=360, seed=4), spec)
    assert_agrees(report, {"vectorbt"})
    assert any("chosen pair differs" in c.what for c in report.checks)


def test_unshifted_vectorbt_signals_are_caught() -> None:
    """Known-bad: vectorbt filling at the signal bar must not pass the equity check."""
    from benchmarks.peers import import_vectorbt
    from benchmarks.single import fw_run, vbt_signals, vbt_simulate

    vbt = import_vectorbt()
    bars = make_bars(n=400, seed=5)
    entries, exits = vbt_signals(vbt, bars)
    unshifted = vbt_simulate(vbt, bars, np.append(entries[1:], False), np.append(exits[1:], False))
    good = vbt_simulate(vbt, bars, entries, exits)
    fw_equity = fw_run(bars).equity[-1]
    assert relative_difference(good.final_value(), fw_equity) <= 1e-9
    assert relative_difference(unshifted.final_value(), fw_equity) > 1e-6


def test_cold_start_runs_the_cli(spec: BenchSpec, tmp_path: Path) -> None:
    from benchmarks.cold_start import backtest_arguments, fw_command, run_process

    daily = tmp_path / "daily"
    daily.mkdir()
    bars = make_bars(n=300, seed=6)
    frame = pd.DataFrame(
        {
            "date": bars.index.strftime("%Y-%m-%d"),
            "open": bars.open[:, 0],
            "high": bars.high[:, 0],
            "low": bars.low[:, 0],
            "close": bars.close[:, 0],
            "adj_close": bars.close[:, 0],
            "volume": bars.volume[:, 0],
        }
    )
    frame.to_csv(daily / "SPY.csv.gz", index=False)
    local = replace(spec, data_dir=tmp_path)
    command = [*fw_command(), *backtest_arguments(local, tmp_path / "out", tearsheet=False)]
    assert run_process(command, tmp_path / "home") > 0
    assert (tmp_path / "out" / "summary.json").is_file()


def test_missing_data_names_the_folder_and_the_fix(spec: BenchSpec) -> None:
    with pytest.raises(DataError, match="--data-dir"):
        load_symbol(spec)
    with pytest.raises(DataError, match=str(spec.data_dir / "nowhere")):
        load_universe(spec.data_dir / "nowhere")


def test_workload_selection() -> None:
    assert selected("w2, W1") == ["W1", "W2"]
    with pytest.raises(FwError, match="W9"):
        selected("W1,W9")
    assert main(["--only", "W9"]) == 2


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(50, 400),
    train=st.integers(10, 120),
    test=st.integers(5, 60),
    extra=st.integers(0, 30),
)
def test_rolling_folds_match_fw_splits(n: int, train: int, test: int, extra: int) -> None:
    from benchmarks.walk_forward import rolling_folds

    if train + test > n:
        return
    index = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC")
    folds = make_folds(index, WindowSpec(train=train, test=test, step=test + extra))
    expected = [(f.train_start, f.train_end, f.test_start, f.test_end) for f in folds]
    assert rolling_folds(n, train, test, test + extra) == expected


def test_describe_range_and_relative_difference() -> None:
    assert describe_range(tuple(range(2, 52))) == "2..51"
    assert describe_range(tuple(range(20, 330, 10))) == "20..320 step 10"
    assert describe_range((3, 5, 10)) == "3, 5, 10"
    assert relative_difference(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_difference(1.01, 1.0) == pytest.approx(0.01)
    with pytest.raises(DataError):
        relative_difference(np.ones(2), np.ones(3))
