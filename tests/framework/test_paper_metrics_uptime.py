"""The uptime figure of framework.paper_metrics: market hours from health spans, else sessions.

Records are built by hand over the week of 2024-07-08 (XNYS summer sessions are 13:30-20:00
UTC, so each full session is 6.5 market hours).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.calendars import daily_close_labels, xnys_sessions
from framework.paper_metrics import paper_metrics, uptime_detail
from framework.paper_record import PaperRecord
from framework.types import Bars

HOUR = 3600.0
WEEK = ("2024-07-08", "2024-07-12")
# healthy 2024-07-09 14:00-20:00 and 2024-07-11 13:30-16:30 UTC (9 market hours)
SPANS = (("2024-07-09T14:00:00+00:00", "2024-07-09T20:00:00+00:00"),
         ("2024-07-11T13:30:00+00:00", "2024-07-11T16:30:00+00:00"))


def _record(spans=None, skip: tuple[str, ...] = ()) -> PaperRecord:
    """Five daily equity snapshots (minus the sessions in ``skip``), one round trip, and the
    given health spans (None: no spans, as a replay)."""
    sessions, _, _ = xnys_sessions()
    days = sessions[(sessions >= WEEK[0]) & (sessions <= WEEK[1])]
    days = days[~days.isin(pd.DatetimeIndex(list(skip)))]
    index = daily_close_labels(days)
    equity = 100_000.0 * np.cumprod(np.full(len(index), 1.001))
    frame = pd.DataFrame({"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0,
                          "volume": 1e6}, index=index)
    fills = pd.DataFrame([
        {"execution_id": "x1", "client_order_id": "o1", "symbol": "AAA", "quantity": 10.0,
         "price": 100.0, "commission": 1.0, "slippage": 0.0, "impact": 0.0, "time": index[0]},
        {"execution_id": "x2", "client_order_id": "o2", "symbol": "AAA", "quantity": -10.0,
         "price": 102.0, "commission": 1.0, "slippage": 0.0, "impact": 0.0, "time": index[2]},
    ])
    empty_log = pd.DataFrame(columns=["id", "time", "kind", "message", "market_time"])
    return PaperRecord(
        run={"run_id": "u", "strategy": "x", "symbols": ["AAA"], "kill_switch": "ACTIVE",
             "config": {"initial_cash": 100_000.0}},
        equity=pd.DataFrame({"cash": equity, "equity": equity}, index=index),
        fills=fills, orders=pd.DataFrame(), decisions=pd.DataFrame(), events=empty_log,
        errors=pd.DataFrame(columns=["id", "time", "message", "detail", "market_time"]),
        bars=Bars.from_frames({"AAA": frame}),
        spans=None if spans is None else pd.DataFrame(
            list(spans), columns=["started_at", "last_beat_at"]),
    )


def test_spans_measure_market_hours_from_the_first_span():
    m = paper_metrics(_record(SPANS))
    assert m["uptime_basis"] == "market hours"
    # from 07-09 14:00 (first span) to the last bar 07-12 20:00: 6 + 3 x 6.5 market hours
    assert m["market_hours"] == pytest.approx(25.5) and m["uptime_hours"] == pytest.approx(9.0)
    assert m["uptime"] == pytest.approx(9.0 / 25.5)
    # down 07-11 16:30 .. 07-12 close: 3.5 + 6.5 market hours (the night does not count)
    assert m["longest_outage_hours"] == pytest.approx(10.0)
    assert uptime_detail(m) == ("runner healthy 9.0 of 25.5 market hours; longest outage 10.0 h")
    # the sessions are still counted, but they are not the uptime
    assert (m["sessions_processed"], m["sessions_expected"]) == (5, 5)


@pytest.mark.parametrize(("day", "uptime", "hours", "outage"), [
    ("2024-07-09", 1.0, 6.0, 0.0),  # a date is its whole day; the window opens at the span
    ("2024-07-10", 0.0, 6.5, 6.5),  # a whole session without a beat
    ("2024-07-11", 3.0 / 6.5, 6.5, 3.5),
])
def test_a_period_measures_its_own_market_hours(day, uptime, hours, outage):
    m = paper_metrics(_record(SPANS), day, day)
    assert m["uptime_basis"] == "market hours"
    assert m["uptime"] == pytest.approx(uptime) and m["market_hours"] == pytest.approx(hours)
    assert m["longest_outage_hours"] == pytest.approx(outage)
    assert "market hours" in uptime_detail(m)


def test_a_period_before_the_first_span_has_no_measured_uptime():
    m = paper_metrics(_record(SPANS), "2024-07-08", "2024-07-08")
    assert m["uptime_basis"] == "market hours" and math.isnan(m["uptime"])


def test_timestamps_and_strings_give_the_same_uptime():
    stamps = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in SPANS]
    assert paper_metrics(_record(stamps))["uptime"] == paper_metrics(_record(SPANS))["uptime"]


@pytest.mark.parametrize("spans", [None, ()])
def test_without_spans_uptime_is_sessions_processed(spans):
    m = paper_metrics(_record(spans, skip=("2024-07-10",)))
    assert m["uptime_basis"] == "sessions processed"
    assert (m["sessions_processed"], m["sessions_expected"]) == (4, 5)
    assert m["uptime"] == pytest.approx(0.8)
    assert uptime_detail(m) == "4 of 5 sessions processed"
    assert "uptime_hours" not in m


def test_spans_replace_the_session_count():
    # a missed session lowers the replay figure; with spans only the runner's health counts
    m = paper_metrics(_record(SPANS, skip=("2024-07-10",)))
    assert m["uptime_basis"] == "market hours" and m["uptime"] == pytest.approx(9.0 / 25.5)


_MINUTES = st.integers(0, 5 * 24 * 60)  # minutes after 2024-07-08 00:00 UTC


@settings(max_examples=25, deadline=None)
@given(pairs=st.lists(st.tuples(_MINUTES, _MINUTES), min_size=1, max_size=4))
def test_uptime_is_a_share_of_market_hours(pairs):
    base = pd.Timestamp("2024-07-08", tz="UTC")
    spans = [(base + pd.Timedelta(minutes=min(a, b)), base + pd.Timedelta(minutes=max(a, b)))
             for a, b in pairs]
    m = paper_metrics(_record(spans))
    assert m["uptime_basis"] == "market hours"
    if math.isnan(m["uptime"]):  # every span starts after the last bar
        assert min(s for s, _ in spans) >= pd.Timestamp("2024-07-12 20:00", tz="UTC")
        return
    assert 0.0 <= m["uptime"] <= 1.0
    assert 0.0 <= m["uptime_hours"] <= m["market_hours"] + 1e-9
    assert m["longest_outage_hours"] <= m["market_hours"] - m["uptime_hours"] + 1e-9
    # one more span over the whole week: always fully up
    whole = [*spans, (base, base + pd.Timedelta(days=6))]
    assert paper_metrics(_record(whole))["uptime"] == pytest.approx(1.0)
