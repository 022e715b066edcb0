"""What ``fw paper``, ``fw status``, ``fw halt`` and ``fw resume`` do, apart from the click layer.

``fw paper`` runs the :class:`~live.runner.Runner` with all state in the
:class:`~live.state.Store`: by default on a replay of stored bars against the simulated broker;
with ``--broker alpaca`` on Alpaca's paper account and market data, paced by the exchange
calendar. Re-running with the same run id resumes from the store (the runner's ``start()`` is the
recovery path) and skips the bars already processed. ``fw halt`` / ``fw resume`` flip the run's manual kill switch; a running ``fw paper``
reads it from the store at every bar.
"""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from framework.errors import BrokerError, ConfigError, unknown_name_message
from framework.risk import RiskSpec
from framework.strategy import Strategy
from live.broker import DuplicateOrderError, OrderRequest, UnknownOrderError
from live.feeds import ClosedBar, ReplayFeed
from live.runner import Runner, RunnerSpec, client_order_id
from live.sim import SimBroker, SimSpec
from live.state import Store

_OPEN = ("new", "submitted", "partially_filled")
_FLATTEN_ASKED, _FLATTEN_SENT = "flatten_requested", "flatten_submitted"

ProgressFactory = Callable[[int], Callable[[int, ClosedBar], None]]


@dataclass(frozen=True)
class PaperSpec:
    """Everything ``fw paper`` was asked to do, already parsed.

    Parameters
    ----------
    run_id : str, optional
        Run to create or resume; default ``<strategy>-<UTC time>`` (a new run).
    symbols : tuple of str, optional
        Symbols to trade; default: the resumed run's, else SPY / the embedded S&P 500 index.
    data_dir, start, end
        Which bars to replay, chosen as for ``fw backtest``.
    sets : tuple of str
        ``name=value`` parameter overrides.
    schedule : Path, optional
        A walk-forward ``schedule.json`` (instead of fixed parameters).
    speed : float, optional
        Bars per second; None replays as fast as possible.
    dry_run : bool
        Record decisions and intended orders, send nothing.
    risk_off : bool
        Ignore the risk rules of the YAML config.
    risk_sets : tuple of str
        ``name=value`` risk rule overrides.
    db : str, optional
        SQLAlchemy URL of the state store (default ``FW_DB_URL`` or FW_HOME/state/fw.sqlite).
    broker : str
        ``"sim"`` (replay + simulated broker) or ``"alpaca"`` (paper account, live bars).
    interval : str
        Bar interval (``1Min`` ... ``1Day``): the live bars (alpaca) or the replayed files' bar
        length (sim).
    warmup_bars, max_bars, poll, settle, max_wait
        Live feed pacing (see ``live.alpaca_feed.LiveFeedSpec``); alpaca only.
    max_clock_drift : float, optional
        Seconds the local clock may differ from the broker's before trading halts; None: no
        check (the broker's clock then defines market time).
    model, challenger : str, optional
        Learned strategies: registry versions traded and shadowed (see ``live.ml_models``).
    retrain, retrain_bars
        Learned strategies: refit ``"weekly"``/``"monthly"`` (or ``"never"``) on the last
        ``retrain_bars`` bars (see ``live.ml_retrain``).
    backup_every : str, optional
        Wall time between online backups of a SQLite store (``"1d"``, ``"12h"``, ``"off"``);
        None: ``"1d"`` for a live (alpaca) run, ``"off"`` for a sim replay (reproducible from
        its data).
    reports : bool or None
        Weekly/monthly reports: None = live sessions only; True also for a replay; False never.
    min_free_mb : float
        Free disk space the state database needs; below it trading stops (exit code 74).
    """

    run_id: str | None = None
    symbols: tuple[str, ...] | None = None
    data_dir: Path | None = None
    start: str | None = None
    end: str | None = None
    sets: tuple[str, ...] = ()
    schedule: Path | None = None
    speed: float | None = None
    dry_run: bool = False
    risk_off: bool = False
    risk_sets: tuple[str, ...] = ()
    db: str | None = None
    broker: str = "sim"
    interval: str = "1Day"
    warmup_bars: int = 300
    max_bars: int | None = None
    poll: float | None = None
    settle: float | None = None
    max_clock_drift: float | None = 5.0
    max_wait: float = 600.0
    model: str | None = None
    challenger: str | None = None
    retrain: str = "never"
    retrain_bars: int = 756
    backup_every: str | None = None
    reports: bool | None = None
    min_free_mb: float = 100.0

    @property
    def min_free_bytes(self) -> int:
        return int(self.min_free_mb * 2**20)


