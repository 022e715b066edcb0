"""Where an options backtest gets as-traded closes, its vol level and its dividend yield."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.errors import DataError
from framework.options.inputs import load_options_inputs, trailing_dividend_yield


def _write(path, closes, factor=None) -> None:
    days = pd.bdate_range("2010-01-01", periods=len(closes))
    frame = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "close": closes})
    frame["adj_close"] = frame["close"] * (1.0 if factor is None else factor)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_adjusted_only_file_of_a_dividend_payer_is_refused(tmp_path):
    _write(tmp_path / "daily" / "SPY.csv", np.linspace(100, 120, 300))
    with pytest.raises(DataError, match="dividend-adjusted closes .* strikes are on the traded"):
        load_options_inputs("SPY", tmp_path / "daily")


def test_unadjusted_sibling_folder_and_vix_are_found(tmp_path):
    n = 600
    _write(tmp_path / "daily" / "SPY.csv", np.linspace(100, 120, n))  # adjusted copy
    # as traded: adj_close / close grows 1.5 % a year (dividends paid)
    factor = np.exp(0.015 * np.arange(n) / 252.0)
    _write(tmp_path / "daily_unadjusted" / "SPY.csv", np.linspace(200, 240, n), factor)
    _write(tmp_path / "daily" / "VIX.csv", np.full(n, 18.0))
    inputs = load_options_inputs("SPY", tmp_path / "daily")
    assert inputs.closes.iloc[0] == 200.0 and inputs.chain_spec.iv_source == "vix"
    assert inputs.level is not None and (inputs.level == 18.0).all()
    assert isinstance(inputs.div, pd.Series)
    np.testing.assert_allclose(inputs.div.to_numpy(), 0.015, rtol=1e-6)
    assert inputs.div.index[0] == inputs.closes.index[252]  # causal: a year of history first
    assert any("daily_unadjusted" in n for n in inputs.notes)


def test_missing_vix_names_what_to_add(tmp_path):
    _write(tmp_path / "SPY.csv", np.linspace(200, 240, 300), np.full(300, 0.9))
    with pytest.raises(DataError, match="no VIX.csv"):
        load_options_inputs("SPY", tmp_path)


def test_other_symbols_use_realised_vol_and_indices_are_as_traded(tmp_path):
    _write(tmp_path / "IWM.csv", np.linspace(60, 70, 300), np.full(300, 0.97))
    inputs = load_options_inputs("IWM", tmp_path)
    assert inputs.level is None and inputs.chain_spec.iv_source == "realized"
    _write(tmp_path / "GSPC.csv", np.linspace(1000, 1100, 300))  # adj == close: no dividends
    assert load_options_inputs("GSPC", tmp_path).div == 0.0


def test_embedded_default_is_xsp(tmp_path):
    from framework.data import load_default

    inputs = load_options_inputs()
    gspc = load_default(["GSPC"])
    assert inputs.underlying == "XSP" and inputs.level is None
    np.testing.assert_allclose(inputs.closes.to_numpy(), gspc.close[:, 0] / 10.0)
    again = load_options_inputs()
    assert again.data_hash == inputs.data_hash
    with pytest.raises(DataError, match="index level only"):
        load_options_inputs("SPY")


def test_missing_file_and_bad_dates(tmp_path):
    with pytest.raises(DataError, match="no daily file for QQQ"):
        load_options_inputs("QQQ", tmp_path)
    (tmp_path / "QQQ.csv").write_text("date,close\nyesterday,1\n")
    with pytest.raises(DataError, match="not ISO dates"):
        load_options_inputs("QQQ", tmp_path)


def test_trailing_yield_is_zero_without_dividends():
    frame = pd.DataFrame({"close": np.linspace(10, 20, 400), "adj_close": np.linspace(10, 20, 400)},
                         index=pd.bdate_range("2010-01-01", periods=400))
    assert (trailing_dividend_yield(frame) == 0).all()
