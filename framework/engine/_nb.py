"""Jitted simulation kernels (numpy + numba only; see ``reference.py`` for the slow twin).

:func:`run_nb` is one left-to-right pass over the bars. At each bar it

1. receives the targets decided at the previous close (``next_open``) or at this close
   (``close``) and turns new ones into pending targets;
2. values the account at the fill prices and sizes an order (in shares) for every pending target
   whose asset has a fill price;
3. caps each order by the bar's volume (participation); the rest stays for later bars;
4. **risk hook**: a later risk layer adjusts the sized orders here, before anything fills;
5. fills the orders that only reduce positions, then the ones that add exposure, scaled by one
   common factor so gross exposure stays within ``max_leverage * equity`` after costs (with
   leverage 1 and no shorts: cash never goes below zero); each group in ascending signed value;
6. marks positions at the close and records equity.

Every step is a small ``@njit`` helper so the rules can be read (and tested) one at a time.
Parameters travel in one float64 vector indexed by the ``P_*`` constants below, built by
``core.py``; cost totals come back in a vector indexed by the ``T_*`` constants.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# -- parameter vector layout (module constants are compile-time constants for numba) ----------
P_INITIAL_CASH = 0
P_FILL_CLOSE = 1  # 1.0: fill target[i] at close[i]; 0.0: at open[i + 1]
P_EVERY_BAR = 2  # 1.0: re-size every bar; 0.0: only when the target changes
P_WHOLE_SHARES = 3
P_ALLOW_SHORT = 4
P_MAX_LEVERAGE = 5
P_PER_SHARE = 6  # commission, currency per share
P_MIN_COMMISSION = 7  # currency per fill
P_COMMISSION_RATE = 8  # fraction of traded value
P_COMMISSION_CAP = 9  # fraction of traded value, NaN = no cap
P_SLIPPAGE = 10  # fraction of price
P_IMPACT_COEF = 11
P_IMPACT_WINDOW = 12
P_MAX_PARTICIPATION = 13  # fraction of bar volume, NaN = no cap
N_PARAMS = 14

# -- totals vector layout ---------------------------------------------------------------------
T_COMMISSION = 0
T_SLIPPAGE = 1
T_IMPACT = 2
T_FILLS = 3
T_IMPACT_SKIPPED = 4
T_TRADED_VALUE = 5
T_BARS_IN_MARKET = 6
N_TOTALS = 7

# -- account vector layout: cash and the long/short position values at the current fill prices -
A_CASH = 0
A_LONG = 1
A_SHORT = 2

# orders smaller than this fraction of the position are float noise, not trades
ORDER_DUST = 1e-9
# halvings of [0, 1] when searching the exposure scale: below double precision of the factor
BISECTION_STEPS = 60

# -- per-order detail rows, filled when a bar's orders are executed ------------------------------
D_SIGMA = 0  # impact volatility
D_FRACTION = 1  # slippage + impact at the full order size
D_CLOSING = 2  # shares that reduce the current position
D_OPENING = 3  # shares that add exposure
D_SHARES = 4  # shares to fill after the leverage rule (orders that add exposure)
N_DETAIL = 5

# -- fill record columns ----------------------------------------------------------------------
F_BAR = 0  # int columns
F_ASSET = 1
F_QTY = 0  # float columns
F_PRICE = 1
F_COMMISSION = 2
F_SLIPPAGE = 3
F_IMPACT = 4


# ============================== cost helpers =================================================
@njit(cache=True)
def commission_nb(shares, fill_price, params):
    """Commission of one fill of ``shares`` (> 0) at ``fill_price``, in currency."""
    value = shares * fill_price
    fee = shares * params[P_PER_SHARE] + value * params[P_COMMISSION_RATE]
    if fee < params[P_MIN_COMMISSION]:
        fee = params[P_MIN_COMMISSION]
    cap = params[P_COMMISSION_CAP]
    if not np.isnan(cap) and fee > value * cap:
        fee = value * cap
    return fee


@njit(cache=True)
def return_volatility_nb(close, i, j, window):
    """Sample std of the close-to-close returns of asset ``j`` over bars ``i-window .. i-1``.

    Only bars before ``i`` are used, so the value is known before bar ``i`` opens. Returns whose
    either close is missing are skipped; NaN when fewer than two remain.
    """
    start = max(1, i - window)
    count = 0
    total = 0.0
    for k in range(start, i):
        prev, now = close[k - 1, j], close[k, j]
        if np.isfinite(prev) and np.isfinite(now):
            total += now / prev - 1.0
            count += 1
    if count < 2:
        return np.nan
    mean = total / count
    squares = 0.0
    for k in range(start, i):
        prev, now = close[k - 1, j], close[k, j]
        if np.isfinite(prev) and np.isfinite(now):
            dev = (now / prev - 1.0) - mean
            squares += dev * dev
    return np.sqrt(squares / (count - 1))


@njit(cache=True)
def adverse_fraction_nb(shares, bar_volume, sigma, params):
    """Slippage plus square-root impact as a fraction of price.

    Returns ``(total fraction, impact fraction, impact skipped)``; impact is skipped (and the
    fill counted) when the bar has no volume or the volatility is unknown.
    """
    slip = params[P_SLIPPAGE]
    coef = params[P_IMPACT_COEF]
    if coef == 0.0:
        return slip, 0.0, False
    if not bar_volume > 0.0 or np.isnan(sigma):
        return slip, 0.0, True
    impact = coef * sigma * np.sqrt(shares / bar_volume)
    # never move a sell price below zero
    if impact > 1.0 - slip:
        impact = 1.0 - slip
    return slip + impact, impact, False


# ============================== order sizing =================================================
@njit(cache=True)
def size_order_nb(weight, equity, price, position, whole_shares):
    """Shares to trade so the position becomes ``weight`` of ``equity`` at ``price``.

    A wiped-out account (equity <= 0) can only flatten. An order below ``ORDER_DUST`` of the
    position is rounding noise from re-sizing an unchanged weight and is dropped (it would
    otherwise pay a minimum commission).
    """
    if not equity > 0.0:
        weight = 0.0
    order = weight * equity / price - position
    if abs(order) <= ORDER_DUST * abs(position):
        return 0.0
    if whole_shares:
        order = np.trunc(order)
    return order


@njit(cache=True)
def cap_participation_nb(order, bar_volume, params):
    """The part of ``order`` that fits in ``max_participation`` of the bar's volume."""
    limit = params[P_MAX_PARTICIPATION]
    if np.isnan(limit) or not bar_volume > 0.0:
        return order
    room = limit * bar_volume
    if params[P_WHOLE_SHARES] != 0.0:
        room = np.floor(room)
    if abs(order) <= room:
        return order
    return room if order > 0.0 else -room