@dataclass(frozen=True)
class PaperSummary:
    """The outcome of one ``fw paper`` session (numbers read back from the store)."""

    run_id: str
    strategy: str
    resumed: bool
    new_bars: int
    total_bars: int
    orders: int
    fills: int
    initial_cash: float
    equity: float
    costs: float
    kill_switch: str
    risk_breaker: str | None
    dry_run: bool
    db_url: str

    @property
    def total_return(self) -> float:
        return self.equity / self.initial_cash - 1.0


# -- fw paper ------------------------------------------------------------------------------------
def paper_strategy_name(spec: PaperSpec, store: Store, given: str | None) -> str:
    """The strategy to run: the one given, else the resumed run's, else the schedule's, else
    ``sma_cross``."""
    if given:
        return given
    if spec.run_id is not None:
        run = store.run(spec.run_id)
        if run is not None:
            return run["strategy"]
    if spec.schedule is not None:
        name = _read_json(spec.schedule).get("strategy")
        if isinstance(name, str) and name:
            return name
    return "sma_cross"


def run_paper(strategy: Strategy, spec: PaperSpec, store: Store,
              progress: ProgressFactory | None = None, reporter=None) -> PaperSummary:
    """Create or resume a paper run and replay the chosen bars through it.

    Parameters
    ----------
    strategy : Strategy
    spec : PaperSpec
    store : Store
    progress : callable, optional
        Called with the number of bars to replay; returns the per-bar callback of the runner.
    reporter : callable, optional
        ``reporter(db_url, run_id, period, today) -> (path, headline)``: a live (alpaca) session
        writes the weekly report after each week's last session and the monthly one after the
        month's, and alerts with the headline and the file's location.

    Returns
    -------
    PaperSummary
    """
    run_id = spec.run_id or _default_run_id(strategy.name)
    existing = store.run(run_id)
    if existing is not None:
        _check_resume(existing, strategy, spec)
    if spec.broker not in BROKERS:
        raise ConfigError(unknown_name_message("broker", spec.broker, BROKERS))
    symbols = list(spec.symbols) if spec.symbols else (existing["symbols"] if existing else None)
    learned = strategy.fit is not None
    schedule, params_config = _resolve_schedule(strategy, spec, existing, learned)
    risk = _risk(spec)
    alerter = make_alerter(store, run_id)
    watch = None
    if learned:
        from live.ml_models import attach_models, make_watch

        schedule, params_config, registry, shadows, card = attach_models(
            strategy, spec, existing, schedule, params_config)
        watch = make_watch(strategy, store, run_id, params_config, shadows, card, alerter, registry)
    elif spec.model or spec.challenger:
        raise ConfigError(f"--model/--challenger apply to learned strategies; {strategy.name} has no model.")
    from live.logs import open_logs
    from live.session import SessionServices, SessionSpec, parse_every, stop_on_storage_failure

    services = SessionServices(store, run_id, SessionSpec(
        backup_every=parse_every(spec.backup_every if spec.backup_every is not None
                                 else ("off" if spec.broker == "sim" else "1d")),
        replay_reports=spec.broker == "sim" and bool(spec.reports)), alerter, reporter)

    def with_services(total):
        return services.progress(progress(total) if progress is not None else None)

    live_reporter = reporter if spec.reports is not False else None
    logs = open_logs(None, run_id).attach(store)  # JSON-lines logs under FW_HOME/logs
    try:
        with stop_on_storage_failure(alerter, run_id):
            if spec.broker == "alpaca":
                from live.paper_alpaca import run_alpaca

                new_bars = run_alpaca(strategy, spec, store, run_id, existing, schedule,
                                      params_config, risk, alerter, with_services, live_reporter,
                                      watch)
            elif spec.broker == "webull":
                from live.paper_webull import run_webull

                new_bars = run_webull(strategy, spec, store, run_id, existing, schedule,
                                      params_config, risk, alerter, with_services, live_reporter,
                                      watch)
            else:
                new_bars = _run_sim(strategy, spec, store, run_id, existing, symbols, schedule,
                                    params_config, risk, alerter, with_services, watch)
    finally:
        alerter.close()
        logs.close()
    return summarize(store, run_id, resumed=existing is not None, new_bars=new_bars)


