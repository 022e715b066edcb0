"""apps.dashboard and apps.launch: the panels' numbers, the launcher, and the page itself in a
real headless Chromium (Debian's ``chromium`` driven by Playwright) over a sim paper session.

The expected values are computed here from ``paper_metrics`` / ``load_record`` of the same store
and formatted with the report's helpers, so a pass means the dashboard shows what ``fw report``,
``fw journal`` and ``fw readiness`` show.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from apps import launch as launcher
from apps.dashboard import (
    TABS,
    DashboardSpec,
    build_panels,
    check_database,
    costs_by_period,
    last_trade,
    load_snapshot,
    model_health,
    next_period_session,
    next_rebalance,
    parse_args,
    plain_markdown,
    regime_spans,
    rolling_sharpe,
    strategy_is_learned,
)
from framework import metrics
from framework.errors import ConfigError, FwError
from framework.paper_metrics import paper_metrics, positions_over_time
from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.record import load_record
from live.state import Store
from reports.paper_report import money, num, pct
from strategies import REGISTRY

RUN = "dash-run"
REPO = Path(__file__).resolve().parents[2]


# -- the store: a sim paper session that ends holding a position, plus one recorded error ------
@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("fw_home_dashboard")


@pytest.fixture(scope="module")
def db(home):
    url = f"sqlite:///{home}/paper.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        spec = PaperSpec(run_id=RUN, start="2017-01-01", end="2017-12-20",
                         sets=("fast=3", "slow=8"), db=url)
        run_paper(resolve_strategy("sma_cross", REGISTRY), spec, Store(url))
        store = Store(url)
        store.error(RUN, "feed timeout after 30 s", "retried; the bar arrived late")
        store.close()
        load_record(url, RUN)  # live.record creates its notes table on first read
    return url


@pytest.fixture(scope="module")
def expected(db):
    """What every surface must show, from the one metrics implementation."""
    record = load_record(db, RUN)
    m = paper_metrics(record)
    held = positions_over_time(record)["GSPC"].iloc[-1]
    close = record.bars.frame("close")["GSPC"].iloc[-1]
    equity = record.equity["equity"].iloc[-1]
    return {"record": record, "m": m, "weight": pct(held * close / equity)}


def _snapshot(db):
    return load_snapshot(DashboardSpec(db=db, run_id=RUN))


def _metrics_of(panel) -> dict[str, str]:
    return {metric.label: metric.value for metric in panel.metrics}


# -- panels (no browser) ------------------------------------------------------------------------
def test_panels_show_the_paper_metrics(db, expected):
    snapshot = _snapshot(db)
    panels = build_panels(snapshot, DashboardSpec(db=db, run_id=RUN), "no learned model")
    assert [p.title for p in panels] == list(TABS)
    portfolio, performance, regime, costs, health = map(_metrics_of, panels)
    m, record = expected["m"], expected["record"]
    assert portfolio["equity"] == money(record.equity["equity"].iloc[-1])
    assert portfolio["open positions"] == "1"
    assert expected["weight"] in panels[0].tables[0].data["weight"].tolist()
    assert performance["cumulative return"] == pct(m["cumulative_return"])
    assert performance["win rate"] == pct(m["win_rate"])
    assert performance["profit factor"] == num(m["profit_factor"])
    assert regime["current regime"] == record.conditions["regime"].dropna().iloc[-1]
    assert costs["total costs"] == money(float(record.fills[["commission", "slippage",
                                                             "impact"]].to_numpy().sum()))
    assert costs["fills"] == str(len(record.fills))
    assert health["uptime"] == pct(m["uptime"], 1)
    assert health["errors in the last 24 hours"] == "1"  # the error written by the fixture
    assert panels[1].warnings and "too few trades" in panels[1].warnings[0].lower()


def test_a_run_without_bars_yet_still_renders_every_panel(tmp_path):
    url = f"sqlite:///{tmp_path}/fresh.sqlite"
    store = Store(url)
    store.create_run("fresh", "sma_cross", ["GSPC"], {"broker": "sim", "initial_cash": 5e4})
    spec = DashboardSpec(db=url, run_id="fresh")
    panels = build_panels(load_snapshot(spec), spec, "no learned model")
    portfolio, performance, regime, costs, health = map(_metrics_of, panels)
    assert portfolio["equity"] == "n/a" and portfolio["next rebalance"] == "after the first bar"
    assert performance["closed trades"] == "0" and costs["total costs"] == money(0.0)
    assert costs["turnover"] == "n/a"  # not "n/ax"
    assert regime["current regime"] == "not available" and "not available" in panels[2].warnings[0]
    assert health["last successful trade (UTC)"] == "none yet"
    store.event("fresh", "regime", "GSPC at 2024-01-02T21:00: none yet -> BULL")
    store.close()
    regime = _metrics_of(build_panels(load_snapshot(spec), spec, "")[2])
    assert regime["current regime"] == "BULL" and regime["regime changes"] == "1"


def test_rolling_sharpe_is_the_metrics_sharpe_of_each_window(db):
    returns = pd.Series(np.random.default_rng(3).normal(0.0005, 0.01, 80),
                        index=pd.date_range("2020-01-01", periods=80, tz="UTC"))
    rolled = rolling_sharpe(returns, 20, 252.0)
    assert rolled.iloc[:19].isna().all()
    assert rolled.iloc[-1] == pytest.approx(metrics.sharpe(returns.iloc[-20:], 252.0))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.floats(0, 50), st.floats(0, 50),
                          st.floats(0, 5)), min_size=1, max_size=30))
def test_costs_by_period_add_up_to_the_total(rows):
    start = pd.Timestamp("2021-01-04 21:00", tz="UTC")
    fills = pd.DataFrame({"time": [start + pd.Timedelta(days=d) for d, *_ in rows],
                          "commission": [c for _, c, _, _ in rows],
                          "slippage": [s for _, _, s, _ in rows],
                          "impact": [i for *_, i in rows]})
    total = fills[["commission", "slippage", "impact"]].to_numpy().sum()
    for period in ("day", "week", "month"):
        table = costs_by_period(fills, period)
        assert table["total"].sum() == pytest.approx(total)
        assert table.index.is_monotonic_increasing and table.index.is_unique
    weeks = pd.to_datetime(costs_by_period(fills, "week").index)
    assert (weeks.day_of_week == 0).all()  # labelled by their Monday
    assert len(costs_by_period(fills, "month")) <= len(costs_by_period(fills, "day"))


def test_costs_by_period_rejects_an_unknown_period():
    with pytest.raises(ConfigError, match="cost period 'year'"):
        costs_by_period(pd.DataFrame(), "year")


def test_next_rebalance_follows_the_rebalancing_rule(expected):
    record = expected["record"]
    when, why = next_rebalance(record)  # the run's default: combined, monthly
    assert when == "2018-01-02" and "drifts more than 10.0%" in why
    assert next_period_session(pd.Timestamp("2017-12-29 21:00", tz="UTC"), "weekly") \
        == pd.Timestamp("2018-01-02")
    assert next_period_session(pd.Timestamp("2017-03-02 21:00", tz="UTC"), "quarterly") \
        == pd.Timestamp("2017-04-03")
    for trigger, text in (("none", "on the next target change"), ("drift", "on drift")):
        config = {**record.run["config"], "risk": {**record.run["config"]["risk"],
                                                   "rebalance_trigger": trigger}}
        changed = dataclasses.replace(record, run={**record.run, "config": config})
        assert next_rebalance(changed)[0] == text
    with pytest.raises(ConfigError, match="rebalance frequency 'hourly'"):
        next_period_session(record.bars.index[-1], "hourly")


def test_regime_spans_cover_every_bar():
    index = pd.date_range("2021-01-04 21:00", periods=6, freq="D", tz="UTC")
    spans = regime_spans(pd.Series(["BULL", "BULL", "BEAR", "BEAR", "BEAR", "BULL"], index=index))
    assert spans["regime"].tolist() == ["BULL", "BEAR", "BULL"]
    assert spans["bars"].tolist() == [2, 3, 1] and spans["bars"].sum() == len(index)


def test_model_health_and_last_trade(expected):
    record = expected["record"]
    assert strategy_is_learned("sma_cross") == (False, "")
    learned, why = strategy_is_learned("no_such_strategy")
    assert learned is None and "no_such_strategy" in why
    assert model_health(record, pd.DataFrame(), False) == "no learned model"
    assert model_health(record, pd.DataFrame(), None, why).startswith("unknown (")
    last = record.fills.iloc[-1]
    assert last_trade(record.fills).endswith(f"@ {num(float(last['price']))}")
    assert last_trade(record.fills.iloc[:0]) == "none yet"


def test_arguments_and_missing_database_are_clean_errors(tmp_path):
    spec = parse_args(["--db", "sqlite:///x.sqlite", "--run-id", "r1", "--rolling-window", "21"])
    assert (spec.db, spec.run_id, spec.rolling_window) == ("sqlite:///x.sqlite", "r1", 21)
    with pytest.raises(ConfigError, match="unknown dashboard arguments"):
        parse_args(["--colour", "red"])
    with pytest.raises(ConfigError, match="rolling_window 1"):
        parse_args(["--rolling-window", "1"])
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(ConfigError, match="no state database at"):
        check_database(f"sqlite:///{missing}")
    assert not missing.exists()  # refused, not created


def test_an_unknown_run_is_a_config_error(db):
    with pytest.raises(ConfigError, match="unknown run id 'nope'"):
        load_snapshot(DashboardSpec(db=db, run_id="nope"))


def test_plain_markdown_shows_text_as_written():
    assert plain_markdown("$1 / $2 *a*") == "\\$1 / \\$2 \\*a\\*"
    assert plain_markdown("BULL 42") == "BULL 42"


# -- the launcher -------------------------------------------------------------------------------
def test_streamlit_command_binds_localhost_and_passes_the_run():
    command = launcher.streamlit_command("sqlite:///a.sqlite", "r1", 8600)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(launcher.DASHBOARD)]
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8600"
    assert command[command.index("--browser.gatherUsageStats") + 1] == "false"
    assert command[command.index("--") + 1:] == ["--db", "sqlite:///a.sqlite", "--run-id", "r1"]
    with pytest.raises(ConfigError, match="port 70000"):
        launcher.streamlit_command(None, None, 70000)


def test_resolve_run_checks_the_store_before_serving(db, tmp_path):
    assert launcher.resolve_run(db, None) == (db, RUN)
    assert launcher.resolve_run(db, RUN) == (db, RUN)
    with pytest.raises(ConfigError, match="unknown run id 'nope'"):
        launcher.resolve_run(db, "nope")
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(ConfigError, match="no state database"):
        launcher.resolve_run(f"sqlite:///{missing}", None)
    assert not missing.exists()


def test_missing_streamlit_is_a_clear_fw_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(launcher.importlib.util, "find_spec",
                        lambda name, *a: None if name == "streamlit" else real(name, *a))
    with pytest.raises(FwError, match=r"pip install 'fw\[dashboard\]'"):
        launcher.launch(None, None)


def test_wait_ready_stops_when_the_server_exits_or_times_out():
    port = _free_port()
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait(timeout=10)
    with pytest.raises(launcher.DashboardError, match="exited with code 3"):
        launcher.wait_ready(f"http://127.0.0.1:{port}", 10, process=dead)
    with pytest.raises(launcher.DashboardError, match="not ready after 0.3 s"):
        launcher.wait_ready(f"http://127.0.0.1:{port}", 0.3, interval=0.05)


# -- the page in a real browser -----------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _browser_or_skip():
    if shutil.which("chromium") is None:
        pytest.skip("no `chromium` on PATH (Debian: apt-get install chromium)")
    if importlib.util.find_spec("streamlit") is None:
        pytest.skip("streamlit is not installed (pip install 'fw[dashboard]')")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(pip install playwright; the system chromium is used)")


def _table_rows(db: str) -> dict[str, int]:
    engine = sa.create_engine(db)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {n: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar() for n in names}
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def server(db, home, tmp_path_factory):
    _browser_or_skip()
    user_home = tmp_path_factory.mktemp("user_home")
    log = tmp_path_factory.mktemp("dashboard_log") / "streamlit.log"
    # matplotlib (imported by arch, the embedded data's source) keeps its font cache in
    # MPLCONFIGDIR: point it elsewhere so $HOME shows what Streamlit alone writes
    env = {**os.environ, "HOME": str(user_home), "FW_HOME": str(home), "PYTHONPATH": str(REPO),
           "MPLCONFIGDIR": str(tmp_path_factory.mktemp("mpl"))}
    env.pop("FW_DB_URL", None)
    port = _free_port()
    before = _table_rows(db)
    process = launcher.launch(db, RUN, port=port, log=log, env=env)
    try:
        launcher.wait_ready(f"http://127.0.0.1:{port}", 30, process=process)
        yield {"url": f"http://127.0.0.1:{port}", "home": user_home, "before": before, "log": log}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _visible_metrics(page) -> dict[str, str]:
    cards = page.locator('[data-testid="stMetric"]:visible')
    found = {}
    for i in range(cards.count()):
        card = cards.nth(i)
        label = card.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = card.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found


def _tab_expectations(expected) -> dict[str, dict[str, str]]:
    m, record = expected["m"], expected["record"]
    last_fill = pd.to_datetime(record.fills["time"], utc=True).max()
    return {
        "Portfolio": {"equity": money(record.equity["equity"].iloc[-1]),
                      "cash": money(record.equity["cash"].iloc[-1]), "open positions": "1",
                      "P&L since start": money(record.equity["equity"].iloc[-1]
                                               - record.initial_cash)},
        "Performance": {"cumulative return": pct(m["cumulative_return"]),
                        "benchmark return": pct(m["benchmark_return"]),
                        "Sharpe": num(m["sharpe"]), "max drawdown": pct(m["max_drawdown"]),
                        "win rate": pct(m["win_rate"]), "profit factor": num(m["profit_factor"]),
                        "closed trades": str(m["trades"])},
        "Regime": {"current regime": str(record.conditions["regime"].dropna().iloc[-1]),
                   "method": "sma_cross"},
        "Transaction Costs": {"total costs": money(m["costs"]["total"]),
                              "commission": money(m["costs"]["commission"]),
                              "slippage": money(m["costs"]["slippage"]),
                              "fills": str(len(record.fills)),
                              "turnover": f"{num(m['turnover'])}x"},
        "System Health": {"uptime": pct(m["uptime"], 1), "errors in the last 24 hours": "1",
                          "errors (whole run)": str(m["errors"]), "halts": str(m["halts"]),
                          "breaker trips": str(m["breaker_trips"]),
                          "last successful trade (UTC)": last_fill.strftime("%Y-%m-%d %H:%M"),
                          "model health": "no learned model"},
    }


def _settle(page, expect, tab: str, first_label: str, n_charts: int) -> None:
    """Wait until ``tab`` shows its metrics and its charts are drawn (Vega's ``svg.marks``)."""
    page.get_by_role("tab", name=tab).click()
    page.locator('[data-testid="stMetric"]:visible', has_text=first_label).first.wait_for()
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached")
    charts = page.locator('[data-testid="stVegaLiteChart"]:visible')
    expect(charts).to_have_count(n_charts)
    for i in range(n_charts):
        charts.nth(i).locator("svg.marks").wait_for()


def _full_page_screenshot(page, path: Path) -> None:
    # Streamlit scrolls inside its main block, not the document: grow the viewport to fit it
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": int(height) + 40})
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_every_tab_renders_the_expected_numbers_in_chromium(server, db, expected, tmp_path):
    sync_api = _browser_or_skip()
    wanted = _tab_expectations(expected)
    panels = build_panels(_snapshot(db), DashboardSpec(db=db, run_id=RUN), "no learned model")
    n_charts = {p.title: sum(not c.data.dropna(how="all").empty for c in p.charts) for p in panels}
    assert sum(n_charts.values()) >= 8  # every tab but System Health draws charts
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                             headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            page.goto(server["url"])
            for tab in TABS:
                _settle(page, sync_api.expect, tab, next(iter(wanted[tab])), n_charts[tab])
                shown = _visible_metrics(page)
                for label, value in wanted[tab].items():
                    assert shown.get(label) == value, (tab, label, shown)
                shot = tmp_path / f"dashboard-{tab.lower().replace(' ', '-')}.png"
                _full_page_screenshot(page, shot)
                assert shot.stat().st_size > 10_000
                print(f"screenshot of the {tab} tab: {shot}")
            page.get_by_role("tab", name="Portfolio").click()
            table = page.locator('[data-testid="stTable"]:visible').first.inner_text()
            assert "GSPC" in table and expected["weight"] in table
            assert page.locator('[data-testid="stException"]').count() == 0
        finally:
            browser.close()
    assert _table_rows(db) == server["before"], "the dashboard changed the store"
    assert not any(server["home"].iterdir()), "streamlit wrote into $HOME"
    assert not (REPO / ".streamlit").exists() and not (REPO / "apps" / ".streamlit").exists()


def test_an_unknown_run_shows_one_clean_error_in_the_page(db, home, tmp_path):
    sync_api = _browser_or_skip()
    port = _free_port()
    env = {**os.environ, "FW_HOME": str(home), "PYTHONPATH": str(REPO),
           "MPLCONFIGDIR": str(tmp_path / "mpl")}
    process = launcher.launch(db, "no-such-run", port=port, log=tmp_path / "streamlit.log", env=env)
    try:
        launcher.wait_ready(f"http://127.0.0.1:{port}", 30, process=process)
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.set_default_timeout(20_000)
                page.goto(f"http://127.0.0.1:{port}")
                alert = page.locator('[data-testid="stAlert"]')
                alert.wait_for()
                assert "unknown run id 'no-such-run'" in alert.inner_text()
                assert RUN in alert.inner_text()  # the known runs are listed
                assert page.locator('[data-testid="stException"]').count() == 0
                assert page.get_by_role("tab").count() == 0
            finally:
                browser.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
