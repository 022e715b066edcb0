"""How many bars make a year: annualization for daily and intraday bar indexes."""

from __future__ import annotations

import math

import pandas as pd

from framework.errors import DataError

#: Minutes in a regular US equity session (09:30-16:00 New York), used for intraday annualization.
SESSION_MINUTES = 390.0
TRADING_DAYS_PER_YEAR = 252.0


def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Periods per year implied by the median spacing of a bar index.

    Daily bars (median spacing from 20 hours to under 4 days, so weekends and holidays do not
    matter) give 252. Intraday bars give ``252 * bars per session`` where bars per session is
    ``ceil(390 minutes / spacing)``: a regular 6.5-hour US equity session (390 for 1-minute,
    78 for 5-minute, 7 for hourly bars whose last bar is a half hour). Coarser indexes give 52
    (weekly, under 20 days), 12 (monthly, under 60 days), 4 (quarterly, under 200 days) or 1.

    Raises
    ------
    DataError
        For fewer than two timestamps or an index that is not strictly increasing.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            f"infer_periods_per_year needs a pandas DatetimeIndex; got {type(index).__name__}. "
            "Pass e.g. returns.index or bars.index."
        )
    if len(index) < 2:
        raise DataError(
            f"cannot infer periods_per_year from {len(index)} timestamp(s); need at least 2. "
            "Pass periods_per_year explicitly (252 for daily bars)."
        )
    if not (index.is_monotonic_increasing and index.is_unique):
        raise DataError(
            "cannot infer periods_per_year: the index is not strictly increasing. "
            "Sort it and drop duplicate timestamps first."
        )
    # Differences of the index itself, so the result does not depend on its time unit.
    spacing = (index[1:] - index[:-1]).median()
    if spacing < pd.Timedelta(hours=20):
        minutes = spacing / pd.Timedelta(minutes=1)
        # The small tolerance keeps 390 / 5 from rounding up to 79 bars because of float noise.
        return TRADING_DAYS_PER_YEAR * math.ceil(SESSION_MINUTES / minutes - 1e-9)
    days = spacing / pd.Timedelta(days=1)
    for limit, periods in ((4.0, TRADING_DAYS_PER_YEAR), (20.0, 52.0), (60.0, 12.0), (200.0, 4.0)):
        if days < limit:
            return periods
    return 1.0
