"""Live paper trading: brokers, feeds, the runner, the state store, reconciliation and alerts.

Imports ``framework`` only. The runner drives the same :class:`framework.stepper.Stepper` the
backtests are checked against, so live decisions equal backtest decisions for the same bars.
"""