def _run_sim(strategy, spec, store, run_id, existing, symbols, schedule, params_config, risk,
             alerter, progress, watch=None) -> int:
    """Replay stored bars against the simulated broker; returns the number of new bars."""
    from framework.config import load_config

    bars, warm = _replay_bars(strategy, schedule, symbols, spec)
    initial_cash = (float(existing["config"].get("initial_cash", 100_000.0)) if existing
                    else float(load_config().trading.initial_capital))
    sim = SimSpec(initial_cash=initial_cash)
    broker = _sim_broker(store, run_id, bars.symbols, sim)
    runner = Runner(strategy, schedule, store, broker, bars.symbols,
                    RunnerSpec(run_id=run_id, risk=risk, dry_run=spec.dry_run,
                               regimes=wants_regimes(risk), min_free_bytes=spec.min_free_bytes),
                    alerter=alerter, watch=watch)
    config = {
        "command": "paper", "strategy": strategy.name, **params_config,
        "symbols": list(bars.symbols), "broker": "sim", "interval": spec.interval,
        "initial_cash": initial_cash,
        "costs": sim.costs.to_dict(), "risk": risk.to_dict(), "dry_run": spec.dry_run,
        "data": {s: i.source for s, i in bars.info.items()}, "data_hash": bars.content_hash(),
        "git_revision": _git_revision(),
    }
    runner.start(config)
    if existing is not None:
        store.update_run(run_id, status="running")
    if not spec.dry_run:
        submit_pending_flatten(store, run_id, broker, runner.last_bar)
    feed = ReplayFeed(bars, spec.speed, warmup=warm)
    callback = progress(len(feed)) if progress is not None else None
    return runner.run(feed, callback)


def _replay_bars(strategy, schedule, symbols, spec):
    """The bars to replay and how many lead in as warm-up history.

    A learned strategy needs its long warm-up before ``--start`` (its model trades from the
    first replayed bar, as it would live after the feed's warm-up): those earlier bars are
    replayed as history. Other strategies replay from ``--start`` (unchanged behaviour).
    """
    from framework.clirun import load_run_bars

    timeframe = replay_timeframe(spec.interval)
    bars = load_run_bars(symbols, spec.data_dir, spec.start, spec.end, timeframe)
    if strategy.fit is None or spec.start is None:
        return bars, 0
    need = learned_history(strategy, schedule, spec)
    wider = load_run_bars(list(bars.symbols), spec.data_dir, None, spec.end, timeframe)
    first = int(wider.index.searchsorted(bars.index[0]))
    lead = min(first, need)
    return wider.iloc(slice(first - lead, wider.n_bars)), lead


def replay_timeframe(interval: str) -> str:
    """``--interval`` (``1Min`` ... ``1Hour``, ``1Day``) as a data timeframe (``1min``, ``1h``,
    ``1d``): a replay reads the files of that bar length (``SPY_1min.csv.gz``)."""
    return str(interval).replace("Hour", "h").replace("Day", "d").lower()


