"""Shared builders for the live tests."""

from __future__ import annotations

from live.feeds import ReplayFeed
from live.runner import Runner, RunnerSpec
from live.sim import SimBroker, SimSpec
from live.state import Store
from strategies.sma_cross import SmaCross, SmaCrossParams
from tests.barsgen import make_bars

PARAMS = SmaCrossParams(fast=3, slow=8, short=True)


def bars(n: int = 120, m: int = 2, seed: int = 3):
    return make_bars(n=n, m=m, seed=seed)


def session(store: Store, symbols, run_id="r1", sim=None, checkpoint=None, dry_run=False,
            params=PARAMS):
    """A runner on a sim broker persisted in ``store`` (restored when it was saved)."""
    spec = sim or SimSpec()
    saved = store.broker_state(run_id)
    persist = lambda data: store.save_broker_state(run_id, "sim", data)  # noqa: E731
    broker = (SimBroker.from_dict(saved, spec, persist) if saved
              else SimBroker(symbols, spec, persist))
    runner = Runner(SmaCross(), params, store, broker, symbols,
                    RunnerSpec(run_id=run_id, dry_run=dry_run), checkpoint=checkpoint)
    runner.start()
    return runner, broker


def play(runner, data):
    return runner.run(ReplayFeed(data))
