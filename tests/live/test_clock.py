"""Tests for live.clock: the XNYS bar schedule, the broker calendar check and the synced clock."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.calendars import daily_close_labels
from framework.errors import BrokerError, ConfigError, DataError
from live.clock import (
    INTERVALS,
    BarSchedule,
    ClockDriftError,
    SyncedClock,
    check_broker_calendar,
    session_state,
)


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York").tz_convert("UTC")


# ---------------------------------------------------------------------------------------------
# BarSchedule: scenario tables

# (interval, after, expected next close), times in UTC
NEXT_CLOSE = [
    # a normal winter day, 2025-11-25: 14:30-21:00 UTC
    ("1Min", "2025-11-25 05:00", "2025-11-25 14:31"),
    ("1Min", "2025-11-25 14:30", "2025-11-25 14:31"),
    ("1Min", "2025-11-25 14:31", "2025-11-25 14:32"),
    ("1Min", "2025-11-25 20:59:59", "2025-11-25 21:00"),
    ("1Min", "2025-11-25 21:00", "2025-11-26 14:31"),
    ("1Hour", "2025-11-25 14:30", "2025-11-25 15:30"),
    ("1Hour", "2025-11-25 20:30", "2025-11-25 21:00"),
    ("1Hour", "2025-11-25 20:45", "2025-11-25 21:00"),
    ("1Day", "2025-11-25 00:00", "2025-11-25 21:00"),
    ("1Day", "2025-11-25 21:00", "2025-11-26 21:00"),
    # Thanksgiving 2025-11-27 closed, 2025-11-28 half day (close 18:00 UTC)
    ("1Day", "2025-11-26 21:00", "2025-11-28 18:00"),
    ("1Hour", "2025-11-28 17:30", "2025-11-28 18:00"),
    ("1Hour", "2025-11-28 18:00", "2025-12-01 15:30"),
    ("1Min", "2025-11-28 17:59", "2025-11-28 18:00"),
    ("1Min", "2025-11-28 18:00", "2025-12-01 14:31"),
    # 2025-12-24 half day, Christmas closed, 2025-12-26 open
    ("1Day", "2025-12-23 21:00", "2025-12-24 18:00"),
    ("1Day", "2025-12-24 18:00", "2025-12-26 21:00"),
    ("1Hour", "2025-12-24 17:45", "2025-12-24 18:00"),
    ("1Min", "2025-12-25 15:00", "2025-12-26 14:31"),
    # 2025-07-03 half day (17:00 UTC in summer), 2025-07-04 holiday
    ("1Day", "2025-07-03 12:00", "2025-07-03 17:00"),
    ("1Day", "2025-07-03 17:00", "2025-07-07 20:00"),
    ("1Hour", "2025-07-04 15:00", "2025-07-07 14:30"),
    ("1Min", "2025-07-04 15:00", "2025-07-07 13:31"),
    # weekend
    ("1Day", "2025-11-29 12:00", "2025-12-01 21:00"),
    ("5Min", "2025-11-30 23:59", "2025-12-01 14:35"),
    # DST starts 2025-03-09: Friday closes 21:00 UTC, Monday opens 13:30 UTC
    ("1Day", "2025-03-07 21:00", "2025-03-10 20:00"),
    ("1Hour", "2025-03-07 20:30", "2025-03-07 21:00"),
    ("1Hour", "2025-03-07 21:00", "2025-03-10 14:30"),
    ("1Min", "2025-03-10 13:00", "2025-03-10 13:31"),
    # DST ends 2025-11-02: Friday closes 20:00 UTC, Monday opens 14:30 UTC
    ("1Day", "2025-10-31 20:00", "2025-11-03 21:00"),
    ("1Hour", "2025-10-31 20:00", "2025-11-03 15:30"),
    ("30Min", "2025-11-03 14:00", "2025-11-03 15:00"),
    ("15Min", "2025-11-03 20:50", "2025-11-03 21:00"),
]


@pytest.mark.parametrize(("interval", "after", "expected"), NEXT_CLOSE)
def test_next_close_scenarios(interval, after, expected):
    got = BarSchedule(interval).next_close(utc(after))
    assert got == utc(expected)
    assert str(got.tz) == "UTC"


@pytest.mark.parametrize(("interval", "after", "expected"), NEXT_CLOSE)
def test_next_close_of_a_close_is_the_next_one(interval, after, expected):
    schedule = BarSchedule(interval)
    close = schedule.next_close(utc(after))
    following = schedule.next_close(close)
    assert following > close
    assert schedule.closes_between(close, following).tolist() == [following]


HOUR_DAY = ["10:30", "11:30", "12:30", "13:30", "14:30", "15:30", "16:00"]
HOUR_HALF_DAY = ["10:30", "11:30", "12:30", "13:00"]


@pytest.mark.parametrize(("day", "expected"), [
    ("2025-11-25", HOUR_DAY),
    ("2025-11-28", HOUR_HALF_DAY),
    ("2025-12-24", HOUR_HALF_DAY),
    ("2025-07-03", HOUR_HALF_DAY),
    ("2025-07-04", []),
    ("2025-11-29", []),
    ("2025-11-30", []),
    ("2025-03-10", HOUR_DAY),
    ("2025-11-03", HOUR_DAY),
])
def test_hourly_closes_of_a_day_in_new_york(day, expected):
    start = ny(f"{day} 00:00")
    labels = BarSchedule("1Hour").closes_between(start, start + pd.Timedelta(days=1))
    assert [t.strftime("%H:%M") for t in labels.tz_convert("America/New_York")] == expected
    assert str(labels.tz) == "UTC"


@pytest.mark.parametrize(("day", "counts"), [
    ("2025-11-25", {"1Min": 390, "5Min": 78, "15Min": 26, "30Min": 13, "1Hour": 7, "1Day": 1}),
    ("2025-11-28", {"1Min": 210, "5Min": 42, "15Min": 14, "30Min": 7, "1Hour": 4, "1Day": 1}),
    ("2025-12-24", {"1Min": 210, "5Min": 42, "15Min": 14, "30Min": 7, "1Hour": 4, "1Day": 1}),
    ("2025-07-04", dict.fromkeys(INTERVALS, 0)),
    ("2025-11-29", dict.fromkeys(INTERVALS, 0)),
])
def test_bar_counts_per_day(day, counts):
    start = ny(f"{day} 00:00")
    for interval, count in counts.items():
        labels = BarSchedule(interval).closes_between(start, start + pd.Timedelta(days=1))
        assert len(labels) == count, interval


def test_dst_weeks_keep_new_york_hours():
    for monday in ("2025-03-10", "2025-11-03"):
        start = ny(f"{monday} 00:00") - pd.Timedelta(days=3)
        labels = BarSchedule("1Day").closes_between(start, start + pd.Timedelta(days=8))
        local = labels.tz_convert("America/New_York")
        assert len(labels) == 6  # Friday before plus Monday..Friday
        assert {t.strftime("%H:%M") for t in local} == {"16:00"}
    # the UTC hour changes across the switch
    assert BarSchedule("1Day").next_close(utc("2025-03-07 00:00")).hour == 21
    assert BarSchedule("1Day").next_close(utc("2025-03-10 00:00")).hour == 20


@pytest.mark.parametrize(("interval", "close", "opened"), [
    ("1Hour", "2025-11-25 15:30", "2025-11-25 14:30"),
    ("1Hour", "2025-11-25 21:00", "2025-11-25 20:30"),  # the cut last bar: 15:30-16:00 ET
    ("1Hour", "2025-11-28 18:00", "2025-11-28 17:30"),
    ("1Min", "2025-11-25 14:31", "2025-11-25 14:30"),
    ("5Min", "2025-11-25 21:00", "2025-11-25 20:55"),
    ("1Day", "2025-11-28 18:00", "2025-11-28 14:30"),
    ("1Day", "2025-03-10 20:00", "2025-03-10 13:30"),
])
def test_bar_open(interval, close, opened):
    assert BarSchedule(interval).bar_open(utc(close)) == utc(opened)


def test_bar_open_rejects_a_time_that_is_not_a_close():
    with pytest.raises(DataError, match="not a 1Hour bar close.*2025-11-25 16:30"):
        BarSchedule("1Hour").bar_open(utc("2025-11-25 16:00"))


@pytest.mark.parametrize(("t", "inside"), [
    ("2025-11-25 14:29:59", False),
    ("2025-11-25 14:30", True),
    ("2025-11-25 20:59:59", True),
    ("2025-11-25 21:00", False),
    ("2025-11-28 17:59", True),
    ("2025-11-28 18:00", False),
    ("2025-11-28 19:00", False),
    ("2025-07-04 15:00", False),
    ("2025-11-29 15:00", False),
    ("2025-03-10 13:30", True),
    ("2025-11-03 14:00", False),
])
def test_session_time_and_state(t, inside):
    assert BarSchedule().is_session_time(utc(t)) is inside
    assert session_state(utc(t)) == ("open" if inside else "closed")


def test_unknown_interval_suggests_the_right_one():
    with pytest.raises(ConfigError, match="'1min'.*Did you mean '1Min'.*1Day"):
        BarSchedule("1min")


def test_naive_and_out_of_range_times_are_refused():
    schedule = BarSchedule("1Hour")
    with pytest.raises(DataError, match="no time zone"):
        schedule.next_close(pd.Timestamp("2025-11-25 15:00"))
    with pytest.raises(DataError, match="outside the XNYS calendar range"):
        schedule.next_close(utc("1985-01-02 15:00"))
    with pytest.raises(DataError, match="outside the XNYS calendar range"):
        schedule.is_session_time(pd.Timestamp.now(tz="UTC") + pd.DateOffset(years=5))
    with pytest.raises(DataError, match="not a timestamp"):
        schedule.next_close("yesterday-ish")


def test_other_time_zones_are_accepted():
    assert BarSchedule("1Hour").next_close(ny("2025-11-25 10:00")) == utc("2025-11-25 15:30")


def test_empty_range():
    labels = BarSchedule().closes_between(utc("2025-11-26"), utc("2025-11-25"))
    assert len(labels) == 0
    assert str(labels.tz) == "UTC"


def test_daily_closes_equal_daily_close_labels_everywhere():
    start, end = ny("1990-01-01 00:00"), utc("2027-06-30")
    labels = BarSchedule("1Day").closes_between(start, end)
    dates = labels.tz_convert("America/New_York").tz_localize(None).normalize()
    assert len(labels) > 9000
    assert labels.equals(daily_close_labels(dates))


# ---------------------------------------------------------------------------------------------
# BarSchedule: invariants

BASE = utc("1990-01-02")
SPAN_SECONDS = int((utc("2027-06-01") - BASE).total_seconds())
times = st.integers(0, SPAN_SECONDS).map(lambda s: BASE + pd.Timedelta(seconds=s))
intervals = st.sampled_from(INTERVALS)
DAILY = BarSchedule("1Day")


def is_session_close(t: pd.Timestamp) -> bool:
    return DAILY.next_close(t - pd.Timedelta(1, "ns")) == t


@settings(max_examples=150, deadline=None)
@given(interval=intervals, t=times)
def test_next_close_invariants(interval, t):
    schedule = BarSchedule(interval)
    close = schedule.next_close(t)
    assert close > t
    # nothing closes in between: it is the first label after t
    assert schedule.closes_between(t, close).tolist() == [close]
    opened = schedule.bar_open(close)
    assert opened < close
    assert schedule.is_session_time(opened)
    assert schedule.is_session_time(close) or is_session_close(close)


@settings(max_examples=60, deadline=None)
@given(interval=intervals, t=times, days=st.integers(0, 10))
def test_closes_between_invariants(interval, t, days):
    schedule = BarSchedule(interval)
    end = t + pd.Timedelta(days=days, hours=7)
    labels = schedule.closes_between(t, end)
    values = labels.asi8
    assert np.all(np.diff(values) > 0)
    assert len(labels) == 0 or (labels[0] > t and labels[-1] <= end)
    # walking next_close gives the same labels
    walked, cursor = [], t
    while True:
        cursor = schedule.next_close(cursor)
        if cursor > end:
            break
        walked.append(cursor)
    assert labels.tolist() == walked
    for previous, close in zip(labels[:-1], labels[1:], strict=True):
        assert schedule.bar_open(close) >= previous


@settings(max_examples=40, deadline=None)
@given(t=times, days=st.integers(1, 60))
def test_daily_labels_match_the_data_layer(t, days):
    labels = DAILY.closes_between(t, t + pd.Timedelta(days=days))
    dates = labels.tz_convert("America/New_York").tz_localize(None).normalize()
    assert labels.equals(daily_close_labels(dates))


# ---------------------------------------------------------------------------------------------
# check_broker_calendar


def broker_rows(start: str, end: str) -> list[tuple[str, str, str]]:
    """Rows as Alpaca's /v2/calendar gives them, built from XNYS itself."""
    opens = BarSchedule("1Day").closes_between(ny(f"{start} 00:00"), ny(f"{end} 23:59"))
    rows = []
    for close in opens:
        opened = DAILY.bar_open(close).tz_convert("America/New_York")
        local_close = close.tz_convert("America/New_York")
        rows.append((opened.strftime("%Y-%m-%d"), opened.strftime("%H:%M"),
                     local_close.strftime("%H:%M")))
    return rows