def learned_history(strategy, schedule, spec) -> int:
    """Bars of history a learned strategy needs before its first traded bar: its warm-up, plus
    the training window of scheduled retrains (they refit on history the run has seen)."""
    from framework.stepper import normalize_schedule

    need = int(strategy.warmup(normalize_schedule(schedule)[0].params))
    return need + (spec.retrain_bars if spec.retrain != "never" else 0)


BROKERS: tuple[str, ...] = ("sim", "alpaca", "webull")

# config ``notifications.events`` -> alert kinds of ``live.alerts``
_EVENT_KINDS = {
    "order_filled": "trade", "stop_loss": "breaker", "circuit_breaker": "breaker",
    "daily_loss_limit": "breaker", "rebalance": "rebalance", "regime_change": "regime",
    "daily_summary": "summary",
    "reconciliation": "halt", "error": "error",
}


def wants_regimes(risk: RiskSpec) -> bool:
    """Classify regimes live when the risk rules switch on them or regime alerts are asked for."""
    from framework.config import load_config

    notes = load_config().notifications
    return bool(risk.regime_overrides) or (notes.enabled and "regime_change" in notes.events)


def make_alerter(store: Store, run_id: str):
    """An :class:`~live.alerts.Alerter` for the config's ``notifications`` (off: a null one);
    an alert that cannot be delivered is stored as an error of the run."""
    from framework.config import load_config
    from live.alerts import AlertSpec, NullAlerter
    from live.alerts import make_alerter as build

    notes = load_config().notifications
    if not notes.enabled:
        return NullAlerter()
    kinds = {_EVENT_KINDS[e] for e in notes.events} | {"halt"}  # a halt always alerts
    spec = AlertSpec.from_environment(kinds=frozenset(kinds))

    def undelivered(title: str, reason: str) -> None:
        store.error(run_id, f"alert {title!r} not delivered", reason)

    return build(spec, on_failure=undelivered)


