"""Paper-vs-backtest parity of one stored run (issue 8, "Parity report"; DESIGN.md section 2).

:func:`compare_run` replays a run's recorded bars through :func:`framework.backtest.run_backtest`
with the run's own parameters (or walk-forward schedule), risk rules and cost model, and compares
three things:

1. **decisions**: the stored targets against the strategy's vectorized targets over the same
   bars. The timing contract makes this a bit-for-bit statement; any mismatch is a bug.
2. **fills**: live fills and backtest fills grouped by (fill bar, symbol, side) and matched on
   that key; per match the time, price (bps, positive = live got the worse price) and quantity
   (%) differences; the fills of either side without a partner get a guessed reason.
3. **costs**: the backtest's modelled costs against what the live broker recorded, per fill
   group and in total, in $ and bps of the traded value.

The computation lives here (``live`` reads the store); ``reports.parity_report`` renders a
:class:`ParityResult` and ``reports.parity_cli`` is the ``fw parity`` command.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from framework.backtest import BacktestSpec, run_backtest
from framework.costs import CostSpec
from framework.engine import EngineSpec, SimResult
from framework.errors import ConfigError, DataError, FwError
from framework.risk import RiskSpec
from framework.stepper import ScheduleEntry, Stepper, normalize_schedule
from framework.strategy import Params, Strategy, compute_target, make_params
from framework.types import Bars
from live.command import require_run
from live.state import Store

# orders whose status explains a backtest fill the live run does not have
_DEAD_ORDERS = ("rejected", "expired", "canceled", "lost")
# events after which a run stops trading until `fw resume`
_HALT_EVENTS = ("halt", "reconcile_mismatch", "order_lost", "stale_data", "clock_drift")
_NEAR_BARS = 5  # how far to look for a same-side fill on the other side before calling it lost
_FILL_KEY = ["bar", "symbol", "side"]

FILL_COLUMNS: tuple[str, ...] = (
    "bar", "bar_time", "symbol", "side", "status", "live_time", "backtest_time", "time_diff_s",
    "live_qty", "backtest_qty", "qty_diff_pct", "live_price", "backtest_price", "price_diff_bps",
    "live_fills", "backtest_fills", "client_order_ids", "live_cost", "backtest_cost",
    "live_value", "backtest_value", "reason",
)
COST_COLUMNS: tuple[str, ...] = (
    "bar_time", "symbol", "side", "status", "model_cost", "realized_cost", "cost_diff",
    "model_bps", "realized_bps",
)
DECISION_COLUMNS: tuple[str, ...] = ("bar_time", "symbol", "live", "backtest", "match")


@dataclass(frozen=True)
class ParitySpec:
    """How the replay is set up.

    Parameters
    ----------
    from_first_trade : bool
        The backtest trades only from the first bar the live run traded (its targets before are
        held at 0, flat, as the live account was): warm-up history and a run that started flat
        then cause no unmatched fills. False: the backtest trades every recorded bar, and those
        fills show up as backtest-only ("warm-up", "run started flat").
    """

    from_first_trade: bool = True


@dataclass(frozen=True)
class ParityThresholds:
    """When a parity result counts as divergent (:func:`exceeds`).

    Parameters
    ----------
    max_decision_mismatches : int
        Decisions allowed to differ (default 0: the timing contract promises none).
    max_mean_price_bps : float
        Largest allowed mean of ``|price difference|`` over matched fills, in bps (default 5).
    max_qty_diff_pct : float
        A matched fill whose ``|quantity difference|`` exceeds this many percent counts as
        off (default 2).
    max_qty_off_share : float
        Largest allowed share of matched fills that are off in quantity (default 0.10).
    max_unmatched : int
        Fill groups allowed without a partner, both sides together (default 0).
    """

    max_decision_mismatches: int = 0
    max_mean_price_bps: float = 5.0
    max_qty_diff_pct: float = 2.0
    max_qty_off_share: float = 0.10
    max_unmatched: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"parity threshold {f.name} = {value!r}; expected a finite number >= 0 "
                    f"(default {f.default!r})."
                )

    def with_overrides(self, overrides: Mapping[str, Any]) -> ParityThresholds:
        """A copy with some thresholds replaced (None values are ignored)."""
        names = [f.name for f in fields(self)]
        for name in overrides:
            if name not in names:
                from framework.errors import unknown_name_message

                raise ConfigError(unknown_name_message("parity threshold", str(name), names))
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True, eq=False)
class ParityResult:
    """The comparison of one run with its backtest replay.

    Attributes
    ----------
    run_id, strategy, broker : str
    decisions : DataFrame
        One row per stored decision (bar and symbol): ``bar_time, symbol, live, backtest,
        match`` (NaN equals NaN; otherwise bit for bit).
    fills : DataFrame
        One row per fill group (fill bar, symbol, side) of either side, columns
        :data:`FILL_COLUMNS`; ``status`` is ``matched``, ``live_only`` or ``backtest_only``;
        ``price_diff_bps`` is positive when the live price was worse for the trader;
        ``time_diff_s`` is the first live fill's time minus the backtest's fill stamp (the fill
        bar's close label: 0 for the sim broker, negative for a broker filling at the open).
    costs : DataFrame
        Per fill group (columns :data:`COST_COLUMNS`): the backtest's modelled costs and the
        live broker's recorded ones, in $ and bps of each side's traded value.
    equity : DataFrame
        Indexed by bar close time (UTC): ``live`` (the store's snapshots) and ``backtest``.
    summary : dict
        Context (run, cost model, notes) and the headline numbers of :func:`divergence`.
    """

    run_id: str
    strategy: str
    broker: str
    decisions: pd.DataFrame
    fills: pd.DataFrame
    costs: pd.DataFrame
    equity: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def divergence(self) -> dict[str, Any]:
        """The headline numbers (see :func:`divergence`)."""
        return divergence(self)

    def exceeds(self, thresholds: ParityThresholds | None = None, **overrides: Any) -> list[str]:
        """The thresholds this result breaks (see :func:`exceeds`); keyword arguments override
        single fields of ``thresholds``, e.g. ``max_mean_price_bps=2``."""
        return exceeds(self, (thresholds or ParityThresholds()).with_overrides(overrides))


# -- the comparison ----------------------------------------------------------------------------
def compare_run(store: Store, run_id: str, strategy: Strategy,
                spec: ParitySpec | None = None) -> ParityResult:
    """Replay run ``run_id``'s recorded bars through the backtest and compare.

    Parameters
    ----------
    store : Store
    run_id : str
    strategy : Strategy
        The run's strategy (the caller resolves it from the run's stored name).
    spec : ParitySpec, optional

    Returns
    -------
    ParityResult

    Raises
    ------
    ConfigError
        Unknown run, a strategy other than the run's, or a stored config this fw cannot read.
    DataError
        Fewer than two stored bars.
    """
    spec = spec or ParitySpec()
    run = require_run(store, run_id)
    if run["strategy"] != strategy.name:
        raise ConfigError(
            f"run {run_id!r} traded strategy {run['strategy']!r}; got {strategy.name!r}. Pass "
            "the run's own strategy (resolve it from the run's stored name)."
        )
    config = run["config"]
    symbols = list(run["symbols"])
    bars = store.load_bars(run_id, symbols)
    if bars.n_bars < 2:
        raise DataError(
            f"run {run_id!r} has {bars.n_bars} stored bar(s); a parity replay needs at least 2. "
            "Let the run process more bars (fw paper) first."
        )
    schedule = _schedule(strategy, config, run_id)
    decided = _decision_targets(strategy, bars, schedule)
    decisions = _compare_decisions(store.decisions(run_id), bars, decided)

    curve = store.equity(run_id)
    first = _first_traded(bars, curve)
    broker = str(config.get("broker", "sim"))
    costs, cost_note = _cost_model(config, broker)
    risk = _risk(config)
    replay = decided.copy()
    if spec.from_first_trade:
        replay[:first] = 0.0  # the live account was flat before it first traded
    sim = _backtest(strategy, bars, schedule, replay, config, costs, risk)

    orders = pd.DataFrame(store.orders(run_id))
    raw = _live_fills(store.fills(run_id), bars)
    live = _group(raw, "live")
    modelled = _group(_backtest_fills(sim.fills), "backtest")
    context = _Context(bars=bars, first=first, dry_run=bool(config.get("dry_run", False)),
                       orders=orders, positions=sim.positions, decisions=decisions,
                       halted=_halted(store, run_id, run),
                       filled_ids=frozenset(raw["client_order_id"]))
    fills = _match(live, modelled, context)
    result = ParityResult(
        run_id=run_id, strategy=strategy.name, broker=broker, decisions=decisions, fills=fills,
        costs=_costs(fills), equity=_equity(curve, sim.equity, bars.index, first),
    )
    notes = [cost_note, *_notes(config, spec, bars, first, decisions, schedule)]
    summary = {
        "run_id": run_id, "strategy": strategy.name, "broker": broker, "symbols": symbols,
        "bars": int(bars.n_bars), "start": bars.index[0].isoformat(),
        "end": bars.index[-1].isoformat(),
        "first_traded_bar": bars.index[first].isoformat() if first < bars.n_bars else None,
        "cost_model": costs.to_dict(), "risk": risk.describe() if risk.enabled else ["off"],
        "notes": notes, **divergence(result),
    }
    return replace(result, summary=summary)


def _backtest(strategy: Strategy, bars: Bars, schedule: tuple[ScheduleEntry, ...],
              target: np.ndarray, config: Mapping[str, Any], costs: CostSpec,
              risk: RiskSpec) -> SimResult:
    """The engine run over the recorded bars with the live run's account, costs and risk."""
    engine = EngineSpec(initial_cash=float(config.get("initial_cash", 100_000.0)))
    backtest = run_backtest(strategy, bars, schedule[0].params,
                            BacktestSpec(engine=engine, costs=costs, risk=risk),
                            target=target, regime=_regimes(bars, risk))
    return backtest.sim


def compare_db(db: str | None, run_id: str,
               resolve_strategy: Callable[[str], Strategy]) -> ParityResult:
    """:func:`compare_run` on the database at URL ``db`` (None: the default one), with the
    strategy resolved from the run's stored name by ``resolve_strategy`` (what ``fw parity``
    calls)."""
    store = Store(db)
    try:
        run = require_run(store, run_id)
        return compare_run(store, run_id, resolve_strategy(run["strategy"]))
    finally:
        store.close()


# -- what the replay needs from the stored config ------------------------------------------------
def _schedule(strategy: Strategy, config: Mapping[str, Any], run_id: str) -> tuple[ScheduleEntry, ...]:
    """The run's parameters as schedule entries (one entry for fixed parameters; learned
    strategies: one per model the run traded)."""
    from framework.walkforward.schedule import load_schedule

    if config.get("schedule"):
        return normalize_schedule(load_schedule(config["schedule"], strategy.params_type))
    values = config.get("params")
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"run {run_id!r} records no parameters (config 'params' is {values!r}); expected the "
            "dict fw paper writes. Was the run created by another tool?"
        )
    params: Params = make_params(strategy.params_type, dict(values))
    if config.get("model_version"):
        # a learned strategy: the registry's models, with the run's scheduled retrains
        from framework.ml.registry import ModelRegistry
        from live.ml_retrain import model_schedule

        return normalize_schedule(model_schedule(strategy, config, params, ModelRegistry())[0])
    return normalize_schedule(params)


