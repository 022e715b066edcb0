"""walk_forward end to end: stitching, executors, learned strategies, the command and its files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from framework import metrics
from framework.backtest import BacktestSpec, buy_and_hold, run_backtest
from framework.clirun import BacktestRequest, write_outputs
from framework.errors import DataError, FwError, ParameterError
from framework.stepper import Stepper
from framework.strategy import compute_target
from framework.walkforward import (
    SearchSpec,
    WalkForwardSpec,
    WindowSpec,
    load_schedule,
    walk_forward,
)
from framework.walkforward.command import run_walk_forward_command, spec_from_options
from framework.walkforward.executor import run_tasks
from framework.walkforward.stats import probability_of_backtest_overfitting
from tests.barsgen import make_bars
from tests.framework.walkforward.strategies_for_tests import (
    USER_FILE_SOURCE,
    Fitted,
    FittedParams,
    SmallCross,
    SmallCrossParams,
)

SPEC = WalkForwardSpec(windows=WindowSpec(train=120, test=60), executor="serial")


@pytest.fixture(scope="module")
def bars():
    return make_bars(n=420, seed=13)


@pytest.fixture(scope="module")
def serial_run(bars):
    return walk_forward(
        SmallCross(), bars, None, SPEC, BacktestSpec(), buy_and_hold(bars, "S0", bars.index)
    )


def test_stitched_targets_are_each_folds_choice_computed_up_to_its_test_end(bars, serial_run):
    wf = serial_run
    assert [(f.test_start, f.test_end) for f in wf.splits] == [
        (120, 180),
        (180, 240),
        (240, 300),
        (300, 360),
        (360, 420),
    ]
    target = wf.backtest.target
    assert target.shape == (300, 1)
    for fold, entry in zip(wf.splits, wf.schedule, strict=True):
        expected = compute_target(SmallCross(), bars.iloc(slice(0, fold.test_end)), entry.params)
        np.testing.assert_array_equal(
            target[fold.test_start - 120 : fold.test_end - 120],
            expected[fold.test_start : fold.test_end],
        )
        assert entry.effective_from == bars.index[fold.test_start]


def test_stitched_run_is_one_engine_pass_over_the_oos_span(bars, serial_run):
    wf = serial_run
    once = run_backtest(
        SmallCross(),
        bars.iloc(slice(120, 420)),
        wf.schedule[0].params,
        BacktestSpec(),
        target=wf.backtest.target,
    )
    np.testing.assert_array_equal(wf.backtest.sim.equity, once.sim.equity)
    assert wf.backtest.sim.index[0] == bars.index[120] and wf.bars.n_bars == 300
    # the benchmark is sliced to the same span
    assert wf.backtest.benchmark.returns.index.equals(wf.bars.index)


def test_chosen_params_are_the_in_sample_best(bars, serial_run):
    wf = serial_run
    trials = wf.trials
    assert wf.n_trials == len(trials) == 5 * 16
    for fold, row in wf.folds.iterrows():
        scores = trials[trials.fold == fold]
        best = scores.loc[scores.objective.idxmax()]
        assert (row.param_fast, row.param_slow, row.param_short) == (
            best.param_fast,
            best.param_slow,
            best.param_short,
        )
        assert row.is_objective == best.objective == scores.objective.max()
        assert scores.chosen.sum() == 1 and scores.loc[scores.chosen].index[0] == best.name


def test_fold_table_oos_metrics_come_from_the_stitched_run(serial_run):
    wf = serial_run
    returns = wf.backtest.returns.to_numpy()
    for i, fold in enumerate(wf.splits):
        oos = returns[fold.test_start - 120 : fold.test_end - 120]
        row = wf.folds.iloc[i]
        assert row.oos_total_return == pytest.approx(metrics.total_return(oos), rel=1e-12)
        assert row.oos_sharpe == pytest.approx(metrics.sharpe(oos, 252.0), rel=1e-12)
        assert row.test_start == wf.bars.index[fold.test_start - 120]
        assert row.n_combinations == 16 and row.train_bars == 120 and row.test_bars == 60


def test_statistics_are_reported(serial_run):
    s = serial_run.statistics
    assert set(s) == {"walk_forward_efficiency", "deflated_sharpe", "pbo", "n_folds", "n_trials"}
    assert s["n_folds"] == 5 and s["n_trials"] == 80
    assert 0.0 <= s["pbo"] <= 1.0 and 0.0 <= s["deflated_sharpe"] <= 1.0
    assert all(serial_run.backtest.summary[k] == v or (v != v) for k, v in s.items())
    expected_wfe = np.mean(serial_run.folds.oos_annual_return) / np.mean(
        serial_run.folds.is_annual_return
    )
    if np.mean(serial_run.folds.is_annual_return) > 0:
        assert s["walk_forward_efficiency"] == pytest.approx(expected_wfe)
    assert [m.shape for m in serial_run.in_sample_returns] == [(120, 16)] * 5
    assert set(serial_run.parameter_stability.index) == {"fast", "slow", "short"}


def test_local_executor_equals_serial(bars, serial_run):
    spec = WalkForwardSpec(windows=SPEC.windows, executor="local", workers=2)
    local = walk_forward(
        SmallCross(), bars, None, spec, BacktestSpec(), buy_and_hold(bars, "S0", bars.index)
    )
    np.testing.assert_array_equal(local.backtest.target, serial_run.backtest.target)
    np.testing.assert_array_equal(local.backtest.sim.equity, serial_run.backtest.sim.equity)
    pd.testing.assert_frame_equal(local.folds, serial_run.folds)
    pd.testing.assert_frame_equal(local.trials, serial_run.trials)
    assert local.statistics == pytest.approx(serial_run.statistics, nan_ok=True)


def test_learned_strategy_is_fit_on_each_training_window_only(bars):
    spec = WalkForwardSpec(windows=WindowSpec(train=100, test=80, purge=5), executor="serial")
    wf = walk_forward(Fitted(), bars, None, spec, BacktestSpec())
    for fold, entry in zip(wf.splits, wf.schedule, strict=True):
        model = entry.model
        assert (model["first"], model["last"]) == (
            bars.index[fold.train_start],
            bars.index[fold.train_end - 1],
        )
        expected = compute_target(Fitted(), bars.iloc(slice(0, fold.test_end)), entry.params, model)
        start = fold.test_start - wf.splits[0].test_start
        np.testing.assert_array_equal(
            wf.backtest.target[start : start + fold.n_test],
            expected[fold.test_start : fold.test_end],
        )
    # the live stepper on the schedule (params and fitted models) makes the same decisions
    first = wf.splits[0].test_start
    stepper = Stepper(Fitted(), wf.schedule, bars.symbols, history=bars.iloc(slice(0, first)))
    np.testing.assert_array_equal(
        stepper.update_bars(bars.iloc(slice(first, 420))), wf.backtest.target
    )


def test_universe_walk_forward_and_gaps_between_test_windows():
    bars = make_bars(n=300, m=2, seed=3)
    spec = WalkForwardSpec(
        windows=WindowSpec(train=100, test=40, step=70),
        executor="serial",
        search=SearchSpec(method="random", trials=4, seed=0),
    )
    wf = walk_forward(SmallCross(), bars, None, spec, BacktestSpec())
    assert [(f.test_start, f.test_end) for f in wf.splits] == [(100, 140), (170, 210), (240, 280)]
    assert wf.backtest.target.shape == (180, 2)
    np.testing.assert_array_equal(wf.backtest.target[40:70], 0.0)  # the gap holds no position
    assert any("step exceeds" in note for note in wf.notes)
    assert wf.n_trials == 12


def test_fallback_when_no_combination_is_eligible(bars):
    spec = WalkForwardSpec(
        windows=WindowSpec(train=120, test=60),
        executor="serial",
        search=SearchSpec(min_trades=10_000),
    )
    wf = walk_forward(SmallCross(), bars, SmallCrossParams(fast=5, slow=30), spec, BacktestSpec())
    assert all(e.params == SmallCrossParams(fast=5, slow=30) for e in wf.schedule)
    assert (wf.folds.n_eligible == 0).all() and wf.folds.note.str.contains("no eligible").all()
    assert len(wf.notes) == 5


def test_errors_name_the_problem(bars):
    with pytest.raises(DataError, match="has 420 bars"):
        walk_forward(
            SmallCross(),
            bars,
            None,
            WalkForwardSpec(windows=WindowSpec(train=400, test=60), executor="serial"),
        )
    with pytest.raises(ParameterError, match="expects SmallCrossParams"):
        walk_forward(SmallCross(), bars, FittedParams(), SPEC)
    unpicklable = WalkForwardSpec(
        windows=SPEC.windows, search=SearchSpec(objective=lambda r: float(np.sum(r)))
    )
    with pytest.raises(ParameterError, match="executor='serial'"):
        walk_forward(SmallCross(), bars, None, unpicklable)


def _double(x: int) -> int:
    return 2 * x


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("task 3 failed")
    return x


def test_run_tasks_keeps_order_and_propagates_failures():
    assert run_tasks(_double, list(range(7)), "local", workers=2) == [0, 2, 4, 6, 8, 10, 12]
    assert run_tasks(_double, list(range(3)), "serial") == [0, 2, 4]
    with pytest.raises(ValueError, match="task 3 failed"):
        run_tasks(_fail_on_three, list(range(6)), "local", workers=2)
    with pytest.raises(ParameterError, match="Did you mean 'local'"):
        run_tasks(_double, [1], "locl")


_FRESH_PROCESS = """
import numpy as np
from framework.backtest import BacktestSpec
from framework.walkforward import WalkForwardSpec, WindowSpec, walk_forward
from framework.walkforward.executor import local_plan
from tests.barsgen import make_bars
from tests.framework.walkforward.strategies_for_tests import SmallCross

