"""Canonical per-symbol bar frames, timeframes and symbol names shared by the data layer.

A *canonical frame* is what every provider hands to the store and to :meth:`Bars.from_frames`:
a DataFrame indexed by a tz-aware UTC ``DatetimeIndex`` of bar **close** times (nanosecond unit,
strictly increasing) with float64 columns ``open, high, low, close, volume``. Volume may be NaN
("not reported"); prices never are.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.types import FIELDS

NEW_YORK = "America/New_York"
_TIMEFRAME_RE = re.compile(r"^(\d+)(min|h|d)$")
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-_=]{0,31}$")


@dataclass(frozen=True)
class Timeframe:
    """A bar length such as ``"1d"``, ``"5min"`` or ``"1h"``.

    Attributes
    ----------
    name : str
        Canonical spelling (``"1d"``, ``"1min"``, ``"5min"``, ``"1h"`` ...).
    length : pandas.Timedelta
        Bar length; for ``"1d"`` it is one calendar day (daily bars are labelled by session close
        instead of start + length).
    """

    name: str
    length: pd.Timedelta

    @property
    def daily(self) -> bool:
        """True for daily bars, which are labelled at the session close."""
        return self.name == "1d"


def parse_timeframe(value: str | Timeframe) -> Timeframe:
    """Parse ``"1d"``, ``"1min"``, ``"5min"``, ``"15min"``, ``"1h"`` ... into a :class:`Timeframe`.

    Raises
    ------
    DataError
        For anything else, naming the value and the accepted spellings.
    """
    if isinstance(value, Timeframe):
        return value
    text = str(value).strip().lower().replace("minute", "min").replace("day", "d")
    match = _TIMEFRAME_RE.match(text)
    if not match or int(match.group(1)) < 1:
        raise DataError(
            f"unknown timeframe {value!r}; expected '1d' (daily) or an intraday length such as "
            "'1min', '5min', '15min', '1h'."
        )
    count, unit = int(match.group(1)), match.group(2)
    if unit == "d" and count != 1:
        raise DataError(f"timeframe {value!r} is not supported; only '1d' daily bars are.")
    if unit == "h":
        return Timeframe(f"{count}h", pd.Timedelta(hours=count))
    if unit == "min":
        return Timeframe(f"{count}min", pd.Timedelta(minutes=count))
    return Timeframe("1d", pd.Timedelta(days=1))


def timeframe_from_spacing(spacing: pd.Timedelta) -> Timeframe:
    """The timeframe whose bar length equals a typical spacing between bar starts.

    Spacings of 20 hours or more are daily (weekends and holidays make daily spacing vary).
    """
    if spacing >= pd.Timedelta(hours=20):
        return parse_timeframe("1d")
    minutes = spacing / pd.Timedelta(minutes=1)
    if minutes < 1 or minutes != int(minutes):
        raise DataError(
            f"bars are spaced {spacing} apart, which is not a whole number of minutes; "
            "name the file SYMBOL_5min.csv (etc.) or pass the timeframe explicitly."
        )
    minutes = int(minutes)
    return parse_timeframe(f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}min")


def normalize_symbol(name: str) -> str:
    """Upper-case a ticker and drop Yahoo's ``^`` index prefix (``^gspc`` -> ``GSPC``).

    Raises
    ------
    DataError
        When the name holds characters that cannot be a file name in the store.
    """
    text = str(name).strip().upper().lstrip("^")
    if not _SYMBOL_RE.match(text):
        raise DataError(
            f"invalid symbol {name!r}; expected 1-32 characters from A-Z, 0-9, '.', '-', '_', "
            "'=' (e.g. SPY, BRK-B, BTC-USD)."
        )
    return text


def canonical_frame(index: pd.DatetimeIndex, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Build a canonical frame (UTC ns close-time index, float64 OHLCV columns)."""
    idx = pd.DatetimeIndex(index)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    data = {name: np.asarray(columns[name], dtype=np.float64) for name in FIELDS}
    return pd.DataFrame(data, index=idx.as_unit("ns").rename("time"))


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 over the close times and the OHLCV values of a canonical frame."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(frame.index.as_unit("ns").asi8).tobytes())
    for name in FIELDS:
        digest.update(np.ascontiguousarray(frame[name].to_numpy(np.float64)).tobytes())
    return digest.hexdigest()


def session_dates(labels: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """New York calendar dates (naive midnight) of UTC close-time labels."""
    return labels.tz_convert(NEW_YORK).tz_localize(None).normalize()
