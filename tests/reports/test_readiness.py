"""reports.readiness and `fw readiness`: criteria, red flags, and one value per metric everywhere."""

from __future__ import annotations

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.data.calendars import daily_close_labels, xnys_sessions
from framework.errors import ConfigError
from framework.paper_metrics import paper_metrics
from framework.paper_record import PaperRecord
from framework.registry import resolve_strategy
from framework.types import Bars
from live.command import PaperSpec, run_paper
from live.record import add_note, latest_run_id, load_record
from live.state import Store
from reports.cli import make_commands
from reports.journal import journal_table, journal_totals
from reports.paper_report import num, pct, write_period_report
from reports.readiness import ReadinessSpec, evaluate, is_ready, parse_overrides
from strategies import REGISTRY

RUN = "ready-run"
LOOSE = ("min_win_rate=0", "min_sharpe=-10", "max_drawdown=1", "min_profit_factor=0",
         "min_uptime=0", "flag_after_trades=100000", "flag_losing_weeks=1000",
         "flag_drawdown=1", "max_breaker_trips=1000", "max_crashes=1000")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    home = tmp_path_factory.mktemp("fw_home_readiness")
    url = f"sqlite:///{home}/paper.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        spec = PaperSpec(run_id=RUN, start="2015-01-01", end="2017-12-31",
                         sets=("fast=3", "slow=8"), db=url)
        run_paper(resolve_strategy("sma_cross", REGISTRY), spec, Store(url))
    return url


def _fw():
    group = click.Group()
    for command in make_commands(load_record, add_note, latest_run_id):
        group.add_command(command)
    return group


# -- constructed records --------------------------------------------------------------------------
def _record(n_sessions=110, pnls=(10.0,) * 30 + (-5.0,) * 10, drift=0.002, kill="ACTIVE",
            event_kinds=()) -> PaperRecord:
    sessions, _, _ = xnys_sessions()
    days = sessions[sessions >= "2024-01-02"][:n_sessions]
    index = daily_close_labels(days)
    wiggle = np.where(np.arange(n_sessions) % 2 == 0, 0.001, -0.0005)
    equity = 100_000.0 * np.cumprod(1.0 + drift + wiggle)
    frame = pd.DataFrame({"open": 100.0, "high": 100.0, "low": 100.0, "close": 100.0,
                          "volume": 1e6}, index=index)
    bars = Bars.from_frames({"AAA": frame})
    fills = []
    for k, pnl in enumerate(pnls):
        when = index[k % n_sessions]
        for leg, (qty, price) in enumerate(((1.0, 100.0), (-1.0, 100.0 + pnl))):
            fills.append({"execution_id": f"x{2 * k + leg:05d}", "client_order_id": f"o{k}-{leg}",
                          "symbol": "AAA", "quantity": qty, "price": price, "commission": 0.0,
                          "slippage": 0.0, "impact": 0.0, "time": when})
    events = pd.DataFrame({"id": range(len(event_kinds)), "kind": list(event_kinds),
                           "message": "", "time": index[-1], "market_time": index[-1]})
    empty = pd.DataFrame(columns=["id", "time", "message", "detail", "market_time"])
    return PaperRecord(
        run={"run_id": "made", "strategy": "x", "symbols": ["AAA"], "kill_switch": kill,
             "config": {"initial_cash": 100_000.0}},
        equity=pd.DataFrame({"cash": equity, "equity": equity}, index=index),
        fills=pd.DataFrame(fills), orders=pd.DataFrame(), decisions=pd.DataFrame(),
        events=events, errors=empty, bars=bars)


def _rows(rows):
    return {row.name: row for row in rows}


def test_a_good_record_is_ready():
    rows = evaluate(_record())
    assert is_ready(rows), [r for r in rows if not r.passed]
    named = _rows(rows)
    assert named["win rate"].measured == "75.00%" and named["profit factor"].measured == "6.00"
    assert named["uptime"].measured == "100.0%"


@pytest.mark.parametrize(("record", "failing"), [
    (_record(n_sessions=40), "paper trading period"),
    (_record(pnls=(10.0,) * 20), "win rate"),  # too few trades, however good
    (_record(pnls=(10.0,) * 16 + (-5.0,) * 14), "win rate"),
    (_record(pnls=(10.0,) * 25 + (-12.0,) * 15), "profit factor"),  # win rate 62.5%, PF 1.39
    (_record(drift=-0.001), "Sharpe"),
    (_record(kill="HALTED"), "unresolved system failures"),
    (_record(event_kinds=("risk:drawdown_breaker",) * 2), "repeated breaker trips"),
    (_record(event_kinds=("start", "recover", "recover", "recover")), "frequent crashes"),
    (_record(pnls=(10.0,) * 10 + (-5.0,) * 25), "low win rate"),
])
def test_each_failure_stops_the_go_live(record, failing):
    rows = _rows(evaluate(record))
    assert not rows[failing].passed
    assert not is_ready(list(rows.values()))