def _decision_targets(strategy: Strategy, bars: Bars,
                      schedule: tuple[ScheduleEntry, ...]) -> np.ndarray:
    """What the backtest decides on ``bars``: the vectorized targets per schedule entry, each
    used where it is in force. A ``step_nb`` state machine carries its state across entries,
    which piecewise vectorized runs cannot; then the framework's stepper (proven equal to the
    vectorized path, DESIGN.md section 4) computes them."""
    if len(schedule) == 1:
        return compute_target(strategy, bars, schedule[0].params, schedule[0].model)
    if getattr(strategy, "step_nb", None) is not None:
        return Stepper(strategy, schedule, bars.symbols).update_bars(bars)
    out = np.zeros((bars.n_bars, bars.n_assets))
    starts = [bars.index.searchsorted(e.effective_from, side="left") for e in schedule]
    starts[0] = 0  # the first entry applies before its date too (framework.stepper.entry_at)
    for k, entry in enumerate(schedule):
        stop = starts[k + 1] if k + 1 < len(schedule) else bars.n_bars
        if stop > starts[k]:
            out[starts[k]:stop] = compute_target(strategy, bars, entry.params, entry.model)[starts[k]:stop]
    return out


def _cost_model(config: Mapping[str, Any], broker: str) -> tuple[CostSpec, str]:
    if broker == "alpaca":
        return CostSpec.none(), (
            "cost model: none (Alpaca charges no commission and reports no slippage): the price "
            "differences are the live slippage against cost-free backtest prices")
    stored = config.get("costs")
    if not stored:
        return CostSpec(), "cost model: fw defaults (the run recorded none)"
    try:
        return CostSpec(**dict(stored)), "cost model: the run's own (as its broker charged)"
    except (TypeError, FwError) as exc:
        raise ConfigError(
            f"the run's recorded costs {dict(stored)!r} are not a valid CostSpec ({exc}); expected "
            "the fields of framework.costs.CostSpec (written by another fw version?)."
        ) from exc


