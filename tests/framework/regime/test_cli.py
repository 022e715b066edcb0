"""``fw regime`` through click's CliRunner: output, written files, clean errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from framework.cli_regime import regime
from framework.regime.spec import REGIME_NAMES


def _png_ok(path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_default_embedded_data_writes_plot(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(regime, ["--out", str(out), "--start", "2015-01-01"])
    assert result.exit_code == 0, result.output
    assert "regimes of GSPC, 2015-01-02..2018-12-31" in result.output
    assert "VIX: VIX" in result.output
    assert "current regime:" in result.output
    for name in REGIME_NAMES:
        assert name in result.output
    _png_ok(out / "regimes.png")
    meta = json.loads((out / "regime_run.json").read_text())
    assert meta["symbol"] == "GSPC" and meta["spec"]["min_duration"] == 10
    assert meta["data_hash"] and "git_revision" in meta
    csv = (out / "regimes.csv").read_text().splitlines()
    assert csv[0].startswith("time,close,raw,label,regime")
    assert len(csv) - 1 == sum(s["bars"] for s in meta["stats"])  # no warm-up after 2015


@pytest.mark.realdata
def test_shared_data_spy_with_vix(tmp_path, shared_data):
    out = tmp_path / "spy"
    args = [
        "--symbols",
        "SPY",
        "--vix",
        "VIX",
        "--data-dir",
        str(shared_data / "daily"),
        "--start",
        "2008-01-01",
        "--end",
        "2009-12-31",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(regime, args)
    assert result.exit_code == 0, result.output
    assert "regimes of SPY, 2008-01-02..2009-12-31" in result.output
    assert "CHOPPY -> BEAR" in result.output or "BULL -> BEAR" in result.output
    _png_ok(out / "regimes.png")


def test_no_vix_and_custom_config(tmp_path):
    config = tmp_path / "r.yaml"
    config.write_text("min_duration: 20\n")
    out = tmp_path / "o"
    result = CliRunner().invoke(regime, ["--no-vix", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "VIX: none" in result.output
    assert json.loads((out / "regime_run.json").read_text())["spec"]["min_duration"] == 20


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--symbols", "NOPE"], "NOPE"),
        (["--vix", "VXX"], "VXX"),
        (["--start", "2030-01-01"], "no GSPC bars between 2030-01-01"),
        (["--vix", "VIX", "--no-vix"], "contradict"),
        (["--symbols", "GSPC,IXIC"], "one symbol at a time"),
    ],
)
def test_errors_are_one_clean_line(tmp_path, args, fragment):
    result = CliRunner().invoke(regime, [*args, "--out", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_bad_config_is_a_clean_error(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("bear_drawdown: 12\n")
    result = CliRunner().invoke(regime, ["--config", str(config)])
    assert result.exit_code == 1
    assert "bear_drawdown" in result.output and "Traceback" not in result.output
