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
def group_by_asset_nb(assets, m):
    """Fill indices grouped by asset, in execution order within each (a stable counting sort)."""
    starts = np.zeros(m + 1, np.int64)
    for x in range(assets.shape[0]):
        starts[assets[x] + 1] += 1
    for j in range(m):
        starts[j + 1] += starts[j]
    order = np.empty(assets.shape[0], np.int64)
    for x in range(assets.shape[0]):
        order[starts[assets[x]]] = x
        starts[assets[x]] += 1
    return order


@njit(cache=True)
def _match_nb(bars, assets, qty, price, commission, marks, last_bar, lots, out_int, out_float):
    """One FIFO pass over fills sorted by asset; writes trades when ``out_int`` has rows.

    Returns the number of trades, so a first pass with empty outputs sizes the second.
    """
    write = out_int.shape[0] > 0
    lot_bar, lot_values = lots  # lot_values rows: qty left, size, price, fee per share
    order = group_by_asset_nb(assets, marks.shape[0])
    f = bars.shape[0]
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
            if side != 0.0 and sign != side:
                dust = _DUST * rest
                while rest > dust and head < tail:
                    take = min(rest, lot_values[0, head])
                    if write:
                        pnl = side * (price[x] - lot_values[2, head]) * take
                        pnl -= (lot_values[3, head] + fee_per_share) * take
                        lot = (take, side, lot_values[2, head], price[x], pnl)
                        _emit_nb(out_int, out_float, t, asset, lot_bar[head], bars[x], 0, lot)
                    t += 1
                    lot_values[0, head] -= take
                    rest -= take
                    if lot_values[0, head] <= _DUST * lot_values[1, head]:
                        head += 1
                if head == tail:
                    side = 0.0
                if not rest > dust:
                    continue
            # adds to the position, or the rest of a fill that reversed it: a new lot
            lot_bar[tail] = bars[x]
            lot_values[0, tail] = rest
            lot_values[1, tail] = rest
            lot_values[2, tail] = price[x]
            lot_values[3, tail] = fee_per_share
            tail += 1
            side = sign
        for h in range(head, tail):
            if write:
                left = lot_values[0, h]
                mark = marks[asset]
                pnl = side * (mark - lot_values[2, h]) * left - lot_values[3, h] * left
                lot = (left, side, lot_values[2, h], mark, pnl)
                _emit_nb(out_int, out_float, t, asset, lot_bar[h], last_bar, 1, lot)
            t += 1
    return t


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
    out_int (t, 4) int64 and out_float (t, 5) float64, columns ``R_*``, grouped by asset.
    Two passes (count, then write) keep memory at the exact size for millions of fills.
    """
    f = bars.shape[0]
    most = np.bincount(assets).max() if f > 0 else 0  # lots of one asset never exceed its fills
    lots = (np.empty(most, np.int64), np.empty((4, most)))
    args = (bars, assets, qty, price, commission, marks, last_bar, lots)
    count = _match_nb(*args, np.empty((0, 4), np.int64), np.empty((0, 5)))
    out_int = np.empty((count, 4), np.int64)
    out_float = np.empty((count, 5), np.float64)
    _match_nb(*args, out_int, out_float)
    return out_int, out_float
