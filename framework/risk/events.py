"""Rule ids, exit reasons and the event table of the risk layer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.risk import _layout as L

# index = rule id of the kernel (``RULE_*`` in ``_layout.py``)
RULE_NAMES: tuple[str, ...] = (
    "sizing",
    "max_position",
    "max_group",
    "max_positions",
    "max_net",
    "max_gross",
    "stop_loss",
    "trailing_stop",
    "atr_stop",
    "take_profit",
    "time_stop",
    "drawdown_breaker",
    "losses_breaker",
    "breaker_resume",
    "breaker_block",
    "daily_loss_limit",
    "daily_loss_block",
    "calendar_filter",
    "drift_filter",
    "min_trade_value",
    "max_trades",
)

# index = exit reason code of a fill (``REASON_*``); trades still open report "end_of_data"
EXIT_REASONS: tuple[str, ...] = (
    "signal",
    "stop_loss",
    "trailing_stop",
    "atr_stop",
    "take_profit",
    "time_stop",
    "breaker",
    "daily_loss_limit",
    "end_of_data",
)

EVENT_COLUMNS: tuple[str, ...] = ("bar", "time", "symbol", "rule", "before", "after", "detail")

# what the ``before``/``after``/``detail`` numbers mean, per rule (for users reading the table)
RULE_HELP: dict[str, str] = {
    "sizing": "target weight before/after the sizing rule",
    "max_position": "target weight before/after the per-position cap",
    "max_group": "target weight before/after the group cap; detail = group gross",
    "max_positions": "target weight before/after (dropped: not among the largest)",
    "max_net": "target weight before/after the net cap; detail = net before",
    "max_gross": "target weight before/after the gross cap (incl. cash buffer); detail = gross",
    "stop_loss": "position shares before/after; detail = fill price",
    "trailing_stop": "position shares before/after; detail = fill price",
    "atr_stop": "position shares before/after; detail = fill price",
    "take_profit": "position shares before/after; detail = fill price",
    "time_stop": "position shares before/after; detail = bars held",
    "drawdown_breaker": "breaker state before/after; detail = drawdown from peak",
    "losses_breaker": "breaker state before/after; detail = consecutive losing trades",
    "breaker_resume": "breaker state before/after (cool-down over or manual resume)",
    "breaker_block": "order shares before/after (only reductions allowed)",
    "daily_loss_limit": "session start equity / equity at trip; detail = loss fraction",
    "daily_loss_block": "order shares before/after (no new risk this session)",
    "calendar_filter": "last target / held-back target (not a rebalance bar)",
    "drift_filter": "last target / held-back target; detail = |current weight - target|",
    "min_trade_value": "order shares before/after; detail = order value",
    "max_trades": "order shares before/after; detail = order value",
}


def events_frame(
    events_int: np.ndarray,
    events_float: np.ndarray,
    index: pd.DatetimeIndex,
    symbols: tuple[str, ...],
) -> pd.DataFrame:
    """The kernel's event records as a table (``symbol`` is ``"*"`` for portfolio events)."""
    bars = events_int[:, L.E_BAR]
    assets = events_int[:, L.E_ASSET]
    names = np.array((*symbols, "*"), dtype=object)
    return pd.DataFrame(
        {
            "bar": bars,
            "time": index[bars],
            "symbol": names[np.where(assets < 0, len(symbols), assets)],
            "rule": np.array(RULE_NAMES, dtype=object)[events_int[:, L.E_RULE]],
            "before": events_float[:, L.E_BEFORE],
            "after": events_float[:, L.E_AFTER],
            "detail": events_float[:, L.E_DETAIL],
        },
        columns=list(EVENT_COLUMNS),
    )


def event_counts(events: pd.DataFrame) -> dict[str, int]:
    """Number of events per rule (only rules that fired), for ``summary.json``."""
    if events is None or events.empty:
        return {}
    counts = events["rule"].value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items())}


def exit_reasons(
    trades: pd.DataFrame,
    fill_bars: np.ndarray,
    fill_assets: np.ndarray,
    fill_qty: np.ndarray,
    fill_reasons: np.ndarray,
    symbols: tuple[str, ...],
) -> np.ndarray:
    """Exit reason per trade: the reason of the last fill at the trade's exit bar and asset that
    reduces the trade's side; ``end_of_data`` for open trades.

    When a signal fill and a stop fill both close slices of one asset on the same bar (a
    partial reduction at the open, then a stop), every slice closed on that bar is labelled with
    the later (stop) reason.
    """
    out = np.full(len(trades), "signal", dtype=object)
    last: dict[tuple[int, int, int], int] = {}
    for b, a, q, r in zip(fill_bars, fill_assets, fill_qty, fill_reasons, strict=True):
        last[(int(b), int(a), 1 if q < 0 else -1)] = int(r)  # a sell closes a long (+1)
    codes = {s: k for k, s in enumerate(symbols)}
    sides = trades["side"].astype(str).to_numpy()
    syms = trades["symbol"].astype(str).to_numpy()
    bars = trades["exit_bar"].to_numpy()
    is_open = trades["is_open"].to_numpy()
    for t in range(len(trades)):
        if is_open[t]:
            out[t] = "end_of_data"
            continue
        key = (int(bars[t]), codes[syms[t]], 1 if sides[t] == "long" else -1)
        out[t] = EXIT_REASONS[last.get(key, 0)]
    return out


def rebalance_events(sim) -> pd.DataFrame:
    """One row per bar that traded: ``bar, time, n_trades, traded_value, turnover`` (traded
    value / equity at the previous close) and ``costs`` (commission + slippage + impact).

    Parameters
    ----------
    sim : framework.engine.SimResult
    """
    fills = sim.fills
    if fills.empty:
        return pd.DataFrame(
            columns=["bar", "time", "n_trades", "traded_value", "turnover", "costs"]
        )
    value = (fills["qty"].abs() * fills["price"]).to_numpy()
    costs = (fills["commission"] + fills["slippage_cost"] + fills["impact_cost"]).to_numpy()
    frame = pd.DataFrame({"bar": fills["bar"].to_numpy(), "value": value, "costs": costs})
    grouped = frame.groupby("bar", sort=True).agg(
        n_trades=("value", "size"), traded_value=("value", "sum"), costs=("costs", "sum")
    )
    bars = grouped.index.to_numpy()
    previous = np.concatenate(([sim.initial_cash], sim.equity[:-1]))[bars]
    return pd.DataFrame(
        {
            "bar": bars,
            "time": sim.index[bars],
            "n_trades": grouped["n_trades"].to_numpy(),
            "traded_value": grouped["traded_value"].to_numpy(),
            "turnover": grouped["traded_value"].to_numpy() / previous,
            "costs": grouped["costs"].to_numpy(),
        }
    )
