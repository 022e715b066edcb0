"""Backtest of credit spreads and iron condors sold on a synthetic option chain.

The strategy sells 30-45 DTE defined-risk premium (bull put spreads, bear call spreads or iron
condors) when the IV rank is high, takes profit at a fraction of the credit, stops at a multiple
of it and closes at a DTE floor. :class:`CreditSpreadSpec` holds the rules; a
:class:`CreditSpreadSchedule` switches them at dates (walk-forward folds): new entries follow the
spec in force on their day, an open position keeps the exit rules it was opened with.

Quotes come from the model of :mod:`framework.options.synthetic` (surface IV, BSM price, modelled
half-spread, tick rounding), but only the contracts needed are priced: each day the legs of the
open positions (one vectorised call), and on a day that passes the entry gates the strike grid of
the one expiry chosen. The quotes are those :func:`~framework.options.synthetic.synthetic_chain`
would list for the same contracts (the tests check it against a full chain per day).

Timing (close-fill model, no look-ahead): at day d's close, with data up to d only, open positions
are settled or closed, then a new entry may be made; fills are at d's close quotes (sell at the
bid, buy at the ask), marks at the mid. :data:`ASSUMPTIONS` lists every modelling choice; a
result carries them. ``prepare_market`` + ``run_options_backtest`` reuse the prepared market for
many parameter sets; ``backtest_options`` does both.

Speed: on the dev machine a 2007-2025 SPY run with the default spec takes ~0.2 s after a ~0.3 s
``prepare_market`` (about 1 s with the IV-rank gate off: five times as many trades).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import pandas as pd

from framework import metrics
from framework.errors import ConfigError, DataError
from framework.options._bsm_nb import bsm_greeks_nb, bsm_price_nb
from framework.options.chains import NEW_YORK
from framework.options.ivrank import iv_rank
from framework.options.occ import occ_code
from framework.options.risk import OptionsRisk, RiskGuard
from framework.options.synthetic import (
    DEFAULT_SPEC,
    SyntheticChainSpec,
    _day_series,
    _levels,
    anchor_atm_iv,
    atm_term_iv,
    half_spread,
    strike_grid,
    surface_iv,
)

__all__ = [
    "ASSUMPTIONS",
    "DEFAULT_SEARCH_SPACE",
    "EXIT_REASONS",
    "KINDS",
    "CreditSpreadSchedule",
    "CreditSpreadSpec",
    "OptionsBacktestResult",
    "OptionsMarket",
    "backtest_options",
    "prepare_market",
    "run_options_backtest",
    "trading_window",
]

KINDS = ("bull_put", "bear_call", "iron_condor")
_NO_RISK = OptionsRisk()
EXIT_REASONS = ("take_profit", "stop", "dte", "expiry", "assignment", "end", "risk_halt",
                "daily_flatten")
PERIODS_PER_YEAR = 252.0
_LEVEL_STALE_DAYS = 7  # synthetic_chains' limit: an as-of VIX older than this is not used

ASSUMPTIONS = {
    "fill_model": "close-fill: decisions at day d's close from data up to d, filled at d's close "
                  "quotes of the model chain (sell at the bid, buy at the ask); optimistic.",
    "marks": "open legs marked at the model mid (bid + ask) / 2 each close.",
    "exit_checks": "take-profit, stop and DTE exits are checked at closes only (no intraday "
                   "triggers); a position is first checked the session after its entry.",
    "exit_trigger_price": "take-profit and stop compare the executable closing debit (buy shorts "
                          "at the ask, sell longs at the bid) with the entry credit; take profit "
                          "when debit <= (1 - take_profit) x credit, stop when debit - credit >= "
                          "stop_multiple x credit; then DTE <= exit_dte (calendar days).",
    "expiry": "legs still open on their expiry settle at intrinsic value against that day's "
              "close (the last close on or before it when the day is missing from the data); "
              "short in-the-money legs are assigned and long ones exercised, and the resulting "
              "shares are closed at that same close, so a spread's net is the intrinsic "
              "difference. Reason 'assignment' when a short leg finished in the money.",
    "early_assignment": "not modelled (European prices; American early exercise ignored).",
    "commissions": "chain_spec.commission(contracts x legs) per multi-leg order (open and "
                   "close), shown split evenly over the legs; at expiry no commission for legs "
                   "expiring worthless and chain_spec.commission(contracts) per in-the-money leg "
                   "(stands in for the stock sale after assignment or exercise).",
    "spread_paid": "|fill - mid| x contracts x multiplier summed over option fills.",
    "expiry_choice": "the listed expiry (chain_spec grid: weeklies and monthlies, holidays moved "
                     "to the prior session) with calendar DTE in [dte_min, dte_max] nearest to "
                     "the window's middle, the earlier one on a tie; none listed -> no entry.",
    "strike_choice": "short strike: the grid strike whose BSM |delta| at the surface IV is "
                     "nearest short_delta (the farther out of the money on a tie); long wing: "
                     "the grid strike beyond it nearest short -/+ width (the wider on a tie). "
                     "An iron condor does both sides at the same delta and width.",
    "iv_rank": "rank of the model's 30-day ATM IV (VIX-based for SPY/QQQ) over the trailing "
               "iv_rank_window sessions, today included; entry needs rank >= iv_rank_min "
               "(no entry while the rank is undefined, unless iv_rank_min is 0: gate off).",
    "sizing": "contracts = floor(risk_per_trade x equity / max loss per contract); when that is "
              "0, one contract if its max loss is within 2x the budget, else no entry. Max loss "
              "per contract = (widest wing width - total credit) x multiplier.",
    "margin": "defined-risk margin = max loss; the max loss of all open positions including the "
              "new one may not exceed equity (contracts are cut to fit, no entry below one).",
    "entries": "at most one new position per day, at most one per entry_every_days sessions, "
               "at most max_open open; none on the window's last day.",
    "cash": "cash earns no interest; option P&L only (no stock position between days).",
    "end_of_window": "positions still open on the last day are closed at its close quotes "
                     "(reason 'end').",
    "schedule": "the spec in force on a day governs that day's entry; a position keeps the "
                "exit rules of the spec it was opened with; no entries before the first date.",
    "prices": "European BSM at the synthetic surface IV (see chain_spec); no dividends paid "
              "through the options except via the continuous yield 'div'.",
}

DEFAULT_SEARCH_SPACE: dict[str, tuple] = {
    "kind": ("bull_put", "iron_condor"),
    "short_delta": (0.10, 0.16, 0.20, 0.25, 0.30),
    "iv_rank_min": (0.0, 0.25, 0.5),
    "take_profit": (0.25, 0.5, 0.75),
    "stop_multiple": (1.0, 2.0, 3.0),
    "exit_dte": (0, 14, 21),
}

# whole-number field of CreditSpreadSpec -> its least allowed value
_INT_FIELDS = {"dte_min": 1, "dte_max": 1, "iv_rank_window": 2, "exit_dte": 0, "max_open": 1,
               "entry_every_days": 1}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool) and math.isfinite(float(value))


@dataclass(frozen=True)
class CreditSpreadSpec:
    """Entry, exit and sizing rules of the credit-spread strategy.

    Parameters
    ----------
    kind : {"bull_put", "bear_call", "iron_condor"}
        Short put vertical, short call vertical, or both (same contracts on each side).
    dte_min, dte_max : int
        Calendar-day window of the expiry to sell (1 <= dte_min <= dte_max).
    short_delta : float
        Target |delta| of each short strike, in (0, 0.5).
    width : float
        Distance of each long wing from its short strike in strike points (> 0), snapped to the
        chain's strike grid.
    iv_rank_min : float
        Enter only when the IV rank is >= this, in [0, 1].
    iv_rank_window : int
        Sessions of the IV rank window (>= 2).
    take_profit : float or None
        Close when the closing debit is <= (1 - take_profit) x credit, in (0, 1]; None: never.
    stop_multiple : float or None
        Close when the loss (debit - credit) reaches stop_multiple x credit (> 0); None: never.
    exit_dte : int
        Close when calendar DTE <= exit_dte (0 holds to expiry); must be < dte_min.
    max_open : int
        Most positions open at once (>= 1).
    entry_every_days : int
        At most one new position per this many sessions (>= 1).
    risk_per_trade : float
        Max loss of a new position as a fraction of equity, in (0, 1].
    """

    kind: str = "bull_put"
    dte_min: int = 30
    dte_max: int = 45
    short_delta: float = 0.20
    width: float = 5.0
    iv_rank_min: float = 0.5
    iv_rank_window: int = 252
    take_profit: float | None = 0.5
    stop_multiple: float | None = 2.0
    exit_dte: int = 21
    max_open: int = 3
    entry_every_days: int = 5
    risk_per_trade: float = 0.02

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"CreditSpreadSpec.kind must be one of {KINDS}; got {self.kind!r}.")
        for name, low in _INT_FIELDS.items():
            value = getattr(self, name)
            if not _is_number(value) or value != int(value) or value < low:
                raise ConfigError(
                    f"CreditSpreadSpec.{name} must be a whole number >= {low}; got {value!r}.")
            object.__setattr__(self, name, int(value))
        checks = {
            "short_delta": (0.0, 0.5, "in (0, 0.5), e.g. 0.20"),
            "width": (0.0, math.inf, "> 0 strike points, e.g. 5"),
            "risk_per_trade": (0.0, 1.0, "in (0, 1], e.g. 0.02 for 2 % of equity"),
            "take_profit": (0.0, 1.0, "in (0, 1] or None, e.g. 0.5 for half the credit"),
            "stop_multiple": (0.0, math.inf, "> 0 or None, e.g. 2.0"),
        }
        for name, (low, high, words) in checks.items():
            value = getattr(self, name)
            if value is None and name in ("take_profit", "stop_multiple"):
                continue
            closed_top = name in ("risk_per_trade", "take_profit")
            ok = _is_number(value) and low < value and (value <= high if closed_top
                                                        else value < high)
            if not ok:
                raise ConfigError(f"CreditSpreadSpec.{name} must be {words}; got {value!r}.")
            object.__setattr__(self, name, float(value))
        rank = self.iv_rank_min
        if not _is_number(rank) or not 0.0 <= rank <= 1.0:
            raise ConfigError(
                f"CreditSpreadSpec.iv_rank_min must be in [0, 1] (0 disables the gate); got "
                f"{rank!r}.")
        object.__setattr__(self, "iv_rank_min", float(rank))
        if self.dte_max < self.dte_min:
            raise ConfigError(
                f"CreditSpreadSpec.dte_max ({self.dte_max}) must be >= dte_min ({self.dte_min}).")
        if self.exit_dte >= self.dte_min:
            raise ConfigError(
                f"CreditSpreadSpec.exit_dte ({self.exit_dte}) must be < dte_min ({self.dte_min})"
                "; otherwise every position would be closed the day after it opens.")

    def to_dict(self) -> dict[str, object]:
        """Plain dict of every field, for reports and registries."""
        return asdict(self)

    def with_overrides(self, overrides: Mapping[str, object]) -> CreditSpreadSpec:
        """A validated copy with some fields replaced; unknown names raise ConfigError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown CreditSpreadSpec field(s) {unknown}; valid fields: {sorted(known)}.")
        return replace(self, **overrides)


