"""Presenting benchmark results: a plain-text table per workload and a JSON document."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, BenchSpec, Report

_PACKAGES = ("numpy", "pandas", "numba", "vectorbt", "backtrader", "vectorbt-rust")


def seconds(value: float) -> str:
    """Human-readable duration: ``412 us``, ``3.21 ms``, ``1.53 s``."""
    if not math.isfinite(value):
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} us"
    if value < 1.0:
        return f"{value * 1e3:.2f} ms"
    return f"{value:.2f} s"


def format_report(report: Report) -> str:
    """The workload's timings (with peer/fw ratios per stage), checks, goals and notes."""
    lines = [f"{report.key}  {report.title}"]
    width = max([16, *(len(row.stage) for row in report.rows)])
    lines.append(
        f"  {'stage':<{width}} {'engine':<11} {'first call':>11} {'best':>10} "
        f"{'runs':>4} {'peer/fw':>8}  note"
    )
    for row in report.rows:
        try:
            ratio = f"{report.ratio(row.engine, row.stage):7.1f}x" if row.engine != "fw" else ""
        except KeyError:
            ratio = ""
        first = "-" if row.extrapolated else seconds(row.timing.first)
        note = ("EXTRAPOLATED: " if row.extrapolated else "") + row.note
        lines.append(
            f"  {row.stage:<{width}} {row.engine:<11} {first:>11} "
            f"{seconds(row.timing.best):>10} {row.timing.runs:>4} {ratio:>8}  {note}"
        )
    for check in report.checks:
        verdict = "ok" if check.passed else "DISAGREE"
        lines.append(
            f"  check: {check.what}: {check.value:.2e} (tolerance {check.tolerance:g}) {verdict}"
        )
    for goal in report.goals:
        verdict = "reached" if goal.reached else "NOT REACHED"
        measured = f"{goal.measured:.1f}x" if goal.unit == "x" else f"{goal.measured:.2f} s"
        lines.append(f"  goal: {goal.description}: measured {measured} -> {verdict}")
    lines.extend(f"  note: {note}" for note in report.notes)
    for label, text in report.profiles.items():
        lines.append(f"  profile of {label}:")
        lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    """Versions, CPU count, numba threads and git revision: what the figures depend on."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "numba_threads": _numba_threads(),
        "git_revision": _git_revision(),
        "packages": versions,
    }


def to_document(reports: list[Report], spec: BenchSpec, problems: dict[str, str]) -> dict[str, Any]:
    """All results as plain JSON-compatible data."""
    return {
        "environment": environment(),
        "spec": spec.to_dict(),
        "not_run": problems,
        "workloads": [_report_dict(r) for r in reports],
    }


def write_json(document: dict[str, Any], path: str) -> str:
    """Write the document to ``path`` (``-`` = stdout); returns where it went."""
    text = json.dumps(document, indent=2, default=_jsonable)
    if path == "-":
        print(text)
        return "stdout"
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n", encoding="utf-8")
    return str(target)


def _report_dict(report: Report) -> dict[str, Any]:
    rows = []
    for row in report.rows:
        entry = {
            "engine": row.engine,
            "stage": row.stage,
            "first_s": row.timing.first,
            "best_s": row.timing.best,
            "runs": row.timing.runs,
            "note": row.note,
            "extrapolated": row.extrapolated,
        }
        if row.engine != "fw":
            try:
                entry["peer_over_fw"] = report.ratio(row.engine, row.stage)
            except KeyError:
                entry["peer_over_fw"] = None
        rows.append(entry)
    return {
        "key": report.key,
        "title": report.title,
        "rows": rows,
        "checks": [
            {"what": c.what, "value": c.value, "tolerance": c.tolerance, "passed": c.passed}
            for c in report.checks
        ],
        "goals": [
            {
                "goal": g.description,
                "required": g.required,
                "measured": g.measured,
                "unit": g.unit,
                "reached": g.reached,
            }
            for g in report.goals
        ],
        "notes": report.notes,
        "profiles": report.profiles,
    }


def _jsonable(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _numba_threads() -> int | None:
    try:
        import numba
    except ImportError:
        return None
    return int(numba.get_num_threads())


def _git_revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
