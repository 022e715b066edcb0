"""CSV layouts, close-time labelling, the ratio adjustment and the write/read round trip."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.calendars import daily_close_labels
from framework.data.csv_files import read_csv_bars, split_file_name, write_csv_bars
from framework.data.frames import canonical_frame
from framework.errors import DataValidationError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SPY.csv.gz", ("SPY", None)),
        ("spy.csv", ("spy", None)),
        ("BRK-B.csv.gz", ("BRK-B", None)),
        ("SPY_5min.csv.gz", ("SPY", "5min")),
        ("SPY_1min_2024.csv.gz", ("SPY", "1min")),
        ("QQQ_1h.csv", ("QQQ", "1h")),
        ("my_file.csv", ("my_file", None)),
    ],
)
def test_split_file_name(name, expected):
    assert split_file_name(name) == expected


def test_shared_format_with_equal_adj_close_is_already_adjusted(tmp_path):
    path = tmp_path / "ABC.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(
            "date,open,high,low,close,adj_close,volume\n"
            "2025-11-26,10,11,9,10.5,10.5,100\n2025-11-28,10.5,12,10,11,11,200\n"
        )
    bars = read_csv_bars(path)
    assert bars.symbol == "ABC" and bars.timeframe.name == "1d"
    assert bars.info.adjusted and "already" in bars.info.note
    assert list(bars.frame.index) == [
        pd.Timestamp("2025-11-26 21:00", tz="UTC"),
        pd.Timestamp("2025-11-28 18:00", tz="UTC"),
    ]
    assert bars.frame["close"].tolist() == [10.5, 11.0]
    assert bars.info.source.startswith("csv:") and str(path) in bars.info.source


def test_yahoo_header_and_ratio_adjustment(tmp_path):
    path = tmp_path / "XYZ.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,100,110,90,100,50,1000\n"
        "2024-01-03,100,104,96,102,102,2000\n"
    )
    bars = read_csv_bars(path)
    frame = bars.frame
    # Row 1: factor 0.5 halves OHLC and doubles volume; row 2: factor 1 keeps it.
    assert frame.iloc[0].tolist() == [50.0, 55.0, 45.0, 50.0, 2000.0]
    assert frame.iloc[1].tolist() == [100.0, 104.0, 96.0, 102.0, 2000.0]
    assert bars.info.adjusted and "ratio method" in bars.info.note


def test_without_adj_close_prices_are_kept_and_marked_unadjusted(tmp_path):
    path = tmp_path / "RAW.csv"
    path.write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n")
    bars = read_csv_bars(path)
    assert not bars.info.adjusted and "not adjusted" in bars.info.note
    assert bars.frame["close"].tolist() == [1.5]


def test_missing_volume_column_is_a_warning_and_nan(tmp_path):
    path = tmp_path / "NOVOL.csv"
    path.write_text("date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n")
    bars = read_csv_bars(path)
    assert np.isnan(bars.frame["volume"].iloc[0])
    assert any("no volume column" in w for w in bars.warnings)


def test_empty_volume_cells_are_allowed_as_not_reported(tmp_path):
    path = tmp_path / "V.csv"
    path.write_text(
        "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,\n2024-01-03,1,2,0.5,1.5,7\n"
    )
    assert read_csv_bars(path).frame["volume"].isna().tolist() == [True, False]


def test_intraday_start_times_become_close_labels(tmp_path):
    path = tmp_path / "SPY_5min.csv"
    starts = ["2025-11-28T14:30:00Z", "2025-11-28T14:35:00Z", "2025-11-28T17:55:00Z"]
    path.write_text(
        "timestamp,open,high,low,close,volume\n" + "".join(f"{s},1,2,0.5,1.5,10\n" for s in starts)
    )
    bars = read_csv_bars(path)
    assert bars.timeframe.name == "5min"
    expected = pd.DatetimeIndex(starts).tz_convert("UTC") + pd.Timedelta(minutes=5)
    assert (bars.frame.index == expected).all()
    assert bars.frame.index[-1] == pd.Timestamp("2025-11-28 18:00", tz="UTC")  # half-day close


def test_intraday_timeframe_inferred_from_spacing_without_name_hint(tmp_path):
    path = tmp_path / "AAA.csv"
    stamps = pd.date_range("2025-09-15 13:30", periods=30, freq="1min", tz="UTC")
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{s.isoformat()},1,2,0.5,1.5,10\n" for s in stamps)
    )
    bars = read_csv_bars(path)
    assert bars.timeframe.name == "1min"
    assert bars.frame.index[0] == pd.Timestamp("2025-09-15 13:31", tz="UTC")


def test_file_name_timeframe_contradicting_the_spacing_is_an_error(tmp_path):
    path = tmp_path / "AAA_5min.csv"
    stamps = pd.date_range("2025-09-15 13:30", periods=30, freq="1min", tz="UTC")
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{s.isoformat()},1,2,0.5,1.5,10\n" for s in stamps)
    )
    with pytest.raises(DataValidationError, match="spaced 0 days 00:01:00 apart"):
        read_csv_bars(path)


def test_intraday_without_time_zone_is_rejected(tmp_path):
    path = tmp_path / "N_1min.csv"
    path.write_text("timestamp,open,high,low,close,volume\n2025-09-15 13:30:00,1,2,0.5,1.5,10\n")
    with pytest.raises(DataValidationError, match="must carry a time zone"):
        read_csv_bars(path)


def test_mixed_zone_and_naive_timestamps_are_rejected(tmp_path):
    path = tmp_path / "M_1min.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n2025-09-15T13:30:00Z,1,2,0.5,1.5,10\n"
        "2025-09-15 13:31:00,1,2,0.5,1.5,10\n"
    )
    with pytest.raises(DataValidationError, match="row 3.*no time zone while others do"):
        read_csv_bars(path)


def test_daily_dates_with_offsets_use_their_new_york_date(tmp_path):
    # yfinance's DataFrame.to_csv writes daily dates as midnight New York with an offset.
    path = tmp_path / "Y.csv"
    path.write_text(
        "Date,Open,High,Low,Close,Volume\n2024-03-08 00:00:00-05:00,1,2,0.5,1.5,10\n"
        "2024-03-11 00:00:00-04:00,1,2,0.5,1.5,10\n"
    )
    bars = read_csv_bars(path)
    assert bars.timeframe.daily
    assert list(bars.frame.index) == [
        pd.Timestamp("2024-03-08 21:00", tz="UTC"),
        pd.Timestamp("2024-03-11 20:00", tz="UTC"),
    ]


def test_symbol_override(tmp_path):
    path = tmp_path / "whatever.csv"
    path.write_text("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n")
    assert read_csv_bars(path, symbol="^gspc").symbol == "GSPC"


# -- round trip ---------------------------------------------------------------------------------
prices = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)


@st.composite
def canonical_frames(draw, daily: bool):
    n = draw(st.integers(1, 25))
    if daily:
        days = draw(st.lists(st.integers(0, 20000), min_size=n, max_size=n, unique=True))
        dates = pd.Timestamp("1980-01-01") + pd.to_timedelta(sorted(days), unit="D")
        index = daily_close_labels(pd.DatetimeIndex(dates))
    else:
        steps = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n))
        index = pd.Timestamp("2024-03-01 14:35", tz="UTC") + pd.to_timedelta(
            np.cumsum(steps) * 5, unit="min"
        )
    low = np.array(draw(st.lists(prices, min_size=n, max_size=n)))
    high = low * (1 + np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))))
    mid = (low + high) / 2
    volume = np.array(
        draw(st.lists(st.one_of(st.just(np.nan), st.floats(0, 1e9)), min_size=n, max_size=n))
    )
    cols = {
        "open": np.clip(mid, low, high),
        "high": high,
        "low": low,
        "close": np.clip(mid * 0.999, low, high),
        "volume": volume,
    }
    return canonical_frame(pd.DatetimeIndex(index), cols)


@settings(max_examples=40, deadline=None)
@given(canonical_frames(daily=True), st.booleans())
def test_daily_csv_round_trip_is_identical(tmp_path_factory, frame, gz):
    path = tmp_path_factory.mktemp("rt") / ("RT.csv.gz" if gz else "RT.csv")
    write_csv_bars(frame, path, timeframe="1d")
    back = read_csv_bars(path, check_gaps=False).frame
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


@settings(max_examples=40, deadline=None)
@given(canonical_frames(daily=False))
def test_intraday_csv_round_trip_is_identical(tmp_path_factory, frame):
    path = tmp_path_factory.mktemp("rt") / "RT_5min.csv"
    write_csv_bars(frame, path, timeframe="5min")
    back = read_csv_bars(path, check_gaps=False).frame
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