bars = make_bars(n=420, seed=13)
windows = WindowSpec(train=120, test=60)
runs, methods = [], []
for executor in ("local", "serial", "local"):
    methods.append(local_plan())
    spec = WalkForwardSpec(windows=windows, executor=executor, workers=2)
    runs.append(walk_forward(SmallCross(), bars, None, spec, BacktestSpec()).backtest.sim.equity)
assert all(np.array_equal(runs[0], r) for r in runs), "executors disagree"
print(",".join(methods))
"""


def test_local_executor_forks_in_a_fresh_process_and_runs_in_process_after_numba_threads():
    # Forking after numba's OpenMP threads started kills the child; the executor must then run
    # the folds in this process (whose parallel kernels use the cores), with the same results.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # before the 1st local run and the serial run no numba thread ran in this process (the local
    # run's kernels ran in its workers); the serial run starts them, so the 2nd local run stays
    # in this process
    assert done.stdout.strip().splitlines()[-1] == "fork,fork,in-process"




def test_strategy_from_a_users_file_runs_in_spawned_workers(tmp_path, bars, monkeypatch):
    from framework.registry import resolve_strategy
    from framework.walkforward import executor

    path = tmp_path / "user_above.py"
    path.write_text(USER_FILE_SOURCE)
    strategy = resolve_strategy(f"{path}:Above", {})
    windows = WindowSpec(train=120, test=60)
    serial = walk_forward(strategy, bars, None, WalkForwardSpec(windows=windows, executor="serial"))
    monkeypatch.setattr(executor, "local_plan", lambda: "spawn")  # as outside Linux
    spawned = walk_forward(
        strategy, bars, None, WalkForwardSpec(windows=windows, executor="local", workers=2)
    )
    np.testing.assert_array_equal(spawned.backtest.target, serial.backtest.target)
    assert [e.params for e in spawned.schedule] == [e.params for e in serial.schedule]


def test_spec_from_cli_options():
    options = {
        "train": "3y",
        "test_len": "1y",
        "step": None,
        "anchored": True,
        "purge": "2",
        "embargo": "1",
        "search": "random",
        "trials": 7,
        "objective": "sortino",
        "executor": "local",
    }
    spec = spec_from_options(options)
    assert spec.windows.describe() == "anchored train 3y, test 1y, step 1y, purge 2, embargo 1"
    assert (spec.search.method, spec.search.trials, spec.search.objective.name) == (
        "random",
        7,
        "sortino",
    )
    assert spec.executor == "local"


def test_command_writes_folds_schedule_and_summary(tmp_path, bars):
    calls = []

    def fake_report(wf, path):
        calls.append((wf.statistics["n_folds"], path))
        path.write_text("<html></html>")
        return path

    request = BacktestRequest(
        strategy=SmallCross(),
        symbols=None,
        start=None,
        end=None,
        sets=(),
        fill="next_open",
        data_dir=None,
        out=tmp_path / "run",
        tearsheet=False,
        walk_forward=True,
        wf_options={
            "train": "120",
            "test_len": "60",
            "step": None,
            "anchored": False,
            "purge": "0",
            "embargo": "0",
            "search": "grid",
            "trials": 100,
            "objective": "sharpe",
            "executor": "local",
        },
    )
    result = run_walk_forward_command(
        request,
        bars,
        SmallCrossParams(),
        BacktestSpec(),
        buy_and_hold(bars, "S0", bars.index),
        None,
        fake_report,
        write_outputs=write_outputs,
    )
    out = tmp_path / "run"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("walk_forward_efficiency", "deflated_sharpe", "pbo", "n_folds", "n_trials"):
        assert key in summary
    assert (
        summary["n_folds"] == 5
        and summary["n_trials"] == 80
        and summary["start"] == bars.index[120].isoformat()
    )
    folds = pd.read_csv(out / "folds.csv")
    assert len(folds) == 5 and {
        "param_fast",
        "param_slow",
        "is_objective",
        "oos_sharpe",
        "pbo",
    } <= set(folds.columns)
    for name in ("equity.csv", "trades.csv", "run.json"):
        assert (out / name).is_file()
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["walk_forward"]["n_folds"] == 5 and run_info["walk_forward"]["search"] == "grid"
    assert calls == [(5, out / "walkforward.html")]
    # schedule.json loads back into a schedule the Stepper accepts, and reproduces the targets
    schedule = load_schedule(out / "schedule.json", SmallCrossParams)
    assert [(e.params.fast, e.params.slow, e.params.short) for e in schedule] == list(
        zip(folds.param_fast, folds.param_slow, folds.param_short, strict=True)
    )
    assert [e.effective_from for e in schedule] == list(pd.to_datetime(folds.test_start, utc=True))
    stepper = Stepper(SmallCross(), schedule, bars.symbols, history=bars.iloc(slice(0, 120)))
    np.testing.assert_array_equal(stepper.update_bars(bars.iloc(slice(120, 420))), result.target)


def test_load_schedule_rejects_bad_files(tmp_path):
    from framework.errors import ConfigError

    path = tmp_path / "schedule.json"
    path.write_text('{"entries": []}')
    with pytest.raises(ConfigError, match="no 'entries'"):
        load_schedule(path, SmallCrossParams)
    path.write_text(
        json.dumps(
            {"entries": [{"effective_from": "2020-01-02", "params": {"fast": 50, "slow": 20}}]}
        )
    )
    with pytest.raises(ConfigError, match="entry 0 has invalid parameters"):
        load_schedule(path, SmallCrossParams)
    path.write_text(json.dumps({"entries": [{"params": {}}]}))
    with pytest.raises(ConfigError, match="entry 0 has a malformed entry"):
        load_schedule(path, SmallCrossParams)


def test_readme_walk_forward_on_the_embedded_index():
    """``fw backtest --walk-forward``: sma_cross, embedded S&P 500 1999-2018, 3y/1y rolling."""
    from framework.clirun import load_run_bars
    from strategies.sma_cross import SmaCross

    bars = load_run_bars(None, None, None, None)
    # serial here: inside pytest numba threads already run, so a local pool would be spawned
    # (about 2 s of worker start-up); the executors agree (tests above)
    wf = walk_forward(SmaCross(), bars, None, WalkForwardSpec(executor="serial"), BacktestSpec())
    assert wf.statistics["n_folds"] == 17 and wf.folds.n_combinations.min() > 400
    assert not math.isnan(wf.statistics["pbo"])


def test_command_needs_the_outputs_writer(tmp_path, bars):
    request = BacktestRequest(
        strategy=SmallCross(),
        symbols=None,
        start=None,
        end=None,
        sets=(),
        fill="next_open",
        data_dir=None,
        out=tmp_path,
        walk_forward=True,
        wf_options={"executor": "serial"},
    )
    with pytest.raises(FwError, match="write_outputs"):
        run_walk_forward_command(request, bars, SmallCrossParams(), BacktestSpec(), None, None)


def test_optuna_walk_forward_is_deterministic(bars):
    pytest.importorskip("optuna")
    spec = WalkForwardSpec(
        windows=WindowSpec(train=120, test=100),
        search=SearchSpec(method="optuna", trials=5, seed=3),
        executor="serial",
    )
    first = walk_forward(SmallCross(), bars, None, spec, BacktestSpec())
    again = walk_forward(SmallCross(), bars, None, spec, BacktestSpec())
    assert first.n_trials == 5 * len(first.splits) == len(first.trials)
    assert [e.params for e in first.schedule] == [e.params for e in again.schedule]
    np.testing.assert_array_equal(first.backtest.target, again.backtest.target)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(executor="dask"), "Valid executors: local, ray, serial"),
        (dict(workers=0), "workers must be a positive integer"),
        (dict(pbo_blocks=15), "pbo_blocks must be an even integer"),
        (dict(pbo_max_combinations=0), "pbo_max_combinations must be a positive integer"),
        (dict(pbo_max_combinations=True), "pbo_max_combinations must be a positive integer"),
    ],
)
def test_bad_walk_forward_specs(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        WalkForwardSpec(**kwargs)


def test_pbo_max_combinations_samples_each_folds_splits(bars, serial_run):
    # 16 blocks have 12,870 splits: a cap at least that large changes nothing; a small one is
    # the seeded subset of each fold's splits, the same on every run
    fold_pbo = serial_run.folds["pbo"].to_numpy()
    capped = [dict(pbo_max_combinations=20_000), dict(pbo_max_combinations=30)]
    exact, sampled = (
        walk_forward(
            SmallCross(), bars, None, WalkForwardSpec(windows=SPEC.windows, executor="serial", **c)
        )
        for c in capped
    )
    np.testing.assert_array_equal(exact.folds["pbo"].to_numpy(), fold_pbo)
    expected = [
        probability_of_backtest_overfitting(m, 16, 30).pbo for m in sampled.in_sample_returns
    ]
    np.testing.assert_array_equal(sampled.folds["pbo"].to_numpy(), expected)
    assert all(
        probability_of_backtest_overfitting(m, 16, 30).n_combinations == 30
        for m in sampled.in_sample_returns
    )