@dataclass(frozen=True)
class CreditSpreadSchedule:
    """Specs that take effect at dates: ``((start_date, spec), ...)`` in increasing date order.

    The spec whose start is the latest on or before a day governs that day's entries; before the
    first start no position is opened. Exits always follow the position's own spec.
    """

    entries: tuple[tuple[pd.Timestamp, CreditSpreadSpec], ...]

    def __post_init__(self) -> None:
        rows = []
        for i, item in enumerate(self.entries):
            if not (isinstance(item, tuple | list) and len(item) == 2):
                raise ConfigError(
                    f"schedule entry {i} is {item!r}; expected a (start_date, CreditSpreadSpec) "
                    "pair.")
            start, spec = item
            if not isinstance(spec, CreditSpreadSpec):
                raise ConfigError(
                    f"schedule entry {i} holds a {type(spec).__name__}; expected a "
                    "CreditSpreadSpec.")
            rows.append((_naive_day(start, f"schedule entry {i} start"), spec))
        starts = [s for s, _ in rows]
        if not rows or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            raise ConfigError(
                f"a CreditSpreadSchedule needs at least one entry with strictly increasing start "
                f"dates; got {[str(s.date()) for s in starts]}.")
        object.__setattr__(self, "entries", tuple(rows))

    @property
    def specs(self) -> tuple[CreditSpreadSpec, ...]:
        return tuple(spec for _, spec in self.entries)

    def to_dict(self) -> list[dict[str, object]]:
        """``[{"start": "YYYY-MM-DD", **spec.to_dict()}, ...]`` for reports."""
        return [{"start": str(s.date()), **spec.to_dict()} for s, spec in self.entries]


