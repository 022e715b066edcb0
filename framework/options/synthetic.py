"""Synthetic option chains priced each day from the underlying's bars (for options backtests).

Historical option chains are rarely available, so a backtest can price a chain per day from the
underlying's close and a volatility level. Every assumption is a field of
:class:`SyntheticChainSpec` (``spec.to_dict()`` puts them in a report). The model:

1. **Level**: the 30-day at-the-money implied vol ``atm30`` from ``spec.iv_source``:
   ``"vix"``: ``vix_scale * VIX / 100`` (SPY; QQQ via :func:`spec_for_symbol`);
   ``"realized"``: ``rv_premium * realized vol`` of the last ``rv_window`` daily log returns
   (sample std, annualised with sqrt(252)); ``"atm"``: the level *is* ``atm30`` (decimal).
2. **Term structure** (mean-reverting variance): ``atm(t)**2 = L**2 + (v0 - L**2) * g(kappa t)``
   with ``g(u) = (1 - exp(-u)) / u``, ``L = term_long_run``, ``kappa = term_speed`` and ``v0``
   chosen so that ``atm(term_anchor_days / 365) == atm30``. Total ATM variance ``t * atm(t)**2``
   then grows with ``t`` in every regime (calm: upward sloping; stressed: inverted). When the
   level is so low that ``v0`` would fall under ``atm30**2 / 4``, ``L`` is lowered to keep it
   there (long-run vol at most ~2.6 x atm30 with the defaults).
3. **Skew** in standardised moneyness ``z = ln(K / F) / (atm(t) sqrt(t))`` (``F`` the forward):
   ``iv = atm(t) * f(z)`` with the hyperbola
   ``f(z) = 1 + (pc - pp)/2 * z + (pp + pc)/2 * (h(z) - h(0))``, ``h(z) = sqrt((z - m)**2 + s**2)``:
   the put wing rises by ``pp = skew_put_slope`` per standard deviation, the call wing by
   ``pc = skew_call_slope``, the smile bottoms near ``z = m`` (``skew_vertex``) with roundness
   ``s`` (``skew_smoothness``); then clipped to ``[min_iv, max_iv]``. In ``z`` the smile is the
   same at every expiry and vol level, which makes fixed-strike total variance non-decreasing in
   ``t`` (no calendar arbitrage) whenever ``(pp + pc)/2 * (|m| + h(0)) < 1``; the spec checks it.
4. **Grid**: weekly Friday expiries up to ``weekly_max_days`` and monthly (third-Friday) ones up
   to ``monthly_max_days``; an expiry Friday that is not an XNYS session moves to the prior
   session (beyond the calendar's range, about a year ahead of today, Fridays are kept). Strikes
   span ``-range_sd_put .. +range_sd_call`` standard deviations (``atm(t) sqrt(t)`` in log
   forward-moneyness) on a "nice" step (1, 2, 2.5, 5 x 10^n) of at least the level's
   ``strike_steps`` entry and at most ``strikes_per_sd`` strikes per standard deviation.
5. **Prices and quotes**: European Black-Scholes-Merton at the surface vol (the chain's ``iv``
   column holds it exactly). Half-spread ``max(tick / 2, (spread_base + spread_frac * price) *
   (1 + spread_moneyness * |z|) * max(1, atm30 / spread_vol_ref) ** spread_vol_power)``;
   bid/ask are rounded outwards to the tick (bid >= 0). Commission: ``commission_per_contract``
   per contract with ``commission_min`` per order (:meth:`SyntheticChainSpec.commission`).

Defaults (``DEFAULT_SPEC``) were fit with :func:`framework.options.synthetic_fit.fit_to_snapshot`
on the SPY snapshot of 2025-08-26 only (VIX close 14.62, r 4.30 %, q 1.10 %; ``term_speed`` fixed at 3, which one calm
snapshot cannot pin down) and checked on 2026-02-10 and 2026-05-01. On 20-60 day contracts with
|delta| 0.10-0.50 the median absolute IV error was 0.19 / 0.49 / 0.77 vol points and the median
relative mid error 2.5 / 5.0 / 8.1 %; the later dates' error is mostly level (ATM / VIX was
0.84-0.86 there against 0.81 on the fit date). ``python -m research.options_synthetic_check``
prints the tables. ``rv_premium`` is the median ATM30 / 21-day realised vol of SPY 1993-2026 and
``spread_vol_*`` an assumption (all snapshots are calm). Chains are synthetic: open interest,
volume and last trade are NaN, and they say nothing about liquidity; prices are European.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime

import numpy as np
import pandas as pd

from framework.errors import ConfigError, DataError
from framework.options.bsm import bsm_price
from framework.options.chains import CHAIN_COLUMNS, NEW_YORK, OptionChain
from framework.types import Bars

__all__ = [
    "DEFAULT_SPEC",
    "IV_SOURCES",
    "SyntheticChainSpec",
    "anchor_atm_iv",
    "atm_term_iv",
    "half_spread",
    "listed_expiries",
    "reprice_chain",
    "spec_for_symbol",
    "strike_grid",
    "surface_iv",
    "synthetic_chain",
    "synthetic_chains",
]

IV_SOURCES = ("vix", "realized", "atm")
TRADING_DAYS = 252.0
_CLOSE = pd.Timedelta(hours=16)  # end-of-day chains are stamped 16:00 New York, like load_chain
_NICE = (1.0, 2.0, 2.5, 5.0)
_SHORT_END = 0.25  # least instantaneous ATM variance, as a fraction of the anchor's
# QQQ / SPY ratio of 63-day realised vols, median 2010-2026 (research.options_synthetic_check)
QQQ_VOL_RATIO = 1.24


# field -> rule checked by SyntheticChainSpec (every numeric field must also be finite)
_RULES = {
    **dict.fromkeys(("vix_scale", "rv_premium", "term_anchor_days", "term_long_run",
                     "skew_smoothness", "min_iv", "max_iv", "strikes_per_sd", "range_sd_put",
                     "range_sd_call", "tick", "spread_vol_ref"), "> 0"),
    **dict.fromkeys(("term_speed", "skew_put_slope", "skew_call_slope", "spread_base",
                     "spread_frac", "spread_moneyness", "spread_vol_power",
                     "commission_per_contract", "commission_min"), ">= 0"),
    **dict.fromkeys(("skew_vertex", "rate", "dividend_yield"), "any"),
    **dict.fromkeys(("weekly_max_days", "monthly_max_days", "min_days"), "whole >= 0"),
    "multiplier": "whole >= 1",
    "rv_window": "whole >= 2",
}


def _check_number(name: str, value: object, rule: str) -> None:
    """ConfigError naming ``name`` unless ``value`` is a finite number obeying ``rule``."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    bound = -math.inf if rule == "any" else float(rule.split()[-1])
    bad = not math.isfinite(number) or number < bound or (rule == "> 0" and number == 0)
    if rule.startswith("whole") and not bad:
        bad = number != int(number)
    if bad:
        raise ConfigError(
            f"SyntheticChainSpec.{name} must be a finite number ({rule}); got {value!r}."
        )


