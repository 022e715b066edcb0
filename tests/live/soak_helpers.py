"""Measuring tools for the soak tests (``tests/live/test_soak.py``).

Resident memory and database size are sampled from the runner's progress callback, so they are
read between bars, while the run is in its steady state; the final state of a run is read back
from the store as plain data, without the wall-clock stamps of when rows were written, so two
runs can be compared with ``==``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from live.state import Store

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process now (``/proc/self/statm``, Linux)."""
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * PAGE_BYTES


def db_bytes(path: Path) -> int:
    """Logical size of an SQLite database: its pages, including those still in the WAL file.

    The main file alone lags the data by up to a WAL checkpoint (about 4 MB), and main plus WAL
    jumps when the WAL first fills; ``page_count * page_size`` grows with the data only.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return int(pages) * int(size)


@dataclass(frozen=True)
class Sample:
    """One checkpoint of a soak run: bars processed, wall seconds, RSS and database bytes."""

    bars: int
    seconds: float
    rss: int
    db: int


class Sampler:
    """A ``progress`` factory for ``run_paper``: RSS and wall time after every bar, the database
    size too at ``points`` evenly spaced checkpoints (and at the first bar, the baseline).

    A session's services (replay reports) run after this callback, so what a report costs
    shows between the sample of the bar that wrote it and the next one.

    Parameters
    ----------
    db_path : Path
        The SQLite file of the run's store.
    points : int
        Checkpoints over the replay; the last one is the replay's last bar.
    """

    def __init__(self, db_path: Path, points: int = 10) -> None:
        self.db_path, self.points = db_path, points
        self.samples: list[Sample] = []
        self.total = 0
        self.seen: list[str] = []  # close time of every processed bar, in order
        self.rss: list[int] = []  # RSS after every bar
        self.clock: list[float] = []  # seconds since the replay began, after every bar
        self._start = time.perf_counter()
        self._due: set[int] = set()

    def __call__(self, total: int) -> Callable[[int, Any], None]:
        self.total = total
        self._due = {1} | {max(1, round(total * k / self.points)) for k in range(1, self.points + 1)}
        self._start = time.perf_counter()
        return self._on_bar

    def _on_bar(self, n_bars: int, bar: Any) -> None:
        self.seen.append(bar.time.isoformat())
        self.rss.append(rss_bytes())
        self.clock.append(time.perf_counter() - self._start)
        if len(self.seen) in self._due:
            self.samples.append(Sample(len(self.seen), self.clock[-1], self.rss[-1],
                                       db_bytes(self.db_path)))

    def at(self, fraction: float) -> Sample:
        """The first checkpoint at or after ``fraction`` of the replay."""
        wanted = fraction * self.total
        return next(s for s in self.samples if s.bars >= wanted)

    def steps(self, values: list, after: set[int], first: int = 1) -> tuple[float, float]:
        """Change of ``values`` (``rss`` or ``clock``) from bar ``first`` to the last bar, split
        into (the steps right after the bars in ``after``, all other steps)."""
        diffs = np.diff(np.asarray(values[first - 1:], np.float64))
        bars = np.arange(first, first + len(diffs))  # diffs[i]: from bar bars[i] to the next
        marked = np.isin(bars, sorted(after))
        return float(diffs[marked].sum()), float(diffs[~marked].sum())

    def table(self) -> str:
        """The checkpoints as text lines (for the report of a failing or verbose run)."""
        return "\n".join(f"{s.bars:6d} bars {s.seconds:7.2f} s  RSS {s.rss / 2**20:7.1f} MB  "
                         f"db {s.db / 2**20:6.2f} MB" for s in self.samples)


def period_starts(times: list[str], zone: str = "America/New_York") -> list[tuple[int, str]]:
    """Bars (1-based) whose session starts a new week or month in ``zone`` (where a replay
    writes the reports of the period that ended), with ``"weekly"``/``"monthly"``."""
    out = []
    stamps = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_convert(zone)
    for n in range(1, len(stamps)):
        before, here = stamps[n - 1], stamps[n]
        if here.isocalendar()[:2] != before.isocalendar()[:2]:
            out.append((n + 1, "weekly"))
        if (here.year, here.month) != (before.year, before.month):
            out.append((n + 1, "monthly"))
    return out


_WRITTEN_AT = ("created_at", "updated_at")


def final_state(store: Store, run_id: str) -> dict[str, Any]:
    """Everything a resumed run must reproduce, read from the store.

    Rows keep every column except the wall-clock stamps of when they were written (orders'
    ``created_at``/``updated_at``, the risk state's ``updated_at``); fills keep their bar time.
    """
    run = store.run(run_id)
    equity = store.equity(run_id)
    decisions = store.decisions(run_id)
    risk = store.risk_state(run_id)
    return {
        "positions": store.positions(run_id),
        "cash": float(equity["cash"].iloc[-1]) if len(equity) else None,
        "equity": equity[["time", "cash", "equity"]].to_dict("records"),
        "fills": store.fills(run_id),
        "orders": [{k: v for k, v in o.items() if k not in _WRITTEN_AT}
                   for o in store.orders(run_id)],
        # NaN (no order) as None: NaN != NaN would make equal rows differ
        "decisions": decisions.astype(object).where(decisions.notna(), None).to_dict("records"),
        "run": {k: run[k] for k in ("last_bar", "kill_switch", "stepper", "last_target",
                                    "symbols", "status")},
        "risk_state": risk,
        "broker_state": store.broker_state(run_id),
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Where two :func:`final_state` results differ: per part, the first differing row."""
    out = []
    for key in a:
        left, right = a[key], b.get(key)
        if left == right:
            continue
        if isinstance(left, list) and isinstance(right, list):
            first = next((i for i, (x, y) in enumerate(zip(left, right, strict=False)) if x != y),
                         min(len(left), len(right)))
            out.append(f"{key}: {len(left)} vs {len(right)} rows; first difference at row "
                       f"{first}: {left[first] if first < len(left) else '-'} vs "
                       f"{right[first] if first < len(right) else '-'}")
        else:
            out.append(f"{key}: {str(left)[:300]} vs {str(right)[:300]}")
    return out
