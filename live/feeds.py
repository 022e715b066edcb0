"""Bar feeds: the :class:`Feed` protocol and the offline :class:`ReplayFeed`.

A feed yields closed bars labelled by their close time (DESIGN.md section 2), in time order,
one row of values per symbol. The replay feed plays stored bars as fast as possible or paced at
``speed`` bars per second; the session ends when the replay does.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.types import FIELDS, Bars


@dataclass(frozen=True, eq=False)
class ClosedBar:
    """One closed bar for every symbol: values are ``(m,)`` float64 arrays (NaN: no trade).

    ``warmup`` marks history (a new run's warm-up, bars backfilled after a restart, a bar whose
    decision would come too late to fill at the next open): the runner updates the strategy
    with it and trades nothing."""

    time: pd.Timestamp
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    warmup: bool = False  # history only: the strategy sees it, nothing is traded on it

    def row(self) -> dict[str, np.ndarray]:
        """The five fields by name (what ``Stepper.update`` takes)."""
        return {name: getattr(self, name) for name in FIELDS}


@runtime_checkable
class Feed(Protocol):
    """An iterable of :class:`ClosedBar` in strictly increasing close time."""

    symbols: tuple[str, ...]

    def __iter__(self) -> Iterator[ClosedBar]: ...


class ReplayFeed:
    """Replay ``bars`` as closed bars.

    Parameters
    ----------
    bars : Bars
        The bars to play, in order.
    speed : float, optional
        Bars per second; None (default) plays as fast as possible.
    sleep : callable, optional
        Called with the seconds to wait between bars (tests pass a recorder).
    warmup : int
        Leading bars delivered as warm-up history (``ClosedBar.warmup``): the strategy sees
        them, nothing trades on them.
    """

    def __init__(
        self,
        bars: Bars,
        speed: float | None = None,
        sleep: Callable[[float], None] = _time.sleep,
        warmup: int = 0,
    ) -> None:
        if speed is not None and not (np.isfinite(speed) and speed > 0):
            raise DataError(
                f"replay speed {speed!r}; expected a positive number of bars per second "
                "(e.g. --speed 10), or no --speed to replay as fast as possible."
            )
        self.bars = bars
        self.symbols = tuple(bars.symbols)
        self.speed = speed
        self._sleep = sleep
        self.warmup = int(warmup)  # the first bars are history (ClosedBar.warmup), not traded

    def __len__(self) -> int:
        return self.bars.n_bars

    def __iter__(self) -> Iterator[ClosedBar]:
        arrays = {name: np.asarray(getattr(self.bars, name), np.float64) for name in FIELDS}
        for i in range(self.bars.n_bars):
            if self.speed is not None and i > 0:
                self._sleep(1.0 / self.speed)
            yield ClosedBar(
                time=self.bars.index[i],
                symbols=self.symbols,
                **{name: arrays[name][i].copy() for name in FIELDS},
                warmup=i < self.warmup,
            )


def replay_bars(
    symbols: Sequence[str] | None,
    data_dir: Path | None = None,
    start: object = None,
    end: object = None,
) -> Bars:
    """Bars for a replay, chosen like a backtest's: ``--data-dir``, the store, or the embedded
    default (SPY when the source has it, else the embedded S&P 500 index)."""
    from framework.clirun import load_run_bars

    return load_run_bars(list(symbols) if symbols else None, data_dir, start, end)
