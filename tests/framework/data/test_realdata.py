"""Real files from ../shared/data (skipped when the folder is absent)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from framework.data import load_bars
from framework.data.csv_files import read_csv_bars
from framework.data.embedded import embedded_frame
from framework.data.frames import session_dates
from framework.data.importing import import_csv
from framework.data.store import BarStore

pytestmark = pytest.mark.realdata


def _rows(path) -> list[str]:
    with gzip.open(path, "rt") as fh:
        return fh.read().splitlines()[1:]


def test_import_daily_spy(shared_data):
    path = shared_data / "daily" / "SPY.csv.gz"
    result = import_csv(path)
    meta = result.meta
    lines = _rows(path)
    assert meta.rows == len(lines) == 8448
    frame, _ = BarStore().read("SPY")
    dates = session_dates(frame.index).strftime("%Y-%m-%d")
    assert (dates[0], dates[-1]) == ("1993-01-29", "2026-08-21")
    assert dates[0] == lines[0].split(",")[0] and dates[-1] == lines[-1].split(",")[0]
    assert meta.adjusted and "already" in meta.adjustment
    # Half day after Thanksgiving 2025: the bar is labelled at the 13:00 New York close.
    assert frame.index[dates.get_loc("2025-11-28")] == pd.Timestamp("2025-11-28 18:00", tz="UTC")
    assert result.warnings == ()


def test_intraday_spy_5min_start_to_close(shared_data):
    path = shared_data / "intraday" / "SPY_5min.csv.gz"
    bars = read_csv_bars(path)
    raw = pd.read_csv(path)
    starts = pd.to_datetime(raw["timestamp"], utc=True)
    assert bars.timeframe.name == "5min" and len(bars.frame) == len(raw)
    assert (bars.frame.index == pd.DatetimeIndex(starts) + pd.Timedelta(minutes=5)).all()
    assert np.array_equal(bars.frame["close"].to_numpy(), raw["close"].to_numpy(float))
    # Half day: the last regular bar (start 17:55Z) closes at the 13:00 New York close.
    assert pd.Timestamp("2025-11-28 18:00", tz="UTC") in bars.frame.index
    # The file also holds a few tiny post-close bars on half days; the import counts them.
    local_end = (pd.DatetimeIndex(starts) + pd.Timedelta(minutes=5)).tz_convert("America/New_York")
    half_days = {"2025-07-03", "2025-11-28", "2025-12-24"}
    close_hour = np.where(local_end.strftime("%Y-%m-%d").isin(half_days), 13, 16)
    minutes = local_end.hour * 60 + local_end.minute
    late = int((minutes > close_hour * 60).sum())
    assert late > 0
    assert any(
        w.startswith(f"{late} bar(s) lie outside XNYS regular hours") for w in bars.warnings
    ), bars.warnings
    assert not bars.info.adjusted


def test_ratio_adjustment_matches_the_adjusted_folder(shared_data):
    raw = read_csv_bars(shared_data / "daily_unadjusted" / "SPY.csv.gz")
    adjusted = read_csv_bars(shared_data / "daily" / "SPY.csv.gz")
    assert raw.info.adjusted and "ratio method" in raw.info.note
    common = raw.frame.index.intersection(adjusted.frame.index)
    assert len(common) == len(raw.frame)
    # Both are total-return series adjusted at different dates, so they differ by one constant
    # factor (the dividends paid in between); 7-digit rounding in the files limits agreement.
    for column in ("open", "high", "low", "close"):
        ratio = adjusted.frame.loc[common, column] / raw.frame.loc[common, column]
        assert ratio.std() / ratio.mean() < 2e-4, column


def test_gspc_file_agrees_with_the_embedded_default(shared_data):
    shared = read_csv_bars(shared_data / "daily" / "GSPC.csv.gz").frame
    embedded = embedded_frame("GSPC")
    common = embedded.index.intersection(shared.index)
    assert len(common) == len(embedded)  # same session-close labels for every embedded bar
    rel = (shared.loc[common, "close"] / embedded.loc[common, "close"] - 1).abs()
    assert rel.max() < 1e-6


def test_import_twenty_files_and_load_them_from_the_store(shared_data):
    folder = shared_data / "daily_sp500_2000_2024"
    files = sorted(folder.glob("*.csv.gz"))[:20]
    for path in files:
        import_csv(path)
    symbols = [p.name.removesuffix(".csv.gz") for p in files]
    from_store = load_bars(symbols)
    from_dir = load_bars(symbols, data_dir=folder)
    assert from_store.symbols == tuple(symbols) and from_store.n_assets == 20
    assert from_store.content_hash() == from_dir.content_hash()
    assert all(from_store.info[s].adjusted for s in symbols)
    # The ratio method puts the file's adj_close in close.
    first = pd.read_csv(files[0])
    close = from_store.to_frame(symbols[0])["close"].to_numpy()
    assert np.array_equal(close, first["adj_close"].to_numpy(float))
