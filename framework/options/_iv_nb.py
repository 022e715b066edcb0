"""Jitted implied-volatility solvers (numpy + numba only).

Each option first goes through the no-arbitrage screen, in this order: expired (``t == 0``), zero
price, at or below the lower bound, at or above the upper bound. Survivors are solved inside the
vol bracket ``[VOL_LO, VOL_HI]``:

- European: Newton on the BSM price with the analytic vega, safeguarded by the bracket (a step
  that leaves the bracket or does not halve the error is replaced by bisection, as in
  Numerical Recipes' ``rtsafe``), from the Manaster-Koehler start, where Newton converges fast.
- American: Brent's method (inverse quadratic / secant steps with bisection fallback) on the CRR
  tree price, which has no cheap derivative; typically 8-15 tree evaluations per option.

Convergence: ``|model - price| <= PRICE_TOL * min(1, price)`` (absolute 1e-10 for prices above 1,
relative below, so tiny far-out-of-the-money prices still pin the vol down), or the bracket has
shrunk to floating-point resolution. A price whose vol lies outside the bracket, or an iteration
cap hit, is ``NO_CONVERGENCE``. Tested against vollib and a round trip in
``tests/framework/options/test_iv.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from framework.options._bsm_nb import american_price_one, bsm_price_one, bsm_price_vega_one

OK = 0
EXPIRED = 1
ZERO_PRICE = 2
BELOW_INTRINSIC = 3
ABOVE_UPPER_BOUND = 4
NO_CONVERGENCE = 5

VOL_LO = 1e-4
VOL_HI = 5.0
PRICE_TOL = 1e-10
MAX_ITER = 100
# bracket width (relative to its top) below which doubles cannot resolve the vol any further
_VOL_RESOLUTION = 4.0 * 2.220446049250313e-16


@njit(cache=True)
def screen_one(
    price: float, s: float, k: float, t: float, r: float, q: float, is_call: bool, american: bool
) -> int:
    """Reason code of the no-arbitrage screen, ``OK`` when the price is worth solving.

    European bounds: ``max(+-(S e^-qt - K e^-rt), 0) < price < S e^-qt`` (call) or ``K e^-rt``
    (put). American: the lower bound also includes the intrinsic value ``+-(S - K)`` (early
    exercise) and the upper bound is ``S`` (call) or ``K`` (put).
    """
    if t == 0.0:
        return EXPIRED
    if price == 0.0:
        return ZERO_PRICE
    w = 1.0 if is_call else -1.0
    df_q = math.exp(-q * t)
    df_r = math.exp(-r * t)
    lower = max(w * (s * df_q - k * df_r), 0.0)
    if american:
        lower = max(lower, w * (s - k))
        upper = s if is_call else k
    else:
        upper = s * df_q if is_call else k * df_r
    if price <= lower:
        return BELOW_INTRINSIC
    if price >= upper:
        return ABOVE_UPPER_BOUND
    return OK


@njit(cache=True)
def _start_vol(s: float, k: float, t: float, r: float, q: float) -> float:
    """Manaster-Koehler start ``sqrt(2 |ln(F/K)| / t)``, kept inside a sensible range."""
    guess = math.sqrt(2.0 * abs(math.log(s / k) + (r - q) * t) / t)
    return min(max(guess, 0.05), 3.0)


@njit(cache=True)
def european_vol_one(
    price: float, s: float, k: float, t: float, r: float, q: float, is_call: bool
) -> tuple[float, int]:
    """(vol, reason) for one screened European price: safeguarded Newton in the bracket."""
    tol = PRICE_TOL * min(1.0, price)
    lo = VOL_LO
    hi = VOL_HI
    f_lo = bsm_price_one(s, k, t, r, q, lo, is_call) - price
    if abs(f_lo) <= tol:
        return lo, OK
    f_hi = bsm_price_one(s, k, t, r, q, hi, is_call) - price
    if abs(f_hi) <= tol:
        return hi, OK
    if f_lo > 0.0 or f_hi < 0.0:
        return np.nan, NO_CONVERGENCE  # the vol lies outside the bracket
    v = _start_vol(s, k, t, r, q)
    step_before = hi - lo
    step = step_before
    for _ in range(MAX_ITER):
        model, vega = bsm_price_vega_one(s, k, t, r, q, v, is_call)
        f = model - price
        if abs(f) <= tol:
            return v, OK
        if f > 0.0:
            hi = v
        else:
            lo = v
        if hi - lo <= _VOL_RESOLUTION * hi:
            return 0.5 * (lo + hi), OK
        newton = v - f / vega if vega > 0.0 else np.nan
        slow = abs(2.0 * f) > abs(step_before * vega)
        step_before = step
        if not (lo < newton < hi) or slow:
            step = 0.5 * (hi - lo)
            v = lo + step
        else:
            step = abs(newton - v)
            v = newton
    return np.nan, NO_CONVERGENCE


@njit(cache=True)
def _tree_gap(
    v: float,
    price: float,
    s: float,
    k: float,
    t: float,
    r: float,
    q: float,
    is_call: bool,
    steps: int,
    values: np.ndarray,
) -> float:
    return american_price_one(s, k, t, r, q, v, is_call, steps, values) - price


@njit(cache=True)
def american_vol_one(
    price: float,
    s: float,
    k: float,
    t: float,
    r: float,
    q: float,
    is_call: bool,
    steps: int,
    values: np.ndarray,
) -> tuple[float, int]:
    """(vol, reason) for one screened American price: Brent's method on the CRR tree price."""
    tol = PRICE_TOL * min(1.0, price)
    a = VOL_LO
    b = VOL_HI
    fa = _tree_gap(a, price, s, k, t, r, q, is_call, steps, values)
    if abs(fa) <= tol:
        return a, OK
    fb = _tree_gap(b, price, s, k, t, r, q, is_call, steps, values)
    if abs(fb) <= tol:
        return b, OK
    if fa > 0.0 or fb < 0.0:
        return np.nan, NO_CONVERGENCE
    # Brent: b is the best estimate, a the previous one, c the counterpoint (root between b, c)
    c, fc = a, fa
    d = e = b - a
    for _ in range(MAX_ITER):
        if (fb > 0.0) == (fc > 0.0):
            c, fc = a, fa
            d = e = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        half = 0.5 * (c - b)
        xtol = _VOL_RESOLUTION * abs(b)
        if abs(fb) <= tol or abs(half) <= xtol:
            return b, OK
        if abs(e) >= xtol and abs(fa) > abs(fb):
            # interpolate: secant when only two points, inverse quadratic otherwise
            ratio_ba = fb / fa
            if a == c:
                p = 2.0 * half * ratio_ba
                den = 1.0 - ratio_ba
            else:
                ratio_ac = fa / fc
                ratio_bc = fb / fc
                p = ratio_ba * (
                    2.0 * half * ratio_ac * (ratio_ac - ratio_bc) - (b - a) * (ratio_bc - 1.0)
                )
                den = (ratio_ac - 1.0) * (ratio_bc - 1.0) * (ratio_ba - 1.0)
            if p > 0.0:
                den = -den
            p = abs(p)
            if 2.0 * p < min(3.0 * half * den - abs(xtol * den), abs(e * den)):
                e = d
                d = p / den
            else:
                d = e = half
        else:
            d = e = half
        a, fa = b, fb
        b += d if abs(d) > xtol else math.copysign(xtol, half)
        fb = _tree_gap(b, price, s, k, t, r, q, is_call, steps, values)
    return np.nan, NO_CONVERGENCE


