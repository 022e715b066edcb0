"""Uptime accounting for unattended paper runs: healthy time in market hours versus total.

The runner process keeps *health spans* in the state store. A :class:`Heartbeat` opens a span when
a healthy runner starts (or becomes healthy again), extends its ``last_beat_at`` every
``beat_seconds`` while healthy, and closes it when the process stops or the runner turns
unhealthy. A killed process simply stops extending its span, so the span ends at its last beat:
nothing after the last beat is ever counted as healthy.

:func:`market_uptime` turns the spans into numbers. Market time is the union of the calendar's
regular sessions ``[open, close]`` (half days end at their early close; weekends and holidays
count zero) clipped to the window; healthy time is the union of the spans' ``[started_at,
last_beat_at]`` intersected with market time, so overlapping spans never count twice.

A *gap* is an outage measured in market time: a maximal stretch with no healthy coverage, reported
as the first and last uncovered market instants. An outage from 15:00 New York one day to 11:00
the next is one gap of 2.5 market hours (the closed night does not count and does not split it).

The heartbeat that writes the spans is ``live.uptime.Heartbeat``; the store protocol
(implemented by ``live.state.Store``)::

    open_span(run_id: str, at: str) -> int          # ISO-8601 UTC strings
    extend_span(span_id: int, at: str) -> None
    close_span(span_id: int, at: str, reason: str) -> None
    spans(run_id: str) -> list[dict]               # id, started_at, last_beat_at, ended_at, reason
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from framework.data.calendars import utc_ns
from framework.errors import ConfigError, DataError, unknown_name_message

MAX_GAPS = 10  # gaps kept in Uptime.gaps (the longest ones)
_NS_PER_SECOND = 1_000_000_000
_CALENDAR_START = "1990-01-01"
_CALENDAR_YEARS_AHEAD = 2
_log = logging.getLogger(__name__)


class SpanStore(Protocol):
    """What :class:`Heartbeat` and the uptime report need from the state store."""

    def open_span(self, run_id: str, at: str) -> int: ...

    def extend_span(self, span_id: int, at: str) -> None: ...

    def close_span(self, span_id: int, at: str, reason: str) -> None: ...

    def spans(self, run_id: str) -> list[dict[str, Any]]: ...


def _calendar_names() -> list[str]:
    import exchange_calendars  # deferred: importing it costs ~0.3 s

    return exchange_calendars.get_calendar_names(include_aliases=True)


def _check_calendar(name: object) -> None:
    if not isinstance(name, str) or name not in _calendar_names():
        raise ConfigError(
            unknown_name_message("calendar", str(name), _calendar_names())
            + " Fix: use an exchange_calendars name such as 'XNYS'."
        )


@dataclass(frozen=True)
class UptimeSpec:
    """How the heartbeat beats and which calendar defines market hours.

    Parameters
    ----------
    beat_seconds : float
        Seconds between heartbeats (> 0). A killed process loses at most one beat of healthy time.
    calendar : str
        ``exchange_calendars`` name whose regular sessions are the market hours.
    """

    beat_seconds: float = 60.0
    calendar: str = "XNYS"

    def __post_init__(self) -> None:
        beat = self.beat_seconds
        if isinstance(beat, bool) or not isinstance(beat, int | float) or not (
            math.isfinite(beat) and beat > 0
        ):
            raise ConfigError(
                f"UptimeSpec.beat_seconds is {beat!r}; expected a finite number of seconds > 0. "
                "Fix: pass e.g. beat_seconds=60."
            )
        object.__setattr__(self, "beat_seconds", float(beat))
        _check_calendar(self.calendar)


# ---------------------------------------------------------------------------------------------
# the calendar, built once per process and name


@dataclass(frozen=True)
class _Sessions:
    """Regular sessions of one calendar as int64 ns UTC, and the window they can answer for."""

    opens: np.ndarray
    closes: np.ndarray
    first_ns: int  # midnight UTC of the calendar's first day
    last_ns: int  # close of the last session


@functools.cache
def _sessions(name: str) -> _Sessions:
    import exchange_calendars  # deferred: building a calendar is not free (~0.2 s)

    end = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    end = (end + pd.DateOffset(years=_CALENDAR_YEARS_AHEAD)).strftime("%Y-%m-%d")
    with warnings.catch_warnings():
        # exchange_calendars 4.x triggers a pandas 3 deprecation while building; not actionable.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        try:
            calendar = exchange_calendars.get_calendar(name, start=_CALENDAR_START, end=end)
        except ValueError:
            # some calendars have no holiday data that far back or ahead: take their own range
            calendar = exchange_calendars.get_calendar(name)
    opens = pd.DatetimeIndex(calendar.opens).as_unit("ns").asi8
    closes = pd.DatetimeIndex(calendar.closes).as_unit("ns").asi8
    first = pd.Timestamp(calendar.opens.index[0]).tz_localize(None).tz_localize("UTC")
    return _Sessions(opens, closes, int(first.as_unit("ns").value), int(closes[-1]))


def _market_intervals(name: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Sessions overlapping ``[start, end]``, clipped to it (sorted, disjoint, int64 ns)."""
    cal = _sessions(name)
    if start < cal.first_ns or end > cal.last_ns:
        raise DataError(
            f"uptime window {_stamp(start)} .. {_stamp(end)} is outside the {name} calendar range "
            f"{_stamp(cal.first_ns)} .. {_stamp(cal.last_ns)}; expected a window inside it. "
            "Fix: clip the window to the calendar range."
        )
    first = int(np.searchsorted(cal.closes, start, side="right"))  # first close after start
    stop = int(np.searchsorted(cal.opens, end, side="left"))  # sessions opening before end
    opens = np.maximum(cal.opens[first:stop], start)
    closes = np.minimum(cal.closes[first:stop], end)
    keep = closes > opens
    return _merge(opens[keep], closes[keep])


