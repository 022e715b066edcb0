"""live.record: a paper run read out of the store as a PaperRecord, and the notes table."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from framework.data import load_bars
from framework.errors import ConfigError
from framework.paper_record import PaperRecord, record_trips
from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.record import add_note, latest_run_id, load_record, notes
from live.state import SCHEMA_VERSION, Store
from strategies import REGISTRY

RUN = "rec"
FAST = ("fast=3", "slow=8")


def _session(url: str, run_id: str, **spec) -> None:
    spec = {"start": "2017-01-01", "end": "2017-12-31", "sets": FAST, "db": url, **spec}
    run_paper(resolve_strategy("sma_cross", REGISTRY), PaperSpec(run_id=run_id, **spec), Store(url))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    home = tmp_path_factory.mktemp("fw_home_record")
    url = f"sqlite:///{home}/paper.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        _session(url, RUN)
    return url


def test_load_record_gives_typed_tables_of_the_run(db):
    record = load_record(db, RUN)
    store = Store(db)
    assert isinstance(record, PaperRecord) and record.run_id == RUN
    assert record.run["strategy"] == "sma_cross" and record.run["symbols"] == ["GSPC"]
    assert str(record.equity.index.tz) == "UTC" and list(record.equity.columns) == ["cash", "equity"]
    assert len(record.equity) == len(store.equity(RUN)) == record.bars.n_bars
    assert record.equity["equity"].iloc[-1] == store.equity(RUN)["equity"].iloc[-1]
    assert len(record.fills) == len(store.fills(RUN)) and str(record.fills["time"].dt.tz) == "UTC"
    assert len(record.orders) == len(store.orders(RUN))
    assert {"target", "pending", "features"} <= set(record.decisions.columns)
    assert {"start", "finish"} <= set(record.events["kind"])
    # a replay's events are placed on the bars they were written for, not today's clock
    assert record.events["market_time"].between(record.equity.index[0], record.equity.index[-1]).all()
    assert record.errors.empty and record.notes.empty


def test_the_benchmark_is_the_embedded_index_labelled_as_a_proxy(db):
    record = load_record(db, RUN)
    assert "GSPC" in record.benchmark_label and "proxy" in record.benchmark_label
    closes = record.bars.frame("close")["GSPC"]
    assert record.benchmark.reindex(closes.index).equals(closes.rename(record.benchmark.name))
    assert record.conditions is not None and {"regime", "vix"} <= set(record.conditions.columns)


def test_end_keeps_nothing_later_and_start_keeps_the_fills(db):
    full = load_record(db, RUN)
    part = load_record(db, RUN, start="2017-06-01", end="2017-08-31")
    end = pd.Timestamp("2017-09-01", tz="UTC")
    assert part.equity.index.min() >= pd.Timestamp("2017-06-01", tz="UTC")
    assert part.equity.index.max() < end and part.bars.index.max() < end
    assert (part.fills["time"] < end).all() and part.fills["time"].min() == full.fills["time"].min()
    assert part.benchmark.index.max() < end
    with pytest.raises(ConfigError, match="before --start"):
        load_record(db, RUN, start="2017-08-31", end="2017-06-01")


def test_notes_live_in_their_own_table_and_check_the_trade_id(db):
    trade = record_trips(load_record(db, RUN))["trade_id"].iloc[0]
    stored = add_note(db, RUN, trade, "  entered on a weak cross  ")
    assert stored["text"] == "entered on a weak cross"
    store = Store(db)
    table = notes(store, RUN)
    assert table["trade_id"].tolist()[-1] == trade and table["text"].tolist()[-1] == stored["text"]
    assert load_record(db, RUN).notes["text"].tolist()[-1] == stored["text"]
    assert store.schema_version() == SCHEMA_VERSION  # the store's own schema is untouched
    assert "paper_notes" in sa.inspect(store.engine).get_table_names()
    bad = trade.rsplit(".", 1)[0] + ".9"
    with pytest.raises(ConfigError, match=f"unknown trade id '{bad}'.*Did you mean"):
        add_note(db, RUN, bad, "x")
    with pytest.raises(ConfigError, match="note text is empty"):
        add_note(db, RUN, trade, "   ")


def test_unknown_run_and_latest_run(db):
    with pytest.raises(ConfigError, match="unknown run id 'nope'"):
        load_record(db, "nope")
    assert latest_run_id(db) == RUN
    assert latest_run_id(Store(db)) == RUN


def _write_csv(folder, symbol: str, source: str) -> None:
    bars = load_bars([source], source="default", start="2016-06-01", end="2017-12-31")
    dates = bars.index.tz_convert("America/New_York").date
    pd.DataFrame({
        "date": [str(d) for d in dates], "open": bars.open[:, 0], "high": bars.high[:, 0],
        "low": bars.low[:, 0], "close": bars.close[:, 0], "volume": bars.volume[:, 0],
    }).to_csv(folder / f"{symbol}.csv", index=False)


def test_spy_comes_from_the_run_or_the_data_folder(tmp_path):
    folder = tmp_path / "daily"
    folder.mkdir()
    _write_csv(folder, "SPY", "GSPC")
    _write_csv(folder, "QQQ", "IXIC")
    url = f"sqlite:///{tmp_path}/spy.sqlite"
    window = {"start": "2017-01-01", "end": "2017-06-30", "data_dir": folder}
    _session(url, "spy", symbols=("SPY",), **window)
    _session(url, "qqq", symbols=("QQQ",), **window)
    own = load_record(url, "spy")
    assert own.benchmark_label == "SPY buy and hold (the run's own bars)"
    assert own.benchmark.iloc[-1] == own.bars.frame("close")["SPY"].iloc[-1]
    other = load_record(url, "qqq", data_dir=folder)
    assert other.benchmark_label.startswith("SPY buy and hold (") and "proxy" not in other.benchmark_label
    assert other.benchmark.index.max() == other.bars.index.max()
