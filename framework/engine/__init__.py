"""The simulation engine: target weights in, fills, equity and trades out.

``simulate`` runs one portfolio over a universe; ``simulate_grid`` runs many portfolios on one
asset in a single jitted call (parameter grids). Timing, sizing and cost rules are documented in
``framework.engine.core`` and ``framework.costs``.
"""

from framework.costs import CostSpec
from framework.engine.core import simulate, simulate_grid
from framework.engine.result import GridResult, SimResult
from framework.engine.spec import EngineSpec

__all__ = ["CostSpec", "EngineSpec", "GridResult", "SimResult", "simulate", "simulate_grid"]