def _as_schedule(spec_or_schedule: object) -> tuple[CreditSpreadSchedule | None, tuple]:
    """(schedule or None for a single spec, specs tuple)."""
    if isinstance(spec_or_schedule, CreditSpreadSpec):
        return None, (spec_or_schedule,)
    if isinstance(spec_or_schedule, CreditSpreadSchedule):
        return spec_or_schedule, spec_or_schedule.specs
    if isinstance(spec_or_schedule, Mapping):
        schedule = CreditSpreadSchedule(tuple(spec_or_schedule.items()))
        return schedule, schedule.specs
    if isinstance(spec_or_schedule, Sequence) and not isinstance(spec_or_schedule, str):
        schedule = CreditSpreadSchedule(tuple(spec_or_schedule))
        return schedule, schedule.specs
    raise ConfigError(
        f"spec_or_schedule is a {type(spec_or_schedule).__name__}; expected a CreditSpreadSpec, a "
        "CreditSpreadSchedule, or (start_date, CreditSpreadSpec) pairs.")


# -- the prepared market ----------------------------------------------------------------------


def _carry(value: object, days: pd.DatetimeIndex, what: str) -> np.ndarray:
    """A rate or dividend yield per day: constant, or a dated Series used as of each day."""
    if _is_number(value):
        return np.full(len(days), float(value))
    if not isinstance(value, pd.Series):
        raise DataError(f"{what} must be a decimal (0.04 = 4 %) or a dated Series; got {value!r}.")
    try:
        index = pd.DatetimeIndex(value.index)
    except (TypeError, ValueError) as exc:
        raise DataError(f"the {what} Series needs a date index; got {value.index[:3]!r}.") from exc
    if index.tz is not None:
        index = index.tz_convert(NEW_YORK).tz_localize(None)
    series = pd.Series(pd.to_numeric(value, errors="coerce").to_numpy(dtype=np.float64),
                       index=index.normalize().as_unit("ns")).dropna().sort_index()
    series = series[~series.index.duplicated(keep="last")]
    positions = series.index.searchsorted(days, side="right") - 1  # as of: last on or before
    out = series.to_numpy()[np.maximum(positions, 0)]
    return np.where(positions >= 0, out, np.nan)


def _day_numbers(index: pd.DatetimeIndex) -> np.ndarray:
    return index.values.astype("datetime64[D]").astype(np.int64)


def _bsm(spot, strike, t, rate, div, vol, call, with_delta):
    """BSM price (and delta) via the kernels of :mod:`framework.options.bsm`, unvalidated.

    The inputs are valid by construction (closes > 0, grid strikes > 0, t > 0, vol >= min_iv),
    and skipping bsm_price's per-call checks halves the cost of a run.
    """
    n = strike.size
    strike = np.ascontiguousarray(strike, dtype=np.float64)
    t = np.ascontiguousarray(np.broadcast_to(t, n), dtype=np.float64)
    call = np.ascontiguousarray(np.broadcast_to(call, n), dtype=np.bool_)
    spot, rate, div = np.full(n, spot), np.full(n, rate), np.full(n, div)
    price = np.empty(n)
    bsm_price_nb(spot, strike, t, rate, div, vol, call, price)
    if not with_delta:
        return price, None
    greeks = np.empty((6, n))
    bsm_greeks_nb(spot, strike, t, rate, div, vol, call, greeks)
    return price, greeks[1]