def _risk(config: Mapping[str, Any]) -> RiskSpec:
    stored = config.get("risk")
    if not stored:
        return RiskSpec.off()
    try:
        return RiskSpec(**dict(stored))
    except (TypeError, FwError) as exc:
        raise ConfigError(
            f"the run's recorded risk rules cannot be read ({exc}); expected the fields of "
            "framework.risk.RiskSpec (written by another fw version?)."
        ) from exc


def _regimes(bars: Bars, risk: RiskSpec) -> np.ndarray | None:
    """The live runner's regime labels (first symbol) when the risk rules switch on them."""
    if not (risk.enabled and risk.regime_overrides):
        return None
    from framework.regime import regime_labels

    return regime_labels(bars.select([bars.symbols[0]]))[:, 0]


def _first_traded(bars: Bars, curve: pd.DataFrame) -> int:
    """Index of the first bar the live run traded: equity is recorded from it on (warm-up
    history has none); ``n_bars`` when it never traded."""
    if curve.empty:
        return bars.n_bars
    first = pd.Timestamp(curve["time"].iloc[0])
    return int(bars.index.searchsorted(first, side="left"))


def _halted(store: Store, run_id: str, run: Mapping[str, Any]) -> str | None:
    kinds = sorted({e["kind"] for e in store.events(run_id, limit=100_000)
                    if e["kind"] in _HALT_EVENTS})
    if kinds:
        return ", ".join(kinds)
    return None if run["kill_switch"] == "ACTIVE" else f"kill switch {run['kill_switch']}"


