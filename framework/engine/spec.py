"""Configuration of a simulation run: :class:`EngineSpec`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from framework.errors import EngineError, unknown_name_message

FILL_MODES: tuple[str, ...] = ("next_open", "close")
REBALANCE_MODES: tuple[str, ...] = ("on_change", "every_bar")


@dataclass(frozen=True)
class EngineSpec:
    """How targets become fills (frozen).

    Parameters
    ----------
    initial_cash : float
        Starting cash in account currency (default 100,000).
    fill : {"next_open", "close"}
        ``"next_open"`` (default) fills ``target[i]`` at the open of bar ``i + 1``; ``"close"``
        fills it at the close of bar ``i``, which assumes you could trade at a price you only know
        once the bar is over: results are flagged ``optimistic_fill=True``.
    rebalance : {"on_change", "every_bar"}
        ``"on_change"`` (default) trades an asset only when its target differs from the last target
        acted on, so positions drift with prices in between; ``"every_bar"`` re-sizes every asset
        with a (non-NaN) target back to its weight at every fill.
    whole_shares : bool
        Round every order toward zero to whole shares (default False).
    allow_short : bool
        When False, negative targets are clipped to 0 (default True).
    max_leverage : float
        Upper bound on gross exposure / equity enforced when an order adds exposure (default 1.0;
        with 1.0 and no shorts this means cash never goes below zero).
    """

    initial_cash: float = 100_000.0
    fill: str = "next_open"
    rebalance: str = "on_change"
    whole_shares: bool = False
    allow_short: bool = True
    max_leverage: float = 1.0

    def __post_init__(self) -> None:
        _positive_number("initial_cash", self.initial_cash, "e.g. 100_000.0")
        _positive_number("max_leverage", self.max_leverage, "e.g. 1.0 for no leverage")
        if self.fill not in FILL_MODES:
            raise EngineError(unknown_name_message("fill mode", str(self.fill), FILL_MODES))
        if self.rebalance not in REBALANCE_MODES:
            raise EngineError(
                unknown_name_message("rebalance mode", str(self.rebalance), REBALANCE_MODES)
            )
        for name in ("whole_shares", "allow_short"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise EngineError(
                    f"EngineSpec.{name} = {value!r} ({type(value).__name__}); expected True or False."
                )

    @property
    def optimistic_fill(self) -> bool:
        """True when fills use a price only known after the decision (``fill="close"``)."""
        return self.fill == "close"

    def to_dict(self) -> dict[str, object]:
        """The resolved fields as a plain dict (for run records)."""
        return asdict(self)


def _positive_number(name: str, value: object, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineError(
            f"EngineSpec.{name} = {value!r} ({type(value).__name__}); expected a number ({example})."
        )
    if not (math.isfinite(value) and value > 0):
        raise EngineError(
            f"EngineSpec.{name} = {value!r}; expected a finite number > 0 ({example})."
        )
