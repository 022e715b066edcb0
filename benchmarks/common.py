"""Shared pieces of the benchmarks: settings, matched cost/engine configs, data, timing, records.

Every workload compares engines under one set of rules, written down here once: 0.1% commission
per side and nothing else, decisions at the close filled at the next open, long only, all-in
(fw ``max_leverage=1``), 100,000 of starting cash.
"""

from __future__ import annotations

import cProfile
import io
import math
import os
import pstats
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.strategies import GRID_FAST, GRID_SLOW, QUICK_FAST, QUICK_SLOW
from framework.costs import CostSpec
from framework.data import load_bars
from framework.data.calendars import daily_close_labels
from framework.engine import EngineSpec
from framework.errors import DataError
from framework.types import FIELDS, Bars, SymbolInfo

FEE_RATE = 0.001  # 0.1% per side, the only cost in every workload
INITIAL_CASH = 100_000.0
REPO_ROOT = Path(__file__).resolve().parents[1]


# -- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchSpec:
    """What the benchmarks run on and how often (frozen; :meth:`quick` for a fast pass).

    Attributes
    ----------
    data_dir : Path
        The shared market data folder (with ``daily/`` and ``daily_sp500_2000_2024/``).
    repeats : int
        Warm repetitions per measurement (best is reported), bounded by ``max_seconds``.
    max_seconds : float
        Stop repeating a measurement once its warm runs took this long (at least one warm run).
    symbol, n_bars : str, int
        W1/W2/W4: the most recent ``n_bars`` daily bars of ``symbol`` from ``daily/``.
    fast_windows, slow_windows : tuple of int
        W2/W4 grid: every ``(fast, slow)`` with ``fast < slow``, fast-major order.
    backtrader_pairs : int
        W2: grid pairs timed through backtrader (the rest is extrapolated).
    universe_limit : int or None
        W3: first N symbols of ``daily_sp500_2000_2024/`` (None = all).
    top_n, gross : int, float
        W3: momentum holds ``top_n`` names equal weight, scaled to ``gross`` of equity.
    backtrader_symbols : int
        W3: full-history symbols simulated through backtrader (the rest is extrapolated).
    train, test, step : int
        W4 rolling walk-forward windows in bars.
    cold_repeats : int
        Timed ``fw backtest`` processes per variant (after one warm-up run).
    profile : bool
        Profile fw's part of a workload whose goal is missed.
    """

    data_dir: Path = field(default_factory=lambda: default_data_dir())
    repeats: int = 5
    max_seconds: float = 30.0
    symbol: str = "SPY"
    n_bars: int = 5000
    fast_windows: tuple[int, ...] = GRID_FAST
    slow_windows: tuple[int, ...] = GRID_SLOW
    backtrader_pairs: int = 10
    universe_limit: int | None = None
    top_n: int = 50
    gross: float = 0.99
    backtrader_symbols: int = 20
    train: int = 756
    test: int = 252
    step: int = 252
    cold_repeats: int = 3
    profile: bool = True

    @classmethod
    def quick(cls, data_dir: Path | None = None) -> BenchSpec:
        """Small sizes and one repetition: checks every code path in well under a minute."""
        return cls(
            data_dir=data_dir or default_data_dir(),
            repeats=1,
            n_bars=1000,
            fast_windows=QUICK_FAST,
            slow_windows=QUICK_SLOW,
            backtrader_pairs=2,
            universe_limit=30,
            top_n=5,
            backtrader_symbols=5,
            train=252,
            test=126,
            step=126,
            cold_repeats=1,
            profile=False,
        )

    def pairs(self) -> list[tuple[int, int]]:
        """The W2/W4 grid: ``(fast, slow)`` with ``fast < slow``, fast-major (fw's grid order)."""
        return [(f, s) for f in self.fast_windows for s in self.slow_windows if f < s]

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-compatible values (window ranges described)."""
        out = asdict(self)
        out["data_dir"] = str(self.data_dir)
        out["fast_windows"] = describe_range(self.fast_windows)
        out["slow_windows"] = describe_range(self.slow_windows)
        return out


def default_data_dir() -> Path:
    """``$FW_SHARED_DATA`` or ``../shared/data`` beside the repository (as in the tests)."""
    override = os.environ.get("FW_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def describe_range(values: tuple[int, ...]) -> str:
    """``(2, 3, ..., 51)`` -> ``"2..51"``; ``(20, 30, ..., 320)`` -> ``"20..320 step 10"``."""
    if len(values) < 2:
        return ", ".join(str(v) for v in values)
    steps = set(np.diff(values).tolist())
    if len(steps) == 1:
        step = steps.pop()
        return f"{values[0]}..{values[-1]}" + ("" if step == 1 else f" step {step}")
    return ", ".join(str(v) for v in values)


def fw_costs() -> CostSpec:
    """0.1% commission per side; no per-share fee, minimum, slippage, impact or volume cap."""
    return CostSpec(
        commission_per_share=0.0,
        commission_min=0.0,
        commission_bps=FEE_RATE * 1e4,
        commission_max_pct=None,
        slippage_bps=0.0,
        impact_coef=0.0,
        max_participation=None,
    )


def fw_engine(whole_shares: bool = False, rebalance: str = "on_change") -> EngineSpec:
    """Next-open fills, long only, no leverage (all-in at most), fw's default starting cash."""
    return EngineSpec(
        initial_cash=INITIAL_CASH,
        fill="next_open",
        rebalance=rebalance,
        whole_shares=whole_shares,
        allow_short=False,
        max_leverage=1.0,
    )


