"""``fw paper credit_spread``: routing from the paper command to the options session, the IV
history it starts from, and a short session on the fake Alpaca driven by the broker's clock."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from click.testing import CliRunner

from framework.cli import main
from framework.errors import ConfigError
from live.command import PaperSpec
from live.options_session import iv_history, run_options_session
from live.state import Store
from strategies.credit_spread import CreditSpread
from tests.live.alpaca_helpers import environment, wait_for
from tests.live.test_options_paper import market

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")


def test_sim_broker_is_refused_with_the_way_out(tmp_path):
    result = CliRunner().invoke(main, ["paper", "credit_spread", "--db",
                                       f"sqlite:///{tmp_path / 'x.sqlite'}"])
    assert result.exit_code != 0
    assert "--broker alpaca" in result.output and "fw backtest credit_spread" in result.output


def _vix(tmp_path, end: str):
    days = pd.bdate_range(end=end, periods=300)
    (tmp_path / "VIX.csv").write_text("date,close\n" + "\n".join(
        f"{d.date()},{20 + i % 7}" for i, d in enumerate(days)))


def test_iv_history_from_recent_vix_and_not_from_stale(tmp_path):
    now = pd.Timestamp("2025-03-03 15:00", tz="UTC")
    _vix(tmp_path, "2025-02-28")
    history, note = iv_history("SPY", tmp_path, now)
    assert len(history) == 300 and history.iloc[0] == pytest.approx(0.20 * 0.771)
    assert "VIX from" in note
    _vix(tmp_path, "2024-12-31")
    stale, note = iv_history("SPY", tmp_path, now)
    assert stale.empty and "not used" in note
    assert iv_history("SPY", None, now)[0].empty
    assert "no implied-vol index" in iv_history("IWM", tmp_path, now)[1]
    with pytest.raises(ConfigError, match="one underlying"):
        run_options_session(CreditSpread(), PaperSpec(broker="alpaca", symbols=("SPY", "QQQ")),
                            Store(f"sqlite:///{tmp_path / 'y.sqlite'}"))


def test_a_session_on_the_fake_steps_before_each_close(tmp_path, monkeypatch):
    store = Store(f"sqlite:///{tmp_path / 'o.sqlite'}")
    spec = PaperSpec(broker="alpaca", run_id="cs", symbols=("SPY",), max_bars=3, poll=0.01,
                     sets=("iv_rank_min=0", "dte_min=20", "dte_max=30", "exit_dte=7",
                           "entry_every_days=1"))
    with market([0.001] * 200) as fake:
        for name, value in environment(fake).items():
            monkeypatch.setenv(name, value)
        out: dict = {}
        worker = threading.Thread(target=lambda: out.update(
            summary=run_options_session(CreditSpread(), spec, store)), daemon=True)
        worker.start()
        wait_for(lambda: store.run("cs") is not None, 30, "the run")
        for day in ("2025-01-06", "2025-01-07", "2025-01-08"):
            fake.clock.set(pd.Timestamp(f"{day} 20:51", tz="UTC"))  # 15:51 New York
            wait_for(lambda d=day: not worker.is_alive() or d in str(
                (store.broker_state("cs") or {}).get("iv_seen", {})), 10, f"step {day}")
        worker.join(30)
    assert out["summary"]["steps"] == 3 and out["summary"]["status"] == "finished"
    kinds = {e["kind"] for e in store.events("cs")}
    assert "iv_history" in kinds
    book = store.broker_state("cs")
    assert len(book["spreads"]) >= 1  # entries from the fake's quotes with the gate off
