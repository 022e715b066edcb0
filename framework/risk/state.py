"""The persistable state of the risk layer: :class:`RiskState`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from framework.errors import ConfigError
from framework.risk import _layout as L
from framework.risk._nb import new_risk_state_nb

BREAKER_STATES: tuple[str, ...] = ("ACTIVE", "REDUCING", "HALTED")


@dataclass(eq=False)
class RiskState:
    """Per-asset rows (``assets``, ``(N_ASSET_STATE, m)``) and portfolio scalars
    (``portfolio``, ``(N_GLOBAL_STATE,)``) that the jitted rules read and update in place.

    Layout: ``framework.risk._layout`` (``S_*`` rows, ``G_*`` scalars). The live store persists
    it with :meth:`to_dict` and restores it with :meth:`from_dict`.
    """

    assets: np.ndarray
    portfolio: np.ndarray

    @classmethod
    def new(cls, n_assets: int, initial_equity: float) -> RiskState:
        """Fresh state: no positions tracked, breaker ACTIVE, peak = ``initial_equity``."""
        astate, gstate = new_risk_state_nb(int(n_assets), float(initial_equity))
        return cls(astate, gstate)

    @property
    def breaker(self) -> str:
        """``ACTIVE``, ``REDUCING`` or ``HALTED``."""
        return BREAKER_STATES[int(self.portfolio[L.G_BREAKER])]

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray]:
        return self.assets, self.portfolio

    def copy(self) -> RiskState:
        return RiskState(self.assets.copy(), self.portfolio.copy())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: NaN becomes None (JSON has no NaN)."""
        return {
            "version": 1,
            "assets": [[None if np.isnan(x) else float(x) for x in row] for row in self.assets],
            "portfolio": [None if np.isnan(x) else float(x) for x in self.portfolio],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RiskState:
        """Inverse of :meth:`to_dict`; raises ``ConfigError`` on a wrong layout."""
        try:
            assets = np.array(
                [[np.nan if x is None else float(x) for x in row] for row in data["assets"]]
            ).reshape(L.N_ASSET_STATE, -1)
            portfolio = np.array([np.nan if x is None else float(x) for x in data["portfolio"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"risk state record is malformed ({exc}); expected the dict written by "
                "RiskState.to_dict (keys 'assets' and 'portfolio')."
            ) from exc
        if portfolio.shape != (L.N_GLOBAL_STATE,):
            raise ConfigError(
                f"risk state has {portfolio.shape[0]} portfolio values; expected "
                f"{L.N_GLOBAL_STATE}. It was written by another fw version: start fresh."
            )
        return cls(np.ascontiguousarray(assets), portfolio)
