"""Incremental pulls from a remote provider into the store.

For a symbol already stored from the same provider, only bars from the last stored bar onward are
requested. The last stored bar is requested again on purpose: if its close differs from the
provider's (relative difference above ``OVERLAP_TOLERANCE``) the provider has re-adjusted its
history (a dividend or split since the last pull) and the whole series is downloaded again, so an
adjusted series never contains a jump at the seam. Bars whose close time lies in the future (the
session in progress) are dropped: the timing contract only admits closed bars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.data.frames import Timeframe, normalize_symbol, parse_timeframe, session_dates
from framework.data.providers import Provider, RetrySpec, call_with_retries
from framework.data.store import BarStore
from framework.errors import FwError, ProviderError
from framework.types import SymbolInfo

OVERLAP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class PullResult:
    """Outcome of pulling one symbol.

    Attributes
    ----------
    symbol, timeframe : str
        The series.
    action : str
        ``"created"``, ``"appended"``, ``"up to date"``, ``"refetched"`` (provider history
        changed, or ``start`` lies before the stored history), ``"replaced"`` (``full``) or
        ``"failed"``.
    new_rows, rows : int
        Bars added by this pull; bars stored afterwards.
    first, last : str
        ISO close times of the stored series afterwards (empty when failed).
    messages : tuple of str
        Retries, the reason for a refetch, or the error of a failed pull.
    """

    symbol: str
    timeframe: str
    action: str
    new_rows: int = 0
    rows: int = 0
    first: str = ""
    last: str = ""
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class PullSpec:
    """Options of a pull.

    Attributes
    ----------
    start, end : str or Timestamp, optional
        Date range wanted (inclusive). ``start`` only matters for a first pull or when it lies
        before the stored history; None means the provider's earliest data.
    timeframe : str
        ``"1d"`` or an intraday length such as ``"5min"``.
    full : bool
        Re-download the whole range and replace the stored series (also allows replacing a series
        that came from another source).
    retry : RetrySpec
        Bounded retries with backoff for transient failures.
    """

    start: object = None
    end: object = None
    timeframe: str = "1d"
    full: bool = False
    retry: RetrySpec = RetrySpec()


def pull_symbol(
    provider: Provider,
    symbol: str,
    spec: PullSpec = PullSpec(),
    *,
    store: BarStore | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: pd.Timestamp | None = None,
) -> PullResult:
    """Pull one symbol from ``provider`` into ``store`` (incrementally when possible).

    Raises
    ------
    ProviderError
        When the provider fails permanently or after all retries, returns no bars for a new
        series, or the stored series came from another source and ``spec.full`` is False.
    """
    store = store or BarStore()
    symbol = normalize_symbol(symbol)
    timeframe = parse_timeframe(spec.timeframe)
    start = None if spec.start is None else pd.Timestamp(spec.start).normalize()
    end = None if spec.end is None else pd.Timestamp(spec.end).normalize()
    if start is not None and end is not None and start > end:
        raise ProviderError(f"start {start.date()} is after end {end.date()}; swap them.")
    fetch = _Fetcher(
        provider,
        symbol,
        timeframe,
        spec.retry,
        sleep,
        pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now),
        [],
    )
    info = provider.describe(symbol, timeframe)
    stored = _stored(store, symbol, timeframe.name, provider.name, spec.full)
    if stored is not None:
        return _update(store, stored, fetch, info, start, end)
    frame = fetch(start, end)
    if frame.empty:
        raise ProviderError(
            f"{provider.name} returned no bars for {symbol} "
            f"({timeframe.name}, {start} .. {end}); check the symbol and dates."
        )
    action = "replaced" if store.has(symbol, timeframe.name) else "created"
    return _save(store, symbol, frame, info, action, len(frame), fetch.messages)


@dataclass(frozen=True)
class _Fetcher:
    """One provider call with retries, keeping only closed bars and collecting retry notes."""

    provider: Provider
    symbol: str
    timeframe: Timeframe
    retry: RetrySpec
    sleep: Callable[[float], None]
    now: pd.Timestamp
    messages: list[str]

    def __call__(self, first: pd.Timestamp | None, last_day: pd.Timestamp | None) -> pd.DataFrame:
        frame = call_with_retries(
            lambda: self.provider.fetch(self.symbol, first, last_day, self.timeframe),
            self.retry,
            describe=f"{self.provider.name}: fetch {self.symbol}",
            sleep=self.sleep,
            on_retry=lambda n, exc: self.messages.append(f"attempt {n} failed ({exc}); retried"),
        )
        return frame[frame.index <= self.now]


def _update(
    store: BarStore,
    stored: pd.DataFrame,
    fetch: _Fetcher,
    info: SymbolInfo,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> PullResult:
    """Extend a stored series: append new bars, or refetch when history changed or must grow."""
    symbol, messages = fetch.symbol, fetch.messages
    first_day, last_day = session_dates(stored.index[[0, -1]])
    # A refetch must cover the stored span too, or it would drop stored bars after ``end``.
    refetch_end = None if end is None else max(end, last_day)
    if start is not None and start < first_day:
        messages.append(f"start {start.date()} is before the stored history; downloaded again")
        frame = fetch(start, refetch_end)
        return _save(store, symbol, frame, info, "refetched", len(frame), messages)
    fetched = fetch(last_day, end)
    last = stored.index[-1]
    if _history_changed(stored, fetched):
        messages.append(
            f"{fetch.provider.name} history changed at {last.isoformat()} (new dividend or "
            "split adjustment); downloaded the whole series again"
        )
        frame = fetch(first_day, refetch_end)
        return _save(store, symbol, frame, info, "refetched", len(frame), messages)
    new = fetched[fetched.index > last]
    if new.empty:
        first, rows = stored.index[0].isoformat(), len(stored)
        return PullResult(
            symbol,
            fetch.timeframe.name,
            "up to date",
            0,
            rows,
            first,
            last.isoformat(),
            tuple(messages),
        )
    merged = pd.concat([stored, new])
    return _save(store, symbol, merged, info, "appended", len(new), messages)


def pull_symbols(
    provider: Provider,
    symbols: Sequence[str],
    spec: PullSpec = PullSpec(),
    *,
    store: BarStore | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_done: Callable[[PullResult], None] | None = None,
) -> list[PullResult]:
    """Pull several symbols; a failure is recorded as a ``"failed"`` result and the rest go on.

    ``on_done`` is called after each symbol (the CLI advances its progress bar there).
    """
    results = []
    for symbol in symbols:
        try:
            result = pull_symbol(provider, symbol, spec, store=store, sleep=sleep)
        except FwError as exc:
            result = PullResult(
                str(symbol), parse_timeframe(spec.timeframe).name, "failed", messages=(str(exc),)
            )
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results


def _stored(
    store: BarStore, symbol: str, timeframe: str, provider: str, full: bool
) -> pd.DataFrame | None:
    if full or not store.has(symbol, timeframe):
        return None
    frame, meta = store.read(symbol, timeframe)
    if not meta.source.startswith(f"{provider}:"):
        raise ProviderError(
            f"{symbol} ({timeframe}) is stored from {meta.source!r}; appending {provider} bars "
            "would mix sources. Pass --full (PullSpec(full=True)) to replace it."
        )
    return frame


def _history_changed(stored: pd.DataFrame, fetched: pd.DataFrame) -> bool:
    common = stored.index.intersection(fetched.index)
    if common.empty:
        return False
    old = stored.loc[common, "close"].to_numpy()
    new = fetched.loc[common, "close"].to_numpy()
    return bool(np.any(np.abs(new / old - 1.0) > OVERLAP_TOLERANCE))


def _save(
    store: BarStore,
    symbol: str,
    frame: pd.DataFrame,
    info: SymbolInfo,
    action: str,
    new_rows: int,
    messages: list[str],
) -> PullResult:
    meta = store.write(symbol, frame, info)
    return PullResult(
        symbol, meta.timeframe, action, new_rows, meta.rows, meta.first, meta.last, tuple(messages)
    )
