"""Validation: each malformed-file case gives its own message naming file, row and value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.csv_files import read_csv_bars
from framework.data.validation import check_prices, validate_frame
from framework.errors import DataError, DataValidationError

HEADER = "date,open,high,low,close,adj_close,volume"
GOOD = [
    "2024-01-02,10,11,9,10.5,10.5,100",
    "2024-01-03,10.5,12,10,11,11,200",
    "2024-01-04,11,11.5,10.8,11.2,11.2,300",
]

# (name, rows replacing GOOD, header, expected row, expected column, message fragment)
CASES = [
    (
        "missing column",
        GOOD,
        "date,open,high,close,volume",
        None,
        None,
        "missing column(s) ['low']",
    ),
    (
        "bad date",
        [GOOD[0], "2024-13-45,10,11,9,10.5,10.5,1", GOOD[2]],
        HEADER,
        3,
        "date",
        "cannot parse '2024-13-45' as a date",
    ),
    ("empty date", [GOOD[0], ",10,11,9,10.5,10.5,1", GOOD[2]], HEADER, 3, "date", "cannot parse"),
    ("duplicate", [GOOD[0], GOOD[1], GOOD[1]], HEADER, 4, "date", "duplicate timestamp 2024-01-03"),
    ("unsorted", [GOOD[1], GOOD[0], GOOD[2]], HEADER, 3, "date", "earlier than the row above it"),
    (
        "negative price",
        [GOOD[0], "2024-01-03,-1,12,10,11,11,200", GOOD[2]],
        HEADER,
        3,
        "open",
        "non-positive price -1.0",
    ),
    (
        "zero close",
        [GOOD[0], GOOD[1], "2024-01-04,11,11.5,10.8,0,11.2,300"],
        HEADER,
        4,
        "close",
        "non-positive price 0.0",
    ),
    (
        "high below low",
        [GOOD[0], "2024-01-03,10.5,9,10,9.5,9.5,200", GOOD[2]],
        HEADER,
        3,
        "high",
        "high=9.0 < low=10.0",
    ),
    (
        "open above high",
        ["2024-01-02,12,11,9,10.5,10.5,100", GOOD[1], GOOD[2]],
        HEADER,
        2,
        "open",
        "open=12.0 outside [low=9.0, high=11.0]",
    ),
    (
        "close below low",
        [GOOD[0], GOOD[1], "2024-01-04,11,11.5,10.8,10.7,10.7,300"],
        HEADER,
        4,
        "close",
        "close=10.7 outside",
    ),
    (
        "nan price",
        [GOOD[0], "2024-01-03,10.5,,10,11,11,200", GOOD[2]],
        HEADER,
        3,
        "high",
        "missing price",
    ),
    (
        "text price",
        [GOOD[0], "2024-01-03,10.5,abc,10,11,11,200", GOOD[2]],
        HEADER,
        3,
        "high",
        "cannot read 'abc' as a number",
    ),
    (
        "negative volume",
        [GOOD[0], GOOD[1], "2024-01-04,11,11.5,10.8,11.2,11.2,-5"],
        HEADER,
        4,
        "volume",
        "negative volume -5.0",
    ),
    (
        "bad adj_close",
        [GOOD[0], "2024-01-03,10.5,12,10,11,0,200", GOOD[2]],
        HEADER,
        3,
        "adj_close",
        "non-positive price 0.0",
    ),
]


@pytest.mark.parametrize(
    ("name", "rows", "header", "row", "column", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_malformed_file_is_rejected_with_a_specific_message(
    tmp_path, name, rows, header, row, column, fragment
):
    path = tmp_path / "BAD.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(DataValidationError) as info:
        read_csv_bars(path)
    err = info.value
    assert fragment in str(err)
    assert str(path) in str(err)
    assert (err.row, err.column) == (row, column)
    if row is not None:
        assert f"row {row}" in str(err)


def test_error_counts_other_rows_with_the_same_problem(tmp_path):
    rows = [f"2024-01-{d:02d},10,11,9,10.5,10.5,-1" for d in range(2, 6)]
    path = tmp_path / "X.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(DataValidationError, match=r"row 2.*3 more row\(s\) have the same problem"):
        read_csv_bars(path)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "the file is empty"),
        (HEADER, "no data rows"),
        ('date,open\n"2024-01-02,1\n', "cannot read the file as CSV"),
    ],
)
def test_unreadable_files(tmp_path, content, fragment):
    path = tmp_path / "E.csv"
    path.write_text(content)
    with pytest.raises(DataValidationError, match=fragment):
        read_csv_bars(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_csv_bars(tmp_path / "NOPE.csv")


def test_tiny_float_excursions_are_tolerated(tmp_path):
    # open exceeds high by 1e-12 relative: rounding noise, not a broken bar.
    path = tmp_path / "T.csv"
    path.write_text(f"{HEADER}\n2024-01-02,{11 * (1 + 1e-12)!r},11,9,10.5,10.5,100\n")
    assert len(read_csv_bars(path).frame) == 1


# -- properties ---------------------------------------------------------------------------------
@st.composite
def valid_bars(draw):
    n = draw(st.integers(1, 30))
    floats = st.floats(0.01, 1e6, allow_nan=False, allow_infinity=False)
    low = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    span = np.array(draw(st.lists(st.floats(0, 2), min_size=n, max_size=n)))
    high = low * (1 + span)
    w_open = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    w_close = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    columns = {
        "open": np.clip(low + w_open * (high - low), low, high),
        "high": high,
        "low": low,
        "close": np.clip(low + w_close * (high - low), low, high),
        "volume": np.array(draw(st.lists(st.floats(0, 1e9), min_size=n, max_size=n))),
    }
    return columns


@settings(max_examples=80, deadline=None)
@given(valid_bars())
def test_valid_bars_pass(columns):
    check_prices(columns, path="p")


CORRUPTIONS = {
    "nan": ("close", lambda c, i: np.nan, "missing price"),
    "negative": ("low", lambda c, i: -abs(c["low"][i]), "non-positive"),
    "inverted": ("high", lambda c, i: c["low"][i] * 0.5, "the high must be >= the low"),
    "open_out": ("open", lambda c, i: c["high"][i] * 1.01, "within the bar's range"),
    "volume": ("volume", lambda c, i: -1.0, "negative volume"),
}


@settings(max_examples=80, deadline=None)
@given(valid_bars(), st.sampled_from(sorted(CORRUPTIONS)), st.data())
def test_one_corrupted_row_is_found_and_named(columns, kind, data):
    column, corrupt, fragment = CORRUPTIONS[kind]
    i = data.draw(st.integers(0, len(columns["close"]) - 1))
    columns = {k: v.copy() for k, v in columns.items()}
    columns[column][i] = corrupt(columns, i)
    with pytest.raises(DataValidationError) as info:
        check_prices(columns, path="f.csv", row_offset=2)
    assert fragment in str(info.value)
    assert info.value.row == i + 2


def test_validate_frame_checks_order_of_a_provider_frame():
    index = pd.DatetimeIndex(["2024-01-03 21:00", "2024-01-02 21:00"], tz="UTC")
    frame = pd.DataFrame(
        {n: [1.0, 1.0] for n in ("open", "high", "low", "close", "volume")}, index=index
    )
    with pytest.raises(DataValidationError, match="row 2.*earlier than the row above"):
        validate_frame(frame, path="yahoo:SPY")
