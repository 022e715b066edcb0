"""`fw backtest credit_spread` (single run and --walk-forward) end to end through the command
line: files, trade list with legs, tear sheet against the benchmark, refusals."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from framework.cli import main
from framework.options.backtest import ASSUMPTIONS

WINDOW = ("--start", "2004-01-01", "--end", "2007-12-31")


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def wf_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("options_wf")
    result = _run("backtest", "credit_spread", "--walk-forward", "--train", "1y", "--test", "1y",
                  "--executor", "serial", *WINDOW, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_walk_forward_writes_every_file(wf_run):
    out, output = wf_run
    for name in ("summary.json", "equity.csv", "trades.csv", "fills.csv", "run.json",
                 "folds.csv", "trials.csv", "schedule.json", "tearsheet.html", "options.html"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_folds"] == 3 and summary["n_trials"] == 3 * 24
    assert {"benchmark_total_return", "benchmark_sharpe", "pbo", "deflated_sharpe"} <= set(summary)
    run = json.loads((out / "run.json").read_text())
    assert run["underlying"] == "XSP" and run["optimistic_fill"] is True
    assert set(ASSUMPTIONS) <= set(run["assumptions"])
    assert run["walk_forward"]["windows"] and len(run["data_hash"]) == 64
    schedule = json.loads((out / "schedule.json").read_text())
    folds = pd.read_csv(out / "folds.csv")
    assert [e["start"] for e in schedule["entries"]] == folds["test_start"].tolist()
    assert "walk-forward: 3 folds" in output and "optimistic" in output


def test_trade_list_has_legs_and_agrees_with_equity(wf_run):
    out, _ = wf_run
    trades = pd.read_csv(out / "trades.csv")
    equity = pd.read_csv(out / "equity.csv", index_col="date")
    assert len(trades) > 10
    # a bull put: short put above the long put, same expiry, e.g. "-4 P 99 2002-06-14 @ 1.01"
    put_spreads = trades[trades["kind"] == "bull_put"]["legs"]
    for legs in put_spreads:
        short, long = (leg.split() for leg in legs.split("; "))
        assert short[0].startswith("-") and long[0].startswith("+") and short[1] == long[1] == "P"
        assert float(short[2]) > float(long[2]) and short[3] == long[3]
    # P&L of closed trades plus the change of the open marks is the equity change
    final_open = equity["open_positions"].iloc[-1]
    assert final_open == 0  # the window's last day closes everything ('end')
    change = equity["equity"].iloc[-1] - 100_000.0
    assert trades["pnl"].sum() == pytest.approx(change, abs=0.01)
    page = (out / "options.html").read_text()
    assert trades["legs"].iloc[0].split(" @ ")[0] in page
    assert "P&amp;L by exit reason" in page and "Walk-forward folds" in page
    sheet = (out / "tearsheet.html").read_text()
    assert "S&amp;P 500 index (GSPC) as SPY proxy" in sheet or "GSPC" in sheet


def test_single_run_with_a_set_and_no_costs(tmp_path):
    out = tmp_path / "single"
    result = _run("backtest", "credit_spread", "--set", "kind=iron_condor", "--set",
                  "iv_rank_min=0", "--no-costs", "--no-tearsheet", *WINDOW, "--out", str(out))
    assert result.exit_code == 0, result.output
    trades = pd.read_csv(out / "trades.csv")
    assert set(trades["kind"]) == {"iron_condor"} and len(trades) > 20
    assert (trades["commissions"] == 0).all()
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["kind"] == "iron_condor" and run["command"] == "backtest"
    assert not (out / "tearsheet.html").exists() and (out / "options.html").is_file()


@pytest.mark.parametrize("args, words", [
    (("--cost", "slippage_bps=2"), "--cost does not apply"),
    (("--fill", "close"), "drop --fill"),
    (("--symbols", "SPY,QQQ"), "one underlying"),
    (("--symbols", "AAPL"), "embedded data has the S&P 500 index level only"),
    (("--set", "short_delta=0.7"), "short_delta"),
    (("--set", "exit_dte=40"), "exit_dte"),
    (("--walk-forward", "--search", "optuna"), "--search optuna"),
])
def test_bad_requests_get_clear_errors(tmp_path, args, words):
    result = CliRunner().invoke(main, ["backtest", "credit_spread", *WINDOW, "--out",
                                       str(tmp_path / "x"), *args])
    assert result.exit_code != 0
    assert words in result.output, result.output


def test_stock_only_commands_explain_themselves():
    result = CliRunner().invoke(main, ["check", "credit_spread", "--start", "2010-01-01",
                                       "--end", "2012-12-31"])
    assert result.exit_code != 0 and "trades option spreads" in result.output
    listing = CliRunner().invoke(main, ["strategies"])
    assert "credit_spread" in listing.output and "space=['bull_put', 'iron_condor']" in listing.output


def test_spy_walk_forward_on_the_shared_data(shared_data, tmp_path):
    """SPY as traded (daily_unadjusted) with VIX; the benchmark is SPY total return."""
    out = tmp_path / "spy"
    result = _run("backtest", "credit_spread", "--walk-forward", "--data-dir",
                  str(shared_data / "daily"), "--start", "2015-01-01", "--end", "2019-12-31",
                  "--train", "2y", "--test", "1y", "--search", "random", "--trials", "6",
                  "--no-tearsheet", "--out", str(out))
    assert result.exit_code == 0, result.output
    run = json.loads((out / "run.json").read_text())
    assert run["underlying"] == "SPY"
    assert any("daily_unadjusted/SPY" in n for n in run["notes"])
    assert any("VIX" in n for n in run["notes"]) and "SPY buy-and-hold" in " ".join(run["notes"])
    trades = pd.read_csv(out / "trades.csv")
    assert trades["entry_spot"].between(150, 350).all()  # traded SPY prices, not adjusted ones