def _notes(config, spec, bars, first, decisions, schedule) -> list[str]:
    out = []
    buffer = float(config.get("size_buffer", 0.0) or 0.0)
    if buffer:
        out.append(f"live sized orders on {1 - buffer:.0%} of the target (size_buffer {buffer:g}): "
                   f"expect quantities about {buffer:.0%} below the backtest's")
    out.append("live orders are sized at the decision close, the backtest's at the fill open: "
               "quantities differ by about the overnight gap")
    if first >= bars.n_bars:
        out.append("the live run never traded (no equity snapshots)")
    elif first > 0 and spec.from_first_trade:
        out.append(f"the backtest is held flat for the {first} warm-up bar(s) before "
                   f"{bars.index[first].isoformat()}, as the live account was")
    if len(decisions) < bars.n_bars * bars.n_assets:
        out.append(f"{bars.n_bars * bars.n_assets - len(decisions)} stored bar/symbol(s) have no "
                   "stored decision (a session that ended between storing a bar and deciding it)")
    if len(schedule) > 1:
        out.append(f"parameters: a walk-forward schedule of {len(schedule)} entries")
    return out


# -- decisions ---------------------------------------------------------------------------------
def _compare_decisions(stored: pd.DataFrame, bars: Bars, expected: np.ndarray) -> pd.DataFrame:
    if stored.empty:
        return pd.DataFrame(columns=list(DECISION_COLUMNS))
    times = pd.to_datetime(stored["bar_time"], utc=True, format="ISO8601")
    rows = bars.index.get_indexer(pd.DatetimeIndex(times))
    cols = pd.Index(bars.symbols).get_indexer(stored["symbol"])
    known = (rows >= 0) & (cols >= 0)
    live = pd.to_numeric(stored["target"], errors="coerce").to_numpy(np.float64)
    backtest = np.full(len(stored), np.nan)
    backtest[known] = expected[rows[known], cols[known]]
    both_nan = np.isnan(live) & np.isnan(backtest)
    match = known & (both_nan | (live == backtest))
    return pd.DataFrame({
        "bar_time": pd.DatetimeIndex(times), "symbol": stored["symbol"].to_numpy(), "live": live,
        "backtest": backtest, "match": match,
    }, columns=list(DECISION_COLUMNS))