# ============================== leverage rule and fills ======================================
@njit(cache=True)
def scaled_shares_nb(closing, opening, scale, whole_shares):
    """Shares of an order whose exposure-adding part is scaled by ``scale`` in [0, 1]."""
    extra = scale * opening
    if whole_shares:
        extra = np.floor(extra)
    return closing + extra


@njit(cache=True)
def exposure_cost_nb(shares, closing, side, price, fraction, params):
    """What one fill of ``shares`` uses of the leverage budget (see :func:`exposure_scale_nb`)."""
    if not shares > 0.0:
        return 0.0
    lev = params[P_MAX_LEVERAGE]
    unit = price / lev + price * fraction
    fee = commission_nb(shares, price * (1.0 + side * fraction), params)
    return shares * unit + fee - 2.0 * closing * price / lev


@njit(cache=True)
def exposure_total_nb(scale, count, book, prices, params):
    """Budget used by all exposure-adding orders when their adding parts are scaled."""
    assets, orders, _, detail = book
    whole_shares = params[P_WHOLE_SHARES] != 0.0
    total = 0.0
    for s in range(count):
        opening = detail[D_OPENING, s]
        if not opening > 0.0:
            continue
        closing = detail[D_CLOSING, s]
        shares = abs(orders[s])
        if scale != 1.0:
            shares = scaled_shares_nb(closing, opening, scale, whole_shares)
        side = 1.0 if orders[s] > 0.0 else -1.0
        j = assets[s]
        total += exposure_cost_nb(shares, closing, side, prices[j], detail[D_FRACTION, s], params)
    return total


