"""Risk management inside the engine pass (sizing, caps, stops, breakers, rebalancing filters).

The rules are small jitted functions (``_nb.py``) that the engine's bar loop calls and that the
live runner calls one bar at a time (:mod:`framework.risk.live`). :class:`RiskSpec` configures
them (from the YAML config by default); ``RiskSpec.off()`` disables everything.
"""

from framework.risk.events import EXIT_REASONS, RULE_NAMES, event_counts
from framework.risk.spec import RiskSpec
from framework.risk.state import RiskState

__all__ = ["EXIT_REASONS", "RULE_NAMES", "RiskSpec", "RiskState", "event_counts"]