# -- fills -------------------------------------------------------------------------------------
def _live_fills(rows: list[dict[str, Any]], bars: Bars) -> pd.DataFrame:
    """The store's fills with the bar each happened in (the bar whose interval holds its time)."""
    frame = pd.DataFrame(rows, columns=["execution_id", "client_order_id", "symbol", "quantity",
                                        "price", "commission", "slippage", "impact", "time"])
    times = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    bar = np.minimum(bars.index.searchsorted(pd.DatetimeIndex(times), side="left"), bars.n_bars - 1)
    return pd.DataFrame({
        "bar": bar.astype(np.int64), "time": times.to_numpy(), "symbol": frame["symbol"].astype(str),
        "qty": frame["quantity"].astype(np.float64), "price": frame["price"].astype(np.float64),
        "cost": (frame["commission"] + frame["slippage"] + frame["impact"]).astype(np.float64),
        "client_order_id": frame["client_order_id"].astype(str),
    })


def _backtest_fills(fills: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "bar": fills["bar"].astype(np.int64), "time": fills["time"],
        "symbol": fills["symbol"].astype(str), "qty": fills["qty"].astype(np.float64),
        "price": fills["price"].astype(np.float64),
        "cost": (fills["commission"] + fills["slippage_cost"] + fills["impact_cost"]).astype(np.float64),
        "client_order_id": "",
    })


def _group(fills: pd.DataFrame, side_name: str) -> pd.DataFrame:
    """One row per (bar, symbol, side): total quantity, volume-weighted price, summed costs,
    the first fill's time and the number of fills (partial fills of one order in one bar are
    one decision's execution)."""
    columns = [*_FILL_KEY, f"{side_name}_time", f"{side_name}_qty", f"{side_name}_price",
               f"{side_name}_cost", f"{side_name}_value", f"{side_name}_fills", f"{side_name}_ids"]
    if fills.empty:
        # typed like a filled group, so the outer merge with the other side's keys works
        return pd.DataFrame(columns=columns).astype({"bar": np.int64, "symbol": str, "side": str})
    work = fills.assign(side=np.where(fills["qty"] > 0, "buy", "sell"),
                        value=(fills["qty"] * fills["price"]).abs())
    grouped = work.groupby(_FILL_KEY, sort=True, observed=True)
    out = pd.DataFrame({
        f"{side_name}_time": grouped["time"].min(),
        f"{side_name}_qty": grouped["qty"].sum(),
        f"{side_name}_value": grouped["value"].sum(),
        f"{side_name}_cost": grouped["cost"].sum(),
        f"{side_name}_fills": grouped["qty"].size(),
        f"{side_name}_ids": grouped["client_order_id"].agg(
            lambda ids: " ".join(sorted({i for i in ids if i}))),
    }).reset_index()
    out[f"{side_name}_price"] = out[f"{side_name}_value"] / out[f"{side_name}_qty"].abs()
    return out[columns]


@dataclass(frozen=True, eq=False)
class _Context:
    """What the reason guesses look at."""

    bars: Bars
    first: int
    dry_run: bool
    orders: pd.DataFrame
    positions: np.ndarray
    decisions: pd.DataFrame
    halted: str | None
    filled_ids: frozenset[str]