@njit(cache=True)
def max_shares_nb(budget, unit, fill_price, params):
    """Largest ``q >= 0`` with ``q * unit + commission(q) <= budget`` (one order, exact).

    The commission is ``min(max(a * q, minimum), cap * fill_price * q)``, so the cost is
    increasing and piecewise linear in ``q``: the inverse of a max of lines is the min of their
    inverses and vice versa.
    """
    if not budget > 0.0:
        return 0.0
    per_share = params[P_PER_SHARE] + fill_price * params[P_COMMISSION_RATE]
    shares = min(budget / (unit + per_share), (budget - params[P_MIN_COMMISSION]) / unit)
    cap = params[P_COMMISSION_CAP]
    if not np.isnan(cap):
        shares = max(shares, budget / (unit + cap * fill_price))
    return max(shares, 0.0)


@njit(cache=True)
def exposure_scale_nb(count, book, prices, budget, params):
    """Largest common factor in [0, 1] for the adding parts of several orders (bisection)."""
    if not exposure_total_nb(0.0, count, book, prices, params) <= budget:
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if exposure_total_nb(middle, count, book, prices, params) <= budget:
            low = middle
        else:
            high = middle
    return low


@njit(cache=True)
def allot_exposure_nb(count, book, prices, account, params):
    """Set ``detail[D_SHARES]`` for the orders that add exposure (the leverage rule).

    After the fills, gross exposure must stay within ``max_leverage * equity`` (with leverage 1
    and no shorts: cash stays >= 0 after costs). An order of ``q`` shares of which ``c`` close
    an existing position changes gross by ``(q - 2c) * price`` and equity by ``-(q * price *
    fraction + commission)``; dividing the constraint by the leverage, the orders together
    must satisfy ``sum(q * unit + commission - 2 c * price / lev) <= budget``. When they do
    not, all adding parts shrink by one common factor, so no order is favoured: solved exactly
    for a single order, by bisection (the cost increases with the factor) for several.
    Closing parts are never cut. Slippage and impact are priced at the full order size, an
    upper bound, so the fills stay within the budget.
    """
    assets, orders, _, detail = book
    whole_shares = params[P_WHOLE_SHARES] != 0.0
    lev = params[P_MAX_LEVERAGE]
    budget = (
        account[A_CASH] + account[A_LONG] * (1.0 - 1.0 / lev) - account[A_SHORT] * (1.0 + 1.0 / lev)
    )
    adding = 0
    last = -1
    for s in range(count):
        if detail[D_OPENING, s] > 0.0:
            adding += 1
            last = s
    if adding == 0:
        return
    if exposure_total_nb(1.0, count, book, prices, params) <= budget:
        for s in range(count):
            detail[D_SHARES, s] = abs(orders[s])
        return
    if adding == 1:
        closing = detail[D_CLOSING, last]
        price = prices[assets[last]]
        fraction = detail[D_FRACTION, last]
        side = 1.0 if orders[last] > 0.0 else -1.0
        unit = price / lev + price * fraction
        most = max_shares_nb(
            budget + 2.0 * closing * price / lev, unit, price * (1.0 + side * fraction), params
        )
        if whole_shares:
            most = np.floor(most)
        detail[D_SHARES, last] = max(closing, min(abs(orders[last]), most))
        return
    scale = exposure_scale_nb(count, book, prices, budget, params)
    for s in range(count):
        detail[D_SHARES, s] = scaled_shares_nb(
            detail[D_CLOSING, s], detail[D_OPENING, s], scale, whole_shares
        )