def test_too_few_trades_say_so_with_an_interval():
    row = _rows(evaluate(_record(pnls=(10.0,) * 20)))["win rate"]
    assert row.measured == "100.00%" and "too few trades to be significant (20 < 30)" in row.note
    assert "95% CI" in row.note


def _measured(**changes):
    base = {"months": 6.0, "win_rate": 0.7, "win_rate_ci": (0.5, 0.8), "sharpe": 1.5,
            "sharpe_ci": (0.5, 2.5), "cumulative_max_drawdown": -0.1, "profit_factor": 2.0,
            "profit_factor_ci": (1.2, 3.0), "unresolved_failures": [], "uptime": 0.99,
            "sessions_processed": 99, "sessions_expected": 100, "trades": 50, "min_trades": 30,
            "too_few_trades": False, "losing_weeks_streak": 0, "breaker_trips": 0, "crashes": 0}
    base.update(changes)
    return base


@settings(max_examples=80, deadline=None)
@given(st.floats(0.0, 1.0), st.integers(0, 100))
def test_win_rate_rules(win_rate, trades):
    rows = _rows(evaluate(None, measured=_measured(win_rate=win_rate, trades=trades,
                                                   too_few_trades=trades < 30)))
    assert rows["win rate"].passed == (trades >= 30 and win_rate >= 0.6)
    assert rows["low win rate"].passed == (not (trades >= 30 and win_rate < 0.4))


@settings(max_examples=80, deadline=None)
@given(st.floats(-0.6, 0.0), st.floats(-1.0, 3.0), st.floats(0.5, 1.0), st.integers(0, 5))
def test_threshold_rules(drawdown, sharpe, uptime, weeks):
    rows = _rows(evaluate(None, measured=_measured(
        cumulative_max_drawdown=drawdown, sharpe=sharpe, uptime=uptime, losing_weeks_streak=weeks)))
    assert rows["max drawdown"].passed == (abs(drawdown) < 0.2)
    assert rows["deep drawdown"].passed == (not abs(drawdown) > 0.25)
    assert rows["Sharpe"].passed == (sharpe > 1.0)
    assert rows["uptime"].passed == (uptime > 0.95)
    assert rows["losing weeks in a row"].passed == (weeks < 2)


def test_spec_overrides_and_validation():
    spec = ReadinessSpec().with_overrides(parse_overrides(["min_sharpe=1.5", "max_crashes=4"]))
    assert spec.min_sharpe == 1.5 and spec.max_crashes == 4 and isinstance(spec.max_crashes, int)
    with pytest.raises(ConfigError, match="unknown readiness criterion 'min_sharp'.*min_sharpe"):
        ReadinessSpec().with_overrides({"min_sharp": "1"})
    with pytest.raises(ConfigError, match="expected a fraction"):
        ReadinessSpec(min_win_rate=60)
    with pytest.raises(ConfigError, match="expects NAME=VALUE"):
        parse_overrides(["min_sharpe"])
    with pytest.raises(ConfigError, match="expected a number"):
        ReadinessSpec().with_overrides({"min_sharpe": "high"})


# -- a real paper session -------------------------------------------------------------------------
def test_the_same_metric_has_the_same_value_everywhere(db, tmp_path):
    record = load_record(db, RUN)
    m = paper_metrics(record)
    rows = _rows(evaluate(record))
    totals = journal_totals(journal_table(record))
    paths = write_period_report(record, record.equity.index[0], record.equity.index[-1],
                                tmp_path, "whole run")
    markdown = paths["markdown"].read_text()
    assert rows["win rate"].measured == pct(m["win_rate"]) == pct(totals["win_rate"])
    assert f"| win rate | {pct(m['win_rate'])} " in markdown
    assert rows["profit factor"].measured == num(m["profit_factor"]) == num(totals["profit_factor"])
    assert f"| profit factor | {num(m['profit_factor'])} " in markdown
    assert rows["Sharpe"].measured == num(m["sharpe"])
    assert f"| Sharpe | {num(m['sharpe'])} " in markdown
    assert rows["max drawdown"].measured == pct(m["cumulative_max_drawdown"])
    assert f"| cumulative max drawdown | {pct(m['cumulative_max_drawdown'])} |" in markdown
    assert f"| closed trades | {totals['trades']} |" in markdown


def test_fw_readiness_exit_codes(db):
    fw = _fw()
    strict = CliRunner().invoke(fw, ["readiness", "--db", db, "--criterion", "min_months=100"])
    assert strict.exit_code == 1, strict.output
    assert "NOT READY" in strict.output and "FAIL" in strict.output and ">= 100.0 months" in strict.output
    loose = CliRunner().invoke(fw, ["readiness", "--db", db, "--run-id", RUN,
                                    *[x for pair in LOOSE for x in ("--criterion", pair)]])
    assert loose.exit_code == 0, loose.output
    assert "READY for live trading" in loose.output and "NOT READY" not in loose.output
    bad = CliRunner().invoke(fw, ["readiness", "--db", db, "--criterion", "min_sharp=2"])
    assert bad.exit_code == 1 and "Did you mean 'min_sharpe'" in bad.output
    assert "Traceback" not in bad.output