# -- data ------------------------------------------------------------------------------------------
def require_folder(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a ``DataError`` saying what was expected and how to fix it."""
    if not path.is_dir():
        raise DataError(
            f"benchmark data folder {str(path)!r} not found; expected {what}. Pass "
            "--data-dir PATH (the shared data folder) or set FW_SHARED_DATA."
        )
    return path


def load_symbol(spec: BenchSpec) -> Bars:
    """The most recent ``spec.n_bars`` daily bars of ``spec.symbol`` from ``daily/`` (adjusted)."""
    folder = require_folder(spec.data_dir / "daily", f"daily/{spec.symbol}.csv.gz inside it")
    bars = load_bars([spec.symbol], data_dir=folder)
    if bars.n_bars < spec.n_bars:
        raise DataError(
            f"{spec.symbol} has {bars.n_bars} daily bars in {folder}; the benchmark needs "
            f"{spec.n_bars}. Lower BenchSpec.n_bars or use a symbol with longer history."
        )
    return bars.iloc(slice(bars.n_bars - spec.n_bars, None))


def load_universe(folder: Path, limit: int | None = None) -> Bars:
    """Daily OHLCV of every ``*.csv.gz`` in ``folder`` with OHLC as given (no adj_close ratio).

    ``framework.data.load_bars`` would rescale these split-only files by ``adj_close``; the
    universe benchmark uses the prices as traded, labelled at the XNYS session close.
    """
    require_folder(folder, "one SYMBOL.csv.gz per symbol (date,open,high,low,close,...,volume)")
    paths = sorted(folder.glob("*.csv.gz"))[:limit]
    if not paths:
        raise DataError(f"no *.csv.gz files in {str(folder)!r}; expected one file per symbol.")
    frames, info = {}, {}
    for path in paths:
        raw = pd.read_csv(path, usecols=["date", *FIELDS])
        index = daily_close_labels(pd.DatetimeIndex(pd.to_datetime(raw["date"])))
        symbol = path.name.split(".")[0]
        frames[symbol] = raw[list(FIELDS)].astype(np.float64).set_index(index)
        info[symbol] = SymbolInfo(source=f"csv:{path}", adjusted=False, note="OHLC as given")
    return Bars.from_frames(frames, info)


def full_history_symbols(bars: Bars, count: int) -> list[str]:
    """``count`` symbols spread evenly over those with a price on every bar (sorted order)."""
    complete = [s for j, s in enumerate(bars.symbols) if np.isfinite(bars.close[:, j]).all()]
    if len(complete) < count:
        raise DataError(
            f"only {len(complete)} symbols have a price on all {bars.n_bars} bars; the "
            f"backtrader subset needs {count}. Lower BenchSpec.backtrader_symbols."
        )
    picks = np.linspace(0, len(complete) - 1, count).round().astype(int)
    return [complete[i] for i in picks]


# -- timing ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Seconds of the first call (numba compiles there) and the best of the warm calls."""

    first: float
    best: float
    runs: int


def measure(function: Callable[[], Any], repeats: int, max_seconds: float) -> tuple[Timing, Any]:
    """Call ``function`` once (first call), then up to ``repeats`` warm times; keep the best.

    Warm calls stop early once they took ``max_seconds`` together (at least one runs). Returns
    the timing and the result of the last call.
    """
    start = time.perf_counter()
    result = function()
    first = time.perf_counter() - start
    best, spent, runs = math.inf, 0.0, 0
    while runs < max(repeats, 1) and (runs == 0 or spent < max_seconds):
        start = time.perf_counter()
        result = function()
        took = time.perf_counter() - start
        best, spent, runs = min(best, took), spent + took, runs + 1
    return Timing(first, best, runs), result


def timed_once(function: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds of one call and its result (for loading and extrapolated samples)."""
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def profile_text(function: Callable[[], Any], lines: int = 14, sort: str = "tottime") -> str:
    """cProfile of one call of ``function``: the top ``lines`` entries by ``sort``."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        function()
    finally:
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort)
    stats.print_stats(lines)
    text = out.getvalue()
    # keep the table, drop pstats' preamble lines about the ordering
    start = text.find("ncalls")
    return text[start:].rstrip() if start >= 0 else text.rstrip()


def relative_difference(a: np.ndarray | float, b: np.ndarray | float) -> float:
    """Largest ``|a / b - 1|`` (0 for identical values); NaN where either side is not finite."""
    a_arr = np.atleast_1d(np.asarray(a, dtype=np.float64))
    b_arr = np.atleast_1d(np.asarray(b, dtype=np.float64))
    if a_arr.shape != b_arr.shape:
        raise DataError(f"cannot compare shapes {a_arr.shape} and {b_arr.shape}; expected equal.")
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.abs(a_arr / b_arr - 1.0)
    diff[a_arr == b_arr] = 0.0
    return float(np.max(diff)) if diff.size else 0.0


# -- records ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One timed stage of one engine. ``extrapolated`` rows scale a timed sample."""

    engine: str
    stage: str
    timing: Timing
    note: str = ""
    extrapolated: bool = False


@dataclass(frozen=True)
class Check:
    """An agreement check between fw and a peer: ``value`` must be at most ``tolerance``."""

    what: str
    value: float
    tolerance: float

    @property
    def passed(self) -> bool:
        """True when the measured difference is within tolerance."""
        return bool(self.value <= self.tolerance)


@dataclass(frozen=True)
class Goal:
    """A goal from the issue: a speed-up (``unit="x"``, at least ``required``) or a time budget
    (``unit="s"``, below ``required`` seconds)."""

    description: str
    required: float
    measured: float
    unit: str = "x"

    @property
    def reached(self) -> bool:
        """True when the speed-up or time budget is met."""
        if self.unit == "x":
            return bool(self.measured >= self.required)
        return bool(self.measured < self.required)


@dataclass
class Report:
    """Everything one workload measured (filled in by the workload function)."""

    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)

    def add(
        self, engine: str, stage: str, timing: Timing, note: str = "", extrapolated: bool = False
    ) -> None:
        """Append one timed row."""
        self.rows.append(Row(engine, stage, timing, note, extrapolated))

    def run(
        self, engine: str, stage: str, function: Callable[[], Any], spec: BenchSpec, note: str = ""
    ) -> Any:
        """Measure ``function`` (see :func:`measure`), add its row, return its result."""
        timing, result = measure(function, spec.repeats, spec.max_seconds)
        self.add(engine, stage, timing, note)
        return result

    def time_of(self, engine: str, stage: str) -> float:
        """Best time of ``engine`` on ``stage`` (``KeyError`` when it has no row)."""
        for row in self.rows:
            if row.engine == engine and row.stage == stage:
                return row.timing.best
        raise KeyError(f"no {engine!r} row for stage {stage!r} in {self.key}")

    def ratio(self, peer: str, stage: str) -> float:
        """``peer`` time / fw time on ``stage`` (how many times faster fw is)."""
        return self.time_of(peer, stage) / self.time_of("fw", stage)

    def goal(self, peer: str, stage: str, required: float) -> Goal:
        """Record the goal "fw at least ``required`` times faster than ``peer`` on ``stage``"."""
        description = f"fw >= {required:g}x faster than {peer} ({stage})"
        goal = Goal(description, required, self.ratio(peer, stage))
        self.goals.append(goal)
        return goal

    def maybe_profile(
        self, spec: BenchSpec, label: str, function: Callable[[], Any], sort: str = "tottime"
    ) -> None:
        """Profile ``function`` once when a goal is missed and profiling is on."""
        if spec.profile and any(not g.reached for g in self.goals):
            kind = "internal" if sort == "tottime" else "cumulative"
            key = f"{label} (cProfile, top by {kind} time)"
            self.profiles[key] = profile_text(function, 20 if sort != "tottime" else 14, sort)
