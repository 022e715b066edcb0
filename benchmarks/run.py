"""Run the side-by-side benchmarks: ``python -m benchmarks.run [--only W1,W2] [--quick]``.

Workloads: W1 single symbol, W2 parameter grid, W3 universe with shared cash, COLD the ``fw
backtest`` command as a process, W4 walk-forward. Prints one table per workload and writes every
figure as JSON (default ``$TMPDIR/fw-benchmarks/latest.json``; ``--json PATH``, ``-`` = stdout).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks.common import (
    BenchSpec,
    Report,
    Row,
    Timing,
    load_symbol,
    load_universe,
    timed_once,
)
from benchmarks.output import format_report, to_document, write_json
from framework.errors import FwError
from framework.types import Bars

WORKLOADS: tuple[str, ...] = ("W1", "W2", "W3", "COLD", "W4")
UNIVERSE_FOLDER = "daily_sp500_2000_2024"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help=f"comma-separated workloads out of {','.join(WORKLOADS)} (default all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, one repetition: a fast check of every code path",
    )
    parser.add_argument("--repeats", type=int, default=None, help="warm repetitions (best is kept)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="shared data folder (default $FW_SHARED_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--json",
        default=str(Path(tempfile.gettempdir()) / "fw-benchmarks" / "latest.json"),
        help="where to write the JSON results ('-' = stdout)",
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="do not profile fw where a goal is missed"
    )
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    """The workload keys named in ``--only``, in run order; unknown names raise ``FwError``."""
    names = [n.strip().upper() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise FwError(
            f"--only {only!r}: unknown workload(s) {unknown}; expected a comma-separated "
            f"subset of {', '.join(WORKLOADS)} (e.g. --only W1,W2)."
        )
    return [w for w in WORKLOADS if w in names]


def build_spec(args: argparse.Namespace) -> BenchSpec:
    """Default or quick settings with the command-line overrides applied."""
    spec = BenchSpec.quick(args.data_dir) if args.quick else BenchSpec()
    if args.data_dir is not None:
        spec = replace(spec, data_dir=args.data_dir)
    if args.repeats is not None:
        if args.repeats < 1:
            raise FwError(f"--repeats {args.repeats}: expected an integer >= 1 (e.g. --repeats 5).")
        spec = replace(spec, repeats=args.repeats)
    if args.no_profile:
        spec = replace(spec, profile=False)
    return spec


def run_workload(key: str, spec: BenchSpec, cache: dict[str, tuple[float, Bars]]) -> Report:
    """Load what ``key`` needs (timed once, cached across workloads) and run it."""
    if key == "COLD":
        from benchmarks.cold_start import run_cold_start

        return run_cold_start(spec)
    if key == "W3":
        if "universe" not in cache:
            folder = spec.data_dir / UNIVERSE_FOLDER
            cache["universe"] = timed_once(lambda: load_universe(folder, spec.universe_limit))
        load_seconds, bars = cache["universe"]
        runner = _runner("benchmarks.universe", "run_universe")
    else:
        if "symbol" not in cache:
            cache["symbol"] = timed_once(lambda: load_symbol(spec))
        load_seconds, bars = cache["symbol"]
        module, name = {
            "W1": ("benchmarks.single", "run_single"),
            "W2": ("benchmarks.grid", "run_grid"),
            "W4": ("benchmarks.walk_forward", "run_walk_forward"),
        }[key]
        runner = _runner(module, name)
    report = runner(bars, spec)
    report.rows.insert(0, _load_row(load_seconds, bars))
    return report


def _runner(module: str, name: str) -> Callable[[Bars, BenchSpec], Report]:
    # imported on demand: W4 needs framework.walkforward, the peers need vectorbt/backtrader
    imported = __import__(module, fromlist=[name])
    return getattr(imported, name)


def _load_row(load_seconds: float, bars: Bars) -> Row:
    note = f"{bars.n_assets} symbol(s) x {bars.n_bars:,} bars, read once for every engine"
    return Row("fw", "data load", Timing(load_seconds, load_seconds, 1), note)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected workloads; exit 1 when a check disagrees or a workload fails."""
    args = parse_args(argv)
    try:
        keys = selected(args.only)
        spec = build_spec(args)
    except FwError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.quick:
        print("quick mode: reduced sizes and one repetition; the goals refer to the full sizes.\n")
    reports: list[Report] = []
    problems: dict[str, str] = {}
    cache: dict[str, tuple[float, Bars]] = {}
    for key in keys:
        try:
            report = run_workload(key, spec, cache)
        except Exception as exc:  # reported below and in the JSON; the other workloads still run
            problems[key] = _describe_failure(key, exc)
            print(f"{key}  {problems[key]}\n", file=sys.stderr, flush=True)
            continue
        reports.append(report)
        print(format_report(report) + "\n", flush=True)
    where = write_json(to_document(reports, spec, problems), args.json)
    print(f"results written to {where}", file=sys.stderr)
    disagree = [c for r in reports for c in r.checks if not c.passed]
    print(
        f"goals reached: {sum(g.reached for r in reports for g in r.goals)}/"
        f"{sum(len(r.goals) for r in reports)}; checks passed: "
        f"{sum(c.passed for r in reports for c in r.checks)}/"
        f"{sum(len(r.checks) for r in reports)}; not run: {sorted(problems) or 'none'}",
        file=sys.stderr,
    )
    # missed speed goals are findings, not failures; a disagreement means a broken comparison
    return 1 if disagree or problems else 0


def _describe_failure(key: str, exc: BaseException) -> str:
    """PENDING for a walk-forward that does not exist yet, else FAILED with the traceback."""
    if key == "W4" and isinstance(exc, ImportError) and "walkforward" in str(exc):
        return f"PENDING: framework.walkforward is not available yet ({exc})"
    trace = "".join(traceback.format_exception(exc))
    return f"FAILED: {type(exc).__name__}: {exc}\n{trace}"


if __name__ == "__main__":
    sys.exit(main())
