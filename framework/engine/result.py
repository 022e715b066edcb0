"""Result records of the engine: :class:`SimResult` and :class:`GridResult`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from framework.costs import CostSpec
from framework.engine.spec import EngineSpec
from framework.risk.events import EVENT_COLUMNS
from framework.risk.spec import RiskSpec


def _no_events() -> pd.DataFrame:
    return pd.DataFrame(columns=list(EVENT_COLUMNS))


@dataclass(frozen=True, eq=False)
class SimResult:
    """Outcome of :func:`framework.engine.simulate` (arrays are read-only).

    Attributes
    ----------
    equity, cash : (n,) ndarray
        Account equity and cash at each bar's close (positions marked at the close, or the last
        known close where a bar has none).
    positions : (n, m) ndarray
        Shares held per asset at each close (negative = short).
    gross_value : (n,) ndarray
        Sum of ``|shares * mark|`` over assets at each close.
    traded_value : (n,) ndarray
        Sum of ``|shares| * fill price`` of the fills of each bar.
    fills : DataFrame
        One row per fill: ``bar, time, symbol, qty`` (signed shares), ``price`` (slippage and
        impact included), ``commission, slippage_cost, impact_cost`` (currency). ``time`` is the
        label (close time) of the bar the fill happened in; with ``fill="next_open"`` the price is
        that bar's open.
    trades : DataFrame
        FIFO round trips per symbol: ``symbol, entry_time, exit_time, entry_bar, exit_bar, qty``
        (unsigned shares), ``side`` ("long"/"short"), ``entry_price, exit_price, pnl`` (net of
        commission; slippage and impact are in the prices), ``return_pct`` (pnl in percent of
        the entry value: 5.0 means 5%), ``bars_held, is_open``. Open trades are marked at the
        last known close: ``exit_time`` is NaT and ``exit_bar`` the last bar.
    costs : dict
        Totals in currency: ``commission``, ``slippage``, ``impact``.
    impact_skipped_fills : int
        Fills that got no impact because the bar had no volume or no volatility history.
    optimistic_fill : bool
        True when fills used the decision bar's close (``fill="close"``).
    index : DatetimeIndex
        Bar close times (UTC).
    symbols : tuple of str
    initial_cash : float
    spec, cost_spec, risk_spec
        The resolved configuration of the run.
    risk_events : DataFrame
        One row per applied risk rule: ``bar, time, symbol`` ("*" for the portfolio), ``rule,
        before, after, detail`` (see ``framework.risk.events.RULE_HELP``). Decision-time rules
        are stamped with the decision bar, stops and order rules with the fill bar.
    """

    equity: np.ndarray
    cash: np.ndarray
    positions: np.ndarray
    gross_value: np.ndarray
    traded_value: np.ndarray
    fills: pd.DataFrame
    trades: pd.DataFrame
    costs: dict[str, float]
    impact_skipped_fills: int
    optimistic_fill: bool
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    initial_cash: float
    spec: EngineSpec = field(default_factory=EngineSpec)
    cost_spec: CostSpec = field(default_factory=CostSpec)
    risk_events: pd.DataFrame = field(default_factory=_no_events)
    risk_spec: RiskSpec = field(default_factory=RiskSpec.off)

    @property
    def returns(self) -> pd.Series:
        """Simple returns of equity per bar; the first is ``equity[0] / initial_cash - 1``."""
        previous = np.concatenate(([self.initial_cash], self.equity[:-1]))
        return pd.Series(self.equity / previous - 1.0, index=self.index, name="returns")

    @property
    def exposure(self) -> np.ndarray:
        """Gross position value / equity at each close, shape (n,)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.gross_value / self.equity

    @property
    def turnover(self) -> np.ndarray:
        """Traded value of each bar / equity at the previous close (initial cash on bar 0)."""
        previous = np.concatenate(([self.initial_cash], self.equity[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.traded_value / previous


@dataclass(frozen=True, eq=False)
class GridResult:
    """Outcome of :func:`framework.engine.simulate_grid`: ``k`` portfolios on one asset.

    Attributes
    ----------
    equity : (n, k) ndarray
        Equity of each portfolio at each close.
    n_fills, commission, slippage, impact, traded_value, impact_skipped_fills, bars_in_market :
    (k,) ndarray
        Per-portfolio totals (costs and traded value in currency; ``bars_in_market`` counts closes
        with a non-zero position).
    index : DatetimeIndex
    symbol : str
    initial_cash : float
    optimistic_fill : bool
    risk_events : (k,) ndarray
        Number of risk events per portfolio.
    spec, cost_spec, risk_spec
        The resolved configuration of the run.
    """

    equity: np.ndarray
    n_fills: np.ndarray
    commission: np.ndarray
    slippage: np.ndarray
    impact: np.ndarray
    traded_value: np.ndarray
    impact_skipped_fills: np.ndarray
    bars_in_market: np.ndarray
    index: pd.DatetimeIndex
    symbol: str
    initial_cash: float
    optimistic_fill: bool
    spec: EngineSpec = field(default_factory=EngineSpec)
    cost_spec: CostSpec = field(default_factory=CostSpec)
    risk_events: np.ndarray | None = None
    risk_spec: RiskSpec = field(default_factory=RiskSpec.off)

    @property
    def n_portfolios(self) -> int:
        return self.equity.shape[1]

    @property
    def returns(self) -> np.ndarray:
        """Simple returns per bar and portfolio, shape (n, k); row 0 is against initial cash."""
        previous = np.vstack(
            (np.full((1, self.equity.shape[1]), self.initial_cash), self.equity[:-1])
        )
        return self.equity / previous - 1.0
