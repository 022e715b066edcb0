"""In-process fake of Alpaca's paper trading + market-data APIs for tests (REST and websockets).

See :class:`FakeAlpaca` for the contract and ``faults.py`` for the failure switches.
"""

from .faults import Faults
from .server import KEY, SECRET, FakeAlpaca, FakeClock

__all__ = ["KEY", "SECRET", "FakeAlpaca", "FakeClock", "Faults"]
