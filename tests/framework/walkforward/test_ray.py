"""The Ray executor: same results as the local executor, user files, errors, Ctrl-C, lifecycle.

One real local Ray instance (2 CPUs, temp dir under /tmp) serves the module; it is stopped in the
fixture's teardown. The tests before the fixture's first use need a process without a Ray
connection (the executor then starts and stops its own instance), so they come first.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framework.backtest import BacktestSpec
from framework.errors import FwError, ParameterError
from framework.registry import resolve_strategy
from framework.walkforward import WalkForwardSpec, WindowSpec, walk_forward
from framework.walkforward.command import spec_from_options
from framework.walkforward.executor import run_tasks
from strategies.sma_cross import SmaCross
from tests.barsgen import make_bars
from tests.framework.walkforward.strategies_for_tests import USER_FILE_SOURCE

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'fw[dist]')")

WINDOWS = WindowSpec(train=200, test=80)
REPO = Path(__file__).resolve().parents[3]


def _pid(task: int) -> tuple[int, int]:
    return task, os.getpid()


def _fail_on_two(task: int) -> int:
    if task == 2:
        raise ParameterError(f"task {task} is bad on purpose")
    return task


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _children() -> set[int]:
    """Live child processes of this one (a local Ray instance's gcs_server, raylet, ...)."""
    me, found = str(os.getpid()), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the process ended while we listed /proc
        if fields[1] == me and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _wait_until(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_same_walk_forward(got, expected) -> None:
    pd.testing.assert_frame_equal(got.folds, expected.folds, check_exact=True)
    pd.testing.assert_frame_equal(got.trials, expected.trials, check_exact=True)
    assert got.schedule == expected.schedule
    np.testing.assert_array_equal(got.backtest.target, expected.backtest.target)
    np.testing.assert_array_equal(got.backtest.sim.equity, expected.backtest.sim.equity)
    for a, b in zip(got.in_sample_returns, expected.in_sample_returns, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got.statistics == pytest.approx(expected.statistics, nan_ok=True, rel=0, abs=0)


@pytest.fixture(scope="module")
def bars():
    return make_bars(n=600, seed=21)


@pytest.fixture(scope="module")
def local_run(bars):
    spec = WalkForwardSpec(windows=WINDOWS, executor="local", workers=2)
    return walk_forward(SmaCross(), bars, None, spec, BacktestSpec())


@pytest.fixture(scope="module")
def ray_session(local_run):
    """A local Ray instance for the module; yields its address. Stopped at teardown.

    Depends on ``local_run`` so the local executor forks its workers before Ray starts its
    threads in this process (forking a multi-threaded process is not safe).
    """
    if ray.is_initialized():
        pytest.fail("a Ray connection was left open before this module's instance started")
    temp_dir = tempfile.mkdtemp(prefix="fw-ray-", dir="/tmp")  # short: Ray's socket paths
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from tests
        context = ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
            _temp_dir=temp_dir,
        )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def disconnected():
    if ray.is_initialized():
        pytest.skip("needs a process without a Ray connection (run the module in file order)")


# --- without a Ray connection: errors before connecting, and the executor's own instance -----


def test_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(FwError, match=r"pip install 'fw\[dist\]'"):
        run_tasks(_pid, [1, 2], "ray")


def test_unreachable_address_fails_fast_and_names_it(disconnected):
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(FwError, match=f"cannot reach a Ray cluster at '{address}'"):
        run_tasks(_pid, [1, 2], "ray", address=address)
    assert time.monotonic() - started < 10  # Ray alone would retry for minutes
    assert not ray.is_initialized()


@pytest.mark.parametrize("address", ["nonsense", "host:", ":6379", "ray://host:port"])
def test_malformed_address_is_rejected(disconnected, address):
    with pytest.raises(ParameterError, match="is not HOST:PORT"):
        run_tasks(_pid, [1], "ray", address=address)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(executor="local", address="10.0.0.5:6379"), "needs executor='ray'"),
        (dict(executor="ray", address=""), "needs executor='ray' and a Ray cluster address"),
        (dict(executor="ray", address=6379), "needs executor='ray' and a Ray cluster address"),
    ],
)
def test_spec_rejects_an_address_without_ray(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        WalkForwardSpec(**kwargs)
    with pytest.raises(ParameterError, match="address"):
        run_tasks(_pid, [1], kwargs["executor"], address=kwargs["address"])


def test_cli_options_carry_the_address():
    spec = spec_from_options({"executor": "ray", "address": "10.0.0.5:6379", "workers": None})
    assert (spec.executor, spec.address) == ("ray", "10.0.0.5:6379")
    assert spec_from_options({"executor": "ray"}).address is None


def test_unpicklable_task_is_rejected_before_connecting(disconnected):
    with pytest.raises(ParameterError, match="cannot be sent to Ray workers"):
        run_tasks(_pid, [lambda: 1], "ray")
    assert not ray.is_initialized()


def test_executor_starts_a_local_instance_and_stops_it(disconnected, local_run):
    # local_run: the local executor forks before any Ray thread runs here (see ray_session)
    before = _children()
    had_usage_setting = "RAY_USAGE_STATS_ENABLED" in os.environ
    results = run_tasks(_pid, list(range(6)), "ray", workers=2)
    assert [task for task, _ in results] == list(range(6))  # task order
    workers = {pid for _, pid in results}
    assert os.getpid() not in workers
    assert not ray.is_initialized()
    assert _wait_until(lambda: _children() <= before), f"left running: {_children() - before}"
    assert _wait_until(lambda: not any(_alive(pid) for pid in workers)), "Ray workers left"
    assert ("RAY_USAGE_STATS_ENABLED" in os.environ) == had_usage_setting


# --- on the module's Ray instance ---------------------------------------------------------------


def test_ray_walk_forward_equals_local_bit_for_bit(ray_session, local_run, bars):
    spec = WalkForwardSpec(windows=WINDOWS, executor="ray")
    wf = walk_forward(SmaCross(), bars, None, spec, BacktestSpec())
    _assert_same_walk_forward(wf, local_run)
    assert len(wf.splits) == 5 and wf.n_trials == local_run.n_trials > 5 * 100
    # results are unpickled on this side: ordinary writable arrays, not object-store views
    assert wf.in_sample_returns[0].flags.writeable
    assert ray.is_initialized()  # the caller's connection is left open


def test_results_come_back_in_task_order_whatever_finishes_first(ray_session):
    durations = [0.6, 0.0, 0.3, 0.0]
    assert run_tasks(_sleep, durations, "ray") == durations


def test_a_failing_task_raises_its_own_error(ray_session):
    with pytest.raises(ParameterError, match="task 2 is bad on purpose") as info:
        run_tasks(_fail_on_two, [1, 2, 3], "ray")
    assert isinstance(info.value.__cause__, ray.exceptions.RayTaskError)  # remote traceback




def test_strategy_from_a_users_file_runs_on_ray(ray_session, tmp_path, bars):
    path = tmp_path / "user_above_ray.py"
    path.write_text(USER_FILE_SOURCE)
    strategy = resolve_strategy(f"{path}:Above", {})
    serial = walk_forward(strategy, bars, None, WalkForwardSpec(windows=WINDOWS, executor="serial"))
    on_ray = walk_forward(strategy, bars, None, WalkForwardSpec(windows=WINDOWS, executor="ray"))
    _assert_same_walk_forward(on_ray, serial)
    assert type(on_ray.schedule[0].params) is strategy.params_type  # this process's class


def test_users_file_missing_on_the_worker_fails_clearly(ray_session, tmp_path, bars):
    path = tmp_path / "user_gone_ray.py"
    path.write_text(USER_FILE_SOURCE)
    strategy = resolve_strategy(f"{path}:Above", {})
    path.unlink()  # as on a cluster node that does not have the file
    spec = WalkForwardSpec(windows=WINDOWS, executor="ray")
    with pytest.raises(FwError, match="could not prepare the task") as info:
        walk_forward(strategy, bars, None, spec)
    message = str(info.value)
    assert str(path) in message and "does not exist" in message
    assert "--executor local" in message


def test_joins_a_cluster_by_address_and_leaves_it_running(ray_session):
    # another driver process joins the module's instance by its address; its run_tasks call
    # disconnects afterwards but must not stop the cluster
    code = (
        "from framework.walkforward.executor import run_tasks\n"
        f"print(run_tasks(abs, [-1, 2, -3], 'ray', address={ray_session!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[1, 2, 3]"
    assert run_tasks(abs, [-4, 5], "ray") == [4, 5]  # the cluster still serves this process


def test_interrupt_cancels_outstanding_tasks(ray_session, monkeypatch):
    # Ctrl-C arrives while the driver waits: the tasks not finished must be cancelled at once
    real_wait, real_cancel, cancelled, interrupted = ray.wait, ray.cancel, [], []

    def wait(refs, **kwargs):
        if len(refs) < 4 and not interrupted:  # the instant task is collected; others sleep
            interrupted.append(time.monotonic())
            raise KeyboardInterrupt
        return real_wait(refs, **kwargs)

    def cancel(ref, **kwargs):
        cancelled.append(ref)
        real_cancel(ref, **kwargs)

    monkeypatch.setattr(ray, "wait", wait)
    monkeypatch.setattr(ray, "cancel", cancel)
    with pytest.raises(KeyboardInterrupt) as info:
        run_tasks(time.sleep, [0.0, 600.0, 600.0, 600.0], "ray")
    monkeypatch.undo()
    assert not getattr(info.value, "__notes__", None)  # no task reported as still running
    # three distinct tasks; one may be cancelled twice (a first cancel can be lost in a race)
    assert len(interrupted) == 1 and len(set(cancelled)) == 3
    for ref in set(cancelled):  # cancelled while queued, or its worker killed; not left to sleep
        with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
            ray.get(ref, timeout=60)
    assert time.monotonic() - interrupted[0] < 60