def test_broker_calendar_that_agrees():
    rows = broker_rows("2025-11-01", "2025-12-31")
    assert ("2025-11-28", "09:30", "13:00") in rows
    assert ("2025-12-24", "09:30", "13:00") in rows
    assert check_broker_calendar(rows) == []
    assert check_broker_calendar([]) == []


def test_broker_calendar_mismatches_are_named():
    rows = broker_rows("2025-11-20", "2025-12-05")
    rows = [r for r in rows if r[0] != "2025-12-01"]  # broker forgot a session
    rows = [(d, o, "16:00") if d == "2025-11-28" else (d, o, c) for d, o, c in rows]
    rows.append(("2025-11-27", "09:30", "16:00"))  # Thanksgiving listed as open
    problems = check_broker_calendar(rows)
    assert problems == [
        "2025-11-27: the broker lists a session (09:30-16:00 New York) but XNYS is closed",
        "2025-11-28: the broker says 09:30-16:00 New York, XNYS says 09:30-13:00",
        "2025-12-01: XNYS has a session (09:30-16:00 New York) missing from the broker calendar",
    ]


def test_broker_calendar_accepts_alpaca_py_models():
    naive = [(dt.date(2025, 7, 3), dt.datetime(2025, 7, 3, 9, 30), dt.datetime(2025, 7, 3, 13, 0)),
             (dt.date(2025, 7, 7), dt.time(9, 30), dt.time(16, 0))]
    assert check_broker_calendar(naive) == []
    aware = [(dt.date(2025, 7, 3), utc("2025-07-03 13:30").to_pydatetime(),
              utc("2025-07-03 20:00").to_pydatetime())]
    assert check_broker_calendar(aware) == [
        "2025-07-03: the broker says 09:30-16:00 New York, XNYS says 09:30-13:00"]


