"""Jitted Black-Scholes-Merton price and Greeks, and the CRR binomial tree (numpy + numba only).

All kernels take flat, equally long float64 arrays (``is_call`` a bool array) that the wrappers in
:mod:`framework.options.bsm` have already broadcast and validated, and write into ``out`` arrays,
so nothing here allocates per call except the tree's row buffer. The scalar functions
(``bsm_price_one``, ``bsm_price_vega_one``, ``american_price_one``) are shared with the implied
volatility solver in ``_iv_nb.py``. Tested against vollib, QuantLib and a pure-Python tree in
``tests/framework/options/test_bsm.py``.

Units follow the package contract: theta per calendar day, vega per vol point, rho per rate
point. ``bsm_price_vega_one`` returns the raw vega (per 1.00 of vol) the Newton step needs.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_DAYS_PER_YEAR = 365.0


@njit(cache=True, inline="always")
def norm_cdf(x: float) -> float:
    """Standard normal CDF via ``erfc``, accurate in the far left tail (no ``1 - x`` loss)."""
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True, inline="always")
def norm_pdf(x: float) -> float:
    """Standard normal density."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True, inline="always")
def _forward_weight(forward_gap: float) -> float:
    """Weight of the deterministic payoff: 1 in the money, 0.5 exactly at the money, 0 out."""
    if forward_gap > 0.0:
        return 1.0
    if forward_gap == 0.0:
        return 0.5
    return 0.0


@njit(cache=True)
def bsm_price_one(
    s: float, k: float, t: float, r: float, q: float, v: float, is_call: bool
) -> float:
    """BSM price of one option; ``v * sqrt(t) == 0`` gives the deterministic-forward limit."""
    w = 1.0 if is_call else -1.0
    df_q = math.exp(-q * t)
    df_r = math.exp(-r * t)
    sd = v * math.sqrt(t)
    if sd == 0.0:
        # no randomness left: the payoff on the forward, discounted (intrinsic when t == 0)
        return max(w * (s * df_q - k * df_r), 0.0)
    d1 = (math.log(s / k) + (r - q) * t) / sd + 0.5 * sd
    d2 = d1 - sd
    # far out of the money the two terms cancel to a few ulps that may come out below zero
    return max(w * (s * df_q * norm_cdf(w * d1) - k * df_r * norm_cdf(w * d2)), 0.0)


@njit(cache=True)
def bsm_price_vega_one(
    s: float, k: float, t: float, r: float, q: float, v: float, is_call: bool
) -> tuple[float, float]:
    """Price and raw vega (d price / d vol, per 1.00 of vol) of one option with ``v, t > 0``."""
    w = 1.0 if is_call else -1.0
    df_q = math.exp(-q * t)
    df_r = math.exp(-r * t)
    sqrt_t = math.sqrt(t)
    sd = v * sqrt_t
    d1 = (math.log(s / k) + (r - q) * t) / sd + 0.5 * sd
    d2 = d1 - sd
    price = max(w * (s * df_q * norm_cdf(w * d1) - k * df_r * norm_cdf(w * d2)), 0.0)
    return price, s * df_q * norm_pdf(d1) * sqrt_t


@njit(cache=True)
def _greeks_degenerate(
    s: float, k: float, t: float, r: float, q: float, w: float
) -> tuple[float, float, float, float, float, float]:
    """Greeks when ``vol * sqrt(t) == 0``: the limit of a payoff on a deterministic forward.

    ``t == 0`` (expiring now): intrinsic value, delta +-1/+-0.5/0, every other Greek 0.
    ``vol == 0, t > 0``: price ``max(w (S e^-qt - K e^-rt), 0)``; delta, theta and rho are the
    derivatives of that price (halved exactly at the forward), gamma and vega are 0.
    """
    df_q = math.exp(-q * t)
    df_r = math.exp(-r * t)
    gap = w * (s * df_q - k * df_r)
    weight = _forward_weight(gap)
    price = max(gap, 0.0)
    delta = weight * w * df_q
    if t == 0.0:
        return price, delta, 0.0, 0.0, 0.0, 0.0
    theta = weight * w * (q * s * df_q - r * k * df_r) / _DAYS_PER_YEAR
    rho = weight * w * k * t * df_r * 0.01
    return price, delta, 0.0, theta, 0.0, rho


