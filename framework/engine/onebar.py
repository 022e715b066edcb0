"""The engine's fill rules for one bar at a time: what a simulated broker needs.

A live simulated broker receives bars one by one and must fill orders exactly as a backtest
would: at the bar's open, with the cost model, the participation cap and the leverage rule of
the engine's own jitted stage, and exits (stops) priced by the same cost functions. This module
is that stage's public face; the kernels stay private to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.costs import CostSpec
from framework.engine import _layout as EL
from framework.engine._fills_nb import price_fill_nb, return_volatility_nb
from framework.engine._orders_nb import collect_orders_nb, execute_orders_nb, value_account_nb
from framework.engine.core import _params
from framework.engine.spec import EngineSpec
from framework.risk._nb import new_risk_state_nb
from framework.risk.spec import RiskSpec


@dataclass(frozen=True)
class OpenFill:
    """One execution at a bar's open: signed shares, price, commission, slippage and impact
    costs (account currency)."""

    asset: int
    quantity: float
    price: float
    commission: float
    slippage: float
    impact: float


class OneBarFiller:
    """Fill market orders at one bar's open, and price exits, with the engine's rules.

    Parameters
    ----------
    engine : EngineSpec
        ``initial_cash``, ``allow_short``, ``max_leverage`` ... as in a backtest.
    costs : CostSpec
    """

    def __init__(self, engine: EngineSpec, costs: CostSpec) -> None:
        self.params = _params(engine, costs)
        self._off = RiskSpec.off().table()[0]

    @property
    def impact_window(self) -> int:
        """Closes of history the impact model reads (plus the current bar's)."""
        return int(self.params[EL.P_IMPACT_WINDOW])

    def fill_at_open(self, open_: np.ndarray, volume: np.ndarray, closes: np.ndarray,
                     shares: np.ndarray, marks: np.ndarray, cash: float,
                     remaining: np.ndarray) -> tuple[list[OpenFill], dict[int, float], float]:
        """Fill ``remaining`` shares per asset (signed, 0: none) at ``open_``.

        Parameters
        ----------
        open_, volume : (m,) ndarray
            The bar's open prices and volumes.
        closes : (k, m) ndarray
            Recent closes, the current bar's last (the impact model's volatility).
        shares : (m,) ndarray
            Held shares; updated in place by the fills.
        marks : (m,) ndarray
            Last known prices (for an asset without an open).
        cash : float
        remaining : (m,) ndarray
            Shares still to trade per asset; the participation cap may leave some for later.

        Returns
        -------
        fills : list of OpenFill
        requested : dict of asset -> shares
            What this bar's slice asked for (the cap applied): a fill below it means the
            leverage rule cut the order, and the engine drops the rest.
        cash : float
            Cash after the fills.
        """
        m = len(open_)
        prices = np.asarray(open_, np.float64)
        volume = np.asarray(volume, np.float64)
        account = np.array([cash, 0.0, 0.0])
        value_account_nb(prices, marks, shares, account)
        book = (np.empty(m, np.int64), np.empty(m), np.empty(m), np.empty((EL.N_DETAIL, m)))
        count = collect_orders_nb(prices, volume, remaining.copy(), self.params, *book[:3])
        if count == 0:
            return [], {}, cash
        requested = {int(book[0][s]): float(book[1][s]) for s in range(count)}
        fills_int = np.empty((m, EL.N_FILL_INT), np.int64)
        fills_float = np.empty((m, 5))
        totals = np.zeros(EL.N_TOTALS)
        state = (shares, marks.copy(), account, self.params, totals, fills_int, fills_float,
                 np.full(m, np.nan), np.zeros(m))
        astate, gstate = new_risk_state_nb(m, cash)
        events = (np.empty((0, 3), np.int64), np.empty((0, 3)))
        hook = (False, self._off, astate, gstate, events, False, np.empty(0))
        execute_orders_nb(closes.shape[0] - 1, count, book, prices, closes, volume, state, hook)
        fills = [OpenFill(int(fills_int[r, EL.F_ASSET]), *(float(x) for x in fills_float[r]))
                 for r in range(int(totals[EL.T_FILLS]))]
        return fills, requested, float(account[EL.A_CASH])

    def price_exit(self, quantity: float, price: float, volume: float, closes: np.ndarray,
                   asset: int) -> tuple[float, float, float, float]:
        """Fill price, commission, slippage and impact of closing ``quantity`` shares (signed:
        the trade, e.g. -100 sells) at ``price``, with no participation cap (as the engine's
        stop exits)."""
        sigma = np.nan
        if self.params[EL.P_IMPACT_COEF] > 0.0:
            sigma = return_volatility_nb(closes, closes.shape[0] - 1, asset, self.impact_window)
        side = 1.0 if quantity > 0 else -1.0
        fill = price_fill_nb(abs(quantity), side, price, float(volume), sigma, self.params)
        return float(fill[0]), float(fill[1]), float(fill[2]), float(fill[3])