class StopFlag:
    """Set by SIGTERM/SIGINT: the runner finishes the bar in hand, then the feed ends."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self, *_args) -> None:
        self._event.set()

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (only possible in the main thread)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self.set)


def summarize(store: Store, run_id: str, resumed: bool = False, new_bars: int = 0) -> PaperSummary:
    """The headline numbers of run ``run_id`` as stored."""
    run = require_run(store, run_id)
    config = run["config"]
    initial = float(config.get("initial_cash", 100_000.0))
    curve = store.equity(run_id)
    fills = store.fills(run_id)
    return PaperSummary(
        run_id=run_id, strategy=run["strategy"], resumed=resumed, new_bars=new_bars,
        total_bars=len(curve), orders=len(store.orders(run_id)), fills=len(fills),
        initial_cash=initial,
        equity=float(curve["equity"].iloc[-1]) if len(curve) else initial,
        costs=sum(f["commission"] + f["slippage"] + f["impact"] for f in fills),
        kill_switch=run["kill_switch"], risk_breaker=_risk_breaker(store, run_id),
        dry_run=bool(config.get("dry_run", False)), db_url=store.url,
    )


def _default_run_id(strategy_name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    # file-path strategies (path/x.py:Class) make awkward ids; keep letters, digits, - and _
    return f"{re.sub(r'[^A-Za-z0-9_-]+', '_', strategy_name)}-{stamp}"


def _check_resume(run: Mapping[str, Any], strategy: Strategy, spec: PaperSpec) -> None:
    if run["strategy"] != strategy.name:
        raise ConfigError(
            f"run {run['run_id']!r} trades {run['strategy']!r}; asked for {strategy.name!r}. "
            "Omit STRATEGY to resume it, or choose another --run-id for a new run."
        )
    was_broker = run["config"].get("broker", "sim")
    if was_broker != spec.broker:
        raise ConfigError(
            f"run {run['run_id']!r} trades with --broker {was_broker}; asked for --broker "
            f"{spec.broker}. Resume it with --broker {was_broker}, or choose another --run-id."
        )
    was_interval = run["config"].get("interval", "1Day")
    if was_interval != spec.interval:
        raise ConfigError(
            f"run {run['run_id']!r} trades {was_interval} bars; asked for --interval "
            f"{spec.interval}. Resume it with --interval {was_interval}, or choose another --run-id."
        )
    was_dry = bool(run["config"].get("dry_run", False))
    if was_dry != spec.dry_run:
        raise ConfigError(
            f"run {run['run_id']!r} was started {'with' if was_dry else 'without'} --dry-run; "
            f"resume it the same way, or choose another --run-id."
        )


def _resolve_schedule(strategy: Strategy, spec: PaperSpec, existing: Mapping[str, Any] | None,
                      learned: bool = False) -> tuple[Any, dict[str, Any]]:
    """The parameters (or walk-forward schedule) and how the run's config records them.

    A resumed run keeps its stored parameters; asking for different ones is an error, since
    the stepper state in the store was built with the old ones. Learned strategies take their
    parameters from their model's card instead (``live.ml_models``)."""
    if learned:
        return strategy.default_params(), {}
    from framework.clirun import resolve_params
    from framework.strategy import make_params
    from framework.walkforward.schedule import load_schedule, schedule_payload

    if spec.schedule is not None and spec.sets:
        raise ConfigError(
            f"--schedule {spec.schedule} and --set {' '.join(spec.sets)} both choose parameters; "
            "use one of them."
        )
    stored = existing["config"] if existing is not None else None
    asked = spec.schedule is not None or bool(spec.sets)
    if stored is not None and not asked:
        if stored.get("schedule"):
            return load_schedule(stored["schedule"], strategy.params_type), {"schedule": stored["schedule"]}
        params = make_params(strategy.params_type, dict(stored.get("params") or {}))
        return params, {"params": params.as_dict()}
    if spec.schedule is not None:
        entries = load_schedule(spec.schedule, strategy.params_type)
        payload = schedule_payload(strategy.name, entries)
        schedule, recorded = entries, {"schedule": payload}
    else:
        params = resolve_params(strategy, spec.sets)
        schedule, recorded = params, {"params": params.as_dict()}
    if stored is not None:
        before = {k: stored.get(k) for k in ("params", "schedule") if stored.get(k)}
        if _canonical(before) != _canonical(recorded):
            raise ConfigError(
                f"run {existing['run_id']!r} uses {json.dumps(before, default=str)}; asked for "
                f"{json.dumps(recorded, default=str)}. Resume without --set/--schedule, or choose "
                "another --run-id for a run with new parameters."
            )
    return schedule, recorded


def _risk(spec: PaperSpec) -> RiskSpec:
    if spec.risk_off:
        return RiskSpec.off()
    from framework.config import load_config
    from framework.risk.spec import parse_risk_overrides

    return RiskSpec.from_config(load_config()).with_overrides(parse_risk_overrides(spec.risk_sets))


def _sim_broker(store: Store, run_id: str, symbols: Sequence[str], sim: SimSpec) -> SimBroker:
    """The run's simulated broker, restored from its own table in the store when saved."""
    saved = store.broker_state(run_id)

    def persist(data: dict) -> None:
        store.save_broker_state(run_id, "sim", data)

    if saved is None:
        # execution ids are unique per database: several runs share one
        return SimBroker(symbols, sim, persist, id_prefix=f"sim-{run_id}")
    return SimBroker.from_dict(saved, sim, persist)


