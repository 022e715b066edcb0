"""``fw options`` through click's CliRunner: chain, price and strategy, good and bad inputs."""

from __future__ import annotations

import re
from datetime import date, timedelta

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from framework.cli_options import make_options_group
from framework.options.bsm import american_price, bsm_price

TODAY = date(2026, 5, 1)
E1 = TODAY + timedelta(days=30)
E2 = TODAY + timedelta(days=60)
RATE = 0.03


@pytest.fixture(scope="module")
def group() -> click.Group:
    return make_options_group()


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory) -> str:
    """One synthetic X chain (flat 20% vol, strikes 80..120, two expiries) in the shared format."""
    rows = []
    for expiry in (E1, E2):
        t = (expiry - TODAY).days / 365
        for k in range(80, 121):
            for right in ("C", "P"):
                price = float(bsm_price(100.0, k, t, RATE, 0.0, 0.2, right == "C"))
                rows.append({
                    "snapshot_date": TODAY.isoformat(), "underlying": "X", "underlying_price": 100.0,
                    "expiration": expiry.isoformat(), "option_type": right, "strike": k,
                    "bid": round(max(price - 0.01, 0.0), 2), "ask": round(price + 0.01, 2),
                    "last_price": round(price, 2), "last_trade_time_utc": "", "volume": 10,
                    "open_interest": 100, "implied_vol": 0.2,
                    "contract_symbol": f"X{expiry:%y%m%d}{right}{k * 1000:08d}",
                })
    folder = tmp_path_factory.mktemp("chains")
    pd.DataFrame(rows).to_csv(folder / "X_chain_2026-05-01.csv.gz", index=False)
    return str(folder)


def run(group, *args):
    return CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)


def test_group_has_the_three_commands(group):
    from framework.options.builders import STRATEGIES

    assert group.name == "options"
    assert set(group.commands) == {"chain", "price", "strategy"}
    help_text = run(group, "strategy", "--help").output
    assert all(name in help_text for name in STRATEGIES)


# -- chain -------------------------------------------------------------------------------------


def test_chain_requires_data_dir(group):
    result = run(group, "chain", "SPY")
    assert result.exit_code == 2
    assert "--data-dir" in result.output and "does not read shared data" in result.output


def test_chain_prints_the_slice_with_model_iv(group, chain_dir):
    result = run(group, "chain", "X", "--data-dir", chain_dir, "--dte", 30, "--around", 2,
                 "--rate", RATE, "--right", "P")
    assert result.exit_code == 0, result.output
    assert "X 2026-05-01 spot 100.00" in result.output and "30 DTE" in result.output
    assert "20.0" in result.output  # model IV of the mids ~ the 20% used to build them
    strikes = re.findall(r"│\s+(\d+) │\s+P", result.output)
    assert strikes == ["99", "100", "101", "102"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--date", "2026-04-30"], "no X snapshot on 2026-04-30"),
        (["--expiry", "2026-05-20"], "not listed"),
        (["--expiry", "2026-05-31", "--dte", "30"], "not both"),
        (["--date", "May 1"], "YYYY-MM-DD"),
    ],
)
def test_chain_bad_inputs(group, chain_dir, args, fragment):
    result = run(group, "chain", "X", "--data-dir", chain_dir, *args)
    assert result.exit_code != 0
    assert fragment in result.output


def test_chain_unknown_symbol(group, chain_dir):
    result = run(group, "chain", "QQQ", "--data-dir", chain_dir)
    assert result.exit_code == 1
    assert "QQQ" in result.output and "Traceback" not in result.output


# -- price -------------------------------------------------------------------------------------


def _number(output: str, name: str) -> float:
    return float(re.search(rf"^{name}\s+(-?[\d.]+)", output, re.M).group(1))


def test_price_with_vol_matches_bsm(group):
    result = run(group, "price", "--spot", 100, "--strike", 105, "--dte", 30, "--vol", 0.2,
                 "--rate", RATE, "--right", "c")
    assert result.exit_code == 0, result.output
    expected = float(bsm_price(100, 105, 30 / 365, RATE, 0.0, 0.2, True))
    assert _number(result.output, "price") == pytest.approx(expected, abs=1e-6)
    assert "per vol point" in result.output


def test_price_with_premium_implies_the_vol(group):
    premium = float(bsm_price(100, 95, 45 / 365, RATE, 0.01, 0.27, False))
    result = run(group, "price", "--spot", 100, "--strike", 95, "--dte", 45, "--premium", premium,
                 "--rate", RATE, "--div", 0.01, "--right", "P")
    assert result.exit_code == 0, result.output
    vol = float(re.search(r"implied vol\s+([\d.]+)%", result.output).group(1))
    assert vol == pytest.approx(27.0, abs=1e-3)


