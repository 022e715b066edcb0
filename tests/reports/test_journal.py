"""reports.journal and `fw journal`: rows, filters, totals that match the metrics, CSV."""

from __future__ import annotations

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from framework.errors import ConfigError, DataError
from framework.paper_metrics import paper_metrics
from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.record import add_note, latest_run_id, load_record
from live.state import Store
from reports.cli import make_commands
from reports.journal import JOURNAL_COLUMNS, journal_table, journal_totals, read_csv, write_csv
from reports.paper_report import money, num, pct
from strategies import REGISTRY

RUN = "journal-run"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    home = tmp_path_factory.mktemp("fw_home_journal")
    url = f"sqlite:///{home}/paper.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        spec = PaperSpec(run_id=RUN, start="2016-06-01", end="2017-12-31",
                         sets=("fast=3", "slow=8"), db=url)
        run_paper(resolve_strategy("sma_cross", REGISTRY), spec, Store(url))
    return url


@pytest.fixture(scope="module")
def record(db):
    return load_record(db, RUN)


def _fw():
    group = click.Group()
    for command in make_commands(load_record, add_note, latest_run_id):
        group.add_command(command)
    return group


def test_journal_totals_equal_the_metrics_of_the_record(record):
    table = journal_table(record)
    totals = journal_totals(table)
    m = paper_metrics(record)
    assert list(table.columns) == list(JOURNAL_COLUMNS)
    assert totals["trades"] == m["trades"] and totals["open_trades"] == m["open_trades"]
    assert totals["pnl"] == pytest.approx(m["trade_pnl"], abs=1e-9)
    assert totals["win_rate"] == m["win_rate"] and totals["profit_factor"] == m["profit_factor"]


def test_filters_by_symbol_and_since(record):
    everything = journal_table(record)
    assert len(journal_table(record, symbol="gspc")) == len(everything)
    since = journal_table(record, since="2017-10-01")
    cut = pd.Timestamp("2017-10-01", tz="UTC")
    assert 0 < len(since) < len(everything)
    assert ((since["entry_time"] >= cut) | (since["exit_time"] >= cut) | since["open"]).all()
    dropped = everything[~everything["trade_id"].isin(since["trade_id"])]
    assert (dropped["exit_time"] < cut).all()
    with pytest.raises(ConfigError, match="unknown symbol 'GSCP'.*Did you mean 'GSPC'"):
        journal_table(record, symbol="GSCP")
    with pytest.raises(ConfigError, match="--since 'soon'"):
        journal_table(record, since="soon")


def test_csv_round_trip(record, tmp_path):
    table = journal_table(record)
    table.loc[0, "notes"] = 'a "quoted", comma note'
    back = read_csv(write_csv(table, tmp_path / "sub" / "journal.csv"))
    assert list(back.columns) == list(JOURNAL_COLUMNS)
    assert back["trade_id"].tolist() == table["trade_id"].tolist()
    pd.testing.assert_series_equal(back["entry_time"], table["entry_time"], check_dtype=False)
    pd.testing.assert_series_equal(back["exit_time"], table["exit_time"], check_dtype=False)
    for column in ("pnl", "costs", "qty", "entry_price", "days_held"):
        np.testing.assert_allclose(back[column].to_numpy(float), table[column].to_numpy(float),
                                   rtol=1e-12)
    assert back["notes"].iloc[0] == 'a "quoted", comma note'
    assert back["open"].tolist() == table["open"].tolist()
    assert back["entry_features"].tolist() == table["entry_features"].tolist()
    with pytest.raises(DataError, match="lacks journal columns"):
        pd.DataFrame({"x": [1]}).to_csv(tmp_path / "bad.csv", index=False)
        read_csv(tmp_path / "bad.csv")


def test_fw_journal_lists_notes_and_exports(db, record, tmp_path):
    fw = _fw()
    table = journal_table(record)
    trade = table["trade_id"].iloc[-1]
    noted = CliRunner().invoke(fw, ["journal", "note", trade, "held through the stop", "--db", db])
    assert noted.exit_code == 0, noted.output
    assert f"note added to {trade}" in noted.output
    out = tmp_path / "j.csv"
    listed = CliRunner().invoke(fw, ["journal", "--db", db, "--csv", str(out)])
    assert listed.exit_code == 0, listed.output
    totals = journal_totals(table)
    assert f"{totals['trades']} closed trade(s), P&L {money(totals['pnl'])}" in listed.output
    assert f"win rate {pct(totals['win_rate'])}, profit factor {num(totals['profit_factor'])}" \
        in listed.output
    assert "held through the stop" in listed.output and trade in listed.output
    assert read_csv(out)["notes"].iloc[-1] == "held through the stop"
    assert f"wrote {len(table)} trade(s)" in listed.output


def test_fw_journal_errors_are_one_clean_line(db):
    fw = _fw()
    bad = CliRunner().invoke(fw, ["journal", "note", "GSPC-999.1", "x", "--db", db])
    assert bad.exit_code == 1 and "unknown trade id 'GSPC-999.1'" in bad.output
    assert "Traceback" not in bad.output
    wrong = CliRunner().invoke(fw, ["journal", "--db", db, "--symbol", "XYZ"])
    assert wrong.exit_code == 1 and "unknown symbol 'XYZ'" in wrong.output
    help_text = CliRunner().invoke(fw, ["journal", "--help"]).output
    assert "note" in help_text and "--since" in help_text and "--csv" in help_text