def _match(live: pd.DataFrame, modelled: pd.DataFrame, ctx: _Context) -> pd.DataFrame:
    merged = pd.merge(live, modelled, on=_FILL_KEY, how="outer", indicator=True)
    if merged.empty:
        return pd.DataFrame(columns=list(FILL_COLUMNS))
    merged = merged.sort_values(["bar", "symbol", "side"], kind="stable").reset_index(drop=True)
    merged["bar"] = merged["bar"].astype(np.int64)
    status = merged["_merge"].map({"both": "matched", "left_only": "live_only",
                                   "right_only": "backtest_only"}).astype(str)
    sign = np.where(merged["side"] == "buy", 1.0, -1.0)
    bt_time = pd.to_datetime(merged["backtest_time"], utc=True)
    live_time = pd.to_datetime(merged["live_time"], utc=True)
    out = pd.DataFrame({
        "bar": merged["bar"],
        "bar_time": ctx.bars.index[merged["bar"].to_numpy()],
        "symbol": merged["symbol"], "side": merged["side"], "status": status,
        "live_time": live_time, "backtest_time": bt_time,
        "time_diff_s": (live_time - bt_time).dt.total_seconds(),
        "live_qty": merged["live_qty"].astype(np.float64),
        "backtest_qty": merged["backtest_qty"].astype(np.float64),
        "qty_diff_pct": (merged["live_qty"].abs() / merged["backtest_qty"].abs() - 1.0) * 100.0,
        "live_price": merged["live_price"].astype(np.float64),
        "backtest_price": merged["backtest_price"].astype(np.float64),
        "price_diff_bps": sign * (merged["live_price"] / merged["backtest_price"] - 1.0) * 1e4,
        "live_fills": merged["live_fills"].fillna(0).astype(np.int64),
        "backtest_fills": merged["backtest_fills"].fillna(0).astype(np.int64),
        "client_order_ids": merged["live_ids"].fillna(""),
        "live_cost": merged["live_cost"].astype(np.float64),
        "backtest_cost": merged["backtest_cost"].astype(np.float64),
        "live_value": merged["live_value"].astype(np.float64),
        "backtest_value": merged["backtest_value"].astype(np.float64),
    })
    out["reason"] = [_reason(row, out, ctx) for row in out.itertuples(index=False)]
    return out[list(FILL_COLUMNS)]


def _reason(row, fills: pd.DataFrame, ctx: _Context) -> str:
    if row.status == "matched":
        return ""
    if row.status == "backtest_only":
        return _backtest_only_reason(row, fills, ctx)
    return _live_only_reason(row, fills, ctx)


def _backtest_only_reason(row, fills: pd.DataFrame, ctx: _Context) -> str:
    decided = row.bar - 1  # the engine fills target[i] at the open of bar i + 1
    when = ctx.bars.index[max(decided, 0)].isoformat()
    if ctx.dry_run:
        return "dry run: the live run sent no orders"
    if decided < ctx.first:
        return f"warm-up: the live run did not trade on bar {when} (history only)"
    placed = _orders_at(ctx, when, row.symbol)
    market = placed[placed["stop_price"].isna()] if not placed.empty else placed
    for order in market.to_dict("records"):
        if order["client_order_id"] in ctx.filled_ids:
            continue  # it filled (the leverage rule may have canceled its rest): see below
        done = float(order["filled_quantity"] or 0.0)
        if order["status"] in _DEAD_ORDERS and done == 0.0:
            return f"live order {order['client_order_id']} was {order['status']} before any fill"
        return (f"live order {order['client_order_id']} ({order['status']}, {done:g} shares "
                "filled per the broker) has no recorded fill")
    near = _nearest(fills, row, "live_only")
    if near:
        return near
    if _decision_differs(ctx, when, row.symbol):
        return f"the decisions differ at {when}"
    sign = 1.0 if row.side == "buy" else -1.0
    stops = placed[placed["stop_price"].notna()] if not placed.empty else placed
    for order in stops.to_dict("records"):
        if order["quantity"] * sign > 0 and order["client_order_id"] not in ctx.filled_ids:
            return (f"the live stop {order['client_order_id']} did not trigger where the "
                    "backtest's did")
    if ctx.halted:
        return f"the live run stopped trading ({ctx.halted}); no live order at {when}"
    return (f"no live order at the decision bar {when}: the live position or risk state differed "
            "(an earlier divergence)")


def _live_only_reason(row, fills: pd.DataFrame, ctx: _Context) -> str:
    ids = row.client_order_ids.split()
    if any(i.startswith("flatten:") for i in ids):
        return "closing order of `fw halt --flatten` (the backtest has none)"
    j = ctx.bars.symbols.index(row.symbol) if row.symbol in ctx.bars.symbols else -1
    first_live = fills[(fills["symbol"] == row.symbol) & fills["live_qty"].notna()]["bar"].min()
    held = ctx.positions[row.bar - 1, j] if j >= 0 and row.bar > 0 else 0.0
    sign = 1.0 if row.side == "buy" else -1.0
    if row.bar == first_live and held * sign > 0:
        return ("run started flat: the backtest already held this position from bars the live "
                "run did not trade")
    stops = _orders_by_id(ctx, ids)
    if not stops.empty and stops["stop_price"].notna().any():
        return "a live stop order triggered where the backtest's stop did not"
    near = _nearest(fills, row, "backtest_only")
    if near:
        return near
    decided = _order_bars(ctx, ids)
    for when in decided:
        if _decision_differs(ctx, when, row.symbol):
            return f"the decisions differ at {when}"
    return ("no backtest fill on this bar: the backtest's position or risk state differed "
            "(an earlier divergence)")


