"""Thin Python wrapper around the jitted kernels: validate inputs, run, build results.

The timing contract (DESIGN.md section 2): ``target[i]`` is decided at the close of bar ``i``
and filled at the open of bar ``i + 1`` (``fill="next_open"``); a target on the last bar is never
filled. Orders are sized at the fill prices from equity valued at those prices. Within a bar the
orders that only reduce positions fill first (freeing cash); then the orders that add exposure
are shrunk by one common factor, if needed, so that gross exposure stays within
``max_leverage * equity`` after costs (with leverage 1 and no shorts: cash never goes below
zero). Every buy is scaled alike, so no asset is favoured; vectorbt's ``call_seq="auto"``
instead fills the smallest buys first and cuts the last one, so the two differ only when
several buys compete for too little cash. Shorts pay no borrow fee.

The risk layer (``framework.risk``, off unless a :class:`RiskSpec` is given) runs inside the
same pass: it resizes and caps targets when they are received, changes or drops sized orders
before they fill, exits positions on stops intrabar, and trips breakers at the close. Every
applied rule is a row of ``SimResult.risk_events``; every trade has an ``exit_reason``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.costs import CostSpec
from framework.engine import _layout as layout
from framework.engine import _nb, _orders_nb
from framework.engine.result import GridResult, SimResult
from framework.engine.spec import EngineSpec
from framework.engine.trades import fills_frame, trades_frame
from framework.errors import EngineError
from framework.risk import _layout as risk_layout
from framework.risk._nb import new_risk_state_nb
from framework.risk.events import events_frame, exit_reasons
from framework.risk.inputs import risk_inputs
from framework.risk.spec import RiskSpec
from framework.types import Bars


def simulate(
    bars: Bars,
    target: np.ndarray,
    spec: EngineSpec = EngineSpec(),
    costs: CostSpec = CostSpec(),
    risk: RiskSpec | None = None,
    regime: np.ndarray | None = None,
) -> SimResult:
    """Simulate one portfolio that follows ``target`` weights over ``bars``.

    Parameters
    ----------
    bars : Bars
        OHLCV bars, shape ``(n_bars, n_assets)``; NaN prices mean "not tradable on this bar".
    target : array_like
        Desired position per bar and asset as a fraction of equity (negative = short), shape
        ``(n_bars, n_assets)``; a 1-D array of length ``n_bars`` is accepted for one asset, and
        a DataFrame must have ``bars.symbols`` as its columns. NaN means "no opinion": keep
        holding, no order.
    spec : EngineSpec
        Fill timing, rebalancing, share rounding, shorting and leverage.
    costs : CostSpec
        Commission, slippage, impact and participation cap (all on by default).
    risk : RiskSpec, optional
        Risk rules applied inside the pass (default: off, the engine's plain behaviour).
    regime : (n_bars,) int array, optional
        Causal regime label per bar selecting ``risk.regime_overrides``.

    Returns
    -------
    SimResult

    Raises
    ------
    EngineError
        For a wrong target shape, infinite targets, or non-positive / infinite prices.
    """
    _check_bars(bars)
    weights = _as_target(target, bars, "target")
    risk = risk or RiskSpec.off()
    run = _run_recorded(bars, weights, spec, costs, risk_inputs(bars, risk, regime))
    arrays, fills_int, fills_float, totals, marks, events = run
    trades = trades_frame(fills_int, fills_float, marks, bars.index, bars.symbols)
    trades["exit_reason"] = exit_reasons(
        trades,
        fills_int[:, layout.F_BAR],
        fills_int[:, layout.F_ASSET],
        fills_float[:, layout.F_QTY],
        fills_int[:, layout.F_REASON],
        bars.symbols,
    )
    return SimResult(
        *arrays,
        fills=fills_frame(fills_int, fills_float, bars.index, bars.symbols),
        trades=trades,
        costs={
            "commission": float(totals[layout.T_COMMISSION]),
            "slippage": float(totals[layout.T_SLIPPAGE]),
            "impact": float(totals[layout.T_IMPACT]),
        },
        impact_skipped_fills=int(totals[layout.T_IMPACT_SKIPPED]),
        optimistic_fill=spec.optimistic_fill,
        index=bars.index,
        symbols=bars.symbols,
        initial_cash=float(spec.initial_cash),
        spec=spec,
        cost_spec=costs,
        risk_events=events_frame(*events, bars.index, bars.symbols),
        risk_spec=risk,
    )


def simulate_grid(
    bars: Bars,
    targets: np.ndarray,
    spec: EngineSpec = EngineSpec(),
    costs: CostSpec = CostSpec(),
    risk: RiskSpec | None = None,
    regime: np.ndarray | None = None,
) -> GridResult:
    """Simulate ``k`` independent portfolios on one asset in one jitted call.

    Column ``c`` of the result equals ``simulate(bars, targets[:, c], spec, costs)``; the
    columns run in parallel threads. Use it for parameter grids.

    Parameters
    ----------
    bars : Bars
        Bars of exactly one asset.
    targets : array_like
        Target weights, shape ``(n_bars, k)`` (a 1-D array counts as one portfolio).
    spec, costs, risk, regime
        As for :func:`simulate` (each portfolio has its own risk state).

    Returns
    -------
    GridResult

    Raises
    ------
    EngineError
        When ``bars`` has more than one asset, or for a wrong shape or infinite targets.
    """
    _check_bars(bars)
    if bars.n_assets != 1:
        raise EngineError(
            f"simulate_grid runs portfolios on one asset; bars has {bars.n_assets} "
            f"({', '.join(bars.symbols[:5])}{', ...' if bars.n_assets > 5 else ''}). "
            "Select one with bars.select([symbol]) or use simulate for a universe."
        )
    grid = _as_grid_targets(targets, bars.n_bars)
    risk = risk or RiskSpec.off()
    equity, totals, n_events = _nb.run_grid_nb(
        _price_arrays(bars), grid, _params(spec, costs), risk_inputs(bars, risk, regime)
    )
    return GridResult(
        equity=equity.T,  # a view: column-major (n, k), each portfolio contiguous
        n_fills=totals[:, layout.T_FILLS].astype(np.int64),
        commission=totals[:, layout.T_COMMISSION].copy(),
        slippage=totals[:, layout.T_SLIPPAGE].copy(),
        impact=totals[:, layout.T_IMPACT].copy(),
        traded_value=totals[:, layout.T_TRADED_VALUE].copy(),
        impact_skipped_fills=totals[:, layout.T_IMPACT_SKIPPED].astype(np.int64),
        bars_in_market=totals[:, layout.T_BARS_IN_MARKET].astype(np.int64),
        risk_events=n_events.astype(np.int64),
        index=bars.index,
        symbol=bars.symbols[0],
        initial_cash=float(spec.initial_cash),
        optimistic_fill=spec.optimistic_fill,
        spec=spec,
        cost_spec=costs,
        risk_spec=risk,
    )


# -- helpers ------------------------------------------------------------------------------------
def _run_recorded(bars: Bars, weights: np.ndarray, spec: EngineSpec, costs: CostSpec, risk):
    """Run the kernel with fill recording; returns the read-only per-bar arrays (equity, cash,
    positions, gross value, traded value), the fill records, the totals, the final marks and
    the risk event records."""
    n, m = weights.shape
    equity, per_bar, positions = np.empty(n), np.empty((3, n)), np.empty((n, m))
    prices, params = _price_arrays(bars), _params(spec, costs)
    # room for every accepted target plus volume-capped carry-overs; if that is still short,
    # the pass counted every fill (and event) and one re-run with the exact room records them
    room = _orders_nb.count_new_targets_nb(weights, params) + 2 * n + 64
    event_room = 2 * n + 64
    while True:
        fills_int = np.empty((room, layout.N_FILL_INT), np.int64)
        fills_float = np.empty((room, 5))
        events = (np.empty((event_room, 3), np.int64), np.empty((event_room, 3)))
        risk_state = new_risk_state_nb(m, float(spec.initial_cash))
        totals, marks = _nb.run_nb(
            prices,
            weights,
            params,
            equity,
            per_bar,
            positions,
            (fills_int, fills_float),
            risk,
            risk_state,
            events,
        )
        n_fills = int(totals[layout.T_FILLS])
        n_events = int(risk_state[1][risk_layout.G_EVENTS])
        if n_fills <= room and n_events <= event_room:
            break
        room, event_room = max(room, n_fills), max(event_room, n_events)
    arrays = [equity, per_bar[0], positions, per_bar[1], per_bar[2]]
    for arr in arrays:
        arr.setflags(write=False)
    events = (events[0][:n_events], events[1][:n_events])
    return arrays, fills_int[:n_fills], fills_float[:n_fills], totals, marks, events


def _params(spec: EngineSpec, costs: CostSpec) -> np.ndarray:
    params = np.empty(layout.N_PARAMS)
    params[layout.P_INITIAL_CASH] = spec.initial_cash
    params[layout.P_FILL_CLOSE] = float(spec.fill == "close")
    params[layout.P_EVERY_BAR] = float(spec.rebalance == "every_bar")
    params[layout.P_WHOLE_SHARES] = float(spec.whole_shares)
    params[layout.P_ALLOW_SHORT] = float(spec.allow_short)
    params[layout.P_MAX_LEVERAGE] = spec.max_leverage
    params[layout.P_PER_SHARE] = costs.commission_per_share
    params[layout.P_MIN_COMMISSION] = costs.commission_min
    params[layout.P_COMMISSION_RATE] = costs.commission_bps / 1e4
    cap = costs.commission_max_pct
    params[layout.P_COMMISSION_CAP] = np.nan if cap is None else cap / 100.0
    params[layout.P_SLIPPAGE] = costs.slippage_bps / 1e4
    params[layout.P_IMPACT_COEF] = costs.impact_coef
    params[layout.P_IMPACT_WINDOW] = costs.impact_window
    part = costs.max_participation
    params[layout.P_MAX_PARTICIPATION] = np.nan if part is None else part
    return params


def _price_arrays(bars: Bars) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(
        np.ascontiguousarray(getattr(bars, name), dtype=np.float64)
        for name in ("open", "close", "volume")
    )


def _check_bars(bars: object) -> None:
    if not isinstance(bars, Bars):
        raise EngineError(
            f"bars must be a framework.types.Bars; got {type(bars).__name__}. "
            "Build one with Bars.from_frames or the framework.data loaders."
        )
    if bars.n_bars == 0 or bars.n_assets == 0:
        raise EngineError(
            f"bars is empty (shape {bars.n_bars} x {bars.n_assets}); need at least one bar "
            "and one asset."
        )
    for name in ("open", "close"):
        arr = getattr(bars, name)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(arr) | (arr <= 0.0)
        _raise_at(bad, bars, f"{name} price", arr, "a finite price > 0 (or NaN for no trading)")
    volume = bars.volume
    with np.errstate(invalid="ignore"):
        bad = np.isinf(volume) | (volume < 0.0)
    _raise_at(bad, bars, "volume", volume, "a finite volume >= 0 (or NaN when unknown)")


def _raise_at(bad: np.ndarray, bars: Bars, what: str, arr: np.ndarray, expected: str) -> None:
    if not bad.any():
        return
    i, j = np.argwhere(bad)[0]
    raise EngineError(
        f"{what} {float(arr[i, j])!r} for {bars.symbols[j]!r} at bar {i} ({bars.index[i]}) "
        f"({int(bad.sum())} such cells); expected {expected}. Clean the data first "
        "(framework.data validation)."
    )


def _as_target(target: object, bars: Bars, name: str) -> np.ndarray:
    n, m = bars.n_bars, bars.n_assets
    if isinstance(target, pd.DataFrame) and list(target.columns) != list(bars.symbols):
        raise EngineError(
            f"{name} columns {list(target.columns)[:5]} do not match bars.symbols "
            f"{list(bars.symbols)[:5]}; expected the same symbols in the same order "
            f"(reorder with {name}[list(bars.symbols)])."
        )
    arr = _as_float_array(target, name)
    if arr.ndim == 1 and m == 1:
        arr = arr.reshape(-1, 1)
    if arr.shape != (n, m):
        raise EngineError(
            f"{name} has shape {arr.shape}; expected (n_bars, n_assets) = ({n}, {m}) to match "
            f"bars{' (or a 1-D array of length ' + str(n) + ')' if m == 1 else ''}."
        )
    _check_finite_or_nan(arr, name)
    return np.ascontiguousarray(arr)


def _as_grid_targets(targets: object, n: int) -> np.ndarray:
    arr = _as_float_array(targets, "targets")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] == 0:
        raise EngineError(
            f"targets has shape {arr.shape}; expected (n_bars, k) = ({n}, k) with k >= 1: one "
            "column of target weights per portfolio, one row per bar."
        )
    _check_finite_or_nan(arr, "targets")
    return arr


def _as_float_array(value: object, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EngineError(
            f"{name} must be numeric (float weights, NaN for no opinion); "
            f"got {type(value).__name__}: {exc}"
        ) from exc


def _check_finite_or_nan(arr: np.ndarray, name: str) -> None:
    infinite = np.isinf(arr)
    if infinite.any():
        where = tuple(int(x) for x in np.argwhere(infinite)[0])
        raise EngineError(
            f"{name} has {int(infinite.sum())} infinite value(s), first at {where}: "
            f"{float(arr[where])!r}; expected finite weights (fractions of equity) or NaN for "
            "'no opinion'. Check for divisions by zero in the strategy."
        )
