"""The risk layer's rules as they apply to defined-risk option spreads.

A spread's exposure is its **max loss**: the rules of :class:`framework.risk.RiskSpec` that cap
weights cap max loss as a fraction of equity, and the breakers watch the same equity curve as for
stocks. :meth:`OptionsRisk.from_risk_spec` maps what carries over and names what does not
(stop-loss, take-profit and time stops on the underlying's price, sizing models, rebalancing
filters and regime overrides: the options strategy has its own exits and sizing).

Rules (checked at each close, after exits, before a new entry; all decisions use data up to
that close):

* ``max_position``: one new spread's max loss <= ``max_position`` x equity (contracts cut);
* ``max_gross``: max loss of all open spreads incl. the new one <= ``max_gross`` x equity
  (contracts cut; default 1.0 = defined-risk margin within equity);
* ``max_positions``: at most that many open spreads (together with the strategy's ``max_open``);
* ``daily_loss_limit``: a session whose close equity is that fraction below the previous close
  opens nothing (with ``daily_flatten`` every spread is closed at that close);
* ``max_drawdown``: when equity falls that fraction below its peak, "reduce" opens nothing for
  ``cooldown_bars`` sessions and "halt" also closes every spread at that close; the peak restarts
  from the equity at the trigger;
* ``consecutive_losses``: that many losing spreads in a row act like the drawdown breaker with
  ``losses_action``; the count restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from framework.errors import ConfigError

ACTIONS = ("reduce", "halt")


@dataclass(frozen=True)
class OptionsRisk:
    """Risk rules of an options backtest (``None`` switches a rule off)."""

    max_position: float | None = None
    max_gross: float = 1.0
    max_positions: int | None = None
    daily_loss_limit: float | None = None
    daily_flatten: bool = False
    max_drawdown: float | None = None
    drawdown_action: str = "halt"
    consecutive_losses: int | None = None
    losses_action: str = "reduce"
    cooldown_bars: int = 20

    def __post_init__(self) -> None:
        for name in ("max_position", "daily_loss_limit", "max_drawdown"):
            value = getattr(self, name)
            if value is not None and not 0.0 < float(value) <= 1.0:
                raise ConfigError(f"OptionsRisk.{name} must be in (0, 1] or None; got {value!r}.")
        if not 0.0 < float(self.max_gross) <= 10.0:
            raise ConfigError(f"OptionsRisk.max_gross must be in (0, 10]; got {self.max_gross!r}.")
        for name in ("drawdown_action", "losses_action"):
            if getattr(self, name) not in ACTIONS:
                raise ConfigError(f"OptionsRisk.{name} must be one of {ACTIONS}; got "
                                  f"{getattr(self, name)!r}.")
        for name, low in (("max_positions", 1), ("consecutive_losses", 1), ("cooldown_bars", 0)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value
                                      or value < low):
                raise ConfigError(f"OptionsRisk.{name} must be a whole number >= {low}; got "
                                  f"{value!r}.")

    @classmethod
    def from_risk_spec(cls, spec) -> tuple[OptionsRisk, tuple[str, ...]]:
        """The rules of a :class:`framework.risk.RiskSpec` that apply to spreads, and a list of
        the configured ones that do not (for the run's notes)."""
        if not spec.enabled:
            return cls(), ()
        rules = cls(
            max_position=spec.max_position,
            max_gross=1.0 if spec.max_gross is None else min(float(spec.max_gross), 10.0),
            max_positions=spec.max_positions,
            daily_loss_limit=spec.daily_loss_limit,
            daily_flatten=bool(spec.daily_flatten),
            max_drawdown=spec.max_drawdown,
            drawdown_action=spec.drawdown_action,
            consecutive_losses=spec.consecutive_losses,
            losses_action=spec.losses_action,
            cooldown_bars=int(spec.cooldown_bars),
        )
        ignored = []
        if spec.stop != "none":
            ignored.append(f"stop {spec.stop} (the spread's own stop_multiple applies)")
        if spec.take_profit is not None:
            ignored.append("take_profit (the spread's own take_profit applies)")
        if spec.time_stop_bars is not None:
            ignored.append("time_stop_bars (exit_dte applies)")
        if spec.sizing != "none":
            ignored.append(f"sizing {spec.sizing} (risk_per_trade of max loss applies)")
        if spec.rebalance_trigger != "none" or spec.min_trade_value or spec.max_trades_per_rebalance:
            ignored.append("rebalancing filters")
        if spec.regime_overrides:
            ignored.append("regime overrides")
        if spec.max_net is not None or spec.max_group is not None or spec.cash_buffer:
            ignored.append("max_net / max_group / cash_buffer")
        return rules, tuple(ignored)

    def describe(self) -> list[str]:
        """One phrase per active rule."""
        out = [f"max loss of open spreads <= {self.max_gross:g} x equity"]
        if self.max_position is not None:
            out.append(f"one spread's max loss <= {self.max_position:g} x equity")
        if self.max_positions is not None:
            out.append(f"at most {self.max_positions} open spreads")
        if self.daily_loss_limit is not None:
            out.append(f"daily loss limit {self.daily_loss_limit:.0%}"
                       + (" (flatten)" if self.daily_flatten else " (no new entries)"))
        if self.max_drawdown is not None:
            out.append(f"max drawdown {self.max_drawdown:.0%} -> {self.drawdown_action} for "
                       f"{self.cooldown_bars} sessions")
        if self.consecutive_losses is not None:
            out.append(f"{self.consecutive_losses} losing spreads in a row -> "
                       f"{self.losses_action} for {self.cooldown_bars} sessions")
        return out

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class RiskGuard:
    """The breakers' state over one run, fed once per session after exits.

    ``update`` returns the reason to close every open spread at this close (``"risk_halt"``,
    ``"daily_flatten"``) or None; ``may_enter`` says whether a new spread may open this session.
    ``events`` counts what fired (``drawdown``, ``losses``, ``daily_loss``).
    """

    def __init__(self, risk: OptionsRisk, initial_equity: float) -> None:
        self.risk = risk
        self.peak = self.previous = float(initial_equity)
        self.blocked_until = -1  # session index before which entries are blocked
        self.losses = 0
        self.events: dict[str, int] = {}

    def update(self, k: int, equity: float, closed_pnls: list[float]) -> str | None:
        r, flatten = self.risk, None
        self.peak = max(self.peak, equity)
        for pnl in closed_pnls:
            self.losses = self.losses + 1 if pnl < 0 else 0
        if r.consecutive_losses is not None and self.losses >= r.consecutive_losses:
            self.losses = 0
            flatten = self._trip("losses", k, r.losses_action) or flatten
        if r.max_drawdown is not None and equity <= self.peak * (1.0 - r.max_drawdown):
            self.peak = equity  # restart the watch from here
            flatten = self._trip("drawdown", k, r.drawdown_action) or flatten
        if r.daily_loss_limit is not None and equity <= self.previous * (1.0 - r.daily_loss_limit):
            self.events["daily_loss"] = self.events.get("daily_loss", 0) + 1
            self.blocked_until = max(self.blocked_until, k + 1)
            if r.daily_flatten:
                flatten = flatten or "daily_flatten"
        self.previous = equity
        return flatten

    def _trip(self, event: str, k: int, action: str) -> str | None:
        self.events[event] = self.events.get(event, 0) + 1
        self.blocked_until = max(self.blocked_until, k + 1 + self.risk.cooldown_bars)
        return "risk_halt" if action == "halt" else None

    def may_enter(self, k: int) -> bool:
        return k >= self.blocked_until