class OptionsMarket:
    """Everything about the underlying and its model chain that no strategy parameter changes.

    Build it once with :func:`prepare_market` and run many specs on it with
    :func:`run_options_backtest`. Holds per day the close, 30-day ATM IV, rate and dividend yield,
    the listed-expiry table, and a cache of IV ranks by window.
    """

    def __init__(self, closes, atm30, rate, div, chain_spec, underlying, sessions):
        self.days = closes.index
        self.day_numbers = _day_numbers(self.days)
        self.close = closes.to_numpy(dtype=np.float64)
        self.atm30, self.rate, self.div = atm30, rate, div
        self.chain_spec = chain_spec
        self.underlying = underlying
        self._ranks: dict[int, np.ndarray] = {}
        self.carry_note: dict[str, object] = {}
        self._build_expiries(sessions)

    def _build_expiries(self, sessions: pd.DatetimeIndex) -> None:
        """Every Friday that can be listed (as listed_expiries moves them), once for the run."""
        spec = self.chain_spec
        horizon = max(spec.weekly_max_days, spec.monthly_max_days)
        fridays = pd.date_range(self.days[0] + pd.Timedelta(days=1),
                                self.days[-1] + pd.Timedelta(days=horizon), freq="W-FRI")
        moved = fridays.values.copy()
        holiday = (fridays >= sessions[0]) & (fridays <= sessions[-1]) & ~fridays.isin(sessions)
        if holiday.any():  # an exchange holiday: the expiry moves to the prior session
            prior = sessions.searchsorted(fridays[holiday], side="right") - 1
            moved[holiday] = sessions.values[prior]
        self._friday = _day_numbers(fridays)
        self._moved = _day_numbers(pd.DatetimeIndex(moved))
        self._third = np.asarray((fridays.day >= 15) & (fridays.day <= 21))

    def listed_dte(self, i: int) -> np.ndarray:
        """Calendar DTE of the expiries listed on day ``i`` (as listed_expiries lists them)."""
        spec, today = self.chain_spec, self.day_numbers[i]
        days = self._friday - today
        keep = (days >= 1) & ((days <= spec.weekly_max_days)
                              | (self._third & (days <= spec.monthly_max_days)))
        dte = self._moved[keep] - today
        return np.unique(dte[dte >= spec.min_days])

    def iv_rank(self, window: int) -> np.ndarray:
        """IV rank of the 30-day ATM IV over ``window`` sessions (cached per window)."""
        if window not in self._ranks:
            self._ranks[window] = np.asarray(iv_rank(self.atm30, window))
        return self._ranks[window]

    def quotes(self, i: int, strike, t, call, with_delta: bool = False):
        """(bid, ask, mid, delta or None) per share of contracts on day ``i``, all ``t > 0``."""
        spec = self.chain_spec
        spot, atm30, rate, div = self.close[i], self.atm30[i], self.rate[i], self.div[i]
        t = np.broadcast_to(t, np.shape(strike))  # element-wise like the chain's columns
        # the same operations, in the same order, as synthetic._quote_frame: equal quotes
        k = np.log(strike / (spot * np.exp((rate - div) * t)))
        z = k / (atm_term_iv(atm30, t, spec) * np.sqrt(t))
        iv = surface_iv(atm30, t, k, spec)
        price, delta = _bsm(spot, strike, t, rate, div, iv, call, with_delta)
        half = half_spread(price, z, atm30, spec)
        bid, ask = np.maximum(price - half, 0.0), price + half
        if spec.round_to_tick:
            bid = np.floor(bid / spec.tick + 1e-9) * spec.tick
            ask = np.maximum(np.ceil(ask / spec.tick - 1e-9), 1.0) * spec.tick
        bid, ask = np.round(bid, 10), np.round(ask, 10)
        return bid, ask, (bid + ask) / 2.0, delta

    def strikes(self, i: int, dte: int) -> np.ndarray:
        """The chain's strike grid on day ``i`` for an expiry ``dte`` calendar days away."""
        t = dte / 365.0
        forward = self.close[i] * math.exp((self.rate[i] - self.div[i]) * t)
        atm_t = float(atm_term_iv(self.atm30[i], t, self.chain_spec))
        return strike_grid(self.close[i], forward, atm_t, t, self.chain_spec)


def prepare_market(
    underlying_close_unadjusted: pd.Series,
    vix: pd.Series | None,
    chain_spec: SyntheticChainSpec = DEFAULT_SPEC,
    rate: float | pd.Series = 0.0,
    div: float | pd.Series = 0.0,
    underlying: str | None = None,
) -> OptionsMarket:
    """Prepare the per-day market of :func:`run_options_backtest` (reuse it across specs).

    Parameters
    ----------
    underlying_close_unadjusted : Series
        Daily closes as traded (strikes live on this scale; not dividend-adjusted).
    vix : Series or None
        VIX closes in points for ``chain_spec.iv_source == "vix"`` (used as of each day, at most
        7 days old), ATM vols for ``"atm"``; None for ``"realized"``.
    chain_spec : SyntheticChainSpec
        The chain model (levels, surface, spreads, commissions, expiries, multiplier).
    rate, div : float or Series
        Continuous rate and dividend yield (decimals), constant or dated (used as of each day).
    underlying : str, optional
        Root of the contract symbols; default the Series name, else "SYN".

    Raises
    ------
    DataError
        Malformed series, or a level the chain model refuses (e.g. VIX outside [1, 200]).
    ConfigError
        The level series does not match ``chain_spec.iv_source``.
    """
    from framework.data.calendars import xnys_sessions  # deferred: the calendar costs ~0.2 s

    closes, name = _day_series(underlying_close_unadjusted, "underlying_close_unadjusted")
    if closes.empty:
        raise DataError("underlying_close_unadjusted is empty; pass daily closes.")
    days = closes.index
    # the levels synthetic_chains would use: VIX as of the day (<= 7 days old) or realised vol
    level = _levels(closes, vix, chain_spec).to_numpy(dtype=np.float64)
    atm30 = np.array([anchor_atm_iv(v, chain_spec) if np.isfinite(v) else np.nan for v in level])
    name = underlying or name or "SYN"
    market = OptionsMarket(closes, atm30, _carry(rate, days, "rate"), _carry(div, days, "div"),
                           chain_spec, name, xnys_sessions()[0])
    market.carry_note = {key: (float(value) if _is_number(value) else "dated series, as of each day")
                         for key, value in (("rate", rate), ("div", div))}
    return market