@njit(cache=True)
def price_fill_nb(shares, side, price, bar_volume, sigma, params):
    """Price one fill: ``(fill price, commission, slippage cost, impact cost, impact skipped)``."""
    fraction, impact, skipped = adverse_fraction_nb(shares, bar_volume, sigma, params)
    fill_price = price * (1.0 + side * fraction)
    fee = commission_nb(shares, fill_price, params)
    return (
        fill_price,
        fee,
        shares * price * params[P_SLIPPAGE],
        shares * price * impact,
        skipped,
    )


@njit(cache=True)
def apply_fill_nb(j, filled, fill_price, fee, price, positions, account):
    """Move cash and shares for one fill; keep the long/short values (at ``price``) current."""
    old = positions[j]
    new = old + filled
    account[A_CASH] -= filled * fill_price + fee
    account[A_LONG] += (max(new, 0.0) - max(old, 0.0)) * price
    account[A_SHORT] += (max(-new, 0.0) - max(-old, 0.0)) * price
    positions[j] = new


# ============================== per-bar stages ===============================================
@njit(cache=True)
def receive_targets_nb(row, params, last_target, pending, remaining):
    """Turn the targets of one decision bar into pending targets (NaN = no opinion)."""
    every_bar = params[P_EVERY_BAR] != 0.0
    allow_short = params[P_ALLOW_SHORT] != 0.0
    for j in range(row.shape[0]):
        weight = row[j]
        if np.isnan(weight):
            continue
        if not allow_short and weight < 0.0:
            weight = 0.0
        if every_bar or weight != last_target[j]:
            # a new target supersedes whatever is left of the previous order
            pending[j] = weight
            remaining[j] = 0.0
            last_target[j] = weight


@njit(cache=True)
def has_work_nb(pending, remaining):
    """True when some asset has a pending target or an unfilled order."""
    # an explicit loop: numba does not compile any() over a generator
    for j in range(pending.shape[0]):  # noqa: SIM110
        if not np.isnan(pending[j]) or remaining[j] != 0.0:
            return True
    return False


@njit(cache=True)
def value_account_nb(prices, marks, positions, account):
    """Equity at the fill prices (last mark where an asset has none); sets long/short values."""
    equity = account[A_CASH]
    long_value = 0.0
    short_value = 0.0
    for j in range(positions.shape[0]):
        shares = positions[j]
        if shares == 0.0:
            continue
        price = prices[j] if np.isfinite(prices[j]) else marks[j]
        value = shares * price
        equity += value
        if shares > 0.0:
            long_value += value
        else:
            short_value -= value
    account[A_LONG] = long_value
    account[A_SHORT] = short_value
    return equity


@njit(cache=True)
def size_pending_nb(prices, equity, positions, pending, remaining, params):
    """Size an order for every pending target whose asset has a fill price on this bar."""
    whole_shares = params[P_WHOLE_SHARES] != 0.0
    for j in range(positions.shape[0]):
        if np.isnan(pending[j]) or not np.isfinite(prices[j]):
            continue  # no price (not trading yet, halted): the target waits
        remaining[j] = size_order_nb(pending[j], equity, prices[j], positions[j], whole_shares)
        pending[j] = np.nan


@njit(cache=True)
def collect_orders_nb(prices, volume_row, remaining, params, assets, orders, values):
    """List this bar's orders (volume-capped); return how many. The uncapped rest stays."""
    count = 0
    for j in range(remaining.shape[0]):
        if remaining[j] == 0.0 or not np.isfinite(prices[j]):
            continue
        order = cap_participation_nb(remaining[j], volume_row[j], params)
        if order == 0.0:
            continue
        remaining[j] -= order
        assets[count] = j
        orders[count] = order
        values[count] = order * prices[j]
        count += 1
    return count


