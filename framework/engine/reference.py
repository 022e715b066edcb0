"""Slow pure-Python twin of the engine kernels, used by the tests only.

It implements the rules documented in ``core.py`` and ``framework.costs`` directly, bar by bar
with lists and dicts, and shares no code with ``_nb.py``. Floating-point operations happen in
the same order as in the kernel, so both agree to the last bit on the same inputs; the tests
allow 1e-9 relative anyway.
"""

from __future__ import annotations

import math
from collections import deque

from framework.costs import CostSpec
from framework.engine.spec import EngineSpec


def simulate_reference(
    open_, close, volume, target, spec: EngineSpec, costs: CostSpec, risk=None
) -> dict:
    """Simulate with plain loops; arrays are (n, m) nested sequences of floats.

    ``risk`` is an optional ``framework.risk.reference.RiskReference`` (the slow twin of the
    risk rules), updated in place.

    Returns a dict with ``equity, cash, gross, traded`` (lists), ``positions`` (list of lists),
    ``fills`` (list of ``(bar, asset, qty, price, commission, slippage, impact)``), ``reasons``
    (exit reason per fill), ``totals`` (dict) and ``marks`` (list).
    """
    n, m = len(close), len(close[0])
    rules = _Rules(spec, costs)
    risk = risk if risk is not None and risk.on else None
    state = {
        "cash": float(spec.initial_cash),
        "pos": [0.0] * m,
        "mark": [math.nan] * m,
        "last": [math.nan] * m,
        "pending": [None] * m,
        "remaining": [0.0] * m,
        "risk": risk,
        "reasons": [],
    }
    out = {"equity": [], "cash": [], "gross": [], "traded": [], "positions": [], "fills": []}
    for i in range(n):
        decision = i if spec.fill == "close" else i - 1
        if decision >= 0:
            row = [float(x) for x in target[decision]]
            if risk is None:
                _receive(rules, state, row)
            else:
                _receive_risk(rules, state, row, decision, close)
        if risk is not None and risk.g["flatten"]:
            risk.flatten(_risk_view(state))
        prices = close[i] if spec.fill == "close" else open_[i]
        traded = 0.0
        busy = any(p is not None for p in state["pending"]) or any(state["remaining"])
        if busy:
            orders = _orders_for_bar(rules, state, prices, volume[i])
            if risk is not None:
                state["atr_row"] = risk.atr[max(decision, 0)]
                orders = risk.filter_orders(i, decision, orders, state["pos"])
            for fill in _execute(rules, state, i, orders, close, volume[i]):
                out["fills"].append(fill)
                traded += abs(fill[2]) * fill[3]
        if risk is not None and risk.stops_on(max(decision, 0)):
            for fill in _stop_fills(rules, state, i, (open_, close, volume), decision):
                out["fills"].append(fill)
                traded += abs(fill[2]) * fill[3]
        equity, gross = state["cash"], 0.0
        for j in range(m):
            if math.isfinite(close[i][j]):
                state["mark"][j] = close[i][j]
            if state["pos"][j] != 0.0:
                equity += state["pos"][j] * state["mark"][j]
                gross += abs(state["pos"][j] * state["mark"][j])
        out["equity"].append(equity)
        out["cash"].append(state["cash"])
        out["gross"].append(gross)
        out["traded"].append(traded)
        out["positions"].append(list(state["pos"]))
        if risk is not None:
            risk.update_extremes(i, state["pos"], spec.fill == "close")
            risk.close_checks(i, equity)
    fills = out["fills"]
    out["reasons"] = state["reasons"]
    out["totals"] = {
        "commission": sum(f[4] for f in fills),
        "slippage": sum(f[5] for f in fills),
        "impact": sum(f[6] for f in fills),
        "fills": len(fills),
        "impact_skipped": rules.skipped,
    }
    out["marks"] = state["mark"]
    return out


