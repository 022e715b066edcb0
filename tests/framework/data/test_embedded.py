"""The embedded default data loads offline from the installed arch package."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.data import EMBEDDED_SYMBOLS, load_default
from framework.data.embedded import embedded_frame
from framework.errors import DataError


@pytest.fixture(scope="module")
def default_bars():
    return load_default()


def test_all_symbols_with_their_true_sources(default_bars, sp500_raw):
    assert default_bars.symbols == EMBEDDED_SYMBOLS == ("GSPC", "IXIC", "VIX")
    gspc = default_bars.info["GSPC"]
    assert "arch.data.sp500" in gspc.source and "^GSPC" in gspc.source
    assert "1999-01-04..2018-12-31" in gspc.source
    assert "price index" in gspc.note and "SPY proxy" in gspc.note
    assert not gspc.adjusted
    assert "FRED" in default_bars.info["VIX"].source


def test_gspc_matches_the_arch_file_bar_for_bar(sp500_raw):
    frame = embedded_frame("GSPC")
    assert len(frame) == len(sp500_raw)
    assert np.array_equal(frame["close"].to_numpy(), sp500_raw["Close"].to_numpy(float))
    assert np.array_equal(frame["volume"].to_numpy(), sp500_raw["Volume"].to_numpy(float))
    # Labels are session closes: the New York date is the row's date, time 16:00 or early close.
    local = frame.index.tz_convert("America/New_York")
    assert (local.normalize().tz_localize(None) == pd.DatetimeIndex(sp500_raw.index)).all()
    assert set(local.hour) <= {13, 16}


def test_vix_is_close_only(default_bars):
    from arch.data import vix as arch_vix

    raw = arch_vix.load()["vix"]
    vix = default_bars.to_frame("VIX")
    assert len(vix) == raw.notna().sum() < len(raw)  # FRED holidays without a value dropped
    assert np.array_equal(vix["close"].to_numpy(), raw.dropna().to_numpy())
    assert (vix["open"] == vix["close"]).all() and (vix["high"] == vix["low"]).all()
    assert vix["volume"].isna().all()
    assert vix.index[0].date().isoformat() == "2014-01-03"


def test_union_alignment_leaves_vix_nan_before_2014(default_bars):
    before = default_bars.between(end="2013-12-31")
    j = default_bars.symbols.index("VIX")
    assert np.isnan(before.close[:, j]).all()
    assert not np.isnan(before.close[:, 0]).any()


def test_subset_and_unknown_symbol():
    assert load_default(["ixic"]).symbols == ("IXIC",)
    with pytest.raises(DataError, match="Did you mean 'GSPC'"):
        load_default(["GSPX"])