# -- the simulation -----------------------------------------------------------------------------


@dataclass
class _Position:
    """One open multi-leg position (per-share arrays for one unit; ``contracts`` units)."""

    trade_id: int
    spec: CreditSpreadSpec
    entry_i: int
    expiry: int  # day number
    call: np.ndarray
    strike: np.ndarray
    sign: np.ndarray  # +1 long / -1 short per unit
    contracts: int
    credit: float
    max_loss: float
    info: dict = field(default_factory=dict)
    commissions: float = 0.0
    mark: float = 0.0  # sum(sign * mid) per share: the liability's value (negative)
    delta: float = 0.0  # sum(sign * delta) per share


@dataclass(frozen=True)
class OptionsBacktestResult:
    """Everything a run produced (see :func:`run_options_backtest` for the columns)."""

    equity: pd.Series
    returns: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    fills: pd.DataFrame
    costs: dict[str, float]
    summary: dict[str, float | int]
    assumptions: dict[str, object]
    risk_events: dict[str, int] = field(default_factory=dict)


_TRADE_COLUMNS = ["trade_id", "entry_date", "exit_date", "kind", "expiry", "legs", "contracts",
                  "credit", "exit_debit", "max_loss", "commissions", "pnl", "exit_reason",
                  "days_held", "entry_spot", "exit_spot", "dte_at_entry", "iv_rank_at_entry",
                  "short_deltas", "spec_index"]
_PNL = _TRADE_COLUMNS.index("pnl")
_FILL_COLUMNS = ["date", "trade_id", "symbol", "action", "quantity", "price", "commission"]