class _Rules:
    """Cost and sizing rules with the spec's numbers (plain floats)."""

    def __init__(self, spec: EngineSpec, costs: CostSpec) -> None:
        self.spec = spec
        self.per_share = costs.commission_per_share
        self.minimum = costs.commission_min
        self.rate = costs.commission_bps / 1e4
        self.cap = None if costs.commission_max_pct is None else costs.commission_max_pct / 100.0
        self.slip = costs.slippage_bps / 1e4
        self.coef = costs.impact_coef
        self.window = int(costs.impact_window)
        self.participation = costs.max_participation
        self.skipped = 0

    def commission(self, shares: float, fill_price: float) -> float:
        value = shares * fill_price
        fee = max(shares * self.per_share + value * self.rate, self.minimum)
        if self.cap is not None and fee > value * self.cap:
            fee = value * self.cap
        return fee

    def sigma(self, close, i: int, j: int) -> float:
        returns = [
            close[k][j] / close[k - 1][j] - 1.0
            for k in range(max(1, i - self.window), i)
            if math.isfinite(close[k - 1][j]) and math.isfinite(close[k][j])
        ]
        if len(returns) < 2:
            return math.nan
        total = 0.0
        for r in returns:
            total += r
        mean = total / len(returns)
        squares = 0.0
        for r in returns:
            squares += (r - mean) * (r - mean)
        return math.sqrt(squares / (len(returns) - 1))

    def adverse(self, shares: float, bar_volume: float, sigma: float) -> tuple[float, float, bool]:
        if self.coef == 0.0:
            return self.slip, 0.0, False
        if not bar_volume > 0.0 or math.isnan(sigma):
            return self.slip, 0.0, True
        impact = min(self.coef * sigma * math.sqrt(shares / bar_volume), 1.0 - self.slip)
        return self.slip + impact, impact, False


def _receive(rules: _Rules, state: dict, row: list[float]) -> None:
    for j, weight in enumerate(row):
        if math.isnan(weight):
            continue
        if not rules.spec.allow_short and weight < 0.0:
            weight = 0.0
        if rules.spec.rebalance == "every_bar" or weight != state["last"][j]:
            state["pending"][j] = weight
            state["remaining"][j] = 0.0
            state["last"][j] = weight


def _risk_view(state: dict) -> dict:
    """The engine state with NaN for "no pending target" (the risk twin's convention); edits
    of ``pending`` are copied back by :func:`_receive_risk`/flatten callers."""
    return _PendingView(state)


class _PendingView(dict):
    """``state`` seen with NaN pending targets; writes go through to ``state``."""

    def __init__(self, state: dict) -> None:
        super().__init__(state)
        self["pending"] = _NanList(state["pending"])


class _NanList:
    """A list view mapping ``None`` <-> NaN."""

    def __init__(self, items: list) -> None:
        self.items = items

    def __getitem__(self, j):
        value = self.items[j]
        return math.nan if value is None else value

    def __setitem__(self, j, value) -> None:
        self.items[j] = None if math.isnan(value) else value


def _receive_risk(rules: _Rules, state: dict, row, decision: int, close) -> None:
    spec = rules.spec
    state["risk"].receive(
        _risk_view(state), row, decision, close, spec.rebalance == "every_bar", spec.allow_short
    )


def _stop_fills(rules: _Rules, state: dict, i: int, bar_arrays, decision: int) -> list:
    """Stop, take-profit and time-stop exits on bar ``i`` (the risk twin decides)."""
    open_, close, volume = bar_arrays
    risk = state["risk"]
    fills = []
    for j in range(len(state["pos"])):
        position = state["pos"][j]
        if position == 0.0:
            continue
        bar_prices = (open_[i][j], risk.high[i][j], risk.low[i][j], close[i][j])
        hit = risk.stop_exit(i, j, position, bar_prices, rules.spec.fill == "close", decision)
        if hit is None:
            continue
        price, reason, rule = hit
        sigma = rules.sigma(close, i, j) if rules.coef > 0.0 else math.nan
        d = {"asset": j, "qty": -position, "price": price, "sigma": sigma}
        state["stop_reason"] = reason
        fill = _fill(rules, state, i, d, abs(position), volume[i])
        risk.mark_stopped(j, reason)
        state["pending"][j] = None
        state["remaining"][j] = 0.0
        detail = i - risk.entry_bar[j] if rule == 10 else fill[3]
        risk.event(i, j, rule, position, state["pos"][j], detail)
        fills.append(fill)
    return fills


