"""XNYS sessions for the fake: bar open/close times, the market clock and the calendar endpoint."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from framework.errors import ConfigError, DataError

NEW_YORK = "America/New_York"
MINUTE_NS = 60 * 1_000_000_000


def to_utc(value: str | pd.Timestamp, what: str) -> pd.Timestamp:
    """Parse ``value`` as a tz-aware UTC timestamp; naive values are rejected, not guessed."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{what}={value!r} is not a timestamp; pass an ISO string with an offset "
            "such as '2024-01-02T14:30:00Z' or a tz-aware pd.Timestamp"
        ) from exc
    if stamp.tzinfo is None:
        raise ConfigError(
            f"{what}={value!r} has no time zone; expected a tz-aware UTC time, "
            "e.g. pd.Timestamp('2024-01-02 14:30', tz='UTC')"
        )
    return stamp.tz_convert("UTC")


@dataclass(frozen=True)
class SessionTable:
    """Open and close (UTC nanoseconds) of every XNYS session in a window, sorted."""

    dates: pd.DatetimeIndex
    opens: np.ndarray
    closes: np.ndarray

    @classmethod
    def around(cls, first: pd.Timestamp, last: pd.Timestamp) -> SessionTable:
        """Sessions from a month before ``first`` to three months after ``last`` (UTC stamps)."""
        start = (first.tz_convert(NEW_YORK).normalize() - pd.Timedelta(days=31)).date()
        end = (last.tz_convert(NEW_YORK).normalize() + pd.Timedelta(days=92)).date()
        with warnings.catch_warnings():
            # exchange_calendars 4.13 trips a pandas 3.1 deprecation (Series.values on tz
            # data) inside its constructor; it is not ours to fix and would flood test output.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            calendar = xcals.get_calendar("XNYS", start=str(start), end=str(end))
        schedule = calendar.schedule
        return cls(
            dates=pd.DatetimeIndex(schedule.index),
            opens=pd.DatetimeIndex(schedule["open"]).as_unit("ns").asi8.copy(),
            closes=pd.DatetimeIndex(schedule["close"]).as_unit("ns").asi8.copy(),
        )

    def session_of_date(self, day: pd.Timestamp) -> int:
        """Index of the session on calendar date ``day`` (naive date); DataError if none."""
        position = self.dates.searchsorted(day)
        if position >= len(self.dates) or self.dates[position] != day:
            raise DataError(
                f"{day.date()} is not an XNYS session; daily bars must be stamped at midnight "
                "America/New_York of a trading day (drop weekend/holiday rows)"
            )
        return int(position)

    def is_open(self, now_ns: int) -> bool:
        """True when ``now_ns`` lies in a regular session [open, close)."""
        position = int(np.searchsorted(self.opens, now_ns, side="right")) - 1
        return bool(position >= 0 and now_ns < self.closes[position])

    def next_open(self, now_ns: int) -> int:
        """First session open strictly after ``now_ns``."""
        return int(self._after(self.opens, now_ns))

    def next_close(self, now_ns: int) -> int:
        """First session close strictly after ``now_ns``."""
        return int(self._after(self.closes, now_ns))

    def current_open(self, now_ns: int) -> int | None:
        """Open of the latest session that opened at or before ``now_ns`` (None before the first)."""
        position = int(np.searchsorted(self.opens, now_ns, side="right")) - 1
        return int(self.opens[position]) if position >= 0 else None

    def _after(self, values: np.ndarray, now_ns: int) -> int:
        position = int(np.searchsorted(values, now_ns, side="right"))
        if position >= len(values):
            raise ConfigError(
                f"clock {pd.Timestamp(now_ns, tz='UTC')} is past the fake's calendar window "
                f"(last session {self.dates[-1].date()}); seed bars that cover the test period"
            )
        return values[position]

    def calendar_rows(self, start: str | None, end: str | None) -> list[dict]:
        """Rows of ``GET /v2/calendar`` for sessions with start <= date <= end."""
        rows = []
        low = pd.Timestamp(start) if start else self.dates[0]
        high = pd.Timestamp(end) if end else self.dates[-1]
        for day, open_ns, close_ns in zip(self.dates, self.opens, self.closes, strict=True):
            if low <= day <= high:
                rows.append({
                    "date": day.strftime("%Y-%m-%d"),
                    "open": _local_hhmm(open_ns, ":"),
                    "close": _local_hhmm(close_ns, ":"),
                    "session_open": "0400",
                    "session_close": "2000",
                    "settlement_date": _settlement(self.dates, day),
                })
        return rows


def _local_hhmm(ns: int, sep: str) -> str:
    return pd.Timestamp(ns, tz="UTC").tz_convert(NEW_YORK).strftime(f"%H{sep}%M")


def _settlement(dates: pd.DatetimeIndex, day: pd.Timestamp) -> str:
    # T+1 settlement on the next session (US equities since 2024-05-28; close enough for a fake).
    position = dates.searchsorted(day) + 1
    return dates[min(position, len(dates) - 1)].strftime("%Y-%m-%d")


def bar_times(index: pd.DatetimeIndex, timeframe: str, table: SessionTable) -> tuple:
    """Open and close times (UTC ns arrays) of seeded bars stamped at ``index``.

    "1Min": [t, t + 1 min). "1Day": the XNYS session open and close of the bar's New York date.
    """
    stamps = index.asi8 if index.unit == "ns" else index.as_unit("ns").asi8
    if timeframe == "1Min":
        if np.any(stamps % MINUTE_NS):
            raise DataError("1Min bars must be stamped on whole minutes (the minute's start)")
        return stamps.copy(), stamps + MINUTE_NS
    local = index.tz_convert(NEW_YORK)
    if not (local == local.normalize()).all():
        bad = index[local != local.normalize()][0]
        raise DataError(
            f"daily bar stamped {bad} is not midnight America/New_York; Alpaca stamps 1Day "
            "bars at 00:00 New York time of the session date (04:00 or 05:00 UTC)"
        )
    positions = [table.session_of_date(day) for day in local.tz_localize(None)]
    return table.opens[positions].copy(), table.closes[positions].copy()


def iso(ns: int, zone: str = "UTC") -> str:
    """RFC 3339 text of ``ns`` with microseconds: ``Z`` for UTC, a numeric offset otherwise."""
    stamp = pd.Timestamp(ns, tz="UTC")
    if zone == "UTC":
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = stamp.tz_convert(zone).strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    return text[:-2] + ":" + text[-2:]