@dataclass(frozen=True)
class SyntheticChainSpec:
    """Every assumption of the synthetic chain model (see the module docstring for formulas).

    Parameters
    ----------
    iv_source : {"vix", "realized", "atm"}
        How the level passed to :func:`synthetic_chain` becomes the 30-day ATM IV.
    vix_scale : float
        ATM30 = vix_scale * VIX / 100 (VIX exceeds ATM vol: it prices the whole smile).
    rv_window, rv_premium : int, float
        Realised-vol window (daily returns) and ATM30 / realised-vol ratio for "realized".
    term_anchor_days, term_long_run, term_speed : float
        Days at which ATM equals ATM30 (VIX's 30), long-run ATM vol, mean-reversion speed /year.
    skew_put_slope, skew_call_slope, skew_vertex, skew_smoothness : float
        Smile ``f(z)`` parameters in units of ATM vol and standard deviations (>= 0, >= 0, any,
        > 0).
    min_iv, max_iv : float
        Floor and cap of the surface vol (decimals).
    strike_steps : tuple of (float, float)
        ``((price_upper_bound, min_step), ...)`` ascending; the first bound >= spot applies.
    strikes_per_sd, range_sd_put, range_sd_call : float
        Strike density cap and the strike range in standard deviations below / above F.
    weekly_max_days, monthly_max_days, min_days : int
        Calendar-day horizons of weekly and monthly expiries; expiries closer than ``min_days``
        are not listed (1 drops same-day expiries).
    tick : float
        Quote tick; the half-spread is at least ``tick / 2``.
    spread_base, spread_frac, spread_moneyness : float
        Half-spread ``(base + frac * price) * (1 + moneyness * |z|)`` before the vol factor.
    spread_vol_ref, spread_vol_power : float
        Vol factor ``max(1, atm30 / ref) ** power`` (an assumption: the snapshots are all calm).
    round_to_tick : bool
        Round bid down and ask up to the tick.
    rate, dividend_yield : float
        Continuous decimals used when no rate / dividend is passed.
    commission_per_contract, commission_min : float
        Dollars per contract and minimum per order (IBKR-like fixed tier by default).
    multiplier : int
        Shares per contract.
    """

    iv_source: str = "vix"
    vix_scale: float = 0.771
    rv_window: int = 21
    rv_premium: float = 1.01
    term_anchor_days: float = 30.0
    term_long_run: float = 0.187
    term_speed: float = 3.0
    skew_put_slope: float = 0.330
    skew_call_slope: float = 0.157
    skew_vertex: float = 0.873
    skew_smoothness: float = 0.343
    min_iv: float = 0.01
    max_iv: float = 3.0
    strike_steps: tuple[tuple[float, float], ...] = ((25.0, 0.5), (math.inf, 1.0))
    strikes_per_sd: float = 25.0
    range_sd_put: float = 4.0
    range_sd_call: float = 3.0
    weekly_max_days: int = 63
    monthly_max_days: int = 400
    min_days: int = 1
    tick: float = 0.01
    spread_base: float = 0.0059
    spread_frac: float = 0.0021
    spread_moneyness: float = 0.0033
    spread_vol_ref: float = 0.20
    spread_vol_power: float = 1.0
    round_to_tick: bool = True
    rate: float = 0.04
    dividend_yield: float = 0.012
    commission_per_contract: float = 0.65
    commission_min: float = 1.0
    multiplier: int = 100

    def __post_init__(self) -> None:
        if self.iv_source not in IV_SOURCES:
            raise ConfigError(
                f"SyntheticChainSpec.iv_source must be one of {IV_SOURCES}; got "
                f"{self.iv_source!r}. Use 'vix' for SPY/QQQ, 'realized' otherwise."
            )
        for name, rule in _RULES.items():
            _check_number(name, getattr(self, name), rule)
        if self.max_iv <= self.min_iv:
            raise ConfigError(
                f"SyntheticChainSpec.max_iv ({self.max_iv!r}) must exceed min_iv ({self.min_iv!r})."
            )
        steps = self.strike_steps
        ok = isinstance(steps, tuple) and len(steps) > 0 and all(
            isinstance(s, tuple) and len(s) == 2 and s[1] > 0 for s in steps
        )
        if not ok or list(steps) != sorted(steps) or steps[-1][0] != math.inf:
            raise ConfigError(
                f"SyntheticChainSpec.strike_steps must be ((upper_price, step > 0), ...) sorted "
                f"by price and ending with math.inf; got {steps!r}. Example: ((25.0, 0.5), "
                "(math.inf, 1.0))."
            )
        half = (self.skew_put_slope + self.skew_call_slope) / 2.0
        if half * (abs(self.skew_vertex) + math.hypot(self.skew_vertex, self.skew_smoothness)) >= 1:
            raise ConfigError(
                f"skew parameters (put {self.skew_put_slope}, call {self.skew_call_slope}, vertex "
                f"{self.skew_vertex}, smoothness {self.skew_smoothness}) allow calendar arbitrage: "
                "(put+call)/2 * (|vertex| + hypot(vertex, smoothness)) must be < 1. Lower the "
                "slopes or move the vertex towards 0."
            )

    def to_dict(self) -> dict[str, object]:
        """Plain dict of every parameter (``strike_steps`` as a list of lists), for reports."""
        out = asdict(self)
        out["strike_steps"] = [list(s) for s in self.strike_steps]
        return out

    def with_overrides(self, overrides: Mapping[str, object]) -> SyntheticChainSpec:
        """A copy with some fields replaced (validated); unknown names raise ConfigError."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown SyntheticChainSpec field(s) {unknown}; valid fields: {sorted(known)}."
            )
        return replace(self, **overrides)

    def commission(self, contracts: float) -> float:
        """Commission in dollars of one order for ``contracts`` (sign ignored; 0 for none)."""
        count = abs(float(contracts))
        if count == 0:
            return 0.0
        return max(count * self.commission_per_contract, self.commission_min)

    def min_strike_step(self, spot: float) -> float:
        """The ``strike_steps`` entry for ``spot``."""
        return next(step for bound, step in self.strike_steps if spot <= bound)


DEFAULT_SPEC = SyntheticChainSpec()


def spec_for_symbol(symbol: str, spec: SyntheticChainSpec = DEFAULT_SPEC) -> SyntheticChainSpec:
    """``spec`` adapted to ``symbol``: VIX-scaled for SPY and QQQ, realised-vol based otherwise.

    QQQ scales VIX by ``QQQ_VOL_RATIO`` (its realised vol relative to SPY's, measured); every
    other symbol uses ``iv_source="realized"`` with ``spec``'s premium. Skew and term-structure
    parameters stay those fit on SPY: an assumption for other underlyings.
    """
    name = symbol.strip().upper()
    if name == "SPY":
        return replace(spec, iv_source="vix")
    if name == "QQQ":
        return replace(spec, iv_source="vix", vix_scale=spec.vix_scale * QQQ_VOL_RATIO)
    return replace(spec, iv_source="realized")


# -- the volatility surface ----------------------------------------------------------------------


def anchor_atm_iv(level: float, spec: SyntheticChainSpec) -> float:
    """The 30-day ATM IV implied by ``level`` under ``spec.iv_source``.

    Raises
    ------
    DataError
        ``level`` not finite and > 0, or a VIX outside [1, 200] points (a decimal such as 0.17
        was probably passed instead of 17).
    """
    value = float(level)
    if not math.isfinite(value) or value <= 0:
        raise DataError(f"volatility level must be finite and > 0; got {level!r}.")
    if spec.iv_source == "vix":
        if not 1.0 <= value <= 200.0:
            raise DataError(
                f"VIX level {level!r} is outside [1, 200] index points; pass the VIX close in "
                "points (e.g. 16.99), not a decimal."
            )
        return spec.vix_scale * value / 100.0
    if value > 5.0:
        raise DataError(
            f"{spec.iv_source} vol {level!r} looks like percent; pass a decimal (0.18 for 18 %)."
        )
    return spec.rv_premium * value if spec.iv_source == "realized" else value


def _g(u: np.ndarray) -> np.ndarray:
    """``(1 - exp(-u)) / u`` with its limit 1 at ``u = 0``."""
    u = np.asarray(u, dtype=np.float64)
    small = u < 1e-8
    return np.where(small, 1.0 - u / 2.0, -np.expm1(-u) / np.where(small, 1.0, u))


# The surface works on a plain parameter mapping so that the calibration can evaluate trial values
# without building (and validating) a spec for each one.
_SURFACE_FIELDS = ("term_long_run", "term_speed", "term_anchor_days", "skew_put_slope",
                   "skew_call_slope", "skew_vertex", "skew_smoothness", "min_iv", "max_iv")


def _surface_params(spec: SyntheticChainSpec) -> dict[str, float]:
    return {name: float(getattr(spec, name)) for name in _SURFACE_FIELDS}


def _atm_curve(atm30: float, t: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    theta, v30 = p["term_long_run"] ** 2, atm30**2
    anchor = float(_g(np.float64(p["term_speed"] * p["term_anchor_days"] / 365.0)))
    if anchor < 1.0:
        # a very low level under a high long-run vol would need a negative short-end variance:
        # lower the long-run level so that the short end keeps a quarter of the anchor variance
        theta = min(theta, v30 * (1.0 - _SHORT_END * anchor) / (1.0 - anchor))
    v0 = theta + (v30 - theta) / anchor
    return np.sqrt(theta + (v0 - theta) * _g(p["term_speed"] * np.asarray(t, dtype=np.float64)))


def _smile(z: np.ndarray, p: Mapping[str, float]) -> np.ndarray:
    """Smile ratio ``f(z)`` (1 at the money)."""
    m, s = p["skew_vertex"], p["skew_smoothness"]
    put, call = p["skew_put_slope"], p["skew_call_slope"]
    h = np.sqrt((z - m) ** 2 + s**2) - math.hypot(m, s)
    return 1.0 + (call - put) / 2.0 * z + (put + call) / 2.0 * h


def _surface(atm30: float, t: np.ndarray, k: np.ndarray, p: Mapping[str, float]):
    """(surface vol, ATM vol, standardised moneyness z) at years ``t`` and ``k = ln(K/F)``."""
    t = np.asarray(t, dtype=np.float64)
    atm = _atm_curve(atm30, t, p)
    z = np.asarray(k, dtype=np.float64) / (atm * np.sqrt(t))
    return np.clip(atm * _smile(z, p), p["min_iv"], p["max_iv"]), atm, z


def atm_term_iv(atm30: float, t: np.ndarray, spec: SyntheticChainSpec) -> np.ndarray:
    """ATM implied vol at years ``t`` given the 30-day (``term_anchor_days``) ATM vol ``atm30``."""
    return _atm_curve(atm30, t, _surface_params(spec))


def surface_iv(
    atm30: float, t: np.ndarray, log_moneyness: np.ndarray, spec: SyntheticChainSpec
) -> np.ndarray:
    """Surface vol at years ``t`` (> 0) and forward log-moneyness ``ln(K / F)`` (broadcast)."""
    return _surface(atm30, t, log_moneyness, _surface_params(spec))[0]


def half_spread(
    price: np.ndarray, z: np.ndarray, atm30: float, spec: SyntheticChainSpec
) -> np.ndarray:
    """Half bid-ask spread for theoretical ``price`` at standardised moneyness ``z``."""
    vol_factor = max(1.0, atm30 / spec.spread_vol_ref) ** spec.spread_vol_power
    raw = (spec.spread_base + spec.spread_frac * np.asarray(price)) * (
        1.0 + spec.spread_moneyness * np.abs(z)
    )
    return np.maximum(spec.tick / 2.0, raw * vol_factor)


# -- expiries and strikes ------------------------------------------------------------------------


def _sessions() -> pd.DatetimeIndex:
    from framework.data.calendars import xnys_sessions  # deferred: building it takes ~0.5 s

    return xnys_sessions()[0]


def listed_expiries(
    day: date, spec: SyntheticChainSpec, sessions: pd.DatetimeIndex | None = None
) -> list[date]:
    """Expiries listed on ``day``: weekly and monthly Fridays, holidays moved to the prior session.

    Parameters
    ----------
    day : date
        The chain's date.
    spec : SyntheticChainSpec
        ``weekly_max_days``, ``monthly_max_days`` and ``min_days``.
    sessions : DatetimeIndex, optional
        XNYS session dates (naive); built from ``framework.data.calendars`` when omitted.
    """
    sessions = _sessions() if sessions is None else sessions
    horizon = max(spec.weekly_max_days, spec.monthly_max_days)
    start = pd.Timestamp(day)
    fridays = pd.date_range(start + pd.Timedelta(days=1), start + pd.Timedelta(days=horizon),
                            freq="W-FRI")
    days = (fridays - start).days
    third = (fridays.day >= 15) & (fridays.day <= 21)
    keep = (days <= spec.weekly_max_days) | (third & (days <= spec.monthly_max_days))
    out = set()
    for friday in fridays[keep]:
        moved = friday
        if sessions[0] <= friday <= sessions[-1] and friday not in sessions:
            moved = sessions[sessions.searchsorted(friday, side="right") - 1]
        if (moved - start).days >= spec.min_days:
            out.add(moved.date())
    return sorted(out)


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n that is >= ``raw``."""
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (*_NICE, 10.0):
        if mult * power >= raw * (1 - 1e-12):
            return mult * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def strike_grid(
    spot: float, forward: float, atm_t: float, t: float, spec: SyntheticChainSpec
) -> np.ndarray:
    """Strikes of one expiry: the spec's range in standard deviations on a nice step."""
    sd = atm_t * math.sqrt(t)
    step = _nice_step(max(spec.min_strike_step(spot), forward * sd / spec.strikes_per_sd))
    lo = math.ceil(forward * math.exp(-spec.range_sd_put * sd) / step - 1e-9)
    hi = math.floor(forward * math.exp(spec.range_sd_call * sd) / step + 1e-9)
    # always bracket the forward, however narrow the range
    lo = max(1, min(lo, math.floor(forward / step)))
    hi = max(hi, math.ceil(forward / step), lo)
    return np.round(np.arange(lo, hi + 1) * step, 8)


# -- chains --------------------------------------------------------------------------------------


def _as_day(value: object, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return pd.Timestamp(str(value)).date()
    except ValueError as exc:
        raise DataError(f"{what} must be a date or 'YYYY-MM-DD'; got {value!r}.") from exc


def _snapshot(day: date) -> pd.Timestamp:
    local = (pd.Timestamp(day) + _CLOSE).tz_localize(NEW_YORK)
    return local.tz_convert("UTC").as_unit("us")


def _quote_frame(
    rows: pd.DataFrame, spot: float, atm30: float, spec: SyntheticChainSpec, carry: tuple
) -> pd.DataFrame:
    """Fill ``iv``, ``bid`` and ``ask`` of contract rows (expiry, right, strike, t)."""
    rate, div = carry
    t = rows["t"].to_numpy()
    strike = rows["strike"].to_numpy()
    call = (rows["right"] == "C").to_numpy()
    k = np.log(strike / (spot * np.exp((rate - div) * t)))
    iv, _, z = _surface(atm30, t, k, _surface_params(spec))
    price = bsm_price(spot, strike, t, rate, div, iv, call)
    half = half_spread(price, z, atm30, spec)
    bid, ask = np.maximum(price - half, 0.0), price + half
    if spec.round_to_tick:
        bid = np.floor(bid / spec.tick + 1e-9) * spec.tick
        ask = np.maximum(np.ceil(ask / spec.tick - 1e-9), 1.0) * spec.tick
    return rows.assign(iv=iv, bid=np.round(bid, 10), ask=np.round(ask, 10))


def _chain_from_rows(
    rows: pd.DataFrame, snapshot: pd.Timestamp, underlying: str, spot: float, carry: tuple
) -> OptionChain:
    """Assemble the load_chain schema (same columns and dtypes) from quoted rows."""
    n = len(rows)
    nan = np.full(n, np.nan)
    # OCC-style symbols (ROOT + YYMMDD + C/P + strike x 1000 on 8 digits), built vectorised
    expiry = rows["expiry"].to_numpy()
    roots = {e: f"{underlying}{e:%y%m%d}" for e in set(expiry)}
    prefix = np.char.add(np.array([roots[e] for e in expiry]), rows["right"].to_numpy(dtype=str))
    thousandths = np.round(rows["strike"].to_numpy() * 1000).astype(np.int64).astype(str)
    contracts = np.char.add(prefix, np.char.zfill(thousandths, 8)).astype(object)
    frame = pd.DataFrame({
        "underlying": pd.Series([underlying] * n, dtype="str"),
        "snapshot": pd.Series([snapshot] * n, dtype="datetime64[us, UTC]"),
        "underlying_price": np.full(n, float(spot)),
        "expiry": pd.Series(list(rows["expiry"]), dtype=object),
        "right": pd.Series(list(rows["right"]), dtype="str"),
        "strike": rows["strike"].to_numpy(dtype=np.float64),
        "bid": rows["bid"].to_numpy(dtype=np.float64),
        "ask": rows["ask"].to_numpy(dtype=np.float64),
        "last": nan, "volume": nan, "open_interest": nan,
        "iv": rows["iv"].to_numpy(dtype=np.float64),
        "contract": pd.Series(contracts, dtype=object),
        "last_trade_time": pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]"),
    })
    return OptionChain(frame[[*CHAIN_COLUMNS, "last_trade_time"]], "synthetic", carry[0], carry[1])


def synthetic_chain(
    date: object,
    spot: float,
    atm_iv_or_vix: float,
    spec: SyntheticChainSpec = DEFAULT_SPEC,
    rate: float | None = None,
    div: float | None = None,
    *,
    underlying: str = "SYN",
    sessions: pd.DatetimeIndex | None = None,
) -> OptionChain:
    """A synthetic end-of-day chain (load_chain's schema) for one day.

    Parameters
    ----------
    date : date-like
        The day; the snapshot is its 16:00 New York close, like a date-only options file.
    spot : float
        Underlying close (> 0). Adjusted closes work too: the chain is priced around whatever
        level is given.
    atm_iv_or_vix : float
        Vol level read per ``spec.iv_source``: VIX points, realised vol (decimal) or ATM30.
    spec : SyntheticChainSpec
        The model.
    rate, div : float, optional
        Continuous rate and dividend yield; default ``spec.rate`` / ``spec.dividend_yield``.
    underlying : str
        Ticker written in the chain.
    sessions : DatetimeIndex, optional
        XNYS sessions (pass them when building many chains, to skip the lookup).

    Returns
    -------
    OptionChain
        Calls and puts on every listed expiry and grid strike; ``iv`` is the surface vol, ``bid``
        / ``ask`` the quotes, ``last``/``volume``/``open_interest`` NaN; ``rate``/``div`` set.
    """
    day = _as_day(date, "synthetic_chain date")
    spot = float(spot)
    if not math.isfinite(spot) or spot <= 0:
        raise DataError(f"synthetic_chain spot must be finite and > 0; got {spot!r}.")
    carry = (
        spec.rate if rate is None else float(rate),
        spec.dividend_yield if div is None else float(div),
    )
    atm30 = anchor_atm_iv(atm_iv_or_vix, spec)
    expiries, rights, strikes, years = [], [], [], []
    for expiry in listed_expiries(day, spec, sessions):
        t = (expiry - day).days / 365.0
        forward = spot * math.exp((carry[0] - carry[1]) * t)
        grid = strike_grid(spot, forward, float(atm_term_iv(atm30, t, spec)), t, spec)
        for right in ("C", "P"):
            expiries += [expiry] * len(grid)
            rights += [right] * len(grid)
            strikes.append(grid)
            years.append(np.full(len(grid), t))
    if not expiries:
        raise ConfigError(
            f"no expiry is listed on {day} with weekly_max_days={spec.weekly_max_days}, "
            f"monthly_max_days={spec.monthly_max_days}, min_days={spec.min_days}; widen them."
        )
    rows = pd.DataFrame({"expiry": expiries, "right": rights, "strike": np.concatenate(strikes),
                         "t": np.concatenate(years)})
    rows = _quote_frame(rows, spot, atm30, spec, carry)
    return _chain_from_rows(rows, _snapshot(day), underlying, spot, carry)


# -- a chain per day from bars -------------------------------------------------------------------

_LEVEL_STALE_DAYS = 7  # an as-of VIX / rate older than this many calendar days is not used


def _day_series(data: object, what: str) -> tuple[pd.Series, str | None]:
    """Closes as a float Series on naive New York dates (NaN dropped) and the symbol, if known."""
    name = None
    if isinstance(data, Bars):
        if data.n_assets != 1:
            raise DataError(
                f"{what} holds {data.n_assets} symbols {list(data.symbols)[:5]}; pass one, e.g. "
                f"bars.select(['{data.symbols[0]}'])."
            )
        series, name = pd.Series(data.close[:, 0], index=data.index), data.symbols[0]
    elif isinstance(data, pd.DataFrame) and "close" in data.columns:
        series = data["close"]
    elif isinstance(data, pd.Series):
        series, name = data, data.name if isinstance(data.name, str) else None
    else:
        raise DataError(
            f"{what} must be Bars (one symbol), a Series of closes or a DataFrame with a 'close' "
            f"column; got {type(data).__name__}."
        )
    index = pd.DatetimeIndex(series.index)
    if index.tz is not None:
        index = index.tz_convert(NEW_YORK).tz_localize(None)
    out = pd.Series(pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64),
                    index=index.normalize().as_unit("ns")).dropna()
    if not (out.index.is_monotonic_increasing and out.index.is_unique):
        raise DataError(f"{what} must have one row per day in increasing order.")
    if (out <= 0).any():
        raise DataError(f"{what} has values <= 0 (first on {out.index[out <= 0][0].date()}).")
    return out, name


