"""Market-time pacing for the live runner: the bar schedule and a broker-synced clock.

Bars are labelled by their **close** time in UTC (DESIGN.md section 2). On the XNYS calendar:

* a ``1Day`` bar closes at the session close (21:00 or 20:00 UTC, 18:00 UTC on a half day), the
  same label :func:`framework.data.calendars.daily_close_labels` gives;
* intraday bars start at the session open and are cut at the session close, so a ``1Hour`` bar
  schedule closes at 10:30, 11:30, ..., 15:30 and 16:00 New York (13:00 last on a half day);
* there are no bars outside regular sessions, on weekends or on holidays.

The calendar comes from ``exchange_calendars`` (offline); it is built once per process and covers
1990-01-01 to two years after the day it was built.

:class:`SyncedClock` measures the offset between the local clock and a reference (the broker's
clock) like hummingbot's time synchronizer: each sample is ``reference - (t_before + t_after) / 2``
and the offset is the median of the last few samples, which rejects a slow round trip.
"""

from __future__ import annotations

import datetime as dt
import functools
import statistics
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.data.calendars import utc_ns
from framework.data.frames import NEW_YORK
from framework.errors import BrokerError, ConfigError, DataError, unknown_name_message

INTERVALS: tuple[str, ...] = ("1Min", "5Min", "15Min", "30Min", "1Hour", "1Day")
_MINUTES = {"1Min": 1, "5Min": 5, "15Min": 15, "30Min": 30, "1Hour": 60}
_NS_PER_MINUTE = 60 * 1_000_000_000
_CALENDAR_START = "1990-01-01"
_CALENDAR_YEARS_AHEAD = 2


# ---------------------------------------------------------------------------------------------
# the XNYS calendar, built once per process


@dataclass(frozen=True)
class _Sessions:
    """XNYS sessions: naive dates, open and close times (int64 ns UTC), and the covered span."""

    dates: pd.DatetimeIndex
    opens: np.ndarray
    closes: np.ndarray
    first_ns: int  # midnight New York of the calendar's first day
    last_ns: int  # close of the last session


@functools.cache
def _xnys() -> _Sessions:
    import exchange_calendars  # deferred: building the calendar is not free (~0.1 s)

    end = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()
    end = end + pd.DateOffset(years=_CALENDAR_YEARS_AHEAD)
    with warnings.catch_warnings():
        # exchange_calendars 4.x triggers a pandas 3 deprecation while building; not actionable.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        calendar = exchange_calendars.get_calendar(
            "XNYS", start=_CALENDAR_START, end=end.strftime("%Y-%m-%d")
        )
    opens = pd.DatetimeIndex(calendar.opens).as_unit("ns").asi8
    closes = pd.DatetimeIndex(calendar.closes).as_unit("ns").asi8
    dates = pd.DatetimeIndex(calendar.closes.index).as_unit("ns")
    first = pd.Timestamp(_CALENDAR_START).tz_localize(NEW_YORK).tz_convert("UTC").value
    return _Sessions(dates, opens, closes, int(first), int(closes[-1]))


_utc_ns = utc_ns  # one tz-aware time as UTC nanoseconds (naive times refused)


def _stamp(ns: int) -> pd.Timestamp:
    return pd.Timestamp(int(ns), tz="UTC")


def _check_covered(ns: int, what: str) -> _Sessions:
    cal = _xnys()
    if not cal.first_ns <= ns <= cal.last_ns:
        raise DataError(
            f"{what} {_stamp(ns)} is outside the XNYS calendar range {_stamp(cal.first_ns)} .. "
            f"{_stamp(cal.last_ns)}; expected a time inside it. Fix: use a time in that range "
            "(the calendar covers 1990 to two years after the process started)."
        )
    return cal


# ---------------------------------------------------------------------------------------------
# the bar schedule


