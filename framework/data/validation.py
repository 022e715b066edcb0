"""Validation of bar data: hard errors for broken rows, warnings for calendar gaps.

Errors raise :class:`~framework.errors.DataValidationError` naming the file, the row, the column
and the bad value, plus how many other rows share the problem. Row numbers count like a text
editor or spreadsheet: with the default ``row_offset=2`` the header is row 1 and the first data row
is row 2. Gaps against the XNYS calendar are not errors; they are returned as warning strings.

Checks, in order: required columns; numbers parse; timestamps parse; no duplicate timestamps;
timestamps ascending; no NaN price; prices > 0; ``high >= low``; ``open`` and ``close`` inside
``[low, high]``; volume >= 0 (NaN volume means "not reported" and is allowed). Range checks allow
a relative tolerance of ``TOLERANCE`` for float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from framework.errors import DataValidationError

TOLERANCE = 1e-9
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")


def _fail(
    message: str,
    bad: np.ndarray,
    values: Sequence[object],
    *,
    path: str | None,
    column: str,
    row_offset: int,
) -> None:
    """Raise for the first True position of ``bad``, naming its row, value and the count."""
    positions = np.flatnonzero(bad)
    first = int(positions[0])
    others = len(positions) - 1
    more = f" ({others} more row(s) have the same problem)" if others else ""
    value = values[first]
    if isinstance(value, np.generic):
        value = value.item()  # plain Python value, so messages read 1.5, not np.float64(1.5)
    raise DataValidationError(
        message.format(value=value) + more,
        path=path,
        row=first + row_offset,
        column=column,
        value=value,
    )


def check_columns(columns: Sequence[str], required: Sequence[str], *, path: str | None) -> None:
    """Raise when any of ``required`` is missing from ``columns``."""
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {missing}; found {list(columns)}. Expected a header like "
            "'date,open,high,low,close,adj_close,volume', Yahoo's "
            "'Date,Open,High,Low,Close,Adj Close,Volume' or intraday "
            "'timestamp,open,high,low,close,volume'. Fix the header row.",
            path=path,
        )


def numeric_column(
    raw: pd.Series, column: str, *, path: str | None, row_offset: int = 2
) -> np.ndarray:
    """Convert one column to float64; a non-empty cell that is not a number is an error."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    text = raw.astype("string").str.strip()
    bad = np.isnan(converted) & text.notna().to_numpy() & (text != "").fillna(False).to_numpy()
    if bad.any():
        _fail(
            "cannot read {value!r} as a number; expected a decimal like 123.45. "
            "Fix or remove the value.",
            bad,
            raw.to_numpy(dtype=object),
            path=path,
            column=column,
            row_offset=row_offset,
        )
    return converted


def check_times(
    times: pd.DatetimeIndex, *, path: str | None, column: str = "date", row_offset: int = 2
) -> None:
    """Raise on duplicate or descending timestamps (``times`` in file order)."""
    stamps = times.asi8
    dup = pd.Index(stamps).duplicated(keep="first")
    if dup.any():
        shown = [t.isoformat() for t in times]
        _fail(
            "duplicate timestamp {value}; each bar must appear once. Remove the duplicate row.",
            dup,
            shown,
            path=path,
            column=column,
            row_offset=row_offset,
        )
    if len(stamps) > 1:
        down = np.concatenate([[False], stamps[1:] < stamps[:-1]])
        if down.any():
            shown = [t.isoformat() for t in times]
            _fail(
                "timestamp {value} is earlier than the row above it; rows must be sorted "
                "ascending. Sort the file by its date/timestamp column.",
                down,
                shown,
                path=path,
                column=column,
                row_offset=row_offset,
            )


def check_prices(
    columns: dict[str, np.ndarray],
    *,
    path: str | None,
    row_offset: int = 2,
    extra_price_columns: Sequence[str] = (),
) -> None:
    """Raise on NaN or non-positive prices, inverted ranges and negative volume.

    Parameters
    ----------
    columns : dict of str to ndarray
        ``open, high, low, close`` and ``volume`` (float64), plus any ``extra_price_columns``.
    path : str or None
        File or source named in messages.
    row_offset : int
        Added to a 0-based position to give the row number in messages.
    extra_price_columns : sequence of str
        More columns that must be positive numbers (e.g. ``adj_close``).
    """
    where = {"path": path, "row_offset": row_offset}
    for name in (*PRICE_COLUMNS, *extra_price_columns):
        _check_positive(columns[name], name, where)
    _check_ranges(columns, where)
    negative = columns["volume"] < 0
    if negative.any():
        _fail(
            "negative volume {value!r}; volume must be >= 0 (leave it empty if unknown).",
            negative,
            columns["volume"],
            column="volume",
            **where,
        )


def _check_positive(values: np.ndarray, name: str, where: dict) -> None:
    nan = np.isnan(values)
    if nan.any():
        _fail(
            "missing price (empty or NaN); every bar needs open, high, low and close. "
            "Fill or drop the row.",
            nan,
            values,
            column=name,
            **where,
        )
    bad = values <= 0
    if bad.any():
        _fail(
            "non-positive price {value!r}; prices must be > 0. Fix the value or drop the row.",
            bad,
            values,
            column=name,
            **where,
        )


def _check_ranges(columns: dict[str, np.ndarray], where: dict) -> None:
    high, low = columns["high"], columns["low"]
    inverted = high < low * (1 - TOLERANCE)
    if inverted.any():
        shown = [
            f"high={h!r} < low={lo!r}" for h, lo in zip(high.tolist(), low.tolist(), strict=True)
        ]
        _fail(
            "{value}; the high must be >= the low. Fix the row (are high and low swapped?).",
            inverted,
            shown,
            column="high",
            **where,
        )
    for name in ("open", "close"):
        values = columns[name]
        outside = (values > high * (1 + TOLERANCE)) | (values < low * (1 - TOLERANCE))
        if outside.any():
            shown = [
                f"{name}={v!r} outside [low={lo!r}, high={h!r}]"
                for v, lo, h in zip(values.tolist(), low.tolist(), high.tolist(), strict=True)
            ]
            _fail(
                "{value}; open and close must lie within the bar's range. Fix the row.",
                outside,
                shown,
                column=name,
                **where,
            )


def validate_frame(frame: pd.DataFrame, *, path: str | None, row_offset: int = 1) -> None:
    """Validate a canonical frame (close-time index, OHLCV columns) from any provider.

    ``row_offset=1`` numbers the first bar as row 1 (frames have no header row).
    """
    check_columns(list(frame.columns), (*PRICE_COLUMNS, "volume"), path=path)
    check_times(pd.DatetimeIndex(frame.index), path=path, column="time", row_offset=row_offset)
    arrays = {
        name: frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        for name in (*PRICE_COLUMNS, "volume")
    }
    check_prices(arrays, path=path, row_offset=row_offset)
