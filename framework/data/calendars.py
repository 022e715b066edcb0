"""XNYS session calendar: daily close-time labels and calendar-gap counts.

Labelling rule for daily bars (the timing contract labels a bar by its close time, in UTC):

* a date that is an XNYS session is labelled at that session's close as given by
  ``exchange_calendars.get_calendar("XNYS")`` - 21:00 UTC in winter, 20:00 UTC in summer and the
  early close on half days (2025-11-28 closes 18:00 UTC);
* any other date (crypto weekends, exchange holidays, dates outside the calendar's range
  ``CALENDAR_START`` .. about one year ahead of today) is labelled **16:00 America/New_York** of that
  date, converted to UTC (DST-aware; for dates before 1883 the tz database uses New York local
  mean time, so such labels are a few minutes off the hour).

The calendar is built offline by ``exchange_calendars``; the library caches calendar instances
itself, so repeated calls here are cheap after the first (~0.1 s).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.data.frames import NEW_YORK, session_dates
from framework.errors import DataError

CALENDAR_NAME = "XNYS"
CALENDAR_START = "1885-01-01"
_FALLBACK_CLOSE = pd.Timedelta(hours=16)


def utc_ns(value: object, what: str) -> int:
    """Nanoseconds since the epoch of one tz-aware time; naive times are refused (ambiguous).

    Raises
    ------
    DataError
        Naming ``what`` and the value: not a time, NaT, or no time zone.
    """
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{what} {value!r} is not a timestamp; expected a tz-aware time such as "
            "'2024-07-05T14:30:00+00:00'"
        ) from exc
    if stamp is pd.NaT:
        raise DataError(f"{what} is missing (NaT); expected a tz-aware time")
    if stamp.tz is None:
        raise DataError(
            f"{what} {value!r} has no time zone; expected a tz-aware time (fw keeps times in "
            "UTC). Fix: pass pd.Timestamp(..., tz='UTC') or an ISO string ending in +00:00."
        )
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


def xnys_sessions() -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """XNYS session dates (naive) with their open and close times (int64 ns since epoch, UTC).

    The calendar spans ``CALENDAR_START`` to about one year ahead of today.
    """
    import exchange_calendars  # deferred: building the calendar is not free

    with warnings.catch_warnings():
        # exchange_calendars 4.x triggers a pandas 3 deprecation (Series.values on tz-aware data)
        # while building the calendar; it is the library's, not actionable here.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        calendar = exchange_calendars.get_calendar(CALENDAR_NAME, start=CALENDAR_START)
    # asi8 reads the UTC nanoseconds directly; converting tz-aware values to an object array of
    # Timestamps would cost ~50 ms per call.
    opens = pd.DatetimeIndex(calendar.opens).as_unit("ns").asi8
    closes = pd.DatetimeIndex(calendar.closes).as_unit("ns").asi8
    return pd.DatetimeIndex(calendar.closes.index), opens, closes


def daily_close_labels(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """UTC close-time labels for naive calendar dates (see the module docstring for the rule).

    Parameters
    ----------
    dates : pandas.DatetimeIndex
        Naive dates at midnight (one per daily bar).

    Returns
    -------
    pandas.DatetimeIndex
        tz-aware UTC labels with nanosecond unit, same length and order as ``dates``.
    """
    dates = pd.DatetimeIndex(dates).as_unit("ns")
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    sessions, _, closes = xnys_sessions()
    pos = sessions.get_indexer(dates)
    # 16:00 New York never falls in a DST transition hour, so localization is unambiguous.
    fallback = (dates + _FALLBACK_CLOSE).tz_localize(NEW_YORK).tz_convert("UTC").asi8
    values = np.where(pos >= 0, closes[np.maximum(pos, 0)], fallback)
    return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")


@dataclass(frozen=True)
class CalendarGaps:
    """How a series of bar dates differs from the XNYS sessions over its span.

    Attributes
    ----------
    missing : int
        XNYS sessions between the first and last date (within the calendar's range) with no bar.
    missing_examples : tuple of str
        Up to five of those dates (ISO).
    extra : int
        Bars on dates that are not XNYS sessions (weekends, holidays, out-of-range dates).
    """

    missing: int
    missing_examples: tuple[str, ...]
    extra: int

    def messages(self) -> list[str]:
        """Human-readable warnings, empty when the dates match the calendar."""
        out = []
        if self.missing:
            examples = ", ".join(self.missing_examples)
            more = ", ..." if self.missing > len(self.missing_examples) else ""
            out.append(
                f"{self.missing} XNYS session(s) have no bar (e.g. {examples}{more}); "
                "backtests treat them as not traded."
            )
        if self.extra:
            out.append(
                f"{self.extra} bar(s) fall on dates that are not XNYS sessions "
                "(labelled 16:00 America/New_York)."
            )
        return out


def calendar_gaps(dates: pd.DatetimeIndex) -> CalendarGaps:
    """Compare bar dates (naive, one or more bars per date) with the XNYS sessions they span."""
    dates = pd.DatetimeIndex(dates).as_unit("ns").unique()
    if len(dates) == 0:
        return CalendarGaps(0, (), 0)
    sessions = xnys_sessions()[0]
    span = sessions[(sessions >= dates[0]) & (sessions <= dates[-1])]
    missing = span.difference(dates)
    extra = int((~dates.isin(sessions)).sum())
    examples = tuple(d.strftime("%Y-%m-%d") for d in missing[:5])
    return CalendarGaps(int(len(missing)), examples, extra)


def outside_regular_hours(labels: pd.DatetimeIndex, length: pd.Timedelta) -> list[str]:
    """Warnings for intraday bars that start before the XNYS open or end after its close.

    Parameters
    ----------
    labels : pandas.DatetimeIndex
        UTC close-time labels of intraday bars.
    length : pandas.Timedelta
        Bar length (a bar covers ``label - length`` .. ``label``).
    """
    if len(labels) == 0:
        return []
    sessions, opens, closes = xnys_sessions()
    starts = labels - length
    pos = sessions.get_indexer(session_dates(starts))
    safe = np.maximum(pos, 0)
    outside = (pos < 0) | (starts.asi8 < opens[safe]) | (labels.asi8 > closes[safe])
    count = int(outside.sum())
    if not count:
        return []
    examples = ", ".join(t.strftime("%Y-%m-%dT%H:%MZ") for t in labels[outside][:3])
    return [
        f"{count} bar(s) lie outside XNYS regular hours (closing at e.g. {examples}); "
        "remove them if the strategy assumes regular sessions."
    ]