def _orders_at(ctx: _Context, when: str, symbol: str) -> pd.DataFrame:
    if ctx.orders.empty:
        return ctx.orders
    return ctx.orders[(ctx.orders["bar_time"] == when) & (ctx.orders["symbol"] == symbol)]


def _orders_by_id(ctx: _Context, ids: list[str]) -> pd.DataFrame:
    if ctx.orders.empty or not ids:
        return pd.DataFrame(columns=["client_order_id", "bar_time", "stop_price"])
    return ctx.orders[ctx.orders["client_order_id"].isin(ids)]


def _order_bars(ctx: _Context, ids: list[str]) -> list[str]:
    return sorted(set(_orders_by_id(ctx, ids)["bar_time"]))


def _nearest(fills: pd.DataFrame, row, other: str) -> str:
    """A same-side unmatched fill group of the other side within a few bars: a timing shift."""
    near = fills[(fills["status"] == other) & (fills["symbol"] == row.symbol)
                 & (fills["side"] == row.side) & ((fills["bar"] - row.bar).abs() <= _NEAR_BARS)]
    if near.empty:
        return ""
    k = int(near.loc[(near["bar"] - row.bar).abs().idxmin(), "bar"] - row.bar)
    who = "live run" if other == "live_only" else "backtest"
    return f"timing: the {who} filled this side {abs(k)} bar(s) {'later' if k > 0 else 'earlier'}"


def _decision_differs(ctx: _Context, when: str, symbol: str) -> bool:
    if ctx.decisions.empty:
        return False
    stamp = pd.Timestamp(when)
    hit = ctx.decisions[(ctx.decisions["bar_time"] == stamp) & (ctx.decisions["symbol"] == symbol)]
    return bool(len(hit)) and not bool(hit["match"].all())


# -- costs and equity ---------------------------------------------------------------------------
def _costs(fills: pd.DataFrame) -> pd.DataFrame:
    if fills.empty:
        return pd.DataFrame(columns=list(COST_COLUMNS))
    model, realized = fills["backtest_cost"], fills["live_cost"]
    return pd.DataFrame({
        "bar_time": fills["bar_time"], "symbol": fills["symbol"], "side": fills["side"],
        "status": fills["status"], "model_cost": model, "realized_cost": realized,
        "cost_diff": realized - model,
        "model_bps": model / fills["backtest_value"] * 1e4,
        "realized_bps": realized / fills["live_value"] * 1e4,
    }, columns=list(COST_COLUMNS))


def _equity(curve: pd.DataFrame, backtest: np.ndarray, index: pd.DatetimeIndex,
            first: int) -> pd.DataFrame:
    live = pd.Series(curve["equity"].to_numpy(np.float64),
                     index=pd.DatetimeIndex(pd.to_datetime(curve["time"], utc=True, format="ISO8601")),
                     dtype=np.float64)
    model = pd.Series(np.asarray(backtest, np.float64), index=index)
    frame = pd.DataFrame({"live": live.reindex(index), "backtest": model})
    frame.index.name = "time"
    return frame.iloc[min(first, max(len(index) - 1, 0)):]


