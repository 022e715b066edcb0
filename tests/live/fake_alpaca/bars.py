"""Seeded bars of one symbol with their open/close times, and Alpaca's bar wire format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.errors import DataError

from .sessions import SessionTable, bar_times

COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class SymbolBars:
    """Bars of one symbol as parallel arrays; times are UTC nanoseconds."""

    symbol: str
    t: np.ndarray
    open_time: np.ndarray
    close_time: np.ndarray
    o: np.ndarray
    h: np.ndarray
    low: np.ndarray
    c: np.ndarray
    v: np.ndarray
    n: np.ndarray
    vw: np.ndarray

    @classmethod
    def from_frame(cls, symbol: str, frame: pd.DataFrame, timeframe: str,
                   table: SessionTable) -> SymbolBars:
        """Validate one seeded frame (see :class:`FakeAlpaca`) and convert it."""
        missing = [name for name in COLUMNS if name not in frame.columns]
        if missing:
            raise DataError(f"bars[{symbol!r}] lacks columns {missing}; expected {list(COLUMNS)}")
        index = frame.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
            raise DataError(
                f"bars[{symbol!r}] must be indexed by a tz-aware DatetimeIndex of bar open "
                "times (UTC); got " + type(index).__name__)
        index = index.tz_convert("UTC")
        if len(index) == 0 or not index.is_monotonic_increasing or index.has_duplicates:
            raise DataError(f"bars[{symbol!r}] must be non-empty, sorted and without duplicates")
        values = frame.loc[:, list(COLUMNS)].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise DataError(f"bars[{symbol!r}] holds NaN or infinite prices/volumes; clean them")
        opens, closes = bar_times(index, timeframe, table)
        volume = values[:, 4]
        trades = (frame["trade_count"].to_numpy(dtype=float) if "trade_count" in frame
                  else np.maximum(1.0, np.round(volume / 100.0)))
        vwap = (frame["vwap"].to_numpy(dtype=float) if "vwap" in frame
                else (values[:, 1] + values[:, 2] + values[:, 3]) / 3.0)
        return cls(symbol, index.as_unit("ns").asi8.copy(), opens, closes, values[:, 0],
                   values[:, 1], values[:, 2], values[:, 3], volume, trades, vwap)

    def __len__(self) -> int:
        return len(self.t)

    def complete(self, now_ns: int) -> int:
        """Number of bars complete at ``now_ns`` (close_time <= now); they are a prefix."""
        return int(np.searchsorted(self.close_time, now_ns, side="right"))

    def first_closing_after(self, now_ns: int) -> int:
        """Index of the first bar whose close_time > ``now_ns`` (== len when none)."""
        return self.complete(now_ns)

    def mark(self, now_ns: int) -> float | None:
        """Last complete close, or the open of the bar in progress; None before the first bar."""
        position = int(np.searchsorted(self.open_time, now_ns, side="right")) - 1
        if position < 0:
            return None
        return float(self.c[position] if self.close_time[position] <= now_ns else self.o[position])

    def reference_price(self, now_ns: int) -> float:
        """Price for buying-power checks: the mark, or the first open before any bar."""
        mark = self.mark(now_ns)
        return float(self.o[0]) if mark is None else mark

    def wire(self, position: int) -> dict:
        """One bar as ``/v2/stocks/bars`` sends it, with ``t`` still in UTC nanoseconds."""
        return wire_bar(int(self.t[position]), self.o[position], self.h[position],
                        self.low[position], self.c[position], self.v[position],
                        self.n[position], self.vw[position])


def wire_bar(t_ns: int, o: float, h: float, low: float, c: float, v: float, n: float,
             vw: float) -> dict:
    """Alpaca's bar keys; integral volumes and trade counts are sent as ints like the real API."""
    return {"t": t_ns, "o": float(o), "h": float(h), "l": float(low), "c": float(c),
            "v": int(v) if float(v).is_integer() else float(v), "n": int(n), "vw": float(vw)}
