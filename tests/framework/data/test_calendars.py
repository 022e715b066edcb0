"""Daily close-time labels and calendar gaps against XNYS."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.calendars import calendar_gaps, daily_close_labels
from framework.data.frames import session_dates


@pytest.mark.parametrize(
    ("date", "label"),
    [
        ("2025-11-28", "2025-11-28 18:00"),  # half day after Thanksgiving: 13:00 New York
        ("2025-07-01", "2025-07-01 20:00"),  # summer (EDT) regular close
        ("2025-01-02", "2025-01-02 21:00"),  # winter (EST) regular close
        ("2024-12-24", "2024-12-24 18:00"),  # Christmas Eve half day
        ("2025-11-29", "2025-11-29 21:00"),  # Saturday: 16:00 New York (EST)
        ("2025-06-14", "2025-06-14 20:00"),  # Saturday in summer: 16:00 New York (EDT)
        ("2025-12-25", "2025-12-25 21:00"),  # holiday: 16:00 New York
        ("1999-01-04", "1999-01-04 21:00"),  # before exchange_calendars' default first session
        ("2031-03-03", "2031-03-03 21:00"),  # beyond the calendar's end: 16:00 New York
    ],
)
def test_daily_labels_follow_the_documented_rule(date, label):
    got = daily_close_labels(pd.DatetimeIndex([date]))
    assert got[0] == pd.Timestamp(label, tz="UTC")
    assert str(got.tz) == "UTC"


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.dates(
            min_value=pd.Timestamp("1990-01-01").date(), max_value=pd.Timestamp("2035-12-31").date()
        ),
        min_size=1,
        max_size=40,
        unique=True,
    )
)
def test_labels_keep_the_date_and_order(dates):
    index = pd.DatetimeIndex(sorted(dates))
    labels = daily_close_labels(index)
    # The New York date of each label is the bar's own date, so order is preserved too.
    assert (session_dates(labels) == index).all()
    assert labels.is_monotonic_increasing
    hours = labels.tz_convert("America/New_York").hour
    assert set(hours) <= {13, 14, 16}  # regular, early (13:00) and historic 14:00 closes


def test_calendar_gaps_count_missing_sessions_and_extra_dates():
    week = pd.DatetimeIndex(["2025-11-24", "2025-11-25", "2025-11-28", "2025-11-29"])
    gaps = calendar_gaps(week)
    # 26th is a session without a bar, 27th is Thanksgiving (no session), 29th is a Saturday.
    assert (gaps.missing, gaps.missing_examples, gaps.extra) == (1, ("2025-11-26",), 1)
    text = " ".join(gaps.messages())
    assert "1 XNYS session(s) have no bar" in text and "2025-11-26" in text
    assert calendar_gaps(pd.DatetimeIndex(["2025-11-24", "2025-11-25"])).messages() == []
