"""Option chains: loading the shared snapshots, validation messages, selection, ATM IV, greeks."""

from __future__ import annotations

import gzip
from datetime import date

import numpy as np
import pandas as pd
import pytest
from vollib.black_scholes_merton import black_scholes_merton
from vollib.black_scholes_merton.greeks import analytical

from framework.errors import DataError, DataValidationError, ParameterError
from framework.options.chains import (
    CHAIN_COLUMNS,
    FILE_COLUMNS,
    OptionChain,
    load_chain,
    load_chains,
    read_chain_file,
)

# Row counts from the options/ table of ../shared/data/README.md.
README_ROWS = {
    "MULTI_chain_2024-07-31.csv.gz": 3003,
    "SPY_chain_2025-08-26.csv.gz": 7011,
    "SPY_chain_2026-02-10.csv.gz": 1568,
    "SPY_chain_2026-05-01.csv.gz": 7722,
    "SPY_chain_2026-07-17.csv.gz": 673,
}
# Quotes with a zero bid / a zero ask (both zero whenever the ask is), counted when writing
# these tests; no file has a crossed quote (the loader would reject it).
ZERO_QUOTES = {
    "MULTI_chain_2024-07-31.csv.gz": (836, 20),
    "SPY_chain_2025-08-26.csv.gz": (394, 21),
    "SPY_chain_2026-02-10.csv.gz": (12, 1),
    "SPY_chain_2026-05-01.csv.gz": (263, 113),
    "SPY_chain_2026-07-17.csv.gz": (0, 0),
}
RATE_2026_05_01, DIV_2026_05_01 = 0.0371, 0.0102  # recorded by the source (data README)

GOOD_ROW = {
    "snapshot_date": "2026-05-01",
    "underlying": "SPY",
    "underlying_price": "720.65",
    "expiration": "2026-06-05",
    "option_type": "P",
    "strike": "690",
    "bid": "4.68",
    "ask": "4.72",
    "last_price": "4.70",
    "last_trade_time_utc": "2026-05-01T19:59:00Z",
    "volume": "10",
    "open_interest": "100",
    "implied_vol": "0.18",
    "contract_symbol": "SPY260605P00690000",
}


def write_chain(tmp_path, rows: list[dict], name: str = "chain.csv", drop: str | None = None):
    """A small options CSV in the shared format (optionally without one column)."""
    columns = [c for c in FILE_COLUMNS if c != drop]
    frame = pd.DataFrame([{**GOOD_ROW, **row} for row in rows])[columns]
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


# -- the shared snapshots ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def options_dir(shared_data):
    return shared_data / "options"


@pytest.fixture(scope="module")
def spy_0501(options_dir):
    chain = load_chain(options_dir / "SPY_chain_2026-05-01.csv.gz")
    return chain.with_greeks(RATE_2026_05_01, DIV_2026_05_01)


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(README_ROWS))
def test_every_snapshot_loads_with_readme_row_count(options_dir, name):
    frame = read_chain_file(options_dir / name)
    assert len(frame) == README_ROWS[name]
    assert list(frame.columns[: len(CHAIN_COLUMNS)]) == list(CHAIN_COLUMNS)
    assert set(frame["right"]) == {"C", "P"}
    assert frame["contract"].notna().all()  # built where the file has none (2026-07-17)
    zero_bid = int((frame["bid"] == 0).sum())
    zero_ask = int((frame["ask"] == 0).sum())
    assert (zero_bid, zero_ask) == ZERO_QUOTES[name]
    assert not (frame["bid"] > frame["ask"]).any()


@pytest.mark.realdata
def test_load_chains_splits_by_underlying_and_day(options_dir):
    chains = load_chains(options_dir)
    assert sum(len(c) for c in chains.values()) == sum(README_ROWS.values())
    assert len({u for u, _ in chains}) == 39  # the MULTI file's underlyings (SPY among them)
    spy = load_chains(options_dir, underlying="spy")
    assert list(spy) == [
        ("SPY", date(2024, 7, 31)),
        ("SPY", date(2025, 8, 26)),
        ("SPY", date(2026, 2, 10)),
        ("SPY", date(2026, 5, 1)),
        ("SPY", date(2026, 7, 17)),
    ]
    multi_spy = spy[("SPY", date(2024, 7, 31))]
    assert multi_spy.spot == pytest.approx(550.81) and multi_spy.source.endswith(
        "MULTI_chain_2024-07-31.csv.gz"
    )
    with pytest.raises(DataError, match=r"holds 39 chains .* pass underlying="):
        load_chain(options_dir / "MULTI_chain_2024-07-31.csv.gz")
    aapl = load_chain(options_dir / "MULTI_chain_2024-07-31.csv.gz", underlying="AAPL")
    with pytest.raises(DataError, match="no underlying_price.*pass spot="):
        aapl.with_greeks(0.05, 0.0)
    priced = aapl.with_greeks(0.05, 0.005, spot=218.36)
    assert priced.spot == 218.36 and priced.atm_iv(date(2024, 8, 2)) > 0  # spot written in
    assert (priced.frame["model_iv_reason"] == "ok").mean() > 0.7