@njit(cache=True)
def european_iv_nb(
    price: np.ndarray,
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    is_call: np.ndarray,
    vol_out: np.ndarray,
    code_out: np.ndarray,
) -> None:
    """European implied vols and reason codes of flat equal-length inputs."""
    for i in range(price.shape[0]):
        code = screen_one(price[i], s[i], k[i], t[i], r[i], q[i], is_call[i], False)
        vol = np.nan
        if code == OK:
            vol, code = european_vol_one(price[i], s[i], k[i], t[i], r[i], q[i], is_call[i])
        vol_out[i] = vol
        code_out[i] = code


@njit(cache=True, parallel=True)
def american_iv_nb(
    price: np.ndarray,
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    is_call: np.ndarray,
    steps: int,
    vol_out: np.ndarray,
    code_out: np.ndarray,
) -> None:
    """American (CRR tree) implied vols and reason codes, options in parallel."""
    for i in prange(price.shape[0]):
        values = np.empty(steps + 1)
        code = screen_one(price[i], s[i], k[i], t[i], r[i], q[i], is_call[i], True)
        vol = np.nan
        if code == OK:
            vol, code = american_vol_one(
                price[i], s[i], k[i], t[i], r[i], q[i], is_call[i], steps, values
            )
        vol_out[i] = vol
        code_out[i] = code
