"""The click group ``fw broker`` with ``fw broker check``.

The composition root registers it with ``main.add_command(make_broker_group())``; the checks
themselves are in ``live.broker_check`` (and the adapters' ``checks`` functions).
"""

from __future__ import annotations

import os

import click

from framework.errors import FwError

_DB_HELP = ("State database URL the sim broker uses (default: FW_DB_URL, else sqlite under "
            "FW_HOME/state/fw.sqlite).")


def make_broker_group() -> click.Group:
    """The ``broker`` group.

    Returns
    -------
    click.Group
        With the command ``check``: ``fw broker check --broker sim|alpaca|webull [--json]``
        exits 0 when every step passed and 1 when any failed.
    """

    @click.group(name="broker")
    def broker() -> None:
        """Diagnose broker connections."""

    broker.add_command(_check_command())
    return broker


def _check_command() -> click.Command:
    from live.broker_check import BROKERS

    @click.command(name="check")
    @click.option("--broker", "broker_name", type=click.Choice(BROKERS), default="sim",
                  show_default=True,
                  help="sim: the offline simulated broker (state database, XNYS calendar). "
                  "alpaca: keys, host, account, PAPER vs LIVE, clock drift. webull: the same "
                  "steps plus the token.")
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @click.option("--timeout", type=click.FloatRange(0, None, min_open=True), default=5.0,
                  show_default=True, help="Seconds to wait for each request to the broker.")
    @click.option("--max-clock-drift", "max_drift", type=click.FloatRange(0, None), default=5.0,
                  show_default=True,
                  help="Largest allowed difference between the broker's clock and this "
                  "machine's, in seconds.")
    @click.option("--db", default=None, help=_DB_HELP)
    @click.pass_context
    def check(ctx: click.Context, broker_name: str, as_json: bool, timeout: float,
              max_drift: float, db: str | None) -> None:
        """Check a broker connection step by step; exit code 1 when any step fails.

        Steps: credentials, reachable, account, mode (PAPER or LIVE), clock. A failed step
        says what to fix; the steps that depend on it are skipped.
        """
        from live.broker_check import exit_code, render, run_checks, to_json

        environ = dict(os.environ)
        if db:
            environ["FW_DB_URL"] = db
        try:
            results = run_checks(broker_name, environ, timeout=timeout, max_drift=max_drift)
        except FwError as exc:  # one clean line, never a traceback
            raise click.ClickException(str(exc)) from exc
        click.echo(to_json(broker_name, results) if as_json else render(broker_name, results))
        ctx.exit(exit_code(results))

    return check