@njit(cache=True)
def bsm_greeks_one(
    s: float, k: float, t: float, r: float, q: float, v: float, is_call: bool
) -> tuple[float, float, float, float, float, float]:
    """(price, delta, gamma, theta/day, vega/vol point, rho/rate point) of one option."""
    w = 1.0 if is_call else -1.0
    sqrt_t = math.sqrt(t)
    sd = v * sqrt_t
    if sd == 0.0:
        return _greeks_degenerate(s, k, t, r, q, w)
    df_q = math.exp(-q * t)
    df_r = math.exp(-r * t)
    d1 = (math.log(s / k) + (r - q) * t) / sd + 0.5 * sd
    d2 = d1 - sd
    n1 = norm_cdf(w * d1)
    n2 = norm_cdf(w * d2)
    pdf1 = norm_pdf(d1)
    price = max(w * (s * df_q * n1 - k * df_r * n2), 0.0)
    delta = w * df_q * n1
    gamma = df_q * pdf1 / (s * sd)
    decay = -s * df_q * pdf1 * v / (2.0 * sqrt_t)
    theta = (decay - w * r * k * df_r * n2 + w * q * s * df_q * n1) / _DAYS_PER_YEAR
    vega = s * df_q * pdf1 * sqrt_t * 0.01
    rho = w * k * t * df_r * n2 * 0.01
    return price, delta, gamma, theta, vega, rho


@njit(cache=True)
def bsm_price_nb(
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    v: np.ndarray,
    is_call: np.ndarray,
    out: np.ndarray,
) -> None:
    """BSM prices of flat equal-length inputs into ``out``."""
    for i in range(s.shape[0]):
        out[i] = bsm_price_one(s[i], k[i], t[i], r[i], q[i], v[i], is_call[i])


@njit(cache=True)
def bsm_greeks_nb(
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    v: np.ndarray,
    is_call: np.ndarray,
    out: np.ndarray,
) -> None:
    """Price and the five Greeks into the rows of ``out`` (shape ``(6, n)``, in that order)."""
    for i in range(s.shape[0]):
        g = bsm_greeks_one(s[i], k[i], t[i], r[i], q[i], v[i], is_call[i])
        out[0, i] = g[0]
        out[1, i] = g[1]
        out[2, i] = g[2]
        out[3, i] = g[3]
        out[4, i] = g[4]
        out[5, i] = g[5]


@njit(cache=True)
def _american_no_vol(
    s: float, k: float, t: float, r: float, q: float, w: float, steps: int
) -> float:
    """The tree's ``vol == 0`` limit: best discounted exercise along the forward path."""
    dt = t / steps
    best = 0.0
    for i in range(steps + 1):
        tau = i * dt
        payoff = w * (s * math.exp((r - q) * tau) - k)
        best = max(best, math.exp(-r * tau) * payoff)
    return best


@njit(cache=True)
def american_price_one(
    s: float,
    k: float,
    t: float,
    r: float,
    q: float,
    v: float,
    is_call: bool,
    steps: int,
    values: np.ndarray,
) -> float:
    """American price on a Cox-Ross-Rubinstein tree of ``steps`` steps.

    ``values`` is a scratch buffer of at least ``steps + 1`` floats. With CRR (``u = e^{v
    sqrt(dt)}``, ``d = 1/u``) the up probability leaves [0, 1] when ``v < |r - q| sqrt(dt)``; those
    tiny vols use the same tree shifted onto the forward (``u, d`` times ``e^{(r-q) dt}``), whose
    probability always lies in (0, 1). ``t == 0`` is the intrinsic value.
    """
    w = 1.0 if is_call else -1.0
    if t == 0.0:
        return max(w * (s - k), 0.0)
    if v == 0.0:
        return _american_no_vol(s, k, t, r, q, w, steps)
    dt = t / steps
    x = v * math.sqrt(dt)
    growth = math.exp((r - q) * dt)
    disc = math.exp(-r * dt)
    up = math.exp(x)
    down = 1.0 / up
    p = (growth - down) / (up - down)
    if p < 0.0 or p > 1.0:
        up = growth * math.exp(x)
        down = growth * math.exp(-x)
        p = (growth - down) / (up - down)
    ratio = up / down
    # terminal payoffs, node j = j up-moves
    node = s * down**steps
    for j in range(steps + 1):
        values[j] = max(w * (node - k), 0.0)
        node *= ratio
    pu = disc * p
    pd = disc * (1.0 - p)
    for i in range(steps - 1, -1, -1):
        node = s * down**i
        for j in range(i + 1):
            hold = pu * values[j + 1] + pd * values[j]
            values[j] = max(hold, w * (node - k))
            node *= ratio
    return values[0]


@njit(cache=True, parallel=True)
def american_price_nb(
    s: np.ndarray,
    k: np.ndarray,
    t: np.ndarray,
    r: np.ndarray,
    q: np.ndarray,
    v: np.ndarray,
    is_call: np.ndarray,
    steps: int,
    out: np.ndarray,
) -> None:
    """American CRR prices of flat equal-length inputs into ``out`` (options in parallel)."""
    for i in prange(s.shape[0]):
        values = np.empty(steps + 1)
        out[i] = american_price_one(s[i], k[i], t[i], r[i], q[i], v[i], is_call[i], steps, values)
