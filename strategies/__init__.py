"""The registered strategies. Add a strategy by importing its class and listing it here.

The registry is explicit (no import-time discovery): ``REGISTRY`` maps the name used on the command
line to the class.
"""

from __future__ import annotations

from strategies.momentum import CrossSectionalMomentum
from strategies.sma_cross import SmaCross

REGISTRY = {cls.name: cls for cls in (SmaCross, CrossSectionalMomentum)}

__all__ = ["REGISTRY", "CrossSectionalMomentum", "SmaCross"]
