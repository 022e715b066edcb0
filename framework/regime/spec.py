"""Regime labels and the frozen :class:`RegimeSpec` of thresholds, loaded from YAML.

The shipped thresholds live in ``config/regimes.yaml``; every :class:`RegimeSpec` default equals
that file, so ``RegimeSpec()`` and ``load_regime_spec()`` give the same classifier. The YAML keys
are the field names below; see the YAML file for what each one means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from framework.errors import ConfigError, did_you_mean

BULL, BEAR, CHOPPY, VOLATILE = 0, 1, 2, 3
WARMUP = -1
REGIME_NAMES: tuple[str, ...] = ("BULL", "BEAR", "CHOPPY", "VOLATILE")

DEFAULT_REGIMES_PATH = Path(__file__).resolve().parents[2] / "config" / "regimes.yaml"

# Kinds of field: windows are bar counts, fractions lie in (0, 1], levels are positive numbers.
_WINDOWS = {
    "trend_window": 2,
    "adx_window": 2,
    "atr_window": 1,
    "percentile_window": 2,
    "realized_volatility_window": 2,
    "min_duration": 1,
}
_FRACTIONS = (
    "vix_percentile",
    "atr_percent",
    "realized_volatility_percentile",
    "bear_drawdown",
    "bull_near_peak",
    "bull_margin",
)
_LEVELS = ("vix_level", "vix_floor", "realized_volatility_floor", "bull_adx")
_FLAGS = ("use_realized_volatility",)


@dataclass(frozen=True)
class RegimeSpec:
    """Thresholds and windows of the causal rule classifier (see :mod:`framework.regime.rules`).

    Attributes
    ----------
    trend_window : int
        Simple moving average length for "price vs its long average" (200 daily bars).
    adx_window, atr_window : int
        Wilder windows of ADX (with +DI/-DI) and ATR.
    percentile_window : int
        Trailing window of the VIX (or realized volatility) percentile rank.
    realized_volatility_window : int
        Returns in the realized volatility that stands in for the VIX.
    vix_level : float
        VOLATILE whenever the VIX closes at or above this level.
    vix_percentile, vix_floor : float
        VOLATILE when the VIX percentile rank is >= ``vix_percentile`` and the VIX >= ``vix_floor``
        (the floor stops a calm year's small spikes from counting as stress).
    atr_percent : float
        VOLATILE when ATR / close >= this fraction.
    realized_volatility_percentile, realized_volatility_floor : float
        The stand-in for the VIX terms: annualized realized volatility percentile and floor.
    use_realized_volatility : bool
        Use the realized-volatility stand-in on bars without a usable VIX; False skips the
        volatility-index terms there (ATR % still applies).
    bear_drawdown : float
        BEAR when below the long average and the drawdown from the running peak is at least this.
    bull_adx : float
        BULL (above the long average) when ADX >= this and +DI > -DI ...
    bull_near_peak, bull_margin : float
        ... or when the drawdown is shallower than ``bull_near_peak`` and the close is at least
        ``bull_margin`` above its average (a quiet grind to new highs, not a flat range).
    min_duration : int
        Hysteresis: a new label must hold this many consecutive bars before the regime switches.
    """

    trend_window: int = 200
    adx_window: int = 14
    atr_window: int = 14
    percentile_window: int = 252
    realized_volatility_window: int = 21
    vix_level: float = 30.0
    vix_percentile: float = 0.9
    vix_floor: float = 20.0
    atr_percent: float = 0.03
    realized_volatility_percentile: float = 0.9
    realized_volatility_floor: float = 0.25
    use_realized_volatility: bool = True
    bear_drawdown: float = 0.1
    bull_adx: float = 20.0
    bull_near_peak: float = 0.05
    bull_margin: float = 0.03
    min_duration: int = 10

    def __post_init__(self) -> None:
        for name in (f.name for f in fields(self)):
            _check_value(name, getattr(self, name))

    def with_values(self, **changes: Any) -> RegimeSpec:
        """A copy with some fields replaced (validated); unknown names raise ``ConfigError``."""
        for key in changes:
            _check_key(key, "RegimeSpec.with_values")
        return replace(self, **changes)


def _check_key(key: object, where: str) -> None:
    names = [f.name for f in fields(RegimeSpec)]
    if key not in names:
        raise ConfigError(
            f"{where}: unknown regime key {key!r}.{did_you_mean(str(key), names)} "
            f"Valid keys: {', '.join(names)}."
        )


def _check_value(name: str, value: object) -> None:
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise ConfigError(f"regime key {name!r} must be true or false; got {value!r}.")
        return
    if name in _WINDOWS:
        low = _WINDOWS[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(
                f"regime key {name!r} must be a whole number of bars >= {low}; got {value!r}. "
                f"Fix it in config/regimes.yaml (e.g. {name}: {getattr(RegimeSpec, name)})."
            )
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value) and value > 0
    if name in _FRACTIONS:
        ok = ok and value <= 1
        expected = "a fraction in (0, 1] (0.1 means 10%)"
    else:
        expected = "a positive number"
    if not ok:
        raise ConfigError(
            f"regime key {name!r} must be {expected}; got {value!r}. "
            f"Fix it in config/regimes.yaml (e.g. {name}: {getattr(RegimeSpec, name)})."
        )


def load_regime_spec(path: str | Path | None = None) -> RegimeSpec:
    """Read a regimes YAML file into a validated :class:`RegimeSpec`.

    Parameters
    ----------
    path : str or Path, optional
        A YAML mapping of ``key: value`` (a subset of the :class:`RegimeSpec` fields; missing keys
        keep their defaults). Default: the shipped ``config/regimes.yaml``.

    Raises
    ------
    ConfigError
        Missing or unreadable file, invalid YAML, a non-mapping document, an unknown key (with
        did-you-mean) or a bad value; the message names the file and the key.
    """
    source = Path(path) if path is not None else DEFAULT_REGIMES_PATH
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read regimes file {str(source)!r}: {exc.strerror or exc}. "
            "Pass an existing YAML file (the shipped one is config/regimes.yaml)."
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML ({exc}); fix the syntax.") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of regime keys (e.g. 'min_duration: 10'); "
            f"got a {type(data).__name__}."
        )
    for key in data:
        _check_key(key, str(source))
    try:
        return RegimeSpec(**data)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


__all__ = [
    "BEAR",
    "BULL",
    "CHOPPY",
    "DEFAULT_REGIMES_PATH",
    "REGIME_NAMES",
    "VOLATILE",
    "WARMUP",
    "RegimeSpec",
    "load_regime_spec",
]
