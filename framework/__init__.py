"""fw: a backtest-first trading research framework.

The core library. It knows nothing of ``live``, ``reports`` or ``strategies``; only
``framework.cli`` (the composition root) imports them, lazily, inside commands.
"""

__version__ = "0.1.0"
