"""Timeframes, symbol names and the canonical-frame helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.data.frames import (
    canonical_frame,
    frame_hash,
    normalize_symbol,
    parse_timeframe,
    session_dates,
    timeframe_from_spacing,
)
from framework.errors import DataError


@pytest.mark.parametrize(
    ("text", "name", "length"),
    [
        ("1d", "1d", pd.Timedelta(days=1)),
        ("1D", "1d", pd.Timedelta(days=1)),
        ("1day", "1d", pd.Timedelta(days=1)),
        ("1min", "1min", pd.Timedelta(minutes=1)),
        ("5min", "5min", pd.Timedelta(minutes=5)),
        ("15minute", "15min", pd.Timedelta(minutes=15)),
        ("1h", "1h", pd.Timedelta(hours=1)),
    ],
)
def test_parse_timeframe_accepts_the_documented_spellings(text, name, length):
    tf = parse_timeframe(text)
    assert (tf.name, tf.length) == (name, length)
    assert tf.daily == (name == "1d")


@pytest.mark.parametrize("text", ["", "d", "0min", "2d", "5s", "weekly", "-5min"])
def test_parse_timeframe_rejects_others_naming_the_value(text):
    with pytest.raises(DataError, match=repr(text).replace("(", r"\(")) as info:
        parse_timeframe(text)
    assert "1d" in str(info.value)


@pytest.mark.parametrize(
    ("spacing", "name"),
    [
        (pd.Timedelta(minutes=1), "1min"),
        (pd.Timedelta(minutes=5), "5min"),
        (pd.Timedelta(hours=1), "1h"),
        (pd.Timedelta(days=1), "1d"),
        (pd.Timedelta(days=3), "1d"),
    ],
)
def test_timeframe_from_spacing(spacing, name):
    assert timeframe_from_spacing(spacing).name == name


def test_timeframe_from_spacing_rejects_fractional_minutes():
    with pytest.raises(DataError, match="whole number of minutes"):
        timeframe_from_spacing(pd.Timedelta(seconds=90))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("spy", "SPY"),
        ("^GSPC", "GSPC"),
        (" brk-b ", "BRK-B"),
        ("BTC-USD", "BTC-USD"),
        ("ES=F", "ES=F"),
    ],
)
def test_normalize_symbol(raw, expected):
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize("raw", ["", "SP Y", "../etc", "A/B", "X" * 40])
def test_normalize_symbol_rejects_names_unsafe_as_file_names(raw):
    with pytest.raises(DataError, match="invalid symbol"):
        normalize_symbol(raw)


def test_frame_hash_changes_with_any_value_or_time():
    index = pd.DatetimeIndex(["2024-01-02 21:00", "2024-01-03 21:00"], tz="UTC")
    cols = {n: np.array([1.0, 2.0]) for n in ("open", "high", "low", "close", "volume")}
    base = canonical_frame(index, cols)
    assert frame_hash(base) == frame_hash(base.copy())
    moved = canonical_frame(index + pd.Timedelta(minutes=1), cols)
    changed = base.copy()
    changed.iloc[1, 3] = 2.0000001
    assert len({frame_hash(base), frame_hash(moved), frame_hash(changed)}) == 3


def test_session_dates_are_new_york_dates():
    labels = pd.DatetimeIndex(
        ["2025-11-28 18:00", "2025-07-01 20:00", "2025-01-02 02:00"], tz="UTC"
    )
    got = session_dates(labels)
    assert list(got.strftime("%Y-%m-%d")) == ["2025-11-28", "2025-07-01", "2025-01-01"]
