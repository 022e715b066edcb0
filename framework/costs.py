"""Trading cost model: commission, slippage, square-root market impact, participation cap.

:class:`CostSpec` is the one place where the cost assumptions of a backtest are written down.
The defaults describe a retail US-equity broker with per-share pricing (Interactive Brokers'
fixed tier: $0.005 per share, $1.00 minimum, capped at 1% of the trade value), a 5 bps
half-spread plus slippage, a square-root impact model and a 10% cap on the share of a bar's
volume one order may take. They are deliberately not zero: a backtest without costs flatters
every strategy. Use :meth:`CostSpec.none` for reference runs.

How the engine applies each field (all adverse to the trader):

- commission per fill = ``min(max(shares * commission_per_share + value * commission_bps / 1e4,
  commission_min), value * commission_max_pct / 100)``, where ``value = shares * fill price``;
- slippage: a buy fills at ``price * (1 + s)``, a sell at ``price * (1 - s)``, with
  ``s = slippage_bps / 1e4``;
- impact fraction ``impact_coef * sigma * sqrt(shares / bar_volume)`` is added to ``s``; ``sigma``
  is the sample standard deviation of the close-to-close returns of the ``impact_window`` bars
  before the fill bar (causal). Fills on bars without volume (index data) or without two returns of
  history get no impact and are counted;
- at most ``max_participation`` of the fill bar's volume is filled; the rest waits for later bars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

from framework.errors import EngineError, unknown_name_message

_OPTIONAL = ("commission_max_pct", "max_participation")


@dataclass(frozen=True)
class CostSpec:
    """Cost assumptions of a simulation (frozen; change with :meth:`with_overrides`).

    Parameters
    ----------
    commission_per_share : float
        Commission in currency per share traded (default 0.005).
    commission_min : float
        Minimum commission per fill, in currency (default 1.00).
    commission_bps : float
        Commission in basis points of the traded value (default 0); adds to the per-share part.
    commission_max_pct : float or None
        Cap on the commission of a fill, in percent of its traded value (default 1.0, i.e. 1%);
        ``None`` for no cap. The cap wins over the minimum, as at Interactive Brokers.
    slippage_bps : float
        Half-spread plus slippage in basis points of the price, adverse to the trader (default 5).
    impact_coef : float
        Coefficient of the square-root impact model (default 0.1); 0 turns impact off.
    impact_window : int
        Number of bars of close-to-close returns used for the impact volatility (default 20).
    max_participation : float or None
        Largest fraction of a bar's volume one asset's order may fill (default 0.1); ``None`` for
        no cap. Bars with zero or missing volume are never capped.
    """

    commission_per_share: float = 0.005
    commission_min: float = 1.0
    commission_bps: float = 0.0
    commission_max_pct: float | None = 1.0
    slippage_bps: float = 5.0
    impact_coef: float = 0.1
    impact_window: int = 20
    max_participation: float | None = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL:
                continue
            _check_number(f.name, value)
            if value < 0:
                raise EngineError(
                    f"CostSpec.{f.name} = {value!r} is negative; expected a value >= 0. "
                    "Costs are always adverse: use 0 to turn a cost off."
                )
        if self.slippage_bps >= 10_000:
            raise EngineError(
                f"CostSpec.slippage_bps = {self.slippage_bps!r} would price sells at or below zero; "
                "expected a value below 10000 (100%). Typical values are 1-20 bps."
            )
        if self.commission_max_pct is not None and not 0 < self.commission_max_pct <= 100:
            raise EngineError(
                f"CostSpec.commission_max_pct = {self.commission_max_pct!r}; expected a percent in "
                "(0, 100] (e.g. 1.0 for 1% of the traded value) or None for no cap."
            )
        if self.max_participation is not None and not 0 < self.max_participation <= 1:
            raise EngineError(
                f"CostSpec.max_participation = {self.max_participation!r}; expected a fraction of "
                "bar volume in (0, 1] (e.g. 0.1 for 10%) or None for no cap."
            )
        if isinstance(self.impact_window, float):
            if not self.impact_window.is_integer():
                raise EngineError(
                    f"CostSpec.impact_window = {self.impact_window!r}; expected a whole number "
                    "of bars."
                )
            # 20.0 from a CLI override means 20 bars: store the int the field documents
            object.__setattr__(self, "impact_window", int(self.impact_window))
        if self.impact_window < 2:
            raise EngineError(
                f"CostSpec.impact_window = {self.impact_window!r}; expected at least 2 bars "
                "(a volatility needs two returns)."
            )

    @classmethod
    def none(cls) -> CostSpec:
        """A cost-free spec for reference runs: no commission, slippage, impact or volume cap."""
        return cls(
            commission_per_share=0.0,
            commission_min=0.0,
            commission_bps=0.0,
            commission_max_pct=None,
            slippage_bps=0.0,
            impact_coef=0.0,
            max_participation=None,
        )

    def with_overrides(self, overrides: Mapping[str, object]) -> CostSpec:
        """Return a copy with some fields replaced, rejecting unknown names.

        Parameters
        ----------
        overrides : mapping of str to value
            Field names and new values, e.g. ``{"slippage_bps": 2.0}``.

        Raises
        ------
        EngineError
            For an unknown field name (with a did-you-mean suggestion) or an invalid value.
        """
        names = [f.name for f in fields(self)]
        for name in overrides:
            if name not in names:
                raise EngineError(unknown_name_message("cost field", str(name), names))
        return replace(self, **dict(overrides))

    def to_dict(self) -> dict[str, object]:
        """The resolved fields as a plain dict (for run records)."""
        return asdict(self)


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineError(
            f"CostSpec.{name} = {value!r} ({type(value).__name__}); expected a number."
        )
    if not math.isfinite(value):
        raise EngineError(f"CostSpec.{name} = {value!r}; expected a finite number.")