class _Simulation:
    """The day loop; state is the cash, the open positions and the records written so far."""

    def __init__(self, market: OptionsMarket, initial_cash: float) -> None:
        self.m = market
        self.mult = market.chain_spec.multiplier
        self.cash = float(initial_cash)
        self.open: list[_Position] = []
        self.trades: list[list] = []
        self.fills: list[tuple] = []
        self.spread_paid = 0.0
        self.commissions = 0.0
        self.next_id = 0
        self.last_entry = -(10**9)

    # - fills ---------------------------------------------------------------------------------
    def _symbol(self, pos: _Position, leg: int) -> str:
        expiry = pd.Timestamp(int(pos.expiry), unit="D")
        right = "C" if pos.call[leg] else "P"
        return occ_code(self.m.underlying, expiry, right, pos.strike[leg])

    def _fill_legs(self, i, pos, action, quantity, price, mid, commission) -> None:
        """Record one fill per leg; ``quantity``/``price``/``mid`` are per-leg arrays."""
        day = self.m.days[i]
        legs = len(pos.sign)
        for leg in range(legs):
            self.fills.append((day, pos.trade_id, self._symbol(pos, leg), action,
                               int(quantity[leg]), float(price[leg]), commission[leg]))
        self.spread_paid += float(np.sum(np.abs(price - mid) * np.abs(quantity))) * self.mult
        total = float(np.sum(commission))
        self.commissions += total
        pos.commissions += total
        self.cash -= float(np.sum(quantity * price)) * self.mult + total

    def _close_trade(self, i, pos, debit, reason) -> None:
        self.open.remove(pos)
        pnl = (pos.credit - debit) * pos.contracts * self.mult - pos.commissions
        entry, exit_ = self.m.days[pos.entry_i], self.m.days[i]
        self.trades.append([
            pos.trade_id, entry, exit_, pos.spec.kind, pd.Timestamp(int(pos.expiry), unit="D"),
            pos.info["legs"], pos.contracts, pos.credit, debit, pos.max_loss, pos.commissions,
            pnl, reason, (exit_ - entry).days, self.m.close[pos.entry_i], self.m.close[i],
            pos.info["dte"], pos.info["rank"], pos.info["deltas"], pos.info["segment"]])

    # - exits ---------------------------------------------------------------------------------
    def settle(self, i: int, pos: _Position) -> None:
        """Expiry: every leg at intrinsic against the expiry close; ITM legs assigned/exercised."""
        m = self.m
        j = int(np.searchsorted(m.day_numbers, pos.expiry, side="right")) - 1
        spot = m.close[j]
        intrinsic = np.where(pos.call, np.maximum(spot - pos.strike, 0.0),
                             np.maximum(pos.strike - spot, 0.0))
        itm = intrinsic > 0
        fee = m.chain_spec.commission(pos.contracts)
        commission = np.where(itm, fee, 0.0)
        actions = np.where(itm, np.where(pos.sign < 0, "assign", "exercise"), "expire")
        quantity = -pos.sign * pos.contracts
        day = m.days[i]
        for leg in range(len(pos.sign)):
            self.fills.append((day, pos.trade_id, self._symbol(pos, leg), str(actions[leg]),
                               int(quantity[leg]), float(intrinsic[leg]), float(commission[leg])))
        total = float(commission.sum())
        self.commissions += total
        pos.commissions += total
        self.cash += float(np.sum(pos.sign * intrinsic)) * pos.contracts * self.mult - total
        reason = "assignment" if bool(np.any(itm & (pos.sign < 0))) else "expiry"
        self._close_trade(i, pos, float(-np.sum(pos.sign * intrinsic)) + 0.0, reason)  # no -0.0

    def mark_and_exit(self, i: int, last: bool, force: str | None = None) -> None:
        """Quote the open legs at day ``i``'s close; close positions whose exit rule fires
        (every one, with reason ``force``, when given: a risk breaker)."""
        if not self.open:
            return
        m = self.m
        today = m.day_numbers[i]
        call = np.concatenate([p.call for p in self.open])
        strike = np.concatenate([p.strike for p in self.open])
        t = np.concatenate([np.full(len(p.sign), (p.expiry - today) / 365.0) for p in self.open])
        bid, ask, mid, delta = m.quotes(i, strike, t, call, with_delta=True)
        start = 0
        for pos in list(self.open):
            legs = slice(start, start + len(pos.sign))
            start += len(pos.sign)
            pos.mark = float(pos.sign @ mid[legs])
            pos.delta = float(pos.sign @ delta[legs])
            fill = np.where(pos.sign < 0, ask[legs], bid[legs])
            debit = -float(pos.sign @ fill)
            reason = force or self._exit_reason(pos, debit, int(pos.expiry - today), last)
            if reason is not None:
                quantity = -pos.sign * pos.contracts
                fee = m.chain_spec.commission(pos.contracts * len(pos.sign)) / len(pos.sign)
                self._fill_legs(i, pos, "close", quantity, fill, mid[legs],
                                np.full(len(pos.sign), fee))
                self._close_trade(i, pos, debit, reason)

    @staticmethod
    def _exit_reason(pos: _Position, debit: float, dte: int, last: bool) -> str | None:
        spec = pos.spec
        if spec.take_profit is not None and debit <= (1.0 - spec.take_profit) * pos.credit:
            return "take_profit"
        if spec.stop_multiple is not None and debit - pos.credit >= spec.stop_multiple * pos.credit:
            return "stop"
        if dte <= spec.exit_dte:
            return "dte"
        return "end" if last else None

    # - entries -------------------------------------------------------------------------------
    def equity(self) -> float:
        return self.cash + sum(p.mark * p.contracts for p in self.open) * self.mult

    def try_enter(self, i: int, spec: CreditSpreadSpec, segment: int, rank: float,
                  risk: OptionsRisk = _NO_RISK) -> None:
        """Open a position at day ``i``'s close when the chain offers one that fits the rules."""
        m = self.m
        dte_listed = m.listed_dte(i)
        window = dte_listed[(dte_listed >= spec.dte_min) & (dte_listed <= spec.dte_max)]
        if window.size == 0:
            return
        # nearest to the middle; argmin takes the first (earliest) on a tie
        dte = int(window[np.argmin(np.abs(2 * window - (spec.dte_min + spec.dte_max)))])
        grid = m.strikes(i, dte)
        sides = {"bull_put": (False,), "bear_call": (True,), "iron_condor": (False, True)}
        legs = [self._side(i, grid, dte, is_call, spec) for is_call in sides[spec.kind]]
        if any(side is None for side in legs):
            return
        call = np.array([c for side in legs for c in side["call"]])
        strike = np.array([k for side in legs for k in side["strike"]])
        sign = np.array([s for side in legs for s in side["sign"]], dtype=np.float64)
        bid = np.array([b for side in legs for b in side["bid"]])
        ask = np.array([a for side in legs for a in side["ask"]])
        fill = np.where(sign < 0, bid, ask)
        credit = float(-np.sum(sign * fill))
        width = max(side["width"] for side in legs)
        per_contract = (width - credit) * self.mult
        if credit <= 0 or per_contract <= 0:
            return
        contracts = self._size(spec, per_contract, risk)
        if contracts == 0:
            return
        pos = _Position(self.next_id, spec, i, int(m.day_numbers[i] + dte), call, strike, sign,
                        contracts, credit, per_contract * contracts)
        mid = (bid + ask) / 2.0
        fee = m.chain_spec.commission(contracts * len(sign)) / len(sign)
        self._fill_legs(i, pos, "open", sign * contracts, fill, mid, np.full(len(sign), fee))
        pos.mark = float(np.sum(sign * mid))
        pos.delta = float(np.sum([d for side in legs for d in side["delta"]] * sign))
        expiry = pd.Timestamp(int(pos.expiry), unit="D").date().isoformat()
        pos.info = {
            "legs": "; ".join(f"{int(s * contracts):+d} {'C' if c else 'P'} {k:g} {expiry} @ "
                              f"{f:.2f}" for s, c, k, f in zip(sign, call, strike, fill,
                                                               strict=True)),
            "dte": dte, "rank": rank, "segment": segment,
            "deltas": "/".join(f"{abs(side['delta'][0]):.3f}" for side in legs)}
        self.open.append(pos)
        self.next_id += 1
        self.last_entry = i

    def _side(self, i, grid, dte, is_call, spec):
        """Short and long wing of one vertical (or None when the grid has no wing)."""
        t = dte / 365.0
        strikes = grid[::-1] if is_call else grid  # farther OTM first: argmin breaks ties to it
        bid, ask, _, delta = self.m.quotes(i, strikes, t, is_call, with_delta=True)
        short = int(np.argmin(np.abs(np.abs(delta) - spec.short_delta)))
        if short == 0:
            return None  # no strike beyond the short one
        # indices below ``short`` lie beyond it (farther OTM), the widest first: argmin over them
        # takes the wider strike when two are equally near the target
        target = strikes[short] + (spec.width if is_call else -spec.width)
        wing = int(np.argmin(np.abs(strikes[:short] - target)))
        pair = [short, wing]
        return {"call": [is_call, is_call], "strike": [float(strikes[k]) for k in pair],
                "sign": [-1.0, 1.0], "bid": [bid[k] for k in pair], "ask": [ask[k] for k in pair],
                "delta": [float(delta[k]) for k in pair],
                "width": abs(float(strikes[short] - strikes[wing]))}

    def _size(self, spec: CreditSpreadSpec, per_contract: float, risk: OptionsRisk) -> int:
        equity = self.equity()
        budget = spec.risk_per_trade * equity
        contracts = math.floor(budget / per_contract)
        if contracts == 0 and per_contract <= 2.0 * budget:
            contracts = 1
        if risk.max_position is not None:
            contracts = min(contracts, math.floor(risk.max_position * equity / per_contract))
        room = risk.max_gross * equity - sum(p.max_loss for p in self.open)
        return max(0, min(contracts, math.floor(room / per_contract)))


