"""live.parity: a real sim paper session on the embedded data replays to the same decisions and
fills as its backtest; planted divergences in the store are caught and explained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.clirun import load_run_bars
from framework.costs import CostSpec
from framework.errors import ConfigError
from framework.registry import resolve_strategy
from framework.risk import RiskSpec
from framework.stepper import ScheduleEntry
from framework.strategy import compute_target
from framework.walkforward.schedule import write_schedule
from live.command import PaperSpec, run_paper
from live.feeds import ClosedBar, ReplayFeed
from live.parity import (
    ParitySpec,
    ParityThresholds,
    _group,
    compare_db,
    compare_run,
    divergence,
    exceeds,
)
from live.runner import Runner, RunnerSpec
from live.sim import SimBroker, SimSpec
from live.state import DECISIONS, FILLS, RUNS, Store
from strategies import REGISTRY
from strategies.sma_cross import SmaCrossParams

START, END = "2016-01-01", "2017-12-31"
SETS = ("fast=5", "slow=20")


def _strategy(name: str = "sma_cross"):
    return resolve_strategy(name, REGISTRY)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("fw_home_parity")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(path))
        yield path


def _session(home: Path, name: str, **spec) -> Path:
    """A sim paper session in its own database file (one run per file: the sim broker's
    execution ids restart at 1 for every run)."""
    path = home / f"{name}.sqlite"
    url = f"sqlite:///{path}"
    store = Store(url)
    run_paper(_strategy(), PaperSpec(run_id=name, start=START, end=END, db=url, **spec), store)
    store.close()
    return path


@pytest.fixture(scope="module")
def sessions(home):
    return {"on": _session(home, "on", sets=SETS), "off": _session(home, "off", sets=SETS,
                                                                     risk_off=True)}


def _copy(source: Path, tmp_path: Path) -> Store:
    target = tmp_path / source.name
    shutil.copy(source, target)
    for extra in ("-wal", "-shm"):
        if Path(f"{source}{extra}").exists():
            shutil.copy(f"{source}{extra}", f"{target}{extra}")
    return Store(f"sqlite:///{target}")


def _compare(path_or_store, run_id: str, **kw):
    store = path_or_store if isinstance(path_or_store, Store) else Store(f"sqlite:///{path_or_store}")
    return compare_run(store, run_id, _strategy(), **kw), store


def _overnight_gap_pct(store: Store, run_id: str, result) -> pd.Series:
    """Per matched fill: the fill bar's open over the decision bar's close, in percent."""
    bars = store.load_bars(run_id, store.run(run_id)["symbols"])
    i = result.fills["bar"].to_numpy()
    return pd.Series((bars.open[i, 0] / bars.close[i - 1, 0] - 1.0) * 100.0,
                     index=result.fills.index)


@pytest.mark.parametrize("run_id", ["on", "off"])
def test_a_sim_session_matches_its_backtest(sessions, run_id):
    result, store = _compare(sessions[run_id], run_id)
    s = result.summary
    assert s["bars"] == s["decisions"] == 503 and s["decision_mismatches"] == 0
    assert result.decisions["match"].all()
    assert s["live_fills"] == len(store.fills(run_id)) > 10
    assert s["matched"] == s["live_fills"] == s["backtest_fills"] and s["unmatched"] == 0
    assert (result.fills["reason"] == "").all()
    # same bar, same open, same cost model: prices agree to float noise, times exactly
    assert s["max_abs_price_bps"] < 1e-4 and s["mean_abs_time_s"] == 0.0
    # costs are the same model on (slightly) different sizes
    assert s["realized_cost"] == pytest.approx(s["model_cost"], rel=5e-3)
    assert s["equity_diff_pct"] == pytest.approx(0.0, abs=0.05)
    assert exceeds(result) == [] and result.exceeds() == []
    assert divergence(result) == {k: s[k] for k in divergence(result)}


def _entries(result) -> pd.DataFrame:
    """Matched buys that open a position from flat (in the backtest)."""
    fills = result.fills.sort_values("bar")
    held_before = fills["backtest_qty"].cumsum().shift(fill_value=0.0)
    return fills[(held_before.abs() < 1e-9) & (fills["side"] == "buy")]


def test_the_quantity_gap_is_the_overnight_gap(sessions):
    """Live sizes an entry at the decision close, the engine at the fill open: from flat, the
    live quantity is the backtest's times open/close (risk on: 30% position cap, never
    cash-bound)."""
    result, store = _compare(sessions["on"], "on")
    entries = _entries(result)
    assert len(entries) >= 5
    gap = _overnight_gap_pct(store, "on", result)[entries.index]
    assert np.allclose(entries["qty_diff_pct"], gap, atol=0.02)
    assert result.summary["max_abs_qty_pct"] < 2.0


def test_risk_off_quantities_differ_at_most_by_the_gap(sessions):
    """Risk off the target is 100%: the leverage rule trims whatever the account cannot pay at
    the open, so an entry's live quantity differs by at most the overnight gap, and the exit
    sells what each side holds (the entry's difference again)."""
    result, store = _compare(sessions["off"], "off")
    entries = _entries(result)
    gap = _overnight_gap_pct(store, "off", result)[entries.index]
    assert len(entries) >= 5 and (entries["qty_diff_pct"].abs() <= gap.abs() + 0.01).all()
    fills = result.fills.sort_values("bar")
    for i in np.flatnonzero(fills["side"].to_numpy() == "sell"):
        assert fills["qty_diff_pct"].iloc[i] == pytest.approx(fills["qty_diff_pct"].iloc[i - 1],
                                                             abs=1e-6)


def test_a_planted_decision_is_caught(sessions, tmp_path):
    store = _copy(sessions["off"], tmp_path)
    row = store.decisions("off").query("target == 1.0").iloc[40]
    with store.engine.begin() as conn:
        conn.execute(sa.update(DECISIONS).where(
            DECISIONS.c.run_id == "off", DECISIONS.c.bar_time == row["bar_time"]).values(target=0.5))
    result, _ = _compare(store, "off")
    bad = result.decisions[~result.decisions["match"]]
    assert len(bad) == 1 and result.summary["decision_mismatches"] == 1
    assert bad.iloc[0]["bar_time"] == pd.Timestamp(row["bar_time"])
    assert (bad.iloc[0]["live"], bad.iloc[0]["backtest"]) == (0.5, 1.0)
    found = exceeds(result)
    assert len(found) == 1 and found[0].startswith("decisions: 1 mismatch")
    assert row["bar_time"] in found[0]
    assert result.exceeds(max_decision_mismatches=1) == []


def test_a_planted_fill_price_is_caught(sessions, tmp_path):
    store = _copy(sessions["off"], tmp_path)
    fill = store.fills("off")[3]
    with store.engine.begin() as conn:
        conn.execute(sa.update(FILLS).where(FILLS.c.execution_id == fill["execution_id"]).values(
            price=fill["price"] * (1.02 if fill["quantity"] > 0 else 0.98)))
    result, _ = _compare(store, "off")
    diffs = result.fills["price_diff_bps"]
    assert diffs.abs().idxmax() == 3 and diffs[3] == pytest.approx(200.0, rel=1e-6)  # live worse
    assert result.summary["mean_abs_price_bps"] == pytest.approx(200.0 / len(diffs), rel=1e-3)
    found = exceeds(result)
    assert len(found) == 1 and found[0].startswith("price: mean |difference|")
    assert exceeds(result, ParityThresholds(max_mean_price_bps=50.0)) == []


def test_a_fill_moved_two_bars_later_is_unmatched_with_a_timing_reason(sessions, tmp_path):
    store = _copy(sessions["off"], tmp_path)
    fill = store.fills("off")[4]
    bars = store.load_bars("off", ["GSPC"])
    later = bars.index[bars.index.get_loc(pd.Timestamp(fill["time"])) + 2].isoformat()
    with store.engine.begin() as conn:
        conn.execute(sa.update(FILLS).where(FILLS.c.execution_id == fill["execution_id"]).values(
            time=later))
    result, _ = _compare(store, "off")
    rest = result.fills[result.fills["status"] != "matched"].set_index("status")
    assert sorted(rest.index) == ["backtest_only", "live_only"]
    assert rest.loc["live_only", "reason"] == "timing: the backtest filled this side 2 bar(s) earlier"
    assert rest.loc["backtest_only", "reason"] == "timing: the live run filled this side 2 bar(s) later"
    assert any(m.startswith("unmatched fills: 2 (1 live only, 1 backtest only") for m in exceeds(result))


def test_a_missing_fill_names_the_order_that_has_none(sessions, tmp_path):
    store = _copy(sessions["off"], tmp_path)
    fill = store.fills("off")[6]
    with store.engine.begin() as conn:
        conn.execute(sa.delete(FILLS).where(FILLS.c.execution_id == fill["execution_id"]))
    result, _ = _compare(store, "off")
    rest = result.fills[result.fills["status"] != "matched"]
    assert len(rest) == 1 and rest.iloc[0]["status"] == "backtest_only"
    reason = rest.iloc[0]["reason"]
    assert reason.startswith(f"live order {fill['client_order_id']} (")
    assert reason.endswith(f"{abs(fill['quantity']):g} shares filled per the broker) has no "
                           "recorded fill")


def test_an_alpaca_run_is_replayed_without_costs(sessions, tmp_path):
    """Alpaca charges no commission: the replay is cost-free, so the price differences are the
    live slippage (here the sim broker's 5 bps plus impact)."""
    store = _copy(sessions["off"], tmp_path)
    config = {**store.run("off")["config"], "broker": "alpaca", "size_buffer": 0.01}
    with store.engine.begin() as conn:
        conn.execute(sa.update(RUNS).where(RUNS.c.run_id == "off").values(config=json.dumps(config)))
    result, _ = _compare(store, "off")
    s = result.summary
    assert s["broker"] == "alpaca" and s["model_cost"] == 0.0
    assert s["cost_model"] == CostSpec.none().to_dict()
    assert any("Alpaca charges no commission" in n for n in s["notes"])
    assert any("size_buffer 0.01" in n for n in s["notes"])
    matched = result.fills[result.fills["status"] == "matched"]
    assert len(matched) > 10 and (matched["price_diff_bps"] >= 5.0 - 1e-6).all()
    assert any(m.startswith("price:") for m in exceeds(result))


def test_a_walk_forward_schedule_is_replayed_piecewise(home, tmp_path):
    strategy = _strategy()
    entries = [ScheduleEntry(pd.Timestamp("2016-01-01", tz="UTC"), SmaCrossParams(fast=5, slow=20)),
               ScheduleEntry(pd.Timestamp("2016-10-03", tz="UTC"), SmaCrossParams(fast=3, slow=10))]
    path = write_schedule(tmp_path / "schedule.json", strategy.name, entries)
    db = _session(tmp_path, "wf", schedule=path, risk_off=True)
    result, store = _compare(db, "wf")
    assert result.summary["decision_mismatches"] == 0 and result.summary["unmatched"] == 0
    assert any("walk-forward schedule of 2 entries" in n for n in result.summary["notes"])
    # the second entry mattered: the first entry's parameters alone decide differently
    bars = store.load_bars("wf", ["GSPC"])
    alone = compute_target(strategy, bars, entries[0].params)[:, 0]
    assert not np.array_equal(result.decisions["live"].to_numpy(), alone)


def _warm_session(store: Store, warm: int):
    """A runner whose first ``warm`` bars are history (as a live feed's warm-up): nothing is
    traded on them, the strategy sees them."""
    bars = load_run_bars(None, None, "2015-06-01", "2016-12-31")
    params = SmaCrossParams(fast=5, slow=20)
    broker = SimBroker(bars.symbols, SimSpec())
    runner = Runner(_strategy(), params, store, broker, bars.symbols,
                    RunnerSpec(run_id="w", risk=RiskSpec.off()))
    runner.start({"params": params.as_dict(), "broker": "sim", "initial_cash": 100_000.0,
                  "costs": CostSpec().to_dict(), "risk": RiskSpec.off().to_dict()})
    feed = [ClosedBar(**{**bar.__dict__, "warmup": i < warm})
            for i, bar in enumerate(ReplayFeed(bars))]
    runner.run(iter(feed))
    return bars


def test_warm_up_history_is_held_flat_or_reported(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'warm.sqlite'}")
    bars = _warm_session(store, warm=100)
    flat, _ = _compare(store, "w")
    assert flat.summary["first_traded_bar"] == bars.index[100].isoformat()
    assert flat.summary["decision_mismatches"] == 0 and flat.summary["unmatched"] == 0
    assert any("held flat for the 100 warm-up bar(s)" in n for n in flat.summary["notes"])

    full, _ = _compare(store, "w", spec=ParitySpec(from_first_trade=False))
    reasons = full.fills.loc[full.fills["status"] != "matched", "reason"]
    assert reasons.str.startswith("warm-up: the live run did not trade on bar").sum() >= 2
    assert reasons.str.startswith("run started flat").sum() == 1
    assert full.summary["decision_mismatches"] == 0


def test_errors_name_the_problem(sessions, home):
    store = Store(f"sqlite:///{sessions['off']}")
    with pytest.raises(ConfigError, match="unknown run id 'nope'"):
        compare_run(store, "nope", _strategy())
    with pytest.raises(ConfigError, match="traded strategy 'sma_cross'; got 'ema_cross'"):
        compare_run(store, "off", _strategy("ema_cross"))
    with pytest.raises(ConfigError, match="max_mean_price_bps = -1"):
        ParityThresholds(max_mean_price_bps=-1)
    with pytest.raises(ConfigError, match="unknown parity threshold 'max_price'"):
        ParityThresholds().with_overrides({"max_price": 3})
    # the composition root's entry point resolves the strategy from the run's stored name
    seen = []
    result = compare_db(f"sqlite:///{sessions['off']}", "off",
                        lambda name: seen.append(name) or _strategy(name))
    assert seen == ["sma_cross"] and result.summary["matched"] > 10


_FILL = st.tuples(st.integers(0, 5), st.sampled_from(["A", "B"]),
                  st.floats(-50, 50).filter(lambda q: abs(q) > 1e-3), st.floats(10, 20))


@settings(max_examples=60, deadline=None)
@given(st.lists(_FILL, min_size=1, max_size=30))
def test_grouping_keeps_quantity_and_value(rows):
    """Fills grouped by (bar, symbol, side): total shares and traded value are kept, the
    group price is a volume-weighted price inside the fills' range."""
    frame = pd.DataFrame(rows, columns=["bar", "symbol", "qty", "price"]).assign(
        time=pd.Timestamp("2020-01-01", tz="UTC"), cost=1.0, client_order_id="x")
    grouped = _group(frame, "live")
    assert grouped["live_qty"].sum() == pytest.approx(frame["qty"].sum(), abs=1e-6)
    assert grouped["live_value"].sum() == pytest.approx((frame["qty"] * frame["price"]).abs().sum())
    assert grouped["live_fills"].sum() == len(frame) and grouped["live_cost"].sum() == len(frame)
    for row in grouped.itertuples():
        side = frame["qty"] > 0 if row.side == "buy" else frame["qty"] < 0
        part = frame[(frame["bar"] == row.bar) & (frame["symbol"] == row.symbol) & side]
        assert part["price"].min() - 1e-9 <= row.live_price <= part["price"].max() + 1e-9


def test_a_dry_run_has_only_backtest_fills(tmp_path):
    db = _session(tmp_path, "dry", sets=SETS, risk_off=True, dry_run=True)
    result, _ = _compare(db, "dry")
    s = result.summary
    assert s["decision_mismatches"] == 0 and s["live_fills"] == 0 and s["matched"] == 0
    assert s["backtest_only"] == s["unmatched"] > 10
    assert (result.fills["reason"] == "dry run: the live run sent no orders").all()
    assert s["realized_cost"] == 0.0 < s["model_cost"]
