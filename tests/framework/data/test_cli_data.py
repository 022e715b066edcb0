"""``fw data`` commands through click's CliRunner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from framework.cli_data import data
from framework.data.store import BarStore
from tests.framework.data.fakes import KEY, SECRET, alpaca_daily_bars, yahoo_daily_frame

GOOD = (
    "date,open,high,low,close,adj_close,volume\n"
    "2024-01-02,10,11,9,10.5,10.5,100\n2024-01-03,10.5,12,10,11,11,200\n"
)
BAD = GOOD.replace("2024-01-03,10.5,12,10,11,11,200", "2024-01-03,10.5,12,10,11,11,-200")


def run(*args, env=None):
    result = CliRunner().invoke(data, list(args), env=env)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "AAA.csv").write_text(GOOD)
    (folder / "BBB.csv").write_text(GOOD)
    return folder


def test_import_list_show(files):
    result = run("import", str(files / "AAA.csv"))
    assert result.exit_code == 0, result.output
    assert "AAA" in result.output and "2024-01-03T21:00" in result.output and "yes" in result.output
    listed = run("list")
    assert listed.exit_code == 0 and "AAA" in listed.output and "csv:" in listed.output
    shown = run("show", "aaa", "--tail", "1")
    assert shown.exit_code == 0
    table = shown.output.split("last 1 bars")[1]
    assert "2024-01-03T21:00:00+00:00" in table and "2024-01-02T21" not in table
    assert "11.0000" in table and "200" in table
    assert "source: csv:" in shown.output


def test_import_folder_with_a_bad_file_keeps_going_and_fails(files):
    run("import", str(files / "BBB.csv"))
    before = BarStore().path("BBB").read_bytes()
    (files / "BBB.csv").write_text(BAD)
    result = run("import", str(files))
    assert result.exit_code == 1
    assert "negative volume -200.0" in result.output and "row 3" in result.output
    assert "1 of 2 file(s) failed validation" in result.output
    assert BarStore().has("AAA")
    assert BarStore().path("BBB").read_bytes() == before


def test_symbol_option_needs_one_file(files):
    assert run("import", str(files / "AAA.csv"), "--symbol", "ZZZ").exit_code == 0
    assert BarStore().has("ZZZ")
    result = run("import", str(files), "--symbol", "ZZZ")
    assert result.exit_code == 2 and "--symbol names one file" in result.output


def test_errors_are_one_line_messages(tmp_path):
    result = run("import", str(tmp_path / "missing.csv"))
    assert result.exit_code == 1 and "Error: no such file or folder" in result.output
    result = run("show", "GSPX")
    assert result.exit_code == 1 and "Did you mean 'GSPC'" in result.output


def test_list_empty_store_and_data_dir(files):
    result = run("list")
    assert "is empty" in result.output and "GSPC, IXIC, VIX" in result.output
    result = run("list", "--data-dir", str(files))
    assert "2 daily symbol(s)" in result.output and "AAA, BBB" in result.output


def test_show_embedded_and_data_dir(files):
    result = run("show", "GSPC", "--tail", "2")
    assert result.exit_code == 0 and "arch.data.sp500" in result.output
    assert "2018-12-31T21:00:00+00:00" in result.output
    result = run("show", "BBB", "--data-dir", str(files))
    assert result.exit_code == 0 and str(files) in result.output


def test_pull_yahoo(yahoo_stub, sp500_raw):
    yahoo_stub.frames["^GSPC"] = yahoo_daily_frame(sp500_raw)
    result = run(
        "pull", "GSPC", "NOPE", "--source", "yahoo", "--start", "2018-12-01", "--end", "2018-12-31"
    )
    assert result.exit_code == 1, result.output
    assert "created" in result.output and "failed" in result.output
    assert "1 of 2 symbol(s) failed: NOPE" in result.output
    assert BarStore().metadata("GSPC").last.startswith("2018-12-31T21:00")


def test_pull_alpaca_needs_keys():
    result = run(
        "pull", "SPY", "--source", "alpaca", env={"APCA_API_KEY_ID": "", "APCA_API_SECRET_KEY": ""}
    )
    assert result.exit_code == 1 and "missing APCA_API_KEY_ID" in result.output


def test_pull_alpaca_against_the_fake(alpaca_server, sp500_raw):
    alpaca_server.state.bars["SPY"] = alpaca_daily_bars(sp500_raw.loc["2018-12-01":])
    env = {
        "APCA_API_KEY_ID": KEY,
        "APCA_API_SECRET_KEY": SECRET,
        "APCA_API_DATA_URL": alpaca_server.url,
    }
    result = run("pull", "SPY", "--source", "alpaca", "--start", "2018-12-01", env=env)
    assert result.exit_code == 0, result.output
    assert BarStore().metadata("SPY").rows == len(sp500_raw.loc["2018-12-01":])
    again = run("pull", "SPY", "--source", "alpaca", env=env)
    assert again.exit_code == 0 and "up to date" in again.output