# -- fw halt / fw resume ---------------------------------------------------------------------------
def halt_run(store: Store, run_id: str, flatten: bool = False) -> list[str]:
    """Set the run's kill switch to HALTED, cancel its open orders, and with ``flatten`` record
    that its positions are to be closed when the next ``fw paper`` session starts.

    Returns the client ids of the orders canceled.
    """
    run = require_run(store, run_id)
    store.update_run(run_id, kill_switch="HALTED")
    canceled = _cancel_open_orders(store, run)
    note = f"; canceled {len(canceled)} open order(s)" if canceled else ""
    store.event(run_id, "halt", f"kill switch HALTED by fw halt (was {run['kill_switch']}){note}")
    held = store.positions(run_id)
    if flatten:
        store.event(run_id, _FLATTEN_ASKED,
                    f"close {', '.join(f'{s} {q:g}' for s, q in sorted(held.items())) or 'nothing'} "
                    "at the next bar")
    return canceled


def resume_run(store: Store, run_id: str) -> str | None:
    """Set the run's kill switch back to ACTIVE with an event; returns the risk breaker when it
    still blocks trading (the risk rules' own state, not the manual switch), else None."""
    run = require_run(store, run_id)
    store.update_run(run_id, kill_switch="ACTIVE")
    store.event(run_id, "resume", f"kill switch ACTIVE by fw resume (was {run['kill_switch']})")
    breaker = _risk_breaker(store, run_id)
    return breaker if breaker not in (None, "ACTIVE") else None


def _cancel_open_orders(store: Store, run: Mapping[str, Any]) -> list[str]:
    """Cancel at the broker (the sim broker's side lives in the store) and in the store.

    An order stored but never sent is canceled in the store too, or recovery would send it."""
    run_id = run["run_id"]
    orders = store.orders(run_id, _OPEN)
    if not orders:
        return []
    saved = store.broker_state(run_id)
    broker = None
    if run["config"].get("broker") == "alpaca":
        from live.paper_alpaca import broker_for_run

        broker = broker_for_run(store, run)
    elif run["config"].get("broker") == "webull":
        from live.paper_webull import broker_for_run as webull_broker_for_run

        broker = webull_broker_for_run(store, run)
    elif saved is not None:
        broker = SimBroker.from_dict(saved, persist=lambda d: store.save_broker_state(run_id, "sim", d))
    out = []
    for order in orders:
        cid = order["client_order_id"]
        status = "canceled"
        if broker is not None:
            try:
                seen = broker.cancel(cid)
                status = "canceled" if seen.is_open or seen.status == "canceled" else seen.status
            except UnknownOrderError:
                pass  # never reached the broker: cancel our record so recovery does not send it
        store.update_order(cid, status=status)
        if status == "canceled":
            out.append(cid)
    return out


def submit_pending_flatten(store: Store, run_id: str, broker,
                           last_bar: str | None) -> list[str]:
    """Send the closing orders a ``fw halt --flatten`` asked for (they fill at the next bar's
    open); ids are deterministic, so a crash and restart does not send them twice."""
    kinds = [e["kind"] for e in store.events(run_id, limit=10_000)]
    asked = max((i for i, k in enumerate(kinds) if k == _FLATTEN_ASKED), default=-1)
    sent = max((i for i, k in enumerate(kinds) if k == _FLATTEN_SENT), default=-1)
    if asked <= sent:
        return []
    when = last_bar or "start"
    rows = [
        {"client_order_id": client_order_id("flatten", run_id, when, symbol), "bar_time": when,
         "symbol": symbol, "quantity": -quantity, "status": "new"}
        for symbol, quantity in sorted(store.positions(run_id).items())
    ]
    store.add_orders(run_id, rows)
    for row in rows:
        try:
            seen = broker.submit(OrderRequest(row["client_order_id"], row["symbol"], row["quantity"]))
        except DuplicateOrderError:
            seen = broker.order(row["client_order_id"])
        except BrokerError as exc:
            store.update_order(row["client_order_id"], status="rejected")
            store.error(run_id, f"flatten order {row['client_order_id']} rejected", str(exc))
            continue
        store.update_order(row["client_order_id"], status="submitted" if seen.is_open else seen.status)
    store.event(run_id, _FLATTEN_SENT, f"{len(rows)} closing order(s) sent after bar {when}")
    return [r["client_order_id"] for r in rows]


