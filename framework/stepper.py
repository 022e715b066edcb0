"""The incremental decision core live trading uses (DESIGN.md sections 2-4).

A :class:`Stepper` is fed one closed bar at a time and returns the target for that bar. It keeps
the bar history and recomputes the strategy's causal features on it, so its decision at bar ``i``
is, by construction, the vectorized decision on ``bars[:i+1]``; the look-ahead checks prove the
two are equal (prefix invariance). Path-dependent rules written as ``step_nb`` kernels run once per
bar with state that is snapshotted and restored, so a restart continues bit for bit.

Parameters may follow a schedule ``[(effective_from, params), ...]`` (e.g. a walk-forward
``schedule.json``): the params in force at a bar are the last entry whose ``effective_from`` is at
or before the bar's close time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from framework.errors import DataError, StrategyError
from framework.strategy import (
    Params,
    Strategy,
    compute_features,
    finalize_target,
    initial_step_state,
    raw_target,
    target_matrix,
)
from framework.types import FIELDS, Bars, SymbolInfo


@dataclass(frozen=True)
class ScheduleEntry:
    """Parameters in force from ``effective_from`` (a UTC bar close time) onwards."""

    effective_from: pd.Timestamp
    params: Params
    model: Any = None


def normalize_schedule(
    schedule: Params | Sequence[ScheduleEntry] | Sequence[tuple[object, Params]],
) -> tuple[ScheduleEntry, ...]:
    """Accept a single ``Params`` or ``(time, params)`` pairs; return sorted entries."""
    if isinstance(schedule, Params):
        return (ScheduleEntry(pd.Timestamp.min.tz_localize("UTC"), schedule),)
    entries = []
    for item in schedule:
        if isinstance(item, ScheduleEntry):
            when, params, model = item.effective_from, item.params, item.model
        else:
            when, params, model = (*item, None)[:3]
        stamp = pd.Timestamp(when)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        entries.append(ScheduleEntry(stamp, params, model))
    if not entries:
        raise StrategyError("parameter schedule is empty; give at least one (time, params) entry.")
    return tuple(sorted(entries, key=lambda e: e.effective_from))


def entry_at(schedule: tuple[ScheduleEntry, ...], when: pd.Timestamp) -> ScheduleEntry:
    """The entry in force at bar close time ``when`` (the first entry applies before its date)."""
    current = schedule[0]
    for entry in schedule:
        if entry.effective_from <= when:
            current = entry
        else:
            break
    return current


def params_at(schedule: tuple[ScheduleEntry, ...], when: pd.Timestamp) -> Params:
    """The params in force at bar close time ``when``."""
    return entry_at(schedule, when).params


class Stepper:
    """Feed closed bars one at a time; get the same targets as the vectorized backtest.

    Parameters
    ----------
    strategy : Strategy
        The strategy object.
    schedule : Params or sequence of (effective_from, Params)
        Parameters, fixed or on a schedule.
    symbols : sequence of str
        Asset columns, in order.
    history : Bars, optional
        Warm-up bars already closed (their targets are not returned).
    """

    def __init__(
        self,
        strategy: Strategy,
        schedule: Params | Sequence,
        symbols: Sequence[str],
        history: Bars | None = None,
    ) -> None:
        self.strategy = strategy
        self.schedule = normalize_schedule(schedule)
        self.symbols = tuple(symbols)
        m = len(self.symbols)
        self._last: pd.Timestamp | None = None  # the newest bar's time
        self._ns = np.empty(0, np.int64)  # bar times (UTC ns), grown like the rows
        self._rows = {name: np.empty((0, m)) for name in FIELDS}
        self._n = 0
        self._info: dict[str, SymbolInfo] = {}
        self._history: Bars | None = None  # history() of the current bar count
        self.step_state = initial_step_state(strategy, self.schedule[0].params, m)
        self.last_target = np.zeros(m)
        if history is not None:
            self._load_history(history)

    # -- feeding -------------------------------------------------------------------------------
    def update(
        self,
        time: object,
        open: Sequence[float],
        high: Sequence[float],
        low: Sequence[float],
        close: Sequence[float],
        volume: Sequence[float],
    ) -> np.ndarray:
        """Append one closed bar (one value per symbol) and return its target row."""
        self._append(time, {"open": open, "high": high, "low": low, "close": close, "volume": volume})
        return self._decide()

    def update_bars(self, bars: Bars) -> np.ndarray:
        """Feed every bar of ``bars`` in order; return the stacked target rows."""
        self._check_symbols(bars)
        out = np.empty((bars.n_bars, len(self.symbols)))
        for i in range(bars.n_bars):
            row = {name: getattr(bars, name)[i] for name in FIELDS}
            self._append(bars.index[i], row)
            out[i] = self._decide()
        return out

    def history(self) -> Bars:
        """The bars seen so far (a view; do not modify)."""
        cached = self._history
        if cached is not None and cached.n_bars == self._n:
            return cached  # a live bar asks several times; the index is costly to rebuild
        # from int64 nanoseconds: building it from Timestamp objects cost O(n) Python work per bar
        index = pd.DatetimeIndex(self._ns[: self._n].view("M8[ns]")).tz_localize("UTC")
        arrays = {name: self._rows[name][: self._n] for name in FIELDS}
        self._history = Bars(index=index, symbols=self.symbols, info=self._info, **arrays)
        return self._history

    # -- persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """JSON-serializable state; together with the stored bars it restores this stepper."""
        return {
            "strategy": self.strategy.name,
            "symbols": list(self.symbols),
            "n_bars": self._n,
            "last_time": self._last.isoformat() if self._last is not None else None,
            "step_state": self.step_state.tolist(),
            "last_target": self.last_target.tolist(),
        }

    @classmethod
    def restore(
        cls, strategy: Strategy, schedule: Params | Sequence, snapshot: dict, bars: Bars
    ) -> Stepper:
        """Rebuild a stepper from its snapshot and the bars it had seen (``bars[:n_bars]``)."""
        n = int(snapshot["n_bars"])
        if bars.n_bars < n:
            raise DataError(
                f"cannot restore stepper: snapshot saw {n} bars but only {bars.n_bars} were given."
            )
        seen = bars.iloc(slice(0, n))
        if n and snapshot["last_time"] != seen.index[-1].isoformat():
            raise DataError(
                f"cannot restore stepper: last bar {seen.index[-1].isoformat()} differs from the "
                f"snapshot's {snapshot['last_time']}; the stored bars do not match the state."
            )
        stepper = cls(strategy, schedule, snapshot["symbols"])
        stepper._load_history(seen)
        stepper.step_state = np.asarray(snapshot["step_state"], dtype=np.float64)
        stepper.last_target = np.asarray(snapshot["last_target"], dtype=np.float64)
        return stepper

    # -- internals -----------------------------------------------------------------------------
    def _check_symbols(self, bars: Bars) -> None:
        if tuple(bars.symbols) != self.symbols:
            raise DataError(f"bars have symbols {list(bars.symbols)}; stepper expects {list(self.symbols)}.")

    def _load_history(self, bars: Bars) -> None:
        self._check_symbols(bars)
        self._info = dict(bars.info)
        for i in range(bars.n_bars):
            self._append(bars.index[i], {name: getattr(bars, name)[i] for name in FIELDS})

    def _append(self, time: object, row: dict) -> None:
        stamp = pd.Timestamp(time)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        if self._last is not None and stamp <= self._last:
            raise DataError(
                f"bar at {stamp.isoformat()} is not after the last bar {self._last.isoformat()}; "
                "bars must arrive in time order, once each."
            )
        m = len(self.symbols)
        if self._n == self._rows["close"].shape[0]:
            capacity = max(64, 2 * self._n)
            for name in FIELDS:
                grown = np.empty((capacity, m))
                grown[: self._n] = self._rows[name][: self._n]
                self._rows[name] = grown
            ns = np.empty(capacity, np.int64)
            ns[: self._n] = self._ns[: self._n]
            self._ns = ns
        for name in FIELDS:
            values = np.asarray(row[name], dtype=np.float64).reshape(-1)
            if values.shape != (m,):
                raise DataError(f"bar field {name!r} has {values.size} values; expected {m} (one per symbol).")
            self._rows[name][self._n] = values
        self._ns[self._n] = stamp.value
        self._last = stamp
        self._n += 1

    def _decide(self) -> np.ndarray:
        bars = self.history()
        entry = entry_at(self.schedule, bars.index[-1])
        p = entry.params
        feats = compute_features(self.strategy, bars, p)
        raw = raw_target(self.strategy, feats, p, entry.model)
        raw_last = target_matrix(self.strategy, raw, bars)[-1:].copy()
        step = getattr(self.strategy, "step_nb", None)
        if step is not None:
            out = np.empty_like(raw_last[0])
            step(self.step_state, raw_last[0], out)
            raw_last[0] = out
        # finalize on the whole history keeps warm-up and NaN rules identical to the backtest
        padded = np.zeros((bars.n_bars, raw_last.shape[1]))
        padded[-1] = raw_last[0]
        self.last_target = finalize_target(self.strategy, padded, bars, p)[-1]
        return self.last_target.copy()