@dataclass(frozen=True)
class BarSchedule:
    """Bar close labels of one interval on the XNYS regular sessions.

    Parameters
    ----------
    interval : str
        One of :data:`INTERVALS`.

    Raises
    ------
    ConfigError
        When ``interval`` is unknown.
    """

    interval: str = "1Day"

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ConfigError(
                unknown_name_message("bar interval", str(self.interval), INTERVALS)
                + " Fix: use one of them, e.g. interval='1Day'."
            )

    @property
    def _length_ns(self) -> int | None:
        """Intraday bar length in ns; ``None`` for daily bars (one bar per session)."""
        minutes = _MINUTES.get(self.interval)
        return None if minutes is None else minutes * _NS_PER_MINUTE

    def next_close(self, after: pd.Timestamp) -> pd.Timestamp:
        """The first bar close label strictly after ``after``.

        Parameters
        ----------
        after : pandas.Timestamp
            A tz-aware time.

        Returns
        -------
        pandas.Timestamp
            tz-aware UTC close label.
        """
        ns = _utc_ns(after, "time")
        cal = _check_covered(ns, "time")
        i = int(np.searchsorted(cal.closes, ns, side="right"))
        if i == len(cal.closes):
            raise DataError(
                f"no XNYS bar closes after {_stamp(ns)}: the calendar ends at "
                f"{_stamp(cal.last_ns)}. Fix: restart the process to extend the calendar."
            )
        open_ns, close_ns = int(cal.opens[i]), int(cal.closes[i])
        length = self._length_ns
        if length is None:
            return _stamp(close_ns)
        # the first grid point strictly after `after` (the first bar's close before the open)
        step = 1 if ns < open_ns else (ns - open_ns) // length + 1
        return _stamp(min(open_ns + step * length, close_ns))

    def closes_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        """All bar close labels in ``(start, end]``, tz-aware UTC, increasing.

        Parameters
        ----------
        start, end : pandas.Timestamp
            tz-aware bounds; an empty index when ``end <= start``.
        """
        lo_ns, hi_ns = _utc_ns(start, "start"), _utc_ns(end, "end")
        _check_covered(lo_ns, "start")
        cal = _check_covered(hi_ns, "end")
        if hi_ns <= lo_ns:
            return pd.DatetimeIndex([], dtype="datetime64[ns, UTC]")
        first = int(np.searchsorted(cal.closes, lo_ns, side="right"))  # close > start
        last = int(np.searchsorted(cal.opens, hi_ns, side="left"))  # open < end
        opens, closes = cal.opens[first:last], cal.closes[first:last]
        length = self._length_ns
        if length is None:
            labels = closes
        else:
            counts = -(-(closes - opens) // length)  # ceil: the last bar is cut at the close
            starts = np.repeat(opens, counts)
            index = np.arange(int(counts.sum()), dtype=np.int64)
            index -= np.repeat(np.cumsum(counts) - counts, counts)
            labels = np.minimum(starts + (index + 1) * length, np.repeat(closes, counts))
        labels = labels[(labels > lo_ns) & (labels <= hi_ns)]
        return pd.DatetimeIndex(labels.astype("datetime64[ns]")).tz_localize("UTC")

    def bar_open(self, close: pd.Timestamp) -> pd.Timestamp:
        """When the bar labelled ``close`` opened (the session open for daily bars).

        Raises
        ------
        DataError
            When ``close`` is not a close label of this schedule.
        """
        ns = _utc_ns(close, "bar close")
        expected = _utc_ns(self.next_close(_stamp(ns - 1)), "bar close")
        if expected != ns:
            raise DataError(
                f"{_stamp(ns)} is not a {self.interval} bar close on the XNYS calendar; the "
                f"nearest later close is {_stamp(expected)}. Fix: pass a label from "
                "next_close() or closes_between()."
            )
        cal = _xnys()
        i = int(np.searchsorted(cal.closes, ns, side="left"))  # the session holding the label
        open_ns = int(cal.opens[i])
        length = self._length_ns
        if length is None:
            return _stamp(open_ns)
        # the grid point strictly before the close (the cut last bar opens on the grid too)
        return _stamp(open_ns + (ns - open_ns - 1) // length * length)

    def is_session_time(self, t: pd.Timestamp) -> bool:
        """Whether ``t`` lies within a regular XNYS session (``open <= t < close``)."""
        return _in_session(_utc_ns(t, "time"))


def _in_session(ns: int) -> bool:
    cal = _check_covered(ns, "time")
    i = int(np.searchsorted(cal.closes, ns, side="right"))  # first session closing after t
    return i < len(cal.closes) and int(cal.opens[i]) <= ns


def session_state(t: pd.Timestamp) -> str:
    """``"open"`` during a regular XNYS session (half days included), else ``"closed"``."""
    return "open" if _in_session(_utc_ns(t, "time")) else "closed"


# ---------------------------------------------------------------------------------------------
# broker calendar cross-check


def _as_date(value: object, row: int) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise DataError(
        f"broker calendar row {row}: date {value!r} is not a date; expected a datetime.date "
        "or an ISO string such as '2025-11-28'"
    )


def _as_new_york_time(value: object, row: int, what: str) -> dt.time:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:  # naive datetimes (alpaca-py's) are already New York time
            value = pd.Timestamp(value).tz_convert(NEW_YORK).to_pydatetime()
        return value.time().replace(tzinfo=None)
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise DataError(
        f"broker calendar row {row}: {what} time {value!r} is not a time; expected "
        "'HH:MM' (New York), a datetime.time or a datetime"
    )


def _xnys_day_times(cal: _Sessions, i: int) -> tuple[dt.time, dt.time]:
    pair = pd.DatetimeIndex([cal.opens[i], cal.closes[i]]).tz_localize("UTC").tz_convert(NEW_YORK)
    return pair[0].time(), pair[1].time()


def check_broker_calendar(broker_days: Sequence[tuple[object, object, object]]) -> list[str]:
    """Compare the broker's trading calendar (``GET /v2/calendar``) with XNYS.

    Parameters
    ----------
    broker_days : sequence of (date, open, close)
        One row per broker trading day: a date (``datetime.date`` or ISO string) and open and
        close times in New York (``"09:30"``, ``datetime.time``, or a naive New York datetime as
        alpaca-py's ``Calendar`` gives).

    Returns
    -------
    list of str
        Human-readable mismatches over the span of the rows; empty when they agree.

    Raises
    ------
    DataError
        When a row is malformed or a date lies outside the XNYS calendar range.
    """
    if not broker_days:
        return []
    cal = _xnys()
    broker: dict[dt.date, tuple[dt.time, dt.time]] = {}
    for row, item in enumerate(broker_days):
        if len(item) != 3:
            raise DataError(
                f"broker calendar row {row}: {item!r} has {len(item)} fields; expected "
                "(date, open, close)"
            )
        day = _as_date(item[0], row)
        broker[day] = (_as_new_york_time(item[1], row, "open"),
                       _as_new_york_time(item[2], row, "close"))
    first, last = min(broker), max(broker)
    covered = (cal.dates[0].date(), cal.dates[-1].date())
    if first < covered[0] or last > covered[1]:
        raise DataError(
            f"broker calendar spans {first} .. {last}, beyond the XNYS calendar range "
            f"{covered[0]} .. {covered[1]}; expected dates inside it. Fix: request a shorter "
            "broker calendar range."
        )
    lo = int(cal.dates.searchsorted(pd.Timestamp(first)))
    hi = int(cal.dates.searchsorted(pd.Timestamp(last), side="right"))
    xnys = {cal.dates[i].date(): _xnys_day_times(cal, i) for i in range(lo, hi)}
    return _calendar_mismatches(broker, xnys)


def _calendar_mismatches(broker: dict, xnys: dict) -> list[str]:
    out = []
    for day in sorted(set(broker) | set(xnys)):
        ours, theirs = xnys.get(day), broker.get(day)
        if ours is None:
            out.append(f"{day}: the broker lists a session ({theirs[0]:%H:%M}-{theirs[1]:%H:%M} "
                       "New York) but XNYS is closed")
        elif theirs is None:
            out.append(f"{day}: XNYS has a session ({ours[0]:%H:%M}-{ours[1]:%H:%M} New York) "
                       "missing from the broker calendar")
        elif ours != theirs:
            out.append(f"{day}: the broker says {theirs[0]:%H:%M}-{theirs[1]:%H:%M} New York, "
                       f"XNYS says {ours[0]:%H:%M}-{ours[1]:%H:%M}")
    return out


# ---------------------------------------------------------------------------------------------
# the broker-synced clock


def _is_seconds(value: object) -> bool:
    """Whether ``value`` is a finite real number >= 0 (bools excluded)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and bool(np.isfinite(value)) and value >= 0)


class ClockDriftError(BrokerError):
    """The local clock differs from the broker's by more than the allowed drift.

    Attributes
    ----------
    local, reference : pandas.Timestamp
        Local time and the broker's time (local + measured offset) when the check ran.
    drift, limit : float
        The absolute offset and the allowed maximum, in seconds.
    """

    def __init__(self, local: pd.Timestamp, reference: pd.Timestamp, drift: float,
                 limit: float) -> None:
        self.local, self.reference, self.drift, self.limit = local, reference, drift, limit
        super().__init__(
            f"local clock reads {local.isoformat()} but the broker's clock reads "
            f"{reference.isoformat()}: a drift of {drift:.3f} s, more than the allowed "
            f"{limit:g} s. Fix: synchronize the system clock with NTP (e.g. "
            "`timedatectl set-ntp true` or chrony), or allow more drift with "
            "--max-clock-drift SECONDS."
        )

    def __reduce__(self):
        return (type(self), (self.local, self.reference, self.drift, self.limit))


class SyncedClock:
    """Market time = local time + offset measured against a reference (the broker's clock).

    Parameters
    ----------
    reference : callable returning pandas.Timestamp, optional
        The broker's current time (tz-aware). Without one the offset is 0 and market time is
        local time.
    local : callable returning float
        Local time in unix seconds.
    sleep : callable
        Sleeps for the given seconds.
    samples : int
        Number of recent samples whose median is the offset (>= 1). A changed reference is
        adopted once more than half of the kept samples see it.
    max_drift : float or None
        Largest allowed ``abs(offset)`` in seconds for :meth:`check`; ``None`` disables the check
        (the reference then simply defines market time).
    """

    def __init__(self, reference: Callable[[], pd.Timestamp] | None = None, *,
                 local: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, samples: int = 5,
                 max_drift: float | None = 5.0) -> None:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"samples={samples!r} is invalid; expected an integer >= 1")
        if max_drift is not None and not _is_seconds(max_drift):
            raise ConfigError(
                f"max_drift={max_drift!r} is invalid; expected seconds >= 0, or None to disable "
                "the drift check"
            )
        self._reference, self._local, self._sleep = reference, local, sleep
        self.max_drift = None if max_drift is None else float(max_drift)
        self._offsets: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()

    def sync(self) -> float:
        """Take one sample of the offset; return the median offset in seconds (0.0 without a
        reference)."""
        if self._reference is None:
            return 0.0
        before = self._local()
        reference_ns = _utc_ns(self._reference(), "reference clock time")
        after = self._local()
        # the reference was read somewhere in [before, after]: the midpoint halves the error
        sample = reference_ns / 1e9 - (before + after) / 2.0
        with self._lock:
            self._offsets.append(sample)
            return statistics.median(self._offsets)

    @property
    def offset(self) -> float:
        """Median of the kept offset samples, in seconds (0.0 before the first sync)."""
        with self._lock:
            return statistics.median(self._offsets) if self._offsets else 0.0

    @property
    def drift(self) -> float:
        """Absolute offset in seconds."""
        return abs(self.offset)

    def now(self) -> pd.Timestamp:
        """Market time: local time plus the offset, tz-aware UTC."""
        return _stamp(round((self._local() + self.offset) * 1e9))

    def check(self) -> None:
        """Raise :class:`ClockDriftError` when ``max_drift`` is set and the drift exceeds it."""
        offset = self.offset
        if self.max_drift is None or abs(offset) <= self.max_drift:
            return
        local = self._local()
        raise ClockDriftError(_stamp(round(local * 1e9)), _stamp(round((local + offset) * 1e9)),
                              abs(offset), self.max_drift)

    def sleep_until(self, when: pd.Timestamp, poll: float = 1.0,
                    should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Sleep until market time reaches ``when``.

        Sleeps in chunks of at most ``poll`` seconds and re-syncs before each chunk when a
        reference exists, so a reference that jumps forward ends the wait early. With a real
        broker as reference every chunk costs one request: use a ``poll`` of several seconds.

        Parameters
        ----------
        when : pandas.Timestamp
            tz-aware target time.
        poll : float
            Longest single sleep, seconds (> 0).
        should_stop : callable
            Checked before each chunk; the wait is abandoned when it returns true.

        Returns
        -------
        bool
            True when ``when`` was reached, False when ``should_stop()`` ended the wait.
        """
        if not (_is_seconds(poll) and poll > 0):
            raise ConfigError(f"poll={poll!r} is invalid; expected seconds > 0")
        target_ns = _utc_ns(when, "wake-up time")
        while not should_stop():
            if self._reference is not None:
                self.sync()
            remaining = (target_ns - _utc_ns(self.now(), "now")) / 1e9
            if remaining <= 0:
                return True
            self._sleep(min(poll, remaining))
        return False