def _orders_for_bar(rules: _Rules, state: dict, prices, volumes) -> list[tuple[int, float, float]]:
    m = len(state["pos"])
    equity, long_value, short_value = state["cash"], 0.0, 0.0
    for j in range(m):
        q = state["pos"][j]
        if q != 0.0:
            p = prices[j] if math.isfinite(prices[j]) else state["mark"][j]
            equity += q * p
            if q > 0.0:
                long_value += q * p
            else:
                short_value -= q * p
    state["long"], state["short"] = long_value, short_value
    orders = []
    for j in range(m):
        if not math.isfinite(prices[j]):
            continue
        weight = state["pending"][j]
        if weight is not None:
            if not equity > 0.0:
                weight = 0.0
            size = weight * equity / prices[j] - state["pos"][j]
            if abs(size) <= 1e-9 * abs(state["pos"][j]):
                size = 0.0  # float noise from re-sizing an unchanged weight
            elif rules.spec.whole_shares:
                size = float(math.trunc(size))
            state["remaining"][j] = size
            state["pending"][j] = None
        want = state["remaining"][j]
        if want == 0.0:
            continue
        qty = want
        limit = rules.participation
        if limit is not None and volumes[j] > 0.0:
            room = limit * volumes[j]
            if rules.spec.whole_shares:
                room = math.floor(room)
            qty = want if abs(want) <= room else math.copysign(room, want)
        if qty != 0.0:
            state["remaining"][j] = want - qty
            orders.append((j, qty, prices[j]))
    return orders


def _execute(rules: _Rules, state: dict, i, orders, close, volumes) -> list[tuple]:
    """Fill one bar's orders: position-reducing ones first, then the exposure-adding ones
    shrunk by one common factor so gross exposure <= max_leverage * equity after costs."""
    details = []
    for j, qty, price in orders:
        shares = abs(qty)
        sigma = rules.sigma(close, i, j) if rules.coef > 0.0 else math.nan
        fraction = rules.adverse(shares, volumes[j], sigma)[0]
        position = state["pos"][j]
        closing = min(shares, abs(position)) if position * qty < 0.0 else 0.0
        details.append(
            {
                "asset": j,
                "qty": qty,
                "price": price,
                "sigma": sigma,
                "fraction": fraction,
                "closing": closing,
                "opening": shares - closing,
            }
        )
    in_order = sorted(details, key=lambda d: d["qty"] * d["price"])
    fills = [
        _fill(rules, state, i, d, abs(d["qty"]), volumes)
        for d in in_order
        if not d["opening"] > 0.0
    ]
    _allot(rules, state, [d for d in details if d["opening"] > 0.0])
    for d in in_order:
        if d["opening"] > 0.0 and d["shares"] > 0.0:
            fills.append(_fill(rules, state, i, d, d["shares"], volumes))
    return fills


def _scaled(rules: _Rules, d: dict, scale: float) -> float:
    extra = scale * d["opening"]
    if rules.spec.whole_shares:
        extra = float(math.floor(extra))
    return d["closing"] + extra


def _allot(rules: _Rules, state: dict, adding: list[dict]) -> None:
    """Shares for the exposure-adding orders: all in full if they fit the leverage budget,
    else one common factor on their adding parts (closed form for a single order)."""
    lev = rules.spec.max_leverage

    def cost(d: dict, shares: float) -> float:
        if not shares > 0.0:
            return 0.0
        side = 1.0 if d["qty"] > 0.0 else -1.0
        price, fraction = d["price"], d["fraction"]
        unit = price / lev + price * fraction
        fee = rules.commission(shares, price * (1.0 + side * fraction))
        return shares * unit + fee - 2.0 * d["closing"] * price / lev

    def used(scale: float) -> float:
        total = 0.0
        for d in adding:
            total += cost(d, abs(d["qty"]) if scale == 1.0 else _scaled(rules, d, scale))
        return total

    budget = state["cash"] + state["long"] * (1.0 - 1.0 / lev) - state["short"] * (1.0 + 1.0 / lev)
    if not adding:
        return
    if used(1.0) <= budget:
        for d in adding:
            d["shares"] = abs(d["qty"])
        return
    if len(adding) == 1:
        d = adding[0]
        side = 1.0 if d["qty"] > 0.0 else -1.0
        price, fraction = d["price"], d["fraction"]
        room = budget + 2.0 * d["closing"] * price / lev
        most = _affordable(
            rules, room, price / lev + price * fraction, price * (1.0 + side * fraction)
        )
        if rules.spec.whole_shares:
            most = float(math.floor(most))
        d["shares"] = max(d["closing"], min(abs(d["qty"]), most))
        return
    low, high = 0.0, 1.0
    if not used(0.0) <= budget:
        high = 0.0
    else:
        for _ in range(60):
            middle = 0.5 * (low + high)
            if used(middle) <= budget:
                low = middle
            else:
                high = middle
    for d in adding:
        d["shares"] = _scaled(rules, d, low)