# ---------------------------------------------------------------------------------------------
# times


def _stamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


_time_ns = utc_ns  # one tz-aware time as UTC nanoseconds (naive times refused)


def iso_utc(value: object, what: str) -> str:
    """``value`` (tz-aware) as an ISO-8601 UTC string; DataError for naive or unreadable times."""
    return _stamp(_time_ns(value, what)).isoformat()


def _times_ns(values: list[object], what: str, ids: list[object]) -> np.ndarray:
    """Vectorized :func:`_time_ns` for many span times; errors name the span."""
    try:
        # fast path: one offset throughout (the store writes +00:00); pandas refuses mixed
        # offsets and mixed naive/aware times without utc=True, which the slow path sorts out
        parsed = pd.DatetimeIndex(pd.to_datetime(pd.Series(values, dtype=object),
                                                 format="ISO8601"))
    except (TypeError, ValueError):
        parsed = None
    if parsed is not None and parsed.tz is not None and not parsed.hasnans:
        return parsed.tz_convert("UTC").as_unit("ns").asi8
    return np.array([_time_ns(value, f"span {span_id!r} {what}")
                     for value, span_id in zip(values, ids, strict=True)], dtype=np.int64)


def _span_intervals(spans: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``[started_at, last_beat_at]`` of every span as int64 ns arrays (unsorted)."""
    rows = list(spans)
    ids: list[object] = []
    starts: list[object] = []
    beats: list[object] = []
    for number, row in enumerate(rows):
        span_id = row.get("id", f"#{number}") if isinstance(row, Mapping) else f"#{number}"
        if not isinstance(row, Mapping) or "started_at" not in row or "last_beat_at" not in row:
            raise DataError(
                f"span {span_id!r} is {row!r}; expected a mapping with 'started_at' and "
                "'last_beat_at' (as returned by the store's spans(run_id))"
            )
        ids.append(span_id)
        starts.append(row["started_at"])
        beats.append(row["last_beat_at"])
    if not rows:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    start_ns = _times_ns(starts, "started_at", ids)
    beat_ns = _times_ns(beats, "last_beat_at", ids)
    backwards = np.flatnonzero(beat_ns < start_ns)
    if backwards.size:
        i = int(backwards[0])
        raise DataError(
            f"span {ids[i]!r} has last_beat_at {beats[i]!r} before started_at {starts[i]!r}; "
            "expected last_beat_at >= started_at. Fix: repair the span row in the store."
        )
    return start_ns, beat_ns


# ---------------------------------------------------------------------------------------------
# interval arithmetic on sorted int64 ns arrays


def _merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals as sorted, disjoint, non-touching intervals; empty ones are dropped."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return starts.astype(np.int64), ends.astype(np.int64)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    # a new group starts where an interval begins after everything before it ended; touching
    # intervals (start == earlier end) join, so splitting a span changes nothing
    first = np.ones(starts.size, dtype=bool)
    first[1:] = starts[1:] > reach[:-1]
    heads = np.flatnonzero(first)
    return starts[heads], np.maximum.reduceat(ends, heads)


def _intersect(
    a_starts: np.ndarray, a_ends: np.ndarray, b_starts: np.ndarray, b_ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Intersection of two sets of sorted disjoint intervals, by one sweep over the endpoints."""
    times = np.concatenate([a_starts, b_starts, a_ends, b_ends])
    n_starts = a_starts.size + b_starts.size
    steps = np.concatenate([np.ones(n_starts, np.int64), -np.ones(times.size - n_starts, np.int64)])
    # at equal times ends sort before starts, so intervals that only touch do not intersect
    order = np.lexsort((steps, times))
    times, depth = times[order], np.cumsum(steps[order])
    inside = np.flatnonzero(depth[:-1] == 2)  # both sets cover [times[i], times[i + 1]]
    starts, ends = times[inside], times[inside + 1]
    keep = ends > starts
    return starts[keep], ends[keep]


def _complement(
    starts: np.ndarray, ends: np.ndarray, lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """``[lo, hi]`` minus sorted disjoint intervals."""
    gap_starts = np.concatenate([[lo], ends]).astype(np.int64)
    gap_ends = np.concatenate([starts, [hi]]).astype(np.int64)
    gap_starts = np.maximum(gap_starts, lo)
    gap_ends = np.minimum(gap_ends, hi)
    keep = gap_ends > gap_starts
    return gap_starts[keep], gap_ends[keep]


def _outages(
    market: tuple[np.ndarray, np.ndarray], down: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uncovered market time grouped by the outage (``down`` interval) it falls in.

    Returns the first and last uncovered market instant and the market nanoseconds of each outage.
    """
    pieces_start, pieces_end = _intersect(*market, *down)
    if pieces_start.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    outage = np.searchsorted(down[0], pieces_start, side="right") - 1
    heads = np.flatnonzero(np.r_[True, outage[1:] != outage[:-1]])
    tails = np.r_[heads[1:], outage.size] - 1
    lengths = np.add.reduceat(pieces_end - pieces_start, heads)
    return pieces_start[heads], pieces_end[tails], lengths


# ---------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class Uptime:
    """Healthy time of a run in market hours over a window.

    Parameters
    ----------
    healthy_seconds : float
        Market seconds covered by at least one health span.
    market_seconds : float
        Market seconds in the window (regular sessions clipped to it).
    ratio : float
        ``healthy_seconds / market_seconds``; nan when the window holds no market time.
    longest_gap_seconds : float
        Market seconds of the longest outage (0 when there is none).
    gaps : tuple of (pandas.Timestamp, pandas.Timestamp)
        The :data:`MAX_GAPS` longest outages, longest first (ties: earliest first): the first and
        last uncovered market instant of each, in UTC. An outage over a closed night or weekend is
        one gap, so ``end - start`` may exceed its market length; see ``gap_seconds``.
    gap_seconds : tuple of float
        Market seconds of each gap in ``gaps``.
    start, end : pandas.Timestamp
        The window, in UTC.
    calendar : str
        The calendar whose sessions are the market hours.
    """

    healthy_seconds: float
    market_seconds: float
    ratio: float
    longest_gap_seconds: float
    gaps: tuple[tuple[pd.Timestamp, pd.Timestamp], ...]
    gap_seconds: tuple[float, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    calendar: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: ISO-8601 UTC strings, and ``None`` for a nan ratio."""
        return {
            "healthy_seconds": self.healthy_seconds,
            "market_seconds": self.market_seconds,
            "ratio": None if math.isnan(self.ratio) else self.ratio,
            "longest_gap_seconds": self.longest_gap_seconds,
            "gaps": [
                {"start": start.isoformat(), "end": end.isoformat(), "market_seconds": seconds}
                for (start, end), seconds in zip(self.gaps, self.gap_seconds, strict=True)
            ],
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "calendar": self.calendar,
        }


def market_uptime(
    spans: Iterable[Mapping[str, Any]], start: object, end: object, calendar: str = "XNYS"
) -> Uptime:
    """Healthy time of health spans in the market hours of ``[start, end]``.

    Parameters
    ----------
    spans : iterable of mapping
        Health spans as returned by the store's ``spans(run_id)``: ``started_at`` and
        ``last_beat_at`` (tz-aware ISO-8601 strings or Timestamps); other keys are ignored.
        Each span counts as healthy over ``[started_at, last_beat_at]``.
    start, end : str or pandas.Timestamp
        The window, tz-aware; ``end >= start``.
    calendar : str
        ``exchange_calendars`` name; its regular sessions are the market hours.

    Returns
    -------
    Uptime

    Raises
    ------
    DataError
        A time is missing, naive or unreadable; a span ends before it starts; ``end < start``;
        or the window is outside the calendar's range.
    ConfigError
        ``calendar`` is not an exchange_calendars name.
    """
    _check_calendar(calendar)
    lo, hi = _time_ns(start, "uptime window start"), _time_ns(end, "uptime window end")
    if hi < lo:
        raise DataError(
            f"uptime window end {end!r} is before its start {start!r}; expected end >= start. "
            "Fix: swap them."
        )
    market = _market_intervals(calendar, lo, hi)
    healthy = _merge(*_span_intervals(spans))
    covered = _intersect(*market, *healthy)
    healthy_ns = int((covered[1] - covered[0]).sum())
    market_ns = int((market[1] - market[0]).sum())
    gap_starts, gap_ends, gap_ns = _outages(market, _complement(*healthy, lo, hi))
    top = np.lexsort((gap_starts, -gap_ns))[:MAX_GAPS]
    return Uptime(
        healthy_seconds=healthy_ns / _NS_PER_SECOND,
        market_seconds=market_ns / _NS_PER_SECOND,
        ratio=healthy_ns / market_ns if market_ns else math.nan,
        longest_gap_seconds=int(gap_ns.max(initial=0)) / _NS_PER_SECOND,
        gaps=tuple((_stamp(gap_starts[i]), _stamp(gap_ends[i])) for i in top),
        gap_seconds=tuple(int(gap_ns[i]) / _NS_PER_SECOND for i in top),
        start=_stamp(lo),
        end=_stamp(hi),
        calendar=calendar,
    )