@pytest.mark.realdata
def test_most_spy_quotes_give_a_model_vol(options_dir):
    for name, rows in README_ROWS.items():
        if not name.startswith("SPY"):
            continue
        chain = load_chain(options_dir / name).with_greeks(RATE_2026_05_01, DIV_2026_05_01)
        reasons = chain.frame["model_iv_reason"]
        assert len(reasons) == rows
        assert (reasons == "ok").mean() > 0.9, reasons.value_counts().to_dict()
        assert set(reasons) <= {"ok", "expired", "zero_price", "below_intrinsic", "no_quote"}


@pytest.mark.realdata
def test_snapshot_time_dte_and_t_years(options_dir, spy_0501):
    # End of day in New York = 20:00 UTC in May (EDT); 21:00 UTC in February (EST).
    assert spy_0501.snapshot == pd.Timestamp("2026-05-01 20:00", tz="UTC")
    winter = load_chain(options_dir / "SPY_chain_2026-02-10.csv.gz")
    assert winter.snapshot == pd.Timestamp("2026-02-10 21:00", tz="UTC")
    # 2026-03-27 lies after the 2026-03-08 DST change; t stays exactly calendar days / 365.
    rows = winter.frame["expiry"] == date(2026, 3, 27)
    assert set(winter.dte()[rows]) == {45}
    np.testing.assert_allclose(winter.t_years()[rows], 45 / 365, rtol=0, atol=1e-15)
    np.testing.assert_allclose(spy_0501.t_years(), spy_0501.dte() / 365, atol=1e-15)
    assert spy_0501.expiries()[0] == date(2026, 5, 8) and len(spy_0501.expiries()) == 24


@pytest.mark.realdata
def test_select_20_delta_put_30_to_45_dte(spy_0501):
    expiry = spy_0501.nearest_expiry(37)
    dte = (expiry - spy_0501.snapshot_date).days
    assert 30 <= dte <= 45
    row = spy_0501.select_by_delta("P", 0.20, expiry)
    assert row["right"] == "P" and row["expiry"] == expiry
    assert abs(abs(row["delta"]) - 0.20) < 0.03
    assert row["strike"] < spy_0501.spot  # a 20-delta put is out of the money
    # No other put of that expiry is closer to the target.
    puts = spy_0501.frame[(spy_0501.frame["expiry"] == expiry) & (spy_0501.frame["right"] == "P")]
    assert (puts["delta"].abs() - 0.20).abs().min() == pytest.approx(abs(abs(row["delta"]) - 0.20))
    assert spy_0501.select_by_delta("put", -0.20, expiry)["contract"] == row["contract"]
    call = spy_0501.select_by_delta("C", 0.30, expiry)
    assert abs(call["delta"] - 0.30) < 0.03 and call["strike"] > spy_0501.spot


