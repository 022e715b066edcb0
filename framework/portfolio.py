"""Backtest result objects and the files a run writes next to its results.

Every run writes ``summary.json``, ``equity.csv``, ``trades.csv`` and ``run.json`` (resolved
configuration, parameters, data hash, package version and git revision), so any result can be
traced to exactly what produced it.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import framework
from framework.engine import SimResult
from framework.strategy import Params


@dataclass(frozen=True)
class Benchmark:
    """The buy-and-hold comparison series: its name, where it came from, and its returns."""

    name: str
    returns: pd.Series
    note: str = ""


@dataclass(frozen=True)
class BacktestResult:
    """Everything one backtest produced.

    Attributes
    ----------
    strategy : str
        Strategy name.
    params : Params
        Parameters used (or the first of a schedule).
    target : ndarray
        Final targets ``(n_bars, n_assets)`` given to the engine.
    sim : SimResult
        Engine output (equity, positions, fills, trades, costs).
    summary : dict
        Metrics from ``framework.metrics.summarize`` plus run facts.
    benchmark : Benchmark or None
        Buy-and-hold comparison.
    data_hash : str
        Content hash of the bars used.
    extra : dict
        Facts other layers add (walk-forward statistics, notes).
    """

    strategy: str
    params: Params
    target: np.ndarray
    sim: SimResult
    summary: dict
    benchmark: Benchmark | None
    data_hash: str
    extra: dict = field(default_factory=dict)

    @property
    def returns(self) -> pd.Series:
        return self.sim.returns


def git_revision(path: Path | None = None) -> str:
    """The git commit of the fw checkout (``+dirty`` when modified), or ``"unknown"``."""
    where = path or Path(framework.__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON with NaN as null and infinities as strings, never invalid JSON."""
    def fix(v: Any) -> Any:
        if isinstance(v, float) and math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    path.write_text(json.dumps(fix(_jsonable(payload)), indent=2, sort_keys=False) + "\n")


def write_run(result: BacktestResult, out: Path, run_info: Mapping[str, Any]) -> dict[str, Path]:
    """Write the standard run files into ``out`` and return their paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "summary": out / "summary.json",
        "equity": out / "equity.csv",
        "trades": out / "trades.csv",
        "run": out / "run.json",
    }
    write_json(paths["summary"], result.summary)
    equity = pd.DataFrame(
        {"equity": result.sim.equity, "cash": result.sim.cash, "returns": result.sim.returns.to_numpy()},
        index=pd.Index(result.sim.index, name="time"),
    )
    if result.benchmark is not None:
        equity["benchmark_returns"] = result.benchmark.returns.to_numpy()
    equity.to_csv(paths["equity"])
    result.sim.trades.to_csv(paths["trades"], index=False)
    info = {
        "strategy": result.strategy,
        "params": result.params.as_dict(),
        "data_hash": result.data_hash,
        "fw_version": framework.__version__,
        "git_revision": git_revision(),
        "optimistic_fill": result.sim.optimistic_fill,
        **dict(run_info),
    }
    write_json(paths["run"], info)
    return paths
