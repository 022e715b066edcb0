"""Core record types shared by every layer: :class:`Bars` and :class:`SymbolInfo`.

Bars follow the timing contract of DESIGN.md section 2: a bar covers ``(t[i-1], t[i]]`` and is
labelled by its close time ``t[i]`` in UTC. Daily bars are labelled at the exchange session close.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from framework.errors import DataError, unknown_name_message

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class SymbolInfo:
    """Where one symbol's bars came from and how they were adjusted.

    Attributes
    ----------
    source : str
        Human-readable origin, e.g. ``"csv:/path/SPY.csv.gz"`` or ``"arch.data.sp500 (^GSPC)"``.
    adjusted : bool
        True when OHLC are split- and dividend-adjusted (total-return prices).
    timeframe : str
        ``"1d"`` for daily bars, ``"1min"``, ``"5min"`` ... for intraday.
    note : str
        Anything a reader of a report must know (e.g. "index level, used as SPY proxy").
    """

    source: str = "unknown"
    adjusted: bool = False
    timeframe: str = "1d"
    note: str = ""


@dataclass(frozen=True, eq=False)
class Bars:
    """Aligned OHLCV bars for one or many symbols.

    Arrays are float64 with shape ``(n_bars, n_assets)``; rows follow ``index`` (UTC close times,
    strictly increasing) and columns follow ``symbols``. A NaN price means the symbol did not trade
    (e.g. before its listing); every consumer treats such cells as "not tradable".

    Build with :meth:`from_frames` or the data layer's loaders rather than by hand.
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    info: Mapping[str, SymbolInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, m = len(self.index), len(self.symbols)
        for name in FIELDS:
            arr = getattr(self, name)
            if not isinstance(arr, np.ndarray) or arr.shape != (n, m) or arr.dtype != np.float64:
                got = getattr(arr, "shape", type(arr).__name__), getattr(arr, "dtype", None)
                raise DataError(
                    f"Bars.{name} must be a float64 array of shape ({n}, {m}); got {got}. "
                    "Build Bars with Bars.from_frames or framework.data loaders."
                )
        if self.index.tz is None or str(self.index.tz) != "UTC":
            raise DataError(f"Bars.index must be tz-aware UTC; got tz={self.index.tz!r}.")
        if not (self.index.is_monotonic_increasing and self.index.is_unique):
            raise DataError("Bars.index must be strictly increasing (sorted, no duplicates).")
        if len(set(self.symbols)) != m:
            raise DataError(f"Bars.symbols contains duplicates: {list(self.symbols)}.")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        frames: Mapping[str, pd.DataFrame],
        info: Mapping[str, SymbolInfo] | None = None,
    ) -> Bars:
        """Align per-symbol OHLCV frames (UTC close-time index) on the union of their indexes.

        Cells where a symbol has no bar become NaN (not tradable).
        """
        if not frames:
            raise DataError("no symbols given: Bars needs at least one symbol's frame.")
        symbols = tuple(frames)
        index = frames[symbols[0]].index
        for sym in symbols[1:]:
            index = index.union(frames[sym].index)
        arrays = {name: np.full((len(index), len(symbols)), np.nan) for name in FIELDS}
        for j, sym in enumerate(symbols):
            frame = frames[sym]
            missing = [c for c in FIELDS if c not in frame.columns]
            if missing:
                raise DataError(f"frame for {sym!r} lacks columns {missing}; expected {list(FIELDS)}.")
            pos = index.get_indexer(frame.index)
            for name in FIELDS:
                arrays[name][pos, j] = frame[name].to_numpy(dtype=np.float64)
        return cls(index=pd.DatetimeIndex(index), symbols=symbols, info=dict(info or {}), **arrays)

    # -- shape --------------------------------------------------------------------------------
    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    def __len__(self) -> int:
        return len(self.index)

    # -- views --------------------------------------------------------------------------------
    def iloc(self, rows: slice) -> Bars:
        """Bars for a slice of rows (a cheap view, no copy)."""
        if not isinstance(rows, slice):
            raise DataError(f"Bars.iloc takes a slice of rows; got {type(rows).__name__}.")
        arrays = {name: getattr(self, name)[rows] for name in FIELDS}
        return replace(self, index=self.index[rows], **arrays)

    def between(self, start: object = None, end: object = None) -> Bars:
        """Bars whose close time falls in ``[start, end]`` (either bound may be None).

        Dates without a time mean the whole day: ``end="2020-12-31"`` keeps that day's bar.
        """
        lo = 0 if start is None else int(self.index.searchsorted(_as_utc(start), side="left"))
        if end is None:
            hi = len(self.index)
        else:
            stamp = _as_utc(end)
            if stamp == stamp.normalize():
                stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
            hi = int(self.index.searchsorted(stamp, side="right"))
        return self.iloc(slice(lo, hi))

    def select(self, symbols: Sequence[str]) -> Bars:
        """Bars for a subset of symbols, in the order given."""
        cols = []
        for sym in symbols:
            if sym not in self.symbols:
                raise DataError(unknown_name_message("symbol", sym, self.symbols))
            cols.append(self.symbols.index(sym))
        arrays = {name: np.ascontiguousarray(getattr(self, name)[:, cols]) for name in FIELDS}
        info = {s: self.info[s] for s in symbols if s in self.info}
        return replace(self, symbols=tuple(symbols), info=info, **arrays)

    def frame(self, name: str) -> pd.DataFrame:
        """One field as a DataFrame (rows = close times, columns = symbols)."""
        if name not in FIELDS:
            raise DataError(unknown_name_message("bar field", name, FIELDS))
        return pd.DataFrame(getattr(self, name), index=self.index, columns=list(self.symbols))

    def to_frame(self, symbol: str) -> pd.DataFrame:
        """OHLCV of one symbol as a DataFrame, dropping rows where it did not trade."""
        if symbol not in self.symbols:
            raise DataError(unknown_name_message("symbol", symbol, self.symbols))
        j = self.symbols.index(symbol)
        df = pd.DataFrame({n: getattr(self, n)[:, j] for n in FIELDS}, index=self.index)
        return df.dropna(subset=["close"])

    def content_hash(self) -> str:
        """SHA-256 over index, symbols and all arrays: identifies the exact data of a run."""
        digest = hashlib.sha256()
        digest.update(self.index.asi8.tobytes())
        digest.update("\x1f".join(self.symbols).encode())
        for name in FIELDS:
            digest.update(np.ascontiguousarray(getattr(self, name)).tobytes())
        return digest.hexdigest()


def _as_utc(value: object) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot read {value!r} as a date; use ISO format like 2020-01-31.") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