def _realized_vol(closes: pd.Series, window: int) -> pd.Series:
    """Annualised sample std of the last ``window`` daily log returns (row i uses rows <= i)."""
    returns = np.diff(np.log(closes.to_numpy()))
    out = np.full(len(closes), np.nan)
    if len(returns) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(returns, window)
        out[window:] = windows.std(axis=1, ddof=1) * math.sqrt(TRADING_DAYS)
    return pd.Series(out, index=closes.index)


def _as_of(values: pd.Series, days: pd.DatetimeIndex, tolerance_days: int | None) -> pd.Series:
    """The last value of ``values`` on or before each of ``days`` (NaN if none or too old)."""
    left = pd.DataFrame({"day": days})
    right = pd.DataFrame({"day": values.index, "value": values.to_numpy()})
    tolerance = None if tolerance_days is None else pd.Timedelta(days=tolerance_days)
    merged = pd.merge_asof(left, right, on="day", direction="backward", tolerance=tolerance)
    return pd.Series(merged["value"].to_numpy(), index=days)


def _levels(closes: pd.Series, vix: object, spec: SyntheticChainSpec) -> pd.Series:
    if spec.iv_source == "realized":
        if vix is not None:
            raise ConfigError(
                "spec.iv_source is 'realized' but a VIX series was given; pass None, or use "
                "spec_for_symbol('SPY') / iv_source='vix' to price from VIX."
            )
        return _realized_vol(closes, spec.rv_window)
    if vix is None:
        raise ConfigError(
            f"spec.iv_source is {spec.iv_source!r} but no level series was given; pass VIX "
            "closes (or ATM vols for 'atm'), or use iv_source='realized'."
        )
    return _as_of(_day_series(vix, "vix_or_none")[0], closes.index, _LEVEL_STALE_DAYS)