def test_broker_calendar_rejects_malformed_rows():
    with pytest.raises(DataError, match="row 0: date 'July 3rd'"):
        check_broker_calendar([("July 3rd", "09:30", "13:00")])
    with pytest.raises(DataError, match="row 0: close time '4pm'"):
        check_broker_calendar([("2025-07-03", "09:30", "4pm")])
    with pytest.raises(DataError, match="expected \\(date, open, close\\)"):
        check_broker_calendar([("2025-07-03", "09:30")])
    with pytest.raises(DataError, match="beyond the XNYS calendar range"):
        check_broker_calendar([("1985-07-03", "09:30", "16:00")])


# ---------------------------------------------------------------------------------------------
# SyncedClock


class FakeLocal:
    """A local clock that moves only when slept on (or when a fake broker takes time)."""

    def __init__(self, start: float = 1_764_000_000.0) -> None:
        self.t, self.slept = start, []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def broker_at_offsets(local: FakeLocal, offsets, latency: float = 0.0):
    """A reference at local time plus the next of ``offsets``, answering mid-way through a
    request that takes ``latency`` seconds."""
    pending = iter(offsets)

    def reference():
        local.t += latency / 2
        value = pd.Timestamp(round((local.t + next(pending)) * 1e9), tz="UTC")
        local.t += latency / 2
        return value

    return reference