# -- headline numbers and thresholds ------------------------------------------------------------
def divergence(result: ParityResult) -> dict[str, Any]:
    """Headline numbers of a parity result (plain floats and ints; NaN when not defined).

    Keys: ``decisions``, ``decision_mismatches``, ``live_fills``, ``backtest_fills`` (fill
    groups), ``matched``, ``live_only``, ``backtest_only``, ``unmatched``,
    ``mean_abs_price_bps``, ``max_abs_price_bps``, ``mean_abs_qty_pct``, ``max_abs_qty_pct``,
    ``mean_abs_time_s``, ``model_cost``, ``realized_cost``, ``model_cost_bps``,
    ``realized_cost_bps``, ``live_final_equity``, ``backtest_final_equity``,
    ``equity_diff_pct``.
    """
    fills, decisions = result.fills, result.decisions
    status = fills["status"] if not fills.empty else pd.Series([], dtype=str)
    matched = fills[status == "matched"] if not fills.empty else fills
    price = matched["price_diff_bps"].abs() if not matched.empty else pd.Series([], dtype=float)
    qty = matched["qty_diff_pct"].abs() if not matched.empty else pd.Series([], dtype=float)
    times = matched["time_diff_s"].abs() if not matched.empty else pd.Series([], dtype=float)
    model = float(result.costs["model_cost"].sum()) if not result.costs.empty else 0.0
    realized = float(result.costs["realized_cost"].sum()) if not result.costs.empty else 0.0
    model_value = float(fills["backtest_value"].sum()) if not fills.empty else 0.0
    live_value = float(fills["live_value"].sum()) if not fills.empty else 0.0
    both = result.equity.dropna()
    live_end = float(both["live"].iloc[-1]) if len(both) else math.nan
    model_end = float(both["backtest"].iloc[-1]) if len(both) else math.nan
    return {
        "decisions": int(len(decisions)),
        "decision_mismatches": int((~decisions["match"].astype(bool)).sum()) if len(decisions) else 0,
        "live_fills": int(fills["live_qty"].notna().sum()) if not fills.empty else 0,
        "backtest_fills": int(fills["backtest_qty"].notna().sum()) if not fills.empty else 0,
        "matched": int(len(matched)),
        "live_only": int((status == "live_only").sum()),
        "backtest_only": int((status == "backtest_only").sum()),
        "unmatched": int((status != "matched").sum()),
        "mean_abs_price_bps": _mean(price), "max_abs_price_bps": _max(price),
        "mean_abs_qty_pct": _mean(qty), "max_abs_qty_pct": _max(qty),
        "mean_abs_time_s": _mean(times),
        "model_cost": model, "realized_cost": realized,
        "model_cost_bps": model / model_value * 1e4 if model_value else math.nan,
        "realized_cost_bps": realized / live_value * 1e4 if live_value else math.nan,
        "live_final_equity": live_end, "backtest_final_equity": model_end,
        "equity_diff_pct": (live_end / model_end - 1.0) * 100.0 if model_end else math.nan,
    }


def exceeds(result: ParityResult, thresholds: ParityThresholds | None = None) -> list[str]:
    """The thresholds ``result`` breaks, one message each (empty: within all of them).

    Parameters
    ----------
    result : ParityResult
    thresholds : ParityThresholds, optional
        Defaults: any decision mismatch; mean ``|price diff|`` > 5 bps; ``|qty diff|`` > 2% on
        more than 10% of the matched fills; any unmatched fill.
    """
    t = thresholds or ParityThresholds()
    head = divergence(result)
    out = []
    if head["decision_mismatches"] > t.max_decision_mismatches:
        first = result.decisions[~result.decisions["match"].astype(bool)].iloc[0]
        out.append(f"decisions: {head['decision_mismatches']} mismatch(es) (allowed "
                   f"{t.max_decision_mismatches}); first at {pd.Timestamp(first['bar_time']).isoformat()} "
                   f"{first['symbol']}: live {first['live']!r} vs backtest {first['backtest']!r}")
    if _finite(head["mean_abs_price_bps"]) and head["mean_abs_price_bps"] > t.max_mean_price_bps:
        out.append(f"price: mean |difference| {head['mean_abs_price_bps']:.2f} bps > "
                   f"{t.max_mean_price_bps:g} bps")
    if head["matched"]:
        matched = result.fills[result.fills["status"] == "matched"]
        off = float((matched["qty_diff_pct"].abs() > t.max_qty_diff_pct).mean())
        if off > t.max_qty_off_share:
            out.append(f"quantity: {off:.1%} of matched fills differ by more than "
                       f"{t.max_qty_diff_pct:g}% (allowed {t.max_qty_off_share:.0%})")
    if head["unmatched"] > t.max_unmatched:
        out.append(f"unmatched fills: {head['unmatched']} ({head['live_only']} live only, "
                   f"{head['backtest_only']} backtest only; allowed {t.max_unmatched})")
    return out


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def _max(values: pd.Series) -> float:
    return float(values.max()) if len(values) else math.nan


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