@pytest.mark.realdata
def test_greeks_match_vollib_and_model_iv_reprices_mid(spy_0501):
    frame = spy_0501.frame
    t = spy_0501.t_years()
    mid = spy_0501.mid()
    ok = frame.index[frame["model_iv_reason"] == "ok"]
    for i in ok[:: max(1, len(ok) // 25)]:
        flag = "c" if frame.at[i, "right"] == "C" else "p"
        args = (flag, spy_0501.spot, frame.at[i, "strike"], t[i], RATE_2026_05_01)
        vol = frame.at[i, "model_iv"]
        assert black_scholes_merton(*args, vol, DIV_2026_05_01) == pytest.approx(mid[i], abs=1e-6)
        for greek in ("delta", "gamma", "theta", "vega", "rho"):
            want = getattr(analytical, greek)(*args, vol, DIV_2026_05_01)
            assert frame.at[i, greek] == pytest.approx(want, rel=1e-6, abs=1e-9), greek
    no_vol = frame["model_iv"].isna()
    assert frame.loc[no_vol, "delta"].isna().all()


@pytest.mark.realdata
def test_source_vol_greeks(options_dir):
    chain = load_chain(options_dir / "SPY_chain_2026-05-01.csv.gz")
    by_source = chain.with_greeks(RATE_2026_05_01, DIV_2026_05_01, vol_source="source")
    frame = by_source.frame
    i = frame.index[(frame["right"] == "C") & (frame["strike"] == 720.0)][5]
    want = analytical.delta(
        "c",
        chain.spot,
        720.0,
        chain.t_years()[i],
        RATE_2026_05_01,
        frame.at[i, "iv"],
        DIV_2026_05_01,
    )
    assert frame.at[i, "delta"] == pytest.approx(want, rel=1e-9)
    with pytest.raises(ParameterError, match="vol_source must be one of"):
        chain.with_greeks(0.04, 0.01, vol_source="last")


@pytest.mark.realdata
def test_atm_iv_close_to_source_iv(spy_0501):
    for expiry in spy_0501.expiries():
        dte = (expiry - spy_0501.snapshot_date).days
        source = spy_0501.atm_iv(expiry)  # the file's IV, interpolated at the forward
        model = spy_0501.atm_iv(expiry, vol_source="mid")
        assert 0.08 < source < 0.30
        # Our mid IVs and the source's agree at the money where the source's conventions
        # (rate, dividends, quote time) matter least: 2 weeks to 5 months.
        if 14 <= dte <= 160:
            assert model == pytest.approx(source, abs=0.006), expiry
        # The source's call IVs near the money run above its put IVs (its forward differs from
        # ours); the call/put average at the forward must land between the two.
        rows = spy_0501.frame[spy_0501.frame["expiry"] == expiry]
        near = rows[(rows["strike"] - spy_0501.spot).abs() <= 3.0]
        assert near["iv"].min() <= source <= near["iv"].max()
    with pytest.raises(DataError, match="has no expiry 2026-05-09.*nearest_expiry"):
        spy_0501.atm_iv("2026-05-09")


@pytest.mark.realdata
def test_select_by_strike_and_filter_liquid(spy_0501):
    expiry = spy_0501.nearest_expiry(30)
    row = spy_0501.select_by_strike("C", 721.2, expiry)
    assert row["strike"] == 721.0 and row["right"] == "C"
    liquid = spy_0501.filter_liquid(min_oi=500, max_spread_pct=0.05)
    kept = liquid.frame
    assert 0 < len(kept) < len(spy_0501)
    assert (kept["open_interest"] >= 500).all() and (kept["bid"] > 0).all()
    assert (liquid.spread_pct() <= 0.05).all()
    assert liquid.rate == RATE_2026_05_01  # settings carry over
    with pytest.raises(ParameterError, match="fraction of mid.*0.10 for 10 %"):
        spy_0501.filter_liquid(max_spread_pct=10)
    with pytest.raises(DataError, match="keeps none"):
        spy_0501.filter_liquid(min_oi=10**9)


# -- bad files and frames (no shared data needed) ---------------------------------------------


@pytest.mark.parametrize(
    ("row", "line_match"),
    [
        ({"bid": "2.00", "ask": "1.50"}, r"row 3, column 'bid': crossed quote: bid 2.0 > ask 1.5"),
        ({"ask": "-1"}, r"row 3, column 'ask': ask must be finite and >= 0; got -1.0"),
        ({"last_price": "-0.5"}, r"row 3, column 'last': last must be finite and >= 0"),
        ({"strike": "0"}, r"row 3, column 'strike': strike must be finite and > 0"),
        ({"option_type": "X"}, r"row 3, column 'option_type': unknown option_type 'X'"),
        ({"strike": "abc"}, r"row 3, column 'strike': 'abc' is not a number"),
        ({"expiration": "06/05/2026"}, r"row 3, column 'expiration': cannot parse '06/05/2026'"),
        ({"expiration": "2026-04-30"}, r"row 3, column 'expiry': expiry 2026-04-30 is before"),
        ({"strike": "700"}, r"row 3, column 'strike': duplicate contract P 700.0 2026-06-05"),
        ({"underlying": ""}, r"row 3, column 'underlying': underlying is empty"),
    ],
)
def test_bad_rows_name_file_row_column_value(tmp_path, row, line_match):
    # Line 2 is a good row (strike 700), line 3 the bad one.
    path = write_chain(tmp_path, [{"strike": "700"}, row])
    with pytest.raises(DataValidationError, match=line_match) as info:
        load_chain(path)
    assert str(path) in str(info.value) and info.value.row == 3


def test_bad_file_shapes(tmp_path):
    path = write_chain(tmp_path, [{}], drop="ask")
    with pytest.raises(
        DataValidationError, match=r"missing columns \['ask'\].*header is snapshot_date"
    ):
        load_chain(path)
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(FILE_COLUMNS) + "\n")
    with pytest.raises(DataValidationError, match="no option rows"):
        load_chain(empty)
    with pytest.raises(DataError, match="does not exist"):
        load_chain(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no .csv or .csv.gz options files"):
        load_chains(tmp_path / "empty_dir_that_is_missing")


def test_count_of_bad_rows_is_reported(tmp_path):
    rows = [{"strike": str(k), "ask": "-1"} for k in (600, 610, 620)]
    with pytest.raises(DataValidationError, match=r"row 2, .*\(3 such rows\)"):
        load_chain(write_chain(tmp_path, rows))


def test_small_file_round_trip(tmp_path):
    rows = [
        {"strike": "700", "option_type": "call", "contract_symbol": ""},
        {"strike": "690", "bid": "0", "ask": "0", "implied_vol": "", "last_trade_time_utc": ""},
    ]
    path = write_chain(tmp_path, rows, name="small.csv.gz")
    with gzip.open(path, "rt") as handle:  # pandas compressed it because of the suffix
        assert handle.readline().startswith("snapshot_date,")
    chains = load_chains(tmp_path)
    chain = chains[("SPY", date(2026, 5, 1))]
    frame = chain.frame  # sorted by expiry, right, strike: the call first
    assert frame.loc[0, "contract"] == "SPY260605C00700000" and frame.loc[0, "right"] == "C"
    assert np.isnan(frame.loc[1, "iv"]) and pd.isna(frame.loc[1, "last_trade_time"])
    assert frame.loc[0, "last_trade_time"] == pd.Timestamp("2026-05-01 19:59", tz="UTC")
    assert np.isnan(chain.mid()[1])  # a 0/0 quote has no mid


def test_two_snapshots_of_one_day(tmp_path):
    rows = [{"strike": "700"}, {"strike": "680", "snapshot_date": "2026-05-01T14:30:00Z"}]
    path = write_chain(tmp_path, rows)
    assert read_chain_file(path)["snapshot"].nunique() == 2
    with pytest.raises(DataError, match="holds 2 chains"):
        load_chain(path)
    with pytest.raises(DataError, match="SPY 2026-05-01 appears twice"):
        load_chains(tmp_path)


def test_frame_built_by_hand():
    base = {
        "underlying": "SPY",
        "snapshot": pd.Timestamp("2026-05-01 15:00", tz="UTC"),  # 11:00 New York
        "underlying_price": 700.0,
        "expiry": date(2026, 5, 8),
        "right": "C",
        "strike": 700.0,
        "bid": 5.0,
        "ask": 5.4,
        "last": np.nan,
        "volume": np.nan,
        "open_interest": 10.0,
        "iv": 0.15,
        "contract": "X",
    }
    rows = [base, {**base, "right": "P", "bid": 0.0, "ask": 0.0}, {**base, "strike": 710.0}]
    chain = OptionChain(pd.DataFrame(rows))
    # 7 days from 11:00 to 16:00 New York: 7 days + 5 hours.
    assert chain.t_years()[0] == pytest.approx((7 + 5 / 24) / 365, rel=1e-12)
    assert chain.dte().tolist() == [7, 7, 7]
    mid = chain.mid()
    assert mid[0] == pytest.approx(5.2) and np.isnan(mid[2])  # the zero-ask put sorts last
    assert chain.spread_pct()[0] == pytest.approx(0.4 / 5.2)
    assert chain.nearest_expiry(0) == date(2026, 5, 8)
    with pytest.raises(DataError, match="call chain.with_greeks"):
        chain.select_by_delta("C", 0.5, date(2026, 5, 8))
    with pytest.raises(ParameterError, match="right must be 'C' or 'P'"):
        chain.select_by_strike("X", 700, date(2026, 5, 8))
    with pytest.raises(ParameterError, match="target_dte must be >= 0"):
        chain.nearest_expiry(-1)
    greeks = chain.with_greeks(0.04, 0.01)
    assert greeks.frame["model_iv_reason"].tolist() == ["ok", "ok", "no_quote"]
    assert 0.4 < greeks.select_by_delta("C", 0.5, "2026-05-08")["delta"] < 0.6
    two = pd.DataFrame([base, {**base, "underlying": "QQQ"}])
    with pytest.raises(DataValidationError, match="one underlying at one snapshot"):
        OptionChain(two)
    with pytest.raises(DataValidationError, match="row 1, column 'bid': crossed quote"):
        OptionChain(pd.DataFrame([base, {**base, "strike": 720.0, "bid": 9.0, "ask": 8.0}]))