def _affordable(rules: _Rules, budget: float, unit: float, fill_price: float) -> float:
    """Largest q with q * unit + commission(q) <= budget: commission is a min/max of lines."""
    if not budget > 0.0:
        return 0.0
    per_share = rules.per_share + fill_price * rules.rate
    q = min(budget / (unit + per_share), (budget - rules.minimum) / unit)
    if rules.cap is not None:
        q = max(q, budget / (unit + rules.cap * fill_price))
    return max(q, 0.0)


def _fill(rules: _Rules, state: dict, i: int, d: dict, shares: float, volumes) -> tuple:
    j, price = d["asset"], d["price"]
    side = 1.0 if d["qty"] > 0.0 else -1.0
    fraction, impact, skipped = rules.adverse(shares, volumes[j], d["sigma"])
    fill_price = price * (1.0 + side * fraction)
    fee = rules.commission(shares, fill_price)
    filled = side * shares
    position = state["pos"][j]
    new = position + filled
    state["cash"] -= filled * fill_price + fee
    state["long"] += (max(new, 0.0) - max(position, 0.0)) * price
    state["short"] += (max(-new, 0.0) - max(-position, 0.0)) * price
    state["pos"][j] = new
    risk = state.get("risk")
    if risk is not None:
        stop = state.pop("stop_reason", None)
        atr_value = math.nan if stop is not None else state["atr_row"][j]
        risk.track_fill(j, position, new, fill_price, fee, i, atr_value)
        state["reasons"].append(risk.reason[j] if stop is None else stop)
    else:
        state.setdefault("reasons", []).append(0)
    if math.isnan(state["mark"][j]):
        state["mark"][j] = price
    rules.skipped += int(skipped)
    return (i, j, filled, fill_price, fee, shares * price * rules.slip, shares * price * impact)


def fifo_trades_reference(fills, marks, last_bar: int) -> list[dict]:
    """FIFO round trips from ``(bar, asset, qty, price, commission, ...)`` fills.

    Returns dicts with ``asset, entry_bar, exit_bar, qty, side, entry_price, exit_price, pnl,
    is_open`` (per asset, in the order they close; open lots last).
    """
    trades = []
    for asset in sorted({f[1] for f in fills}):
        lots: deque[list] = deque()  # [bar, qty left, size, price, fee per share, side]
        for bar, _, qty, price, fee, *_ in (f for f in fills if f[1] == asset):
            side, rest = math.copysign(1.0, qty), abs(qty)
            fee_per_share = fee / rest
            while lots and lots[0][5] != side and rest > 1e-9 * abs(qty):
                lot = lots[0]
                take = min(rest, lot[1])
                pnl = lot[5] * (price - lot[3]) * take - (lot[4] + fee_per_share) * take
                trades.append(_trade(asset, lot, bar, take, price, pnl, False))
                lot[1] -= take
                rest -= take
                if lot[1] <= 1e-9 * lot[2]:
                    lots.popleft()
            if rest > 1e-9 * abs(qty):
                lots.append([bar, rest, rest, price, fee_per_share, side])
        for lot in lots:
            pnl = lot[5] * (marks[asset] - lot[3]) * lot[1] - lot[4] * lot[1]
            trades.append(_trade(asset, lot, last_bar, lot[1], marks[asset], pnl, True))
    return trades


def _trade(asset, lot, exit_bar, qty, exit_price, pnl, is_open) -> dict:
    return {
        "asset": asset,
        "entry_bar": lot[0],
        "exit_bar": exit_bar,
        "qty": qty,
        "side": lot[5],
        "entry_price": lot[3],
        "exit_price": exit_price,
        "pnl": pnl,
        "is_open": is_open,
    }