def test_sync_takes_the_median_of_the_last_samples():
    local = FakeLocal()
    offsets = [3, 3, 90, 3, -50, 3, 4, 4, 4, 4, 4]
    # the broker answers mid-request: the midpoint of the local readings cancels the latency
    clock = SyncedClock(broker_at_offsets(local, offsets, latency=0.4), local=local, sleep=local.sleep, samples=5)
    medians = [clock.sync() for _ in range(11)]
    assert medians[:6] == pytest.approx([3, 3, 3, 3, 3, 3], abs=1e-6)
    assert medians[-1] == pytest.approx(4, abs=1e-6)  # old samples have left the window
    assert clock.offset == pytest.approx(4, abs=1e-6)
    assert clock.drift == pytest.approx(4, abs=1e-6)


def test_sync_uses_the_request_midpoint():
    local = FakeLocal()
    # a 3 s request whose answer was produced 1 s in: the midpoint assumption misses by 0.5 s
    def broker():
        local.t += 1.0
        value = pd.Timestamp(round((local.t + 10) * 1e9), tz="UTC")
        local.t += 2.0
        return value

    clock = SyncedClock(broker, local=local, samples=1)
    assert clock.sync() == pytest.approx(10.0 - 0.5, abs=1e-6)


def test_now_is_local_plus_offset_in_utc():
    local = FakeLocal()
    clock = SyncedClock(broker_at_offsets(local, [-2.5]), local=local)
    assert clock.now() == pd.Timestamp(local.t * 1e9, tz="UTC")  # before any sync
    clock.sync()
    assert clock.now() == pd.Timestamp((local.t - 2.5) * 1e9, tz="UTC")
    assert str(clock.now().tz) == "UTC"


