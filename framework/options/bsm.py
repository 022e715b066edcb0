"""Black-Scholes-Merton prices and Greeks with a continuous dividend yield, and American prices.

Conventions (shared by all of :mod:`framework.options`):

- ``t`` in years, ACT/365 (calendar days / 365); ``rate`` and ``div`` continuous decimals; ``vol``
  annualised decimal; ``call`` a bool or bool array (True call, False put).
- Greeks: delta and gamma per 1.00 of underlying, theta per calendar day (annual / 365), vega per
  vol point (0.01 of vol), rho per rate point (0.01 of rate) -- the units of vollib's analytical
  Greeks.
- Every argument broadcasts against the others (NumPy rules); results have the broadcast shape,
  so all-scalar inputs give 0-d arrays (``float(x)`` turns one into a float).

Degenerate inputs are not errors:

- ``t == 0`` (expiring now): price is the intrinsic value ``max(+-(S - K), 0)``; delta is +-1 in
  the money, +-0.5 exactly at the money and 0 out of it; gamma, theta, vega and rho are 0.
- ``vol == 0`` with ``t > 0``: the limit of a payoff on the deterministic forward, price
  ``max(+-(S e^-qt - K e^-rt), 0)``; delta, theta and rho are that price's derivatives (halved
  exactly at the forward); gamma and vega are 0.

Negative or non-finite spot, strike, t or vol, a zero spot or strike, non-finite rate or dividend
yield, or a non-bool ``call`` raise :class:`~framework.errors.DataError` naming the value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.errors import ConfigError, DataError
from framework.options._bsm_nb import american_price_nb, bsm_greeks_nb, bsm_price_nb

__all__ = ["Greeks", "american_price", "bsm_greeks", "bsm_price"]


@dataclass(frozen=True)
class Greeks:
    """BSM price and Greeks, each an array of the broadcast input shape.

    Attributes
    ----------
    price : ndarray
        Option value per unit of underlying.
    delta : ndarray
        d price / d spot.
    gamma : ndarray
        d delta / d spot.
    theta : ndarray
        Change in value per calendar day that passes (annual theta / 365); usually negative.
    vega : ndarray
        Change in value per vol point (per 0.01 of vol).
    rho : ndarray
        Change in value per rate point (per 0.01 of rate).
    """

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    theta: np.ndarray
    vega: np.ndarray
    rho: np.ndarray


# name -> (check, words for the message); every check is "finite and <condition>"
_RULES = {
    "positive": (lambda a: a > 0, "finite and > 0"),
    "non_negative": (lambda a: a >= 0, "finite and >= 0"),
    "finite": (lambda a: np.ones(a.shape, dtype=bool), "finite"),
}


def check_values(name: str, values: np.ndarray, rule: str, hint: str) -> None:
    """Raise :class:`DataError` naming the first value of ``values`` that breaks ``rule``.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    values : ndarray
        Float values (already broadcast; positions in the message are flat positions).
    rule : {"positive", "non_negative", "finite"}
        What every value must be (always also finite).
    hint : str
        How to fix it, appended to the message.
    """
    test, words = _RULES[rule]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(values) & test(values)
    if good.all():
        return
    bad = np.flatnonzero(~good)
    first = bad[0]
    where = (
        "" if values.ndim == 0 else f" at flat position {first} ({bad.size} of {values.size} bad)"
    )
    raise DataError(f"{name} must be {words}; got {float(values.flat[first])!r}{where}. {hint}")


def as_call_flags(call: object, shape: tuple[int, ...]) -> np.ndarray:
    """``call`` as a flat bool array broadcast to ``shape``; DataError when it is not bool."""
    flags = np.asarray(call)
    if flags.dtype != np.bool_:
        example = f", e.g. {flags.flat[0]!r}" if flags.size else ""
        raise DataError(
            f"call must be a bool or bool array (True call, False put); got dtype "
            f"{flags.dtype}{example}. Pass e.g. chain['option_type'] == 'C'."
        )
    return np.ascontiguousarray(np.broadcast_to(flags, shape)).ravel()


def broadcast_floats(
    named: dict[str, object], extra_shape: tuple[int, ...] = ()
) -> tuple[tuple[int, ...], dict[str, np.ndarray]]:
    """Broadcast float arguments together (and with ``extra_shape``); return shape, flat copies.

    Raises :class:`DataError` naming the arguments when the shapes do not broadcast or a value is
    not numeric.
    """
    try:
        arrays = [np.asarray(value, dtype=np.float64) for value in named.values()]
        shape = np.broadcast_shapes(extra_shape, *(a.shape for a in arrays))
    except (TypeError, ValueError) as exc:
        shapes = {key: np.shape(value) for key, value in named.items()}
        raise DataError(
            f"option inputs must be numbers or numeric arrays that broadcast together; got shapes "
            f"{shapes} (and call {extra_shape}): {exc}. Pass arrays of one shape (or scalars)."
        ) from exc
    flat = {
        key: np.ascontiguousarray(np.broadcast_to(a, shape)).ravel()
        for key, a in zip(named, arrays, strict=True)
    }
    return shape, flat


def check_market(flat: dict[str, np.ndarray], shape: tuple[int, ...]) -> None:
    """Validate spot, strike, t, rate and div (and vol when present) in ``flat``."""
    shaped = {key: value.reshape(shape) for key, value in flat.items()}
    check_values("spot", shaped["spot"], "positive", "Pass the underlying's price (> 0).")
    check_values("strike", shaped["strike"], "positive", "Pass the option's strike (> 0).")
    check_values(
        "t", shaped["t"], "non_negative", "Pass years to expiry (calendar days / 365), >= 0."
    )
    check_values("rate", shaped["rate"], "finite", "Pass a continuous rate as a decimal.")
    check_values("div", shaped["div"], "finite", "Pass a continuous dividend yield as a decimal.")
    if "vol" in shaped:
        check_values("vol", shaped["vol"], "non_negative", "Pass an annualised vol as a decimal.")


def _prepare(spot, strike, t, rate, div, vol, call):
    """Broadcast, validate and flatten the seven BSM inputs; return (shape, args for a kernel)."""
    named = {"spot": spot, "strike": strike, "t": t, "rate": rate, "div": div, "vol": vol}
    shape, flat = broadcast_floats(named, np.shape(call))
    flags = as_call_flags(call, shape)
    check_market(flat, shape)
    args = (flat["spot"], flat["strike"], flat["t"], flat["rate"], flat["div"], flat["vol"], flags)
    return shape, args


def bsm_price(spot, strike, t, rate, div, vol, call) -> np.ndarray:
    """Black-Scholes-Merton price with a continuous dividend yield.

    Parameters
    ----------
    spot, strike : array_like
        Underlying price and strike, > 0.
    t : array_like
        Years to expiry (calendar days / 365), >= 0; 0 gives the intrinsic value.
    rate, div : array_like
        Continuous risk-free rate and dividend yield, decimals (may be negative).
    vol : array_like
        Annualised volatility, decimal, >= 0.
    call : bool or array_like of bool
        True for calls, False for puts.

    Returns
    -------
    ndarray
        Prices with the broadcast shape of the inputs.
    """
    shape, args = _prepare(spot, strike, t, rate, div, vol, call)
    out = np.empty(args[0].size)
    bsm_price_nb(*args, out)
    return out.reshape(shape)


def bsm_greeks(spot, strike, t, rate, div, vol, call) -> Greeks:
    """Black-Scholes-Merton price and Greeks (see the module docstring for units and limits).

    Parameters are those of :func:`bsm_price`.

    Returns
    -------
    Greeks
        price, delta, gamma, theta (per day), vega (per vol point), rho (per rate point).
    """
    shape, args = _prepare(spot, strike, t, rate, div, vol, call)
    out = np.empty((6, args[0].size))
    bsm_greeks_nb(*args, out)
    rows = [row.reshape(shape) for row in out]
    return Greeks(*rows)


def american_price(spot, strike, t, rate, div, vol, call, steps: int = 200) -> np.ndarray:
    """American option price on a Cox-Ross-Rubinstein binomial tree (early exercise at each step).

    Parameters are those of :func:`bsm_price`, plus

    steps : int, default 200
        Tree steps. Cost is ``O(steps**2)`` per option (200 steps: about 20k node updates); the
        CRR error shrinks like ``1/steps`` and oscillates with where the strike falls between
        nodes, typically a cent or two on a 100-dollar underlying at 200 steps.

    Returns
    -------
    ndarray
        Prices with the broadcast shape of the inputs. ``t == 0`` gives the intrinsic value;
        ``vol == 0`` the best discounted exercise along the forward path.

    Notes
    -----
    When ``vol < |rate - div| * sqrt(t / steps)`` the CRR up-probability leaves [0, 1]; for those
    (tiny) vols the tree is re-centred on the forward so it stays arbitrage-free.
    """
    steps = check_steps(steps)
    shape, args = _prepare(spot, strike, t, rate, div, vol, call)
    out = np.empty(args[0].size)
    american_price_nb(*args, steps, out)
    return out.reshape(shape)


def check_steps(steps: object) -> int:
    """``steps`` as an int >= 1, or :class:`ConfigError` naming it."""
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ConfigError(
            f"steps must be an integer >= 1 (tree steps); got {steps!r}. Use e.g. steps=200."
        )
    return int(steps)
