"""Slow pure-Python twin of the risk rules in ``_nb.py`` (tests only; shares no code with it).

:class:`RiskReference` keeps the state in plain lists and dicts and applies each rule with
plain loops, in the same floating-point order as the kernel.
"""

from __future__ import annotations

import math

from framework.risk import _layout as L

STOP_RULES = {
    1: ("stop_loss", 1, L.RULE_STOP_LOSS),
    2: ("trailing", 2, L.RULE_TRAILING_STOP),
    3: ("atr", 3, L.RULE_ATR_STOP),
}


class RiskReference:
    """Risk state plus the rules; ``inputs`` is the tuple of ``framework.risk.inputs``."""

    def __init__(self, inputs, m: int, initial_equity: float) -> None:
        table, regime_row, session, period_start, high, low, atr, groups = inputs
        self.table = [[float(x) for x in row] for row in table]
        self.regime_row = [int(x) for x in regime_row]
        self.session = [int(x) for x in session]
        self.period_start = [float(x) for x in period_start]
        self.high, self.low = high.tolist(), low.tolist()
        self.atr = atr.tolist()
        self.groups = [int(g) for g in groups]
        nan = math.nan
        self.entry = [nan] * m
        self.entry_bar = [0.0] * m
        self.extreme = [0.0] * m
        self.entry_atr = [0.0] * m
        self.trade_cash = [0.0] * m
        self.stopped = [False] * m
        self.reason = [0] * m
        self.last_raw = [nan] * m
        self.stop_raw = [nan] * m
        self.g = {
            "breaker": 0,
            "until": 0.0,
            "peak": initial_equity,
            "session": -1,
            "session_eq": initial_equity,
            "lock": -1,
            "last_eq": initial_equity,
            "consec": 0.0,
            "wins": 0.0,
            "losses": 0.0,
            "sum_win": 0.0,
            "sum_loss": 0.0,
            "flatten": 0,
        }
        self.events: list[tuple] = []

    @property
    def on(self) -> bool:
        return self.table[0][L.R_ENABLED] != 0.0

    def rp(self, bar: int) -> list[float]:
        return self.table[self.regime_row[bar]]

    def event(self, bar, asset, rule, before, after, detail) -> None:
        self.events.append((bar, asset, rule, before, after, detail))

    # -- decision time ----------------------------------------------------------------------
    def size(self, raw, source, j, close, rp):
        kind = int(rp[L.R_SIZING])
        if kind == 0 or raw == 0.0:
            return raw
        side = 1.0 if raw > 0.0 else -1.0
        cap = rp[L.R_SIZING_CAP]
        if kind == 1:
            return raw * rp[L.R_SIZING_FRACTION]
        if kind == 2:
            window = int(rp[L.R_VOL_WINDOW])
            rets = [
                close[k][j] / close[k - 1][j] - 1.0
                for k in range(max(1, source - window + 1), source + 1)
                if math.isfinite(close[k - 1][j]) and math.isfinite(close[k][j])
            ]
            if len(rets) < 2:
                return 0.0
            total = 0.0
            for r in rets:
                total += r
            mean = total / len(rets)
            squares = 0.0
            for r in rets:
                squares += (r - mean) * (r - mean)
            vol = math.sqrt(squares / (len(rets) - 1)) * math.sqrt(rp[L.R_PERIODS_PER_YEAR])
            if not vol > 0.0:
                return 0.0
            return side * min(cap, rp[L.R_TARGET_VOL] / vol)
        if kind == 3:
            p, b = rp[L.R_KELLY_WIN_RATE], rp[L.R_KELLY_PAYOFF]
            if math.isnan(p) or math.isnan(b):
                g = self.g
                n = g["wins"] + g["losses"]
                if n < rp[L.R_KELLY_MIN_TRADES] or g["wins"] == 0.0 or g["losses"] == 0.0:
                    return raw
                p = g["wins"] / n
                b = (g["sum_win"] / g["wins"]) / (g["sum_loss"] / g["losses"])
            f = max(p - (1.0 - p) / b, 0.0)
            return side * min(cap, abs(raw) * rp[L.R_SIZING_FRACTION] * f)
        a, price = self.atr[source][j], close[source][j]
        if not (a > 0.0 and price > 0.0):
            return 0.0
        return side * min(cap, rp[L.R_RISK_PER_TRADE] * price / (rp[L.R_ATR_RISK_MULT] * a))

    def caps(self, w: list[float], rp) -> list[list[float]]:
        """Stages after the position, group, count, net and gross caps."""
        out = []
        w = list(w)
        limit = rp[L.R_MAX_POSITION]
        if not math.isnan(limit):
            w = [min(max(x, -limit), limit) for x in w]
        out.append(list(w))
        limit = rp[L.R_MAX_GROUP]
        if not math.isnan(limit) and self.groups:
            for g in range(max(self.groups) + 1):
                gross = 0.0
                for j, x in enumerate(w):
                    if self.groups[j] == g:
                        gross += abs(x)
                if gross > limit:
                    w = [x * (limit / gross) if self.groups[j] == g else x for j, x in enumerate(w)]
        out.append(list(w))
        limit = rp[L.R_MAX_POSITIONS]
        if not math.isnan(limit):
            order = sorted(range(len(w)), key=lambda j: -abs(w[j]))
            for j in order[int(limit) :]:
                w[j] = 0.0
        out.append(list(w))
        limit = rp[L.R_MAX_NET]
        if not math.isnan(limit):
            longs, shorts = 0.0, 0.0
            for x in w:
                if x > 0.0:
                    longs += x
                else:
                    shorts -= x
            if longs - shorts > limit:
                w = [x * ((limit + shorts) / longs) if x > 0.0 else x for x in w]
            elif shorts - longs > limit:
                w = [x * ((limit + longs) / shorts) if x < 0.0 else x for x in w]
        out.append(list(w))
        limit, buffer = rp[L.R_MAX_GROSS], rp[L.R_CASH_BUFFER]
        if buffer > 0.0 and (math.isnan(limit) or 1.0 - buffer < limit):
            limit = 1.0 - buffer
        if not math.isnan(limit):
            gross = 0.0
            for x in w:
                gross += abs(x)
            if gross > limit:
                w = [x * (limit / gross) for x in w]
        out.append(list(w))
        return out

    def receive(self, st: dict, row, source: int, close, every_bar: bool, allow_short: bool):
        """Decision-time rules, then accept into ``st['pending']`` (engine reference state)."""
        if self.g["breaker"] == 2:
            return
        rp = self.rp(source)
        raw = [(0.0 if (not allow_short and x < 0.0) else float(x)) for x in row]
        eff = [(st["last"][j] if math.isnan(x) else x) for j, x in enumerate(raw)]
        eff = [0.0 if math.isnan(x) else x for x in eff]
        sized = [
            eff[j] if math.isnan(x) else self.size(x, source, j, close, rp)
            for j, x in enumerate(raw)
        ]
        stages = [eff, sized, *self.caps(sized, rp)]
        equity = st["cash"]
        for j, q in enumerate(st["pos"]):
            if q != 0.0:
                equity += q * st["mark"][j]
        for j, x in enumerate(raw):
            weight = stages[-1][j]
            if math.isnan(x) and weight == eff[j]:
                continue
            changed = not math.isnan(x) and x != self.last_raw[j]
            if not math.isnan(x):
                self.last_raw[j] = x
            force = False
            if self.stopped[j]:
                if math.isnan(x) or x == self.stop_raw[j]:
                    continue
                self.stopped[j] = False
                force = True
            if not (every_bar or force or weight != st["last"][j]):
                continue
            current = 0.0
            if st["pos"][j] != 0.0 and equity > 0.0:
                current = st["pos"][j] * st["mark"][j] / equity
            if not self.rebalance_ok(weight, current, source, rp):
                if changed:
                    rule = L.RULE_CALENDAR if math.isnan(rp[L.R_DRIFT]) else L.RULE_DRIFT
                    self.event(source, j, rule, st["last"][j], weight, abs(current - weight))
                continue
            for k in range(1, len(stages)):
                if stages[k][j] != stages[k - 1][j]:
                    self.event(
                        source, j, L.RULE_SIZING + k - 1, stages[k - 1][j], stages[k][j], 0.0
                    )
            st["pending"][j] = weight
            st["remaining"][j] = 0.0
            st["last"][j] = weight
            self.reason[j] = 0

    def rebalance_ok(self, weight, current, source, rp) -> bool:
        calendar, drift = rp[L.R_CALENDAR] != 0.0, rp[L.R_DRIFT]
        if weight == 0.0 or (not calendar and math.isnan(drift)):
            return True
        if calendar and self.period_start[source] != 0.0:
            return True
        return not math.isnan(drift) and abs(current - weight) > drift

    # -- order time -------------------------------------------------------------------------
    def filter_orders(self, i: int, source: int, orders, positions):
        rp = self.rp(max(source, 0))
        tripped = self.g["breaker"] != 0
        locked = source >= 0 and self.g["lock"] == self.session[max(source, 0)]
        kept = []
        for j, qty, price in orders:
            if tripped or locked:
                pos = positions[j]
                cut = 0.0 if pos * qty >= 0.0 else (-pos if abs(qty) > abs(pos) else qty)
                if cut != qty:
                    rule = L.RULE_BREAKER_BLOCK if tripped else L.RULE_DAILY_BLOCK
                    self.event(i, j, rule, qty, cut, 0.0)
                    qty = cut
            is_exit = positions[j] + qty == 0.0
            minimum = rp[L.R_MIN_TRADE_VALUE]
            if qty != 0.0 and minimum > 0.0 and not is_exit and abs(qty * price) < minimum:
                self.event(i, j, L.RULE_MIN_TRADE, qty, 0.0, abs(qty * price))
                qty = 0.0
            if qty != 0.0:
                kept.append((j, qty, price))
        limit = rp[L.R_MAX_TRADES]
        if math.isnan(limit) or len(kept) <= int(limit):
            return kept
        by_size = sorted(range(len(kept)), key=lambda s: -abs(kept[s][1] * kept[s][2]))
        keep = set(by_size[: int(limit)])
        for s, (j, qty, price) in enumerate(kept):
            if s not in keep:
                self.event(i, j, L.RULE_MAX_TRADES, qty, 0.0, abs(qty * price))
        return [o for s, o in enumerate(kept) if s in keep]

    def track_fill(self, j, old, new, fill_price, fee, bar, atr_value) -> None:
        flow = -(new - old) * fill_price - fee
        if old == 0.0:
            self._open(j, fill_price, bar, atr_value, flow)
        elif new == 0.0 or new * old < 0.0:
            realized = self.trade_cash[j] + flow + new * fill_price
            g = self.g
            if realized < 0.0:
                g["losses"] += 1.0
                g["sum_loss"] -= realized
                g["consec"] += 1.0
            else:
                g["wins"] += 1.0
                g["sum_win"] += realized
                g["consec"] = 0.0
            if new == 0.0:
                self.entry[j] = math.nan
                self.trade_cash[j] = 0.0
            else:
                self._open(j, fill_price, bar, atr_value, -new * fill_price)
        else:
            if abs(new) > abs(old):
                self.entry[j] = self.entry[j] * abs(old) + fill_price * (abs(new) - abs(old))
                self.entry[j] /= abs(new)
            self.trade_cash[j] += flow

    def _open(self, j, price, bar, atr_value, cash) -> None:
        self.entry[j], self.entry_bar[j], self.extreme[j] = price, float(bar), price
        self.entry_atr[j], self.trade_cash[j] = atr_value, cash

    # -- stops and close checks -------------------------------------------------------------
    def stop_exit(self, i, j, position, bar_prices, fill_close, decision):
        """``(price, reason, rule)`` or ``None`` (rules of the ``decision`` bar's regime)."""
        o, h, lo, c = bar_prices
        if fill_close and self.entry_bar[j] >= i:
            return None
        rp = self.rp(decision)
        held = self.entry_bar[j] < i
        side = 1.0 if position > 0.0 else -1.0
        worst, best = (lo, h) if side > 0.0 else (h, lo)
        kind = int(rp[L.R_STOP_KIND])
        if kind in STOP_RULES:
            if kind == 1:
                level = self.entry[j] * (1.0 - side * rp[L.R_STOP_PCT])
            elif kind == 2:
                level = self.extreme[j] * (1.0 - side * rp[L.R_STOP_PCT])
            else:
                level = self.entry[j] - side * rp[L.R_ATR_MULT] * self.entry_atr[j]
            _, reason, rule = STOP_RULES[kind]
            if math.isfinite(level):
                if held and side * (o - level) <= 0.0:
                    return o, reason, rule
                if side * (worst - level) <= 0.0:
                    return level, reason, rule
        tp = rp[L.R_TAKE_PROFIT]
        if not math.isnan(tp):
            level = self.entry[j] * (1.0 + side * tp)
            if held and side * (o - level) >= 0.0:
                return o, L.REASON_TAKE_PROFIT, L.RULE_TAKE_PROFIT
            if side * (best - level) >= 0.0:
                return level, L.REASON_TAKE_PROFIT, L.RULE_TAKE_PROFIT
        limit = rp[L.R_TIME_STOP]
        if not math.isnan(limit) and i - self.entry_bar[j] >= limit and math.isfinite(c):
            return c, L.REASON_TIME_STOP, L.RULE_TIME_STOP
        return None

    def stops_on(self, bar: int) -> bool:
        rp = self.rp(bar)
        return (
            int(rp[L.R_STOP_KIND]) != 0
            or not math.isnan(rp[L.R_TAKE_PROFIT])
            or not math.isnan(rp[L.R_TIME_STOP])
        )

    def mark_stopped(self, j, reason) -> None:
        self.stopped[j], self.stop_raw[j], self.reason[j] = True, self.last_raw[j], reason

    def update_extremes(self, i, positions, fill_close) -> None:
        for j, q in enumerate(positions):
            if q == 0.0 or (fill_close and self.entry_bar[j] >= i):
                continue
            if q > 0.0:
                if self.high[i][j] > self.extreme[j]:
                    self.extreme[j] = self.high[i][j]
            elif self.low[i][j] < self.extreme[j]:
                self.extreme[j] = self.low[i][j]

    def close_checks(self, i: int, equity: float) -> None:
        g, rp, session = self.g, self.rp(i), self.session[i]
        if session != g["session"]:
            g["session"], g["session_eq"] = session, g["last_eq"]
        g["last_eq"] = equity
        g["peak"] = max(g["peak"], equity)
        flatten = 0
        if g["breaker"] != 0 and i >= g["until"]:
            self.event(i, -1, L.RULE_BREAKER_RESUME, g["breaker"], 0, 0.0)
            g["breaker"], g["peak"], g["consec"] = 0, equity, 0.0
        elif g["breaker"] == 0:
            drawdown = 1.0 - equity / g["peak"]
            new = 0
            if drawdown > rp[L.R_MAX_DRAWDOWN]:
                new = int(rp[L.R_DRAWDOWN_ACTION])
                self.event(i, -1, L.RULE_DRAWDOWN_BREAKER, 0, new, drawdown)
            elif g["consec"] >= rp[L.R_MAX_LOSSES]:
                new = int(rp[L.R_LOSSES_ACTION])
                self.event(i, -1, L.RULE_LOSSES_BREAKER, 0, new, g["consec"])
            if new:
                g["breaker"], g["until"] = new, i + rp[L.R_COOLDOWN]
                if new == 2:
                    flatten = L.REASON_BREAKER
        limit, start = rp[L.R_DAILY_LOSS], g["session_eq"]
        if not math.isnan(limit) and g["lock"] != session and equity < start * (1.0 - limit):
            g["lock"] = session
            self.event(i, -1, L.RULE_DAILY_LOSS, start, equity, 1.0 - equity / start)
            if rp[L.R_DAILY_FLATTEN] != 0.0 and not flatten:
                flatten = L.REASON_DAILY_LOSS
        if flatten:
            g["flatten"] = flatten

    def flatten(self, st: dict) -> None:
        reason = self.g["flatten"]
        self.g["flatten"] = 0
        for j, q in enumerate(st["pos"]):
            if q == 0.0 and st["remaining"][j] == 0.0:
                continue
            st["pending"][j], st["remaining"][j] = 0.0, 0.0
            self.mark_stopped(j, reason)