def _rate_lookup(rates: object, spec: SyntheticChainSpec, days: pd.DatetimeIndex) -> pd.Series:
    if rates is None:
        return pd.Series(spec.rate, index=days)
    if isinstance(rates, int | float) and not isinstance(rates, bool):
        return pd.Series(float(rates), index=days)
    return _as_of(_day_series(rates, "rates")[0], days, None)


def synthetic_chains(
    bars_underlying: object,
    vix_or_none: object,
    spec: SyntheticChainSpec = DEFAULT_SPEC,
    dates: object = None,
    *,
    rates: object = None,
    underlying: str | None = None,
) -> Iterator[tuple[date, OptionChain]]:
    """One synthetic chain per day, each from data up to and including that day only.

    Parameters
    ----------
    bars_underlying : Bars (one symbol), Series or DataFrame with ``close``
        Daily closes; a chain is priced at each day's close.
    vix_or_none : Bars, Series or None
        VIX closes in points (``iv_source="vix"``) or ATM30 vols (``"atm"``), used as of the day
        (the last value on or before it, at most 7 days old); None for ``"realized"``, where the
        level is the realised vol of the ``rv_window`` returns ending that day.
    spec : SyntheticChainSpec
        The model.
    dates : iterable of date-like, optional
        Days to price (each must have a close and a level); default every day that has both.
    rates : float or Series, optional
        Continuous rate: constant, or a dated series used as of each day; default ``spec.rate``.
    underlying : str, optional
        Ticker for the chains; default the Bars' symbol or the Series' name, else "SYN".

    Returns
    -------
    iterator of (date, OptionChain)
        In date order; chains are built lazily (about 20-50 ms each with the default grid).

    Raises
    ------
    ConfigError
        The level series does not match ``spec.iv_source``.
    DataError
        Bad bars, or a requested date without a close or a level.
    """
    closes, name = _day_series(bars_underlying, "bars_underlying")
    levels = _levels(closes, vix_or_none, spec)
    rate = _rate_lookup(rates, spec, closes.index)
    usable = levels.notna() & rate.notna()
    if dates is None:
        chosen = closes.index[usable.to_numpy()]
    else:
        chosen = pd.DatetimeIndex([pd.Timestamp(_as_day(d, "dates")) for d in dates]).sort_values()
        _check_dates(chosen, closes.index, usable)
    ticker = underlying or name or "SYN"
    return _generate(closes, levels, rate, chosen, spec, ticker)