@njit(cache=True)
def _grow_nb(fills_int, fills_float):
    size = fills_int.shape[0]
    bigger_int = np.empty((2 * size, fills_int.shape[1]), np.int64)
    bigger_float = np.empty((2 * size, fills_float.shape[1]), np.float64)
    bigger_int[:size] = fills_int
    bigger_float[:size] = fills_float
    return bigger_int, bigger_float


@njit(cache=True)
def prepare_orders_nb(i, count, book, close, volume_row, positions, params):
    """Per order: impact volatility, adverse fraction at full size, closing and adding shares."""
    assets, orders, _, detail = book
    window = int(params[P_IMPACT_WINDOW])
    for s in range(count):
        j = assets[s]
        shares = abs(orders[s])
        sigma = np.nan
        if params[P_IMPACT_COEF] > 0.0:
            sigma = return_volatility_nb(close, i, j, window)
        fraction, _, _ = adverse_fraction_nb(shares, volume_row[j], sigma, params)
        closing = 0.0
        if positions[j] * orders[s] < 0.0:
            closing = min(shares, abs(positions[j]))
        detail[D_SIGMA, s] = sigma
        detail[D_FRACTION, s] = fraction
        detail[D_CLOSING, s] = closing
        detail[D_OPENING, s] = shares - closing


@njit(cache=True)
def execute_orders_nb(i, count, book, prices, close, volume_row, state, record):
    """Fill this bar's orders: first those that only reduce positions, then those that add
    exposure, scaled together to fit the leverage rule; each group in ascending signed value
    (sells first). Records and totals the fills.

    ``book`` is ``(assets, orders, values, detail)``; ``state`` is ``(positions, marks, account,
    params, totals, fills_int, fills_float)``. Returns the (possibly grown) fill buffers and the
    bar's traded value.
    """
    positions, marks, account, params, totals, fills_int, fills_float = state
    assets, orders, values, detail = book
    prepare_orders_nb(i, count, book, close, volume_row, positions, params)
    sequence = np.argsort(values[:count], kind="mergesort")  # stable: ties keep asset order
    traded = 0.0
    for adding in (False, True):
        if adding:
            allot_exposure_nb(count, book, prices, account, params)
        for r in range(count):
            s = sequence[r]
            if (detail[D_OPENING, s] > 0.0) != adding:
                continue
            shares = detail[D_SHARES, s] if adding else abs(orders[s])
            if not shares > 0.0:
                continue
            j = assets[s]
            side = 1.0 if orders[s] > 0.0 else -1.0
            fill_price, fee, slip_cost, impact_cost, skipped = price_fill_nb(
                shares, side, prices[j], volume_row[j], detail[D_SIGMA, s], params
            )
            apply_fill_nb(j, side * shares, fill_price, fee, prices[j], positions, account)
            if np.isnan(marks[j]):
                marks[j] = prices[j]  # filled before its first close: mark at the fill bar's price
            traded += shares * fill_price
            n_fills = int(totals[T_FILLS])
            totals[T_FILLS] += 1.0
            totals[T_COMMISSION] += fee
            totals[T_SLIPPAGE] += slip_cost
            totals[T_IMPACT] += impact_cost
            totals[T_TRADED_VALUE] += shares * fill_price
            if skipped:
                totals[T_IMPACT_SKIPPED] += 1.0
            if record:
                if n_fills == fills_int.shape[0]:
                    fills_int, fills_float = _grow_nb(fills_int, fills_float)
                fills_int[n_fills, F_BAR] = i
                fills_int[n_fills, F_ASSET] = j
                fills_float[n_fills, F_QTY] = side * shares
                fills_float[n_fills, F_PRICE] = fill_price
                fills_float[n_fills, F_COMMISSION] = fee
                fills_float[n_fills, F_SLIPPAGE] = slip_cost
                fills_float[n_fills, F_IMPACT] = impact_cost
    return fills_int, fills_float, traded


@njit(cache=True)
def mark_to_close_nb(close_row, marks, positions, cash):
    """Equity and gross position value at the close (a missing close keeps the last mark)."""
    equity = cash
    gross = 0.0
    for j in range(positions.shape[0]):
        if np.isfinite(close_row[j]):
            marks[j] = close_row[j]
        if positions[j] != 0.0:
            value = positions[j] * marks[j]
            equity += value
            gross += abs(value)
    return equity, gross


