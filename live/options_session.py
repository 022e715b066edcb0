"""``fw paper credit_spread --broker alpaca``: an options strategy on Alpaca paper.

Glue between the ``fw paper`` command (:class:`live.command.PaperSpec`) and the options session
loop (:func:`live.paper_options.run_options_paper`): the strategy's ``--set`` parameters become
its :class:`~framework.options.backtest.CreditSpreadSpec`, ``--symbols`` names the underlying
(default SPY), ``--max-bars`` the number of sessions (default: until stopped, at most a year
ahead of the calendar), and the IV-rank history comes from VIX (SPY/QQQ, scaled as the chain
model scales it: ``vix_scale x VIX / 100``) read from ``--data-dir`` when given. Without a
recent VIX history the rank starts from the chain's own ATM IV, one value per session (the
book keeps them), so the gate stays shut until ``iv_rank_window`` sessions are seen unless
``iv_rank_min`` is 0; an event says so.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from framework.errors import ConfigError, DataError
from framework.options.inputs import read_vix
from framework.options.strategy import OptionsStrategy
from framework.options.synthetic import spec_for_symbol
from framework.strategy import make_params, parse_overrides
from live.state import Store

MAX_SESSIONS = 250
_STALE_DAYS = 10  # a VIX history that ends longer ago than this is not today's history


def run_options_session(strategy: OptionsStrategy, spec: Any, store: Store) -> dict[str, Any]:
    """Run ``strategy`` on Alpaca paper as ``fw paper`` was asked; returns the session summary
    (:func:`live.paper_options.summary` plus ``steps`` and ``status``)."""
    from live.alpaca_options import AlpacaOptions
    from live.command import StopFlag, make_alerter
    from live.paper_alpaca import connect
    from live.paper_options import run_options_paper

    if spec.broker != "alpaca":
        raise ConfigError(
            f"{strategy.name} trades option spreads, which only the alpaca broker offers here; "
            f"got --broker {spec.broker}. Pass --broker alpaca (paper account), or study it "
            f"offline with `fw backtest {strategy.name} --walk-forward`.")
    symbols = list(spec.symbols or ("SPY",))
    if len(symbols) != 1:
        raise ConfigError(f"{strategy.name} trades one underlying; got --symbols "
                          f"{','.join(symbols)}.")
    underlying = symbols[0].upper()
    rules = strategy.spec(make_params(strategy.params_type,
                                      parse_overrides(strategy.params_type, spec.sets)))
    run_id = spec.run_id or f"{strategy.name}-{underlying.lower()}"
    options = AlpacaOptions(connect())
    now = pd.Timestamp.now(tz="UTC")
    history, note = iv_history(underlying, spec.data_dir, now)
    store.event(run_id, "iv_history", note)
    stop = StopFlag()
    stop.install()
    return run_options_paper(rules, store, run_id, underlying, history,
                             int(spec.max_bars or MAX_SESSIONS), options,
                             wait_until=broker_waiter(options, spec.poll or 30.0, stop),
                             should_stop=stop, alerter=make_alerter(store, run_id),
                             dry_run=spec.dry_run)


def broker_waiter(options, poll: float, stop=None):
    """``wait_until(t)`` on the broker's clock: sleep in steps of at most ``poll`` seconds until
    the broker says it is ``t`` (Alpaca's clock is market time; a local clock may drift)."""
    import time

    from live.paper_options import broker_now

    def wait(when: pd.Timestamp) -> pd.Timestamp:
        while True:
            now = broker_now(options)
            left = (when - now).total_seconds()
            if left <= 0 or (stop is not None and stop()):
                return now
            time.sleep(min(left, poll))

    return wait


def iv_history(underlying: str, data_dir, now: pd.Timestamp) -> tuple[pd.Series, str]:
    """Daily ATM-IV history (decimals) for the IV rank, and a sentence saying where it came
    from. Empty when there is no recent VIX for a VIX-scaled underlying."""
    chain = spec_for_symbol(underlying)
    if chain.iv_source != "vix":
        return pd.Series(dtype=float), (
            f"IV rank of {underlying}: from the chain's ATM IV recorded each session (no "
            "implied-vol index for this underlying)")
    if data_dir is None:
        return pd.Series(dtype=float), (
            f"IV rank of {underlying}: no --data-dir with VIX.csv.gz, so the rank builds from the "
            "chain's ATM IV recorded each session (the entry gate opens after iv_rank_window "
            "sessions unless iv_rank_min is 0)")
    try:
        vix, path = read_vix(data_dir)
    except DataError as exc:
        raise ConfigError(f"--data-dir {data_dir}: {exc}") from exc
    today = now.tz_convert("America/New_York").tz_localize(None).normalize()
    if (today - vix.index[-1]).days > _STALE_DAYS:
        return pd.Series(dtype=float), (
            f"IV rank of {underlying}: {path} ends {vix.index[-1].date()}, more than "
            f"{_STALE_DAYS} days before today; not used (update it with `fw data`), so the rank "
            "builds from the chain's ATM IV recorded each session")
    return (vix / 100.0 * chain.vix_scale).rename("atm_iv"), (
        f"IV rank of {underlying}: VIX from {path} x {chain.vix_scale:g} / 100 "
        f"({len(vix)} sessions to {vix.index[-1].date()}), then the chain's ATM IV each session")
