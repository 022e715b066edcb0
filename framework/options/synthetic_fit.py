"""Calibration of :mod:`framework.options.synthetic` chains to real snapshots, and the
comparison that reports their error (the model's defaults are fit on one SPY snapshot and checked
on the others: ``research/options_synthetic_check.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.options.chains import OptionChain
from framework.options.synthetic import (
    DEFAULT_SPEC,
    SyntheticChainSpec,
    _carry,
    _surface,
    _surface_params,
    anchor_atm_iv,
    half_spread,
    reprice_chain,
)

# -- calibration and comparison with real snapshots -----------------------------------------------


@dataclass(frozen=True)
class SnapshotWindow:
    """Which contracts of a real snapshot a fit or a comparison uses.

    Contracts need a bid > 0 and a mid-quote implied vol; ``|delta|`` is the BSM delta at that
    vol. ``otm_only`` keeps calls with ``K >= F`` and puts with ``K < F`` (each strike once).
    """

    min_days: int = 20
    max_days: int = 60
    min_abs_delta: float = 0.10
    max_abs_delta: float = 0.50
    otm_only: bool = False


FIT_WINDOW = SnapshotWindow(7, 400, 0.05, 0.50, True)
COMPARE_WINDOW = SnapshotWindow(20, 60, 0.10, 0.50, False)

_SCALE_FIELD = {"vix": "vix_scale", "realized": "rv_premium", "atm": None}
# name -> (lower, upper) bounds of the least-squares fit
_IV_BOUNDS = {
    "scale": (0.2, 3.0),
    "term_long_run": (0.02, 1.5),
    "skew_put_slope": (0.0, 3.0),
    "skew_call_slope": (0.0, 3.0),
    "skew_vertex": (-3.0, 3.0),
    "skew_smoothness": (0.02, 3.0),
}
_SPREAD_FIELDS = ("spread_base", "spread_frac", "spread_moneyness")


def _snapshot_rows(
    chain: OptionChain, carry: tuple[float, float], window: SnapshotWindow
) -> pd.DataFrame:
    """Real contracts in ``window`` with their mid IV, delta, mid and half-spread."""
    rate, div = carry
    greeks = chain.with_greeks(rate, div, vol_source="mid")
    frame = greeks.frame
    t = chain.t_years().to_numpy()
    dte = chain.dte().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.log(frame["strike"].to_numpy() / (chain.spot * np.exp((rate - div) * t)))
    call = (frame["right"] == "C").to_numpy()
    delta = frame["delta"].abs().to_numpy()
    keep = (
        (frame["bid"].to_numpy() > 0) & np.isfinite(frame["model_iv"].to_numpy())
        & (dte >= window.min_days) & (dte <= window.max_days) & (t > 0)
        & (delta >= window.min_abs_delta) & (delta <= window.max_abs_delta)
    )
    if window.otm_only:
        keep &= np.where(call, k >= 0, k < 0)
    rows = pd.DataFrame({
        "expiry": frame["expiry"], "right": frame["right"], "strike": frame["strike"],
        "dte": dte, "t": t, "log_moneyness": k, "delta": frame["delta"],
        "real_iv": frame["model_iv"], "real_mid": (frame["bid"] + frame["ask"]) / 2.0,
        "real_half_spread": (frame["ask"] - frame["bid"]) / 2.0,
    })[keep].reset_index(drop=True)
    if rows.empty:
        raise DataError(
            f"no contract of the {chain.underlying} {chain.snapshot_date} chain falls in {window} "
            "with a bid and a mid implied vol; widen the window."
        )
    return rows


def _fit_iv(rows: pd.DataFrame, level: float, spec: SyntheticChainSpec) -> dict[str, float]:
    from scipy.optimize import least_squares  # deferred: scipy is slow to import

    scale_field = _SCALE_FIELD[spec.iv_source]
    names = [n for n in _IV_BOUNDS if n != "scale" or scale_field is not None]
    base = _surface_params(spec)
    unit_atm = anchor_atm_iv(level, spec) / (getattr(spec, scale_field) if scale_field else 1.0)
    t, k, real = rows["t"].to_numpy(), rows["log_moneyness"].to_numpy(), rows["real_iv"].to_numpy()

    def unpack(x: np.ndarray) -> tuple[float, dict[str, float]]:
        values = dict(zip(names, x, strict=True))
        atm30 = unit_atm * values.pop("scale", 1.0)
        return atm30, {**base, **values}

    def residuals(x: np.ndarray) -> np.ndarray:
        atm30, params = unpack(x)
        iv = _surface(atm30, t, k, params)[0]
        # keep the fit inside the calendar-arbitrage-free region the spec enforces
        half = (params["skew_put_slope"] + params["skew_call_slope"]) / 2.0
        excess = half * (abs(params["skew_vertex"]) + math.hypot(params["skew_vertex"],
                                                                params["skew_smoothness"]))
        return np.append(iv - real, 10.0 * max(0.0, excess - 0.98))

    start = [getattr(spec, scale_field) if n == "scale" else getattr(spec, n) for n in names]
    lower, upper = zip(*(_IV_BOUNDS[n] for n in names), strict=True)
    x0 = np.clip(start, lower, upper)
    result = least_squares(residuals, x0, bounds=(lower, upper))
    fitted = dict(zip(names, (float(v) for v in result.x), strict=True))
    if "scale" in fitted:
        fitted[scale_field] = fitted.pop("scale")
    return fitted


def _fit_spread(rows: pd.DataFrame, z: np.ndarray, atm30: float, spec) -> dict[str, float]:
    from scipy.optimize import least_squares

    real = rows["real_half_spread"].to_numpy()
    price = rows["real_mid"].to_numpy()
    quoted = real > 0
    if quoted.sum() < 3:
        return {}

    def residuals(x: np.ndarray) -> np.ndarray:
        trial = dict(zip(_SPREAD_FIELDS, x, strict=True))
        model = half_spread(price[quoted], z[quoted], atm30, replace(spec, **trial))
        return np.log(model) - np.log(real[quoted])

    x0 = [max(getattr(spec, n), 1e-4) for n in _SPREAD_FIELDS]
    result = least_squares(residuals, x0, bounds=([0.0] * 3, [1.0, 0.5, 10.0]))
    return dict(zip(_SPREAD_FIELDS, (float(v) for v in result.x), strict=True))


def fit_to_snapshot(
    snapshot_chain: OptionChain,
    vix_close: float,
    spec: SyntheticChainSpec = DEFAULT_SPEC,
    *,
    rate: float | None = None,
    div: float | None = None,
    window: SnapshotWindow = FIT_WINDOW,
    fit_spread: bool = True,
) -> tuple[SyntheticChainSpec, pd.DataFrame]:
    """Fit level scale, long-run vol and skew (and spreads) to one real snapshot, for reporting.

    Least squares on ``model IV - mid IV`` (vol units, unweighted) over the ``window``
    contracts: the level scale (``vix_scale`` / ``rv_premium``; none for ``"atm"``),
    ``term_long_run`` and the four skew parameters; ``term_speed`` stays (one snapshot cannot
    pin it down). With ``fit_spread``, ``spread_base/frac/moneyness`` by least squares on the log
    half-spread, pricing at the real mid. Backtests should use documented defaults fit on one
    date and checked on others (see the module docstring), not a per-day refit.

    Parameters
    ----------
    snapshot_chain : OptionChain
        A real chain with an underlying price.
    vix_close : float
        The level on the snapshot day, read per ``spec.iv_source`` (VIX points for "vix").
    spec : SyntheticChainSpec
        Starting values and every parameter that is not fit.
    rate, div : float, optional
        Default: the chain's (set by ``with_greeks``), then the spec's.
    window : SnapshotWindow
        Contracts used (default: OTM, 7-400 days, |delta| 0.05-0.50).
    fit_spread : bool
        Also fit the spread parameters.

    Returns
    -------
    (SyntheticChainSpec, DataFrame)
        The fitted spec and one row per contract used: ``expiry, right, strike, dte, t,
        log_moneyness, delta, real_iv, real_mid, real_half_spread, model_iv, iv_error``
        (model - real, decimals) and ``model_half_spread``.
    """
    carry = _carry(snapshot_chain, spec, rate, div)
    rows = _snapshot_rows(snapshot_chain, carry, window)
    fitted = spec.with_overrides(_fit_iv(rows, vix_close, spec))
    atm30 = anchor_atm_iv(vix_close, fitted)
    iv, _, z = _surface(atm30, rows["t"], rows["log_moneyness"], _surface_params(fitted))
    if fit_spread:
        fitted = fitted.with_overrides(_fit_spread(rows, z, atm30, fitted))
    errors = rows.assign(
        model_iv=iv, iv_error=iv - rows["real_iv"].to_numpy(),
        model_half_spread=half_spread(rows["real_mid"].to_numpy(), z, atm30, fitted),
    )
    return fitted, errors


def compare_to_snapshot(
    snapshot_chain: OptionChain,
    level: float,
    spec: SyntheticChainSpec = DEFAULT_SPEC,
    *,
    rate: float | None = None,
    div: float | None = None,
    window: SnapshotWindow = COMPARE_WINDOW,
) -> pd.DataFrame:
    """Real vs synthetic quotes for the ``window`` contracts of a real snapshot.

    Returns
    -------
    DataFrame
        The columns of :func:`fit_to_snapshot`'s rows plus ``synthetic_iv``, ``iv_error``
        (synthetic - real), ``synthetic_mid`` (mid of the synthetic bid/ask), ``rel_mid_error``
        (``synthetic_mid / real_mid - 1``) and ``synthetic_half_spread``.
    """
    carry = _carry(snapshot_chain, spec, rate, div)
    rows = _snapshot_rows(snapshot_chain, carry, window)
    synthetic = reprice_chain(snapshot_chain, level, spec, *carry).frame
    quotes = synthetic.set_index(["expiry", "right", "strike"])
    keys = pd.MultiIndex.from_frame(rows[["expiry", "right", "strike"]])
    matched = quotes.loc[keys]
    mid = ((matched["bid"] + matched["ask"]) / 2.0).to_numpy()
    return rows.assign(
        synthetic_iv=matched["iv"].to_numpy(),
        iv_error=matched["iv"].to_numpy() - rows["real_iv"].to_numpy(),
        synthetic_mid=mid,
        rel_mid_error=mid / rows["real_mid"].to_numpy() - 1.0,
        synthetic_half_spread=((matched["ask"] - matched["bid"]) / 2.0).to_numpy(),
    )


def comparison_summary(rows: pd.DataFrame) -> dict[str, float]:
    """Medians of a :func:`compare_to_snapshot` table (IV errors in vol points)."""
    return {
        "contracts": float(len(rows)),
        "median_abs_iv_error_vp": float(np.median(np.abs(rows["iv_error"])) * 100.0),
        "median_iv_bias_vp": float(np.median(rows["iv_error"]) * 100.0),
        "median_abs_rel_mid_error": float(np.median(np.abs(rows["rel_mid_error"]))),
        "median_real_half_spread": float(np.median(rows["real_half_spread"])),
        "median_synthetic_half_spread": float(np.median(rows["synthetic_half_spread"])),
    }
