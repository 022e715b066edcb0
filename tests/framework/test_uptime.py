"""Tests for framework.uptime: market-hours uptime of health spans."""

from __future__ import annotations

import json
import math
import time
import warnings

import exchange_calendars
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError, DataError
from framework.uptime import MAX_GAPS, Uptime, UptimeSpec, market_uptime

HOUR = 3600.0


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def span(started: str, last_beat: str, span_id: int = 1) -> dict:
    """A store row; times are UTC wall times like '2024-07-09 14:00'."""
    return {"id": span_id, "started_at": utc(started).isoformat(),
            "last_beat_at": utc(last_beat).isoformat(), "ended_at": None, "reason": None}


def spans(*pairs: tuple[str, str]) -> list[dict]:
    return [span(a, b, i) for i, (a, b) in enumerate(pairs, start=1)]


# ---------------------------------------------------------------------------------------------
# market_uptime: scenario table (summer sessions are 13:30-20:00 UTC, winter 14:30-21:00 UTC)

SCENARIOS = [
    # (name, spans, window start, window end, healthy seconds, market seconds)
    ("span inside one session", [("2024-07-09 14:00", "2024-07-09 15:00")],
     "2024-07-09", "2024-07-10", 1 * HOUR, 6.5 * HOUR),
    ("overnight span counts only market hours", [("2024-07-09 19:00", "2024-07-10 14:30")],
     "2024-07-09", "2024-07-11", 2 * HOUR, 13 * HOUR),
    ("weekend counts zero", [("2024-07-06 00:00", "2024-07-08 00:00")],
     "2024-07-06", "2024-07-08", 0.0, 0.0),
    ("holiday 2024-07-04 counts zero", [("2024-07-04 00:00", "2024-07-05 00:00")],
     "2024-07-04", "2024-07-05", 0.0, 0.0),
    ("half day before the holiday, holiday, full day", [("2024-07-01 00:00", "2024-07-08 00:00")],
     "2024-07-03", "2024-07-06", 10 * HOUR, 10 * HOUR),  # 3.5 h + 0 + 6.5 h
    ("half day 2024-11-29 closes 18:00 UTC", [("2024-11-29 17:00", "2024-11-29 19:00")],
     "2024-11-29", "2024-11-30", 1 * HOUR, 3.5 * HOUR),
    ("overlapping spans are not double counted",
     [("2024-07-09 14:00", "2024-07-09 16:00"), ("2024-07-09 15:00", "2024-07-09 17:00"),
      ("2024-07-09 15:00", "2024-07-09 17:00"), ("2024-07-09 15:30", "2024-07-09 15:45")],
     "2024-07-09", "2024-07-10", 3 * HOUR, 6.5 * HOUR),
    ("spans are clipped to the window", [("2024-07-08 00:00", "2024-07-12 00:00")],
     "2024-07-09 15:00", "2024-07-09 16:00", 1 * HOUR, 1 * HOUR),
    ("zero-length span counts zero", [("2024-07-09 15:00", "2024-07-09 15:00")],
     "2024-07-09", "2024-07-10", 0.0, 6.5 * HOUR),
    ("no spans", [], "2024-07-08", "2024-07-13", 0.0, 5 * 6.5 * HOUR),
]