# -- fw status -------------------------------------------------------------------------------------
def require_run(store: Store, run_id: str) -> dict[str, Any]:
    """The stored run, or a :class:`ConfigError` listing the known run ids."""
    run = store.run(run_id)
    if run is None:
        known = [r["run_id"] for r in store.runs()]
        raise ConfigError(
            unknown_name_message("run id", run_id, known)
            + f" (database {store.url}; start a run with `fw paper --run-id {run_id}`)"
        )
    return run


def latest_run_id(store: Store) -> str:
    """The most recently created run (what status/halt/resume use without --run-id)."""
    runs = store.runs()
    if not runs:
        raise ConfigError(
            f"no paper runs in {store.url}; start one with `fw paper`, or point --db / FW_DB_URL "
            "at the database that has them."
        )
    return runs[-1]["run_id"]


def run_status(store: Store, run_id: str) -> dict[str, Any]:
    """Everything ``fw status`` shows, as plain data read from the store."""
    run = require_run(store, run_id)
    summary = summarize(store, run_id)
    curve = store.equity(run_id)
    orders = store.orders(run_id)
    config = run["config"]
    return {
        "run_id": run_id, "strategy": run["strategy"], "status": run["status"],
        "parameters": config.get("params") or _schedule_text(config.get("schedule")),
        "symbols": run["symbols"], "started": run["created_at"], "last_bar": run["last_bar"],
        "bars": summary.total_bars, "positions": store.positions(run_id),
        "cash": float(curve["cash"].iloc[-1]) if len(curve) else summary.initial_cash,
        "equity": summary.equity, "initial_cash": summary.initial_cash,
        "pnl": summary.equity - summary.initial_cash, "return": summary.total_return,
        "orders": len(orders), "open_orders": sum(o["status"] in _OPEN for o in orders),
        "fills": summary.fills, "costs": summary.costs, "kill_switch": run["kill_switch"],
        "risk_breaker": summary.risk_breaker, "risk": _risk_text(config.get("risk")),
        "dry_run": summary.dry_run, "events": store.events(run_id, limit=8),
        "errors": store.errors(run_id, limit=5), "db_url": store.url,
        "uptime": run_uptime(store, run_id),
    }


def run_uptime(store: Store, run_id: str, now: pd.Timestamp | None = None) -> dict | None:
    """Healthy market-hours time of a live run since its first health span, up to ``now``
    (a dead runner's silence counts against it); None for runs without spans (replays)."""
    from framework.uptime import market_uptime

    spans = store.spans(run_id)
    if not spans:
        return None
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    start = pd.Timestamp(spans[0]["started_at"])
    return market_uptime(spans, start, max(now, start)).to_dict()


def _risk_breaker(store: Store, run_id: str) -> str | None:
    from framework.risk.state import RiskState

    saved = store.risk_state(run_id)
    return None if saved is None else RiskState.from_dict(saved).breaker


def _risk_text(risk: Mapping[str, Any] | None) -> str:
    if not risk:
        return "off"
    try:
        spec = RiskSpec(**risk)
    except (TypeError, ValueError):
        return json.dumps(risk, default=str)  # a config written by another fw version
    return "; ".join(spec.describe()) if spec.enabled else "off"


def _schedule_text(payload: Mapping[str, Any] | None) -> str:
    if not payload:
        return "?"
    entries = payload.get("entries") or []
    last = entries[-1] if entries else {}
    return (f"walk-forward schedule, {len(entries)} folds; latest from "
            f"{last.get('effective_from', '?')}: {last.get('params', {})}")


# -- helpers ---------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read schedule {path}: {exc}. Expected the schedule.json a "
                          "walk-forward run writes (fw backtest --walk-forward).") from exc
    return data if isinstance(data, dict) else {}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _git_revision() -> str:
    from framework.portfolio import git_revision

    return git_revision()
