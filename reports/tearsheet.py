"""quantstats HTML tear sheets of a strategy against a benchmark Series.

This is the project's only quantstats importer. quantstats changes matplotlib's global rcParams
when it is first imported and logs hundreds of ``findfont`` messages per page, so everything
happens lazily inside :func:`write_tearsheet`, within a matplotlib ``rc_context`` and with the
noise silenced only for the duration of the call. Importing this module has no side effects.

The benchmark is always a Series of returns, never a ticker: given a string, quantstats would
try to download it.
"""

from __future__ import annotations

import html
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from framework.errors import DataError

# quantstats' own seaborn theme (quantstats/_plotting/core.py), re-applied inside every call:
# its import-time version is undone by our rc_context, and only the first call would see it.
# The font stays matplotlib's default sans-serif because Arial is often not installed.
_THEME_RC = {
    "figure.figsize": (10, 6),
    "axes.facecolor": "white",
    "figure.facecolor": "white",
    "grid.color": "#dddddd",
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.5,
    "text.color": "#333333",
    "xtick.color": "#666666",
    "ytick.color": "#666666",
}

# Backends that draw off screen; anything else is a GUI backend and is swapped for Agg.
_OFFSCREEN_BACKENDS = frozenset(
    {
        "agg",
        "cairo",
        "pdf",
        "pgf",
        "ps",
        "svg",
        "template",
        "module://matplotlib_inline.backend_inline",
    }
)

_NOISY_LOGGERS = ("matplotlib.font_manager", "matplotlib.category")

_NOTES_STYLE = (
    "margin:12px 0 24px;padding:8px 14px;border-left:4px solid #09c;background:#f4f8fb;"
    "font-size:13px"
)


def write_tearsheet(
    returns: pd.Series,
    benchmark_returns: pd.Series | None,
    path: str | Path,
    *,
    title: str,
    benchmark_title: str,
    notes: Sequence[str] = (),
) -> Path:
    """Write a quantstats HTML tear sheet of ``returns`` against ``benchmark_returns``.

    Parameters
    ----------
    returns : Series
        Strategy simple returns indexed by bar close time (tz-aware UTC by fw convention; naive
        timestamps are read as UTC). Intraday returns are compounded per UTC calendar day, since
        quantstats reports daily figures.
    benchmark_returns : Series or None
        Benchmark simple returns (e.g. SPY buy and hold) covering every date of ``returns``;
        extra dates are dropped. ``None`` writes a page without a benchmark.
    path : str or Path
        Output HTML file; missing parent folders are created.
    title : str
        Page title.
    benchmark_title : str
        Name of the benchmark shown on the page (ignored without a benchmark).
    notes : sequence of str
        Lines shown in a "Notes" block under the header, e.g. ``"fills at next open"``,
        ``"benchmark: S&P 500 index used as SPY proxy"``, the data source and range, costs.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    DataError
        When ``returns`` or ``benchmark_returns`` is not a Series with a DatetimeIndex, has fewer
        than two dates, contains NaN/inf, or the benchmark misses dates of the strategy.
    """
    strategy = _daily_returns(returns, "returns")
    if len(strategy) < 2:
        raise DataError(
            f"returns has {len(strategy)} date(s); a tear sheet needs at least 2. "
            "Run the backtest over a longer period."
        )
    benchmark = None
    if benchmark_returns is not None:
        benchmark = _aligned_benchmark(
            _daily_returns(benchmark_returns, "benchmark_returns"), strategy
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_offscreen_plotting():
        # Lazy: importing quantstats mutates rcParams; the rc_context undoes that on exit.
        import quantstats
        import seaborn  # a quantstats dependency

        seaborn.set_theme(font_scale=1.1, rc=_THEME_RC)
        quantstats.reports.html(
            strategy,
            benchmark,
            output=str(out),
            title=html.escape(title, quote=False),
            benchmark_title=benchmark_title,
            periods_per_year=252,
            # quantstats would otherwise drop the flat start of the run (e.g. a first year out of
            # the market) and show figures that disagree with summary.json
            match_dates=False,
        )
    page = out.read_text(encoding="utf-8")
    out.write_text(_insert_notes(page, notes), encoding="utf-8")
    return out


def _daily_returns(series: pd.Series, name: str) -> pd.Series:
    """Validate a returns Series and re-index it by tz-naive UTC calendar date for quantstats."""
    if not isinstance(series, pd.Series) or not isinstance(series.index, pd.DatetimeIndex):
        raise DataError(
            f"{name} must be a pandas Series indexed by a DatetimeIndex; got "
            f"{type(series).__name__} with index {type(getattr(series, 'index', None)).__name__}. "
            "Pass e.g. result.returns (UTC close times)."
        )
    values = series.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(
            f"{name} has a non-finite value {values[pos]!r} at {series.index[pos]}; expected "
            "finite returns. Fill flat periods with 0.0 or trim the series first."
        )
    index = series.index
    stamps = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
    dates = stamps.normalize()
    daily = pd.Series(values, index=pd.DatetimeIndex(dates, name=None))
    if not dates.is_unique:
        # Several intraday bars fall on one date: compound them into that day's return.
        daily = (1.0 + daily).groupby(level=0).prod() - 1.0
    return daily.sort_index()


def _aligned_benchmark(benchmark: pd.Series, strategy: pd.Series) -> pd.Series:
    missing = strategy.index.difference(benchmark.index)
    if len(missing):
        raise DataError(
            f"benchmark_returns lacks {len(missing)} of the {len(strategy)} strategy dates (first "
            f"{missing[0].date()}); expected a benchmark covering the whole backtest. Load the "
            "benchmark over the same range or trim the strategy returns."
        )
    return benchmark.reindex(strategy.index)


@contextmanager
def _quiet_offscreen_plotting() -> Iterator[None]:
    """Agg rendering, restored rcParams, and no font/warning noise, for one call only."""
    # Imported here so that importing this module sets nothing up.
    import matplotlib
    import matplotlib.pyplot as plt

    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [logger.level for logger in loggers]
    previous_backend = matplotlib.get_backend()
    # A GUI backend would open (or, without a display, fail to open) a window per figure.
    # switch_backend closes open figures, so a user's open GUI figures are left alone.
    swap = previous_backend.lower() not in _OFFSCREEN_BACKENDS and not plt.get_fignums()
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        if swap:
            plt.switch_backend("agg")
        with matplotlib.rc_context(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if swap:
            plt.switch_backend(previous_backend)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _insert_notes(page: str, notes: Sequence[str]) -> str:
    """Put the notes block right under quantstats' header (after the first ``</h4>``)."""
    if isinstance(notes, str):
        notes = [notes]
    if not notes:
        return page
    items = "".join(f"<li>{html.escape(str(note), quote=False)}</li>" for note in notes)
    block = (
        f'\n<div id="fw-notes" style="{_NOTES_STYLE}"><strong>Notes</strong>'
        f'<ul style="margin:4px 0 0 0;padding-left:18px">{items}</ul></div>\n'
    )
    for pattern in (r"</h4>", r"<body[^>]*>"):
        match = re.search(pattern, page)
        if match:
            return page[: match.end()] + block + page[match.end() :]
    return block + page
