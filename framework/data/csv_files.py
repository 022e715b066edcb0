"""CSV bar files: read (validate, label by close time, adjust) and write.

Accepted layouts (header names are case-insensitive; gzip is detected from a ``.gz`` suffix):

* the shared-data daily format ``date,open,high,low,close,adj_close,volume``;
* Yahoo's export ``Date,Open,High,Low,Close,Adj Close,Volume``;
* intraday ``timestamp,open,high,low,close,volume`` where ``timestamp`` is the bar **start** time
  with a time zone (``2025-09-15T13:30:00Z``).

``adj_close`` and ``volume`` are optional. Labels follow the timing contract: daily bars get the
XNYS session close of their date (see :mod:`framework.data.calendars`); intraday bars get
``start + bar length``, with the length taken from the file name (``SPY_5min.csv.gz``) or, failing
that, from the median spacing of the timestamps.

Adjustment: when ``adj_close`` differs from ``close`` the ratio method is applied
(``factor = adj_close / close``; open, high, low and close are multiplied by it, volume divided by
it) and the bars are recorded as adjusted; when the two columns are equal throughout, the prices are
already adjusted and are kept as they are (also recorded as adjusted). Without ``adj_close`` the
prices are kept as provided and recorded as not adjusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from framework.data.calendars import calendar_gaps, daily_close_labels, outside_regular_hours
from framework.data.frames import (
    Timeframe,
    canonical_frame,
    normalize_symbol,
    parse_timeframe,
    session_dates,
    timeframe_from_spacing,
)
from framework.data.validation import (
    PRICE_COLUMNS,
    TOLERANCE,
    check_columns,
    check_prices,
    check_times,
    numeric_column,
)
from framework.errors import DataError, DataValidationError
from framework.types import SymbolInfo

CSV_SUFFIXES = (".csv", ".csv.gz")
_NAME_RE = re.compile(r"^(?P<symbol>.+?)_(?P<timeframe>\d+(?:min|h))(?:_.*)?$", re.IGNORECASE)
_TZ_SUFFIX = r"(?:Z|[+-]\d\d:?\d\d)$"
_TIME_COLUMNS = ("date", "timestamp", "datetime", "time")


@dataclass(frozen=True)
class CsvBars:
    """One CSV file read into a canonical frame.

    Attributes
    ----------
    symbol : str
        Normalized symbol (from the file name unless given).
    timeframe : Timeframe
        Daily or intraday bar length.
    frame : pandas.DataFrame
        Canonical frame: UTC close-time index, float64 ``open, high, low, close, volume``.
    info : SymbolInfo
        Source (``csv:<path>``), whether prices are adjusted, and the adjustment basis in ``note``.
    warnings : tuple of str
        Non-fatal findings (calendar gaps, missing volume column).
    """

    symbol: str
    timeframe: Timeframe
    frame: pd.DataFrame
    info: SymbolInfo
    warnings: tuple[str, ...] = ()


def split_file_name(path: str | Path) -> tuple[str, str | None]:
    """Symbol and timeframe implied by a file name.

    ``SPY.csv.gz`` -> ``("SPY", None)``; ``SPY_5min.csv.gz`` -> ``("SPY", "5min")``;
    ``SPY_1min_2024.csv.gz`` -> ``("SPY", "1min")``.
    """
    name = Path(path).name
    for suffix in (".gz", ".csv"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    match = _NAME_RE.match(name)
    if match:
        return match.group("symbol"), match.group("timeframe").lower()
    return name, None


def is_csv_file(path: Path) -> bool:
    """True for ``*.csv`` and ``*.csv.gz`` files."""
    return path.is_file() and path.name.lower().endswith(CSV_SUFFIXES)


def read_csv_bars(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    check_gaps: bool = True,
) -> CsvBars:
    """Read, validate, label and adjust one CSV bar file.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.csv.gz`` file in one of the accepted layouts (see the module docstring).
    symbol : str, optional
        Symbol to record; default from the file name (``SPY_5min.csv.gz`` -> ``SPY``).
    timeframe : str, optional
        ``"1d"``, ``"5min"`` ...; default from the file name, else from the timestamps.
    check_gaps : bool
        Count XNYS sessions without a bar and bars on non-session dates (as warnings).

    Returns
    -------
    CsvBars

    Raises
    ------
    DataValidationError
        For an unreadable file or any invalid row (naming file, row, column and value).
    """
    path = Path(path)
    where = str(path)
    name_symbol, name_timeframe = split_file_name(path)
    symbol = normalize_symbol(symbol or name_symbol)
    raw = _read_raw(path)
    time_column = next((c for c in _TIME_COLUMNS if c in raw.columns), "date")
    check_columns(list(raw.columns), (time_column, *PRICE_COLUMNS), path=where)
    columns = {c: numeric_column(raw[c], c, path=where) for c in PRICE_COLUMNS}
    warnings: list[str] = []
    if "volume" in raw.columns:
        columns["volume"] = numeric_column(raw["volume"], "volume", path=where)
    else:
        columns["volume"] = np.full(len(raw), np.nan)
        warnings.append("no volume column; volume is recorded as NaN (not reported).")
    extra: tuple[str, ...] = ()
    if "adj_close" in raw.columns and raw["adj_close"].notna().any():
        columns["adj_close"] = numeric_column(raw["adj_close"], "adj_close", path=where)
        extra = ("adj_close",)
    requested = timeframe or name_timeframe
    labels, frame_timeframe = _labels(raw[time_column], time_column, requested, where, warnings)
    check_prices(columns, path=where, extra_price_columns=extra)
    adjusted, basis = _adjust(columns)
    frame = canonical_frame(labels, columns)
    if check_gaps:
        gaps = calendar_gaps(session_dates(frame.index))
        warnings.extend(gaps.messages())
        if not frame_timeframe.daily:
            warnings.extend(outside_regular_hours(frame.index, frame_timeframe.length))
    info = SymbolInfo(
        source=f"csv:{path.resolve()}",
        adjusted=adjusted,
        timeframe=frame_timeframe.name,
        note=basis,
    )
    return CsvBars(symbol, frame_timeframe, frame, info, tuple(warnings))


def _read_raw(path: Path) -> pd.DataFrame:
    """The file as a DataFrame with normalized lower-case headers (``Adj Close`` -> adj_close)."""
    if not path.is_file():
        raise DataError(f"no such file {str(path)!r}; give the path of a .csv or .csv.gz file.")
    try:
        raw = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(
            "the file is empty; expected a header and data rows.", path=str(path)
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataValidationError(
            f"cannot read the file as CSV ({exc}); expected comma-separated text with a header "
            "row, optionally gzip-compressed with a .gz suffix.",
            path=str(path),
        ) from exc
    raw.columns = [str(c).strip().lower().replace(" ", "_") for c in raw.columns]
    if raw.empty:
        raise DataValidationError("the file has a header but no data rows.", path=str(path))
    return raw


def _parse_times(raw: pd.Series, column: str, where: str) -> tuple[pd.DatetimeIndex, bool]:
    """Parse a time column (in file order); returns the stamps and whether they carried a zone."""
    text = raw.astype("string").str.strip()
    has_zone = text.str.contains(_TZ_SUFFIX, regex=True).fillna(False).to_numpy(dtype=bool)
    if has_zone.any() and not has_zone.all():
        bad = ~has_zone
        row = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"timestamp {raw.iloc[row]!r} has no time zone while others do; use one convention "
            "for the whole file (ISO-8601 with Z or an offset, e.g. 2025-09-15T13:30:00Z).",
            path=where,
            row=row + 2,
            column=column,
            value=raw.iloc[row],
        )
    zoned = bool(has_zone.any())
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=zoned)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataValidationError(
            f"cannot parse {raw.iloc[row]!r} as a date/time ({int(bad.sum())} such row(s)); "
            "expected ISO format like 2020-01-31 or 2025-09-15T13:30:00Z. Fix or remove the row.",
            path=where,
            row=row + 2,
            column=column,
            value=raw.iloc[row],
        )
    return pd.DatetimeIndex(parsed).as_unit("ns"), zoned


def _labels(
    raw: pd.Series, column: str, requested: str | None, where: str, warnings: list[str]
) -> tuple[pd.DatetimeIndex, Timeframe]:
    """Close-time labels and the timeframe of a raw time column, checking order on the way."""
    stamps, zoned = _parse_times(raw, column, where)
    if requested is not None:
        timeframe = parse_timeframe(requested)
    elif column == "date" and not zoned and (stamps == stamps.normalize()).all():
        timeframe = parse_timeframe("1d")
    else:
        timeframe = timeframe_from_spacing(_median_spacing(stamps))
    if timeframe.daily:
        local = stamps.tz_convert("America/New_York").tz_localize(None) if zoned else stamps
        dates = local.normalize()
        check_times(dates, path=where, column=column)
        return daily_close_labels(dates), timeframe
    if not zoned:
        raise DataValidationError(
            f"intraday timestamps must carry a time zone (e.g. {raw.iloc[0]}Z for UTC); "
            f"got {raw.iloc[0]!r}. Add Z or an offset such as -05:00 to every timestamp.",
            path=where,
            row=2,
            column=column,
            value=raw.iloc[0],
        )
    check_times(stamps, path=where, column=column)
    spacing = _median_spacing(stamps)
    if len(stamps) > 10 and spacing < timeframe.length:
        raise DataValidationError(
            f"bars are spaced {spacing} apart but the timeframe is {timeframe.name!r}; "
            "rename the file (e.g. SPY_1min.csv.gz) or pass the matching timeframe.",
            path=where,
            column=column,
        )
    if len(stamps) > 10 and spacing > timeframe.length:
        warnings.append(
            f"median spacing {spacing} exceeds the bar length {timeframe.name}; check that the "
            "timeframe is right (labels are start + bar length)."
        )
    return stamps + timeframe.length, timeframe


def _median_spacing(stamps: pd.DatetimeIndex) -> pd.Timedelta:
    diffs = np.diff(stamps.asi8)
    diffs = diffs[diffs > 0]
    if len(diffs) == 0:
        # One bar (or all equal): nothing to infer from; a single dated row is daily.
        return pd.Timedelta(days=1)
    return pd.Timedelta(int(np.median(diffs)), "ns")


def _adjust(columns: dict[str, np.ndarray]) -> tuple[bool, str]:
    """Apply the ratio method in place when adj_close differs from close; return the basis."""
    adj = columns.pop("adj_close", None)
    if adj is None:
        return False, "as provided; no adj_close column, so treated as not adjusted"
    close = columns["close"]
    factor = adj / close
    if np.all(np.abs(factor - 1.0) <= TOLERANCE):
        return (
            True,
            "as provided; close == adj_close, so prices are already split+dividend adjusted",
        )
    for name in ("open", "high", "low"):
        columns[name] = columns[name] * factor
    columns["close"] = adj.copy()
    columns["volume"] = columns["volume"] / factor
    return True, (
        "ratio method from adj_close: open/high/low/close x (adj_close/close), "
        "volume / (adj_close/close)"
    )


def write_csv_bars(frame: pd.DataFrame, path: str | Path, *, timeframe: str = "1d") -> Path:
    """Write a canonical frame as CSV that :func:`read_csv_bars` reads back identically.

    Daily frames are written as ``date,open,high,low,close,volume`` (the New York date of each
    close label); intraday frames as ``timestamp,...`` with the bar start time in UTC (``...Z``).
    A ``.gz`` suffix compresses the file.
    """
    tf = parse_timeframe(timeframe)
    path = Path(path)
    out = frame[["open", "high", "low", "close", "volume"]].copy()
    if tf.daily:
        times = session_dates(pd.DatetimeIndex(frame.index)).strftime("%Y-%m-%d")
        out.insert(0, "date", times)
    else:
        starts = pd.DatetimeIndex(frame.index).tz_convert("UTC") - tf.length
        out.insert(0, "timestamp", starts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    out.to_csv(path, index=False)
    return path