@pytest.mark.parametrize(("name", "pairs", "start", "end", "healthy", "market"), SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_market_uptime_scenarios(name, pairs, start, end, healthy, market):
    result = market_uptime(spans(*pairs), utc(start), utc(end))
    assert result.healthy_seconds == healthy
    assert result.market_seconds == market
    if market:
        assert result.ratio == pytest.approx(healthy / market)
    else:
        assert math.isnan(result.ratio)


def test_gaps_list_outages_in_market_time_longest_first():
    result = market_uptime(
        spans(("2024-07-09 13:30", "2024-07-09 15:00"), ("2024-07-09 16:00", "2024-07-09 19:00"),
              ("2024-07-10 15:00", "2024-07-10 19:30")),
        utc("2024-07-09"), utc("2024-07-11"))
    # 15:00-16:00 (1 h); 19:00 to 15:00 next day: 1 h + 1.5 h of market time over the night;
    # 19:30-20:00 (0.5 h)
    assert result.gaps == (
        (utc("2024-07-09 19:00"), utc("2024-07-10 15:00")),
        (utc("2024-07-09 15:00"), utc("2024-07-09 16:00")),
        (utc("2024-07-10 19:30"), utc("2024-07-10 20:00")),
    )
    assert result.gap_seconds == (2.5 * HOUR, 1 * HOUR, 0.5 * HOUR)
    assert result.longest_gap_seconds == 2.5 * HOUR
    assert result.healthy_seconds + sum(result.gap_seconds) == result.market_seconds


def test_gaps_keep_only_the_longest_ones():
    # 13 spans leave 12 gaps of 1..12 minutes between them
    edges, t = [], utc("2024-07-09 13:30")
    for minutes in range(1, 13):
        edges.append((t, t + pd.Timedelta(minutes=1)))
        t = t + pd.Timedelta(minutes=1 + minutes)
    rows = [{"id": i, "started_at": a.isoformat(), "last_beat_at": b.isoformat()}
            for i, (a, b) in enumerate(edges)]
    rows.append({"id": 99, "started_at": t.isoformat(), "last_beat_at": "2024-07-09T20:00Z"})
    result = market_uptime(rows, utc("2024-07-09"), utc("2024-07-10"))
    assert len(result.gaps) == MAX_GAPS
    assert result.gap_seconds == tuple(60.0 * m for m in range(12, 2, -1))
    assert result.longest_gap_seconds == 12 * 60.0


def test_no_spans_is_one_outage_and_ratio_zero():
    result = market_uptime([], "2024-07-08T00:00Z", "2024-07-13T00:00Z")
    assert result.ratio == 0.0
    assert result.gaps == ((utc("2024-07-08 13:30"), utc("2024-07-12 20:00")),)
    assert result.longest_gap_seconds == result.market_seconds == 5 * 6.5 * HOUR


def test_empty_window_has_nan_ratio_and_json_null():
    result = market_uptime(spans(("2024-07-09 14:00", "2024-07-09 15:00")),
                           utc("2024-07-09 14:30"), utc("2024-07-09 14:30"))
    assert (result.healthy_seconds, result.market_seconds, result.gaps) == (0.0, 0.0, ())
    assert math.isnan(result.ratio)
    assert json.loads(json.dumps(result.to_dict()))["ratio"] is None


def test_to_dict_is_json_safe():
    result = market_uptime(spans(("2024-07-09 14:00", "2024-07-09 15:00")),
                           "2024-07-09T00:00:00+00:00", "2024-07-10T00:00:00+00:00")
    data = json.loads(json.dumps(result.to_dict()))
    assert data["healthy_seconds"] == HOUR
    assert data["ratio"] == pytest.approx(1 / 6.5)
    assert data["gaps"][0] == {"start": "2024-07-09T15:00:00+00:00",
                               "end": "2024-07-09T20:00:00+00:00", "market_seconds": 5 * HOUR}
    assert (data["start"], data["calendar"]) == ("2024-07-09T00:00:00+00:00", "XNYS")


def test_span_times_in_other_offsets_and_timestamps_are_accepted():
    rows = [{"id": 1, "started_at": "2024-07-09T10:00:00-04:00",  # 14:00 UTC
             "last_beat_at": utc("2024-07-09 15:00")}]
    assert market_uptime(rows, utc("2024-07-09"), utc("2024-07-10")).healthy_seconds == HOUR


@pytest.mark.parametrize(("rows", "start", "end", "match"), [
    ([], "2024-07-09", "2024-07-10T00:00Z", "no time zone"),
    ([], "2024-07-10T00:00Z", "2024-07-09T00:00Z", "before its start"),
    ([], "1980-01-01T00:00Z", "1980-02-01T00:00Z", "outside the XNYS calendar range"),
    ([{"id": 7, "started_at": "2024-07-09T15:00", "last_beat_at": "2024-07-09T16:00Z"}],
     "2024-07-09T00:00Z", "2024-07-10T00:00Z", "span 7 started_at .* no time zone"),
    ([{"id": 8, "started_at": "2024-07-09T15:00Z", "last_beat_at": "2024-07-09T14:00Z"}],
     "2024-07-09T00:00Z", "2024-07-10T00:00Z", "span 8 has last_beat_at .* before started_at"),
    ([{"id": 9, "started_at": "2024-07-09T15:00Z", "last_beat_at": "soon+00:00"}],
     "2024-07-09T00:00Z", "2024-07-10T00:00Z", "span 9 last_beat_at 'soon"),
    ([{"id": 10, "started_at": "2024-07-09T15:00Z"}],
     "2024-07-09T00:00Z", "2024-07-10T00:00Z", "span 10 .* expected a mapping with"),
])
def test_bad_input_raises_data_error_naming_the_value(rows, start, end, match):
    with pytest.raises(DataError, match=match):
        market_uptime(rows, start, end)


def test_unknown_calendar_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown calendar 'XNYZ'.*Valid calendars: .*XNYS"):
        market_uptime([], utc("2024-07-09"), utc("2024-07-10"), calendar="XNYZ")


@pytest.mark.parametrize("beat", [0, -1.0, math.nan, math.inf, True, "60"])
def test_uptime_spec_refuses_bad_beat_seconds(beat):
    with pytest.raises(ConfigError, match=f"beat_seconds is {beat!r}"):
        UptimeSpec(beat_seconds=beat)


def test_uptime_spec_defaults_and_bad_calendar():
    assert UptimeSpec() == UptimeSpec(beat_seconds=60.0, calendar="XNYS")
    with pytest.raises(ConfigError, match="'NYSEE'"):
        UptimeSpec(calendar="NYSEE")


def test_months_of_minute_spans_are_fast():
    # three months of one-minute spans healthy for 45 s each: ~131,000 rows
    starts = pd.date_range("2024-01-01", "2024-04-01", freq="1min", tz="UTC")
    iso_format = "%Y-%m-%dT%H:%M:%S+00:00"
    beats = (starts + pd.Timedelta(seconds=45)).strftime(iso_format)
    rows = [{"id": i, "started_at": s, "last_beat_at": b}
            for i, (s, b) in enumerate(zip(starts.strftime(iso_format), beats, strict=True))]
    began = time.perf_counter()
    result = market_uptime(rows, utc("2024-01-01"), utc("2024-04-01"))
    assert time.perf_counter() - began < 3.0  # ~0.5 s; a per-minute loop would take far longer
    assert result.ratio == pytest.approx(0.75)
    assert result.longest_gap_seconds == 15.0


# ---------------------------------------------------------------------------------------------
# market_uptime: properties against a minute-by-minute reference

WINDOW_START = utc("2024-11-25")  # Thanksgiving on the 28th, half day on the 29th, a weekend
WINDOW_MINUTES = 9 * 24 * 60


def _reference_market_minutes() -> np.ndarray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        calendar = exchange_calendars.get_calendar("XNYS", start="2024-11-01", end="2024-12-31")
    minutes = WINDOW_START + pd.to_timedelta(np.arange(WINDOW_MINUTES), unit="min")
    open_ = np.zeros(WINDOW_MINUTES, dtype=bool)
    for session_open, session_close in zip(calendar.opens, calendar.closes, strict=True):
        open_ |= (minutes >= session_open) & (minutes < session_close)
    return open_


MARKET_MINUTES = _reference_market_minutes()
minute_spans = st.lists(
    st.tuples(st.integers(0, WINDOW_MINUTES), st.integers(0, 3 * 24 * 60)), max_size=8)


def _rows(pairs: list[tuple[int, int]]) -> list[dict]:
    at = lambda m: (WINDOW_START + pd.Timedelta(minutes=m)).isoformat()  # noqa: E731
    return [{"id": i, "started_at": at(s), "last_beat_at": at(s + d)}
            for i, (s, d) in enumerate(pairs)]


def _uptime(pairs: list[tuple[int, int]]) -> Uptime:
    end = WINDOW_START + pd.Timedelta(minutes=WINDOW_MINUTES)
    return market_uptime(_rows(pairs), WINDOW_START, end)


@settings(max_examples=60, deadline=None)
@given(minute_spans)
def test_healthy_time_matches_a_minute_by_minute_count(pairs):
    result = _uptime(pairs)
    covered = np.zeros(WINDOW_MINUTES, dtype=bool)
    for start, duration in pairs:
        covered[start:start + duration] = True
    assert result.market_seconds == 60.0 * MARKET_MINUTES.sum()
    assert result.healthy_seconds == 60.0 * (covered & MARKET_MINUTES).sum()
    assert 0.0 <= result.healthy_seconds <= result.market_seconds
    if len(result.gaps) < MAX_GAPS:
        assert result.healthy_seconds + sum(result.gap_seconds) == result.market_seconds
    assert result.longest_gap_seconds <= result.market_seconds - result.healthy_seconds


@settings(max_examples=60, deadline=None)
@given(minute_spans, st.tuples(st.integers(0, WINDOW_MINUTES), st.integers(0, 3 * 24 * 60)))
def test_adding_a_span_never_lowers_healthy_time(pairs, extra):
    before, after = _uptime(pairs), _uptime([*pairs, extra])
    assert after.healthy_seconds >= before.healthy_seconds
    assert after.longest_gap_seconds <= before.longest_gap_seconds


@settings(max_examples=60, deadline=None)
@given(minute_spans, st.integers(0, WINDOW_MINUTES), st.integers(0, 3 * 24 * 60),
       st.floats(0, 1))
def test_splitting_a_span_into_touching_pieces_changes_nothing(pairs, start, duration, where):
    cut = round(duration * where)
    whole = _uptime([*pairs, (start, duration)])
    split = _uptime([*pairs, (start, cut), (start + cut, duration - cut)])
    assert split.healthy_seconds == whole.healthy_seconds
    assert (split.gaps, split.gap_seconds) == (whole.gaps, whole.gap_seconds)
