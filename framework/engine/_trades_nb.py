"""Jitted FIFO round-trip matching of fills (numpy + numba only; slow twin in ``reference.py``).

Each fill that adds to a position (or opens one) becomes a lot; each fill that reduces it closes
the oldest lots first. A closed slice of a lot is one trade. Commissions are shared out pro rata
per share, so a fill that both closes and reverses a position charges each part its share;
slippage and impact are already inside the fill prices. Lots still open at the end are reported
as open trades marked at the last known price.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# output columns
R_ASSET = 0  # int columns
R_ENTRY_BAR = 1
R_EXIT_BAR = 2
R_IS_OPEN = 3
R_QTY = 0  # float columns (qty is unsigned; side is +1 long / -1 short)
R_SIDE = 1
R_ENTRY_PRICE = 2
R_EXIT_PRICE = 3
R_PNL = 4

# a lot or an order slice smaller than this fraction of its size is float noise, not shares
_DUST = 1e-9


@njit(cache=True)
def _emit_nb(out_int, out_float, t, asset, entry_bar, exit_bar, is_open, lot):
    qty, side, entry_price, exit_price, pnl = lot
    out_int[t, R_ASSET] = asset
    out_int[t, R_ENTRY_BAR] = entry_bar
    out_int[t, R_EXIT_BAR] = exit_bar
    out_int[t, R_IS_OPEN] = is_open
    out_float[t, R_QTY] = qty
    out_float[t, R_SIDE] = side
    out_float[t, R_ENTRY_PRICE] = entry_price
    out_float[t, R_EXIT_PRICE] = exit_price
    out_float[t, R_PNL] = pnl
    return t + 1


@njit(cache=True)
def fifo_trades_nb(bars, assets, qty, price, commission, marks, last_bar):
    """Match fills into FIFO round trips per asset.

    Parameters
    ----------
    bars, assets : (f,) int64
        Bar and asset of each fill, in execution order.
    qty, price, commission : (f,) float64
        Signed shares, fill price (costs included) and commission of each fill.
    marks : (m,) float64
        Last known price per asset, for open trades.
    last_bar : int
        Bar at which open trades are marked.

    Returns
    -------
    out_int (t, 4) int64 and out_float (t, 5) float64, columns ``R_*``.
    """
    f = bars.shape[0]
    capacity = 3 * f + 1  # each fill closes some whole lots, at most one partial, and opens one
    out_int = np.empty((capacity, 4), np.int64)
    out_float = np.empty((capacity, 5), np.float64)
    lot_bar = np.empty(f, np.int64)
    lot_qty = np.empty(f)
    lot_size = np.empty(f)
    lot_price = np.empty(f)
    lot_fee = np.empty(f)  # commission per share paid on entry
    order = np.argsort(assets, kind="mergesort")  # stable: keeps execution order per asset
    t = 0
    r = 0
    while r < f:
        asset = assets[order[r]]
        head = 0
        tail = 0
        side = 0.0
        while r < f and assets[order[r]] == asset:
            x = order[r]
            r += 1
            sign = 1.0 if qty[x] > 0.0 else -1.0
            rest = abs(qty[x])
            fee_per_share = commission[x] / rest
            if side == 0.0 or sign == side:
                lot_bar[tail], lot_qty[tail], lot_size[tail] = bars[x], rest, rest
                lot_price[tail], lot_fee[tail] = price[x], fee_per_share
                tail += 1
                side = sign
                continue
            dust = _DUST * rest
            while rest > dust and head < tail:
                take = min(rest, lot_qty[head])
                pnl = side * (price[x] - lot_price[head]) * take
                pnl -= (lot_fee[head] + fee_per_share) * take
                lot = (take, side, lot_price[head], price[x], pnl)
                t = _emit_nb(out_int, out_float, t, asset, lot_bar[head], bars[x], 0, lot)
                lot_qty[head] -= take
                rest -= take
                if lot_qty[head] <= _DUST * lot_size[head]:
                    head += 1
            if head == tail:
                side = 0.0
            if rest > dust:  # the fill reversed the position: the rest opens a new lot
                lot_bar[tail], lot_qty[tail], lot_size[tail] = bars[x], rest, rest
                lot_price[tail], lot_fee[tail] = price[x], fee_per_share
                tail += 1
                side = sign
        for h in range(head, tail):
            mark = marks[asset]
            pnl = side * (mark - lot_price[h]) * lot_qty[h] - lot_fee[h] * lot_qty[h]
            lot = (lot_qty[h], side, lot_price[h], mark, pnl)
            t = _emit_nb(out_int, out_float, t, asset, lot_bar[h], last_bar, 1, lot)
    return out_int[:t], out_float[:t]
