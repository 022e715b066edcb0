"""reports.paper_report and `fw report`: periods, files, and the same numbers in HTML and Markdown."""

from __future__ import annotations

import click
import pandas as pd
import pytest
from click.testing import CliRunner

from framework.errors import ConfigError
from framework.paper_metrics import paper_metrics
from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.record import add_note, latest_run_id, load_record
from live.state import Store
from reports.cli import make_commands
from reports.paper_report import PLOTS, money, num, pct, period_bounds, write_period_report
from strategies import REGISTRY

RUN = "report-run"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    home = tmp_path_factory.mktemp("fw_home_report")
    url = f"sqlite:///{home}/paper.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        spec = PaperSpec(run_id=RUN, start="2017-01-01", end="2017-12-31",
                         sets=("fast=3", "slow=8"), db=url)
        run_paper(resolve_strategy("sma_cross", REGISTRY), spec, Store(url))
    return url


def _fw():
    group = click.Group()
    for command in make_commands(load_record, add_note, latest_run_id):
        group.add_command(command)
    return group


@pytest.mark.parametrize(("period", "today", "start", "end"), [
    ("weekly", "2024-03-13", "2024-03-04", "2024-03-10"),  # Wednesday: the previous week
    ("weekly", "2024-03-11", "2024-03-04", "2024-03-10"),  # Monday
    ("weekly", "2024-03-15", "2024-03-04", "2024-03-10"),  # Friday: its session is not over
    ("weekly", "2024-03-16", "2024-03-11", "2024-03-17"),  # Saturday: this week is complete
    ("weekly", "2024-03-17", "2024-03-11", "2024-03-17"),  # Sunday
    ("weekly", "2025-01-01", "2024-12-23", "2024-12-29"),  # across a year end
    ("monthly", "2024-03-01", "2024-02-01", "2024-02-29"),  # leap February
    ("monthly", "2024-03-31", "2024-02-01", "2024-02-29"),  # the month in progress does not count
    ("monthly", "2025-01-15", "2024-12-01", "2024-12-31"),
    ("monthly", "2023-03-02 23:30", "2023-02-01", "2023-02-28"),
])
def test_period_bounds(period, today, start, end):
    lo, hi = period_bounds(period, today)
    assert lo == pd.Timestamp(start, tz="UTC")
    assert hi == pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")


def test_unknown_period_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown period 'daily'"):
        period_bounds("daily", "2024-03-13")


def test_report_files_show_the_metrics_numbers(db, tmp_path):
    lo, hi = period_bounds("monthly", "2017-12-02")
    record = load_record(db, RUN, end=hi)
    paths = write_period_report(record, lo, hi, tmp_path / "out", "November")
    assert {"html", "markdown", "tearsheet", *PLOTS} <= set(paths)
    for name in PLOTS:
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m = paper_metrics(record, lo, hi)
    markdown = paths["markdown"].read_text()
    page = paths["html"].read_text()
    shown = [pct(m["period_return"]), pct(m["cumulative_return"]), num(m["sharpe"]),
             pct(m["max_drawdown"]), money(m["costs"]["total"]), f"{num(m['slippage_bps'])} bps",
             f"{m['sessions_processed']} of {m['sessions_expected']} sessions",
             money(record.equity["equity"].iloc[-1])]
    for text in shown:
        assert text in markdown
        assert text.replace("&", "&amp;") in page
    assert "too few trades to be significant" in markdown  # a month holds only a few trades
    assert "tearsheet.html" in page and "S&amp;P 500" in page
    assert "No notes yet" in markdown
    assert paths["tearsheet"].stat().st_size > 10_000


def test_a_one_day_period_has_no_tearsheet(db, tmp_path):
    record = load_record(db, RUN, end="2017-06-30")
    paths = write_period_report(record, "2017-06-30", "2017-06-30", tmp_path, "one day")
    assert "tearsheet" not in paths
    assert "No tear sheet" in paths["html"].read_text()


def test_fw_report_command_writes_the_period(db, tmp_path):
    out = tmp_path / "weekly"
    result = CliRunner().invoke(_fw(), ["report", "--db", db, "--period", "weekly",
                                        "--today", "2017-06-10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "weekly 2017-06-05 to 2017-06-11" in result.output
    markdown = (out / "report.md").read_text()
    assert "2017-06-05 to 2017-06-11 (5 bars)" in markdown
    custom = CliRunner().invoke(_fw(), ["report", "--db", db, "--run-id", RUN, "--start",
                                        "2017-03-01", "--end", "2017-03-31", "--out",
                                        str(tmp_path / "march")])
    assert custom.exit_code == 0, custom.output
    assert "(23 bars)" in (tmp_path / "march" / "report.md").read_text()


def test_a_period_defaults_to_the_runs_own_last_month(db, tmp_path):
    """A replay ended long ago: --period monthly means its last complete month, not today's."""
    from live.state import Store

    assert Store(db).run(RUN)["last_bar"].startswith("2017-12-29")  # December's last session
    result = CliRunner().invoke(_fw(), ["report", "--db", db, "--run-id", RUN, "--period",
                                        "monthly", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "monthly 2017-12-01 to 2017-12-31" in result.output
    weekly = CliRunner().invoke(_fw(), ["report", "--db", db, "--run-id", RUN, "--period",
                                        "weekly", "--out", str(tmp_path / "w")])
    assert "weekly 2017-12-25 to 2017-12-31" in weekly.output


def test_fw_report_usage_errors_are_one_clean_line(db):
    missing = CliRunner().invoke(_fw(), ["report", "--db", db])
    assert missing.exit_code == 2 and "choose the period" in missing.output
    both = CliRunner().invoke(_fw(), ["report", "--db", db, "--period", "weekly", "--start", "x"])
    assert both.exit_code == 2 and "not both" in both.output
    unknown = CliRunner().invoke(_fw(), ["report", "--db", db, "--run-id", "nope", "--period",
                                         "monthly"])
    assert unknown.exit_code == 1 and "unknown run id 'nope'" in unknown.output
    assert "Traceback" not in unknown.output