def _naive_day(value: object, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} {value!r} is not a date; use 'YYYY-MM-DD'.") from exc
    if stamp.tz is not None:
        stamp = stamp.tz_convert(NEW_YORK).tz_localize(None)
    return stamp.normalize()


def _window(market: OptionsMarket, start: object, end: object) -> tuple[int, int]:
    """Index range ``[lo, hi)`` of the trading days; every day in it must have a full market."""
    days = market.days
    lo = 0 if start is None else int(days.searchsorted(_naive_day(start, "start")))
    hi = len(days) if end is None else int(days.searchsorted(_naive_day(end, "end"),
                                                            side="right"))
    usable = np.isfinite(market.atm30) & np.isfinite(market.rate) & np.isfinite(market.div)
    if start is None and usable.any():
        lo = max(lo, int(np.argmax(usable)))  # by default start where the market starts
    if hi - lo < 2:
        raise DataError(
            f"the window {start!r} .. {end!r} holds {max(hi - lo, 0)} usable days of the "
            f"underlying ({days[0].date()} .. {days[-1].date()}); a backtest needs at least 2.")
    missing = np.flatnonzero(~usable[lo:hi])
    if missing.size:
        day = days[lo + missing[0]].date()
        raise DataError(
            f"no vol level (VIX as of the day, at most {_LEVEL_STALE_DAYS} days old, or a full "
            f"realised-vol window) or rate on {day} ({missing.size} such days in the window); "
            "start after the gap or fill the level series.")
    return lo, hi


def trading_window(market: OptionsMarket, start: object = None,
                   end: object = None) -> tuple[int, int]:
    """Index range ``[lo, hi)`` of ``market.days`` a run over ``start .. end`` trades (default:
    from the first day with a vol level); raises DataError as a run would."""
    return _window(market, start, end)


def _segments(market: OptionsMarket, schedule: CreditSpreadSchedule | None, lo: int,
              hi: int) -> np.ndarray:
    """Index of the spec in force on each window day (-1: before the schedule's first date)."""
    if schedule is None:
        return np.zeros(hi - lo, dtype=np.int64)
    starts = _day_numbers(pd.DatetimeIndex([s for s, _ in schedule.entries]))
    return np.searchsorted(starts, market.day_numbers[lo:hi], side="right") - 1


def run_options_backtest(
    market: OptionsMarket,
    spec_or_schedule: CreditSpreadSpec | CreditSpreadSchedule | Sequence | Mapping,
    initial_cash: float = 100_000.0,
    start: object = None,
    end: object = None,
    risk: OptionsRisk | None = None,
) -> OptionsBacktestResult:
    """Simulate the credit-spread strategy on a prepared market.

    Parameters
    ----------
    market : OptionsMarket
        From :func:`prepare_market` (reuse it for many parameter sets).
    spec_or_schedule : CreditSpreadSpec, CreditSpreadSchedule, or (date, spec) pairs / mapping
        One spec for the whole window, or specs taking effect at dates (see
        :class:`CreditSpreadSchedule`).
    initial_cash : float
        Starting equity in dollars (> 0).
    start, end : date-like, optional
        Trading window (inclusive); earlier history still feeds the IV rank. Default: from the
        first day with a vol level to the last close.
    risk : OptionsRisk, optional
        The risk layer's rules on max loss and the equity curve (:mod:`framework.options.risk`);
        default: only defined-risk margin within equity.

    Returns
    -------
    OptionsBacktestResult
        ``equity``/``returns`` per window day (returns[0] against ``initial_cash``);
        ``positions`` (per day: ``open_positions``, ``max_loss`` dollars at risk, ``net_delta``
        in shares, ``cash``); ``trades`` (one row per position, columns ``_TRADE_COLUMNS``:
        credit / exit_debit per share, pnl = (credit - exit_debit) x 100 x contracts -
        commissions); ``fills`` (one row per leg per fill: date, trade_id, OCC-like symbol,
        action open/close/expire/assign/exercise, signed quantity, price, commission); ``costs``
        (commissions, spread_paid); ``summary`` (total_return, cagr, annual_volatility, sharpe,
        max_drawdown, win_rate, n_trades, avg_days_held, exposure = mean max loss at risk /
        equity, total_costs; as :func:`framework.metrics.summarize` defines them);
        ``assumptions``.

    Raises
    ------
    ConfigError
        Bad spec / schedule or initial cash.
    DataError
        The window has no usable days, or a day in it lacks a vol level or rate.
    """
    if not _is_number(initial_cash) or initial_cash <= 0:
        raise ConfigError(f"initial_cash must be a positive number of dollars; got "
                          f"{initial_cash!r}.")
    schedule, specs = _as_schedule(spec_or_schedule)
    lo, hi = _window(market, start, end)
    segments = _segments(market, schedule, lo, hi)
    ranks = {spec.iv_rank_window: market.iv_rank(spec.iv_rank_window) for spec in specs}
    risk = risk or _NO_RISK
    sim = _Simulation(market, float(initial_cash))
    guard = RiskGuard(risk, float(initial_cash))
    record = np.empty((hi - lo, 5))
    for k, i in enumerate(range(lo, hi)):
        last = i == hi - 1
        today = market.day_numbers[i]
        closed = len(sim.trades)
        for pos in [p for p in sim.open if p.expiry <= today]:
            sim.settle(i, pos)
        sim.mark_and_exit(i, last)
        flatten = guard.update(k, sim.equity(), [t[_PNL] for t in sim.trades[closed:]])
        if flatten is not None and not last:
            sim.mark_and_exit(i, False, force=flatten)
        if segments[k] >= 0 and not last and guard.may_enter(k):
            spec = specs[segments[k]]
            rank = ranks[spec.iv_rank_window][i]
            # a NaN rank (warm-up, flat window) passes only when the gate is off (min 0)
            gate = spec.iv_rank_min == 0.0 or rank >= spec.iv_rank_min
            max_open = min(spec.max_open, risk.max_positions or spec.max_open)
            if (gate and len(sim.open) < max_open
                    and i - sim.last_entry >= spec.entry_every_days):
                sim.try_enter(i, spec, int(segments[k]), float(rank), risk)
        record[k] = (sim.equity(), len(sim.open), sum(p.max_loss for p in sim.open),
                     sum(p.delta * p.contracts for p in sim.open) * sim.mult, sim.cash)
    result = _result(market, sim, record, lo, hi, initial_cash, schedule, specs)
    result.risk_events.update(guard.events)
    result.assumptions["risk"] = risk.describe()
    return result