# ============================== the pass =====================================================
@njit(cache=True)
def run_nb(open_, close, volume, target, params, equity, per_bar, positions_out, record):
    """Simulate one portfolio over all bars.

    Parameters
    ----------
    open_, close, volume, target : (n, m) float64
    params : (N_PARAMS,) float64
    equity : (n,) float64, written
    per_bar : (3, n) float64, written when ``record``: cash, gross value, traded value
    positions_out : (n, m) float64, written when ``record``
    record : bool
        Also record per-bar arrays and individual fills (off for parameter grids).

    Returns
    -------
    fills_int (f, 2) int64, fills_float (f, 5) float64, totals (N_TOTALS,) float64 and the
    final marks (m,) float64 (last known price per asset).
    """
    n, m = close.shape
    fill_close = params[P_FILL_CLOSE] != 0.0
    positions = np.zeros(m)
    marks = np.full(m, np.nan)
    last_target = np.full(m, np.nan)
    pending = np.full(m, np.nan)
    remaining = np.zeros(m)
    assets = np.empty(m, np.int64)
    orders = np.empty(m)
    values = np.empty(m)
    book = (assets, orders, values, np.empty((N_DETAIL, m)))
    account = np.zeros(3)
    account[A_CASH] = params[P_INITIAL_CASH]
    totals = np.zeros(N_TOTALS)
    capacity = 256 if record else 1
    fills_int = np.empty((capacity, 2), np.int64)
    fills_float = np.empty((capacity, 5), np.float64)
    for i in range(n):
        source = i if fill_close else i - 1
        if source >= 0:
            receive_targets_nb(target[source], params, last_target, pending, remaining)
        traded = 0.0
        if has_work_nb(pending, remaining):
            prices = close[i] if fill_close else open_[i]
            equity_now = value_account_nb(prices, marks, positions, account)
            size_pending_nb(prices, equity_now, positions, pending, remaining, params)
            count = collect_orders_nb(prices, volume[i], remaining, params, assets, orders, values)
            # RISK HOOK: a risk layer may rescale or drop orders[:count] here, before any fill.
            if count > 0:
                state = (positions, marks, account, params, totals, fills_int, fills_float)
                fills_int, fills_float, traded = execute_orders_nb(
                    i, count, book, prices, close, volume[i], state, record
                )
        equity_close, gross = mark_to_close_nb(close[i], marks, positions, account[A_CASH])
        equity[i] = equity_close
        if gross > 0.0:
            totals[T_BARS_IN_MARKET] += 1.0
        if record:
            per_bar[0, i] = account[A_CASH]
            per_bar[1, i] = gross
            per_bar[2, i] = traded
            positions_out[i] = positions
    n_fills = int(totals[T_FILLS]) if record else 0
    return fills_int[:n_fills], fills_float[:n_fills], totals, marks


@njit(cache=True, parallel=True)
def run_grid_nb(open_, close, volume, targets_by_column, params):
    """Simulate ``k`` independent single-asset portfolios, one per row of ``targets_by_column``.

    ``open_, close, volume`` are ``(n, 1)``; ``targets_by_column`` is ``(k, n)`` C-ordered so
    each portfolio reads contiguous memory. Returns ``equity (k, n)`` and ``totals (k, N_TOTALS)``.
    """
    k, n = targets_by_column.shape
    equity = np.empty((k, n))
    totals = np.empty((k, N_TOTALS))
    for c in prange(k):
        per_bar = np.empty((3, 1))
        positions_out = np.empty((1, 1))
        target = targets_by_column[c].reshape((n, 1))
        _, _, column_totals, _ = run_nb(
            open_, close, volume, target, params, equity[c], per_bar, positions_out, False
        )
        totals[c] = column_totals
    return equity, totals