def test_price_american_put(group):
    result = run(group, "price", "--spot", 100, "--strike", 110, "--dte", 180, "--vol", 0.25,
                 "--rate", 0.06, "--right", "P", "--american")
    assert result.exit_code == 0, result.output
    got = _number(result.output, "price")
    assert got == pytest.approx(float(american_price(100, 110, 180 / 365, 0.06, 0.0, 0.25, False)), abs=1e-6)
    assert got > float(bsm_price(100, 110, 180 / 365, 0.06, 0.0, 0.25, False))
    assert -1 < _number(result.output, "delta") < -0.5


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--vol", "0.2", "--premium", "1"], 2, "exactly one of --vol"),
        ([], 2, "exactly one of --vol"),
        (["--premium", "0.1"], 1, "below_intrinsic"),  # a 95 call on 100 is worth at least 5
        (["--vol", "-0.2"], 2, "must be a vol >= 0"),
        (["--vol", "0.2", "--spot", "-5"], 1, "spot must be finite and > 0"),
        (["--vol", "0.2", "--dte", "-1"], 2, "negative"),
    ],
)
def test_price_bad_inputs(group, args, code, fragment):
    result = run(group, "price", "--spot", 100, "--strike", 95, "--dte", 30, "--right", "C", *args)
    assert result.exit_code == code, result.output
    assert fragment in result.output


# -- strategy ----------------------------------------------------------------------------------


def test_strategy_model_market_hand_check(group, tmp_path):
    out = tmp_path / "bp.png"
    result = run(group, "strategy", "bull_put", "--spot", 100, "--vol", 0.2, "--date", "2026-05-01",
                 "--dte", 30, "--strike", 100, "--width", 5, "--rate", RATE, "--out", out)
    assert result.exit_code == 0, result.output
    short = float(bsm_price(100, 100, 30 / 365, RATE, 0.0, 0.2, False))
    long_ = float(bsm_price(100, 95, 30 / 365, RATE, 0.0, 0.2, False))
    credit = 100 * (short - long_)
    assert f"credit: ${credit:,.2f}" in result.output
    assert f"max loss: ${500 - credit:,.2f}" in result.output
    assert f"breakevens: {100 - credit / 100:,.2f}" in result.output
    assert f"buying power: ${500 - credit:,.2f}" in result.output
    assert "POP lognormal (vol 20.00%)" in result.output
    assert "chain-implied" not in result.output
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_strategy_from_chain_shows_both_pops(group, chain_dir, tmp_path):
    result = run(group, "strategy", "iron_condor", "--symbol", "x", "--data-dir", chain_dir,
                 "--dte", 30, "--short-delta", 0.2, "--width", 5, "--rate", RATE,
                 "--out", tmp_path / "ic.png")
    assert result.exit_code == 0, result.output
    pops = re.findall(r"POP (?:lognormal \(vol [\d.]+%\)|chain-implied): ([\d.]+)%", result.output)
    assert len(pops) == 2
    lognormal, implied = (float(p) for p in pops)
    assert 0 < implied < 100 and abs(implied - lognormal) < 5  # flat-vol chain: they agree
    assert "buying power: $" in result.output and (tmp_path / "ic.png").exists()


def test_strategy_default_plot_goes_under_fw_home(group, _isolated_fw_home):
    result = run(group, "strategy", "calendar", "--spot", 50, "--vol", 0.3, "--dte", 30,
                 "--back-dte", 60, "--right", "P")
    assert result.exit_code == 0, result.output
    written = list((_isolated_fw_home / "options").glob("*-calendar.png"))
    assert len(written) == 1
    assert "later legs by BSM" in result.output


def test_strategy_undefined_risk_has_no_buying_power(group, tmp_path):
    result = run(group, "strategy", "strangle", "--spot", 100, "--vol", 0.2, "--dte", 30,
                 "--short-delta", 0.16, "--quantity", -1, "--out", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    assert "max loss: unlimited" in result.output
    assert "buying power: n/a" in result.output and "defined-risk" in result.output


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["bull_put", "--symbol", "SPY", "--short-delta", "0.3", "--width", "5"], 2, "--data-dir"),
        (["bull_put", "--short-delta", "0.3", "--width", "5"], 2, "give a market"),
        (["bull_put", "--spot", "100", "--vol", "0.2", "--symbol", "X", "--data-dir", "{dir}"], 2,
         "Drop one"),
        (["bull_putt", "--spot", "100", "--vol", "0.2"], 2, "bull_put"),
        (["bull_put", "--spot", "100", "--vol", "0.2", "--strike", "3", "--width", "5"], 1,
         "leaves no strike"),
        (["bull_put", "--symbol", "X", "--data-dir", "{dir}", "--strike", "80", "--width", "5"], 1,
         "width 5 leaves no strike"),
        (["calendar", "--spot", "100", "--vol", "0.2"], 2, "--back-dte"),
        (["straddle", "--spot", "100", "--vol", "0.2", "--back-dte", "60"], 2, "one expiry"),
        (["straddle", "--spot", "100", "--vol", "0.2", "--width", "5"], 1, "does not use width"),
        (["straddle", "--spot", "100", "--vol", "0.2", "--out", "plot.jpg"], 2, ".png"),
        (["bull_put", "--data-dir", "/nonexistent/fw", "--symbol", "X"], 2, "not a folder"),
    ],
)
def test_strategy_bad_inputs(group, chain_dir, args, code, fragment):
    result = run(group, "strategy", *(a.replace("{dir}", chain_dir) for a in args))
    assert result.exit_code == code, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