def _result(market, sim, record, lo, hi, initial_cash, schedule, specs) -> OptionsBacktestResult:
    index = market.days[lo:hi]
    equity = pd.Series(record[:, 0], index=index, name="equity")
    returns = equity / np.concatenate([[initial_cash], record[:-1, 0]]) - 1.0
    returns.name = "returns"
    positions = pd.DataFrame({"open_positions": record[:, 1].astype(np.int64),
                              "max_loss": record[:, 2], "net_delta": record[:, 3],
                              "cash": record[:, 4]}, index=index)
    trades = pd.DataFrame(sim.trades, columns=_TRADE_COLUMNS)
    trades = trades.sort_values("trade_id", kind="stable").reset_index(drop=True)  # entry order
    fills = pd.DataFrame(sim.fills, columns=_FILL_COLUMNS)
    costs = {"commissions": sim.commissions, "spread_paid": sim.spread_paid}
    with np.errstate(divide="ignore", invalid="ignore"):
        at_risk = np.where(record[:, 0] > 0, record[:, 2] / record[:, 0], 0.0)
    summary = _summary(returns.to_numpy(), trades, at_risk, costs)
    assumptions = {
        **ASSUMPTIONS,
        "underlying": market.underlying,
        "window": f"{index[0].date()} .. {index[-1].date()}",
        "initial_cash": float(initial_cash),
        "rate": market.carry_note["rate"],
        "div": market.carry_note["div"],
        "chain_spec": market.chain_spec.to_dict(),
        "strategy": specs[0].to_dict() if schedule is None else schedule.to_dict(),
        "periods_per_year": PERIODS_PER_YEAR,
    }
    return OptionsBacktestResult(equity, returns, positions, trades, fills, costs, summary,
                                 assumptions)


def _summary(returns: np.ndarray, trades: pd.DataFrame, at_risk: np.ndarray,
             costs: dict[str, float]) -> dict[str, float | int]:
    """Headline numbers from :mod:`framework.metrics` (the same definitions as every run's)."""
    pnl = trades["pnl"].to_numpy(dtype=np.float64)
    return {
        "total_return": metrics.total_return(returns),
        "cagr": metrics.cagr(returns, PERIODS_PER_YEAR),
        "annual_volatility": metrics.annual_volatility(returns, PERIODS_PER_YEAR),
        "sharpe": metrics.sharpe(returns, PERIODS_PER_YEAR),
        "max_drawdown": metrics.max_drawdown(returns),
        "win_rate": metrics.win_rate(pnl),
        "n_trades": int(pnl.size),
        "avg_days_held": metrics.avg_days_held(trades["days_held"].to_numpy(dtype=np.float64)),
        "exposure": metrics.exposure(at_risk),
        "total_costs": float(sum(costs.values())),
    }


def backtest_options(
    underlying_close_unadjusted: pd.Series,
    vix: pd.Series | None,
    spec_or_schedule: CreditSpreadSpec | CreditSpreadSchedule | Sequence | Mapping,
    chain_spec: SyntheticChainSpec = DEFAULT_SPEC,
    initial_cash: float = 100_000.0,
    start: object = None,
    end: object = None,
    rate: float | pd.Series = 0.0,
    div: float | pd.Series = 0.0,
) -> OptionsBacktestResult:
    """Backtest credit spreads / iron condors on a synthetic chain (prepare + run in one call).

    Parameters are those of :func:`prepare_market` and :func:`run_options_backtest`; to run many
    parameter sets, prepare the market once and call :func:`run_options_backtest` per set.
    """
    market = prepare_market(underlying_close_unadjusted, vix, chain_spec, rate, div)
    return run_options_backtest(market, spec_or_schedule, initial_cash, start, end)
