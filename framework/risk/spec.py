"""Configuration of the risk layer: :class:`RiskSpec` (frozen), built from the YAML config."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from framework.errors import ConfigError, unknown_name_message
from framework.risk import _layout as L

STOP_TYPES: tuple[str, ...] = ("none", "fixed", "trailing", "atr")
SIZING_RULES: tuple[str, ...] = ("none", "fixed_fraction", "volatility_target", "kelly", "atr_risk")
BREAKER_ACTIONS: tuple[str, ...] = ("reduce", "halt")
REBALANCE_TRIGGERS: tuple[str, ...] = ("none", "calendar", "drift", "combined")
FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly", "quarterly")
# names accepted for regime labels (framework.regime's classifier); any other int works too
REGIME_NAMES: dict[str, int] = {"BULL": 0, "BEAR": 1, "CHOPPY": 2, "VOLATILE": 3}

# field -> risk-table column, for the numeric rules a regime may override
_COLUMNS: dict[str, int] = {
    "max_position": L.R_MAX_POSITION,
    "max_gross": L.R_MAX_GROSS,
    "max_net": L.R_MAX_NET,
    "max_positions": L.R_MAX_POSITIONS,
    "cash_buffer": L.R_CASH_BUFFER,
    "max_group": L.R_MAX_GROUP,
    "stop_pct": L.R_STOP_PCT,
    "atr_multiplier": L.R_ATR_MULT,
    "take_profit": L.R_TAKE_PROFIT,
    "time_stop_bars": L.R_TIME_STOP,
    "daily_loss_limit": L.R_DAILY_LOSS,
    "max_drawdown": L.R_MAX_DRAWDOWN,
    "consecutive_losses": L.R_MAX_LOSSES,
    "cooldown_bars": L.R_COOLDOWN,
    "drift_threshold": L.R_DRIFT,
    "min_trade_value": L.R_MIN_TRADE_VALUE,
    "max_trades_per_rebalance": L.R_MAX_TRADES,
    "sizing_fraction": L.R_SIZING_FRACTION,
    "target_volatility": L.R_TARGET_VOL,
    "volatility_window": L.R_VOL_WINDOW,
    "max_sizing_weight": L.R_SIZING_CAP,
    "kelly_win_rate": L.R_KELLY_WIN_RATE,
    "kelly_payoff": L.R_KELLY_PAYOFF,
    "kelly_min_trades": L.R_KELLY_MIN_TRADES,
    "risk_per_trade": L.R_RISK_PER_TRADE,
    "atr_risk_multiplier": L.R_ATR_RISK_MULT,
}


@dataclass(frozen=True)
class RiskSpec:
    """Which risk rules run inside the engine pass, and their numbers (frozen).

    ``None`` switches a numeric rule off. Fractions are of equity (0.30 = 30%).

    Parameters
    ----------
    enabled : bool
        False: no rule runs and the engine behaves exactly as without a risk layer.
    sizing : {"none", "fixed_fraction", "volatility_target", "kelly", "atr_risk"}
        How a strategy's target weight is resized before the caps: times ``sizing_fraction``;
        ``target_volatility / realized annual volatility`` (``volatility_window`` returns);
        ``sizing_fraction * Kelly`` from ``kelly_win_rate``/``kelly_payoff`` or the closed-trade
        record (after ``kelly_min_trades``); ``risk_per_trade / (atr_risk_multiplier * ATR /
        price)``. All keep the target's sign and are capped at ``max_sizing_weight``.
    max_position, max_gross, max_net, max_positions, cash_buffer, max_group, groups
        Exposure caps on each target row: per-position ``|w|``, ``sum |w|``, ``|sum w|``, the
        number of non-zero weights (largest kept), gross ``<= 1 - cash_buffer``, and the gross of
        each group of ``groups`` (symbol -> group name).
    stop, stop_pct, atr_multiplier, atr_window, take_profit, time_stop_bars
        Exits checked intrabar after the open fill: fixed % below the entry, trailing % below
        the highest high since entry, ``atr_multiplier * ATR`` at entry below it; take-profit %
        above the entry; time stop after that many bars held (exits at the close).
    daily_loss_limit, daily_flatten
        After the session's equity falls this fraction below its start, decisions of that
        session may not add risk (and with ``daily_flatten`` everything is closed).
    max_drawdown, drawdown_action, consecutive_losses, losses_action, cooldown_bars
        Breakers: drawdown from the equity peak, or that many losing round trips in a row,
        switch to "reduce" (only reductions) or "halt" (flat, targets ignored) for
        ``cooldown_bars`` bars.
    rebalance_trigger, rebalance_frequency, drift_threshold, min_trade_value,
    max_trades_per_rebalance
        Rebalancing filters: target changes wait for the first bar of a calendar period
        and/or a drift beyond the threshold (exits always pass); orders below the minimum value
        are skipped (exits pass); at most that many orders per bar, largest first.
    periods_per_year : float
        Annualization of the volatility target (252 for daily bars).
    regime_overrides : mapping of int -> mapping of field -> number
        Per regime label, values replacing the base ones while that label is in force.
    """

    enabled: bool = True
    sizing: str = "none"
    sizing_fraction: float = 1.0
    target_volatility: float = 0.15
    volatility_window: int = 20
    max_sizing_weight: float = 1.0
    kelly_win_rate: float | None = None
    kelly_payoff: float | None = None
    kelly_min_trades: int = 10
    risk_per_trade: float = 0.01
    atr_risk_multiplier: float = 2.0
    max_position: float | None = None
    max_gross: float | None = None
    max_net: float | None = None
    max_positions: int | None = None
    cash_buffer: float = 0.0
    max_group: float | None = None
    groups: tuple[tuple[str, str], ...] = ()
    stop: str = "none"
    stop_pct: float = 0.03
    atr_multiplier: float = 2.0
    atr_window: int = 14
    take_profit: float | None = None
    time_stop_bars: int | None = None
    daily_loss_limit: float | None = None
    daily_flatten: bool = False
    max_drawdown: float | None = None
    drawdown_action: str = "halt"
    consecutive_losses: int | None = None
    losses_action: str = "reduce"
    cooldown_bars: int = 20
    rebalance_trigger: str = "none"
    rebalance_frequency: str = "monthly"
    drift_threshold: float = 0.10
    min_trade_value: float = 0.0
    max_trades_per_rebalance: int | None = None
    periods_per_year: float = 252.0
    regime_overrides: tuple[tuple[int, tuple[tuple[str, float], ...]], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.groups, Mapping):
            object.__setattr__(self, "groups", tuple(sorted(self.groups.items())))
        if isinstance(self.regime_overrides, Mapping):
            norm = tuple(
                sorted(
                    (_regime_label(label), tuple(sorted(dict(values or {}).items())))
                    for label, values in self.regime_overrides.items()
                )
            )
            object.__setattr__(self, "regime_overrides", norm)
        _check_choice("stop", self.stop, STOP_TYPES)
        _check_choice("sizing", self.sizing, SIZING_RULES)
        _check_choice("drawdown_action", self.drawdown_action, BREAKER_ACTIONS)
        _check_choice("losses_action", self.losses_action, BREAKER_ACTIONS)
        _check_choice("rebalance_trigger", self.rebalance_trigger, REBALANCE_TRIGGERS)
        _check_choice("rebalance_frequency", self.rebalance_frequency, FREQUENCIES)
        for name in _COLUMNS:
            _check_number(name, getattr(self, name))
        _check_number("atr_window", self.atr_window)
        _check_number("periods_per_year", self.periods_per_year)
        for label, values in self.regime_overrides:
            for name, value in values:
                if name not in _COLUMNS:
                    raise ConfigError(
                        f"regime_overrides[{label}]: "
                        + unknown_name_message("risk parameter", name, tuple(_COLUMNS))
                    )
                _check_number(f"regime_overrides[{label}].{name}", value)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def off(cls) -> RiskSpec:
        """No risk rule at all: the engine behaves exactly as without a risk layer."""
        return cls(enabled=False)

    @classmethod
    def from_config(cls, cfg: Any) -> RiskSpec:
        """The rules of a :class:`framework.config.TradingConfig`.

        ``risk_management``: max_position_size, max_portfolio_risk (max gross),
        daily_loss_limit, stop_loss (type, fixed_pct, atr_multiplier), circuit_breaker
        (max_drawdown halts, consecutive_losses reduces); and
        ``portfolio_optimization.rebalancing`` (trigger_type, frequency, drift_threshold,
        min_trade_value, max_trades_per_rebalance).
        """
        risk = cfg.risk_management
        reb = cfg.portfolio_optimization.rebalancing
        return cls(
            max_position=float(risk.max_position_size),
            max_gross=float(risk.max_portfolio_risk),
            daily_loss_limit=float(risk.daily_loss_limit),
            stop=str(risk.stop_loss.type),
            stop_pct=float(risk.stop_loss.fixed_pct),
            atr_multiplier=float(risk.stop_loss.atr_multiplier),
            max_drawdown=float(risk.circuit_breaker.max_drawdown),
            consecutive_losses=int(risk.circuit_breaker.consecutive_losses),
            rebalance_trigger=str(reb.trigger_type),
            rebalance_frequency=str(reb.frequency),
            drift_threshold=float(reb.drift_threshold),
            min_trade_value=float(reb.min_trade_value),
            max_trades_per_rebalance=int(reb.max_trades_per_rebalance),
            regime_overrides=dict(getattr(risk, "regime_overrides", {}) or {}),
        )

    def with_overrides(self, overrides: Mapping[str, Any]) -> RiskSpec:
        """A copy with some fields replaced; unknown names raise with a did-you-mean hint."""
        names = tuple(f.name for f in fields(self))
        for key in overrides:
            if key not in names:
                raise ConfigError(unknown_name_message("risk setting", str(key), names))
        values = dict(overrides)
        for key in ("stop", "sizing", "rebalance_trigger"):
            if key in values and values[key] is None:
                values[key] = "none"
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        """The resolved fields as a plain dict (for run records)."""
        out = asdict(self)
        out["groups"] = dict(self.groups)
        out["regime_overrides"] = {label: dict(v) for label, v in self.regime_overrides}
        return out

    # -- what the kernel needs -------------------------------------------------------------
    def table(self) -> np.ndarray:
        """The risk parameter table ``(1 + regimes, N_RISK)``: row 0 base, then one row per
        regime label of ``regime_overrides`` (in label order)."""
        base = np.full(L.N_RISK, np.nan)
        base[L.R_ENABLED] = float(self.enabled)
        for name, col in _COLUMNS.items():
            value = getattr(self, name)
            base[col] = np.nan if value is None else float(value)
        base[L.R_STOP_KIND] = float(STOP_TYPES.index(self.stop))
        base[L.R_SIZING] = float(SIZING_RULES.index(self.sizing))
        base[L.R_DRAWDOWN_ACTION] = 1.0 + BREAKER_ACTIONS.index(self.drawdown_action)
        base[L.R_LOSSES_ACTION] = 1.0 + BREAKER_ACTIONS.index(self.losses_action)
        base[L.R_DAILY_FLATTEN] = float(self.daily_flatten)
        base[L.R_CALENDAR] = float(self.rebalance_trigger in ("calendar", "combined"))
        if self.rebalance_trigger not in ("drift", "combined"):
            base[L.R_DRIFT] = np.nan
        base[L.R_PERIODS_PER_YEAR] = float(self.periods_per_year)
        if self.cash_buffer == 0.0:
            base[L.R_CASH_BUFFER] = 0.0
        rows = [base]
        for _, values in self.regime_overrides:
            row = base.copy()
            for name, value in values:
                row[_COLUMNS[name]] = np.nan if value is None else float(value)
            rows.append(row)
        return np.vstack(rows)

    def regime_rows(self, labels: np.ndarray | None, n: int) -> np.ndarray:
        """Table row per bar for the regime ``labels`` (labels without overrides: row 0)."""
        if labels is None:
            return np.zeros(n, np.int64)
        arr = np.asarray(labels)
        if arr.shape != (n,):
            raise ConfigError(
                f"regime labels have shape {arr.shape}; expected ({n},): one integer label per "
                "bar (e.g. 0=BULL 1=BEAR 2=CHOPPY 3=VOLATILE), known at that bar's close."
            )
        rows = np.zeros(n, np.int64)
        for r, (label, _) in enumerate(self.regime_overrides, start=1):
            rows[arr == label] = r
        return rows

    @property
    def needs_atr(self) -> bool:
        return self.enabled and (self.stop == "atr" or self.sizing == "atr_risk")

    def describe(self) -> list[str]:
        """One plain line per active rule (for summaries and tear-sheet notes)."""
        if not self.enabled:
            return ["risk layer off"]
        lines = []
        if self.sizing != "none":
            lines.append(f"sizing: {self.sizing}")
        for name in ("max_position", "max_gross", "max_net", "max_positions", "max_group"):
            value = getattr(self, name)
            if value is not None:
                lines.append(f"{name} {value}")
        if self.cash_buffer:
            lines.append(f"cash buffer {self.cash_buffer}")
        if self.stop != "none":
            size = (
                f"{self.atr_multiplier} x ATR({self.atr_window})"
                if self.stop == "atr"
                else (f"{self.stop_pct:.2%}")
            )
            lines.append(f"{self.stop} stop {size}")
        for name in (
            "take_profit",
            "time_stop_bars",
            "daily_loss_limit",
            "max_drawdown",
            "consecutive_losses",
        ):
            value = getattr(self, name)
            if value is not None:
                lines.append(f"{name} {value}")
        if self.rebalance_trigger != "none":
            lines.append(
                f"rebalancing {self.rebalance_trigger} ({self.rebalance_frequency}, drift "
                f"{self.drift_threshold})"
            )
        if self.min_trade_value:
            lines.append(f"min trade value {self.min_trade_value}")
        if self.max_trades_per_rebalance is not None:
            lines.append(f"max trades per rebalance {self.max_trades_per_rebalance}")
        if self.regime_overrides:
            lines.append(f"regime overrides for labels {[k for k, _ in self.regime_overrides]}")
        return lines or ["risk layer on, no rule active"]


def load_regime_overrides(path) -> dict[int, dict[str, float]]:
    """Per-regime overrides from a YAML file such as::

        BEAR: {max_position: 0.20}
        VOLATILE: {cash_buffer: 0.15, stop_pct: 0.02}

    Keys are regime names (BULL, BEAR, CHOPPY, VOLATILE) or integer labels; values map
    numeric RiskSpec fields to numbers (validated when the RiskSpec is built).
    """
    from pathlib import Path

    import yaml

    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read regime overrides from {file}: {exc}; expected a YAML mapping such as "
            "'BEAR: {max_position: 0.2}'."
        ) from exc
    if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
        raise ConfigError(
            f"regime overrides in {file} must map a regime to its settings, e.g. "
            f"'BEAR: {{max_position: 0.2}}'; got {type(data).__name__}."
        )
    return {_regime_label(k): dict(v) for k, v in data.items()}


def _regime_label(label: object) -> int:
    if isinstance(label, str) and not label.lstrip("-").isdigit():
        key = label.strip().upper()
        if key not in REGIME_NAMES:
            raise ConfigError(unknown_name_message("regime", label, tuple(REGIME_NAMES)))
        return REGIME_NAMES[key]
    try:
        return int(label)
    except (TypeError, ValueError):
        raise ConfigError(
            f"regime label {label!r}; expected an integer or one of {', '.join(REGIME_NAMES)}."
        ) from None


def parse_risk_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("stop=trailing", "max_position=0.5", "take_profit=none")`` -> a dict for
    :meth:`RiskSpec.with_overrides` (numbers parsed; ``none`` = off; true/false for flags)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(
                f"--risk expects NAME=VALUE; got {pair!r} (e.g. --risk stop=trailing)."
            )
        key, raw = (part.strip() for part in pair.split("=", 1))
        low = raw.lower()
        if low in ("none", "null", "off"):
            out[key] = None
        elif low in ("true", "false"):
            out[key] = low == "true"
        else:
            try:
                number = float(raw)
            except ValueError:
                out[key] = raw
            else:
                out[key] = int(number) if number.is_integer() and "." not in raw else number
    return out


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"RiskSpec.{name}: " + unknown_name_message(name, str(value), choices))


def _check_number(name: str, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"RiskSpec.{name} = {value!r} ({type(value).__name__}); expected a number or None "
            "(None switches the rule off)."
        )
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"RiskSpec.{name} = {value!r}; expected a finite number >= 0.")
