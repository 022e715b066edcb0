"""The live state store: SQLite (or any SQLAlchemy URL) through SQLAlchemy 2 Core.

Live trading is crash-only (DESIGN.md section 6): everything the runner needs to continue lives
here, written in small transactions in an order that makes every step idempotent (see
``live.runner``). Tables: runs, bars, decisions, orders, fills, positions, equity snapshots,
risk state, events, errors, the simulated broker's own side, and ``schema_version`` (versioned
migrations applied in order at open).

Default location ``FW_HOME/state/fw.sqlite``; ``--db URL`` or the ``FW_DB_URL`` environment
variable choose another database.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from framework.errors import ConfigError, StorageError
from framework.paths import home_subdir
from framework.risk._layout import G_BREAKER
from framework.risk.state import BREAKER_STATES
from framework.types import FIELDS, Bars, SymbolInfo

SCHEMA_VERSION = 4
_META = sa.MetaData()

RUNS = sa.Table(
    "runs", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("strategy", sa.String, nullable=False),
    sa.Column("symbols", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("kill_switch", sa.String, nullable=False),
    sa.Column("stepper", sa.Text),
    sa.Column("last_target", sa.Text),
    sa.Column("last_bar", sa.String),
    sa.Column("created_at", sa.String, nullable=False),
    sa.Column("updated_at", sa.String, nullable=False),
)
BARS = sa.Table(
    "bars", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("time", sa.String, primary_key=True),
    sa.Column("symbol", sa.String, primary_key=True),
    *(sa.Column(name, sa.Float) for name in FIELDS),
)
DECISIONS = sa.Table(
    "decisions", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("bar_time", sa.String, primary_key=True),
    sa.Column("symbol", sa.String, primary_key=True),
    sa.Column("target", sa.Float),
    sa.Column("pending", sa.Float),
    sa.Column("order_quantity", sa.Float),
    sa.Column("features", sa.Text),
)
ORDERS = sa.Table(
    "orders", _META,
    sa.Column("client_order_id", sa.String, primary_key=True),
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("bar_time", sa.String, nullable=False),
    sa.Column("symbol", sa.String, nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("filled_quantity", sa.Float, nullable=False, default=0.0),
    sa.Column("average_price", sa.Float),
    sa.Column("stop_price", sa.Float),  # set: a resting protective stop (schema v2)
    sa.Column("created_at", sa.String, nullable=False),
    sa.Column("updated_at", sa.String, nullable=False),
    # the runner asks for a run's open orders several times a bar (schema v4)
    sa.Index("ix_orders_run_status", "run_id", "status"),
)
FILLS = sa.Table(
    "fills", _META,
    sa.Column("execution_id", sa.String, primary_key=True),
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("client_order_id", sa.String, nullable=False),
    sa.Column("symbol", sa.String, nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("commission", sa.Float, nullable=False),
    sa.Column("slippage", sa.Float, nullable=False),
    sa.Column("impact", sa.Float, nullable=False),
    sa.Column("time", sa.String, nullable=False),
)
POSITIONS = sa.Table(
    "positions", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("symbol", sa.String, primary_key=True),
    sa.Column("quantity", sa.Float, nullable=False),
)
EQUITY = sa.Table(
    "equity", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("time", sa.String, primary_key=True),
    sa.Column("cash", sa.Float, nullable=False),
    sa.Column("equity", sa.Float, nullable=False),
)
RISK = sa.Table(
    "risk_state", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("breaker", sa.String, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String, nullable=False),
)
EVENTS = sa.Table(
    "events", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("time", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)
ERRORS = sa.Table(
    "errors", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("time", sa.String, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("detail", sa.Text),
)
BROKER_STATE = sa.Table(
    "broker_state", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("broker", sa.String, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
PREDICTIONS = sa.Table(
    "predictions", _META,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("bar_time", sa.String, primary_key=True),
    sa.Column("symbol", sa.String, primary_key=True),
    sa.Column("model_version", sa.String, primary_key=True),
    sa.Column("role", sa.String, nullable=False),  # "live" (traded) or "shadow" (challenger)
    sa.Column("probability", sa.Float),
)
UPTIME = sa.Table(
    "uptime", _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String, nullable=False, index=True),
    sa.Column("started_at", sa.String, nullable=False),
    sa.Column("last_beat_at", sa.String, nullable=False),
    sa.Column("ended_at", sa.String),  # None: open (or its process died after last_beat_at)
    sa.Column("reason", sa.String),
)
VERSIONS = sa.Table(
    "schema_version", _META,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("description", sa.String, nullable=False),
    sa.Column("applied_at", sa.String, nullable=False),
)


def _v1(conn: sa.Connection) -> None:
    _META.create_all(conn)


def _v2(conn: sa.Connection) -> None:
    # a v1 database lacks the column; one created by this version's _v1 already has it
    if "stop_price" not in {c["name"] for c in sa.inspect(conn).get_columns("orders")}:
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN stop_price FLOAT"))


def _v3(conn: sa.Connection) -> None:
    PREDICTIONS.create(conn, checkfirst=True)  # _v1 of this version already created it


def _v4(conn: sa.Connection) -> None:
    UPTIME.create(conn, checkfirst=True)
    next(i for i in ORDERS.indexes if i.name == "ix_orders_run_status").create(conn, checkfirst=True)


# version -> (description, step); append new versions, never edit applied ones
MIGRATIONS: tuple[tuple[int, str, Callable[[sa.Connection], None]], ...] = (
    (1, "initial schema: runs, bars, decisions, orders, fills, positions, equity, risk, "
        "events, errors, broker_state", _v1),
    (2, "orders.stop_price: resting protective stop orders", _v2),
    (3, "predictions: live and shadow model probabilities per bar and symbol", _v3),
    (4, "uptime: health spans of the runner process (uptime accounting); index of orders "
        "by run and status", _v4),
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def default_url() -> str:
    """``FW_DB_URL`` when set, else SQLite at ``FW_HOME/state/fw.sqlite``."""
    url = os.environ.get("FW_DB_URL", "").strip()
    return url or f"sqlite:///{home_subdir('state') / 'fw.sqlite'}"


class Store:
    """The live database. Every public method is one transaction.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL (default :func:`default_url`).
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        # called as listener(kind, record) after a committed write ("event", "error", "fill",
        # "bar", "order"): logs mirror the store without the runner knowing about them
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        try:
            self.engine = sa.create_engine(self.url)
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "handle_error", self._storage_failure)
            self.migrate()
        except (sa.exc.ArgumentError, sa.exc.OperationalError) as exc:
            raise ConfigError(
                f"cannot open the state database {self.url!r}: {exc}. Expected an SQLAlchemy URL "
                "such as sqlite:///path/fw.sqlite (--db or FW_DB_URL)."
            ) from exc

    # -- schema -----------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply the missing migrations in order; returns the schema version."""
        with self.engine.begin() as conn:
            VERSIONS.create(conn, checkfirst=True)
            done = set(conn.execute(sa.select(VERSIONS.c.version)).scalars())
            for version, description, step in MIGRATIONS:
                if version in done:
                    continue
                step(conn)
                conn.execute(sa.insert(VERSIONS).values(
                    version=version, description=description, applied_at=now_iso()))
        return self.schema_version()

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.max(VERSIONS.c.version))).scalar()
        if found is not None and found > SCHEMA_VERSION:
            raise ConfigError(
                f"state database {self.url} has schema version {found}; this fw knows up to "
                f"{SCHEMA_VERSION}. Upgrade fw or use another --db."
            )
        return int(found or 0)

    def close(self) -> None:
        self.engine.dispose()

    # -- storage health ---------------------------------------------------------------------
    def _storage_failure(self, context) -> None:
        """SQLAlchemy ``handle_error`` hook: a full, read-only or failing disk becomes a
        :class:`StorageError` (trading must stop) instead of a generic database error."""
        why = storage_failure(context.original_exception)
        if why is not None:
            raise StorageError(
                f"the state database {self.url} cannot be written: {why} "
                f"({context.original_exception}). Trading stopped; nothing unstored was sent. "
                "Free disk space (or make the database writable), then restart fw paper: it "
                "reconciles with the broker and continues."
            ) from context.original_exception

    def database_path(self) -> Path | None:
        """The SQLite file behind the store, or None (in-memory or another database)."""
        name = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not name or name == ":memory:" or name.startswith("file:"):
            return None
        return Path(name)

    def check_space(self, min_free_bytes: int) -> None:
        """Raise :class:`StorageError` when the SQLite file's disk has less free space than
        ``min_free_bytes``: halting before the disk is full keeps every write whole."""
        path = self.database_path()
        if path is None or min_free_bytes <= 0:
            return
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError as exc:
            raise StorageError(f"cannot read the free space of {path.parent}: {exc}") from exc
        if free < min_free_bytes:
            raise StorageError(
                f"only {free / 2**20:.0f} MiB free on the disk of {path} (fw paper needs "
                f"{min_free_bytes / 2**20:.0f} MiB, --min-free-mb). Trading stopped before the "
                "disk fills. Free space (old backups in FW_HOME/backups, old logs), then restart fw paper."
            )

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, run_id: str, strategy: str, symbols: Sequence[str], config: Mapping) -> None:
        stamp = now_iso()
        with self.engine.begin() as conn:
            conn.execute(sa.insert(RUNS).values(
                run_id=run_id, strategy=strategy, symbols=json.dumps(list(symbols)),
                config=json.dumps(dict(config), default=str), status="running",
                kill_switch="ACTIVE", created_at=stamp, updated_at=stamp))

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["symbols"] = json.loads(out["symbols"])
        out["config"] = json.loads(out["config"])
        for key in ("stepper", "last_target"):
            out[key] = json.loads(out[key]) if out[key] else None
        return out

    def kill_switch(self, run_id: str) -> str | None:
        """The run's kill switch alone (the runner reads it several times a bar)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(RUNS.c.kill_switch).where(
                RUNS.c.run_id == run_id)).scalar()

    def runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(RUNS.c.run_id).order_by(RUNS.c.created_at)).scalars()
            ids = list(rows)
        return [self.run(r) for r in ids]

    def update_run(self, run_id: str, **values: Any) -> None:
        for key in ("stepper", "last_target"):
            if key in values and values[key] is not None:
                values[key] = json.dumps(values[key])
        with self.engine.begin() as conn:
            conn.execute(sa.update(RUNS).where(RUNS.c.run_id == run_id).values(
                updated_at=now_iso(), **values))

    # -- bars -------------------------------------------------------------------------------
    def save_bar(self, run_id: str, time: str, symbols: Sequence[str], row: Mapping[str, np.ndarray]) -> None:
        """Store one closed bar (a bar already stored is left as is)."""
        with self.engine.begin() as conn:
            have = conn.execute(sa.select(sa.func.count()).select_from(BARS).where(
                BARS.c.run_id == run_id, BARS.c.time == time)).scalar()
            if have:
                return
            conn.execute(sa.insert(BARS), [
                {"run_id": run_id, "time": time, "symbol": s,
                 **{name: _opt(row[name][j]) for name in FIELDS}}
                for j, s in enumerate(symbols)
            ])
        self._notify("bar", {"run_id": run_id, "time": time, "symbols": list(symbols)})

    def load_bars(self, run_id: str, symbols: Sequence[str]) -> Bars:
        """The run's stored bars, aligned like ``Bars.from_frames``."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(BARS).where(BARS.c.run_id == run_id)).mappings().all()
        frame = pd.DataFrame([dict(r) for r in rows], columns=["time", "symbol", *FIELDS])
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
        frames = {}
        for s in symbols:
            part = frame[frame["symbol"] == s].set_index("time").sort_index()
            frames[s] = part[list(FIELDS)].astype(np.float64)
        info = {s: SymbolInfo(source=f"live store run {run_id}") for s in symbols}
        if frame.empty:
            empty = np.empty((0, len(symbols)))
            return Bars(index=pd.DatetimeIndex([], tz="UTC"), symbols=tuple(symbols),
                        info=info, **{name: empty.copy() for name in FIELDS})
        return Bars.from_frames(frames, info)

    # -- orders and fills -------------------------------------------------------------------
    def add_orders(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Store intended orders (status given per row); a client id already stored is kept."""
        stamp = now_iso()
        with self.engine.begin() as conn:
            for row in rows:
                have = conn.execute(sa.select(ORDERS.c.client_order_id).where(
                    ORDERS.c.client_order_id == row["client_order_id"])).first()
                if have is None:
                    conn.execute(sa.insert(ORDERS).values(
                        run_id=run_id, filled_quantity=0.0, created_at=stamp, updated_at=stamp,
                        **row))

    def orders(self, run_id: str, statuses: Sequence[str] | None = None) -> list[dict[str, Any]]:
        query = sa.select(ORDERS).where(ORDERS.c.run_id == run_id)
        if statuses is not None:
            query = query.where(ORDERS.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(ORDERS.c.bar_time, ORDERS.c.symbol,
                                               ORDERS.c.client_order_id)).mappings()
            return [dict(r) for r in rows]

    def update_order(self, client_order_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(ORDERS).where(
                ORDERS.c.client_order_id == client_order_id).values(updated_at=now_iso(), **values))
        self._notify("order", {"client_order_id": client_order_id, **values})

    def has_fill(self, execution_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(FILLS.c.execution_id).where(
                FILLS.c.execution_id == execution_id)).first() is not None

    def record_fill(self, run_id: str, fill: Mapping[str, Any], position: float,
                    risk_state: Mapping | None) -> bool:
        """Store a fill, the symbol's new position and the risk state after it, atomically;
        False (nothing written) when the execution id is already stored."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(FILLS.c.execution_id).where(
                    FILLS.c.execution_id == fill["execution_id"])).first() is not None:
                return False
            conn.execute(sa.insert(FILLS).values(run_id=run_id, **fill))
            _upsert_position(conn, run_id, fill["symbol"], position)
            if risk_state is not None:
                _upsert_risk(conn, run_id, risk_state)
        self._notify("fill", {"run_id": run_id, **fill})
        return True

    def fills(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(FILLS).where(FILLS.c.run_id == run_id).order_by(
                FILLS.c.time, FILLS.c.execution_id)).mappings()
            return [dict(r) for r in rows]

    def positions(self, run_id: str) -> dict[str, float]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(POSITIONS).where(POSITIONS.c.run_id == run_id)).mappings()
            return {r["symbol"]: float(r["quantity"]) for r in rows if r["quantity"] != 0.0}

    def set_position(self, run_id: str, symbol: str, quantity: float) -> None:
        with self.engine.begin() as conn:
            _upsert_position(conn, run_id, symbol, quantity)

    # -- the end of a bar -------------------------------------------------------------------
    def commit_bar(self, run_id: str, bar_time: str, decisions: Sequence[Mapping[str, Any]],
                   run_values: Mapping[str, Any], equity: tuple[float, float] | None,
                   risk_state: Mapping | None) -> None:
        """Decisions, stepper snapshot, last target, equity and risk state of one processed bar:
        one transaction, so a bar is either fully processed or not at all. ``equity`` None: no
        snapshot (warm-up history from before the run traded)."""
        values = dict(run_values)
        for key in ("stepper", "last_target"):
            if key in values:
                values[key] = json.dumps(values[key])
        with self.engine.begin() as conn:
            conn.execute(sa.delete(DECISIONS).where(
                DECISIONS.c.run_id == run_id, DECISIONS.c.bar_time == bar_time))
            if decisions:
                conn.execute(sa.insert(DECISIONS), [
                    {"run_id": run_id, "bar_time": bar_time, **d} for d in decisions])
            conn.execute(sa.delete(EQUITY).where(EQUITY.c.run_id == run_id, EQUITY.c.time == bar_time))
            if equity is not None:
                conn.execute(sa.insert(EQUITY).values(
                    run_id=run_id, time=bar_time, cash=equity[0], equity=equity[1]))
            if risk_state is not None:
                _upsert_risk(conn, run_id, risk_state)
            conn.execute(sa.update(RUNS).where(RUNS.c.run_id == run_id).values(
                last_bar=bar_time, updated_at=now_iso(), **values))

    def decisions(self, run_id: str) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(DECISIONS).where(DECISIONS.c.run_id == run_id).order_by(
                DECISIONS.c.bar_time, DECISIONS.c.symbol)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows])

    def equity(self, run_id: str) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(EQUITY).where(EQUITY.c.run_id == run_id).order_by(
                EQUITY.c.time)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=["run_id", "time", "cash", "equity"])

    def save_predictions(self, run_id: str, bar_time: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Model probabilities of one bar (``symbol``, ``model_version``, ``role``,
        ``probability``); replaces what an earlier attempt at the same bar stored."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(PREDICTIONS).where(
                PREDICTIONS.c.run_id == run_id, PREDICTIONS.c.bar_time == bar_time))
            if rows:
                conn.execute(sa.insert(PREDICTIONS), [
                    {"run_id": run_id, "bar_time": bar_time, **r} for r in rows])

    def predictions(self, run_id: str) -> pd.DataFrame:
        """Every stored model probability of the run, in time order."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(PREDICTIONS).where(PREDICTIONS.c.run_id == run_id).order_by(
                PREDICTIONS.c.bar_time, PREDICTIONS.c.symbol)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in PREDICTIONS.columns])

    def risk_state(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(RISK.c.state).where(RISK.c.run_id == run_id)).first()
        return None if row is None else json.loads(row[0])

    def save_risk_state(self, run_id: str, state: Mapping) -> None:
        with self.engine.begin() as conn:
            _upsert_risk(conn, run_id, state)

    # -- events, errors, the broker's side --------------------------------------------------
    def event(self, run_id: str, kind: str, message: str) -> None:
        record = {"run_id": run_id, "time": now_iso(), "kind": kind, "message": message}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(EVENTS).values(**record))
        self._notify("event", record)

    def events(self, run_id: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._latest(EVENTS, run_id, limit)

    def last_event(self, run_id: str, kind: str) -> dict[str, Any] | None:
        """The newest event of ``kind``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(EVENTS).where(
                (EVENTS.c.run_id == run_id) & (EVENTS.c.kind == kind)).order_by(
                EVENTS.c.id.desc()).limit(1)).mappings().first()
        return dict(row) if row is not None else None

    def error(self, run_id: str, message: str, detail: str = "") -> None:
        record = {"run_id": run_id, "time": now_iso(), "message": message, "detail": detail}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(ERRORS).values(**record))
        self._notify("error", record)

    def _notify(self, kind: str, record: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(kind, record)

    def errors(self, run_id: str, limit: int = 5) -> list[dict[str, Any]]:
        return self._latest(ERRORS, run_id, limit)

    def _latest(self, table: sa.Table, run_id: str, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.run_id == run_id).order_by(
                table.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in reversed(rows)]

    # -- uptime (health spans, see live.uptime) ---------------------------------------------
    def open_span(self, run_id: str, at: str) -> int:
        """Start a health span at ``at`` (ISO UTC); returns its id."""
        with self.engine.begin() as conn:
            result = conn.execute(sa.insert(UPTIME).values(
                run_id=run_id, started_at=at, last_beat_at=at))
        return int(result.inserted_primary_key[0])

    def extend_span(self, span_id: int, at: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(UPTIME).where(UPTIME.c.id == span_id).values(last_beat_at=at))

    def close_span(self, span_id: int, at: str, reason: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.update(UPTIME).where(UPTIME.c.id == span_id).values(
                last_beat_at=at, ended_at=at, reason=reason))

    def spans(self, run_id: str) -> list[dict[str, Any]]:
        """Every health span of a run, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(UPTIME).where(UPTIME.c.run_id == run_id)
                                .order_by(UPTIME.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def save_broker_state(self, run_id: str, broker: str, data: Mapping) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(BROKER_STATE).where(BROKER_STATE.c.run_id == run_id))
            conn.execute(sa.insert(BROKER_STATE).values(
                run_id=run_id, broker=broker, data=json.dumps(dict(data))))

    def broker_state(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(BROKER_STATE.c.data).where(
                BROKER_STATE.c.run_id == run_id)).first()
        return None if row is None else json.loads(row[0])


# SQLite primary result codes of a disk that cannot take writes
_SQLITE_STORAGE = {8: "the database is read-only", 10: "disk I/O error", 13: "the disk is full"}
_STORAGE_WORDS = (("no space left", "the disk is full"), ("disk is full", "the disk is full"),
                  ("read-only", "the database is read-only"),
                  ("readonly", "the database is read-only"), ("disk i/o error", "disk I/O error"))


def storage_failure(exc: BaseException | None) -> str | None:
    """Why ``exc`` means the disk cannot take writes, or None for other database errors."""
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) is not None:
        return _SQLITE_STORAGE.get(exc.sqlite_errorcode & 0xFF)
    text = str(exc).lower()
    return next((why for words, why in _STORAGE_WORDS if words in text), None)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL + NORMAL: every commit survives a crash of the process (the failure live trading
    # plans for) at a fraction of the cost of a full fsync per transaction
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _opt(value: float) -> float | None:
    value = float(value)
    return None if value != value else value


def _upsert_position(conn: sa.Connection, run_id: str, symbol: str, quantity: float) -> None:
    conn.execute(sa.delete(POSITIONS).where(POSITIONS.c.run_id == run_id, POSITIONS.c.symbol == symbol))
    conn.execute(sa.insert(POSITIONS).values(run_id=run_id, symbol=symbol, quantity=float(quantity)))


def _upsert_risk(conn: sa.Connection, run_id: str, state: Mapping) -> None:
    breaker = BREAKER_STATES[int(state["portfolio"][G_BREAKER] or 0)]
    conn.execute(sa.delete(RISK).where(RISK.c.run_id == run_id))
    conn.execute(sa.insert(RISK).values(
        run_id=run_id, breaker=breaker, state=json.dumps(dict(state)), updated_at=now_iso()))
