"""COLD: the whole ``fw backtest`` command as a fresh process, with a warm numba cache.

Runs ``fw backtest sma_cross --symbols SPY --data-dir DATA/daily --out TMP`` once untimed (to
warm numba's on-disk cache), then times ``cold_repeats`` more processes, without and with the
quantstats tear sheet. Each process gets its own temporary ``FW_HOME`` so nothing touches the
user's fw home. Where the goal (< 2 s) is missed, ``python -X importtime`` and cProfile of one
run say where the time goes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import BenchSpec, Goal, Report, Timing, require_folder
from framework.errors import FwError

GOAL_SECONDS = 2.0


def fw_command() -> list[str]:
    """The ``fw`` console script next to this interpreter, else ``python -c`` on the CLI."""
    script = Path(sys.executable).with_name("fw")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from framework.cli import main; sys.exit(main())"]


def backtest_arguments(spec: BenchSpec, out: Path, tearsheet: bool) -> list[str]:
    """``fw backtest`` arguments for ``spec``'s symbol and data, writing into ``out``."""
    data = require_folder(spec.data_dir / "daily", f"daily/{spec.symbol}.csv.gz inside it")
    args = [
        "backtest",
        "sma_cross",
        "--symbols",
        spec.symbol,
        "--data-dir",
        str(data),
        "--out",
        str(out),
    ]
    return args if tearsheet else [*args, "--no-tearsheet"]


def run_process(command: list[str], home: Path) -> float:
    """Seconds one process took; ``FwError`` with its output when it fails."""
    env = {**os.environ, "FW_HOME": str(home)}
    start = time.perf_counter()
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise FwError(
            f"`{' '.join(command)}` exited with {done.returncode}; expected 0. Its output:\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    return took


def time_command(spec: BenchSpec, tearsheet: bool, workdir: Path) -> Timing:
    """First (untimed warm-up, reported as first call) and best of the timed processes."""
    command = [*fw_command(), *backtest_arguments(spec, workdir / "out", tearsheet)]
    first = run_process(command, workdir / "home")
    best = min(run_process(command, workdir / "home") for _ in range(max(1, spec.cold_repeats)))
    return Timing(first, best, max(1, spec.cold_repeats))


def run_cold_start(spec: BenchSpec) -> Report:
    """Time ``fw backtest`` processes; profile the import and the run when over 2 s."""
    report = Report(
        "COLD",
        f"`fw backtest sma_cross --symbols {spec.symbol}` as a new process (numba cache warm)",
    )
    with tempfile.TemporaryDirectory(prefix="fw-bench-cold-") as tmp:
        workdir = Path(tmp)
        timing = time_command(spec, tearsheet=False, workdir=workdir)
        report.add("fw", "backtest, no tear sheet", timing, "--no-tearsheet; first = warm-up run")
        timing_sheet = time_command(spec, tearsheet=True, workdir=workdir)
        report.add("fw", "backtest + tear sheet", timing_sheet, "quantstats HTML included")
        goal = Goal(
            f"whole `fw backtest` (no tear sheet) < {GOAL_SECONDS:g} s, warm cache",
            GOAL_SECONDS,
            timing.best,
            unit="s",
        )
        report.goals.append(goal)
        if spec.profile and not goal.reached:
            command = [*fw_command(), *backtest_arguments(spec, workdir / "out", False)]
            report.profiles["one fw backtest process (cProfile, top by cumulative time)"] = (
                _profile_process(command, workdir)
            )
    return report


def _profile_process(command: list[str], workdir: Path) -> str:
    """cProfile of one CLI process, top entries by cumulative time."""
    if Path(command[0]).name != "fw":
        return "not profiled: the fw console script was not found next to the interpreter"
    profiled = [sys.executable, "-m", "cProfile", "-s", "cumulative", *command]
    env = {**os.environ, "FW_HOME": str(workdir / "home")}
    done = subprocess.run(
        profiled, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    lines = done.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(lines[start : start + 25])