def _check_dates(chosen: pd.DatetimeIndex, days: pd.DatetimeIndex, usable: pd.Series) -> None:
    missing = chosen.difference(days)
    if len(missing):
        raise DataError(
            f"no close on {[str(d.date()) for d in missing[:5]]}; synthetic chains are priced "
            "at a day's close, so pick trading days of bars_underlying."
        )
    no_level = [str(d.date()) for d in chosen if not usable[d]]
    if no_level:
        raise DataError(
            f"no vol level (VIX as of the day, or a full realised-vol window) or rate for "
            f"{no_level[:5]}; start later or extend the level series."
        )


def _generate(closes, levels, rate, chosen, spec, ticker) -> Iterator[tuple[date, OptionChain]]:
    sessions = _sessions()
    for stamp in chosen:
        day = stamp.date()
        chain = synthetic_chain(
            day, closes[stamp], levels[stamp], spec, rate[stamp], spec.dividend_yield,
            underlying=ticker, sessions=sessions,
        )
        yield day, chain


def reprice_chain(
    chain: OptionChain,
    level: float,
    spec: SyntheticChainSpec = DEFAULT_SPEC,
    rate: float | None = None,
    div: float | None = None,
) -> OptionChain:
    """The same contracts as ``chain`` (a real snapshot), quoted by the synthetic model.

    Expired rows (``t == 0``) are dropped. ``rate``/``div`` default to the chain's, then the
    spec's. Use it to compare the model with a real chain contract by contract.

    Raises
    ------
    DataError
        The chain has no underlying price, or no unexpired contract.
    """
    spot = chain.spot
    if not math.isfinite(spot):
        raise DataError(f"the {chain.underlying} chain has no underlying_price to price from.")
    carry = _carry(chain, spec, rate, div)
    rows = chain.frame[["expiry", "right", "strike"]].assign(t=chain.t_years().to_numpy())
    rows = rows[rows["t"] > 0].reset_index(drop=True)
    if rows.empty:
        raise DataError(f"every contract of the {chain.underlying} chain has expired.")
    quoted = _quote_frame(rows, spot, anchor_atm_iv(level, spec), spec, carry)
    return _chain_from_rows(quoted, chain.snapshot.as_unit("us"), chain.underlying, spot, carry)


def _carry(chain: OptionChain, spec: SyntheticChainSpec, rate, div) -> tuple[float, float]:
    rate = rate if rate is not None else chain.rate if chain.rate is not None else spec.rate
    div = div if div is not None else chain.div if chain.div is not None else spec.dividend_yield
    return float(rate), float(div)
