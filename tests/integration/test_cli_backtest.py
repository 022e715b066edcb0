"""`fw backtest` and `fw check` end to end through the real command line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from framework.cli import main
from tests.conftest import REPO_ROOT

SUMMARY_KEYS = {
    "total_return", "cagr", "annual_volatility", "sharpe", "sortino", "max_drawdown", "calmar",
    "win_rate", "profit_factor", "n_trades", "avg_days_held", "exposure", "turnover",
    "total_costs", "benchmark_total_return", "benchmark_sharpe", "alpha", "beta",
}


def _run(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def spy_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("spy_run")
    result = _run("backtest", "sma_cross", "--symbols", "SPY", "--data-dir",
                  str(shared_data / "daily"), "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_backtest_writes_every_promised_file(spy_run):
    out, output = spy_run
    for name in ("summary.json", "equity.csv", "trades.csv", "run.json", "tearsheet.html"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["benchmark"] == "SPY" and summary["optimistic_fill"] is False
    assert summary["n_trades"] > 10 and summary["total_costs"] > 0
    run = json.loads((out / "run.json").read_text())
    assert len(run["data_hash"]) == 64 and run["git_revision"]
    assert run["params"] == {"fast": 10, "slow": 50, "short": False}
    assert "Sharpe" in output


def test_tearsheet_names_benchmark_and_fill_rule(spy_run):
    html = (spy_run[0] / "tearsheet.html").read_text()
    assert "SPY" in html
    assert "next bar&#x27;s open" in html or "next bar's open" in html


def test_equity_and_trades_are_consistent(spy_run):
    out, _ = spy_run
    equity = pd.read_csv(out / "equity.csv")
    trades = pd.read_csv(out / "trades.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert equity["equity"].iloc[-1] / 100_000 - 1 == pytest.approx(summary["total_return"], rel=1e-9)
    assert len(trades[trades["is_open"] == False]) == summary["n_trades"]  # noqa: E712


def test_embedded_default_needs_no_data(tmp_path):
    result = _run("backtest", "--out", str(tmp_path), "--no-tearsheet")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["symbols"] == ["GSPC"]
    assert "proxy" in summary["benchmark"]
    assert summary["start"].startswith("1999-01-04")


def test_close_fill_is_labelled_optimistic(shared_data, tmp_path):
    result = _run("backtest", "sma_cross", "--symbols", "SPY", "--data-dir", str(shared_data / "daily"),
                  "--fill", "close", "--no-tearsheet", "--out", str(tmp_path), "--start", "2015-01-01")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "summary.json").read_text())["optimistic_fill"] is True
    assert "optimistic" in result.output


def test_no_costs_reference_run_is_frictionless(shared_data, tmp_path):
    result = _run("backtest", "sma_cross", "--symbols", "SPY", "--data-dir", str(shared_data / "daily"),
                  "--no-costs", "--no-tearsheet", "--out", str(tmp_path), "--start", "2015-01-01")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "summary.json").read_text())["total_costs"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backtest", "sma_crss"], "Did you mean 'sma_cross'"),
        (["backtest", "sma_cross", "--set", "fats=3"], "Did you mean 'fast'"),
        (["backtest", "sma_cross", "--set", "fast=80", "--set", "slow=20"], "fast < slow"),
        (["backtest", "sma_cross", "--cost", "slipage_bps=1"], "slippage_bps"),
        (["backtest", "sma_cross", "--start", "2030-01-01"], "Adjust the dates"),
    ],
)
def test_bad_input_gives_one_clear_line(args, message, tmp_path):
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path), "--no-tearsheet"])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_user_strategy_file(shared_data, tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        "from strategies.sma_cross import SmaCross\n"
        "class Mine(SmaCross):\n    name = 'mine'\n"
    )
    result = _run("backtest", f"{path}:Mine", "--symbols", "SPY", "--data-dir", str(shared_data / "daily"),
                  "--no-tearsheet", "--out", str(tmp_path / "out"), "--start", "2018-01-01")
    assert result.exit_code == 0, result.output


def test_check_passes_registered_and_fails_leaky(shared_data):
    clean = _run("check", "sma_cross", "--symbols", "SPY", "--data-dir", str(shared_data / "daily"),
                 "--start", "2010-01-01")
    assert clean.exit_code == 0, clean.output
    assert "FAIL" not in clean.output
    leaky = CliRunner().invoke(main, ["check", f"{REPO_ROOT / 'tests' / 'leaky.py'}:CentredWindow",
                                      "--symbols", "SPY", "--data-dir", str(shared_data / "daily"),
                                      "--start", "2010-01-01"])
    assert leaky.exit_code == 1
    assert "FAIL" in leaky.output and "feature 'signal'" in leaky.output


def test_regime_overrides_from_yaml_switch_risk_rules(shared_data, tmp_path, monkeypatch):
    args = ["backtest", "sma_cross", "--symbols", "SPY", "--data-dir", str(shared_data / "daily"),
            "--no-tearsheet", "--start", "2006-01-01", "--end", "2012-12-31"]
    plain = _run(*args, "--out", str(tmp_path / "plain"))
    assert plain.exit_code == 0, plain.output
    config = tmp_path / "cfg.yaml"
    config.write_text("risk_management:\n  regime_overrides: {BEAR: {max_position: 0.05}}\n")
    monkeypatch.setenv("FW_CONFIG", str(config))
    switched = _run(*args, "--out", str(tmp_path / "switched"))
    assert switched.exit_code == 0, switched.output
    a = json.loads((tmp_path / "plain" / "summary.json").read_text())
    b = json.loads((tmp_path / "switched" / "summary.json").read_text())
    assert any("regime overrides" in rule for rule in b["risk_rules"])
    # 2008 is classified BEAR/VOLATILE: capping BEAR positions at 5% must change the outcome
    assert a["final_equity"] != b["final_equity"]


def test_unknown_regime_name_in_config_is_a_clear_error(tmp_path, monkeypatch):
    config = tmp_path / "cfg.yaml"
    config.write_text("risk_management:\n  regime_overrides: {BAER: {max_position: 0.05}}\n")
    monkeypatch.setenv("FW_CONFIG", str(config))
    result = CliRunner().invoke(main, ["backtest", "--no-tearsheet", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "BAER" in result.output and "BEAR" in result.output
