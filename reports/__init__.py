"""Reports: quantstats tear sheets and other presentations of results.

Reports present numbers computed by :mod:`framework.metrics`; they import ``framework`` only.
"""
