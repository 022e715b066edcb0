"""The SQLite store: migrations table, round trips, idempotent writes."""

from __future__ import annotations

import numpy as np
import pytest

from framework.errors import ConfigError
from framework.risk.state import RiskState
from live.state import MIGRATIONS, SCHEMA_VERSION, Store, default_url
from tests.barsgen import make_bars


def test_default_location_and_migrations(tmp_path, monkeypatch):
    assert default_url().endswith("state/fw.sqlite")
    monkeypatch.setenv("FW_DB_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    store = Store()
    assert store.url.endswith("x.sqlite")
    assert store.schema_version() == SCHEMA_VERSION == MIGRATIONS[-1][0]
    assert Store(store.url).migrate() == SCHEMA_VERSION  # re-opening applies nothing twice


def test_bad_url_names_the_fix():
    with pytest.raises(ConfigError, match="SQLAlchemy URL"):
        Store("nonsense://")


def test_bars_round_trip(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    bars = make_bars(n=10, m=2)
    for i in range(bars.n_bars):
        row = {k: getattr(bars, k)[i] for k in ("open", "high", "low", "close", "volume")}
        store.save_bar("r", bars.index[i].isoformat(), bars.symbols, row)
        store.save_bar("r", bars.index[i].isoformat(), bars.symbols, row)  # idempotent
    back = store.load_bars("r", bars.symbols)
    assert back.index.equals(bars.index)
    np.testing.assert_array_equal(back.close, bars.close)


def test_fills_are_deduplicated_and_move_positions(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.create_run("r", "x", ["A"], {})
    fill = dict(execution_id="e1", client_order_id="c", symbol="A", quantity=3.0, price=10.0,
                commission=1.0, slippage=0.0, impact=0.0, time="t")
    risk = RiskState.new(1, 100.0).to_dict()
    assert store.record_fill("r", fill, 3.0, risk) is True
    assert store.record_fill("r", fill, 6.0, risk) is False
    assert store.positions("r") == {"A": 3.0} and len(store.fills("r")) == 1
    assert RiskState.from_dict(store.risk_state("r")).breaker == "ACTIVE"


def test_orders_keep_the_first_write(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    row = dict(client_order_id="c1", bar_time="t", symbol="A", quantity=5.0, status="new")
    store.add_orders("r", [row])
    store.add_orders("r", [{**row, "quantity": 9.0}])
    (order,) = store.orders("r")
    assert order["quantity"] == 5.0
    store.update_order("c1", status="filled")
    assert store.orders("r", ["new"]) == []


def test_a_version_1_database_gains_the_stop_price_column(tmp_path):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'v1.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the orders table as schema version 1 created it
        conn.execute(sa.text(
            "CREATE TABLE orders (client_order_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, "
            "bar_time VARCHAR NOT NULL, symbol VARCHAR NOT NULL, quantity FLOAT NOT NULL, "
            "status VARCHAR NOT NULL, filled_quantity FLOAT NOT NULL, average_price FLOAT, "
            "created_at VARCHAR NOT NULL, updated_at VARCHAR NOT NULL)"))
        conn.execute(sa.text(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR "
            "NOT NULL, applied_at VARCHAR NOT NULL)"))
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1, 'initial', 'then')"))
        conn.execute(sa.text(
            "INSERT INTO orders VALUES ('a', 'r1', '2020-01-02', 'SPY', 1.0, 'filled', 1.0, 10.0, "
            "'then', 'then')"))
    engine.dispose()
    store = Store(url)
    assert store.schema_version() == SCHEMA_VERSION
    order = store.orders("r1")[0]
    assert order["client_order_id"] == "a" and order["stop_price"] is None