def test_no_reference_means_local_time():
    local = FakeLocal()
    clock = SyncedClock(local=local)
    assert clock.sync() == 0.0
    assert clock.offset == 0.0
    clock.check()
    assert clock.now() == pd.Timestamp(local.t * 1e9, tz="UTC")


def test_drift_error_names_both_times_the_limit_and_the_fix():
    local = FakeLocal()
    clock = SyncedClock(broker_at_offsets(local, [7.25]), local=local, max_drift=5.0)
    clock.sync()
    with pytest.raises(ClockDriftError) as info:
        clock.check()
    error = info.value
    assert isinstance(error, BrokerError)
    message = str(error)
    assert pd.Timestamp(local.t * 1e9, tz="UTC").isoformat() in message
    assert pd.Timestamp((local.t + 7.25) * 1e9, tz="UTC").isoformat() in message
    assert "7.250 s" in message and "allowed 5 s" in message
    assert "NTP" in message and "--max-clock-drift" in message
    assert error.drift == pytest.approx(7.25) and error.limit == 5.0
    assert str(pickle.loads(pickle.dumps(error))) == message


def test_drift_within_limit_or_unchecked_passes():
    local = FakeLocal()
    SyncedClock(broker_at_offsets(local, [4.9]), local=local, max_drift=5.0).sync()
    within = SyncedClock(broker_at_offsets(local, [-4.9]), local=local, max_drift=5.0)
    within.sync()
    within.check()
    unchecked = SyncedClock(broker_at_offsets(local, [86_400.0]), local=local, max_drift=None)
    unchecked.sync()
    unchecked.check()
    # the reference defines market time
    assert unchecked.now() == pd.Timestamp((local.t + 86_400.0) * 1e9, tz="UTC")


def test_sleep_until_without_reference_sleeps_in_poll_chunks():
    local = FakeLocal()
    clock = SyncedClock(local=local, sleep=local.sleep)
    when = clock.now() + pd.Timedelta(seconds=2.5)
    assert clock.sleep_until(when, poll=1.0)
    assert local.slept == pytest.approx([1.0, 1.0, 0.5])
    assert clock.now() >= when


def test_sleep_until_a_past_time_returns_at_once():
    local = FakeLocal()
    clock = SyncedClock(local=local, sleep=local.sleep)
    assert clock.sleep_until(clock.now() - pd.Timedelta(minutes=1))
    assert local.slept == []


def test_sleep_until_ends_early_when_the_reference_jumps():
    local = FakeLocal()
    frozen = utc("2025-11-25 20:00")
    jumped = {"on": False}

    def broker():
        return frozen + pd.Timedelta(hours=1) if jumped["on"] else frozen

    def sleep(seconds):
        local.sleep(seconds)
        jumped["on"] = len(local.slept) >= 3  # the broker clock jumps after the third chunk

    clock = SyncedClock(broker, local=local, sleep=sleep, max_drift=None)
    assert clock.sleep_until(utc("2025-11-25 20:30"), poll=1.0)
    # a frozen reference holds market time; the jump is adopted once a majority sees it
    assert len(local.slept) <= 3 + 3
    assert sum(local.slept) < 10
    assert clock.now() >= utc("2025-11-25 20:30")


def test_sleep_until_stops_on_request():
    local = FakeLocal()
    frozen = utc("2025-11-25 20:00")
    clock = SyncedClock(lambda: frozen, local=local, sleep=local.sleep, max_drift=None)
    assert not clock.sleep_until(utc("2025-11-25 20:30"), poll=0.5,
                                 should_stop=lambda: len(local.slept) >= 20)
    assert len(local.slept) == 20
    # market time follows the frozen reference rather than the advancing local clock
    assert abs((clock.now() - frozen).total_seconds()) < 2
    assert not clock.sleep_until(utc("2025-11-25 20:30"), should_stop=lambda: True)


def test_clock_configuration_errors():
    with pytest.raises(ConfigError, match="samples=0"):
        SyncedClock(samples=0)
    with pytest.raises(ConfigError, match="max_drift=-1"):
        SyncedClock(max_drift=-1)
    with pytest.raises(ConfigError, match="max_drift='5'"):
        SyncedClock(max_drift="5")
    with pytest.raises(ConfigError, match="poll=nan"):
        SyncedClock().sleep_until(utc("2025-11-25"), poll=float("nan"))
    with pytest.raises(ConfigError, match="poll=0"):
        SyncedClock().sleep_until(utc("2025-11-25"), poll=0)


def test_naive_reference_is_refused():
    clock = SyncedClock(lambda: pd.Timestamp("2025-11-25 20:00"))
    with pytest.raises(DataError, match="reference clock time .* has no time zone"):
        clock.sync()
