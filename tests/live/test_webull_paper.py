"""``fw paper sma_cross --broker webull`` end to end against the fake Webull server, compared
with the same session against the fake Alpaca server: identical decisions, fills, positions and
equity (both fakes share one exchange simulation; only the wire protocols differ)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from live.command import PaperSpec
from live.state import Store
from strategies.sma_cross import SmaCross
from tests.live import alpaca_helpers
from tests.live import webull_helpers as wh

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")

START = "2016-01-04 12:00Z"
HISTORY = alpaca_helpers.spy_bars("2015-06-01", "2016-06-30")
CLOSES = HISTORY.between("2016-01-04", "2016-03-15").index


@pytest.fixture
def fast_config(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("broker:\n  max_requests_per_min: 100000\n")
    monkeypatch.setenv("FW_CONFIG", str(path))
    return path


def _spec(broker: str, run_id: str) -> PaperSpec:
    return PaperSpec(run_id=run_id, symbols=("SPY",), sets=("fast=5", "slow=20"), broker=broker,
                     interval="1Day", warmup_bars=60, max_bars=len(CLOSES) + 1, poll=0.005,
                     settle=1.0, max_clock_drift=None, risk_off=True)


def _fills(store: Store, run_id: str):
    return [(f["client_order_id"].replace(run_id, "RUN"), round(f["quantity"], 6), f["price"],
             f["time"]) for f in store.fills(run_id)]


def test_webull_session_trades_exactly_as_the_alpaca_session(tmp_path, fast_config,
                                                             monkeypatch):
    alpaca_store = Store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    with alpaca_helpers.fake_for(HISTORY, START) as fake:
        fake.faults.rate_limit_per_min = 0
        with monkeypatch.context() as scoped:
            alpaca_helpers.run_session(fake, alpaca_store, SmaCross(), _spec("alpaca", "a1"),
                                       CLOSES, scoped)
        alpaca_positions = fake.positions()
    webull_store = Store(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with wh.fake_for(HISTORY, START) as fake:
        fake.faults.rate_limit_per_min = 0
        out = wh.run_session(fake, webull_store, SmaCross(), _spec("webull", "w1"), CLOSES,
                             monkeypatch, tmp_path / "home")
        webull_positions, requests = fake.positions(), fake.requests
    summary = out["summary"]
    assert summary.kill_switch == "ACTIVE" and summary.new_bars == 60 + len(CLOSES)
    assert webull_store.errors("w1") == []
    a_fills, w_fills = _fills(alpaca_store, "a1"), _fills(webull_store, "w1")
    assert len(w_fills) >= 4
    assert [f[0] for f in w_fills] == [f[0] for f in a_fills]
    assert [f[3] for f in w_fills] == [f[3] for f in a_fills]  # same fill times
    assert [f[1] for f in w_fills] == pytest.approx([f[1] for f in a_fills], abs=1e-6)
    assert [f[2] for f in w_fills] == pytest.approx([f[2] for f in a_fills], rel=1e-12)
    assert webull_positions == pytest.approx(alpaca_positions, abs=1e-6)
    assert webull_store.positions("w1") == pytest.approx(webull_positions, abs=1e-6)
    a_decisions = alpaca_store.decisions("a1")["target"].to_numpy(np.float64)
    w_decisions = webull_store.decisions("w1")["target"].to_numpy(np.float64)
    assert np.array_equal(a_decisions, w_decisions, equal_nan=True)
    a_equity = alpaca_store.equity("a1")["equity"].to_numpy(np.float64)
    w_equity = webull_store.equity("w1")["equity"].to_numpy(np.float64)
    assert w_equity == pytest.approx(a_equity, rel=1e-9)
    run = webull_store.run("w1")
    assert run["config"]["broker"] == "webull" and run["config"]["broker_mode"] == "test"
    events = [e["message"] for e in webull_store.events("w1", limit=1000)]
    assert any("TEST environment" in m for m in events)
    assert all(r["status"] != 401 for r in requests)  # every request signed and authorised


def test_cli_accepts_broker_webull_and_fw_halt_cancels_at_webull(tmp_path, fast_config,
                                                                 monkeypatch):
    from framework.cli import main
    from live.broker import OrderRequest
    from live.command import halt_run

    store = Store(f"sqlite:///{tmp_path / 'h.sqlite'}")
    with wh.fake_for(HISTORY, START) as fake:
        fake.faults.rate_limit_per_min = 0
        monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
        for name, value in wh.environment(fake).items():
            monkeypatch.setenv(name, value)
        help_text = CliRunner().invoke(main, ["paper", "--help"]).output
        assert "webull" in help_text
        # a stored run with one open order at the broker: fw halt cancels it there
        store.create_run("h1", "sma_cross", ("SPY",), {"broker": "webull"})
        store.add_orders("h1", [{"client_order_id": "sma_cross:h1:x:SPY",
                                 "bar_time": "2016-01-04T21:00:00+00:00",
                                 "symbol": "SPY", "quantity": 1.0, "status": "submitted"}])
        wh.broker_for(fake, tmp_path / "home").submit(
            OrderRequest("sma_cross:h1:x:SPY", "SPY", 1.0), limit_price=100.0)
        canceled = halt_run(store, "h1")
        assert canceled == ["sma_cross:h1:x:SPY"]
        assert fake.orders()[0]["status"] == "canceled"


def test_yaml_broker_name_selects_webull(tmp_path, monkeypatch):
    """Without --broker, `fw paper` trades with the config's broker.name."""
    from click.testing import CliRunner

    from framework.cli import main

    config = tmp_path / "config.yaml"
    config.write_text("broker:\n  name: webull\n")
    monkeypatch.setenv("FW_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("WEBULL_APP_KEY", "WEBULL_APP_SECRET", "WEBULL_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["paper", "sma_cross", "--max-bars", "1", "--db",
                                       f"sqlite:///{tmp_path / 'x.sqlite'}"])
    assert result.exit_code != 0 and "WEBULL_APP_KEY" in result.output, result.output
