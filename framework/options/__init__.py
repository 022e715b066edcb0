"""Options analytics: Black-Scholes-Merton prices and Greeks, American prices, implied volatility.

Import what you need from the submodules (this package imports nothing at import time, so that
``import framework.options`` stays cheap):

- :mod:`framework.options.bsm`: ``bsm_price``, ``bsm_greeks`` (-> ``Greeks``), ``american_price``.
- :mod:`framework.options.iv`: ``implied_vol`` (-> ``IVResult``), ``quote_vols``.

Conventions for the whole package: ``t`` in years ACT/365 (calendar days / 365); rate and
dividend yield continuous decimals; vol annualised decimal; ``call`` a bool or bool array; theta
per calendar day, vega per vol point, rho per rate point; arguments broadcast like NumPy arrays.
"""
